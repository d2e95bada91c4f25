"""SQL for lessons (procedural cubes): the ones nearest a query, for context assembly."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from memcube.store.cubes import CUBE_COLUMNS

# Exact distances over the scope's lessons, through the partial index on procedural cubes: a scope holds
# few lessons among many cubes, and the HNSW index would have to wade through the rest to find them.
_QUERY = (
    "SELECT {columns}, embedding <=> %(q)s AS distance FROM memcubes "
    "WHERE tenant = %(tenant)s AND agent_id = %(agent_id)s AND {scope} "
    "AND kind = 'procedural' AND status = 'active' AND embedding IS NOT NULL "
    "ORDER BY distance, id LIMIT %(k)s"
)


def nearest_lessons(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                    query_vector: np.ndarray, k: int) -> list[dict[str, Any]]:
    """Return the `k` active lessons of the agent (and of the user, if given) nearest the query, nearest first."""
    scope = sql.SQL("user_id IS NULL") if user_id is None else sql.SQL("(user_id IS NULL OR user_id = %(user_id)s)")
    query = sql.SQL(_QUERY).format(columns=sql.SQL(CUBE_COLUMNS), scope=scope)
    return conn.execute(query, {"q": query_vector, "tenant": tenant, "agent_id": agent_id, "user_id": user_id,
                                "k": k}).fetchall()
