"""Domain types of export and import: the records of an NDJSON export, and what an import did.

An export is a header line, then one line per record: every cube with all its versions (`cube`), the links
between them (`link`), and the sessions with their turns (`session`). Derived columns (the search document,
the insertion sequence, the transaction id) are never exported: an import rebuilds them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, model_validator

from memcube.models.context import Role
from memcube.models.cube import (Artifact, Finite, Ident, Json, JsonObject, Kind, LinkType, Status, Strict, Tag,
                                 Text, Tier, Timestamp, Unit, check_text)

EXPORT_FORMAT = "memcube-export"
EXPORT_VERSION = 1
ImportedText = Annotated[str, AfterValidator(check_text)]
Label = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_text)]


class EmbedderRef(Strict):
    model: str
    dim: int = Field(ge=1)


class ExportHeader(Strict):
    """The first line: what the file is and which embedder made its vectors."""

    record: Literal["header"]
    format: Literal["memcube-export"]
    version: Literal[1]
    agent_id: Ident | None = None
    embedder: EmbedderRef | None = None


class CubeFields(Strict):
    """What each version of a cube records."""

    agent_id: Ident
    user_id: Ident | None = None
    session_id: Ident | None = None
    kind: Kind
    tier: Tier
    label: Label | None = None
    content: ImportedText
    data: Json = None
    tags: list[Tag] = Field(default_factory=list)
    metadata: JsonObject = Field(default_factory=dict)
    artifact: Artifact | None = None
    occurred_at: Timestamp | None = None
    valid_from: Timestamp | None = None
    valid_to: Timestamp | None = None
    importance: Unit
    confidence: Unit
    status: Status
    superseded_by: UUID | None = None
    provenance: JsonObject


class VersionRecord(CubeFields):
    version: int = Field(ge=1)
    recorded_at: Timestamp


class TrajectoryState(Strict):
    """A cube that is a trajectory: when it was recorded, and when a distillation took it (None: not yet)."""

    created_at: Timestamp
    distilled_at: Timestamp | None = None


class CubeRecord(CubeFields):
    """A cube as it is now, with every version oldest first, its vector, (for an episode) whether
    consolidation has taken it in, and (for a trajectory) its distillation."""

    record: Literal["cube"]
    id: UUID
    version: int = Field(ge=1)
    access_count: int = Field(ge=0)
    last_accessed_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp
    consolidated: bool | None = None
    trajectory: TrajectoryState | None = None
    embedding: list[Finite] | None = None
    versions: list[VersionRecord] = Field(min_length=1)

    @model_validator(mode="after")
    def _versions_complete(self) -> CubeRecord:
        numbers = [v.version for v in self.versions]
        if numbers != list(range(1, self.version + 1)):
            raise ValueError(f"versions must be 1 to {self.version} in order; got {numbers[:10]}")
        return self


class LinkRecord(Strict):
    record: Literal["link"]
    id: UUID
    source_id: UUID
    target_id: UUID
    type: LinkType
    metadata: JsonObject = Field(default_factory=dict)
    provenance: JsonObject
    created_at: Timestamp


class TurnRecord(Strict):
    turn: int = Field(ge=0)
    role: Role
    name: Ident | None = None
    cube_id: UUID


class SessionRecord(Strict):
    record: Literal["session"]
    session_id: Ident
    agent_id: Ident
    user_id: Ident | None = None
    next_turn: int = Field(ge=0)
    scratchpad: Text = ""
    created_at: Timestamp
    last_message_at: Timestamp
    turns: list[TurnRecord] = Field(default_factory=list)

    @model_validator(mode="after")
    def _turns_below_next(self) -> SessionRecord:
        if any(t.turn >= self.next_turn for t in self.turns):
            raise ValueError("every turn must be below next_turn")
        if len({t.turn for t in self.turns}) != len(self.turns):
            raise ValueError("turns must be unique")
        return self


class ImportResult(BaseModel):
    """What an import wrote (`created`) and what it found already there (`unchanged`), by record type."""

    created: dict[str, int]
    unchanged: dict[str, int]
    reembedded: int = 0


def record_type(line: dict[str, Any]) -> str | None:
    value = line.get("record")
    return value if isinstance(value, str) else None


EXPORT_TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def timestamp_text(value: datetime | None) -> str | None:
    """The canonical spelling of a time in an export: UTC, microseconds, `Z`."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime(EXPORT_TIMESTAMP)
