"""Paging: the pure policy (value, page out, page in, cooldown, stability) and applying it to a scope."""

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from memcube import core, cube
from memcube.models import CoreBlockPut, MemCubeCreate
from memcube.paging import Pageable, PagingPolicy, apply_paging, plan_paging, value
from memcube.store import cubes as cube_store

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
POLICY = PagingPolicy(budget=100, min_accesses=3, cooldown=timedelta(hours=1))


def item(tokens, importance=0.5, accesses=0, days_ago=0.0, pinned=False, paged_out_at=None, confidence=1.0,
         derived=False):
    return Pageable(id=uuid.uuid4(), version=1, tokens=tokens, importance=importance, access_count=accesses,
                    last_used=NOW - timedelta(days=days_ago), pinned=pinned, paged_out_at=paged_out_at,
                    confidence=confidence, derived=derived)


def test_value_weighs_importance_recency_and_frequency():
    policy = PagingPolicy(budget=1, w_importance=0.5, w_recency=0.3, w_frequency=0.2, half_life_days=30)
    assert abs(value(item(1, importance=1.0, accesses=10), NOW, policy) - (0.5 + 0.3 + 0.2 * 0.5)) < 1e-9
    assert abs(value(item(1, importance=0.0, accesses=0, days_ago=30), NOW, policy) - 0.3 * 0.5) < 1e-9
    only_frequency = PagingPolicy(budget=1, w_importance=0, w_recency=0, w_frequency=1)
    assert value(item(1, accesses=90), NOW, only_frequency) == 0.9


def test_page_out_takes_the_lowest_value_until_core_fits_and_never_a_pinned_block():
    persona = item(60, importance=0.0, days_ago=400, pinned=True)  # the least valuable, but pinned
    low, mid, high = item(20, importance=0.1), item(20, importance=0.5), item(20, importance=0.9)
    moves = plan_paging([persona, low, mid, high], [], now=NOW, policy=POLICY)  # 120 > 100
    assert [(m.id, m.tier) for m in moves] == [(low.id, "archival")]
    assert "over budget (120 > 100 tokens)" in moves[0].reason


def test_page_out_keeps_what_fits_back():
    # Over by 12: the 5-token lowest goes first, then the 20-token one; the first then fits back in.
    small, big, keep = item(5, importance=0.1), item(20, importance=0.2), item(87, importance=0.9)
    moves = plan_paging([small, big, keep], [], now=NOW, policy=POLICY)
    assert [m.id for m in moves] == [big.id]


def test_page_in_needs_accesses_room_and_no_recent_page_out():
    core_items = [item(60, pinned=True)]
    hot, cold = item(30, accesses=5), item(10, accesses=2)
    too_big = item(50, accesses=50)
    just_out = item(5, accesses=9, paged_out_at=NOW - timedelta(minutes=10))
    long_out = item(5, accesses=9, paged_out_at=NOW - timedelta(hours=2))
    moves = plan_paging(core_items, [hot, cold, too_big, just_out, long_out], now=NOW, policy=POLICY)
    assert {m.id for m in moves} == {hot.id, long_out.id}
    assert all(m.tier == "core" for m in moves)
    assert sum(m.tokens for m in moves) + 60 <= POLICY.budget
    assert "accessed 5 times" in next(m.reason for m in moves if m.id == hot.id)


def test_page_in_goes_most_valuable_first_when_room_is_short():
    better, worse = item(30, importance=0.9, accesses=5), item(30, importance=0.1, accesses=5)
    moves = plan_paging([item(50, pinned=True)], [worse, better], now=NOW, policy=POLICY)
    assert [m.id for m in moves] == [better.id]


def test_a_derived_memory_pages_in_only_when_confident_enough():
    unsure = item(10, importance=0.9, accesses=50, confidence=0.6, derived=True)
    confirmed = item(10, importance=0.1, accesses=5, confidence=0.8, derived=True)
    stated = item(10, importance=0.1, accesses=5, confidence=0.3)  # said by a client: its confidence is theirs
    moves = plan_paging([], [unsure, confirmed, stated], now=NOW, policy=POLICY)
    assert {m.id for m in moves} == {confirmed.id, stated.id}
    lenient = PagingPolicy(budget=100, min_accesses=3, min_confidence=0.5)
    assert unsure.id in {m.id for m in plan_paging([], [unsure], now=NOW, policy=lenient)}


def apply(core_items, archival, moves, now):
    """The state after the moves, as the store would hold it."""
    by_id = {m.id: m for m in moves}
    new_core = [c for c in core_items if c.id not in by_id] + [a for a in archival if a.id in by_id]
    new_archival = [a for a in archival if a.id not in by_id] + [
        Pageable(**{**c.__dict__, "paged_out_at": now}) for c in core_items if c.id in by_id]
    return new_core, new_archival


items = st.builds(item, tokens=st.integers(0, 60), importance=st.floats(0, 1), accesses=st.integers(0, 30),
                  days_ago=st.floats(0, 400), pinned=st.booleans())


@hsettings(max_examples=300, deadline=None)
@given(core_items=st.lists(items, max_size=8), archival=st.lists(items.map(
    lambda i: Pageable(**{**i.__dict__, "pinned": False})), max_size=8), budget=st.integers(1, 250))
def test_paging_fits_the_budget_and_a_second_run_changes_nothing(core_items, archival, budget):
    policy = PagingPolicy(budget=budget, min_accesses=3, cooldown=timedelta(hours=1))
    moves = plan_paging(core_items, archival, now=NOW, policy=policy)
    new_core, new_archival = apply(core_items, archival, moves, NOW)
    pinned = sum(c.tokens for c in core_items if c.pinned)
    assert sum(c.tokens for c in new_core) <= max(budget, pinned)
    assert all(c in new_core for c in core_items if c.pinned)
    # No ping-pong: the same inputs a moment later, or after the cooldown, move nothing back and forth.
    assert plan_paging(new_core, new_archival, now=NOW + timedelta(seconds=1), policy=policy) == []
    later = plan_paging(new_core, new_archival, now=NOW + timedelta(hours=2), policy=policy)
    assert all(m.tier == "core" for m in later)


def scope(conn, embedder, settings, tenant, agent_id, contents, **fields):
    items_ = [MemCubeCreate(agent_id=agent_id, content=c, **fields) for c in contents]
    return cube.create_cubes(conn, tenant=tenant, actor="t", items=items_, embedder=embedder, settings=settings)


def test_apply_paging_writes_versions_with_reasons_and_is_stable(conn, embedder, settings):
    tenant, agent_id = f"t-{uuid.uuid4().hex[:8]}", "pager"
    small = settings.model_copy(update={"core_budget_tokens": 42, "paging_min_accesses": 2})
    core.put_block(conn, tenant=tenant, actor="t", agent_id=agent_id, user_id=None, label="persona",
                   body=CoreBlockPut(content="You are a patient travel planner who loves trains."),  # 10 tokens
                   embedder=embedder, settings=small)
    pinned = scope(conn, embedder, small, tenant, agent_id, [
        "Pinned: the user is vegetarian and never eats fish or meat at all.",  # 15 tokens
        "Pinned: budget trips only, hostels over hotels, always.",  # 13 tokens
    ], tier="core", importance=0.2)
    hot = scope(conn, embedder, small, tenant, agent_id, ["Prefers night trains."], importance=0.9,
                kind="semantic")[0]
    turn = scope(conn, embedder, small, tenant, agent_id, ["ok"], importance=1.0, session_id="s")[0]
    cube_store.record_access(conn, {hot["id"]: (5, datetime.now(timezone.utc)),
                                    turn["id"]: (50, datetime.now(timezone.utc))})

    moves = apply_paging(conn, tenant=tenant, agent_id=agent_id, user_id=None, settings=small)
    # 38 tokens of core fit 42; the hot fact (4 tokens) fits exactly in the room left. The conversation turn,
    # however often recalled, stays archival.
    assert [(m.id, m.tier) for m in moves] == [(hot["id"], "core")]
    history = cube.history(conn, tenant=tenant, cube_id=hot["id"])
    assert [(v["tier"], v["provenance"]["source"]) for v in history] == [("archival", "api"), ("core", "paging")]
    assert "accessed 5 times" in history[-1]["provenance"]["reason"]
    assert apply_paging(conn, tenant=tenant, agent_id=agent_id, user_id=None, settings=small) == []

    # A bigger persona overfills the core: the lowest-value pageable cube goes, the block stays.
    written, _ = core.put_block(conn, tenant=tenant, actor="t", agent_id=agent_id, user_id=None, label="persona",
                                body=CoreBlockPut(content="You are a patient travel planner who loves trains and "
                                                  "answers in short, friendly sentences."),
                                embedder=embedder, settings=small)
    assert [m.tier for m in written.paging] == ["archival"]
    assert written.paging[0].id in {p["id"] for p in pinned}
    state = core.get_core(conn, tenant=tenant, agent_id=agent_id, user_id=None, settings=small)
    assert state.tokens <= 42 and [b.label for b in state.blocks] == ["persona"]
    out = cube.history(conn, tenant=tenant, cube_id=written.paging[0].id)[-1]
    assert out["tier"] == "archival" and out["provenance"]["source"] == "paging"
    assert "over budget" in out["provenance"]["reason"]
    # Stable: nothing moves again, and the cube paged out does not come straight back.
    cube_store.record_access(conn, {written.paging[0].id: (9, datetime.now(timezone.utc))})
    assert apply_paging(conn, tenant=tenant, agent_id=agent_id, user_id=None, settings=small) == []


def test_apply_paging_knows_a_derived_memory_by_its_first_version(conn, embedder, settings):
    tenant, agent_id = f"t-{uuid.uuid4().hex[:8]}", "pager"
    [fact] = cube.create_cubes(conn, tenant=tenant, actor="job:1", embedder=embedder, settings=settings,
                               source="consolidation", items=[MemCubeCreate(
                                   agent_id=agent_id, kind="semantic", content="The user's name is Priya",
                                   confidence=0.6, importance=0.9)])
    cube_store.record_access(conn, {fact["id"]: (5, datetime.now(timezone.utc))})
    assert apply_paging(conn, tenant=tenant, agent_id=agent_id, user_id=None, settings=settings) == []
    # A later version (here a client's) does not launder where the memory came from.
    cube_store.update_cube(conn, tenant=tenant, cube_id=fact["id"], changes={"importance": 1.0},
                           provenance=cube.provenance("api", "key:1"))
    assert apply_paging(conn, tenant=tenant, agent_id=agent_id, user_id=None, settings=settings) == []
    cube_store.update_cube(conn, tenant=tenant, cube_id=fact["id"], changes={"confidence": 0.8},
                           provenance=cube.provenance("api", "key:1"))
    [move] = apply_paging(conn, tenant=tenant, agent_id=agent_id, user_id=None, settings=settings)
    assert (move.id, move.tier) == (fact["id"], "core")
