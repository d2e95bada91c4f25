"""Jobs: queue background work with its outbox message, claim it under a lease, keep the lease, finish it."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import psycopg
import psycopg_pool

from memcube.config import Settings, env_name
from memcube.errors import Conflict, InvalidInput, NotFound
from memcube.models import JobFilter
from memcube.store import consolidation as scope_store
from memcube.store import jobs as job_store
from memcube.store import outbox as outbox_store
from memcube.store.cursor import check_limit, decode_cursor, encode_cursor

log = logging.getLogger(__name__)

CONSOLIDATE_TASK = "memcube.consolidate"


class JobBusy(Conflict):
    """Another worker holds the job's lease; try again once it may have run out."""

    def __init__(self, job_id: UUID, retry_in: float) -> None:
        super().__init__(f"job {job_id} is leased by another worker", details={"retry_in": retry_in})
        self.retry_in = retry_in


def enqueue_consolidation(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                          trigger: str, engine: str | None = None,
                          actor: str | None = None) -> tuple[dict[str, Any], bool]:
    """Queue a consolidation of a scope (user_id None: every user of the agent) and its outbox message, in the
    caller's transaction. Return (job, created): a job already queued for the scope is returned instead."""
    for _ in range(3):
        row = job_store.insert_job(conn, tenant=tenant, kind="consolidate", agent_id=agent_id, user_id=user_id,
                                   trigger=trigger, engine=engine, actor=actor)
        if row is not None:
            outbox_store.insert_message(conn, task=CONSOLIDATE_TASK, payload={"job_id": str(row["id"])})
            return row, True
        existing = job_store.find_queued_job(conn, tenant=tenant, kind="consolidate", agent_id=agent_id,
                                             user_id=user_id, engine=engine)
        if existing is not None:
            return existing, False
        # The queued job started between the two statements: queue a new one.
    raise Conflict(f"could not queue a consolidation of agent {agent_id}: the scope's jobs keep changing")


def request_consolidation(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                          engine: str | None, actor: str | None, settings: Settings) -> tuple[dict[str, Any], bool]:
    """Queue a consolidation a client asked for, as enqueue_consolidation does (`auto` or no engine: the
    configured one, decided when the job runs). Raises InvalidInput when the LLM engine is asked for and no
    LLM is configured, NotFound when the agent (or that user of it) has no episodes in the tenant."""
    if engine == "llm" and not settings.llm_base_url:
        setting = env_name("llm_base_url")
        raise InvalidInput(f"engine 'llm' needs an LLM: {setting} is not set (ask for 'heuristic' or 'auto')",
                           details={"setting": setting})
    if not scope_store.has_episodes(conn, tenant=tenant, agent_id=agent_id, user_id=user_id):
        whose = f"agent {agent_id!r}" if user_id is None else f"user {user_id!r} of agent {agent_id!r}"
        raise NotFound(f"{whose} has no episodes to consolidate")
    return enqueue_consolidation(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, trigger="api",
                                 engine=None if engine == "auto" else engine, actor=actor)


def get_job(conn: psycopg.Connection, *, tenant: str, job_id: UUID) -> dict[str, Any]:
    """Return a job of the tenant; raises NotFound."""
    return job_store.get_job(conn, tenant=tenant, job_id=job_id)


def list_jobs(conn: psycopg.Connection, *, tenant: str, filters: JobFilter, limit: int,
              cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of the tenant's jobs matching `filters`, newest first, and the next page's cursor (None at
    the end); raises InvalidInput for a bad limit or cursor."""
    check_limit(limit)
    after = decode_cursor(cursor, datetime, UUID) if cursor else None
    rows = job_store.list_jobs(conn, tenant=tenant, filters=filters.model_dump(), after=after, limit=limit + 1)
    last = rows[limit - 1] if len(rows) > limit else None
    return rows[:limit], None if last is None else encode_cursor(last["created_at"], last["id"])


def claim(pool: psycopg_pool.ConnectionPool, *, job_id: UUID, owner: str,
          settings: Settings) -> dict[str, Any] | None:
    """Take the job for `owner` and return it; None when there is nothing to do (finished, or failed after
    too many attempts). Raises JobBusy while another worker's lease runs, NotFound for an unknown job."""
    with pool.connection() as conn:
        row = job_store.claim_job(conn, job_id=job_id, owner=owner, lease_seconds=settings.job_lease_seconds,
                                  max_attempts=settings.job_max_attempts)
        if row is not None:
            return row
        if job_store.give_up_job(conn, job_id=job_id, max_attempts=settings.job_max_attempts,
                                 error=f"gave up after {settings.job_max_attempts} attempts") is not None:
            log.error("job %s failed: it used up its %d attempts", job_id, settings.job_max_attempts)
            return None
        current = job_store.find_job(conn, job_id=job_id)
    if current is None:
        raise NotFound(f"job {job_id} not found")
    if current["state"] == "running":
        remaining = (current["lease_until"] - datetime.now(timezone.utc)).total_seconds()
        raise JobBusy(job_id, retry_in=max(1.0, remaining + 1.0))
    return None


def finish(pool: psycopg_pool.ConnectionPool, *, job_id: UUID, owner: str, error: str | None = None,
           usage: dict[str, int] | None = None) -> dict[str, Any] | None:
    """Mark the job succeeded (or failed with `error`), adding the LLM usage not recorded yet; None when
    `owner` lost the lease meanwhile (the new owner finishes it)."""
    with pool.connection() as conn:
        if usage and any(usage.values()):
            current = job_store.find_job(conn, job_id=job_id)
            job_store.add_progress(conn, job_id=job_id, counts=current["counts"], **usage)
        return job_store.finish_job(conn, job_id=job_id, owner=owner, state="failed" if error else "succeeded",
                                    error=error)


def release(pool: psycopg_pool.ConnectionPool, *, job_id: UUID, owner: str) -> None:
    """Give the job back at once (before a retry), so the next attempt need not wait for the lease to run out."""
    with pool.connection() as conn:
        job_store.release_job(conn, job_id=job_id, owner=owner)


class LeaseKeeper:
    """Renews a job's lease every third of its length while the job runs, off the job's thread.

    `lost` is set if the lease was taken over (this worker stalled past it): the job must then not apply.
    """

    def __init__(self, pool: psycopg_pool.ConnectionPool, *, job_id: UUID, owner: str, lease_seconds: float) -> None:
        self._pool = pool
        self._job_id = job_id
        self._owner = owner
        self._lease = lease_seconds
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self._lease / 3):
            try:
                with self._pool.connection() as conn:
                    held = job_store.renew_lease(conn, job_id=self._job_id, owner=self._owner,
                                                 lease_seconds=self._lease)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                log.warning("could not renew the lease of job %s: %s", self._job_id, exc)
                continue
            if not held:
                log.warning("job %s: lease lost to another worker", self._job_id)
                self.lost.set()
                return
