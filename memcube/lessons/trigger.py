"""What starts a distillation, besides a client's request (POST /v1/agents/{agent_id}/distill):
- N new trajectories in a scope: counted in the transaction that stores them, which also queues the job;
- a scope that has had no trajectory for a while, and the beat schedule: a periodic scan of pending scopes.
"""

from __future__ import annotations

from typing import Any

import psycopg

from memcube import jobs
from memcube.config import Settings, env_name
from memcube.consolidation.trigger import RETRY_FAILED_AFTER_SECONDS, SCAN_LIMIT
from memcube.errors import InvalidInput, NotFound
from memcube.store import jobs as job_store
from memcube.store import trajectories as store
from memcube.store.consolidation import ScopeKey


def enqueue_distillation(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                         trigger: str, engine: str | None = None,
                         actor: str | None = None) -> tuple[dict[str, Any], bool]:
    """Queue a distillation of a scope (user_id None: every user of the agent); see jobs.enqueue_job."""
    return jobs.enqueue_job(conn, kind="distill", tenant=tenant, agent_id=agent_id, user_id=user_id,
                            trigger=trigger, engine=engine, actor=actor)


def request_distillation(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                         engine: str | None, actor: str | None, settings: Settings) -> tuple[dict[str, Any], bool]:
    """Queue a distillation a client asked for (`auto` or no engine: the configured one, decided when the job
    runs). Raises InvalidInput when the LLM engine is asked for and no LLM is configured, NotFound when the
    agent (or that user of it) has no trajectories in the tenant."""
    if engine == "llm" and not settings.llm_base_url:
        setting = env_name("llm_base_url")
        raise InvalidInput(f"engine 'llm' needs an LLM: {setting} is not set (ask for 'heuristic' or 'auto')",
                           details={"setting": setting})
    if not store.has_trajectories(conn, tenant=tenant, agent_id=agent_id, user_id=user_id):
        whose = f"agent {agent_id!r}" if user_id is None else f"user {user_id!r} of agent {agent_id!r}"
        raise NotFound(f"{whose} has no trajectories to distil")
    return enqueue_distillation(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, trigger="api",
                                engine=None if engine == "auto" else engine, actor=actor)


def note_trajectory(conn: psycopg.Connection, scope: ScopeKey, *, settings: Settings) -> dict[str, Any] | None:
    """Count a new trajectory of a scope in the caller's transaction; when its pending trajectories reach
    MEMCUBE_DISTILL_AFTER_TRAJECTORIES, queue a distillation (or join the one queued) and return that job."""
    pending = store.note_trajectory(conn, scope)
    threshold = settings.distill_after_trajectories
    if not threshold or pending < threshold or job_store.failed_lately(
            conn, tenant=scope.tenant, kind="distill", agent_id=scope.agent_id, user_id=scope.user_id,
            seconds=RETRY_FAILED_AFTER_SECONDS):
        return None
    job, _ = enqueue_distillation(conn, tenant=scope.tenant, agent_id=scope.agent_id, user_id=scope.user_id,
                                  trigger="trajectories", actor="trigger:trajectories")
    return job


def scan(conn: psycopg.Connection, settings: Settings, *, schedule: bool = False) -> int:
    """Queue distillations of scopes that have had no trajectory for MEMCUBE_DISTILL_IDLE_SECONDS (with
    `schedule`, of every scope with pending trajectories); return how many were queued."""
    if not schedule and settings.distill_idle_seconds <= 0:
        return 0
    scopes = store.scopes_to_distill(conn, idle_seconds=None if schedule else settings.distill_idle_seconds,
                                     failed_within=RETRY_FAILED_AFTER_SECONDS, limit=SCAN_LIMIT)
    queued = 0
    for scope in scopes:
        _, created = enqueue_distillation(conn, tenant=scope.tenant, agent_id=scope.agent_id, user_id=scope.user_id,
                                          trigger="schedule" if schedule else "idle",
                                          actor="trigger:schedule" if schedule else "trigger:idle")
        queued += created
    return queued
