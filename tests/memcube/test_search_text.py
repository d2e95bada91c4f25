"""Search documents: a conversation turn is found by the words of the turns before it, kept right on every
write; derived memories stand for their evidence; summaries stay out of search by default."""

from datetime import datetime, timedelta, timezone

from memcube import cube
from memcube.models import Hit, MemCubeCreate, MemCubePatch, SearchRequest
from memcube.search import REF_CHARS, SearchStats, search
from memcube.store import search as search_store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def turns(conn, embedder, settings, tenant, texts, session_id="s1", agent_id="agent", **fields):
    items = [MemCubeCreate(agent_id=agent_id, session_id=session_id, kind="episodic", content=t,
                           occurred_at=T0 + timedelta(seconds=i), **fields) for i, t in enumerate(texts)]
    return cube.create_cubes(conn, tenant=tenant, actor="t", items=items, embedder=embedder, settings=settings)


def text_hits(conn, embedder, settings, tenant, query, **fields):
    request = SearchRequest(agent_id=fields.pop("agent_id", "agent"), query=query, k=20, explain=True, **fields)
    hits = search(conn, tenant=tenant, request=request, embedder=embedder, settings=settings, stats=SearchStats(0)).hits
    return {h.content: h.explain.text_score for h in hits if h.explain.text_score is not None}


def documents(conn, ids):
    rows = conn.execute("SELECT id, search_tsv::text AS doc, search_len FROM memcubes WHERE id = ANY(%s)",
                        (list(ids),)).fetchall()
    return {r["id"]: (r["doc"], r["search_len"]) for r in rows}


CHAT = ["Melanie: What did you look into last week?",   # 0
        "Caroline: Adoption agencies, mostly.",          # 1
        "Melanie: Any luck so far?",                     # 2
        "Caroline: Two of them called me back.",         # 3
        "Melanie: That is great news.",                  # 4
        "Caroline: I also repainted the kitchen."]       # 5


def test_a_turn_is_found_by_the_words_of_the_turns_before_it(conn, embedder, settings, tenant):
    made = turns(conn, embedder, settings, tenant, CHAT)
    hits = text_hits(conn, embedder, settings, tenant, "adoption")
    # The turn itself first, then the turn after it (half weight), then the one after that (a quarter).
    assert set(hits) == set(CHAT[1:4])
    assert hits[CHAT[1]] > hits[CHAT[2]] > hits[CHAT[3]]
    # The answer is found by the question's words.
    assert CHAT[1] in text_hits(conn, embedder, settings, tenant, "look into")
    # A memory outside any session is found by its own words only.
    cube.create_cubes(conn, tenant=tenant, actor="t", embedder=embedder, settings=settings,
                      items=[MemCubeCreate(agent_id="agent", content="I looked at kitchen tiles"),
                             MemCubeCreate(agent_id="agent", content="nothing to see here")])
    assert set(text_hits(conn, embedder, settings, tenant, "tiles")) == {"I looked at kitchen tiles"}
    # Each session lends its words within itself only.
    turns(conn, embedder, settings, tenant, ["user: adoption papers are signed", "user: hello"], session_id="s2")
    assert "user: hello" in text_hits(conn, embedder, settings, tenant, "papers")
    assert set(text_hits(conn, embedder, settings, tenant, "agencies")) == set(CHAT[1:4])
    assert len(documents(conn, [m["id"] for m in made])) == 6


def test_turns_appended_one_at_a_time_get_the_same_documents_as_one_batch(conn, embedder, settings, tenant):
    batch = turns(conn, embedder, settings, tenant, CHAT, session_id="batch")
    single = []
    for i, text in enumerate(CHAT):
        single += cube.create_cubes(conn, tenant=tenant, actor="t", embedder=embedder, settings=settings, items=[
            MemCubeCreate(agent_id="agent", session_id="single", kind="episodic", content=text,
                          occurred_at=T0 + timedelta(seconds=i))])
    assert list(documents(conn, [c["id"] for c in batch]).values()) == \
        [documents(conn, [c["id"]])[c["id"]] for c in single]
    # A long batch takes one pass over its session, and a turn stored into the past reaches the turns after it.
    many = [f"turn {i} about tomatoes" for i in range(40)]
    long_batch = turns(conn, embedder, settings, tenant, many, session_id="long")
    cube.create_cubes(conn, tenant=tenant, actor="t", embedder=embedder, settings=settings, items=[
        MemCubeCreate(agent_id="agent", session_id="long", kind="episodic", content="a zucchini interlude",
                      occurred_at=T0 + timedelta(seconds=9.5))])
    found = text_hits(conn, embedder, settings, tenant, "zucchini")
    assert set(found) == {"a zucchini interlude", many[10], many[11]}
    assert documents(conn, [long_batch[12]["id"]])[long_batch[12]["id"]][0].count("'zucchini'") == 0


def test_forgetting_or_erasing_a_turn_takes_its_words_out_of_the_turns_after_it(conn, embedder, settings, tenant):
    made = turns(conn, embedder, settings, tenant, CHAT)
    assert set(text_hits(conn, embedder, settings, tenant, "called")) == set(CHAT[3:])
    cube.forget_cube(conn, tenant=tenant, actor="t", cube_id=made[3]["id"])
    assert text_hits(conn, embedder, settings, tenant, "called") == {}
    cube.forget_cube(conn, tenant=tenant, actor="t", cube_id=made[1]["id"], erase=True)
    assert text_hits(conn, embedder, settings, tenant, "adoption agencies") == {}
    # Only the forgotten turn keeps its own words (a search for forgotten memories finds it); the erased one
    # has none, and no other turn holds either.
    rows = conn.execute("SELECT id, search_tsv::text AS doc FROM memcubes WHERE tenant = %s", (tenant,)).fetchall()
    assert [r["id"] for r in rows if "adopt" in r["doc"] or "call" in r["doc"]] == [made[3]["id"]]
    # With those turns gone, the turns after them now reach further back.
    assert set(text_hits(conn, embedder, settings, tenant, "luck")) == {CHAT[2], CHAT[4], CHAT[5]}


def test_a_changed_or_moved_turn_rewrites_the_documents_around_it(conn, embedder, settings, tenant):
    made = turns(conn, embedder, settings, tenant, CHAT)
    cube.patch_cube(conn, tenant=tenant, actor="t", cube_id=made[1]["id"], embedder=embedder, settings=settings,
                    patch=MemCubePatch(content="Caroline: Fostering programmes, mostly."))
    assert text_hits(conn, embedder, settings, tenant, "adoption") == {}
    assert CHAT[2] in text_hits(conn, embedder, settings, tenant, "fostering")
    # Moved to the end of the session: the turns after its old place lose its words; it takes in the words of
    # the turns now before it.
    cube.patch_cube(conn, tenant=tenant, actor="t", cube_id=made[1]["id"], embedder=embedder, settings=settings,
                    patch=MemCubePatch(occurred_at=T0 + timedelta(hours=1)))
    assert set(text_hits(conn, embedder, settings, tenant, "fostering")) == {"Caroline: Fostering programmes, mostly."}
    assert set(text_hits(conn, embedder, settings, tenant, "repainted")) == {
        CHAT[5], "Caroline: Fostering programmes, mostly."}


def fact(conn, embedder, settings, tenant, content, sources, **fields):
    derived_from = [{"id": str(s["id"]), "version": s["version"]} for s in sources]
    [made] = cube.create_cubes(conn, tenant=tenant, actor="job:x", embedder=embedder, settings=settings,
                               source="consolidation", extra_provenance=[{"derived_from": derived_from}],
                               items=[MemCubeCreate(agent_id="agent", kind="semantic", content=content, **fields)])
    return made


def find(conn, embedder, settings, tenant, query, **fields):
    request = SearchRequest(agent_id="agent", query=query, k=5, explain=True, **fields)
    return search(conn, tenant=tenant, request=request, embedder=embedder, settings=settings,
                  stats=SearchStats(0)).hits


def test_a_derived_fact_stands_for_its_evidence_by_default(conn, embedder, settings, tenant):
    episodes = turns(conn, embedder, settings, tenant, ["user: I finally moved to Berlin in spring",
                                                        "assistant: Congratulations on the new city!",
                                                        "user: my cat Miso loves the balcony"])
    made = fact(conn, embedder, settings, tenant, "The user lives in Berlin", episodes[:1])
    hits = find(conn, embedder, settings, tenant, "Where does the user live?")
    assert made["id"] not in {h.id for h in hits}
    [first] = [h for h in hits if h.id == episodes[0]["id"]]
    assert [d.id for d in first.derived] == [made["id"]] and first.explain.lent > 0
    # Asked for facts, the fact is a hit of its own and lists its evidence.
    [hit] = find(conn, embedder, settings, tenant, "Where does the user live?", kinds=["semantic"])
    assert hit.id == made["id"] and [e.id for e in hit.evidence] == [episodes[0]["id"]] and hit.derived == []
    assert find(conn, embedder, settings, tenant, "Where does the user live?", derived="hits")[0].id == made["id"]
    # Once its evidence is forgotten, the fact answers for itself.
    cube.forget_cube(conn, tenant=tenant, actor="t", cube_id=episodes[0]["id"])
    hits = find(conn, embedder, settings, tenant, "Where does the user live?")
    assert hits[0].id == made["id"] and hits[0].evidence == []


def test_a_fact_lifts_evidence_neither_retriever_found(conn, embedder, settings, tenant):
    filler = [f"user: note {i} about groceries and the weekly shop" for i in range(30)]
    episodes = turns(conn, embedder, settings, tenant, ["user: ugh, Tuesdays are the worst"] + filler)
    made = fact(conn, embedder, settings, tenant, "The user dislikes swimming lessons on Tuesdays", episodes[:1])
    hits = find(conn, embedder, settings, tenant, "swimming lessons")
    assert hits[0].id == episodes[0]["id"] and [d.id for d in hits[0].derived] == [made["id"]]


def test_summaries_are_left_out_of_search_unless_asked_for(conn, embedder, settings, tenant):
    cube.create_cubes(conn, tenant=tenant, actor="t", embedder=embedder, settings=settings, items=[
        MemCubeCreate(agent_id="agent", kind="summary", content="Session s1: the user talked about Berlin"),
        MemCubeCreate(agent_id="agent", kind="episodic", content="the user lives in Berlin")])
    assert [h.kind for h in find(conn, embedder, settings, tenant, "Berlin")] == ["episodic"]
    assert [h.kind for h in find(conn, embedder, settings, tenant, "Berlin", kinds=["summary"])] == ["summary"]


def test_hits_show_the_stored_memory_and_a_derived_hit_all_of_its_active_evidence(conn, embedder, settings, tenant):
    """Candidates carry only what ranking and a hit need: what a hit shows is still the stored memory, and a
    derived hit lists its active evidence in order, whether or not the evidence was a candidate."""
    metadata = {"speaker": "user", "nested": {"list": [1, 2.5, "é"], "flag": True}, "none": None}
    long_turn = "user: I finally moved to Berlin in spring, " + "and the flat by the canal is lovely " * 12
    episodes = turns(conn, embedder, settings, tenant, [long_turn, "user: my cat Miso loves the balcony",
                                                        "user: the old flat had no balcony"],
                     metadata=metadata, tags=["home"])
    made = fact(conn, embedder, settings, tenant, "The user moved to Berlin with a cat", episodes,
                metadata={"from": "consolidation"})
    cube.forget_cube(conn, tenant=tenant, actor="t", cube_id=episodes[2]["id"])
    [hit] = find(conn, embedder, settings, tenant, "Berlin cat", kinds=["semantic"])
    stored = cube.read_cube(conn, tenant=tenant, cube_id=made["id"])
    shown = set(Hit.model_fields) - {"score", "derived", "evidence", "explain"}
    assert {name: getattr(hit, name) for name in shown} == {name: stored[name] for name in shown}
    assert [e.id for e in hit.evidence] == [episodes[0]["id"], episodes[1]["id"]]  # not the forgotten one
    first = hit.evidence[0]
    assert (first.kind, first.occurred_at) == ("episodic", episodes[0]["occurred_at"])
    assert first.content == long_turn[:REF_CHARS - 1] + "…" and hit.evidence[1].content == episodes[1]["content"]
    # By default the fact stands for its evidence, which shows its own stored fields and the fact.
    hits = find(conn, embedder, settings, tenant, "Berlin cat")
    assert made["id"] not in {h.id for h in hits}
    [turn] = [h for h in hits if h.id == episodes[0]["id"]]
    assert (turn.metadata, turn.tags, turn.content) == (metadata, ["home"], long_turn)
    assert [(d.id, d.content) for d in turn.derived] == [(made["id"], made["content"])]


def test_evidence_neither_retriever_found_comes_with_the_candidates(conn, embedder, settings, tenant, monkeypatch):
    """The candidate query brings the in-scope evidence of the facts among its rows; an id written in another
    form Python still reads (`urn:uuid:...`) is looked up afterwards, as before."""
    filler = [f"user: note {i} about groceries and the weekly shop" for i in range(60)]
    episodes = turns(conn, embedder, settings, tenant, ["user: my neighbour plays the drums at night",
                                                        "user: the printer ran out of toner"] + filler)
    elsewhere = turns(conn, embedder, settings, tenant, ["user: Tuesdays again"], agent_id="other-agent")
    made = fact(conn, embedder, settings, tenant, "The user dislikes swimming lessons on Tuesdays",
                episodes[:1] + elsewhere)
    [odd] = cube.create_cubes(conn, tenant=tenant, actor="job:x", embedder=embedder, settings=settings,
                              source="consolidation",
                              extra_provenance=[{"derived_from": [{"id": f"urn:uuid:{episodes[1]['id']}"}]}],
                              items=[MemCubeCreate(agent_id="agent", kind="semantic",
                                                   content="The user finds the swimming pool changing rooms smelly")])
    looked_up = []
    in_scope = search_store.cubes_in_scope
    monkeypatch.setattr(search_store, "cubes_in_scope",
                        lambda conn, *, scope, cube_ids: looked_up.append(set(cube_ids)) or in_scope(
                            conn, scope=scope, cube_ids=cube_ids))
    # 10 candidates of each retriever, of 63 memories: the evidence is found by neither.
    few = settings.model_copy(update={"search_candidates": 10})
    hits = {h.id: h for h in find(conn, embedder, few, tenant, "swimming lessons pool")}
    assert [d.id for d in hits[episodes[0]["id"]].derived] == [made["id"]]
    assert [d.id for d in hits[episodes[1]["id"]].derived] == [odd["id"]]
    assert elsewhere[0]["id"] not in hits and made["id"] not in hits and odd["id"] not in hits
    assert [(hits[e["id"]].explain.vector_rank, hits[e["id"]].explain.text_rank) for e in episodes[:2]] == [
        (None, None), (None, None)]
    assert [ids for ids in looked_up if ids] == [{episodes[1]["id"]}]
