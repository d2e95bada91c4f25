"""Domain types of background work: jobs, and requests for consolidation and distillation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from memcube.models.cube import Ident, Strict


JobState = Literal["queued", "running", "succeeded", "failed"]
JobTrigger = Literal["api", "episodes", "trajectories", "idle", "schedule"]
Engine = Literal["heuristic", "llm"]
# What a request may ask for: an engine, or `auto` (the configured one, MEMCUBE_CONSOLIDATE_ENGINE).
EngineChoice = Literal["auto", "heuristic", "llm"]
Action = Literal["add", "update", "supersede", "unchanged"]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]


class ConsolidateRequest(Strict):
    """The body of `POST /v1/agents/{agent_id}/consolidate`: one user of the agent, or all of them; an engine,
    or the configured one (`auto`, or no engine)."""

    user_id: Ident | None = None
    engine: EngineChoice | None = None


class DistillRequest(Strict):
    """The body of `POST /v1/agents/{agent_id}/distill`: one user of the agent, or all of them; an engine, or
    the configured one (`auto`, or no engine)."""

    user_id: Ident | None = None
    engine: EngineChoice | None = None


class Job(BaseModel):
    """Background work and how it went; counts are added up as each scope's results commit."""

    id: UUID
    kind: str
    agent_id: str
    user_id: str | None = None
    trigger: JobTrigger
    state: JobState
    engine: Engine | None = None
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


class JobAccepted(BaseModel):
    """The answer to a request for background work: the job to watch, new or already queued."""

    job_id: UUID
    state: JobState
    existing: bool
