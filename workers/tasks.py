"""The tasks: ids and primitives in, one memcube call, a small dict out. Each is idempotent through checks
in SQL (a job's lease, its scope's mark or generation), acknowledged late, and retried only on transient errors."""

from __future__ import annotations

import logging
import uuid
from typing import Any
from uuid import UUID

import psycopg
import psycopg_pool
import redis
from celery import shared_task

from memcube.config import Settings
from memcube.consolidation import trigger
from memcube.consolidation.run import run_consolidation
from memcube.errors import Conflict, NotFound, Unavailable
from memcube.jobs import JobBusy
from memcube.lessons import trigger as lesson_trigger
from memcube.lessons.distill import run_distillation
from memcube.llm import LLM, build_llm
from memcube.maintenance import page_scopes
from memcube.vector_index import fill_pending
from memcube.runtime import Runtime, open_runtime

log = logging.getLogger(__name__)

# Errors that may pass: the database, Redis or the embedder was unreachable, or the scope kept changing.
TRANSIENT = (psycopg.OperationalError, psycopg_pool.PoolTimeout, redis.ConnectionError, Unavailable, Conflict)
MAX_RETRIES = 5
# A job leased by a live worker is looked at again when the lease may have run out, this many times.
MAX_BUSY_RETRIES = 100

# What this worker process opened at start (worker_process_init).
_process: dict[str, Any] = {}


def open_process_runtime(settings: Settings) -> None:
    """Open the pool, Redis, the embedder and the LLM client of this worker process."""
    _process["runtime"] = open_runtime(settings)
    _process["llm"] = build_llm(settings)
    log.info("worker process ready: embedder %s, LLM %s", _process["runtime"].embedder.name,
             settings.llm_model if _process["llm"] else "none (heuristics)")


def close_process_runtime() -> None:
    runtime = _process.pop("runtime", None)
    if runtime is not None:
        runtime.close()


def _runtime() -> tuple[Runtime, LLM | None]:
    return _process["runtime"], _process.get("llm")


def _backoff(retries: int) -> float:
    return min(60.0, 2.0 ** retries)


def _run_job(task: Any, run: Any, job_id: str, *, transient: int = 0, busy: int = 0) -> dict[str, Any]:
    """Run a job with `run` (run_consolidation or run_distillation); retry while another worker holds it (up to
    MAX_BUSY_RETRIES times), and on transient errors (up to MAX_RETRIES times, counted apart: a job that waited
    long for a busy lease still gets every retry of a database blip)."""
    runtime, llm = _runtime()
    try:
        return run(runtime.pool, job_id=UUID(job_id), embedder=runtime.embedder, settings=runtime.settings, llm=llm,
                   owner=f"{task.request.id}:{uuid.uuid4().hex}")
    except NotFound:
        log.warning("job %s does not exist; nothing to do", job_id)
        return {"job_id": job_id, "state": "missing"}
    except JobBusy as exc:
        if busy >= MAX_BUSY_RETRIES:
            log.error("job %s: still leased elsewhere after %d looks; the scan publishes it again later", job_id, busy)
            raise
        raise task.retry(exc=exc, countdown=exc.retry_in,
                         kwargs={"job_id": job_id, "transient": transient, "busy": busy + 1}) from exc
    except TRANSIENT as exc:
        if transient >= MAX_RETRIES:
            # The job stays unfinished with its lease released; the scan publishes it again later.
            log.error("job %s: giving up for now after %d retries: %s", job_id, transient, exc)
            raise
        raise task.retry(exc=exc, countdown=_backoff(transient),
                         kwargs={"job_id": job_id, "transient": transient + 1, "busy": busy}) from exc


# max_retries=None: _run_job counts busy looks and transient retries itself, each against its own bound.
@shared_task(name="memcube.consolidate", bind=True, acks_late=True, max_retries=None)
def consolidate(self: Any, job_id: str, transient: int = 0, busy: int = 0) -> dict[str, Any]:
    """Run a consolidation job (see memcube.consolidation.run); a finished job is left as it is."""
    return _run_job(self, run_consolidation, job_id, transient=transient, busy=busy)


@shared_task(name="memcube.distill", bind=True, acks_late=True, max_retries=None)
def distill(self: Any, job_id: str, transient: int = 0, busy: int = 0) -> dict[str, Any]:
    """Run a distillation job (see memcube.lessons.distill); a finished job is left as it is."""
    return _run_job(self, run_distillation, job_id, transient=transient, busy=busy)


@shared_task(name="memcube.scan", bind=True, acks_late=True, max_retries=MAX_RETRIES)
def scan(self: Any, schedule: bool = False, distill_schedule: bool = False) -> dict[str, Any]:
    """Queue consolidations of quiet sessions (with `schedule`, of every scope with pending episodes) and
    distillations of quiet scopes (with `distill_schedule`, of every scope with pending trajectories), and
    publish again the jobs nobody works on."""
    runtime, _ = _runtime()
    try:
        with runtime.pool.connection() as conn:
            result = trigger.scan(conn, runtime.settings, schedule=schedule)
            distills = lesson_trigger.scan(conn, runtime.settings, schedule=distill_schedule)
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    return {"queued": result.queued, "distills_queued": distills, "republished": result.republished,
            "purged": result.purged}


@shared_task(name="memcube.index", bind=True, acks_late=True, max_retries=MAX_RETRIES)
def index(self: Any) -> dict[str, Any]:
    """Sweep the older rows of scopes that outgrew the exact plan into the HNSW index (memcube/vector_index.py).
    Sweeping a scope twice changes nothing the second time."""
    runtime, _ = _runtime()
    try:
        return fill_pending(runtime.pool)
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc


@shared_task(name="memcube.page", bind=True, acks_late=True, max_retries=MAX_RETRIES)
def page(self: Any, tenant: str | None = None, agent_id: str | None = None,
         user_id: str | None = None) -> dict[str, Any]:
    """Page one scope between the core and archival tiers, or (without arguments) every scope with a core
    tier. Paging a scope twice changes nothing the second time."""
    runtime, _ = _runtime()
    try:
        return page_scopes(runtime.pool, runtime.settings, tenant=tenant, agent_id=agent_id, user_id=user_id)
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
