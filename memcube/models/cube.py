"""Domain types: what a MemCube is, what creates and changes one, and what search returns."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)

Kind = Literal["episodic", "semantic", "procedural", "summary", "core", "artifact"]
Tier = Literal["core", "archival"]
Status = Literal["active", "superseded", "forgotten", "quarantined"]
Source = Literal["api", "message", "trajectory", "consolidation", "distillation", "paging", "import"]
LinkType = Literal["related", "supports", "contradicts", "part_of", "derived_from"]
Scope = Literal["read", "write", "admin"]
# Who wrote a memory's content (memcube/poisoning.py: its trust sets how readily it is quarantined).
Origin = Literal["user", "system", "agent", "import", "tool", "document", "web", "unknown"]

KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
TIERS: tuple[str, ...] = Tier.__args__  # type: ignore[attr-defined]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]


def check_text(value: str) -> str:
    """Reject text PostgreSQL cannot store: NUL characters and lone UTF-16 surrogates."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return value


def check_json(value: Any, depth: int = 0) -> Any:
    """Apply check_text to every key and string inside a JSON value; bound the nesting depth."""
    if depth > 32:
        raise ValueError("JSON nested deeper than 32 levels")
    if isinstance(value, str):
        return check_text(value)
    if isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key))
            check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, depth + 1)
    elif isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError("JSON numbers must be finite")
    return value


def as_utc(value: datetime | None) -> datetime | None:
    """Read a naive datetime as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def check_filled(value: str) -> str:
    """Refuse text that is empty or only whitespace."""
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(check_text)]
# Text that must say something: not empty, not only whitespace.
Filled = Annotated[str, AfterValidator(check_text), AfterValidator(check_filled)]
Query = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(check_text), AfterValidator(check_filled)]
Ident = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_text)]
Tag = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(check_text)]
Json = Annotated[Any, AfterValidator(check_json)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Timestamp = Annotated[datetime, AfterValidator(as_utc)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionRef(Strict):
    id: UUID
    version: int | None = None


class Provenance(BaseModel):
    """Where a version came from: source, actor, lineage, and the model when an LLM made it."""

    model_config = ConfigDict(extra="allow")

    source: Source = "api"
    actor: str | None = None
    derived_from: list[VersionRef] = Field(default_factory=list)
    source_refs: list[Json] = Field(default_factory=list)
    model: str | None = None
    prompt_version: str | None = None
    reason: str | None = None
    job_id: str | None = None
    # Who wrote the content, when the writer said so or it was quarantined; and why it was (poisoning.Verdict).
    origin: str | None = None
    poisoning: dict[str, Any] | None = None


class Artifact(Strict):
    """An activation or parametric memory kept by reference."""

    uri: Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(check_text)]
    format: Annotated[str, Field(min_length=1, max_length=128), AfterValidator(check_text)]
    checksum: Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_text)]


class MemCubeCreate(Strict):
    """The body of `POST /v1/memories` and of each batch item."""

    agent_id: Ident
    user_id: Ident | None = None
    session_id: Ident | None = None
    kind: Kind = "episodic"
    tier: Tier = "archival"
    content: Text
    data: Json = None
    tags: list[Tag] = Field(default_factory=list)
    metadata: JsonObject = Field(default_factory=dict)
    artifact: Artifact | None = None
    occurred_at: Timestamp | None = None
    valid_from: Timestamp | None = None
    valid_to: Timestamp | None = None
    importance: Unit = 0.5
    confidence: Unit = 1.0
    embedding: list[Finite] | None = None
    # Who wrote the content: its trust sets how readily the write is quarantined (README, "Poisoning defence").
    origin: Origin | None = None

    @field_validator("content")
    @classmethod
    def _content_present(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip() and info.data.get("kind") != "artifact":
            raise ValueError("content must not be empty")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MemCubeCreate:
        if self.kind == "artifact" and self.artifact is None:
            raise ValueError("an artifact cube needs `artifact` (uri, format, checksum)")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from")
        return self


NOT_NULL_FIELDS = frozenset({"content", "tags", "metadata", "kind", "tier", "status", "importance", "confidence"})


class MemCubePatch(Strict):
    """The body of `PATCH /v1/memories/{id}`: only the fields given change."""

    content: Filled | None = None
    data: Json = None
    tags: list[Tag] | None = None
    metadata: JsonObject | None = None
    kind: Kind | None = None
    tier: Tier | None = None
    status: Literal["active", "quarantined"] | None = None
    artifact: Artifact | None = None
    occurred_at: Timestamp | None = None
    valid_from: Timestamp | None = None
    valid_to: Timestamp | None = None
    importance: Unit | None = None
    confidence: Unit | None = None
    reason: Annotated[str, Field(max_length=1000), AfterValidator(check_text)] | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> MemCubePatch:
        # `null` for a field every version has would reach the database as a missing value.
        nulled = sorted(k for k in self.model_fields_set & NOT_NULL_FIELDS if getattr(self, k) is None)
        if nulled:
            raise ValueError(f"{', '.join(nulled)} cannot be null: leave a field out to keep it")
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields the client set, except the reason."""
        return {k: getattr(self, k) for k in self.model_fields_set if k != "reason"}


class CubeState(BaseModel):
    """What every version of a cube records (the current row and each history row alike)."""

    id: UUID
    version: int
    tenant: str
    agent_id: str
    user_id: str | None = None
    session_id: str | None = None
    kind: Kind
    tier: Tier
    label: str | None = None
    content: str
    data: Any = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    artifact: Artifact | None = None
    occurred_at: datetime | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    importance: float
    confidence: float
    status: Status
    superseded_by: UUID | None = None
    provenance: Provenance


class MemCube(CubeState):
    """A cube as stored now, with what is not versioned: its access statistics and record times."""

    access_count: int = 0
    last_accessed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Erased(MemCube):
    """The answer of an erasure: the erased cube's tombstone, and what else the erasure touched."""

    erased: list[UUID] = Field(description="every cube erased: this one, then those derived from it")
    windows_scrubbed: int = Field(description="session windows in Redis the erased messages were removed from")
    search_documents_refreshed: int = Field(
        description="search documents of other turns rewritten because they held the erased words")


class Version(CubeState):
    """One immutable row of a cube's history."""

    recorded_at: datetime


class Link(BaseModel):
    id: UUID
    source_id: UUID
    target_id: UUID
    type: LinkType
    metadata: dict[str, Any] = Field(default_factory=dict)
    provenance: Provenance
    created_at: datetime


class LinkCreate(Strict):
    target_id: UUID
    type: LinkType = "related"
    metadata: JsonObject = Field(default_factory=dict)


class FuseRequest(Strict):
    """Merge several cubes of one scope into a new one; the sources become superseded."""

    ids: list[UUID] = Field(min_length=2, max_length=100)
    content: Text | None = None
    kind: Kind | None = None
    tags: list[Tag] | None = None
    metadata: JsonObject | None = None
    importance: Unit | None = None
    reason: Annotated[str, Field(max_length=1000), AfterValidator(check_text)] | None = None


class SearchRequest(Strict):
    """The body of `POST /v1/search`."""

    agent_id: Ident
    user_id: Ident | None = None
    session_id: Ident | None = None
    query: Query
    k: int = Field(default=10, ge=1)
    kinds: list[Kind] | None = None
    tiers: list[Tier] | None = None
    tags: list[Tag] | None = None
    statuses: list[Status] | None = None
    as_of: Timestamp | None = None
    include_shared: bool = False
    # How memories consolidation derived from episodes take part: "evidence" (the default when `kinds` is not
    # given) lets a derived fact stand for its episodes, which are returned with it in `derived`; "hits" returns
    # derived memories as hits of their own, each with its `evidence` listed.
    derived: Literal["evidence", "hits"] | None = None
    explain: bool = False


class Explain(BaseModel):
    plan: str
    vector_rank: int | None = None
    vector_similarity: float | None = None
    text_rank: int | None = None
    text_score: float | None = None
    # Whether the memory's own words matched the query (a conversation turn also matches by its neighbours').
    text_own: bool = False
    rrf: float
    # The part of rrf lent by derived memories that stand for this one.
    lent: float = 0.0
    relevance: float
    recency: float
    importance: float


class CubeRef(BaseModel):
    """Another memory a hit points to: a derived fact that led to it, or the evidence a derived hit rests on."""

    id: UUID
    kind: Kind
    content: str
    occurred_at: datetime | None = None


class Hit(BaseModel):
    id: UUID
    content: str
    score: float
    kind: Kind
    tier: Tier
    status: Status
    agent_id: str
    user_id: str | None = None
    session_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    importance: float
    version: int
    created_at: datetime
    # Memories derived from this one (consolidated facts) that matched the query.
    derived: list[CubeRef] = Field(default_factory=list)
    # For a derived hit (a fact, a summary, a lesson, a fusion): the active memories it was derived from (20 at most).
    evidence: list[CubeRef] = Field(default_factory=list)
    explain: Explain | None = None


class Principal(BaseModel):
    """Who is calling: the tenant and scopes of an API key."""

    key_id: UUID | None
    tenant: str
    scopes: frozenset[str]
    superuser: bool = False
    # The key's name when it was looked up (for the audit trail); None for the admin token.
    key_name: str | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}" if self.key_id else "admin-token"


class ApiKeyCreate(Strict):
    tenant: Ident
    scopes: list[Scope] = Field(min_length=1)
    name: Annotated[str, Field(max_length=200), AfterValidator(check_text)] = ""


class ApiKey(BaseModel):
    id: UUID
    tenant: str
    name: str
    scopes: list[str]
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKey):
    token: str
