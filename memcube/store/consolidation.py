"""SQL of consolidation: the state of each scope (its mark and what is pending), its episodes in order,
and the facts and summaries it merges into. Functions never commit: the caller owns the transaction.

A scope is (tenant, agent_id, user_id) with user_id possibly NULL (episodes that name no user). Its
episodes are its episodic cubes except trajectories, which distillation takes (memcube.lessons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

from memcube.store.cubes import CUBE_COLUMNS


@dataclass(frozen=True)
class ScopeKey:
    tenant: str
    agent_id: str
    user_id: str | None


@dataclass(frozen=True)
class Mark:
    """The last episode consolidated in a scope, in (xact_id, id) order; xact_id is an xid8 as text."""

    xact_id: str
    id: UUID


SCOPE_COLUMNS = (
    "tenant, agent_id, user_id, mark_xact::text AS mark_xact, mark_id, pending_episodes, last_episode_at, "
    "consolidated_at, last_job_id"
)
SQL_NOTE_EPISODES = (
    "INSERT INTO consolidation_scopes AS s (tenant, agent_id, user_id, pending_episodes, last_episode_at) "
    "VALUES (%s, %s, %s, %s, now()) ON CONFLICT ON CONSTRAINT consolidation_scopes_scope DO UPDATE "
    "SET pending_episodes = s.pending_episodes + EXCLUDED.pending_episodes, last_episode_at = now() "
    "RETURNING pending_episodes"
)
SQL_ENSURE_SCOPE = (
    "INSERT INTO consolidation_scopes (tenant, agent_id, user_id) VALUES (%s, %s, %s) "
    "ON CONFLICT ON CONSTRAINT consolidation_scopes_scope DO NOTHING"
)
SQL_LOCK_SCOPE = (
    "SELECT " + SCOPE_COLUMNS + " FROM consolidation_scopes "
    "WHERE tenant = %s AND agent_id = %s AND user_id IS NOT DISTINCT FROM %s FOR UPDATE"
)
SQL_GET_SCOPE = (
    "SELECT " + SCOPE_COLUMNS + " FROM consolidation_scopes "
    "WHERE tenant = %s AND agent_id = %s AND user_id IS NOT DISTINCT FROM %s"
)
SQL_PENDING_USERS = (
    "SELECT user_id FROM consolidation_scopes WHERE tenant = %s AND agent_id = %s AND pending_episodes > 0 "
    "ORDER BY user_id NULLS FIRST"
)
SQL_SET_MARK = (
    "UPDATE consolidation_scopes SET mark_xact = %(xact)s::xid8, mark_id = %(id)s, consolidated_at = now(), "
    "last_job_id = %(job)s, pending_episodes = %(pending)s "
    "WHERE tenant = %(tenant)s AND agent_id = %(agent_id)s AND user_id IS NOT DISTINCT FROM %(user_id)s"
)
# Trajectories (listed in their own table) are distilled, not consolidated.
NOT_TRAJECTORY = "NOT EXISTS (SELECT 1 FROM trajectories t WHERE t.cube_id = {alias}.id)"
_NOT_TRAJECTORY_M = sql.SQL(NOT_TRAJECTORY.format(alias="m"))
EPISODE_COLUMNS = (
    "m.id, m.version, m.session_id, m.content, m.data, m.metadata, m.tags, m.occurred_at, m.created_at, m.status, "
    "m.embedding, m.provenance, m.xact_id::text AS xact_id"
)
SQL_ORIGIN_ROWS = "SELECT id, provenance, metadata FROM memcubes WHERE tenant = %s AND id = ANY(%s::uuid[])"
# Scopes that a trigger should consolidate and no job covers yet. `idle` asks that one of the scope's
# sessions (episodes without a session count as one) has pending episodes and none newer than the cut-off.
SQL_SCOPES_TO_CONSOLIDATE = (
    "SELECT s.tenant, s.agent_id, s.user_id FROM consolidation_scopes s "
    "WHERE s.pending_episodes > 0 "
    "AND (NOT %(idle)s OR EXISTS ("
    "  SELECT 1 FROM memcubes e WHERE e.tenant = s.tenant AND e.agent_id = s.agent_id "
    "  AND e.user_id IS NOT DISTINCT FROM s.user_id AND e.kind = 'episodic' "
    "  AND " + NOT_TRAJECTORY.format(alias="e") + " "
    "  AND (s.mark_xact IS NULL OR (e.xact_id, e.id) > (s.mark_xact, s.mark_id)) "
    "  GROUP BY e.session_id HAVING max(e.created_at) < now() - make_interval(secs => %(idle_seconds)s))) "
    "AND NOT EXISTS ("
    "  SELECT 1 FROM jobs j WHERE j.tenant = s.tenant AND j.kind = 'consolidate' AND j.agent_id = s.agent_id "
    "  AND (j.user_id IS NULL OR j.user_id IS NOT DISTINCT FROM s.user_id) "
    "  AND (j.state IN ('queued', 'running') "
    "       OR (j.state = 'failed' AND j.finished_at > now() - make_interval(secs => %(failed_within)s)))) "
    "ORDER BY s.last_episode_at LIMIT %(limit)s"
)
# Any episode of an agent (every user, or one), forgotten ones aside; the partial episode index answers it.
SQL_HAS_EPISODES = (
    "SELECT EXISTS (SELECT 1 FROM memcubes m WHERE m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s "
    "AND m.kind = 'episodic' AND m.status <> 'forgotten' AND (%(any_user)s OR m.user_id = %(user_id)s)) AS found"
)
SQL_SESSION_SUMMARY = (
    "SELECT " + CUBE_COLUMNS + " FROM memcubes WHERE tenant = %s AND agent_id = %s AND user_id IS NOT DISTINCT FROM %s "
    "AND session_id = %s AND kind = 'summary' AND status = 'active' AND provenance->>'source' = 'consolidation' "
    "ORDER BY created_at LIMIT 1"
)


def _user(user_id: str | None) -> sql.Composable:
    # Two spellings so that the scope indexes serve both (IS NOT DISTINCT FROM cannot use them).
    return sql.SQL("m.user_id IS NULL") if user_id is None else sql.SQL("m.user_id = %(user_id)s")


def has_episodes(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None) -> bool:
    """Whether an agent (user_id None: for any of its users, or none) has an episode that is not forgotten."""
    row = conn.execute(SQL_HAS_EPISODES, {"tenant": tenant, "agent_id": agent_id, "user_id": user_id,
                                          "any_user": user_id is None}).fetchone()
    return bool(row["found"])


def note_episodes(conn: psycopg.Connection, scope: ScopeKey, count: int) -> int:
    """Count new episodes of a scope (locking its row until commit); return how many are pending now."""
    row = conn.execute(SQL_NOTE_EPISODES, (scope.tenant, scope.agent_id, scope.user_id, count)).fetchone()
    return row["pending_episodes"]


def lock_scope(conn: psycopg.Connection, scope: ScopeKey) -> dict[str, Any]:
    """Return the scope's state locked until the transaction ends (creating it if needed)."""
    conn.execute(SQL_ENSURE_SCOPE, (scope.tenant, scope.agent_id, scope.user_id))
    return conn.execute(SQL_LOCK_SCOPE, (scope.tenant, scope.agent_id, scope.user_id)).fetchone()


def find_scope(conn: psycopg.Connection, scope: ScopeKey) -> dict[str, Any] | None:
    """Return the scope's state, or None if it never had an episode."""
    return conn.execute(SQL_GET_SCOPE, (scope.tenant, scope.agent_id, scope.user_id)).fetchone()


def mark_of(row: dict[str, Any] | None) -> Mark | None:
    """Return the mark a scope row holds, or None when nothing was consolidated yet."""
    if row is None or row["mark_xact"] is None:
        return None
    return Mark(row["mark_xact"], row["mark_id"])


def pending_users(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> list[str | None]:
    """Return the users of an agent (None: episodes without a user) that have pending episodes."""
    return [row["user_id"] for row in conn.execute(SQL_PENDING_USERS, (tenant, agent_id)).fetchall()]


def pending_episodes(conn: psycopg.Connection, scope: ScopeKey, *, after: Mark | None,
                     limit: int) -> list[dict[str, Any]]:
    """Return the scope's episodes after the mark, in (xact_id, id) order, written by transactions below the
    horizon (the xmin of this statement's snapshot: all of them have finished, so no episode below it can
    still appear). About `limit` episodes: the episodes of one transaction (a batch or a session append) are
    never split, so a batch sees them together. Each row carries its embedding."""
    params: dict[str, Any] = {"tenant": scope.tenant, "agent_id": scope.agent_id, "user_id": scope.user_id,
                              "limit": limit}
    after_clause = sql.SQL("")
    if after is not None:
        after_clause = sql.SQL("AND (m.xact_id, m.id) > (%(mark_xact)s::xid8, %(mark_id)s::uuid)")
        params.update(mark_xact=after.xact_id, mark_id=after.id)
    query = sql.SQL(
        "SELECT {columns} FROM memcubes m WHERE m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND {user} "
        "AND m.kind = 'episodic' AND {episode} AND m.xact_id < pg_snapshot_xmin(pg_current_snapshot()) {after} "
        "ORDER BY m.xact_id, m.id LIMIT %(limit)s"
    ).format(columns=sql.SQL(EPISODE_COLUMNS), user=_user(scope.user_id), after=after_clause,
             episode=_NOT_TRAJECTORY_M)
    episodes = conn.execute(query, params).fetchall()
    if len(episodes) == limit:
        rest = sql.SQL(
            "SELECT {columns} FROM memcubes m WHERE m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND {user} "
            "AND m.kind = 'episodic' AND {episode} AND m.xact_id = %(xact)s::xid8 AND m.id > %(id)s ORDER BY m.id"
        ).format(columns=sql.SQL(EPISODE_COLUMNS), user=_user(scope.user_id), episode=_NOT_TRAJECTORY_M)
        episodes += conn.execute(rest, {**params, "xact": episodes[-1]["xact_id"], "id": episodes[-1]["id"]}).fetchall()
    return episodes


def set_mark(conn: psycopg.Connection, scope: ScopeKey, *, mark: Mark, job_id: UUID | None) -> int:
    """Move the scope's mark and recount what is pending after it (exact: the caller holds the scope lock,
    and the insert path counts its episodes under that lock); return the new pending count."""
    count_query = sql.SQL(
        "SELECT count(*) AS n FROM memcubes m WHERE m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND {user} "
        "AND m.kind = 'episodic' AND {episode} AND (m.xact_id, m.id) > (%(xact)s::xid8, %(id)s::uuid)"
    ).format(user=_user(scope.user_id), episode=_NOT_TRAJECTORY_M)
    params = {"tenant": scope.tenant, "agent_id": scope.agent_id, "user_id": scope.user_id, "xact": mark.xact_id,
              "id": mark.id, "job": job_id}
    pending = conn.execute(count_query, params).fetchone()["n"]
    conn.execute(SQL_SET_MARK, {**params, "pending": pending})
    return pending


def scopes_to_consolidate(conn: psycopg.Connection, *, idle_seconds: float | None, failed_within: float,
                          limit: int) -> list[ScopeKey]:
    """Return scopes with pending episodes, no queued or running job, and no job failed in the last
    `failed_within` seconds; with `idle_seconds`, only scopes where some session has been quiet that long."""
    rows = conn.execute(SQL_SCOPES_TO_CONSOLIDATE, {"idle": idle_seconds is not None,
                                                    "idle_seconds": idle_seconds or 0, "failed_within": failed_within,
                                                    "limit": limit}).fetchall()
    return [ScopeKey(r["tenant"], r["agent_id"], r["user_id"]) for r in rows]


def related_facts(conn: psycopg.Connection, scope: ScopeKey, *, vector: np.ndarray | None, k: int,
                  attribute: str | None = None, attribute_limit: int = 50) -> list[dict[str, Any]]:
    """Return the scope's `k` active semantic cubes closest to `vector`, plus those whose data names
    `attribute`, each with its embedding and cosine `similarity` (None without a vector); possibly twice.
    Exact distances over the scope's facts: a scope holds few, and this never takes the HNSW path."""
    columns = sql.SQL(", ").join(sql.SQL("m.{}").format(sql.Identifier(c.strip())) for c in CUBE_COLUMNS.split(","))
    where = sql.SQL("m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND {user} AND m.kind = 'semantic' "
                    "AND m.status = 'active'").format(user=_user(scope.user_id))
    similarity = sql.SQL("1 - (m.embedding <=> %(q)s)") if vector is not None else sql.SQL("NULL::float8")
    parts = []
    if vector is not None:
        parts.append(sql.SQL("(SELECT {columns}, m.embedding, {similarity} AS similarity FROM memcubes m "
                             "WHERE {where} AND m.embedding IS NOT NULL ORDER BY m.embedding <=> %(q)s "
                             "LIMIT %(k)s)").format(columns=columns, similarity=similarity, where=where))
    if attribute is not None:
        parts.append(sql.SQL("(SELECT {columns}, m.embedding, {similarity} AS similarity FROM memcubes m "
                             "WHERE {where} AND m.data->>'attribute' = %(attribute)s LIMIT %(attribute_limit)s)")
                     .format(columns=columns, similarity=similarity, where=where))
    if not parts:
        return []
    params = {"tenant": scope.tenant, "agent_id": scope.agent_id, "user_id": scope.user_id, "q": vector, "k": k,
              "attribute": attribute, "attribute_limit": attribute_limit}
    return conn.execute(sql.SQL(" UNION ALL ").join(parts), params).fetchall()


def origin_rows(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Return (id, provenance, metadata) of the tenant's cubes among `cube_ids` (what their origin is read from)."""
    return conn.execute(SQL_ORIGIN_ROWS, (tenant, list(cube_ids))).fetchall() if cube_ids else []


def find_session_summary(conn: psycopg.Connection, scope: ScopeKey, session_id: str) -> dict[str, Any] | None:
    """Return the active summary consolidation wrote for a session of the scope, or None."""
    return conn.execute(SQL_SESSION_SUMMARY, (scope.tenant, scope.agent_id, scope.user_id, session_id)).fetchone()
