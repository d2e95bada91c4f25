"""What the service knows about the request being served, wherever the code runs: its id, and the audit entry
that records a change (memcube/audit.py). Context variables, so a thread-pool hop carries them along (the
entry itself is shared, so what a thread notes is seen by the middleware that made it); outside a request
(a worker, a script) nothing is set and the `note_*` functions do nothing."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterable

from memcube.models import Principal

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
request_id_var: ContextVar[str] = ContextVar("memcube_request_id", default="")


def new_request_id(offered: str | None) -> str:
    """The id of a request: the caller's `X-Request-ID` when it is a sane token (so one id can be followed
    across services), else a new random one."""
    if offered and _REQUEST_ID.match(offered):
        return offered
    return uuid.uuid4().hex


@dataclass
class Entry:
    """The audit row of one change request, filled in while it is served."""

    request_id: str
    method: str
    path: str
    route: str = ""
    caller: Principal | None = None
    actor: str | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)
    written: bool = False


_entry: ContextVar[Entry | None] = ContextVar("memcube_audit_entry", default=None)


def begin(entry: Entry) -> None:
    """Make `entry` the audit entry of the request being served."""
    _entry.set(entry)


def current() -> Entry | None:
    return _entry.get()


def note_caller(principal: Principal, actor: str | None = None) -> None:
    """Name who makes the current request (no-op outside an audited request)."""
    entry = _entry.get()
    if entry is not None:
        entry.caller = principal
        entry.actor = actor or principal.actor


def note_versions(rows: Iterable[dict[str, Any]]) -> None:
    """Record versions the current request wrote: rows with `cube_id` and `version` (no-op outside one)."""
    entry = _entry.get()
    if entry is not None and not entry.written:
        entry.versions.extend({"id": str(row["cube_id"]), "version": row["version"]} for row in rows)
