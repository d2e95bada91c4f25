"""Domain types of procedural memory: trajectories in, lessons out, utility back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from memcube.models.context import Reason
from memcube.models.cube import Filled, Ident, Provenance, Strict, Text, Timestamp, Unit, check_filled, check_text

Outcome = Literal["success", "failure", "partial"]
Polarity = Literal["success", "failure", "comparative"]
# probationary: fewer than MEMCUBE_LESSON_MIN_USES uses; trusted: past probation with enough utility;
# retired: past probation below MEMCUBE_LESSON_RETIRE_BELOW, kept for audit and never served.
LessonStatus = Literal["probationary", "trusted", "retired"]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
ToolName = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_text), AfterValidator(check_filled)]


class StepIn(Strict):
    """One step of a trajectory: what the agent did, and optionally why, with which tool, and what it saw."""

    action: Filled
    thought: Text | None = None
    tool: ToolName | None = None
    observation: Text | None = None


class TrajectoryCreate(Strict):
    """The body of `POST /v1/trajectories`."""

    agent_id: Ident
    user_id: Ident | None = None
    session_id: Ident | None = None
    task: Filled
    steps: list[StepIn] = Field(min_length=1)
    outcome: Outcome
    score: Unit | None = None
    feedback: Text | None = None
    lessons_used: list[UUID] = Field(default_factory=list, max_length=100)
    occurred_at: Timestamp | None = None


class Step(BaseModel):
    action: str
    thought: str | None = None
    tool: str | None = None
    observation: str | None = None


class TrajectoryView(BaseModel):
    """A stored trajectory: an episodic cube (source `trajectory`) whose `data` holds these fields."""

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


class TrajectoryPage(BaseModel):
    items: list[TrajectoryView]
    next_cursor: str | None


class LessonView(BaseModel):
    """A lesson: a procedural cube with its structured fields, its utility η = (successes + 1) / (uses + 2)
    and its status. `similarity` (to the task asked about) and `score` (similarity × η) come with a task."""

    id: UUID
    version: int
    agent_id: str
    user_id: str | None = None
    polarity: Polarity | None = None
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
    status: LessonStatus
    similarity: float | None = None
    score: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    provenance: Provenance


class LessonPage(BaseModel):
    items: list[LessonView]
    next_cursor: str | None = None


class TrajectoryRecorded(TrajectoryView):
    """The answer to `POST /v1/trajectories`: the trajectory, the lessons it reported on (after the update),
    and the distillation it queued, if any."""

    lessons: list[LessonView] = Field(default_factory=list)
    job_id: UUID | None = None


class LessonFeedback(Strict):
    """The body of `POST /v1/lessons/{id}/feedback`: how it went when the lesson was followed."""

    outcome: Outcome
    note: Reason | None = None
