"""Background maintenance: paging every scope that has a core tier, on the beat schedule."""

from __future__ import annotations

import logging

import psycopg_pool

from memcube.config import Settings
from memcube.paging import apply_paging
from memcube.store import maintenance as store

log = logging.getLogger(__name__)

# Scopes one run visits; the next run takes the same first ones again, so keep it above the real number.
SCOPE_LIMIT = 10_000


def page_scopes(pool: psycopg_pool.ConnectionPool, settings: Settings, *, tenant: str | None = None,
                agent_id: str | None = None, user_id: str | None = None) -> dict[str, int]:
    """Page one scope (given a tenant and agent), or every scope with a core tier, each in its own
    transaction (paging.apply_paging); return how many scopes were paged and how many cubes moved."""
    if tenant is not None and agent_id is not None:
        scopes = [(tenant, agent_id, user_id)]
    else:
        with pool.connection() as conn:
            scopes = store.core_scopes(conn, limit=SCOPE_LIMIT)
    moves = 0
    for scope_tenant, scope_agent, scope_user in scopes:
        with pool.connection() as conn:
            moved = apply_paging(conn, tenant=scope_tenant, agent_id=scope_agent, user_id=scope_user,
                                 settings=settings, actor="paging:background")
        if moved:
            log.info("paged %s/%s/%s: %d move(s)", scope_tenant, scope_agent, scope_user, len(moved))
        moves += len(moved)
    return {"scopes": len(scopes), "moves": moves}
