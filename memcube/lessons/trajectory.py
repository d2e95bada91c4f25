"""Trajectories in: what an agent did for a task, step by step, and how it ended.

A trajectory is stored as an episodic cube (source `trajectory`): `data` holds the task, the steps, the
outcome, the score, the feedback and the lessons it used; `content` is its readable text; its embedding is
of the task, so trajectories (like lessons) are found by the situation. It is listed in `trajectories`,
where distillation finds what it has not taken yet, and the lessons it used count it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence
from uuid import UUID

import numpy as np
import psycopg

from memcube import cube
from memcube.config import Settings
from memcube.consolidation.ledger import as_array
from memcube.embedder import Embedder
from memcube.errors import TooLarge
from memcube.lessons import feedback, trigger
from memcube.lessons.lesson import view as lesson_view
from memcube.models import MemCubeCreate, StepIn, TrajectoryCreate, TrajectoryRecorded, TrajectoryView
from memcube.store import trajectories as store
from memcube.store.consolidation import ScopeKey

# How much of an observation the readable text shows (the whole of it stays in `data`).
OBSERVATION_CHARS = 500


@dataclass(frozen=True)
class Step:
    action: str
    tool: str | None = None
    thought: str | None = None
    observation: str | None = None

    def text(self) -> str:
        """The step as a lesson names it: `tool: action`."""
        return f"{self.tool}: {self.action}" if self.tool else self.action


@dataclass
class Trajectory:
    """A trajectory cube as distillation reads it."""

    id: UUID
    version: int
    task: str
    steps: list[Step]
    outcome: str
    score: float | None
    feedback: str | None
    at: datetime
    vector: np.ndarray | None
    active: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Trajectory:
        data = row.get("data") if isinstance(row.get("data"), dict) else {}
        steps = [Step(**{k: s.get(k) for k in ("action", "tool", "thought", "observation")})
                 for s in data.get("steps") or [] if isinstance(s, dict) and s.get("action")]
        return cls(id=row["id"], version=row["version"], task=str(data.get("task") or ""), steps=steps,
                   outcome=str(data.get("outcome") or ""), score=data.get("score"), feedback=data.get("feedback"),
                   at=row["occurred_at"] or row["created_at"], vector=as_array(row.get("embedding")),
                   active=row["status"] == "active" and bool(steps) and bool(data.get("task")))

    def tools(self) -> list[str]:
        return [s.tool for s in self.steps if s.tool]

    def ref(self) -> dict[str, Any]:
        return {"id": str(self.id), "version": self.version}

    def source_ref(self) -> dict[str, Any]:
        return {"type": "trajectory", "id": str(self.id), "outcome": self.outcome, "at": self.at.isoformat()}


def describe(step: Step | StepIn, *, observation_chars: int = OBSERVATION_CHARS) -> str:
    """Return one step as text: `tool: action (thought: ...) → observation`, the observation cut short."""
    line = f"{step.tool}: {step.action}" if step.tool else step.action
    if step.thought:
        line += f" (thought: {step.thought})"
    if step.observation:
        seen = step.observation
        line += " → " + (seen if len(seen) <= observation_chars else seen[:observation_chars] + "…")
    return line


def render(body: TrajectoryCreate) -> str:
    """Return a trajectory's readable text."""
    score = f" (score {body.score:g})" if body.score is not None else ""
    lines = [f"Task: {body.task}", f"Outcome: {body.outcome}{score}"]
    lines += [f"{number}. {describe(step)}" for number, step in enumerate(body.steps, start=1)]
    if body.feedback:
        lines.append(f"Feedback: {body.feedback}")
    return "\n".join(lines)


def _check_limits(body: TrajectoryCreate, settings: Settings) -> None:
    if len(body.steps) > settings.trajectory_max_steps:
        raise TooLarge(f"a trajectory has at most {settings.trajectory_max_steps} steps "
                       f"(MEMCUBE_TRAJECTORY_MAX_STEPS); got {len(body.steps)}",
                       details={"limit": settings.trajectory_max_steps, "field": "steps"})
    for index, step in enumerate(body.steps):
        size = sum(len(part or "") for part in (step.action, step.thought, step.tool, step.observation))
        if size > settings.trajectory_max_step_chars:
            raise TooLarge(f"steps[{index}] has {size} characters; a step has at most "
                           f"{settings.trajectory_max_step_chars} (MEMCUBE_TRAJECTORY_MAX_STEP_CHARS)",
                           details={"limit": settings.trajectory_max_step_chars, "field": f"steps[{index}]"})
    cube.check_content(body.task, settings, where="task")
    if body.feedback:
        cube.check_content(body.feedback, settings, where="feedback")


def record_trajectory(conn: psycopg.Connection, *, tenant: str, actor: str, body: TrajectoryCreate,
                      embedder: Embedder, settings: Settings) -> TrajectoryRecorded:
    """Store a trajectory, count a use of each lesson it names, and queue its distillation when due, all in the
    caller's transaction. Raises TooLarge over a limit and InvalidInput when `lessons_used` names a cube that is
    not a lesson of the agent (and user); then nothing is stored."""
    _check_limits(body, settings)
    used = feedback.lock_used_lessons(conn, tenant=tenant, agent_id=body.agent_id, user_id=body.user_id,
                                      lesson_ids=body.lessons_used)
    content = render(body)
    if len(content) > settings.max_content_chars:
        content = content[:settings.max_content_chars - 1] + "…"
    data = {"task": body.task, "steps": [s.model_dump(exclude_none=True) for s in body.steps],
            "outcome": body.outcome, "score": body.score, "feedback": body.feedback,
            "lessons_used": [str(i) for i in dict.fromkeys(body.lessons_used)]}
    item = MemCubeCreate(agent_id=body.agent_id, user_id=body.user_id, session_id=body.session_id, kind="episodic",
                         content=content, data={k: v for k, v in data.items() if v is not None},
                         tags=["trajectory", body.outcome], occurred_at=body.occurred_at,
                         embedding=embedder.embed([body.task])[0])
    [row] = cube.create_cubes(conn, tenant=tenant, actor=actor, items=[item], embedder=embedder, settings=settings,
                              source="trajectory", extra_provenance=[{"reason": f"{body.outcome} trajectory"}])
    scope = ScopeKey(tenant, body.agent_id, body.user_id)
    store.insert_trajectory(conn, cube_id=row["id"], scope=scope)
    lessons = [feedback.record_outcome(conn, tenant=tenant, lesson=lesson, outcome=body.outcome, source="trajectory",
                                       actor=actor, reason=f"used in {body.outcome} trajectory {row['id']}",
                                       settings=settings) for lesson in used]
    job = trigger.note_trajectory(conn, scope, settings=settings)
    return TrajectoryRecorded(**view(row).model_dump(), lessons=[lesson_view(lesson) for lesson in lessons],
                              job_id=job["id"] if job else None)


def view(row: dict[str, Any]) -> TrajectoryView:
    """Return the API view of a trajectory cube (with `distilled_at` when the row carries it)."""
    data = row.get("data") if isinstance(row.get("data"), dict) else {}
    return TrajectoryView(id=row["id"], version=row["version"], agent_id=row["agent_id"], user_id=row["user_id"],
                          session_id=row["session_id"], task=str(data.get("task") or ""),
                          steps=data.get("steps") or [], outcome=data.get("outcome") or "partial",
                          score=data.get("score"), feedback=data.get("feedback"),
                          lessons_used=data.get("lessons_used") or [], status=row["status"],
                          occurred_at=row["occurred_at"], created_at=row["created_at"],
                          distilled_at=row.get("distilled_at"))


def list_trajectories(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None, limit: int,
                      cursor: str | None) -> tuple[list[TrajectoryView], str | None]:
    """Return one page of an agent's trajectories (of one user, if given), newest first, and the next cursor."""
    rows, next_cursor = store.list_trajectories(conn, tenant=tenant, agent_id=agent_id, user_id=user_id,
                                                limit=limit, cursor=cursor)
    return [view(row) for row in rows], next_cursor


def load(rows: Sequence[dict[str, Any]]) -> list[Trajectory]:
    """Return the trajectories of store rows, in order."""
    return [Trajectory.from_row(row) for row in rows]
