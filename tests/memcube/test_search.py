"""Hybrid search through memcube functions: semantic, keyword, filters, plans and completeness."""

import random
from datetime import datetime, timezone

import numpy as np
import pytest

from memcube import cube
from memcube.access import AccessRecorder
from memcube.errors import InvalidInput
from memcube.models import MemCubeCreate, MemCubePatch, SearchRequest
from memcube.search import SearchStats, search
from memcube.store import vector_index as index_store
from memcube.store.cubes import to_vector
from memcube.store.search import ScopeFilter, search_candidates

FACTS = [
    "Caroline adopted a rescue dog named Biscuit from the shelter in March.",
    "Melanie ran her first marathon in Chicago and finished in four hours.",
    "The team decided to migrate the billing service to PostgreSQL next quarter.",
    "Jon is allergic to peanuts and always checks restaurant menus.",
    "Grandma's apple pie recipe uses cinnamon, nutmeg and a butter crust.",
    "The quarterly board meeting moved from Tuesday to Thursday afternoon.",
    "The internal deploy token is named QZ7-walrus and rotates monthly.",
    "Sam is learning to play the cello and practices every evening.",
]


def add(conn, embedder, settings, tenant, agent_id, contents, **fields):
    items = [MemCubeCreate(agent_id=agent_id, content=c, **fields) for c in contents]
    return cube.create_cubes(conn, tenant=tenant, actor="t", items=items, embedder=embedder, settings=settings)


def run(conn, embedder, settings, tenant, query, agent_id="agent", stats=None, **fields):
    request = SearchRequest(agent_id=agent_id, query=query, **fields)
    return search(conn, tenant=tenant, request=request, embedder=embedder, settings=settings,
                  stats=stats or SearchStats(0))


def test_paraphrased_query_finds_its_target_with_the_local_model(conn, embedder, settings, tenant):
    add(conn, embedder, settings, tenant, "agent", FACTS)
    result = run(conn, embedder, settings, tenant, "which pet did Caroline take home?", k=3, explain=True)
    assert "Biscuit" in result.hits[0].content
    assert result.hits[0].explain.vector_rank == 1
    result = run(conn, embedder, settings, tenant, "food allergy of Jon", k=1)
    assert "peanuts" in result.hits[0].content


def test_an_exact_rare_term_is_found_by_keyword(conn, embedder, settings, tenant):
    add(conn, embedder, settings, tenant, "agent", FACTS)
    result = run(conn, embedder, settings, tenant, "QZ7-walrus", k=3, explain=True)
    assert "QZ7-walrus" in result.hits[0].content
    assert result.hits[0].explain.text_rank == 1


def test_filters_scope_kind_tags_and_status(conn, embedder, settings, tenant):
    add(conn, embedder, settings, tenant, "agent", ["tea with Ann"], user_id="u1", tags=["drink", "ann"])
    add(conn, embedder, settings, tenant, "agent", ["tea with Bob"], user_id="u2", kind="semantic", tags=["drink"])
    add(conn, embedder, settings, tenant, "other-agent", ["tea with Cy"])
    add(conn, embedder, settings, tenant, "agent", ["tea for everyone"])
    [gone] = add(conn, embedder, settings, tenant, "agent", ["tea with Dee"])
    cube.forget_cube(conn, tenant=tenant, actor="t", cube_id=gone["id"])

    def contents(**f):
        return sorted(h.content for h in run(conn, embedder, settings, tenant, "tea", k=10, **f).hits)

    assert contents() == ["tea for everyone", "tea with Ann", "tea with Bob"]
    assert contents(user_id="u1") == ["tea with Ann"]
    assert contents(user_id="u1", include_shared=True) == ["tea for everyone", "tea with Ann"]
    assert contents(kinds=["semantic"]) == ["tea with Bob"]
    assert contents(tags=["drink", "ann"]) == ["tea with Ann"]
    assert contents(statuses=["forgotten"]) == ["tea with Dee"]
    assert contents(agent_id="other-agent") == ["tea with Cy"]
    assert run(conn, embedder, settings, "another-tenant", "tea", k=10).hits == []


def test_as_of_returns_what_was_valid_then(conn, embedder, settings, tenant):
    jan, jun, dec = (datetime(2024, m, 1, tzinfo=timezone.utc) for m in (1, 6, 12))
    [old] = add(conn, embedder, settings, tenant, "agent", ["lives in Lisbon"], kind="semantic", valid_from=jan)
    add(conn, embedder, settings, tenant, "agent", ["lives in Porto"], kind="semantic", valid_from=jun)
    cube.patch_cube(conn, tenant=tenant, actor="t", cube_id=old["id"], embedder=embedder, settings=settings,
                    patch=MemCubePatch(valid_to=jun))
    conn.execute("UPDATE memcubes SET status = 'superseded' WHERE id = %s", (old["id"],))

    def at(when):
        return [h.content for h in run(conn, embedder, settings, tenant, "where does she live", k=5, as_of=when).hits]

    assert at(datetime(2024, 3, 1, tzinfo=timezone.utc)) == ["lives in Lisbon"]
    assert at(dec) == ["lives in Porto"]
    assert [h.content for h in run(conn, embedder, settings, tenant, "where does she live", k=5).hits] == [
        "lives in Porto"]


def test_k_over_the_limit_names_it(conn, embedder, settings, tenant):
    with pytest.raises(InvalidInput, match="MEMCUBE_MAX_K"):
        run(conn, embedder, settings, tenant, "x", k=settings.max_k + 1)


@pytest.mark.parametrize("threshold", [100_000, 10], ids=["exact-plan", "hnsw-plan"])
def test_scoped_search_is_complete_among_many_scopes_after_many_repeats(conn, embedder, settings, tenant, threshold):
    """Every scope gets its full top-k from the vector retriever, also once the statement is prepared."""
    rng = random.Random(7)
    dim = embedder.dim
    agents = [f"agent-{i}" for i in range(40)]
    vectors = {}
    for agent in agents:
        items = []
        for j in range(25):
            v = [rng.gauss(0, 1) for _ in range(dim)]
            items.append(MemCubeCreate(agent_id=agent, content=f"note {j} of {agent}", embedding=v))
        for row, item in zip(cube.create_cubes(conn, tenant=tenant, actor="t", items=items, embedder=embedder,
                                                settings=settings), items):
            vectors[row["id"]] = (agent, np.asarray(item.embedding) / np.linalg.norm(item.embedding))
    local = settings.model_copy(update={"exact_scan_max_rows": threshold})
    if threshold < 1000:  # the scopes are large: put them into the HNSW index, as the worker would
        for agent in agents:
            index_store.mark_filling(conn, tenant=tenant, agent_id=agent)
            index_store.index_chunk(conn, tenant=tenant, agent_id=agent, after=None, limit=100)
            index_store.mark_ready(conn, tenant=tenant, agent_id=agent)
    stats = SearchStats(60)
    for repeat in range(12):
        agent = agents[repeat % len(agents)]
        query = np.asarray([rng.gauss(0, 1) for _ in range(dim)])
        query /= np.linalg.norm(query)
        expected = sorted((i for i, (a, _) in vectors.items() if a == agent),
                          key=lambda i: -float(vectors[i][1] @ query))[:10]
        plan = "exact" if stats.scope_size(conn, tenant=tenant, agent_id=agent, cap=threshold + 1) <= threshold else "hnsw"
        rows = search_candidates(conn, scope=ScopeFilter(tenant=tenant, agent_id=agent), query_vector=to_vector(query),
                                 text=None, n_vector=10, n_text=10, plan=plan, dim=dim, ef_search=40)
        got = [r["id"] for r in sorted(rows, key=lambda r: r["vector_distance"])]
        assert plan == ("exact" if threshold > 1000 else "hnsw")
        # HNSW is approximate: demand all 10 rows, and nearly all of the exact top 10.
        assert len(got) == 10, f"repeat {repeat}: {len(got)} of 10 rows"
        overlap = len(set(got) & set(expected))
        assert overlap >= (10 if plan == "exact" else 8), f"repeat {repeat}: {overlap} of 10"
        result = search(conn, tenant=tenant, request=SearchRequest(agent_id=agent, query="note", k=20),
                        embedder=embedder, settings=local, stats=stats)
        assert len(result.hits) == 20 and all(h.agent_id == agent for h in result.hits)


def test_search_records_accesses_in_batches(runtime, embedder, settings, tenant):
    with runtime.pool.connection() as c:
        rows = add(c, embedder, settings, tenant, "agent", FACTS[:3])
    recorder = AccessRecorder(runtime.pool, interval=60)
    with runtime.pool.connection() as c:
        for _ in range(3):
            search(c, tenant=tenant, request=SearchRequest(agent_id="agent", query="marathon", k=2),
                   embedder=embedder, settings=settings, stats=SearchStats(0), access=recorder)
    assert recorder.flush() == 2
    with runtime.pool.connection() as c:
        counts = {r["id"]: r["access_count"] for r in c.execute(
            "SELECT id, access_count FROM memcubes WHERE tenant = %s", (tenant,)).fetchall()}
    assert sorted(counts.values()) == [0, 3, 3]
    assert {r["id"] for r in rows} == set(counts)


def test_words_common_in_the_scope_are_left_out_of_full_text_matching(conn, embedder, settings, tenant):
    contents = [f"zebra sighting number {i} near the river" for i in range(40)] + ["a zebra and a quokka met"]
    add(conn, embedder, settings, tenant, "agent", contents)
    add(conn, embedder, settings, tenant, "quiet-agent", ["one zebra"] + [f"note {i}" for i in range(20)])
    stats = SearchStats(0)

    def kept(text, agent_id="agent", fraction=0.5, max_matches=10_000):
        return list(stats.text_query(conn, tenant=tenant, agent_id=agent_id, user_id=None,
                                     lexemes=stats.query_lexemes(conn, text), common_fraction=fraction,
                                     max_matches=max_matches).lexemes)

    assert kept("zebra quokka") == ["quokka"]  # zebra: 41 of 41 memories of this agent
    assert kept("zebra quokka", agent_id="quiet-agent") == ["quokka", "zebra"]  # 1 of 21 there
    assert kept("zebra quokka", fraction=1.0) == ["quokka", "zebra"]
    assert kept("zebra") == ["zebra"]  # every word common: all of them are kept
    assert kept("river quokka", max_matches=10) == ["quokka"]  # 40 matches are over the bound

    def text_matches(text):
        tq = stats.text_query(conn, tenant=tenant, agent_id="agent", user_id=None,
                              lexemes=stats.query_lexemes(conn, text), common_fraction=0.5, max_matches=10_000)
        rows = search_candidates(conn, scope=ScopeFilter(tenant=tenant, agent_id="agent"),
                                 query_vector=to_vector(embedder.embed([text])[0]), text=tq, n_vector=1,
                                 n_text=100, plan="exact", dim=embedder.dim)
        return sorted(r["content"] for r in rows if r["text_score"] is not None)

    assert text_matches("zebra quokka") == ["a zebra and a quokka met"]
    assert len(text_matches("zebra")) == 41
    assert text_matches("O'Neil \\ zebra's quokka") == ["a zebra and a quokka met"]


def test_another_tenants_memories_never_change_a_ranking(conn, embedder, settings, tenant):
    add(conn, embedder, settings, tenant, "agent", FACTS)

    now = datetime.now(timezone.utc)

    def ranking():
        request = SearchRequest(agent_id="agent", query="Caroline dog marathon Chicago", k=8, explain=True)
        hits = search(conn, tenant=tenant, request=request, embedder=embedder, settings=settings,
                      stats=SearchStats(0), now=now).hits
        return [(h.id, round(h.score, 9), h.explain.text_score) for h in hits]

    before = ranking()
    noise = [f"Caroline and her dog ran the Chicago marathon, part {i}" for i in range(60)]
    add(conn, embedder, settings, "t-noisy-neighbour", "agent", noise)
    add(conn, embedder, settings, tenant, "other-agent", noise)
    conn.execute("ANALYZE memcubes")
    assert ranking() == before


def test_bm25_prefers_the_rarer_word_of_the_scope(conn, embedder, settings, tenant):
    add(conn, embedder, settings, tenant, "agent", [f"the weather note {i} was fine" for i in range(10)]
        + ["the weather turned into a hailstorm", "a hailstorm is coming"])
    hits = run(conn, embedder, settings, tenant, "weather hailstorm", k=3, explain=True).hits
    assert {h.content for h in hits[:2]} == {"the weather turned into a hailstorm", "a hailstorm is coming"}
    assert hits[2].explain.text_score is None  # "weather" is in 11 of 12: too common to match by


def test_a_new_question_gets_its_words_and_their_counts_in_one_statement(conn, embedder, settings, tenant, monkeypatch):
    add(conn, embedder, settings, tenant, "agent", [f"zebra sighting number {i} near the river" for i in range(40)]
        + ["a zebra and a quokka met", "O'Neil saw a wombat"])
    by_text, by_lexemes = SearchStats(60), SearchStats(60)
    sent = []
    execute = conn.execute
    monkeypatch.setattr(conn, "execute", lambda *a, **k: sent.append(a[0]) or execute(*a, **k))

    def words(stats, question, **given):
        return stats.text_query(conn, tenant=tenant, agent_id="agent", user_id=None, common_fraction=0.5,
                                max_matches=10_000, **given)

    for i, question in enumerate(["zebra quokka", "quokka by the river", "O'Neil \\ zebra's wombat", "the",
                                  "zebras, quokkas?"]):
        expected = words(by_lexemes, question, lexemes=by_lexemes.query_lexemes(conn, question))
        sent.clear()
        assert words(by_text, question, text=question) == expected
        assert len(sent) == (1 if i else 2)  # the first question also reads the scope's statistics
        sent.clear()
        assert words(by_text, question, text=question) == expected and sent == []
    assert words(by_text, "zebra quokka", text="zebra quokka").lexemes == ["quokka"]  # zebra: 41 of 42
