"""SQL for lessons (procedural cubes): the ones nearest a situation, a scope's list, and those a trajectory
names. Functions never commit: the caller owns the transaction.

A lesson's status (probationary, trusted, retired) is in its `data`; a retired lesson is also quarantined,
so only `active` cubes are ever served. A procedural cube written by hand has no status: it is probationary.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence
from datetime import datetime
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from memcube.store.cubes import CUBE_COLUMNS
from memcube.store.cursor import decode_cursor, encode_cursor

# Which lessons a query takes: those served (probationary and trusted), one status, or all that are kept.
StatusFilter = Literal["served", "probationary", "trusted", "retired", "any"]
_STATUS = {
    "served": "m.status = 'active' AND coalesce(m.data->>'status', 'probationary') <> 'retired'",
    "probationary": "m.status = 'active' AND coalesce(m.data->>'status', 'probationary') = 'probationary'",
    "trusted": "m.status = 'active' AND m.data->>'status' = 'trusted'",
    "retired": "(m.status = 'quarantined' OR (m.status = 'active' AND m.data->>'status' = 'retired'))",
    "any": "m.status IN ('active', 'quarantined')",
}
_COLUMNS = sql.SQL(", ").join(sql.SQL("m.{}").format(sql.Identifier(c.strip())) for c in CUBE_COLUMNS.split(","))


def _scope(user_id: str | None, shared: bool) -> sql.Composable:
    """A user's lessons, with the agent's own (those of no user) when `shared`; without a user, the agent's."""
    if user_id is None:
        return sql.SQL("m.user_id IS NULL")
    if shared:
        return sql.SQL("(m.user_id IS NULL OR m.user_id = %(user_id)s)")
    return sql.SQL("m.user_id = %(user_id)s")


def lessons_near(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None, vector: np.ndarray,
                 k: int, shared: bool, status: StatusFilter = "served",
                 tools: list[str] | None = None, tools_limit: int = 50) -> list[dict[str, Any]]:
    """Return the `k` lessons of a scope whose situation (`when_to_use`, what they are embedded from) is nearest
    `vector`, nearest first, each with its embedding and cosine `similarity`; with `tools`, also those whose
    tools are exactly these (possibly twice).

    Exact distances through the partial index on procedural cubes: a scope holds few lessons among many cubes,
    and the HNSW index would have to wade through the rest to find them."""
    where = sql.SQL("m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND {scope} AND m.kind = 'procedural' "
                    "AND {status} AND m.embedding IS NOT NULL").format(scope=_scope(user_id, shared),
                                                                        status=sql.SQL(_STATUS[status]))
    select = sql.SQL("SELECT {columns}, m.embedding, 1 - (m.embedding <=> %(q)s) AS similarity FROM memcubes m "
                     "WHERE {where}").format(columns=_COLUMNS, where=where)
    parts = [sql.SQL("({} ORDER BY m.embedding <=> %(q)s, m.id LIMIT %(k)s)").format(select)]
    if tools:
        parts.append(sql.SQL("({} AND m.data->'tools' = %(tools)s LIMIT %(tools_limit)s)").format(select))
    query = sql.SQL(" UNION ALL ").join(parts)
    return conn.execute(query, {"q": vector, "tenant": tenant, "agent_id": agent_id, "user_id": user_id, "k": k,
                                "tools": Jsonb(tools), "tools_limit": tools_limit}).fetchall()


def list_lessons(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                 status: StatusFilter, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of a scope's lessons (a user's and the agent's own), newest first, and the cursor of the
    next page (None at the end)."""
    params: dict[str, Any] = {"tenant": tenant, "agent_id": agent_id, "user_id": user_id, "limit": limit + 1}
    after = sql.SQL("")
    if cursor:
        params["after_at"], params["after_id"] = decode_cursor(cursor, datetime, UUID)
        after = sql.SQL("AND (m.created_at, m.id) < (%(after_at)s, %(after_id)s)")
    query = sql.SQL(
        "SELECT {columns} FROM memcubes m WHERE m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND {scope} "
        "AND m.kind = 'procedural' AND {status} {after} ORDER BY m.created_at DESC, m.id DESC LIMIT %(limit)s"
    ).format(columns=_COLUMNS, scope=_scope(user_id, True), status=sql.SQL(_STATUS[status]), after=after)
    rows = conn.execute(query, params).fetchall()
    next_cursor = encode_cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def lock_lessons(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return the procedural cubes among `cube_ids`, locked in id order until the transaction ends (two such
    calls never deadlock); ids that are not a procedural cube of the tenant are left out."""
    query = sql.SQL("SELECT {columns} FROM memcubes m WHERE m.tenant = %s AND m.id = ANY(%s) "
                    "AND m.kind = 'procedural' ORDER BY m.id FOR UPDATE").format(columns=_COLUMNS)
    return conn.execute(query, (tenant, list(cube_ids))).fetchall()
