"""SQL of trajectories and of the distillation state of each scope: which trajectories no distillation has
taken yet, and the scope's generation, which every distillation write bumps. Functions never commit: the
caller owns the transaction.

A trajectory is an episodic cube; its row in `trajectories` says whose it is and when it was distilled.
"""

from __future__ import annotations

from typing import Any, Sequence
from datetime import datetime
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

from memcube.store.consolidation import ScopeKey
from memcube.store.cubes import CUBE_COLUMNS
from memcube.store.cursor import decode_cursor, encode_cursor

# The cube's columns through the alias m, its embedding, and the trajectory's distillation.
_COLUMNS = sql.SQL(", ").join([sql.SQL("m.{}").format(sql.Identifier(c.strip())) for c in CUBE_COLUMNS.split(",")]
                              + [sql.SQL("m.embedding"), sql.SQL("t.distilled_at")])

SQL_INSERT = "INSERT INTO trajectories (cube_id, tenant, agent_id, user_id) VALUES (%s, %s, %s, %s)"
SQL_NOTE = (
    "INSERT INTO distill_scopes AS s (tenant, agent_id, user_id, pending_trajectories, last_trajectory_at) "
    "VALUES (%s, %s, %s, 1, now()) ON CONFLICT ON CONSTRAINT distill_scopes_scope DO UPDATE "
    "SET pending_trajectories = s.pending_trajectories + 1, last_trajectory_at = now() "
    "RETURNING pending_trajectories"
)
SQL_ENSURE_SCOPE = (
    "INSERT INTO distill_scopes (tenant, agent_id, user_id) VALUES (%s, %s, %s) "
    "ON CONFLICT ON CONSTRAINT distill_scopes_scope DO NOTHING"
)
SCOPE_COLUMNS = "tenant, agent_id, user_id, pending_trajectories, last_trajectory_at, generation, distilled_at, last_job_id"
SQL_LOCK_SCOPE = (
    "SELECT " + SCOPE_COLUMNS + " FROM distill_scopes "
    "WHERE tenant = %s AND agent_id = %s AND user_id IS NOT DISTINCT FROM %s FOR UPDATE"
)
SQL_GET_SCOPE = (
    "SELECT " + SCOPE_COLUMNS + " FROM distill_scopes "
    "WHERE tenant = %s AND agent_id = %s AND user_id IS NOT DISTINCT FROM %s"
)
SQL_PENDING_USERS = (
    "SELECT user_id FROM distill_scopes WHERE tenant = %s AND agent_id = %s AND pending_trajectories > 0 "
    "ORDER BY user_id NULLS FIRST"
)
SQL_MARK_DISTILLED = (
    "UPDATE trajectories SET distilled_at = now(), distilled_by = %s WHERE cube_id = ANY(%s) AND distilled_at IS NULL"
)
# Exact: the caller holds the scope's lock, under which the insert path counts its trajectories too.
SQL_FINISH_SCOPE = (
    "UPDATE distill_scopes s SET generation = generation + 1, distilled_at = now(), last_job_id = %(job)s, "
    "pending_trajectories = (SELECT count(*) FROM trajectories t WHERE t.tenant = s.tenant "
    "  AND t.agent_id = s.agent_id AND t.user_id IS NOT DISTINCT FROM s.user_id AND t.distilled_at IS NULL) "
    "WHERE tenant = %(tenant)s AND agent_id = %(agent_id)s AND user_id IS NOT DISTINCT FROM %(user_id)s "
    "RETURNING pending_trajectories"
)
# Scopes that a trigger should distil and no job covers yet; `idle` asks that no trajectory came lately.
SQL_SCOPES_TO_DISTILL = (
    "SELECT s.tenant, s.agent_id, s.user_id FROM distill_scopes s WHERE s.pending_trajectories > 0 "
    "AND (NOT %(idle)s OR s.last_trajectory_at < now() - make_interval(secs => %(idle_seconds)s)) "
    "AND NOT EXISTS ("
    "  SELECT 1 FROM jobs j WHERE j.tenant = s.tenant AND j.kind = 'distill' AND j.agent_id = s.agent_id "
    "  AND (j.user_id IS NULL OR j.user_id IS NOT DISTINCT FROM s.user_id) "
    "  AND (j.state IN ('queued', 'running') "
    "       OR (j.state = 'failed' AND j.finished_at > now() - make_interval(secs => %(failed_within)s)))) "
    "ORDER BY s.last_trajectory_at LIMIT %(limit)s"
)


def _user(user_id: str | None, alias: str = "t") -> sql.Composable:
    # Two spellings so that the indexes serve both (IS NOT DISTINCT FROM cannot use them).
    column = sql.Identifier(alias, "user_id")
    return sql.SQL("{} IS NULL").format(column) if user_id is None else sql.SQL("{} = %(user_id)s").format(column)


SQL_HAS_TRAJECTORIES = (
    "SELECT EXISTS (SELECT 1 FROM trajectories t JOIN memcubes m ON m.id = t.cube_id "
    "WHERE t.tenant = %(tenant)s AND t.agent_id = %(agent_id)s AND (%(any_user)s OR t.user_id = %(user_id)s) "
    "AND m.status <> 'forgotten') AS found"
)


def has_trajectories(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None) -> bool:
    """Whether an agent (user_id None: any of its users) has a trajectory that is not forgotten."""
    row = conn.execute(SQL_HAS_TRAJECTORIES, {"tenant": tenant, "agent_id": agent_id, "user_id": user_id,
                                              "any_user": user_id is None}).fetchone()
    return bool(row["found"])


def insert_trajectory(conn: psycopg.Connection, *, cube_id: UUID, scope: ScopeKey) -> None:
    """List a new trajectory cube as pending distillation."""
    conn.execute(SQL_INSERT, (cube_id, scope.tenant, scope.agent_id, scope.user_id))


def note_trajectory(conn: psycopg.Connection, scope: ScopeKey) -> int:
    """Count a new trajectory of a scope (locking its row until commit); return how many are pending now."""
    return conn.execute(SQL_NOTE, (scope.tenant, scope.agent_id, scope.user_id)).fetchone()["pending_trajectories"]


def lock_scope(conn: psycopg.Connection, scope: ScopeKey) -> dict[str, Any]:
    """Return the scope's distillation state locked until the transaction ends (creating it if needed)."""
    conn.execute(SQL_ENSURE_SCOPE, (scope.tenant, scope.agent_id, scope.user_id))
    return conn.execute(SQL_LOCK_SCOPE, (scope.tenant, scope.agent_id, scope.user_id)).fetchone()


def find_scope(conn: psycopg.Connection, scope: ScopeKey) -> dict[str, Any] | None:
    """Return the scope's distillation state, or None if it never had a trajectory."""
    return conn.execute(SQL_GET_SCOPE, (scope.tenant, scope.agent_id, scope.user_id)).fetchone()


def pending_users(conn: psycopg.Connection, *, tenant: str, agent_id: str) -> list[str | None]:
    """Return the users of an agent (None: trajectories without a user) that have pending trajectories."""
    return [row["user_id"] for row in conn.execute(SQL_PENDING_USERS, (tenant, agent_id)).fetchall()]


def pending_trajectories(conn: psycopg.Connection, scope: ScopeKey, *, limit: int) -> list[dict[str, Any]]:
    """Return up to `limit` trajectories of the scope that no distillation has taken, oldest first, each with
    its cube's columns and embedding."""
    query = sql.SQL(
        "SELECT {columns} FROM trajectories t JOIN memcubes m ON m.id = t.cube_id "
        "WHERE t.tenant = %(tenant)s AND t.agent_id = %(agent_id)s AND {user} AND t.distilled_at IS NULL "
        "ORDER BY t.created_at, t.cube_id LIMIT %(limit)s"
    ).format(columns=_COLUMNS, user=_user(scope.user_id))
    return conn.execute(query, {"tenant": scope.tenant, "agent_id": scope.agent_id, "user_id": scope.user_id,
                                "limit": limit}).fetchall()


def get_trajectories(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return the trajectories among `cube_ids` (in no particular order), with their embeddings."""
    query = sql.SQL("SELECT {columns} FROM trajectories t JOIN memcubes m ON m.id = t.cube_id "
                    "WHERE t.tenant = %s AND t.cube_id = ANY(%s)").format(columns=_COLUMNS)
    return conn.execute(query, (tenant, list(cube_ids))).fetchall()


def similar_trajectories(conn: psycopg.Connection, scope: ScopeKey, *, vector: np.ndarray, k: int,
                         exclude: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return the scope's `k` distilled active trajectories whose tasks are nearest `vector`, nearest first.
    Exact distances over the scope's trajectories (a scope holds few next to its other cubes)."""
    query = sql.SQL(
        "SELECT {columns} FROM trajectories t JOIN memcubes m ON m.id = t.cube_id "
        "WHERE t.tenant = %(tenant)s AND t.agent_id = %(agent_id)s AND {user} AND t.distilled_at IS NOT NULL "
        "AND m.status = 'active' AND m.embedding IS NOT NULL AND t.cube_id <> ALL(%(exclude)s) "
        "ORDER BY m.embedding <=> %(q)s, m.id LIMIT %(k)s"
    ).format(columns=_COLUMNS, user=_user(scope.user_id))
    return conn.execute(query, {"tenant": scope.tenant, "agent_id": scope.agent_id, "user_id": scope.user_id,
                                "q": vector, "k": k, "exclude": list(exclude)}).fetchall()


def mark_distilled(conn: psycopg.Connection, *, cube_ids: Sequence[UUID], job_id: UUID) -> int:
    """Mark trajectories as taken by a job; return how many were still pending."""
    return conn.execute(SQL_MARK_DISTILLED, (job_id, list(cube_ids))).rowcount


def finish_scope(conn: psycopg.Connection, scope: ScopeKey, *, job_id: UUID) -> int:
    """Bump the scope's generation after a distillation write and recount what is pending; return that count."""
    row = conn.execute(SQL_FINISH_SCOPE, {"tenant": scope.tenant, "agent_id": scope.agent_id,
                                          "user_id": scope.user_id, "job": job_id}).fetchone()
    return row["pending_trajectories"]


def scopes_to_distill(conn: psycopg.Connection, *, idle_seconds: float | None, failed_within: float,
                      limit: int) -> list[ScopeKey]:
    """Return scopes with pending trajectories, no queued or running distillation, and none failed in the last
    `failed_within` seconds; with `idle_seconds`, only scopes that have had no trajectory for that long."""
    rows = conn.execute(SQL_SCOPES_TO_DISTILL, {"idle": idle_seconds is not None, "idle_seconds": idle_seconds or 0,
                                                "failed_within": failed_within, "limit": limit}).fetchall()
    return [ScopeKey(r["tenant"], r["agent_id"], r["user_id"]) for r in rows]


def list_trajectories(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None, limit: int,
                      cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of an agent's active trajectories (of one user, if given), newest first, and the cursor
    of the next page (None at the end)."""
    conditions = [sql.SQL("t.tenant = %(tenant)s"), sql.SQL("t.agent_id = %(agent_id)s"),
                  sql.SQL("m.status = 'active'")]
    params: dict[str, Any] = {"tenant": tenant, "agent_id": agent_id, "user_id": user_id, "limit": limit + 1}
    if user_id is not None:
        conditions.append(_user(user_id))
    if cursor:
        params["after_at"], params["after_id"] = decode_cursor(cursor, datetime, UUID)
        conditions.append(sql.SQL("(t.created_at, t.cube_id) < (%(after_at)s, %(after_id)s)"))
    query = sql.SQL(
        "SELECT {columns} FROM trajectories t JOIN memcubes m ON m.id = t.cube_id WHERE {where} "
        "ORDER BY t.created_at DESC, t.cube_id DESC LIMIT %(limit)s"
    ).format(columns=_COLUMNS, where=sql.SQL(" AND ").join(conditions))
    rows = conn.execute(query, params).fetchall()
    next_cursor = encode_cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
    return rows[:limit], next_cursor
