"""Domain types of virtual context: sessions and working memory, core blocks, paging, context assembly."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from memcube.models.cube import Kind, Tier, check_text, Filled, Ident, JsonObject, Query, Text, Timestamp, Strict, MemCube


Role = Literal["system", "user", "assistant", "tool"]
# Core block labels: short names (persona, human, project-notes, ...) that read well in a path.
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Reason = Annotated[str, Field(max_length=1000), AfterValidator(check_text)]


class MessageIn(Strict):
    """One message of `POST /v1/sessions/{session_id}/messages`."""

    role: Role
    content: Filled
    name: Ident | None = None
    created_at: Timestamp | None = None


class MessageAppend(Strict):
    """The body of `POST /v1/sessions/{session_id}/messages`: a session belongs to one agent and optional user."""

    agent_id: Ident
    user_id: Ident | None = None
    messages: list[MessageIn] = Field(min_length=1)


class Message(BaseModel):
    """A message of a session: its turn, and the episodic cube that holds it durably."""

    id: UUID
    version: int = 1
    turn: int
    role: Role
    name: str | None = None
    content: str
    created_at: datetime
    tokens: int


class QuarantinedMessage(BaseModel):
    """A message stored `quarantined` (poisoning defence): kept, but never in the window, search or context."""

    id: UUID
    turn: int
    reason: str
    poisoning: dict


class Appended(BaseModel):
    session_id: str
    agent_id: str
    user_id: str | None = None
    messages: list[Message]
    quarantined: list[QuarantinedMessage] = Field(default_factory=list)


class WorkingMemory(BaseModel):
    """A session's working window (oldest first) and scratchpad."""

    session_id: str
    agent_id: str
    user_id: str | None = None
    messages: list[Message]
    scratchpad: str
    tokens: int
    turns: int
    rebuilt: bool


class ScratchpadPut(Strict):
    """The body of `PUT /v1/sessions/{session_id}/scratchpad`; empty content clears it."""

    content: Text
    agent_id: Ident | None = None


class Scratchpad(BaseModel):
    session_id: str
    agent_id: str
    user_id: str | None = None
    content: str
    tokens: int


class CoreBlockPut(Strict):
    """The body of `PUT /v1/agents/{agent_id}/core/{label}`."""

    content: Filled
    metadata: JsonObject | None = None
    reason: Reason | None = None


class CoreItem(BaseModel):
    """A cube of the core tier: a labelled block (pinned) or a cube paged in (pageable)."""

    id: UUID
    label: str | None = None
    user_id: str | None = None
    kind: Kind
    content: str
    tokens: int
    importance: float
    version: int
    updated_at: datetime | None = None


class CoreMemory(BaseModel):
    agent_id: str
    user_id: str | None = None
    budget_tokens: int
    tokens: int
    blocks: list[CoreItem]
    pageable: list[CoreItem]


class PagingMove(BaseModel):
    """One move between tiers, written as a new version with source `paging`."""

    id: UUID
    tier: Tier
    version: int
    value: float
    tokens: int
    reason: str


class CoreBlockWritten(BaseModel):
    block: MemCube
    tokens: int
    paging: list[PagingMove]


class ContextRequest(Strict):
    """The body of `POST /v1/context`."""

    agent_id: Ident
    user_id: Ident | None = None
    session_id: Ident | None = None
    query: Query
    budget: int = Field(ge=1, le=1_000_000)


class ContextItem(BaseModel):
    """What one line of a context section came from."""

    id: UUID | None = None
    kind: str
    content: str
    tokens: int
    label: str | None = None
    score: float | None = None
    turn: int | None = None
    role: Role | None = None


class ContextSection(BaseModel):
    text: str
    tokens: int
    items: list[ContextItem]
    dropped: int


class Context(BaseModel):
    """An assembled context: sections in order (core, lessons, recalled, working) and the whole text."""

    agent_id: str
    user_id: str | None = None
    session_id: str | None = None
    budget: int
    tokens: int
    text: str
    sections: dict[str, ContextSection]
