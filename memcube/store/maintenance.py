"""SQL of background maintenance: which scopes a periodic run visits."""

from __future__ import annotations

import psycopg

# Served by the partial index memcubes_core (tier core, status active).
SQL_CORE_SCOPES = (
    "SELECT DISTINCT tenant, agent_id, user_id FROM memcubes WHERE tier = 'core' AND status = 'active' "
    "ORDER BY tenant, agent_id, user_id LIMIT %s"
)


def core_scopes(conn: psycopg.Connection, *, limit: int) -> list[tuple[str, str, str | None]]:
    """Return the scopes (tenant, agent, user or None) that have an active core tier."""
    return [(r["tenant"], r["agent_id"], r["user_id"]) for r in conn.execute(SQL_CORE_SCOPES, (limit,)).fetchall()]
