"""Paging between the core and archival tiers: the policy as a pure function, and applying it to a scope.

value = w_importance · importance + w_recency · 0.5^(age / half_life) + w_frequency · n / (n + 10)

where age is the time since the cube was last accessed (else created), half_life is
MEMCUBE_RECENCY_HALF_LIFE_DAYS, n its access count (search and context assembly record accesses),
and the weights are MEMCUBE_PAGING_WEIGHT_*.

- Page out: when a scope's core holds more tokens than its budget, the lowest-value cubes go to
  archival until it fits; of those, any that fits back in the room left stays. Labelled blocks are
  pinned: they never move.
- Page in: an archival cube accessed at least MEMCUBE_PAGING_MIN_ACCESSES times goes to core, most
  valuable first, when it fits in the room left and was not paged out within
  MEMCUBE_PAGING_COOLDOWN_SECONDS. Nothing is evicted to make room. A memory consolidation derived (a fact
  read from episodes, maybe wrongly) must also have MEMCUBE_PAGING_MIN_CONFIDENCE: core is always in
  context, so what goes there unasked must have been confirmed (restated, or given that confidence).

No ping-pong: page-ins never overfill the budget, so only a change from outside (a bigger block, a
cube moved to core by hand) can make a cube leave; page-outs stop as soon as the core fits; and a cube
that left stays out for the cooldown. Running the policy again on its own result changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, Sequence
from uuid import UUID

import psycopg

from memcube import tokens
from memcube.config import Settings
from memcube.cube import provenance
from memcube.errors import StaleVersion
from memcube.models import PagingMove
from memcube.ranking import recency
from memcube.store import core as core_store
from memcube.store import cubes as cube_store

# Accesses at which the frequency term reaches one half.
FREQUENCY_HALF = 10
# Archival cubes a run considers for paging in (the most accessed of the scope).
CANDIDATE_LIMIT = 200
# What may be paged into core: facts. A conversation turn or a summary stays archival however often it is
# recalled: it is recalled when a query needs it, whereas core is shown with every query, and a handful of
# popular turns would take the room of every context (seen on LoCoMo: core filled with episodes that answered
# earlier questions, and left a 500-token context nothing for the question asked).
PAGE_IN_KINDS = ("semantic", "core")
# Confidence is stored as a 4-byte float: 0.8 may come back a hair under 0.8.
CONFIDENCE_ROUNDING = 1e-6


@dataclass(frozen=True)
class PagingPolicy:
    budget: int
    w_importance: float = 0.5
    w_recency: float = 0.3
    w_frequency: float = 0.2
    half_life_days: float = 30.0
    min_accesses: int = 3
    cooldown: timedelta = timedelta(hours=1)
    min_confidence: float = 0.8

    @classmethod
    def from_settings(cls, settings: Settings) -> PagingPolicy:
        return cls(budget=settings.core_budget_tokens, w_importance=settings.paging_weight_importance,
                   w_recency=settings.paging_weight_recency, w_frequency=settings.paging_weight_frequency,
                   half_life_days=settings.recency_half_life_days, min_accesses=settings.paging_min_accesses,
                   cooldown=timedelta(seconds=settings.paging_cooldown_seconds),
                   min_confidence=settings.paging_min_confidence)


@dataclass(frozen=True)
class Pageable:
    """A cube as paging sees it."""

    id: UUID
    version: int
    tokens: int
    importance: float
    access_count: int
    last_used: datetime
    pinned: bool = False
    paged_out_at: datetime | None = None
    confidence: float = 1.0
    derived: bool = False  # made by consolidation


@dataclass(frozen=True)
class Move:
    id: UUID
    version: int
    tier: Literal["core", "archival"]
    value: float
    tokens: int
    reason: str


def value(item: Pageable, now: datetime, policy: PagingPolicy) -> float:
    """Return how much a cube is worth keeping in core (see the module docstring)."""
    fresh = recency(item.last_used, now, policy.half_life_days)
    frequency = item.access_count / (item.access_count + FREQUENCY_HALF)
    return policy.w_importance * item.importance + policy.w_recency * fresh + policy.w_frequency * frequency


def plan_paging(core: Sequence[Pageable], archival: Sequence[Pageable], *, now: datetime,
                policy: PagingPolicy) -> list[Move]:
    """Return the moves that bring a scope's core within budget and page in what has earned it."""
    worth = {item.id: value(item, now, policy) for item in [*core, *archival]}
    used = sum(item.tokens for item in core)
    over = used
    moves: list[Move] = []
    out: list[Pageable] = []
    if used > policy.budget:
        for item in sorted((c for c in core if not c.pinned), key=lambda c: (worth[c.id], str(c.id))):
            if used <= policy.budget:
                break
            out.append(item)
            used -= item.tokens
        for item in sorted(out, key=lambda c: (-worth[c.id], str(c.id))):
            if used + item.tokens <= policy.budget:
                out.remove(item)
                used += item.tokens
        moves += [Move(item.id, item.version, "archival", worth[item.id], item.tokens,
                       f"core over budget ({over} > {policy.budget} tokens); lowest value {worth[item.id]:.3f}")
                  for item in out]
    for item in sorted(archival, key=lambda c: (-worth[c.id], str(c.id))):
        if item.access_count < policy.min_accesses or used + item.tokens > policy.budget:
            continue
        if item.paged_out_at is not None and now - item.paged_out_at < policy.cooldown:
            continue
        if item.derived and item.confidence < policy.min_confidence - CONFIDENCE_ROUNDING:
            continue
        moves.append(Move(item.id, item.version, "core", worth[item.id], item.tokens,
                          f"accessed {item.access_count} times; value {worth[item.id]:.3f}; "
                          f"{policy.budget - used} of {policy.budget} core tokens free"))
        used += item.tokens
    return moves


def apply_paging(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                 settings: Settings, actor: str = "paging", now: datetime | None = None) -> list[PagingMove]:
    """Page one scope (the agent when user_id is None, else that user of it) now, in the caller's transaction.

    Each move is a new version with source `paging` and its reason; returns the moves made. Runs on one
    scope queue behind each other; a cube changed meanwhile is skipped (the next run decides again).
    """
    now = now or datetime.now(timezone.utc)
    core_store.lock(conn, "paging", tenant, agent_id, user_id)
    core_rows = core_store.list_core(conn, tenant=tenant, agent_id=agent_id, user_id=user_id)
    candidates = core_store.list_paging_candidates(conn, tenant=tenant, agent_id=agent_id, user_id=user_id,
                                                   min_accesses=settings.paging_min_accesses, kinds=PAGE_IN_KINDS,
                                                   limit=CANDIDATE_LIMIT)
    paged_out = core_store.last_paged_out(conn, [r["id"] for r in candidates])
    counts = tokens.count_many([r["content"] for r in [*core_rows, *candidates]])
    items = [Pageable(id=r["id"], version=r["version"], tokens=n, importance=float(r["importance"]),
                      access_count=r["access_count"], last_used=r["last_accessed_at"] or r["created_at"],
                      pinned=r.get("label") is not None, paged_out_at=paged_out.get(r["id"]),
                      confidence=float(r["confidence"]), derived=bool(r.get("derived")))
             for r, n in zip([*core_rows, *candidates], counts)]
    moves = plan_paging(items[:len(core_rows)], items[len(core_rows):], now=now,
                        policy=PagingPolicy.from_settings(settings))
    applied = []
    for move in moves:
        try:
            row = cube_store.update_cube(conn, tenant=tenant, cube_id=move.id, changes={"tier": move.tier},
                                         provenance=provenance("paging", actor, reason=move.reason),
                                         expected_version=move.version)
        except StaleVersion:
            continue
        applied.append(PagingMove(id=move.id, tier=move.tier, version=row["version"], value=move.value,
                                  tokens=move.tokens, reason=move.reason))
    return applied
