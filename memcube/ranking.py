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
    present = sorted((value for _, value in values if value is not None), reverse=descending)
    first: dict[float, int] = {}
    for position, value in enumerate(present):
        first.setdefault(value, position + 1)
    return {key: first[value] for key, value in values if value is not None}


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
         evidence: Mapping[Any, Sequence[Any]] | None = None) -> list[Ranked]:
    """Rank candidate rows carrying `vector_distance` and `text_score`, best first.

    rrf = sum over the retrievers that found a row of 1 / (rrf_k + its rank there); with `evidence` (derived
    row id -> ids of its evidence among `rows`), a derived row lends LEND_SHARE of its rrf to each of its
    evidence rows and is left out: it is returned as `derived` on them instead.
    relevance = rrf scaled to 0..1 (1 = first in both lists);
    score = (1 - w_recency - w_importance) * relevance + w_recency * recency + w_importance * importance.
    """
    vector_ranks = ranks([(r["id"], r.get("vector_distance")) for r in rows], descending=False)
    text_ranks = ranks([(r["id"], r.get("text_score")) for r in rows], descending=True)
    own = {r["id"]: sum(1.0 / (weights.rrf_k + rank) for rank in (vector_ranks.get(r["id"]), text_ranks.get(r["id"]))
                        if rank is not None) for r in rows}
    received, lenders = lend_to_evidence(own, evidence or {})
    absorbed = {d for targets in lenders.values() for d in targets}
    by_id = {r["id"]: r for r in rows}
    best = 2.0 / (weights.rrf_k + 1)
    w_relevance = max(0.0, 1.0 - weights.recency - weights.importance)
    out = []
    for row in rows:
        if row["id"] in absorbed:
            continue
        rrf = own[row["id"]] + received.get(row["id"], 0.0)
        relevance = min(1.0, rrf / best)
        moment = row.get("occurred_at") or row["created_at"]
        fresh = recency(moment, now, weights.half_life_days)
        score = w_relevance * relevance + weights.recency * fresh + weights.importance * float(row["importance"])
        out.append(Ranked(row, score, vector_ranks.get(row["id"]), text_ranks.get(row["id"]), rrf, relevance, fresh,
                          derived=tuple(by_id[d] for d in lenders.get(row["id"], ())),
                          lent=received.get(row["id"], 0.0)))
    out.sort(key=lambda r: (-r.score, str(r.row["id"])))
    return out
