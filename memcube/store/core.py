"""SQL of the core tier: labelled blocks, the core of a scope, and what paging reads.

A scope is an agent (user_id NULL) or one user of an agent. Functions never commit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Sequence
from uuid import UUID

import psycopg
from psycopg import sql

from memcube.store.cubes import CUBE_COLUMNS

# Transaction-scoped advisory locks serialize the block writers of one scope, and its paging runs.
SQL_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
SQL_AGENT_EXISTS = "SELECT EXISTS (SELECT 1 FROM memcubes WHERE tenant = %s AND agent_id = %s) AS present"
SQL_LAST_PAGED_OUT = (
    "SELECT cube_id, max(recorded_at) AS at FROM memcube_versions "
    "WHERE cube_id = ANY(%s) AND tier = 'archival' AND provenance->>'source' = 'paging' GROUP BY cube_id"
)
# Labelled blocks first (persona and human before the rest), then paged-in cubes by importance.
_CORE_ORDER = sql.SQL(
    "ORDER BY label IS NULL, label <> 'persona', label <> 'human', label, importance DESC, created_at, id")


def _user(user_id: str | None) -> sql.Composable:
    # Two spellings rather than IS NOT DISTINCT FROM, which no btree index serves.
    return sql.SQL("user_id IS NULL") if user_id is None else sql.SQL("user_id = %(user_id)s")


def lock(conn: psycopg.Connection, *parts: str | None) -> None:
    """Take a transaction-scoped advisory lock named by `parts`."""
    conn.execute(SQL_XACT_LOCK, (json.dumps(parts),))


def agent_exists(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> bool:
    """Return whether the agent has any memory in the tenant."""
    return conn.execute(SQL_AGENT_EXISTS, (tenant, agent_id)).fetchone()["present"]


def list_core(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
              with_agent: bool = False) -> list[dict[str, Any]]:
    """Return the active core cubes of a scope, blocks first; `with_agent` adds the agent's own scope to a
    user's (what context assembly shows)."""
    scope = _user(user_id)
    if with_agent and user_id is not None:
        scope = sql.SQL("({} OR user_id IS NULL)").format(scope)
    query = sql.SQL("SELECT {} FROM memcubes WHERE tenant = %(tenant)s AND agent_id = %(agent_id)s AND {} "
                    "AND tier = 'core' AND status = 'active' {}").format(sql.SQL(CUBE_COLUMNS), scope, _CORE_ORDER)
    return conn.execute(query, {"tenant": tenant, "agent_id": agent_id, "user_id": user_id}).fetchall()


def find_block(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None, label: str,
               lock: bool = False) -> dict[str, Any] | None:
    """Return the active block with a label (whatever its tier), locked for update if asked, or None."""
    query = sql.SQL("SELECT {} FROM memcubes WHERE tenant = %(tenant)s AND agent_id = %(agent_id)s AND {} "
                    "AND label = %(label)s AND status = 'active' {}").format(
        sql.SQL(CUBE_COLUMNS), _user(user_id), sql.SQL("FOR UPDATE" if lock else ""))
    return conn.execute(query, {"tenant": tenant, "agent_id": agent_id, "user_id": user_id,
                                "label": label}).fetchone()


def list_paging_candidates(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                           min_accesses: int, kinds: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """Return the active archival cubes of a scope of the given kinds accessed at least `min_accesses` times,
    most accessed first,
    each with its confidence and `derived`: whether consolidation made it (its first version says so, whatever
    later versions, such as paging's, put in the current provenance)."""
    query = sql.SQL(
        "SELECT m.id, m.content, m.importance, m.confidence, m.access_count, m.last_accessed_at, m.created_at, "
        "m.version, EXISTS (SELECT 1 FROM memcube_versions v WHERE v.cube_id = m.id AND v.version = 1 "
        "AND v.provenance->>'source' = 'consolidation') AS derived FROM memcubes m "
        "WHERE m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND {} AND m.tier = 'archival' "
        "AND m.status = 'active' AND m.kind = ANY(%(kinds)s) AND m.access_count >= %(min)s "
        "ORDER BY m.access_count DESC, m.id LIMIT %(limit)s").format(_user(user_id))
    return conn.execute(query, {"tenant": tenant, "agent_id": agent_id, "user_id": user_id, "min": min_accesses,
                                "kinds": list(kinds), "limit": limit}).fetchall()


def last_paged_out(conn: psycopg.Connection, cube_ids: Sequence[UUID]) -> dict[UUID, datetime]:
    """Return when each cube was last paged out to archival, for those that ever were."""
    if not cube_ids:
        return {}
    rows = conn.execute(SQL_LAST_PAGED_OUT, (list(cube_ids),)).fetchall()
    return {r["cube_id"]: r["at"] for r in rows}
