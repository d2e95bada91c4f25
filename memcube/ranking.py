"""Ranking policy as pure functions: reciprocal rank fusion, then recency and importance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence


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


def fuse(rows: Sequence[dict[str, Any]], *, now: datetime, weights: RankWeights) -> list[Ranked]:
    """Rank candidate rows carrying `vector_distance` and `text_score`, best first.

    relevance = RRF(vector rank, text rank) scaled to 0..1 (1 = first in both lists);
    score = (1 - w_recency - w_importance) * relevance + w_recency * recency + w_importance * importance.
    """
    vector_ranks = ranks([(r["id"], r.get("vector_distance")) for r in rows], descending=False)
    text_ranks = ranks([(r["id"], r.get("text_score")) for r in rows], descending=True)
    best = 2.0 / (weights.rrf_k + 1)
    w_relevance = max(0.0, 1.0 - weights.recency - weights.importance)
    out = []
    for row in rows:
        v_rank, t_rank = vector_ranks.get(row["id"]), text_ranks.get(row["id"])
        rrf = sum(1.0 / (weights.rrf_k + r) for r in (v_rank, t_rank) if r is not None)
        relevance = rrf / best
        moment = row.get("occurred_at") or row["created_at"]
        fresh = recency(moment, now, weights.half_life_days)
        score = w_relevance * relevance + weights.recency * fresh + weights.importance * float(row["importance"])
        out.append(Ranked(row, score, v_rank, t_rank, rrf, relevance, fresh))
    out.sort(key=lambda r: (-r.score, str(r.row["id"])))
    return out
