"""Agents: the agents of a tenant (any agent_id that holds a memory) and what each holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import psycopg

from memcube.errors import NotFound
from memcube.models import AgentSummary
from memcube.store import discovery as store
from memcube.store.cursor import check_limit, decode_cursor, encode_cursor


def _summaries(conn: psycopg.Connection, tenant: str, agent_ids: Sequence[str]) -> list[AgentSummary]:
    """Return the summaries of the agents that hold memories, in the given order."""
    if not agent_ids:
        return []
    counts: dict[str, dict[str, Any]] = {a: {"by_kind": {}, "by_tier": {}, "by_status": {}} for a in agent_ids}
    for row in store.agent_counts(conn, tenant=tenant, agent_ids=agent_ids):
        agent = counts[row["agent_id"]]
        if row["whole"]:
            agent.update(memories=row["n"], users=row["users"], last_at=row["last_at"])
            continue
        for field, key in (("kind", "by_kind"), ("tier", "by_tier"), ("status", "by_status")):
            agent[key][row[field]] = agent[key].get(row[field], 0) + row["n"]
    sessions = store.agent_sessions(conn, tenant=tenant, agent_ids=agent_ids)
    summaries = []
    for agent_id in agent_ids:
        agent = counts[agent_id]
        if "memories" not in agent:
            continue
        own = sessions.get(agent_id, {"n": 0, "last_at": None})
        last: list[datetime] = [t for t in (agent["last_at"], own["last_at"]) if t is not None]
        summaries.append(AgentSummary(agent_id=agent_id, memories=agent["memories"], by_kind=agent["by_kind"],
                                      by_tier=agent["by_tier"], by_status=agent["by_status"], users=agent["users"],
                                      sessions=own["n"], last_activity_at=max(last)))
    return summaries


def list_agents(conn: psycopg.Connection, *, tenant: str, limit: int,
                cursor: str | None) -> tuple[list[AgentSummary], str | None]:
    """Return one page of the tenant's agents in agent_id order, each with its counts, and the next page's cursor
    (None at the end); raises InvalidInput for a bad limit or cursor."""
    check_limit(limit)
    after = decode_cursor(cursor, str)[0] if cursor else ""
    ids = store.list_agent_ids(conn, tenant=tenant, after=after, limit=limit + 1)
    page = ids[:limit]
    return _summaries(conn, tenant, page), encode_cursor(page[-1]) if len(ids) > limit else None


def get_agent(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> AgentSummary:
    """Return one agent with its counts; raises NotFound for an agent with no memory."""
    found = _summaries(conn, tenant, [agent_id])
    if not found:
        raise NotFound(f"agent {agent_id} not found")
    return found[0]


def list_agent_users(conn: psycopg.Connection, *, tenant: str, agent_id: str, limit: int = 200) -> list[str]:
    """Return up to `limit` user ids the agent holds memories of, in order."""
    return store.agent_user_ids(conn, tenant=tenant, agent_id=agent_id, limit=limit)


def list_agent_ids(conn: psycopg.Connection, *, tenant: str, limit: int = 500) -> list[str]:
    """Return the first `limit` agent ids of the tenant, in order (without counts: for pickers)."""
    return store.list_agent_ids(conn, tenant=tenant, after="", limit=limit)
