"""Routes of /v1/lessons: the lessons for a task, and utility back."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from memcube.lessons import feedback, serve
from memcube.models import LessonFeedback, LessonPage, LessonView
from memcube.store.lessons import StatusFilter
from services.api.deps import Conn, Reader, RuntimeDep, Writer
from services.api.params import QueryIdent, RequiredQueryIdent, QueryText

router = APIRouter(prefix="/v1/lessons", tags=["lessons"])


@router.get("", response_model=LessonPage)
def list_lessons(conn: Conn, rt: RuntimeDep, who: Reader, agent_id: RequiredQueryIdent,
                 user_id: QueryIdent = None, task: QueryText = None, status: StatusFilter = "served",
                 limit: Annotated[int, Query(ge=1, le=500)] = 10,
                 cursor: Annotated[str | None, Query(max_length=512)] = None) -> Any:
    return serve.find_lessons(conn, tenant=who.tenant, agent_id=agent_id, user_id=user_id, task=task, status=status,
                              limit=limit, cursor=cursor, embedder=rt.embedder)


@router.post("/{lesson_id}/feedback", response_model=LessonView)
def lesson_feedback(lesson_id: UUID, body: LessonFeedback, conn: Conn, rt: RuntimeDep, who: Writer) -> Any:
    return feedback.give_feedback(conn, tenant=who.tenant, actor=who.actor, lesson_id=lesson_id, feedback=body,
                                  settings=rt.settings)
