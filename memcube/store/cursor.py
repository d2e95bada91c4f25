"""Opaque cursors of the listings: the sort key of the last row of a page, which the next page starts after."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from memcube.errors import InvalidInput

# How each part of a sort key is written into a cursor and read back.
_READERS = {datetime: datetime.fromisoformat, UUID: UUID, str: str}


def encode_cursor(*key: datetime | UUID | str) -> str:
    """Return an opaque cursor that resumes a listing after the row with this sort key."""
    raw = json.dumps([part.isoformat() if isinstance(part, datetime) else str(part) for part in key])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """Return the sort key a cursor encodes, as `types`; raises InvalidInput on a cursor this service did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(parts, list) or len(parts) != len(types) or not all(isinstance(p, str) for p in parts):
            raise ValueError("wrong shape")
        key = tuple(_READERS[t](part) for t, part in zip(types, parts))
        if "\x00" in "".join(parts):
            raise ValueError("NUL in a cursor")
        return key
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not valid; pass back `next_cursor` unchanged") from exc


PAGE_MAX = 500


def check_limit(limit: int) -> None:
    """Raise InvalidInput unless 1 <= limit <= PAGE_MAX (the most items one page holds)."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_MAX}; got {limit}", details={"limit": PAGE_MAX})
