"""SQL of discovery: the agents and tenants that exist, and what they hold. Functions never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import psycopg

# A loose index scan over memcubes_scope: one index probe per agent instead of reading every row of the
# tenant, so listing agents costs the number of agents, not the number of memories.
SQL_AGENT_IDS = (
    "WITH RECURSIVE agents AS ("
    "  (SELECT agent_id FROM memcubes WHERE tenant = %(tenant)s AND agent_id > %(after)s ORDER BY agent_id LIMIT 1)"
    "  UNION ALL"
    "  SELECT (SELECT m.agent_id FROM memcubes m WHERE m.tenant = %(tenant)s AND m.agent_id > a.agent_id"
    "          ORDER BY m.agent_id LIMIT 1)"
    "  FROM agents a WHERE a.agent_id IS NOT NULL"
    ") SELECT agent_id FROM agents WHERE agent_id IS NOT NULL LIMIT %(limit)s"
)
SQL_COUNT_AGENTS = (
    "WITH RECURSIVE agents AS ("
    "  (SELECT agent_id FROM memcubes WHERE tenant = %(tenant)s ORDER BY agent_id LIMIT 1)"
    "  UNION ALL"
    "  SELECT (SELECT m.agent_id FROM memcubes m WHERE m.tenant = %(tenant)s AND m.agent_id > a.agent_id"
    "          ORDER BY m.agent_id LIMIT 1)"
    "  FROM agents a WHERE a.agent_id IS NOT NULL"
    ") SELECT count(agent_id) AS n FROM agents"
)
# Per agent, one row per (kind, tier, status) and one for the whole agent (`whole`), which carries the users.
SQL_AGENT_COUNTS = (
    "SELECT agent_id, kind, tier, status, count(*) AS n, count(DISTINCT user_id) AS users, "
    "max(updated_at) AS last_at, GROUPING(kind) = 1 AS whole "
    "FROM memcubes WHERE tenant = %s AND agent_id = ANY(%s) "
    "GROUP BY GROUPING SETS ((agent_id, kind, tier, status), (agent_id))"
)
SQL_AGENT_SESSIONS = (
    "SELECT agent_id, count(*) AS n, max(last_message_at) AS last_at FROM sessions "
    "WHERE tenant = %s AND agent_id = ANY(%s) GROUP BY agent_id"
)
SQL_AGENT_USER_IDS = (
    "SELECT DISTINCT user_id FROM memcubes WHERE tenant = %s AND agent_id = %s AND user_id IS NOT NULL "
    "ORDER BY user_id LIMIT %s"
)
SQL_TENANT_COUNTS = (
    "SELECT kind, tier, status, count(*) AS n FROM memcubes WHERE tenant = %s GROUP BY kind, tier, status"
)
SQL_TENANT_SESSIONS = "SELECT count(*) AS n FROM sessions WHERE tenant = %s"
SQL_CREATED_PER_DAY = (
    "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM memcubes "
    "WHERE tenant = %s AND created_at >= %s GROUP BY day ORDER BY day"
)
# Tenants that hold memories (a loose index scan, like the agents) or keys.
SQL_TENANTS = (
    "WITH RECURSIVE tenants AS ("
    "  (SELECT tenant FROM memcubes ORDER BY tenant LIMIT 1)"
    "  UNION ALL"
    "  SELECT (SELECT m.tenant FROM memcubes m WHERE m.tenant > t.tenant ORDER BY m.tenant LIMIT 1)"
    "  FROM tenants t WHERE t.tenant IS NOT NULL"
    ") SELECT tenant FROM tenants WHERE tenant IS NOT NULL "
    "UNION SELECT tenant FROM api_keys ORDER BY tenant LIMIT %s"
)


def list_agent_ids(conn: psycopg.Connection, *, tenant: str, after: str, limit: int) -> list[str]:
    """Return up to `limit` agent ids of the tenant that sort after `after` ('' for the first), in order."""
    rows = conn.execute(SQL_AGENT_IDS, {"tenant": tenant, "after": after, "limit": limit}).fetchall()
    return [row["agent_id"] for row in rows]


def count_agents(conn: psycopg.Connection, *, tenant: str) -> int:
    """Return how many agents hold memories in the tenant."""
    return conn.execute(SQL_COUNT_AGENTS, {"tenant": tenant}).fetchone()["n"]


def agent_counts(conn: psycopg.Connection, *, tenant: str, agent_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Return (agent_id, kind, tier, status, n, users, last_at, whole) for the agents' memories: a row per
    kind, tier and status, and one per agent with `whole` true (its `users` is the agent's distinct users)."""
    return conn.execute(SQL_AGENT_COUNTS, (tenant, list(agent_ids))).fetchall()


def agent_sessions(conn: psycopg.Connection, *, tenant: str, agent_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Return, per agent with sessions, how many it has (`n`) and its last message time (`last_at`)."""
    rows = conn.execute(SQL_AGENT_SESSIONS, (tenant, list(agent_ids))).fetchall()
    return {row["agent_id"]: row for row in rows}


def agent_user_ids(conn: psycopg.Connection, *, tenant: str, agent_id: str, limit: int) -> list[str]:
    """Return up to `limit` user ids the agent holds memories of, in order."""
    return [row["user_id"] for row in conn.execute(SQL_AGENT_USER_IDS, (tenant, agent_id, limit)).fetchall()]


def tenant_counts(conn: psycopg.Connection, *, tenant: str) -> list[dict[str, Any]]:
    """Return (kind, tier, status, n) over the tenant's memories."""
    return conn.execute(SQL_TENANT_COUNTS, (tenant,)).fetchall()


def count_sessions(conn: psycopg.Connection, *, tenant: str) -> int:
    """Return how many sessions the tenant has."""
    return conn.execute(SQL_TENANT_SESSIONS, (tenant,)).fetchone()["n"]


def created_per_day(conn: psycopg.Connection, *, tenant: str, since: datetime) -> list[dict[str, Any]]:
    """Return (day, n): memories created each UTC day since `since` (days without any are left out)."""
    return conn.execute(SQL_CREATED_PER_DAY, (tenant, since)).fetchall()


def list_tenants(conn: psycopg.Connection, *, limit: int) -> list[str]:
    """Return up to `limit` tenants that hold memories or keys, in order."""
    return [row["tenant"] for row in conn.execute(SQL_TENANTS, (limit,)).fetchall()]
