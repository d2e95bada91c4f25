"""What starts a consolidation, besides a client's request (jobs.request_consolidation):
- N new episodes in a scope: counted in the transaction that inserts them, which also queues the job;
- a session gone quiet, and the beat schedule: a periodic scan of the scopes with pending episodes.
The scan also publishes again the jobs nobody works on, and forgets outbox rows sent long ago.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import psycopg

from memcube import jobs
from memcube.config import Settings
from memcube.store import consolidation as scope_store
from memcube.store import jobs as job_store
from memcube.store import outbox as outbox_store
from memcube.store.consolidation import ScopeKey

# Sent outbox rows are kept this long, for whoever investigates a lost task.
OUTBOX_KEEP_SECONDS = 86_400
SCAN_LIMIT = 1000
# After a scope's job failed (an LLM down, say), triggers leave the scope alone this long; a client's
# request is never held back.
RETRY_FAILED_AFTER_SECONDS = 600.0


def note_episodes(conn: psycopg.Connection, *, tenant: str, rows: Sequence[dict[str, Any]],
                  settings: Settings) -> list[dict[str, Any]]:
    """Count new episodic cubes per scope in the caller's transaction, and queue a consolidation of each scope
    whose pending episodes reach MEMCUBE_CONSOLIDATE_AFTER_EPISODES; return the jobs queued."""
    # Trajectories are episodes too, but distillation takes them (memcube.lessons), not consolidation.
    counts = Counter((row["agent_id"], row["user_id"]) for row in rows
                     if row["kind"] == "episodic" and row["provenance"].get("source") != "trajectory")
    queued = []
    # A fixed order of scope row locks, so two inserts that span the same scopes cannot deadlock.
    for (agent_id, user_id), n in sorted(counts.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        pending = scope_store.note_episodes(conn, ScopeKey(tenant, agent_id, user_id), n)
        threshold = settings.consolidate_after_episodes
        if threshold and pending >= threshold and not job_store.failed_lately(
                conn, tenant=tenant, kind="consolidate", agent_id=agent_id, user_id=user_id,
                seconds=RETRY_FAILED_AFTER_SECONDS):
            job, created = jobs.enqueue_consolidation(conn, tenant=tenant, agent_id=agent_id, user_id=user_id,
                                                      trigger="episodes", actor="trigger:episodes")
            if created:
                queued.append(job)
    return queued


@dataclass(frozen=True)
class ScanResult:
    queued: int
    republished: int
    purged: int


def scan(conn: psycopg.Connection, settings: Settings, *, schedule: bool = False) -> ScanResult:
    """Queue consolidations of quiet sessions' scopes (with `schedule`, of every scope with pending
    episodes), publish again the jobs nobody works on, and purge old sent outbox rows."""
    queued = 0
    if schedule or settings.consolidate_idle_seconds > 0:
        scopes = scope_store.scopes_to_consolidate(
            conn, idle_seconds=None if schedule else settings.consolidate_idle_seconds,
            failed_within=RETRY_FAILED_AFTER_SECONDS, limit=SCAN_LIMIT)
        for scope in scopes:
            _, created = jobs.enqueue_consolidation(conn, tenant=scope.tenant, agent_id=scope.agent_id,
                                                    user_id=scope.user_id, trigger="schedule" if schedule else "idle",
                                                    actor="trigger:schedule" if schedule else "trigger:idle")
            queued += created
    stalled = job_store.stalled_jobs(conn, quiet_seconds=settings.broker_visibility_timeout_seconds,
                                     limit=SCAN_LIMIT)
    waiting = outbox_store.jobs_with_unsent_messages(conn, [str(job["id"]) for job in stalled])
    again = [job for job in stalled if str(job["id"]) not in waiting]
    for job in again:
        outbox_store.insert_message(conn, task=jobs.TASKS[job["kind"]], payload={"job_id": str(job["id"])})
    if again:
        job_store.touch_jobs(conn, [job["id"] for job in again])
    purged = outbox_store.purge_sent(conn, older_than_seconds=OUTBOX_KEEP_SECONDS)
    return ScanResult(queued=queued, republished=len(again), purged=purged)
