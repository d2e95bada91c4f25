"""Ranking policy as pure functions: reciprocal rank fusion, derived memories lending their rank to their
evidence, then recency and importance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

# What a derived memory (a fact consolidation distilled from episodes) lends each of its episodes, as a
# share of its own fusion score: evidence found directly counts fully, found through a memory made from it
# counts half.
LEND_SHARE = 0.5


@dataclass(frozen=True)
class RankWeights:
    rrf_k: int = 10
    recency: float = 0.05
    importance: float = 0.05
    half_life_days: float = 30.0


@dataclass(frozen=True)
class Ranked:
    row: dict[str, Any]
    score: float
    vector_rank: int | None
    text_rank: int | None
    rrf: float
    relevance: float
    recency: float
    # Derived memories that matched the query and stand for this one (their rows, best first), and the
    # fusion score they lent it.
    derived: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    lent: float = 0.0


def recency(moment: datetime, now: datetime, half_life_days: float) -> float:
    """Return 1.0 for now, 0.5 one half-life ago, towards 0 for older; the future counts as now."""
    age_days = max((now - moment).total_seconds(), 0.0) / 86_400
    return math.pow(0.5, age_days / half_life_days)


def ranks(values: Sequence[tuple[Any, float | None]], *, descending: bool) -> dict[Any, int]:
    """Return 1-based competition ranks ("1224") of the keys whose value is not None.

    Equal values share a rank, so the fused order never depends on the order the rows arrived in
    (full-text scores tie often).
    """
    found = _ranks([value for _, value in values], descending=descending)
    return {key: rank for (key, _), rank in zip(values, found) if rank is not None}


def _ranks(values: Sequence[float | None], *, descending: bool) -> list[int | None]:
    """The competition rank of each value, in order; None for None."""
    present = sorted((value for value in values if value is not None), reverse=descending)
    first: dict[float, int] = {}
    for position, value in enumerate(present):
        first.setdefault(value, position + 1)
    return [None if value is None else first[value] for value in values]


def lend_to_evidence(rrf: Mapping[Any, float], evidence: Mapping[Any, Sequence[Any]], *,
                     share: float = LEND_SHARE) -> tuple[dict[Any, float], dict[Any, list[Any]]]:
    """Let each derived row lend `share` of its fusion score to each of its evidence rows.

    `evidence` maps a derived row's id to the ids of its evidence that may be returned. Returns what each
    evidence row received, and which derived rows lent to it (best first). A derived row with no evidence
    present lends nothing.
    """
    received: dict[Any, float] = {}
    lenders: dict[Any, list[Any]] = {}
    for derived_id in sorted(evidence, key=lambda d: -rrf.get(d, 0.0)):
        for target in dict.fromkeys(evidence[derived_id]):
            if target == derived_id:
                continue
            received[target] = received.get(target, 0.0) + share * rrf.get(derived_id, 0.0)
            lenders.setdefault(target, []).append(derived_id)
    return received, lenders


def fuse(rows: Sequence[dict[str, Any]], *, now: datetime, weights: RankWeights,
         evidence: Mapping[Any, Sequence[Any]] | None = None, limit: int | None = None) -> list[Ranked]:
    """Rank candidate rows (distinct ids) carrying `vector_distance` and `text_score`, best first; the first
    `limit` of them when given.

    rrf = sum over the retrievers that found a row of 1 / (rrf_k + its rank there); with `evidence` (derived
    row id -> ids of its evidence among `rows`), a derived row lends LEND_SHARE of its rrf to each of its
    evidence rows and is left out: it is returned as `derived` on them instead.
    relevance = rrf scaled to 0..1 (1 = first in both lists);
    score = (1 - w_recency - w_importance) * relevance + w_recency * recency + w_importance * importance.
    Equal scores are ordered by id (as text).
    """
    # Rows are kept by position and their ids used only where evidence names them: hashing a UUID is a Python
    # call, and keying each step by id took half of the fusion of a search's ~60 candidates.
    ids = [r["id"] for r in rows]
    vector_ranks = _ranks([r.get("vector_distance") for r in rows], descending=False)
    text_ranks = _ranks([r.get("text_score") for r in rows], descending=True)
    k = weights.rrf_k
    own = [(0.0 if v is None else 1.0 / (k + v)) + (0.0 if t is None else 1.0 / (k + t))
           for v, t in zip(vector_ranks, text_ranks)]
    # What each row received from derived rows, which rows lent it, and which lent at all, by position.
    received: dict[int, float] = {}
    lenders: dict[int, tuple[dict[str, Any], ...]] = {}
    absorbed: set[int] = set()
    if evidence:
        position = {row_id: i for i, row_id in enumerate(ids)}
        got, lent_by = lend_to_evidence({d: own[position[d]] for d in evidence if d in position}, evidence)
        received = {position[t]: v for t, v in got.items() if t in position}
        lenders = {position[t]: tuple(rows[position[d]] for d in ds) for t, ds in lent_by.items() if t in position}
        absorbed = {position[d] for ds in lent_by.values() for d in ds if d in position}
    best = 2.0 / (k + 1)
    w_relevance = max(0.0, 1.0 - weights.recency - weights.importance)
    scored = []
    for i, row in enumerate(rows):
        if i in absorbed:
            continue
        rrf = own[i] + received.get(i, 0.0)
        relevance = min(1.0, rrf / best)
        fresh = recency(row.get("occurred_at") or row["created_at"], now, weights.half_life_days)
        score = w_relevance * relevance + weights.recency * fresh + weights.importance * float(row["importance"])
        scored.append((score, i, rrf, relevance, fresh))
    scored.sort(key=_by_score)
    _order_ties_by_id(scored, ids)
    return [Ranked(rows[i], score, vector_ranks[i], text_ranks[i], rrf, relevance, fresh,
                   derived=lenders.get(i, ()), lent=received.get(i, 0.0))
            for score, i, rrf, relevance, fresh in scored[:limit]]


def _by_score(entry: tuple[float, int, float, float, float]) -> float:
    return -entry[0]


def _order_ties_by_id(scored: list[tuple[float, int, float, float, float]], ids: Sequence[Any]) -> None:
    """Order each run of equal scores (already sorted by score) by id as text: the order is then the same
    whatever order the rows came in."""
    start = 0
    while start < len(scored):
        end = start + 1
        while end < len(scored) and scored[end][0] == scored[start][0]:
            end += 1
        if end - start > 1:
            scored[start:end] = sorted(scored[start:end], key=lambda entry: str(ids[entry[1]]))
        start = end
