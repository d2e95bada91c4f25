"""What each version of a cube changed against the one before it: pure functions over version rows."""

from __future__ import annotations

import difflib
import re
from typing import Any, Sequence

from memcube.models import FieldChange, TextOp, VersionDiff

# The fields of a version compared one by one (content gets a word diff; provenance is shown per version).
COMPARED = ("status", "tier", "kind", "label", "agent_id", "user_id", "session_id", "tags", "importance",
            "confidence", "occurred_at", "valid_from", "valid_to", "superseded_by", "data", "metadata", "artifact")
# Past this many words on both sides, compare whole lines: a word diff of two long texts is quadratic.
WORD_DIFF_MAX_TOKENS = 4000
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def same_value(before: Any, after: Any) -> bool:
    """Return whether two values of a field are the same (floats at the precision of `real`)."""
    if isinstance(before, float) and isinstance(after, float):
        # importance and confidence are stored as `real`: compare at its precision.
        return abs(before - after) < 1e-6
    return before == after


def diff_text(before: str, after: str) -> list[TextOp]:
    """Return the runs of `after` kept from `before`, inserted and deleted, in reading order; [] when equal."""
    if before == after:
        return []
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    if len(a) > WORD_DIFF_MAX_TOKENS and len(b) > WORD_DIFF_MAX_TOKENS:
        a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    ops: list[TextOp] = []

    def add(op: str, parts: Sequence[str]) -> None:
        text = "".join(parts)
        if not text:
            return
        if ops and ops[-1].op == op:
            ops[-1] = TextOp(op=op, text=ops[-1].text + text)  # type: ignore[arg-type]
        else:
            ops.append(TextOp(op=op, text=text))  # type: ignore[arg-type]

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
        else:
            add("delete", a[i1:i2])
            add("insert", b[j1:j2])
    return ops


def diff_versions(before: dict[str, Any] | None, after: dict[str, Any]) -> VersionDiff:
    """Return what `after` changed against `before` (None: `after` is the first version)."""
    if before is None:
        return VersionDiff(version=after["version"], previous=None, changes=[], content=[])
    changes = [FieldChange(field=name, before=before.get(name), after=after.get(name))
               for name in COMPARED if not same_value(before.get(name), after.get(name))]
    return VersionDiff(version=after["version"], previous=before["version"], changes=changes,
                       content=diff_text(before.get("content") or "", after.get("content") or ""))


def diff_history(versions: Sequence[dict[str, Any]]) -> list[VersionDiff]:
    """Return the diff of each version (oldest first) against the one before it."""
    return [diff_versions(versions[i - 1] if i else None, version) for i, version in enumerate(versions)]
