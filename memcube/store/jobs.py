"""SQL for `jobs`: background work with a lease. Functions never commit: the caller owns the transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from memcube.errors import NotFound

JOB_COLUMNS = (
    "id, tenant, kind, agent_id, user_id, trigger, state, engine, model, prompt_version, counts, tokens_in, "
    "tokens_out, llm_calls, error, attempts, actor, lease_owner, lease_until, created_at, started_at, finished_at, "
    "updated_at"
)

SQL_INSERT = (
    "INSERT INTO jobs (id, tenant, kind, agent_id, user_id, trigger, engine, actor) "
    "VALUES (%(id)s, %(tenant)s, %(kind)s, %(agent_id)s, %(user_id)s, %(trigger)s, %(engine)s, %(actor)s) "
    "ON CONFLICT (tenant, kind, agent_id, user_id, engine) WHERE state = 'queued' DO NOTHING "
    "RETURNING " + JOB_COLUMNS
)
SQL_FIND_QUEUED = (
    "SELECT " + JOB_COLUMNS + " FROM jobs WHERE tenant = %(tenant)s AND kind = %(kind)s AND agent_id = %(agent_id)s "
    "AND user_id IS NOT DISTINCT FROM %(user_id)s AND engine IS NOT DISTINCT FROM %(engine)s AND state = 'queued'"
)
SQL_GET = "SELECT " + JOB_COLUMNS + " FROM jobs WHERE tenant = %s AND id = %s"
SQL_GET_ANY = "SELECT " + JOB_COLUMNS + " FROM jobs WHERE id = %s"
SQL_LOCK = "SELECT " + JOB_COLUMNS + " FROM jobs WHERE id = %s FOR UPDATE"
# A job is free when it is queued, or running under a lease that ran out (its worker died).
SQL_CLAIM = (
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = coalesce(started_at, now()), "
    "lease_owner = %(owner)s, lease_until = clock_timestamp() + make_interval(secs => %(lease)s), "
    "updated_at = now() "
    "WHERE id = %(id)s AND (state = 'queued' OR (state = 'running' AND lease_until < clock_timestamp())) "
    "AND attempts < %(max_attempts)s RETURNING " + JOB_COLUMNS
)
SQL_GIVE_UP = (
    "UPDATE jobs SET state = 'failed', finished_at = now(), updated_at = now(), lease_owner = NULL, "
    "lease_until = NULL, error = %(error)s "
    "WHERE id = %(id)s AND state IN ('queued', 'running') AND attempts >= %(max_attempts)s "
    "AND (state = 'queued' OR lease_until < clock_timestamp()) RETURNING " + JOB_COLUMNS
)
SQL_RENEW = (
    "UPDATE jobs SET lease_until = clock_timestamp() + make_interval(secs => %s) "
    "WHERE id = %s AND state = 'running' AND lease_owner = %s"
)
SQL_RELEASE = (
    "UPDATE jobs SET lease_until = clock_timestamp(), updated_at = now() "
    "WHERE id = %s AND state = 'running' AND lease_owner = %s"
)
# The zero counts go under the stored ones, so a job that finds nothing still shows every count.
SQL_SET_ENGINE = (
    "UPDATE jobs SET engine = %s, model = %s, prompt_version = %s, counts = %s || counts WHERE id = %s"
)
SQL_ADD_PROGRESS = (
    "UPDATE jobs SET counts = %(counts)s, tokens_in = tokens_in + %(tokens_in)s, "
    "tokens_out = tokens_out + %(tokens_out)s, llm_calls = llm_calls + %(llm_calls)s, updated_at = now() "
    "WHERE id = %(id)s"
)
SQL_FINISH = (
    "UPDATE jobs SET state = %(state)s, error = %(error)s, finished_at = now(), updated_at = now(), "
    "lease_owner = NULL, lease_until = NULL "
    "WHERE id = %(id)s AND state = 'running' AND lease_owner = %(owner)s RETURNING " + JOB_COLUMNS
)
# Jobs nobody has touched for a while: running under an expired lease (their worker died), or still queued
# (their message was lost, or waits behind a long queue: publishing again is harmless).
SQL_STALLED = (
    "SELECT id, kind FROM jobs WHERE state IN ('queued', 'running') AND updated_at < now() - make_interval(secs => %s) "
    "AND (state = 'queued' OR lease_until < now()) ORDER BY updated_at LIMIT %s"
)
SQL_TOUCH = "UPDATE jobs SET updated_at = now() WHERE id = ANY(%s)"
SQL_FAILED_LATELY = (
    "SELECT 1 FROM jobs WHERE tenant = %(tenant)s AND kind = %(kind)s AND agent_id = %(agent_id)s "
    "AND user_id IS NOT DISTINCT FROM %(user_id)s AND state = 'failed' "
    "AND finished_at > now() - make_interval(secs => %(seconds)s) LIMIT 1"
)
SQL_PER_DAY = (
    "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, state, count(*) AS n FROM jobs "
    "WHERE tenant = %s AND created_at >= %s GROUP BY day, state ORDER BY day, state"
)
SQL_USAGE = (
    "SELECT count(*) AS jobs, coalesce(sum(tokens_in), 0) AS tokens_in, coalesce(sum(tokens_out), 0) AS tokens_out, "
    "coalesce(sum(llm_calls), 0) AS llm_calls FROM jobs WHERE tenant = %s AND created_at >= %s"
)


def insert_job(conn: psycopg.Connection, *, tenant: str, kind: str, agent_id: str, user_id: str | None,
               trigger: str, engine: str | None, actor: str | None) -> dict[str, Any] | None:
    """Insert a queued job and return it; None when the scope already has one queued with that engine."""
    return conn.execute(SQL_INSERT, {"id": uuid.uuid4(), "tenant": tenant, "kind": kind, "agent_id": agent_id,
                                     "user_id": user_id, "trigger": trigger, "engine": engine,
                                     "actor": actor}).fetchone()


def find_queued_job(conn: psycopg.Connection, *, tenant: str, kind: str, agent_id: str, user_id: str | None,
                    engine: str | None) -> dict[str, Any] | None:
    """Return the scope's queued job for that engine, or None."""
    return conn.execute(SQL_FIND_QUEUED, {"tenant": tenant, "kind": kind, "agent_id": agent_id,
                                          "user_id": user_id, "engine": engine}).fetchone()


def failed_lately(conn: psycopg.Connection, *, tenant: str, kind: str, agent_id: str, user_id: str | None,
                  seconds: float) -> bool:
    """Return whether a job of exactly this scope failed in the last `seconds`."""
    return conn.execute(SQL_FAILED_LATELY, {"tenant": tenant, "kind": kind, "agent_id": agent_id, "user_id": user_id,
                                            "seconds": seconds}).fetchone() is not None


def get_job(conn: psycopg.Connection, *, tenant: str, job_id: UUID) -> dict[str, Any]:
    """Return a job of the tenant; raises NotFound."""
    row = conn.execute(SQL_GET, (tenant, job_id)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return row


def find_job(conn: psycopg.Connection, *, job_id: UUID) -> dict[str, Any] | None:
    """Return a job of any tenant (for workers, which act on ids they were given), or None."""
    return conn.execute(SQL_GET_ANY, (job_id,)).fetchone()


def lock_job(conn: psycopg.Connection, *, job_id: UUID) -> dict[str, Any] | None:
    """Return a job locked until the transaction ends, or None."""
    return conn.execute(SQL_LOCK, (job_id,)).fetchone()


def claim_job(conn: psycopg.Connection, *, job_id: UUID, owner: str, lease_seconds: float,
              max_attempts: int) -> dict[str, Any] | None:
    """Take a free job (queued, or running under an expired lease) for `owner`; None when it is not free."""
    return conn.execute(SQL_CLAIM, {"id": job_id, "owner": owner, "lease": lease_seconds,
                                    "max_attempts": max_attempts}).fetchone()


def give_up_job(conn: psycopg.Connection, *, job_id: UUID, max_attempts: int, error: str) -> dict[str, Any] | None:
    """Fail a free job that has used up its attempts; None when it has not."""
    return conn.execute(SQL_GIVE_UP, {"id": job_id, "max_attempts": max_attempts, "error": error}).fetchone()


def renew_lease(conn: psycopg.Connection, *, job_id: UUID, owner: str, lease_seconds: float) -> bool:
    """Extend the lease of a running job; False when `owner` no longer holds it."""
    return conn.execute(SQL_RENEW, (lease_seconds, job_id, owner)).rowcount == 1


def release_job(conn: psycopg.Connection, *, job_id: UUID, owner: str) -> None:
    """End `owner`'s lease now, so that the next attempt may take the job at once."""
    conn.execute(SQL_RELEASE, (job_id, owner))


def set_engine(conn: psycopg.Connection, *, job_id: UUID, engine: str, model: str | None,
               prompt_version: str | None, zero_counts: dict[str, int]) -> None:
    """Record which engine (and model and prompt) the job runs with, and start its counts at zero."""
    conn.execute(SQL_SET_ENGINE, (engine, model, prompt_version, Jsonb(zero_counts), job_id))


def add_progress(conn: psycopg.Connection, *, job_id: UUID, counts: dict[str, int], tokens_in: int,
                 tokens_out: int, llm_calls: int) -> None:
    """Store the job's counts and add to its token and call totals."""
    conn.execute(SQL_ADD_PROGRESS, {"id": job_id, "counts": Jsonb(counts), "tokens_in": tokens_in,
                                    "tokens_out": tokens_out, "llm_calls": llm_calls})


def finish_job(conn: psycopg.Connection, *, job_id: UUID, owner: str, state: str,
               error: str | None = None) -> dict[str, Any] | None:
    """Mark `owner`'s running job succeeded or failed; None when `owner` no longer holds it."""
    return conn.execute(SQL_FINISH, {"id": job_id, "owner": owner, "state": state, "error": error}).fetchone()


def stalled_jobs(conn: psycopg.Connection, *, quiet_seconds: float, limit: int) -> list[dict[str, Any]]:
    """Return the id and kind of unfinished jobs untouched for `quiet_seconds` that no live lease covers."""
    return conn.execute(SQL_STALLED, (quiet_seconds, limit)).fetchall()


def touch_jobs(conn: psycopg.Connection, job_ids: list[UUID]) -> None:
    """Mark jobs as just handled, so a scan does not pick them again at once."""
    conn.execute(SQL_TOUCH, (job_ids,))


def list_jobs(conn: psycopg.Connection, *, tenant: str, filters: dict[str, Any],
              after: tuple[datetime, UUID] | None, limit: int) -> list[dict[str, Any]]:
    """Return up to `limit` jobs of the tenant matching `filters` (agent_id, state, kind; None: any), newest first
    (through jobs_tenant or jobs_agent), after the position `after` (created_at, id) of the previous page."""
    conditions = [sql.SQL("tenant = %s")]
    params: list[Any] = [tenant]
    for field in ("agent_id", "state", "kind"):
        if filters.get(field) is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(field)))
            params.append(filters[field])
    if after is not None:
        conditions.append(sql.SQL("(created_at, id) < (%s, %s)"))
        params.extend(after)
    query = sql.SQL("SELECT {} FROM jobs WHERE {} ORDER BY created_at DESC, id DESC LIMIT %s").format(
        sql.SQL(JOB_COLUMNS), sql.SQL(" AND ").join(conditions))
    return conn.execute(query, [*params, limit]).fetchall()


def jobs_per_day(conn: psycopg.Connection, *, tenant: str, since: datetime) -> list[dict[str, Any]]:
    """Return (day, state, n): the tenant's jobs created each UTC day since `since`, by state."""
    return conn.execute(SQL_PER_DAY, (tenant, since)).fetchall()


def token_usage(conn: psycopg.Connection, *, tenant: str, since: datetime) -> dict[str, Any]:
    """Return the number of the tenant's jobs created since `since` and their LLM tokens in and out and calls."""
    return conn.execute(SQL_USAGE, (tenant, since)).fetchone()
