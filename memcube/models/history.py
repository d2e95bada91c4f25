"""Domain types of a cube's past: what each version changed, and the lineage between cubes."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from memcube.models.cube import Kind, Status, Tier


class FieldChange(BaseModel):
    """One field whose value differs between two versions."""

    field: str
    before: Any = None
    after: Any = None


class TextOp(BaseModel):
    """A run of words of the content: kept, inserted or deleted."""

    op: Literal["equal", "insert", "delete"]
    text: str


class VersionDiff(BaseModel):
    """What version `version` changed against the one before it (`previous` None: it is the first)."""

    version: int
    previous: int | None
    changes: list[FieldChange]
    content: list[TextOp]


class LineageNode(BaseModel):
    """A cube in the lineage of another, and how they are related: the `version` derived from (when the
    provenance names it), `via` provenance or a `derived_from` link; its own lineage in `next`."""

    id: UUID
    version: int | None = None
    via: list[Literal["provenance", "link"]]
    found: bool = True
    kind: Kind | None = None
    tier: Tier | None = None
    status: Status | None = None
    content: str = ""
    next: list[LineageNode] = Field(default_factory=list)


class Lineage(BaseModel):
    """What a cube was derived from (`ancestors`) and what was derived from it (`descendants`), a few levels deep;
    `truncated` when a level held more than could be shown."""

    id: UUID
    ancestors: list[LineageNode]
    descendants: list[LineageNode]
    truncated: bool = False
