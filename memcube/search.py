"""Hybrid search of one scope: plan by scope size, vector + full-text candidates, fused ranking."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg

from memcube.access import AccessRecorder
from memcube.config import Settings
from memcube.embedder import Embedder
from memcube.errors import InvalidInput
from memcube.models import Explain, Hit, SearchRequest
from memcube.ranking import RankWeights, fuse
from memcube.store import cubes as cube_store
from memcube.store.cubes import to_vector
from memcube.store.search import Plan, ScopeFilter, common_lexemes, count_vector_matches, search_candidates


class SearchStats:
    """A per-process cache of the statistics that steer search: scope sizes (to choose the plan) and the
    lexemes too common to search by (from ANALYZE's statistics). A ttl of 0 reads them every time."""

    def __init__(self, scope_ttl_seconds: float, lexeme_ttl_seconds: float = 300.0) -> None:
        self._scope_ttl = scope_ttl_seconds
        self._lexeme_ttl = lexeme_ttl_seconds
        self._sizes: dict[tuple[str, str], tuple[int, float]] = {}
        self._lexemes: tuple[float, float, list[str]] | None = None
        self._lock = threading.Lock()

    def scope_size(self, conn: psycopg.Connection, *, tenant: str, agent_id: str, cap: int) -> int:
        """Return the number of cubes of an agent (counted up to `cap`), recounted every scope ttl."""
        key = (tenant, agent_id)
        now = time.monotonic()
        with self._lock:
            cached = self._sizes.get(key)
        if cached is not None and now - cached[1] < self._scope_ttl:
            return cached[0]
        size = cube_store.scope_size(conn, tenant=tenant, agent_id=agent_id, cap=cap)
        with self._lock:
            if len(self._sizes) > 100_000:
                self._sizes.clear()
            self._sizes[key] = (size, now)
        return size

    def common_lexemes(self, conn: psycopg.Connection, *, min_fraction: float) -> list[str]:
        """Return the lexemes in more than `min_fraction` of all memories; none when the fraction is 1."""
        if min_fraction >= 1.0:
            return []
        now = time.monotonic()
        with self._lock:
            cached = self._lexemes
        if cached is not None and cached[0] == min_fraction and now - cached[1] < self._lexeme_ttl:
            return cached[2]
        lexemes = common_lexemes(conn, min_fraction=min_fraction)
        with self._lock:
            self._lexemes = (min_fraction, now, lexemes)
        return lexemes


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    plan: str


def choose_plan(scope_rows: int, exact_scan_max_rows: int) -> Plan:
    """Exact distances for scopes up to the threshold; the HNSW index (iterative scan) above it."""
    return "exact" if scope_rows <= exact_scan_max_rows else "hnsw"


def search(conn: psycopg.Connection, *, tenant: str, request: SearchRequest, embedder: Embedder,
           settings: Settings, stats: SearchStats, access: AccessRecorder | None = None,
           now: datetime | None = None) -> SearchResult:
    """Return the best `k` cubes of a scope for a query, best first; raises InvalidInput over a limit."""
    if request.k > settings.max_k:
        raise InvalidInput(f"k is at most {settings.max_k} (MEMCUBE_MAX_K); got {request.k}",
                           details={"limit": settings.max_k})
    scope = ScopeFilter(
        tenant=tenant, agent_id=request.agent_id, user_id=request.user_id, session_id=request.session_id,
        kinds=request.kinds, tiers=request.tiers, tags=request.tags, as_of=request.as_of,
        include_shared=request.include_shared,
        statuses=request.statuses or (("active", "superseded") if request.as_of else ("active",)),
    )
    vector = to_vector(embedder.embed([request.query])[0])
    n = max(settings.search_candidates, 2 * request.k)
    size = stats.scope_size(conn, tenant=tenant, agent_id=request.agent_id, cap=settings.exact_scan_max_rows + 1)
    plan: str = choose_plan(size, settings.exact_scan_max_rows)
    common = stats.common_lexemes(conn, min_fraction=settings.text_common_fraction)
    rows = _candidates(conn, scope, vector, request.query, n, plan, embedder.dim, settings, common)
    if plan == "hnsw":
        found = sum(1 for r in rows if r["vector_distance"] is not None)
        # A filter must never silently drop results: if the index came back short, count the scope.
        if found < n and count_vector_matches(conn, scope=scope, cap=n) > found:
            rows = _candidates(conn, scope, vector, request.query, n, "exact", embedder.dim, settings, common)
            plan = "hnsw+exact"
    weights = RankWeights(settings.rrf_k, settings.weight_recency, settings.weight_importance,
                          settings.recency_half_life_days)
    ranked = fuse(rows, now=now or datetime.now(timezone.utc), weights=weights)[: request.k]
    hits = [_hit(r, plan, request.explain) for r in ranked]
    if access is not None:
        access.record([h.id for h in hits])
    return SearchResult(hits=hits, plan=plan)


def _candidates(conn: psycopg.Connection, scope: ScopeFilter, vector: Any, text: str, n: int, plan: str,
                dim: int, settings: Settings, common: list[str]) -> list[dict[str, Any]]:
    return search_candidates(conn, scope=scope, query_vector=vector, text=text, n_vector=n, n_text=n,
                             plan=plan, dim=dim, ef_search=max(settings.hnsw_ef_search, n),  # type: ignore[arg-type]
                             common_lexemes=common)


def _hit(ranked: Any, plan: str, explain: bool) -> Hit:
    row = ranked.row
    detail = None
    if explain:
        distance = row["vector_distance"]
        detail = Explain(plan=plan, vector_rank=ranked.vector_rank,
                         vector_similarity=None if distance is None else 1.0 - float(distance),
                         text_rank=ranked.text_rank,
                         text_score=None if row["text_score"] is None else float(row["text_score"]),
                         rrf=ranked.rrf, relevance=ranked.relevance, recency=ranked.recency,
                         importance=float(row["importance"]))
    return Hit(score=ranked.score, explain=detail, **{k: row[k] for k in Hit.model_fields if k in row})
