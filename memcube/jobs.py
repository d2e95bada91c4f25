"""Jobs: queue background work with its outbox message, claim it under a lease, keep the lease, run it scope
by scope, finish it. Consolidation and distillation are both jobs of this kind (run_job)."""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence, TypeVar
from uuid import UUID

import psycopg
import psycopg_pool

from memcube.config import Settings, env_name
from memcube.errors import ConfigError, Conflict, InvalidInput, NotFound
from memcube.llm import LLMFailed, Usage
from memcube.models import JobFilter
from memcube.store import consolidation as scope_store
from memcube.store import jobs as job_store
from memcube.store import outbox as outbox_store
from memcube.store.cursor import check_limit, decode_cursor, encode_cursor

log = logging.getLogger(__name__)

# The task that runs each kind of job.
TASKS = {"consolidate": "memcube.consolidate", "distill": "memcube.distill"}
CONSOLIDATE_TASK = TASKS["consolidate"]
# Plans of one batch before the job gives up for now (and is retried): the scope keeps changing under it.
MAX_REPLANS = 3
# Batches one job takes from a scope; a scope written to without pause is left to the next job.
MAX_BATCHES = 100

P = TypeVar("P")


class JobBusy(Conflict):
    """Another worker holds the job's lease; try again once it may have run out."""

    def __init__(self, job_id: UUID, retry_in: float) -> None:
        super().__init__(f"job {job_id} is leased by another worker", details={"retry_in": retry_in})
        self.retry_in = retry_in


class LeaseLost(Exception):
    """Another worker took the job over (this one stalled past its lease): stop without writing."""


class Replan(Exception):
    """What a plan read changed before it was written: plan again."""


def enqueue_job(conn: psycopg.Connection, *, kind: str, tenant: str, agent_id: str, user_id: str | None,
                trigger: str, engine: str | None = None, actor: str | None = None) -> tuple[dict[str, Any], bool]:
    """Queue a job of `kind` on a scope (user_id None: every user of the agent) and its outbox message, in the
    caller's transaction. Return (job, created): a job already queued for the scope is returned instead."""
    for _ in range(3):
        row = job_store.insert_job(conn, tenant=tenant, kind=kind, agent_id=agent_id, user_id=user_id,
                                   trigger=trigger, engine=engine, actor=actor)
        if row is not None:
            outbox_store.insert_message(conn, task=TASKS[kind], payload={"job_id": str(row["id"])})
            return row, True
        existing = job_store.find_queued_job(conn, tenant=tenant, kind=kind, agent_id=agent_id,
                                             user_id=user_id, engine=engine)
        if existing is not None:
            return existing, False
        # The queued job started between the two statements: queue a new one.
    raise Conflict(f"could not queue a {kind} job of agent {agent_id}: the scope's jobs keep changing")


def enqueue_consolidation(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                          trigger: str, engine: str | None = None,
                          actor: str | None = None) -> tuple[dict[str, Any], bool]:
    """Queue a consolidation of a scope (see enqueue_job)."""
    return enqueue_job(conn, kind="consolidate", tenant=tenant, agent_id=agent_id, user_id=user_id,
                       trigger=trigger, engine=engine, actor=actor)


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


@dataclass
class Work:
    """What a claimed job does: the engine it runs with (recorded on the job), the counts it keeps, the users
    whose scopes it takes, and the function that works through one of them (raising LeaseLost or LLMFailed)."""

    engine: str
    model: str | None
    prompt_version: str | None
    count_keys: Sequence[str]
    users: Sequence[str | None]
    run_scope: Callable[[str | None, LeaseKeeper], None]


def run_job(pool: psycopg_pool.ConnectionPool, *, job_id: UUID, owner: str, settings: Settings,
            start: Callable[[dict[str, Any], Usage], Work]) -> dict[str, Any]:
    """Claim a job, `start` it (a ConfigError fails it), run each of its scopes under a kept lease and finish it;
    return {job_id, state, engine, counts, error}. A finished job is returned as it is. Raises JobBusy while
    another worker holds it; a transient error (database, embedder) propagates after the lease is released, so
    the caller may retry. An LLM that gives no valid answer fails the job, with the tokens it used."""
    job = claim(pool, job_id=job_id, owner=owner, settings=settings)
    if job is None:
        return job_result(pool, job_id)
    usage = Usage()
    try:
        work = start(job, usage)
    except ConfigError as exc:
        finish(pool, job_id=job_id, owner=owner, error=exc.message)
        return job_result(pool, job_id)
    with pool.connection() as conn:
        job_store.set_engine(conn, job_id=job_id, engine=work.engine, model=work.model,
                             prompt_version=work.prompt_version, zero_counts=dict.fromkeys(work.count_keys, 0))
    try:
        with LeaseKeeper(pool, job_id=job_id, owner=owner, lease_seconds=settings.job_lease_seconds) as lease:
            for user_id in work.users:
                work.run_scope(user_id, lease)
    except LLMFailed as exc:
        log.warning("job %s failed: %s", job_id, exc.message)
        finish(pool, job_id=job_id, owner=owner, error=exc.message, usage=usage.take())
        return job_result(pool, job_id)
    except LeaseLost:
        log.warning("job %s: another worker took it over; leaving it to them", job_id)
        return job_result(pool, job_id)
    except BaseException:
        # Transient (database, embedder) or an interrupt: give the job back so the retry need not wait.
        try:
            release(pool, job_id=job_id, owner=owner)
        except (psycopg.Error, psycopg_pool.PoolTimeout):
            log.warning("job %s: could not release the lease; it runs out in %.0f s", job_id,
                        settings.job_lease_seconds)
        raise
    finish(pool, job_id=job_id, owner=owner, usage=usage.take())
    return job_result(pool, job_id)


def resolve_engine(requested: str | None, configured: str, settings: Settings) -> str:
    """Return the engine a job runs with: the one it asked for, else the configured one, where `auto` is the
    LLM when MEMCUBE_LLM_BASE_URL is set and heuristics otherwise."""
    if requested:
        return requested
    if configured == "auto":
        return "llm" if settings.llm_base_url else "heuristic"
    return configured


def run_batches(pool: psycopg_pool.ConnectionPool, *, plan: Callable[[], P | None],
                write: Callable[[psycopg.Connection, P, dict[str, int]], dict[str, int]], usage: Usage,
                what: str) -> None:
    """Plan and write a scope's batches until `plan` finds nothing (or MAX_BATCHES). Each batch is planned outside
    any transaction and written by `write` in one (given the LLM usage of its plan, to add to the job); a write
    that raises Replan is planned again, up to MAX_REPLANS times, then Conflict is raised. Usage that no write
    recorded goes back to `usage`, so the job's end records it."""
    for _ in range(MAX_BATCHES):
        for _ in range(MAX_REPLANS):
            batch = plan()
            if batch is None:
                return
            taken = usage.take()
            try:
                with pool.connection() as conn:
                    counts = write(conn, batch, taken)
            except Replan:
                usage.add(calls=taken["llm_calls"], tokens_in=taken["tokens_in"], tokens_out=taken["tokens_out"])
                log.info("%s changed while planning; planning again", what)
                continue
            except BaseException:
                usage.add(calls=taken["llm_calls"], tokens_in=taken["tokens_in"], tokens_out=taken["tokens_out"])
                raise
            log.info("%s: batch written; job counts %s", what, counts)
            break
        else:
            raise Conflict(f"{what} kept changing; the job will be retried")


def new_owner() -> str:
    """Return a lease owner name no other attempt uses."""
    return uuid.uuid4().hex


def job_result(pool: psycopg_pool.ConnectionPool, job_id: UUID) -> dict[str, Any]:
    """Return a job's outcome as a task reports it."""
    with pool.connection() as conn:
        job = job_store.find_job(conn, job_id=job_id)
    if job is None:
        return {"job_id": str(job_id), "state": "missing"}
    return {"job_id": str(job_id), "state": job["state"], "engine": job["engine"], "counts": job["counts"],
            "error": job["error"]}
