"""SQL for `sessions` and `session_messages`. Functions never commit: the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence
from uuid import UUID

import psycopg
from psycopg import sql

from memcube.errors import NotFound

SESSION_COLUMNS = "session_id, agent_id, user_id, next_turn, scratchpad, created_at, last_message_at"

# Creates the session or takes its row lock, and reserves `n` turns. The WHERE keeps a session with its
# agent and user: for another owner the row is locked but not changed, and nothing is returned.
SQL_CLAIM_TURNS = (
    "INSERT INTO sessions AS s (tenant, session_id, agent_id, user_id, next_turn) "
    "VALUES (%(tenant)s, %(session_id)s, %(agent_id)s, %(user_id)s, %(n)s) "
    "ON CONFLICT (tenant, session_id) DO UPDATE SET next_turn = s.next_turn + EXCLUDED.next_turn, "
    "last_message_at = now() "
    "WHERE s.agent_id = EXCLUDED.agent_id AND s.user_id IS NOT DISTINCT FROM EXCLUDED.user_id "
    "RETURNING s.next_turn - %(n)s AS first_turn"
)
SQL_GET = "SELECT " + SESSION_COLUMNS + " FROM sessions WHERE tenant = %s AND session_id = %s"
SQL_INSERT_TURNS = (
    "INSERT INTO session_messages (tenant, session_id, turn, role, name, cube_id) "
    "SELECT %s, %s, t.turn, t.role, t.name, t.cube_id "
    "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::uuid[]) AS t(turn, role, name, cube_id)"
)
# Forgotten and quarantined messages leave the window; superseded ones were still said.
_SHOWN = "m.status IN ('active', 'superseded')"
SQL_TURNS_FROM = (
    "SELECT sm.turn, m.id, m.version FROM session_messages sm JOIN memcubes m ON m.id = sm.cube_id "
    "WHERE sm.tenant = %s AND sm.session_id = %s AND sm.turn >= %s AND sm.turn < %s AND " + _SHOWN + " "
    "ORDER BY sm.turn"
)
SQL_RECENT = (
    "SELECT sm.turn, sm.role, sm.name, m.id, m.version, m.content, m.occurred_at, m.created_at "
    "FROM session_messages sm JOIN memcubes m ON m.id = sm.cube_id "
    "WHERE sm.tenant = %s AND sm.session_id = %s AND sm.turn < %s AND " + _SHOWN + " "
    "ORDER BY sm.turn DESC LIMIT %s"
)
SQL_SET_SCRATCHPAD = (
    "UPDATE sessions SET scratchpad = %s WHERE tenant = %s AND session_id = %s RETURNING " + SESSION_COLUMNS
)


def claim_turns(conn: psycopg.Connection, *, tenant: str, session_id: str, agent_id: str, user_id: str | None,
                n: int) -> int | None:
    """Reserve `n` consecutive turns of a session (creating it) and return the first; None when the session
    belongs to another agent or user. Holds the session's row lock until the transaction ends."""
    row = conn.execute(SQL_CLAIM_TURNS, {"tenant": tenant, "session_id": session_id, "agent_id": agent_id,
                                         "user_id": user_id, "n": n}).fetchone()
    return None if row is None else row["first_turn"]


def get_session(conn: psycopg.Connection, *, tenant: str, session_id: str) -> dict[str, Any]:
    """Return a session; raises NotFound."""
    row = conn.execute(SQL_GET, (tenant, session_id)).fetchone()
    if row is None:
        raise NotFound(f"session {session_id} not found")
    return row


def insert_turns(conn: psycopg.Connection, *, tenant: str, session_id: str,
                 turns: Sequence[tuple[int, str, str | None, UUID]]) -> None:
    """Record each turn: (turn, role, name, the cube that holds it)."""
    columns = list(zip(*turns))
    conn.execute(SQL_INSERT_TURNS, (tenant, session_id, *(list(c) for c in columns)))


def list_turns(conn: psycopg.Connection, *, tenant: str, session_id: str, first: int,
               end: int) -> list[tuple[int, UUID, int]]:
    """Return (turn, cube id, version) of the shown messages with first <= turn < end, in turn order."""
    rows = conn.execute(SQL_TURNS_FROM, (tenant, session_id, first, end)).fetchall()
    return [(r["turn"], r["id"], r["version"]) for r in rows]


def list_recent(conn: psycopg.Connection, *, tenant: str, session_id: str, end: int,
                limit: int) -> list[dict[str, Any]]:
    """Return the last `limit` shown messages before turn `end`, newest first."""
    return conn.execute(SQL_RECENT, (tenant, session_id, end, limit)).fetchall()


def list_sessions(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                  after: tuple[datetime, str] | None, limit: int) -> list[dict[str, Any]]:
    """Return up to `limit` sessions of an agent (of one user, if given), newest first (through sessions_agent),
    after the position `after` (created_at, session_id) of the previous page."""
    conditions = [sql.SQL("tenant = %s"), sql.SQL("agent_id = %s")]
    params: list[Any] = [tenant, agent_id]
    if user_id is not None:
        conditions.append(sql.SQL("user_id = %s"))
        params.append(user_id)
    if after is not None:
        conditions.append(sql.SQL("(created_at, session_id) < (%s, %s)"))
        params.extend(after)
    query = sql.SQL("SELECT {} FROM sessions WHERE {} ORDER BY created_at DESC, session_id DESC LIMIT %s").format(
        sql.SQL(SESSION_COLUMNS), sql.SQL(" AND ").join(conditions))
    return conn.execute(query, [*params, limit]).fetchall()


def set_scratchpad(conn: psycopg.Connection, *, tenant: str, session_id: str, content: str) -> dict[str, Any]:
    """Replace a session's scratchpad and return the session; raises NotFound."""
    row = conn.execute(SQL_SET_SCRATCHPAD, (content, tenant, session_id)).fetchone()
    if row is None:
        raise NotFound(f"session {session_id} not found")
    return row
