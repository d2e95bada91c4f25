"""Run a consolidation job: claim it, consolidate each scope batch by batch, finish it.

A batch is planned outside any transaction (reading episodes and facts, asking the engine, which may be a
slow LLM) and written in one short transaction that also moves the scope's mark and adds to the job's
counts. That transaction first locks the job (it must still hold the lease) and the scope, and checks that
the mark has not moved since the plan and that every fact it changes is still at the version it read; if
anything moved, the batch is planned again. So two workers never both apply the same episodes, a worker
killed mid-job leaves nothing half-written, and the job's next attempt carries on from the mark.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence
from uuid import UUID

import numpy as np
import psycopg
import psycopg_pool

from memcube import cube, jobs
from memcube.config import Settings
from memcube.consolidation.engine import Engine
from memcube.consolidation.heuristic import HeuristicEngine
from memcube.consolidation.ledger import Decision, Episode, Fact, Ledger, as_array, cosine, group_by_topic
from memcube.consolidation.llm_engine import LLMEngine
from memcube.consolidation.trust import contradiction_reason, evidence_ids
from memcube.embedder import Embedder
from memcube.errors import ConfigError, StaleVersion
from memcube.jobs import LeaseLost, Replan
from memcube.llm import LLM, Usage
from memcube.models import MemCubeCreate
from memcube.poisoning import row_origin
from memcube.store import consolidation as scope_store
from memcube.store import cubes as cube_store
from memcube.store import jobs as job_store
from memcube.store import links as link_store
from memcube.store.consolidation import Mark, ScopeKey

log = logging.getLogger(__name__)

COUNT_KEYS = ("episodes", "added", "updated", "superseded", "unchanged", "quarantined", "summaries")
# Facts compared with each candidate or episode.
NEIGHBOURS = 5


def build_engine(name: str, settings: Settings, llm: LLM | None, usage: Usage) -> Engine:
    """Return an engine; raises ConfigError when the LLM engine is asked for without an LLM."""
    if name == "llm":
        if llm is None:
            raise ConfigError("the LLM engine needs MEMCUBE_LLM_BASE_URL (an OpenAI-compatible endpoint)")
        return LLMEngine(llm, usage)
    return HeuristicEngine(duplicate_similarity=settings.consolidate_duplicate_similarity)


class BatchContext:
    """What an engine may ask while it decides: vectors, and the facts near a vector (store and batch)."""

    def __init__(self, pool: psycopg_pool.ConnectionPool, scope: ScopeKey, embedder: Embedder,
                 ledger: Ledger) -> None:
        self._pool = pool
        self._scope = scope
        self._embedder = embedder
        self._ledger = ledger

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [as_array(v) for v in self._embedder.embed(list(texts))] if texts else []  # type: ignore[misc]

    def neighbours(self, vector: np.ndarray | None, *, attribute: str | None = None) -> list[tuple[Fact, float]]:
        with self._pool.connection() as conn:
            rows = scope_store.related_facts(conn, self._scope, vector=vector, k=NEIGHBOURS, attribute=attribute)
        found: dict[UUID, tuple[Fact, float]] = {}
        for row in rows:
            fact = self._ledger.known(row)
            found[fact.id] = (fact, float(row["similarity"]) if row["similarity"] is not None else 0.0)
        for fact in self._ledger.new_facts():
            similarity = cosine(vector, fact.vector)
            if fact.id not in found and (similarity > 0 or (attribute and fact.attribute == attribute)):
                found[fact.id] = (fact, similarity)
        near = sorted((item for item in found.values() if item[0].status == "active"), key=lambda item: -item[1])
        by_vector = near[:NEIGHBOURS]
        by_attribute = [item for item in near[NEIGHBOURS:] if attribute and item[0].attribute == attribute]
        return by_vector + by_attribute


@dataclass
class SummaryPlan:
    session_id: str
    previous: dict[str, Any] | None
    content: str
    data: dict[str, Any]
    episodes: list[Episode]
    vector: np.ndarray | None


@dataclass
class Plan:
    scope: ScopeKey
    mark_from: Mark | None
    mark_to: Mark
    episodes: int
    ledger: Ledger
    summaries: list[SummaryPlan] = field(default_factory=list)


def plan_batch(pool: psycopg_pool.ConnectionPool, scope: ScopeKey, *, engine: Engine, embedder: Embedder,
               settings: Settings, lease: jobs.LeaseKeeper | None = None) -> Plan | None:
    """Read the scope's next episodes and decide what they change; None when none are pending."""
    with pool.connection() as conn:
        mark = scope_store.mark_of(scope_store.find_scope(conn, scope))
        rows = scope_store.pending_episodes(conn, scope, after=mark, limit=settings.consolidate_batch_episodes)
    if not rows:
        return None
    episodes = [Episode.from_row(row) for row in rows]
    # In the order things happened (the mark's order is transaction order), turns of a session in order.
    active = sorted((e for e in episodes if e.active), key=lambda e: (e.at, e.turn or 0))
    ledger = Ledger()
    context = BatchContext(pool, scope, embedder, ledger)
    facts_from: set[object] = set()
    groups = group_by_topic([e.vector for e in active], threshold=settings.consolidate_topic_similarity,
                            max_size=settings.consolidate_group_max_episodes)
    for positions in groups:
        if lease is not None and lease.lost.is_set():
            raise LeaseLost()
        for decision in engine.decide([active[i] for i in positions], context):
            distrust = _distrust(pool, scope, decision, ledger, episodes, settings)
            if distrust is not None:
                ledger.quarantine(decision, distrust)
                continue
            fact = ledger.apply(decision)
            facts_from.update(e.id for e in decision.candidate.evidence)
            if decision.action in ("add", "supersede"):
                ledger.relate(fact, context.neighbours(fact.vector), settings.consolidate_related_similarity)
    plan = Plan(scope=scope, mark_from=mark, mark_to=Mark(rows[-1]["xact_id"], rows[-1]["id"]),
                episodes=len(rows), ledger=ledger)
    sessions: dict[str, list[Episode]] = {}
    for episode in active:
        if episode.session_id:
            sessions.setdefault(episode.session_id, []).append(episode)
    for session_id, session_episodes in sessions.items():
        with pool.connection() as conn:
            previous = scope_store.find_session_summary(conn, scope, session_id)
        content, data = engine.summarize(session_id, session_episodes, previous, facts_from)
        plan.summaries.append(SummaryPlan(session_id, previous, content, data, session_episodes, None))
    for summary, vector in zip(plan.summaries, context.embed([s.content for s in plan.summaries])):
        summary.vector = vector  # in one call: the embedder is fastest on a batch
    return plan


def _distrust(pool: psycopg_pool.ConnectionPool, scope: ScopeKey, decision: Decision, ledger: Ledger,
              episodes: Sequence[Episode], settings: Settings) -> str | None:
    """Return why a superseding decision is quarantined instead (trust.py), or None."""
    if decision.action != "supersede" or settings.poison_consensus_min <= 0:
        return None
    target = ledger.target_of(decision)
    if target is None:
        return None
    origins = {str(e.id): e.origin for e in episodes}
    missing = [i for i in evidence_ids(target) if i not in origins]
    if missing:
        with pool.connection() as conn:
            rows = scope_store.origin_rows(conn, tenant=scope.tenant, cube_ids=missing)
        origins.update({str(row["id"]): row_origin(row) for row in rows})
    return contradiction_reason(decision.candidate, target, origins=origins, trust=settings.poison_trust,
                                consensus_min=settings.poison_consensus_min)


def write_batch(conn: psycopg.Connection, plan: Plan, *, job_id: UUID, owner: str, engine: Engine,
                embedder: Embedder, settings: Settings, usage: dict[str, int]) -> dict[str, int]:
    """Write a planned batch, move the mark and add to the job's counts, in the caller's transaction;
    return the job's counts. Raises LeaseLost, or Replan when the scope or a fact moved since the plan."""
    job = job_store.lock_job(conn, job_id=job_id)
    if job is None or job["state"] != "running" or job["lease_owner"] != owner:
        raise LeaseLost()
    state = scope_store.lock_scope(conn, plan.scope)
    if scope_store.mark_of(state) != plan.mark_from:
        raise Replan()
    writer = _Writer(conn, plan, job_id, engine, embedder, settings)
    try:
        writer.facts()
        writer.summaries()
    except StaleVersion as exc:
        raise Replan() from exc
    writer.links()
    scope_store.set_mark(conn, plan.scope, mark=plan.mark_to, job_id=job_id)
    counts = Counter({key: int(job["counts"].get(key, 0)) for key in COUNT_KEYS})
    counts.update(plan.ledger.counts)
    counts.update({"episodes": plan.episodes, "summaries": len(plan.summaries)})
    result = {key: counts[key] for key in COUNT_KEYS}
    job_store.add_progress(conn, job_id=job_id, counts=result, **usage)
    return result


class _Writer:
    """The writes of one batch; new facts get their ids from the store, so references are mapped."""

    def __init__(self, conn: psycopg.Connection, plan: Plan, job_id: UUID, engine: Engine, embedder: Embedder,
                 settings: Settings) -> None:
        self.conn = conn
        self.plan = plan
        self.scope = plan.scope
        self.actor = f"job:{job_id}"
        self.job_id = str(job_id)
        self.engine = engine
        self.embedder = embedder
        self.settings = settings
        self.ids: dict[UUID, UUID] = {}

    def _lineage(self, reason: str | None, derived_from: list, source_refs: list,
                 prompt_version: str | None) -> dict[str, Any]:
        """Return what a derived cube's provenance carries besides its source and actor."""
        return {"reason": reason, "derived_from": derived_from, "source_refs": source_refs, "job_id": self.job_id,
                "model": self.engine.model, "prompt_version": prompt_version}

    def _provenance(self, *args: Any) -> dict[str, Any]:
        return cube.provenance("consolidation", self.actor, **self._lineage(*args))

    def _create(self, items: list[MemCubeCreate], extra: list[dict[str, Any]],
                statuses: list[str] | None = None) -> list[dict[str, Any]]:
        return cube.create_cubes(self.conn, tenant=self.scope.tenant, actor=self.actor, items=items,
                                 embedder=self.embedder, settings=self.settings, source="consolidation",
                                 extra_provenance=extra, statuses=statuses) if items else []

    def facts(self) -> None:
        new = self.plan.ledger.new_facts()
        items = [MemCubeCreate(agent_id=self.scope.agent_id, user_id=self.scope.user_id, kind="semantic",
                               content=f.content, data=f.data(), tags=["consolidated"], valid_from=f.valid_from,
                               importance=f.importance, confidence=f.confidence,
                               embedding=None if f.vector is None else f.vector.tolist()) for f in new]
        extra = [self._lineage(f.reasons[0] if f.reasons else None, f.derived_from, f.source_refs,
                               self.engine.prompt_version) for f in new]
        statuses = ["quarantined" if f.status == "quarantined" else "active" for f in new]
        for fact, row in zip(new, self._create(items, extra, statuses)):
            self.ids[fact.id] = row["id"]
        for fact in self.plan.ledger.facts.values():
            if fact.new and fact.status == "superseded":
                self._update(fact, version=1, reasons=fact.reasons[1:])
            elif not fact.new and fact.changed:
                self._update(fact, version=fact.version, reasons=fact.reasons)  # type: ignore[arg-type]

    def _update(self, fact: Fact, *, version: int, reasons: list[str]) -> None:
        changes: dict[str, Any] = {}
        if "content" in fact.changed and not fact.new:
            changes["content"] = fact.content
        if "data" in fact.changed and not fact.new:
            changes["data"] = fact.data()
        if "confidence" in fact.changed and not fact.new:
            changes["confidence"] = fact.confidence
        if "valid_from" in fact.changed and not fact.new:
            changes["valid_from"] = fact.valid_from
        if "status" in fact.changed:
            # valid_from too: a fact stored without one was valid from its episode (or its creation) on, and
            # the interval its validity now closes must say so.
            changes.update(status=fact.status, valid_from=fact.valid_from, valid_to=fact.valid_to,
                           superseded_by=self.ids.get(fact.superseded_by, fact.superseded_by))
        vector = fact.vector if "content" in changes else None
        reason = "; ".join(self._mapped(r) for r in reasons) or None
        cube_store.update_cube(self.conn, tenant=self.scope.tenant, cube_id=self.ids.get(fact.id, fact.id),
                               changes=changes, expected_version=version, embedding=vector,
                               provenance=self._provenance(reason, fact.derived_from, fact.source_refs,
                                                           self.engine.prompt_version))

    def _mapped(self, text: str) -> str:
        for planned, stored in self.ids.items():
            text = text.replace(str(planned), str(stored))
        return text

    def summaries(self) -> None:
        created = [s for s in self.plan.summaries if s.previous is None]
        items = [MemCubeCreate(agent_id=self.scope.agent_id, user_id=self.scope.user_id, session_id=s.session_id,
                               kind="summary", content=s.content, data=s.data, tags=["consolidated"],
                               occurred_at=max(e.at for e in s.episodes),
                               embedding=None if s.vector is None else s.vector.tolist()) for s in created]
        extra = [self._lineage("session summary", [e.ref() for e in s.episodes],
                               [e.source_ref() for e in s.episodes], self.engine.summary_prompt_version)
                 for s in created]
        summary_ids = [row["id"] for row in self._create(items, extra)]
        for s in self.plan.summaries:
            if s.previous is None:
                continue
            before = s.previous["provenance"]
            derived_from = list(before.get("derived_from") or []) + [e.ref() for e in s.episodes]
            source_refs = list(before.get("source_refs") or []) + [e.source_ref() for e in s.episodes]
            cube_store.update_cube(
                self.conn, tenant=self.scope.tenant, cube_id=s.previous["id"], expected_version=s.previous["version"],
                changes={"content": s.content, "data": s.data, "occurred_at": max(e.at for e in s.episodes)},
                embedding=s.vector, provenance=self._provenance("session continued", derived_from, source_refs,
                                                                self.engine.summary_prompt_version))
            summary_ids.append(s.previous["id"])
        for summary_id, s in zip(summary_ids, created + [s for s in self.plan.summaries if s.previous is not None]):
            for episode in s.episodes:
                self._link(summary_id, episode.id, "derived_from")

    def links(self) -> None:
        for link in self.plan.ledger.links:
            self._link(self.ids.get(link.source_id, link.source_id), self.ids.get(link.target_id, link.target_id),
                       link.type)

    def _link(self, source_id: UUID, target_id: UUID, type_: str) -> None:
        link_store.insert_link(self.conn, tenant=self.scope.tenant, source_id=source_id, target_id=target_id,
                               type=type_, metadata={},
                               provenance=cube.provenance("consolidation", self.actor, job_id=self.job_id))


def consolidate_scope(pool: psycopg_pool.ConnectionPool, scope: ScopeKey, *, job_id: UUID, owner: str,
                      engine: Engine, embedder: Embedder, settings: Settings, usage: Usage,
                      lease: jobs.LeaseKeeper | None = None) -> None:
    """Consolidate a scope batch by batch until nothing is pending (see jobs.run_batches); raises LeaseLost,
    LLMFailed, or Conflict when the scope kept changing under every plan."""
    jobs.run_batches(
        pool, usage=usage, what=f"job {job_id}: scope {scope}",
        plan=lambda: plan_batch(pool, scope, engine=engine, embedder=embedder, settings=settings, lease=lease),
        write=lambda conn, plan, taken: write_batch(conn, plan, job_id=job_id, owner=owner, engine=engine,
                                                    embedder=embedder, settings=settings, usage=taken))


def run_consolidation(pool: psycopg_pool.ConnectionPool, *, job_id: UUID, embedder: Embedder, settings: Settings,
                      llm: LLM | None, owner: str | None = None) -> dict[str, Any]:
    """Run a consolidation job to its end and return {job_id, state, counts, ...} (see jobs.run_job)."""
    owner = owner or jobs.new_owner()

    def start(job: dict[str, Any], usage: Usage) -> jobs.Work:
        engine = build_engine(jobs.resolve_engine(job["engine"], settings.consolidate_engine, settings), settings,
                              llm, usage)
        if job["user_id"] is not None:
            users = [job["user_id"]]
        else:
            with pool.connection() as conn:
                users = scope_store.pending_users(conn, tenant=job["tenant"], agent_id=job["agent_id"])

        def run_scope(user_id: str | None, lease: jobs.LeaseKeeper) -> None:
            consolidate_scope(pool, ScopeKey(job["tenant"], job["agent_id"], user_id), job_id=job_id, owner=owner,
                              engine=engine, embedder=embedder, settings=settings, usage=usage, lease=lease)

        return jobs.Work(engine.name, engine.model, engine.prompt_version, COUNT_KEYS, users, run_scope)

    return jobs.run_job(pool, job_id=job_id, owner=owner, settings=settings, start=start)
