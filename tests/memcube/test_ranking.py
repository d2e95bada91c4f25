"""The ranking policy, without any server."""

from datetime import datetime, timedelta, timezone
from uuid import uuid4

from memcube.ranking import RankWeights, fuse, ranks, recency
from memcube.search import choose_plan

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def row(distance=None, text=None, importance=0.5, age_days=0.0):
    return {"id": uuid4(), "vector_distance": distance, "text_score": text, "importance": importance,
            "occurred_at": None, "created_at": NOW - timedelta(days=age_days)}


def test_recency_halves_each_half_life_and_treats_future_as_now():
    assert recency(NOW, NOW, 30) == 1.0
    assert abs(recency(NOW - timedelta(days=30), NOW, 30) - 0.5) < 1e-9
    assert abs(recency(NOW - timedelta(days=60), NOW, 30) - 0.25) < 1e-9
    assert recency(NOW + timedelta(days=5), NOW, 30) == 1.0


def test_ranks_skip_missing_values_and_order_both_ways():
    a, b, c = uuid4(), uuid4(), uuid4()
    assert ranks([(a, 0.3), (b, None), (c, 0.1)], descending=False) == {c: 1, a: 2}
    assert ranks([(a, 0.3), (b, None), (c, 0.1)], descending=True) == {a: 1, c: 2}


def test_a_hit_found_by_both_retrievers_beats_one_found_by_one():
    both = row(distance=0.2, text=0.5)
    vector_only = row(distance=0.1)
    text_only = row(text=0.9)
    ranked = fuse([vector_only, text_only, both], now=NOW, weights=RankWeights())
    assert ranked[0].row is both
    assert (ranked[0].vector_rank, ranked[0].text_rank) == (2, 2)
    assert all(0.0 <= r.relevance <= 1.0 for r in ranked)


def test_first_in_both_lists_has_relevance_one():
    top = row(distance=0.0, text=1.0)
    ranked = fuse([top, row(distance=0.5, text=0.1)], now=NOW, weights=RankWeights())
    assert ranked[0].row is top and abs(ranked[0].relevance - 1.0) < 1e-12


def test_importance_and_recency_break_relevance_ties_only_by_their_weight():
    old = row(distance=0.2, importance=0.5, age_days=365)
    fresh = row(distance=0.2, importance=0.5, age_days=0)
    important = row(distance=0.2, importance=1.0, age_days=365)
    weights = RankWeights(recency=0.1, importance=0.1)
    # Equal distances: the rank order among them comes from insertion order, so compare scores directly.
    scores = {id(r.row): r for r in fuse([old, fresh, important], now=NOW, weights=weights)}
    assert scores[id(fresh)].recency > scores[id(old)].recency
    no_weight = fuse([old, fresh], now=NOW, weights=RankWeights(recency=0.0, importance=0.0))
    assert all(abs(r.score - r.relevance) < 1e-12 for r in no_weight)


def test_plan_is_exact_up_to_the_threshold_and_hnsw_above():
    assert choose_plan(0, 100) == "exact"
    assert choose_plan(100, 100) == "exact"
    assert choose_plan(101, 100) == "hnsw"


def test_tied_scores_share_a_rank_so_row_order_does_not_matter():
    a, b, c = uuid4(), uuid4(), uuid4()
    assert ranks([(a, 0.1), (b, 0.1), (c, 0.3)], descending=True) == {c: 1, a: 2, b: 2}
    rows = [row(distance=0.2, text=0.1), row(distance=0.2, text=0.1), row(distance=0.1)]
    forward = [r.row["id"] for r in fuse(rows, now=NOW, weights=RankWeights())]
    backward = [r.row["id"] for r in fuse(rows[::-1], now=NOW, weights=RankWeights())]
    assert forward == backward


def test_fuse_builds_the_first_results_asked_for_in_the_full_order_ties_by_id():
    tied = [row(distance=0.2, text=0.1) for _ in range(6)]
    fact = row(distance=0.05)
    evidence_only = row()  # found by neither retriever: only what the fact lends it
    rows = tied + [row(distance=0.1), row(text=0.9), fact, evidence_only]
    lends = {fact["id"]: [evidence_only["id"], tied[0]["id"]]}
    full = fuse(rows, now=NOW, weights=RankWeights(), evidence=lends)
    assert fact["id"] not in {r.row["id"] for r in full}
    for limit in (1, 3, 8, 20):
        top = fuse(rows, now=NOW, weights=RankWeights(), evidence=lends, limit=limit)
        assert [(r.row["id"], r.score, r.lent, r.derived) for r in top] == \
               [(r.row["id"], r.score, r.lent, r.derived) for r in full[:limit]]
    same = [r.row["id"] for r in full if r.row in tied[1:]]
    assert len(same) == 5 and same == sorted(same, key=str)
    [lifted] = [r for r in full if r.row is evidence_only]
    assert lifted.derived == (fact,) and lifted.rrf == lifted.lent > 0 and lifted.vector_rank is None
