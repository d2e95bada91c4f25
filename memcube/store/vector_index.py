"""SQL for `vector_index_scopes` and the `ann` flag of `memcubes`: which scopes the HNSW index holds
(migrations/0008_vector_index_scopes.sql). Functions never commit: the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

SQL_STATE = "SELECT state FROM vector_index_scopes WHERE tenant = %s AND agent_id = %s"
SQL_MARK_FILLING = (
    "INSERT INTO vector_index_scopes (tenant, agent_id, state) VALUES (%s, %s, 'filling') "
    "ON CONFLICT (tenant, agent_id) DO NOTHING"
)
SQL_MARK_READY = (
    "UPDATE vector_index_scopes SET state = 'ready', ready_at = now() "
    "WHERE tenant = %s AND agent_id = %s AND state = 'filling'"
)
SQL_LARGE_UNINDEXED = (
    "SELECT m.tenant, m.agent_id FROM memcubes m GROUP BY m.tenant, m.agent_id HAVING count(*) > %s "
    "EXCEPT SELECT tenant, agent_id FROM vector_index_scopes"
)
SQL_FILLING = (
    "SELECT tenant, agent_id FROM vector_index_scopes WHERE state = 'filling' ORDER BY created_at LIMIT %s"
)
# Every writer of the scope holds this lock (shared) until it commits (the trigger takes it; scopes share 128).
SQL_WAIT_FOR_WRITERS = "SELECT pg_advisory_xact_lock(8008, memcube_scope_lock_key(%s, %s))"
# One filler a scope at a time (a session lock: the caller releases it). The one-key form is a key space of its
# own, apart from the writers' two-key locks.
SQL_TRY_FILLER = "SELECT pg_try_advisory_lock(hashtextextended(%s || chr(31) || %s, 8009)) AS got"
SQL_RELEASE_FILLER = "SELECT pg_advisory_unlock(hashtextextended(%s || chr(31) || %s, 8009))"
# The next rows of the scope, newest first along the scope index (keyset), that are not in the index yet.
SQL_NEXT_CHUNK = (
    "SELECT id, created_at FROM memcubes WHERE tenant = %(tenant)s AND agent_id = %(agent_id)s "
    "AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s, %(after_id)s)) "
    "ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
)
# Rows without a vector are flagged too: one they get later (`memcube reembed`) enters the index then.
SQL_INDEX_ROWS = "UPDATE memcubes SET ann = true WHERE id = ANY(%s) AND NOT ann"
SQL_LEFT_OUT = (
    "SELECT count(*) AS n FROM memcubes WHERE tenant = %s AND agent_id = %s AND NOT ann"
)


def state(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> str | None:
    """Return `filling`, `ready`, or None for a scope the index does not hold."""
    row = conn.execute(SQL_STATE, (tenant, agent_id)).fetchone()
    return None if row is None else row["state"]


def mark_filling(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> bool:
    """Make a scope indexed from now on (its new rows enter the index); return whether it was not already."""
    return conn.execute(SQL_MARK_FILLING, (tenant, agent_id)).rowcount == 1


def mark_ready(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> bool:
    """Record that every vector of a filling scope is in the index; return whether the state changed."""
    return conn.execute(SQL_MARK_READY, (tenant, agent_id)).rowcount == 1


def filling(conn: psycopg.Connection, *, limit: int) -> list[tuple[str, str]]:
    """Return up to `limit` scopes waiting for their older rows to enter the index, oldest first."""
    return [(r["tenant"], r["agent_id"]) for r in conn.execute(SQL_FILLING, (limit,)).fetchall()]


def large_unindexed(conn: psycopg.Connection, *, threshold: int) -> list[tuple[str, str]]:
    """Return every scope of more than `threshold` memories that the index does not hold (counts them all)."""
    return [(r["tenant"], r["agent_id"]) for r in conn.execute(SQL_LARGE_UNINDEXED, (threshold,)).fetchall()]


def wait_for_writers(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> None:
    """Wait until every transaction writing to the scope now has ended (the lock is released at commit)."""
    conn.execute(SQL_WAIT_FOR_WRITERS, (tenant, agent_id))


def try_filler(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> bool:
    """Take the scope's filler lock for this session if nobody holds it; return whether it was taken."""
    return bool(conn.execute(SQL_TRY_FILLER, (tenant, agent_id)).fetchone()["got"])


def release_filler(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> None:
    conn.execute(SQL_RELEASE_FILLER, (tenant, agent_id))


def index_chunk(conn: psycopg.Connection, *, tenant: str, agent_id: str, after: tuple[datetime, UUID] | None,
                limit: int) -> tuple[int, tuple[datetime, UUID] | None]:
    """Put the next `limit` rows of the scope (after the keyset position `after`) into the index; return how
    many entered it and the position to go on from (None at the end of the scope)."""
    params: dict[str, Any] = {"tenant": tenant, "agent_id": agent_id, "limit": limit,
                              "after_at": after[0] if after else None, "after_id": after[1] if after else None}
    rows = conn.execute(SQL_NEXT_CHUNK, params).fetchall()
    if not rows:
        return 0, None
    entered = conn.execute(SQL_INDEX_ROWS, ([r["id"] for r in rows],)).rowcount
    last = rows[-1]
    return entered, ((last["created_at"], last["id"]) if len(rows) == limit else None)


def left_out(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> int:
    """Return how many rows of the scope are not flagged for the index."""
    return int(conn.execute(SQL_LEFT_OUT, (tenant, agent_id)).fetchone()["n"])
