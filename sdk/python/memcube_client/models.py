"""What the service answers, as typed models. Unknown fields are kept (a newer service may add some)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

Kind = Literal["episodic", "semantic", "procedural", "summary", "core", "artifact"]
Tier = Literal["core", "archival"]
Status = Literal["active", "superseded", "forgotten", "quarantined"]
LinkType = Literal["related", "supports", "contradicts", "part_of", "derived_from"]
Role = Literal["system", "user", "assistant", "tool"]
JobState = Literal["queued", "running", "succeeded", "failed"]


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Page(Model, Generic[T]):
    """One page of a listing; `next_cursor` is None on the last."""

    items: list[T]
    next_cursor: str | None = None


class VersionRef(Model):
    id: UUID
    version: int | None = None


class Provenance(Model):
    source: str = "api"
    actor: str | None = None
    derived_from: list[VersionRef] = Field(default_factory=list)
    source_refs: list[Any] = Field(default_factory=list)
    model: str | None = None
    prompt_version: str | None = None
    reason: str | None = None
    job_id: str | None = None
    origin: str | None = None  # who wrote the content, when said or when quarantined
    poisoning: dict[str, Any] | None = None  # why a write was quarantined: score, threshold, origin, signals


class Artifact(Model):
    uri: str
    format: str
    checksum: str


class CubeState(Model):
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
    """A memory as stored now."""

    access_count: int = 0
    last_accessed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Version(CubeState):
    """One immutable version of a memory."""

    recorded_at: datetime


class MemoryInput(Model):
    """One memory to create (`memories.create_batch`); the same fields as `memories.create`'s arguments."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str
    content: str
    user_id: str | None = None
    session_id: str | None = None
    kind: Kind = "episodic"
    tier: Tier = "archival"
    data: Any = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    artifact: Artifact | None = None
    occurred_at: datetime | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    importance: float = 0.5
    confidence: float = 1.0
    embedding: list[float] | None = None
    origin: str | None = None  # user, system, agent, tool, document, web, import: its trust sets the screening


class Link(Model):
    id: UUID
    source_id: UUID
    target_id: UUID
    type: LinkType
    metadata: dict[str, Any] = Field(default_factory=dict)
    provenance: Provenance
    created_at: datetime


class Fused(Model):
    memory: MemCube
    superseded: list[MemCube]


class Explain(Model):
    plan: str
    vector_rank: int | None = None
    vector_similarity: float | None = None
    text_rank: int | None = None
    text_score: float | None = None
    text_own: bool = False
    rrf: float
    lent: float = 0.0
    relevance: float
    recency: float
    importance: float


class CubeRef(Model):
    id: UUID
    kind: Kind
    content: str
    occurred_at: datetime | None = None


class Hit(Model):
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
    derived: list[CubeRef] = Field(default_factory=list)
    evidence: list[CubeRef] = Field(default_factory=list)
    explain: Explain | None = None


class SearchResult(Model):
    hits: list[Hit]
    plan: str


class MessageInput(Model):
    """One message to append to a session."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str
    name: str | None = None
    created_at: datetime | None = None


class Message(Model):
    id: UUID
    version: int = 1
    turn: int
    role: Role
    name: str | None = None
    content: str
    created_at: datetime
    tokens: int


class QuarantinedMessage(Model):
    """A message held by the poisoning defence: stored, never in the window, search or context."""

    id: UUID
    turn: int
    reason: str
    poisoning: dict[str, Any]


class Appended(Model):
    session_id: str
    agent_id: str
    user_id: str | None = None
    messages: list[Message]
    quarantined: list[QuarantinedMessage] = Field(default_factory=list)


class WorkingMemory(Model):
    session_id: str
    agent_id: str
    user_id: str | None = None
    messages: list[Message]
    scratchpad: str
    tokens: int
    turns: int
    rebuilt: bool


class Scratchpad(Model):
    session_id: str
    agent_id: str
    user_id: str | None = None
    content: str
    tokens: int


class SessionSummary(Model):
    session_id: str
    agent_id: str
    user_id: str | None = None
    turns: int
    created_at: datetime
    last_message_at: datetime


class CoreItem(Model):
    id: UUID
    label: str | None = None
    user_id: str | None = None
    kind: Kind
    content: str
    tokens: int
    importance: float
    version: int
    updated_at: datetime | None = None


class CoreMemory(Model):
    agent_id: str
    user_id: str | None = None
    budget_tokens: int
    tokens: int
    blocks: list[CoreItem]
    pageable: list[CoreItem]


class PagingMove(Model):
    id: UUID
    tier: Tier
    version: int
    value: float
    tokens: int
    reason: str


class CoreBlockWritten(Model):
    block: MemCube
    tokens: int
    paging: list[PagingMove]


class ContextItem(Model):
    id: UUID | None = None
    kind: str
    content: str
    tokens: int
    label: str | None = None
    score: float | None = None
    turn: int | None = None
    role: Role | None = None


class ContextSection(Model):
    text: str
    tokens: int
    items: list[ContextItem]
    dropped: int


class Context(Model):
    """An assembled context: `text` goes into the prompt; `sections` say what it holds."""

    agent_id: str
    user_id: str | None = None
    session_id: str | None = None
    budget: int
    tokens: int
    text: str
    sections: dict[str, ContextSection]


class AgentSummary(Model):
    agent_id: str
    memories: int
    by_kind: dict[str, int]
    by_tier: dict[str, int]
    by_status: dict[str, int]
    users: int
    sessions: int
    last_activity_at: datetime


class AuditVersion(Model):
    id: UUID
    version: int


class AuditEntry(Model):
    """One change request in the audit trail: who, what (the versions it wrote), when, and its outcome."""

    id: int
    at: datetime
    tenant: str | None = None
    key_id: UUID | None = None
    key_name: str | None = None
    actor: str | None = None
    request_id: str
    method: str
    route: str
    path: str
    status: int
    outcome: str
    cubes: list[AuditVersion] = Field(default_factory=list)


class Job(Model):
    id: UUID
    kind: str
    agent_id: str
    user_id: str | None = None
    trigger: str
    state: JobState
    engine: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    llm_calls: int = 0
    error: str | None = None
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


class JobAccepted(Model):
    job_id: UUID
    state: JobState
    existing: bool


class ApiKey(Model):
    id: UUID
    tenant: str
    name: str
    scopes: list[str]
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKey):
    token: str


class ImportResult(Model):
    """What an import wrote: counts of records created and of those already present (unchanged)."""

    created: dict[str, int]
    unchanged: dict[str, int]
    reembedded: int = 0


Outcome = Literal["success", "failure", "partial"]


class StepInput(Model):
    """One step of a trajectory to record."""

    model_config = ConfigDict(extra="forbid")

    action: str
    thought: str | None = None
    tool: str | None = None
    observation: str | None = None


class Step(Model):
    action: str
    thought: str | None = None
    tool: str | None = None
    observation: str | None = None


class LessonView(Model):
    """A lesson (a procedural memory) with its utility η = (successes + 1) / (uses + 2) and status."""

    id: UUID
    version: int
    agent_id: str
    user_id: str | None = None
    polarity: str | None = None
    when_to_use: str
    steps: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    avoid: str | None = None
    instead: str | None = None
    difference: str | None = None
    content: str
    uses: int
    successes: int
    failures: int
    utility: float
    status: str
    similarity: float | None = None
    score: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    provenance: Provenance


class TrajectoryView(Model):
    """A recorded trajectory: what an agent did for a task, and how it went."""

    id: UUID
    version: int
    agent_id: str
    user_id: str | None = None
    session_id: str | None = None
    task: str
    steps: list[Step]
    outcome: Outcome
    score: float | None = None
    feedback: str | None = None
    lessons_used: list[UUID] = Field(default_factory=list)
    status: str
    occurred_at: datetime | None = None
    created_at: datetime
    distilled_at: datetime | None = None


class TrajectoryRecorded(TrajectoryView):
    """A trajectory just recorded, the lessons it reported on, and the distillation it queued, if any."""

    lessons: list[LessonView] = Field(default_factory=list)
    job_id: UUID | None = None
