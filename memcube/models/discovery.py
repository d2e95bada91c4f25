"""Domain types of discovery: what a tenant holds (agents, sessions, jobs) in cursor pages, and its overview."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from memcube.models.cube import Ident, Kind, Status, Tag, Tier, Timestamp
from memcube.models.job import JobState

T = TypeVar("T")

# Job kinds are plain names (`consolidate`, ...): a filter on one that does not exist matches nothing.
JobKind = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z_]*$")]


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass `next_cursor` back as `cursor` for the next (None: this was the last)."""

    items: list[T]
    next_cursor: str | None


class CubeFilter(BaseModel):
    """What `GET /v1/memories` (and the dashboard's memory browser) may filter on; unset means any."""

    agent_id: Ident | None = None
    user_id: Ident | None = None
    session_id: Ident | None = None
    kind: Kind | None = None
    tier: Tier | None = None
    status: Status | Literal["any"] = "active"
    tag: Tag | None = None
    since: Timestamp | None = Field(default=None, description="created at or after this time")
    until: Timestamp | None = Field(default=None, description="created before this time")


class JobFilter(BaseModel):
    """What `GET /v1/jobs` may filter on; unset means any."""

    agent_id: Ident | None = None
    state: JobState | None = None
    kind: JobKind | None = None


class AgentSummary(BaseModel):
    """An agent of the tenant: its memories counted by kind, tier and status, its users and sessions."""

    agent_id: str
    memories: int
    by_kind: dict[str, int]
    by_tier: dict[str, int]
    by_status: dict[str, int]
    users: int
    sessions: int
    last_activity_at: datetime


class SessionSummary(BaseModel):
    """A session: its owner, how many turns it has had, when it started and last heard a message."""

    session_id: str
    agent_id: str
    user_id: str | None = None
    turns: int
    created_at: datetime
    last_message_at: datetime


class DayCount(BaseModel):
    day: date
    count: int
    # For memories: how many the tenant held at the end of the day (every status).
    total: int | None = None


class DayJobs(BaseModel):
    day: date
    by_state: dict[str, int]


class TokenUsage(BaseModel):
    """LLM usage of a tenant's jobs, as the endpoint reported it."""

    jobs: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    llm_calls: int = 0


class Overview(BaseModel):
    """A tenant at a glance: its memories by kind, tier and status, growth and jobs over the last days."""

    tenant: str
    memories: int
    by_kind: dict[str, int]
    by_tier: dict[str, int]
    by_status: dict[str, int]
    agents: int
    sessions: int
    days: int
    growth: list[DayCount]
    jobs_per_day: list[DayJobs]
    tokens_total: TokenUsage
    tokens_recent: TokenUsage

