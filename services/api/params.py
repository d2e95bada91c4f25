"""Path and query parameters that name things (agents, users, sessions, labels): checked like body fields."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

from memcube.models import LABEL_PATTERN, check_filled, check_text
from memcube.store.cursor import PAGE_MAX


def _optional_text(value: str | None) -> str | None:
    return None if value is None else check_text(value)


def _optional_filled(value: str | None) -> str | None:
    return None if value is None else check_filled(check_text(value))


PathIdent = Annotated[str, Path(min_length=1, max_length=256), AfterValidator(check_text)]
RequiredQueryIdent = Annotated[str, Query(min_length=1, max_length=256), AfterValidator(check_text)]
QueryIdent = Annotated[str | None, Query(min_length=1, max_length=256), AfterValidator(_optional_text)]
RequiredQueryIdent = Annotated[str, Query(min_length=1, max_length=256), AfterValidator(check_text)]
# Free text in a query string (a task to find lessons for): like a search query, not blank.
QueryText = Annotated[str | None, Query(min_length=1, max_length=4096), AfterValidator(_optional_filled)]
PathLabel = Annotated[str, Path(pattern=LABEL_PATTERN, description="letters, digits, `_`, `.`, `-`; up to 64")]
# The cursor pages of every listing: `limit` items, resumed after `cursor` (the previous page's `next_cursor`).
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="items on the page")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")]
