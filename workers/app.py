"""The Celery app, built from the settings: Redis as broker, the task options every task shares, the beat
schedule, and what each worker process opens once.

- Every worker process (a prefork child) opens its runtime (pool, embedder, LLM client) once, at start.
- The worker's main process runs the outbox relay: it publishes each committed outbox row as a task.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import kombu.exceptions
import redis
from celery import Celery, signals

from memcube.config import Settings
from memcube.errors import ConfigError, Unavailable
from memcube.outbox import OutboxRelay, Publish
from memcube.runtime import celery_broker_url, require_urls

log = logging.getLogger(__name__)

# What this process was built with: set by create_celery, read by the signal handlers and tasks.
_state: dict[str, Any] = {}


def broker_url(settings: Settings) -> str:
    """Return the kombu URL of the broker: MEMCUBE_BROKER_URL, else REDIS_URL; raises ConfigError."""
    url = settings.broker_url or settings.redis_url
    if not url:
        raise ConfigError("REDIS_URL (or MEMCUBE_BROKER_URL) must be set for a worker or beat; "
                          "`memcube up` starts the embedded stack and sets it")
    return celery_broker_url(url)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Return the periodic tasks: the idle scan, the HNSW index's fill of grown scopes and, if on, consolidation of every scope with pending episodes,
    distillation of every scope with pending trajectories, and paging. Each expires after its own interval, so a worker that was down does not face a pile of stale runs."""
    schedule = {
        "scan": {"task": "memcube.scan", "schedule": settings.scan_interval_seconds,
                 "kwargs": {"schedule": False}, "options": {"expires": settings.scan_interval_seconds}},
        # Scopes that outgrew the exact plan enter the HNSW index (memcube/vector_index.py).
        "index": {"task": "memcube.index", "schedule": settings.scan_interval_seconds,
                  "options": {"expires": settings.scan_interval_seconds}},
    }
    if settings.consolidate_every_seconds > 0:
        schedule["consolidate-pending"] = {
            "task": "memcube.scan", "schedule": settings.consolidate_every_seconds, "kwargs": {"schedule": True},
            "options": {"expires": settings.consolidate_every_seconds}}
    if settings.distill_every_seconds > 0:
        schedule["distill-pending"] = {
            "task": "memcube.scan", "schedule": settings.distill_every_seconds,
            "kwargs": {"distill_schedule": True}, "options": {"expires": settings.distill_every_seconds}}
    if settings.page_every_seconds > 0:
        schedule["page"] = {"task": "memcube.page", "schedule": settings.page_every_seconds,
                            "options": {"expires": settings.page_every_seconds}}
    return schedule


def create_celery(settings: Settings) -> Celery:
    """Build the Celery app; raises ConfigError without a broker URL."""
    url = broker_url(settings)
    # No result backend: a job's state lives in PostgreSQL (GET /v1/jobs/{id}), and a backend would make
    # every publish depend on a second Redis connection (it subscribes to the result of each task sent).
    app = Celery("memcube", broker=url, include=["workers.tasks"], set_as_current=True)
    app.conf.update(
        task_default_queue=settings.worker_queue,
        task_serializer="json",
        accept_content=["json"],
        # A task is acknowledged when it ends, and given back when its process dies: nothing is lost,
        # and tasks are idempotent, so running one twice is harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        # A process's first start loads the embedding model, which takes longer than the default 4 s.
        worker_proc_alive_timeout=180,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_seconds,
            # Look for tasks of dead workers often enough for the visibility timeout to be what counts.
            "unacked_restore_interval": max(1, min(10, int(settings.broker_visibility_timeout_seconds / 2))),
            "unacked_restore_throttle": 1,
        },
        beat_schedule=beat_schedule(settings),
    )
    _state["settings"] = settings
    _state["app"] = app
    return app


def settings() -> Settings:
    """Return the settings this process's app was built with."""
    return _state["settings"]


def publisher(app: Celery, queue: str) -> Publish:
    """Return a function that publishes a task to the broker, raising Unavailable when it is down."""

    def publish(task: str, payload: dict[str, Any]) -> None:
        try:
            app.send_task(task, kwargs=payload, queue=queue, retry=True,
                          retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5,
                                        "interval_max": 0.5})
        except (kombu.exceptions.OperationalError, redis.RedisError, OSError) as exc:
            raise Unavailable(f"the broker did not take {task}: {exc}") from exc

    return publish


def worker_name() -> str:
    """A node name unique on this host, so several workers can run side by side."""
    return f"memcube-{os.getpid()}@{socket.gethostname()}"


@signals.worker_process_init.connect
def _open_process_runtime(**_: Any) -> None:
    from workers import tasks

    tasks.open_process_runtime(settings())


@signals.worker_process_shutdown.connect
def _close_process_runtime(**_: Any) -> None:
    from workers import tasks

    tasks.close_process_runtime()


@signals.worker_ready.connect
def _start_relay(**_: Any) -> None:
    current = settings()
    database_url, _ = require_urls(current)
    relay = OutboxRelay(database_url, publisher(_state["app"], current.worker_queue),
                        poll_seconds=current.outbox_poll_seconds)
    relay.start()
    _state["relay"] = relay
    log.info("outbox relay started")


@signals.worker_shutdown.connect
def _stop_relay(**_: Any) -> None:
    relay = _state.pop("relay", None)
    if relay is not None:
        relay.stop()
