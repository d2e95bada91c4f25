"""The HNSW index holds only scopes large enough for search to read it: small scopes' rows never enter it, a
scope that outgrows the exact plan is swept in by the worker, and search uses the index only once it holds
every vector of the scope."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from memcube import cube, vector_index
from memcube.models import MemCubeCreate, SearchRequest
from memcube.search import SearchStats, search
from memcube.store import vector_index as store

THRESHOLD = 30


@pytest.fixture()
def small(settings):
    """Settings under which a scope of more than THRESHOLD memories is large."""
    return settings.model_copy(update={"exact_scan_max_rows": THRESHOLD})


def _items(agent, n, dim, rng, start=0):
    return [MemCubeCreate(agent_id=agent, content=f"note {start + j} of {agent}",
                          embedding=[rng.gauss(0, 1) for _ in range(dim)]) for j in range(n)]


def _write(pool, tenant, items, embedder, settings):
    with pool.connection() as conn:
        return cube.create_cubes(conn, tenant=tenant, actor="t", items=items, embedder=embedder, settings=settings)


def _flags(pool, tenant, agent):
    with pool.connection() as conn:
        rows = conn.execute("SELECT ann, count(*) AS n FROM memcubes WHERE tenant = %s AND agent_id = %s GROUP BY ann",
                            (tenant, agent)).fetchall()
    return {r["ann"]: r["n"] for r in rows}


def _state(pool, tenant, agent):
    with pool.connection() as conn:
        return store.state(conn, tenant=tenant, agent_id=agent)


def test_the_index_is_defined_over_indexed_scopes_only(conn):
    definition = conn.execute("SELECT pg_get_indexdef('memcubes_embedding_hnsw'::regclass) AS d").fetchone()["d"]
    assert "USING hnsw" in definition and definition.endswith("WHERE ((embedding IS NOT NULL) AND ann)")


def test_a_scope_enters_the_index_when_it_outgrows_the_exact_plan(runtime, embedder, small, tenant):
    rng = random.Random(3)
    pool = runtime.pool
    _write(pool, tenant, _items("big", THRESHOLD, embedder.dim, rng), embedder, small)
    _write(pool, tenant, _items("tiny", 5, embedder.dim, rng), embedder, small)
    # Up to the threshold nothing enters the index.
    assert _flags(pool, tenant, "big") == {False: THRESHOLD} and _state(pool, tenant, "big") is None

    # The write that takes the scope past it marks the scope; rows written from then on enter the index.
    _write(pool, tenant, _items("big", 2, embedder.dim, rng, start=THRESHOLD), embedder, small)
    assert _state(pool, tenant, "big") == "filling"
    _write(pool, tenant, _items("big", 3, embedder.dim, rng, start=THRESHOLD + 2), embedder, small)
    assert _flags(pool, tenant, "big") == {False: THRESHOLD + 2, True: 3}

    # While filling, search stays exact: the index does not hold the scope's older rows yet.
    request = SearchRequest(agent_id="big", query="note", k=10, explain=True)
    with pool.connection() as conn:
        result = search(conn, tenant=tenant, request=request, embedder=embedder, settings=small, stats=SearchStats(0))
    assert result.plan == "exact" and len(result.hits) == 10

    # The worker's sweep puts the rest in and makes the scope ready; the small scope stays out.
    done = vector_index.fill_pending(pool)
    assert done["ready"] >= 1
    assert _state(pool, tenant, "big") == "ready"
    assert _flags(pool, tenant, "big") == {True: THRESHOLD + 5}
    assert _flags(pool, tenant, "tiny") == {False: 5} and _state(pool, tenant, "tiny") is None
    with pool.connection() as conn:
        result = search(conn, tenant=tenant, request=request, embedder=embedder, settings=small, stats=SearchStats(0))
        exact = search(conn, tenant=tenant, request=request, embedder=embedder,
                       settings=small.model_copy(update={"exact_scan_max_rows": 10_000}), stats=SearchStats(0))
    assert result.plan == "hnsw" and len(result.hits) == 10
    assert len({h.id for h in result.hits} & {h.id for h in exact.hits}) >= 8

    # Sweeping again changes nothing.
    with pool.connection() as conn:
        assert vector_index.fill_scope(conn, tenant=tenant, agent_id="big") == 0


def test_a_write_that_began_before_the_scope_turned_filling_ends_in_the_index(runtime, embedder, small, tenant):
    """The sweep waits for writers that could have read the old state, so none of their rows is left out."""
    rng = random.Random(5)
    pool = runtime.pool
    _write(pool, tenant, _items("busy", THRESHOLD, embedder.dim, rng), embedder, small)
    late_items = _items("busy", 4, embedder.dim, rng, start=THRESHOLD)
    inserted, release = threading.Event(), threading.Event()

    def slow_writer():
        # A writer that read "not indexed" and has not committed yet (default settings: it marks nothing).
        with pool.connection() as conn:
            cube.create_cubes(conn, tenant=tenant, actor="t", items=late_items, embedder=embedder,
                              settings=small.model_copy(update={"exact_scan_max_rows": 10_000}))
            inserted.set()
            release.wait(10)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(10)
    with pool.connection() as conn:
        assert store.mark_filling(conn, tenant=tenant, agent_id="busy")
    filled: dict[str, int] = {}
    sweeper = threading.Thread(target=lambda: filled.update(vector_index.fill_pending(pool)))
    sweeper.start()
    time.sleep(0.5)
    assert sweeper.is_alive(), "the sweep must wait for the writer that began before the scope turned filling"
    release.set()
    writer.join(10)
    sweeper.join(30)
    assert _state(pool, tenant, "busy") == "ready"
    assert _flags(pool, tenant, "busy") == {True: THRESHOLD + 4}


def test_moving_a_memory_into_an_indexed_scope_puts_it_in_the_index(runtime, embedder, small, tenant):
    rng = random.Random(9)
    pool = runtime.pool
    _write(pool, tenant, _items("large", THRESHOLD + 1, embedder.dim, rng), embedder, small)
    vector_index.fill_pending(pool)
    assert _state(pool, tenant, "large") == "ready"
    [moved] = _write(pool, tenant, _items("elsewhere", 1, embedder.dim, rng), embedder, small)
    with pool.connection() as conn:
        conn.execute("UPDATE memcubes SET agent_id = 'large' WHERE id = %s", (moved["id"],))
        assert conn.execute("SELECT ann FROM memcubes WHERE id = %s", (moved["id"],)).fetchone()["ann"] is True


def test_an_operator_can_index_every_large_scope_at_once(runtime, embedder, settings, tenant):
    """After an upgrade (or a lower threshold) the scopes already large are found by counting them all."""
    rng = random.Random(11)
    pool = runtime.pool
    _write(pool, tenant, _items("old-large", 12, embedder.dim, rng), embedder, settings)
    _write(pool, tenant, _items("old-small", 3, embedder.dim, rng), embedder, settings)
    with pool.connection() as conn:
        marked = vector_index.index_large_scopes(conn, threshold=10)
    assert (tenant, "old-large") in marked and (tenant, "old-small") not in marked
    while vector_index.fill_pending(pool)["scopes"]:
        pass
    assert _state(pool, tenant, "old-large") == "ready" and _flags(pool, tenant, "old-large") == {True: 12}
    assert _state(pool, tenant, "old-small") is None


def test_search_in_an_indexed_scope_finds_what_exact_finds(runtime, embedder, small, tenant):
    """The hnsw plan filters on `ann`: every vector of a ready scope is reachable through it."""
    rng = random.Random(13)
    pool = runtime.pool
    rows = _write(pool, tenant, _items("seek", 60, embedder.dim, rng), embedder, small)
    vector_index.fill_pending(pool)
    target = rows[17]
    with pool.connection() as conn:
        vector = conn.execute("SELECT embedding FROM memcubes WHERE id = %s", (target["id"],)).fetchone()["embedding"]
    query = np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)
    from memcube.store.search import ScopeFilter, search_candidates

    with pool.connection() as conn:
        found = search_candidates(conn, scope=ScopeFilter(tenant=tenant, agent_id="seek"), query_vector=query,
                                  text=None, n_vector=5, n_text=5, plan="hnsw", dim=embedder.dim, ef_search=40)
    assert min(found, key=lambda r: r["vector_distance"])["id"] == target["id"]


def test_memcube_index_puts_every_large_scope_into_the_index(runtime, embedder, settings, tenant, database_url,
                                                              monkeypatch, capsys):
    from services.cli.commands import main

    rng = random.Random(17)
    _write(runtime.pool, tenant, _items("cli-large", 12, embedder.dim, rng), embedder, settings)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MEMCUBE_EXACT_SCAN_MAX_ROWS", "10")
    assert main(["index"]) == 0
    assert "newly marked" in capsys.readouterr().out
    assert _state(runtime.pool, tenant, "cli-large") == "ready"
    assert _flags(runtime.pool, tenant, "cli-large") == {True: 12}


def test_a_sweep_cut_short_is_finished_by_the_next_run(runtime, embedder, small, tenant):
    """A worker that dies mid-sweep leaves committed chunks behind and the scope filling: the next beat run
    walks the scope again and makes it ready; search stays exact until then."""
    rng = random.Random(19)
    pool = runtime.pool
    _write(pool, tenant, _items("cut", THRESHOLD + 10, embedder.dim, rng), embedder, small)
    assert _state(pool, tenant, "cut") == "filling"
    with pool.connection() as conn:  # the first chunk of a sweep, then the worker is gone
        entered, after = store.index_chunk(conn, tenant=tenant, agent_id="cut", after=None, limit=15)
    assert entered == 15 and after is not None
    assert _state(pool, tenant, "cut") == "filling"
    with pool.connection() as conn:
        result = search(conn, tenant=tenant, request=SearchRequest(agent_id="cut", query="note", k=5),
                        embedder=embedder, settings=small, stats=SearchStats(0))
    assert result.plan == "exact"
    vector_index.fill_pending(pool)
    assert _state(pool, tenant, "cut") == "ready" and _flags(pool, tenant, "cut") == {True: THRESHOLD + 10}


def test_a_write_to_many_agents_holds_a_bounded_number_of_locks(conn, embedder, settings, tenant):
    """Every writer takes its scope's lock until commit; scopes share 128 of them, so an import or batch over
    thousands of agents cannot exhaust PostgreSQL's lock table."""
    rng = random.Random(23)
    items = [MemCubeCreate(agent_id=f"many-{i}", content=f"note of agent {i}",
                           embedding=[rng.gauss(0, 1) for _ in range(embedder.dim)]) for i in range(400)]
    cube.create_cubes(conn, tenant=tenant, actor="t", items=items, embedder=embedder, settings=settings)
    held = conn.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                        "AND classid = 8008").fetchone()["n"]
    assert 0 < held <= 128


def test_a_mark_that_rolled_back_is_made_again_by_a_later_write(runtime, embedder, settings, tenant):
    """The write that marks a scope may fail after marking it: once the watch looks again, the next write marks
    the scope itself."""
    rng = random.Random(29)
    pool = runtime.pool
    rows = _write(pool, tenant, _items("undone", THRESHOLD + 1, embedder.dim, rng), embedder, settings)
    watch = vector_index.GrowthWatch(ttl_seconds=0)
    with pool.connection() as conn:
        watch.note_writes(conn, tenant=tenant, rows=rows, threshold=THRESHOLD)
        assert store.state(conn, tenant=tenant, agent_id="undone") == "filling"
        conn.rollback()
    assert _state(pool, tenant, "undone") is None
    with pool.connection() as conn:
        watch.note_writes(conn, tenant=tenant, rows=rows[:1], threshold=THRESHOLD)
    assert _state(pool, tenant, "undone") == "filling"
