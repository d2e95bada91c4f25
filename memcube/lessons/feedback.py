"""Utility back: a trajectory that names the lessons it used, or feedback on one lesson, counts a use with its
outcome. Each is a new version of the lesson with its reason; a lesson that retires is quarantined in that
same version, so search and context never serve it again, and its history stays readable."""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

import psycopg

from memcube import cube
from memcube.config import Settings
from memcube.errors import Conflict, InvalidInput, NotFound
from memcube.lessons import utility
from memcube.lessons.lesson import payload, status_of, view
from memcube.models import LessonFeedback, LessonView
from memcube.store import cubes as cube_store
from memcube.store import lessons as lesson_store


def record_outcome(conn: psycopg.Connection, *, tenant: str, lesson: dict[str, Any], outcome: str, source: str,
                   actor: str, reason: str, settings: Settings) -> dict[str, Any]:
    """Count one use of a lesson (its row locked by the caller) as a new version; return the lesson. Raises
    Conflict for a lesson that is forgotten or superseded."""
    if lesson["status"] not in ("active", "quarantined"):
        raise Conflict(f"lesson {lesson['id']} is {lesson['status']} and takes no outcomes",
                       details={"status": lesson["status"]})
    data = utility.with_outcome(payload(lesson), outcome, min_uses=settings.lesson_min_uses,
                                retire_below=settings.lesson_retire_below)
    changes: dict[str, Any] = {"data": data}
    if data["status"] == "retired" and status_of(lesson) != "retired":
        changes["status"] = "quarantined"
        eta = utility.utility(data["successes"], data["uses"])
        reason += (f"; retired: utility {eta:.2f} is below {settings.lesson_retire_below} "
                   f"(MEMCUBE_LESSON_RETIRE_BELOW) after {data['uses']} uses")
    # A use changes the counters, not what the lesson was learned from: every version keeps the lineage.
    before = lesson.get("provenance") or {}
    lineage = {key: before[key] for key in ("derived_from", "source_refs") if before.get(key)}
    return cube_store.update_cube(conn, tenant=tenant, cube_id=lesson["id"], changes=changes,
                                  provenance=cube.provenance(source, actor, reason=reason, **lineage),
                                  expected_version=lesson["version"])


def lock_used_lessons(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                      lesson_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return the lessons a trajectory says it used, locked; raises InvalidInput naming the first id that is not
    a lesson this agent (and user) is served: another agent's, another user's, not procedural, or gone."""
    ids = list(dict.fromkeys(lesson_ids))
    rows = {row["id"]: row for row in lesson_store.lock_lessons(conn, tenant=tenant, cube_ids=ids)}
    for index, lesson_id in enumerate(lesson_ids):
        row = rows.get(lesson_id)
        if row is None or row["agent_id"] != agent_id or row["user_id"] not in (None, user_id) \
                or row["status"] not in ("active", "quarantined"):
            whose = f"agent {agent_id!r}" + (f" and user {user_id!r}" if user_id else "")
            raise InvalidInput(f"lessons_used[{index}]: {lesson_id} is not a lesson of {whose}",
                               details={"field": f"lessons_used[{index}]", "id": str(lesson_id)})
    return [rows[i] for i in ids]


def give_feedback(conn: psycopg.Connection, *, tenant: str, actor: str, lesson_id: UUID, feedback: LessonFeedback,
                  settings: Settings) -> LessonView:
    """Count one use of a lesson with the outcome a client reports; return the lesson. Raises NotFound for a
    cube that is not a lesson of the tenant, Conflict for a forgotten one."""
    rows = lesson_store.lock_lessons(conn, tenant=tenant, cube_ids=[lesson_id])
    if not rows:
        raise NotFound(f"lesson {lesson_id} not found")
    reason = f"feedback: {feedback.outcome}" + (f" ({feedback.note})" if feedback.note else "")
    row = record_outcome(conn, tenant=tenant, lesson=rows[0], outcome=feedback.outcome, source="api", actor=actor,
                         reason=reason, settings=settings)
    return view(row)
