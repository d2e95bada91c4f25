"""Lessons out: the lessons of a scope for a task, ranked by how well their situation fits the task times
their utility (score = similarity × η), for context assembly and for GET /v1/lessons. Only lessons on
probation or trusted are served; retired ones are listed only when asked for."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import psycopg

from memcube.config import Settings
from memcube.embedder import Embedder
from memcube.lessons import utility
from memcube.lessons.lesson import payload, view
from memcube.models import LessonPage
from memcube.store import lessons as store
from memcube.store.cubes import to_vector
from memcube.store.lessons import StatusFilter

# Lessons read per lesson served: η reorders the nearest ones, so look a little further than k.
CANDIDATES_PER_LESSON = 4
MIN_CANDIDATES = 20


def rank(rows: Sequence[dict[str, Any]], *, k: int) -> list[tuple[dict[str, Any], float, float]]:
    """Return the best `k` of lessons carrying their `similarity` to a task, as (row, similarity, score), by
    score = similarity × η, best first (ties by id, so the order never depends on the rows' order)."""
    scored = {}
    for row in rows:
        uses, successes, _ = utility.counters(payload(row))
        similarity = float(row["similarity"])
        scored[row["id"]] = (row, similarity, utility.score(similarity, utility.utility(successes, uses)))
    return sorted(scored.values(), key=lambda item: (-item[2], str(item[0]["id"])))[:k]


def _candidates(k: int) -> int:
    return max(MIN_CANDIDATES, CANDIDATES_PER_LESSON * k)


def lessons_for_context(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                        query_vector: np.ndarray, settings: Settings) -> list[dict[str, Any]]:
    """Return up to MEMCUBE_CONTEXT_LESSONS_K served lessons of the agent (and of the user) for a query, best
    first, each row with its `score`. A failure lesson's content reads "Avoid: ...", so it shows as a warning."""
    k = settings.context_lessons_k
    if k == 0:
        return []
    rows = store.lessons_near(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, vector=query_vector,
                              k=_candidates(k), shared=True)
    return [{**row, "score": round(score, 4)} for row, _, score in rank(rows, k=k)]


def find_lessons(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None, task: str | None,
                 status: StatusFilter, limit: int, cursor: str | None, embedder: Embedder) -> LessonPage:
    """Return the lessons of the agent (and of the user): with a task, the best `limit` for it with their
    similarity and score; without one, a page of them, newest first."""
    if task is None:
        rows, next_cursor = store.list_lessons(conn, tenant=tenant, agent_id=agent_id, user_id=user_id,
                                               status=status, limit=limit, cursor=cursor)
        return LessonPage(items=[view(row) for row in rows], next_cursor=next_cursor)
    vector = to_vector(embedder.embed([task])[0])
    rows = store.lessons_near(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, vector=vector,
                              k=_candidates(limit), shared=True, status=status)
    return LessonPage(items=[view(row, similarity=round(similarity, 4)) for row, similarity, _ in
                             rank(rows, k=limit)])
