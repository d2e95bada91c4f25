"""Run a distillation job: claim it, distil each scope batch by batch, finish it (the job machinery is
jobs.run_job, shared with consolidation).

A batch is planned outside any transaction (reading the scope's pending trajectories and the lessons near
them, asking the engine, which may be a slow LLM, checking each candidate against its evidence) and written
in one short transaction that locks the job (the worker must still hold its lease) and the scope's
distillation row, checks that no other distillation wrote to the scope since the plan (its generation) and
that every lesson it changes is still at the version it read, and only then writes the lessons, their
versions and links, marks the trajectories taken and adds to the job's counts. If anything moved, the batch
is planned again. So two workers never both apply, a worker killed mid-job leaves nothing half-written, and
the job's next attempt finds the same trajectories pending.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence
from uuid import UUID

import numpy as np
import psycopg
import psycopg_pool

from memcube import cube, jobs
from memcube.config import Settings
from memcube.consolidation.ledger import as_array, cosine, group_by_topic
from memcube.embedder import Embedder
from memcube.errors import ConfigError, StaleVersion
from memcube.jobs import LeaseLost, Replan
from memcube.lessons.engine import Engine
from memcube.lessons.evidence import check_evidence
from memcube.lessons.heuristic import HeuristicEngine
from memcube.lessons.ledger import COUNT_KEYS, Ledger
from memcube.lessons.lesson import Lesson
from memcube.lessons.llm_engine import LLMEngine
from memcube.lessons.trajectory import Trajectory, load
from memcube.llm import LLM, Usage
from memcube.models import MemCubeCreate
from memcube.store import cubes as cube_store
from memcube.store import jobs as job_store
from memcube.store import lessons as lesson_store
from memcube.store import links as link_store
from memcube.store import trajectories as store
from memcube.store.consolidation import ScopeKey

log = logging.getLogger(__name__)

# Lessons compared with each trajectory or candidate (the closest by situation, plus those with its tools).
NEIGHBOURS = 20
# Most trajectories in one group (one LLM call).
MAX_GROUP = 10


def build_engine(name: str, settings: Settings, llm: LLM | None, usage: Usage) -> Engine:
    """Return an engine; raises ConfigError when the LLM engine is asked for without an LLM."""
    if name == "llm":
        if llm is None:
            raise ConfigError("the LLM engine needs MEMCUBE_LLM_BASE_URL (an OpenAI-compatible endpoint)")
        return LLMEngine(llm, usage, merge_similarity=settings.lesson_merge_similarity)
    return HeuristicEngine(merge_similarity=settings.lesson_merge_similarity)


class BatchContext:
    """What an engine may ask while it distils: vectors, lessons near a situation (store and batch), and
    earlier trajectories of the scope."""

    def __init__(self, pool: psycopg_pool.ConnectionPool, scope: ScopeKey, embedder: Embedder, ledger: Ledger,
                 pending: Sequence[Trajectory]) -> None:
        self._pool = pool
        self._scope = scope
        self._embedder = embedder
        self._ledger = ledger
        self._pending = {t.id for t in pending}

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [as_array(v) for v in self._embedder.embed(list(texts))] if texts else []  # type: ignore[misc]

    def lessons_near(self, vector: np.ndarray | None, *, tools: list[str] | None = None) -> list[tuple[Lesson, float]]:
        found: dict[UUID, tuple[Lesson, float]] = {}
        if vector is not None:
            with self._pool.connection() as conn:
                rows = lesson_store.lessons_near(conn, tenant=self._scope.tenant, agent_id=self._scope.agent_id,
                                                 user_id=self._scope.user_id, vector=vector, k=NEIGHBOURS,
                                                 shared=False, tools=tools)
            for row in rows:
                lesson = self._ledger.known(row)
                found[lesson.id] = (lesson, cosine(vector, lesson.vector))
        for lesson in self._ledger.lessons.values():
            if lesson.id not in found and (lesson.new or lesson.revisions):
                found[lesson.id] = (lesson, cosine(vector, lesson.vector))
        # A lesson written by hand (no polarity) is the client's: distillation never merges into it.
        served = (item for item in found.values() if item[0].status != "retired" and item[0].polarity)
        return sorted(served, key=lambda item: -item[1])

    def earlier(self, group: Sequence[Trajectory], k: int) -> list[Trajectory]:
        vectors = [t.vector for t in group if t.vector is not None]
        if not vectors or k <= 0:
            return []
        centroid = np.mean(vectors, axis=0)
        with self._pool.connection() as conn:
            rows = store.similar_trajectories(conn, self._scope, vector=centroid, k=k, exclude=list(self._pending))
        return [t for t in load(rows) if t.active]

    def trajectories(self, refs: Sequence[dict]) -> list[Trajectory]:
        ids = [UUID(str(ref["id"])) for ref in refs if isinstance(ref, dict) and ref.get("id")]
        if not ids:
            return []
        with self._pool.connection() as conn:
            rows = {row["id"]: row for row in store.get_trajectories(conn, tenant=self._scope.tenant, cube_ids=ids)}
        return [t for t in load([rows[i] for i in ids if i in rows]) if t.active]


@dataclass
class Plan:
    scope: ScopeKey
    generation: int
    trajectories: list[UUID]
    ledger: Ledger


def plan_batch(pool: psycopg_pool.ConnectionPool, scope: ScopeKey, *, engine: Engine, embedder: Embedder,
               settings: Settings, lease: jobs.LeaseKeeper | None = None) -> Plan | None:
    """Read the scope's next pending trajectories and decide what lessons they make or change; None when none
    are pending."""
    with pool.connection() as conn:
        state = store.find_scope(conn, scope)
        rows = store.pending_trajectories(conn, scope, limit=settings.distill_batch_trajectories)
    if not rows:
        return None
    trajectories = load(rows)
    usable = [t for t in trajectories if t.active]
    ledger = Ledger()
    context = BatchContext(pool, scope, embedder, ledger, trajectories)
    groups = group_by_topic([t.vector for t in usable], threshold=settings.distill_group_similarity,
                            max_size=MAX_GROUP)
    for positions in groups:
        if lease is not None and lease.lost.is_set():
            raise LeaseLost()
        for candidate in engine.distill([usable[i] for i in positions], context):
            problem = check_evidence(candidate)
            if problem is None:
                ledger.apply(candidate)
            else:
                log.info("scope %s: %s lesson rejected: %s", scope, candidate.polarity, problem)
                ledger.reject(candidate, problem)
    ledger.counts["trajectories"] += len(trajectories)
    return Plan(scope=scope, generation=state["generation"] if state else 0,
                trajectories=[t.id for t in trajectories], ledger=ledger)


def write_batch(conn: psycopg.Connection, plan: Plan, *, job_id: UUID, owner: str, engine: Engine,
                embedder: Embedder, settings: Settings, usage: dict[str, int]) -> dict[str, int]:
    """Write a planned batch in the caller's transaction and return the job's counts. Raises LeaseLost, or
    Replan when another distillation wrote to the scope or a lesson changed since the plan."""
    job = job_store.lock_job(conn, job_id=job_id)
    if job is None or job["state"] != "running" or job["lease_owner"] != owner:
        raise LeaseLost()
    state = store.lock_scope(conn, plan.scope)
    if state["generation"] != plan.generation:
        raise Replan()
    try:
        _write_lessons(conn, plan, job_id=job_id, engine=engine, embedder=embedder, settings=settings)
    except StaleVersion as exc:
        raise Replan() from exc
    store.mark_distilled(conn, cube_ids=plan.trajectories, job_id=job_id)
    store.finish_scope(conn, plan.scope, job_id=job_id)
    counts = Counter({key: int(job["counts"].get(key, 0)) for key in COUNT_KEYS})
    counts.update(plan.ledger.counts)
    result = {key: counts[key] for key in COUNT_KEYS}
    job_store.add_progress(conn, job_id=job_id, counts=result, **usage)
    return result


def _write_lessons(conn: psycopg.Connection, plan: Plan, *, job_id: UUID, engine: Engine, embedder: Embedder,
                   settings: Settings) -> None:
    scope, actor = plan.scope, f"job:{job_id}"

    def provenance(revision: Any) -> dict[str, Any]:
        return {"reason": revision.reason, "derived_from": revision.derived_from,
                "source_refs": revision.source_refs, "job_id": str(job_id), "model": engine.model,
                "prompt_version": engine.prompt_version}

    ids: dict[UUID, UUID] = {}
    new = [lesson for lesson in plan.ledger.changed() if lesson.new]
    if new:
        # A lesson is embedded from its situation, never from its wording.
        vectors = [r.vector if r.vector is not None else np.asarray(embedder.embed([r.data["when_to_use"]])[0])
                   for r in (lesson.revisions[0] for lesson in new)]
        items = [MemCubeCreate(agent_id=scope.agent_id, user_id=scope.user_id, kind="procedural",
                               content=lesson.revisions[0].content, data=lesson.revisions[0].data,
                               tags=["lesson", lesson.polarity], embedding=vector.tolist())
                 for lesson, vector in zip(new, vectors)]
        rows = cube.create_cubes(conn, tenant=scope.tenant, actor=actor, items=items, embedder=embedder,
                                 settings=settings, source="distillation",
                                 extra_provenance=[provenance(lesson.revisions[0]) for lesson in new])
        ids.update({lesson.id: row["id"] for lesson, row in zip(new, rows)})
    for lesson in plan.ledger.changed():
        version = 1 if lesson.new else lesson.version
        for revision in lesson.revisions[1:] if lesson.new else lesson.revisions:
            cube.check_content(revision.content, settings)
            cube_store.update_cube(conn, tenant=scope.tenant, cube_id=ids.get(lesson.id, lesson.id),
                                   changes={"content": revision.content, "data": revision.data},
                                   expected_version=version, embedding=revision.vector,
                                   provenance=cube.provenance("distillation", actor, **provenance(revision)))
            version += 1  # type: ignore[operator]
    for lesson_id, trajectory_id in plan.ledger.links:
        link_store.insert_link(conn, tenant=scope.tenant, source_id=ids.get(lesson_id, lesson_id),
                               target_id=trajectory_id, type="derived_from", metadata={},
                               provenance=cube.provenance("distillation", actor, job_id=str(job_id)))


def distill_scope(pool: psycopg_pool.ConnectionPool, scope: ScopeKey, *, job_id: UUID, owner: str, engine: Engine,
                  embedder: Embedder, settings: Settings, usage: Usage,
                  lease: jobs.LeaseKeeper | None = None) -> None:
    """Distil a scope batch by batch until nothing is pending (see jobs.run_batches); raises LeaseLost, LLMFailed,
    or Conflict when the scope kept changing under every plan."""
    jobs.run_batches(
        pool, usage=usage, what=f"job {job_id}: scope {scope}",
        plan=lambda: plan_batch(pool, scope, engine=engine, embedder=embedder, settings=settings, lease=lease),
        write=lambda conn, plan, taken: write_batch(conn, plan, job_id=job_id, owner=owner, engine=engine,
                                                    embedder=embedder, settings=settings, usage=taken))


def run_distillation(pool: psycopg_pool.ConnectionPool, *, job_id: UUID, embedder: Embedder, settings: Settings,
                     llm: LLM | None, owner: str | None = None) -> dict[str, Any]:
    """Run a distillation job to its end and return {job_id, state, counts, ...} (see jobs.run_job)."""
    owner = owner or jobs.new_owner()

    def start(job: dict[str, Any], usage: Usage) -> jobs.Work:
        engine = build_engine(jobs.resolve_engine(job["engine"], settings.distill_engine, settings), settings, llm,
                              usage)
        if job["user_id"] is not None:
            users = [job["user_id"]]
        else:
            with pool.connection() as conn:
                users = store.pending_users(conn, tenant=job["tenant"], agent_id=job["agent_id"])

        def run_scope(user_id: str | None, lease: jobs.LeaseKeeper) -> None:
            distill_scope(pool, ScopeKey(job["tenant"], job["agent_id"], user_id), job_id=job_id, owner=owner,
                          engine=engine, embedder=embedder, settings=settings, usage=usage, lease=lease)

        return jobs.Work(engine.name, engine.model, engine.prompt_version, COUNT_KEYS, users, run_scope)

    return jobs.run_job(pool, job_id=job_id, owner=owner, settings=settings, start=start)
