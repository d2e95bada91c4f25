"""Consolidation jobs run in this process against the real database (the worker tests run them through
Celery): decisions written with lineage, the exact mark, concurrent jobs, leases, triggers."""

import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from memcube import cube, jobs
from memcube.consolidation import trigger
from memcube.consolidation.run import run_consolidation
from memcube.errors import Conflict
from memcube.models import MemCubeCreate, MessageAppend, MessageIn, SearchRequest
from memcube.paging import apply_paging
from memcube.search import search
from memcube.session import append_messages
from memcube.store import consolidation as scope_store
from memcube.store import cubes as cube_store
from memcube.store.consolidation import ScopeKey

JAN = datetime(2024, 1, 10, 9, 0, tzinfo=timezone.utc)
JUN = datetime(2024, 6, 1, 18, 30, tzinfo=timezone.utc)


@pytest.fixture()
def heuristic(settings):
    return settings.model_copy(update={"consolidate_engine": "heuristic"})


def add_episodes(runtime, settings, tenant, *texts, at=None, agent="a", user="u", session="s1", conn=None):
    items = [MemCubeCreate(agent_id=agent, user_id=user, session_id=session, content=text, occurred_at=at)
             for text in texts]
    if conn is not None:
        return cube.create_cubes(conn, tenant=tenant, actor="test", items=items, embedder=runtime.embedder,
                                 settings=settings)
    with runtime.pool.connection() as c:
        return cube.create_cubes(c, tenant=tenant, actor="test", items=items, embedder=runtime.embedder,
                                 settings=settings)


def queue(runtime, tenant, agent="a", user="u", engine="heuristic"):
    with runtime.pool.connection() as c:
        job, created = jobs.enqueue_consolidation(c, tenant=tenant, agent_id=agent, user_id=user, trigger="api",
                                                  engine=engine)
    assert created
    return job["id"]


def run(runtime, settings, job_id, llm=None):
    return run_consolidation(runtime.pool, job_id=job_id, embedder=runtime.embedder, settings=settings, llm=llm)


def derived(runtime, tenant, agent="a", kinds=("semantic",)):
    with runtime.pool.connection() as c:
        return c.execute("SELECT * FROM memcubes WHERE tenant = %s AND agent_id = %s AND kind = ANY(%s) "
                         "ORDER BY created_at, content", (tenant, agent, list(kinds))).fetchall()


def test_a_move_supersedes_the_old_city_with_lineage_and_as_of_finds_it(runtime, heuristic, tenant):
    [lisbon_episode] = add_episodes(runtime, heuristic, tenant, "I live in Lisbon, near the river.", at=JAN)
    first = run(runtime, heuristic, queue(runtime, tenant))
    assert first["state"] == "succeeded" and first["counts"]["added"] == 1
    [porto_episode] = add_episodes(runtime, heuristic, tenant, "Big news: I moved to Porto!", at=JUN)
    second = run(runtime, heuristic, queue(runtime, tenant))
    assert second["counts"] == {"episodes": 1, "added": 1, "updated": 0, "superseded": 1, "unchanged": 0,
                                "quarantined": 0, "summaries": 1}
    facts = {f["content"]: f for f in derived(runtime, tenant)}
    lisbon, porto = facts["The user lives in Lisbon"], facts["The user lives in Porto"]
    assert (lisbon["status"], lisbon["valid_from"], lisbon["valid_to"], lisbon["superseded_by"]) == \
        ("superseded", JAN, JUN, porto["id"])
    assert (porto["status"], porto["valid_from"], porto["valid_to"]) == ("active", JUN, None)
    assert lisbon["provenance"]["derived_from"] == [{"id": str(lisbon_episode["id"]), "version": 1}]
    assert porto["provenance"]["derived_from"] == [{"id": str(porto_episode["id"]), "version": 1}]
    assert porto["provenance"]["source"] == "consolidation" and porto["provenance"]["job_id"] == second["job_id"]
    assert porto["data"] == {"attribute": "lives_in", "value": "Porto"}
    with runtime.pool.connection() as c:
        history = cube.history(c, tenant=tenant, cube_id=lisbon["id"])
        assert [h["status"] for h in history] == ["active", "superseded"]

        def city(as_of):
            request = SearchRequest(agent_id="a", query="where does the user live?", kinds=["semantic"], as_of=as_of)
            return [h.content for h in search(c, tenant=tenant, request=request, embedder=runtime.embedder,
                                              settings=heuristic, stats=runtime.stats).hits]

        assert city(datetime(2024, 3, 1, tzinfo=timezone.utc)) == ["The user lives in Lisbon"]
        assert city(datetime.now(timezone.utc)) == ["The user lives in Porto"]


def test_restatements_merge_into_one_fact_and_a_second_run_adds_nothing(runtime, heuristic, tenant):
    episodes = add_episodes(runtime, heuristic, tenant, "I prefer window seats on flights.",
                            "Remember, I prefer a window seat when I fly.", "I always prefer window seats.")
    result = run(runtime, heuristic, queue(runtime, tenant))
    assert result["counts"] == {"episodes": 3, "added": 1, "updated": 0, "superseded": 0, "unchanged": 2,
                                "quarantined": 0, "summaries": 1}
    [fact] = derived(runtime, tenant)
    assert fact["confidence"] == pytest.approx(0.9)
    assert sorted(ref["id"] for ref in fact["provenance"]["derived_from"]) == sorted(str(e["id"]) for e in episodes)
    with runtime.pool.connection() as c:
        links = cube.list_links(c, tenant=tenant, cube_id=fact["id"], limit=50)
    assert sorted(str(link["target_id"]) for link in links if link["type"] == "derived_from") == \
        sorted(str(e["id"]) for e in episodes)
    before = derived(runtime, tenant, kinds=("semantic", "summary"))
    again = run(runtime, heuristic, queue(runtime, tenant))
    assert again["state"] == "succeeded" and set(again["counts"].values()) == {0}
    assert derived(runtime, tenant, kinds=("semantic", "summary")) == before


def test_an_episode_that_commits_late_is_consolidated_by_the_next_run_not_skipped(runtime, heuristic, tenant):
    with runtime.pool.connection() as slow:
        add_episodes(runtime, heuristic, tenant, "I live in Lisbon.", conn=slow)
        # Inserted later and committed first (straight into the store: the slow transaction holds the scope's
        # counter row, which a full create would wait for).
        with runtime.pool.connection() as fast:
            [vector] = runtime.embedder.embed(["I love jazz music."])
            cube_store.insert_cubes(fast, [{
                **MemCubeCreate(agent_id="a", user_id="u", session_id="s1", content="I love jazz music.").model_dump(
                    exclude={"embedding"}), "id": uuid.uuid4(), "tenant": tenant, "embedding": vector,
                "provenance": {"source": "api"}}])
        early = run(runtime, heuristic, queue(runtime, tenant))
        # The open transaction holds the horizon: nothing after it is taken, so nothing can be jumped over.
        assert early["counts"]["episodes"] == 0
    late = run(runtime, heuristic, queue(runtime, tenant))
    assert late["counts"]["episodes"] == 2
    assert sorted(f["content"] for f in derived(runtime, tenant)) == ["The user lives in Lisbon",
                                                                      "The user loves jazz music"]
    with runtime.pool.connection() as c:
        assert scope_store.find_scope(c, ScopeKey(tenant, "a", "u"))["pending_episodes"] == 0


def test_a_batch_never_splits_the_episodes_of_one_transaction(runtime, settings, tenant):
    first = add_episodes(runtime, settings, tenant, "one", "two", "three")
    second = add_episodes(runtime, settings, tenant, "four", "five")
    scope = ScopeKey(tenant, "a", "u")
    with runtime.pool.connection() as c:
        batch = scope_store.pending_episodes(c, scope, after=None, limit=2)
        assert sorted(e["id"] for e in batch) == sorted(e["id"] for e in first)
        mark = scope_store.Mark(batch[-1]["xact_id"], batch[-1]["id"])
        rest = scope_store.pending_episodes(c, scope, after=mark, limit=2)
        assert sorted(e["id"] for e in rest) == sorted(e["id"] for e in second)
        none = scope_store.pending_episodes(c, scope, after=scope_store.Mark(rest[-1]["xact_id"], rest[-1]["id"]),
                                            limit=2)
        assert none == []


def test_two_jobs_on_one_scope_never_both_apply(runtime, heuristic, tenant):
    texts = ["I live in Lisbon.", "I love jazz music.", "I work at Acme.", "I have a dog named Rex.",
             "I'm allergic to peanuts.", "My favorite color is green."]
    for text in texts:  # one transaction each, so that each batch of two ends at a transaction
        add_episodes(runtime, heuristic, tenant, text)
    small = heuristic.model_copy(update={"consolidate_batch_episodes": 2})
    job_ids = [queue(runtime, tenant, engine=None), queue(runtime, tenant, engine="heuristic")]
    results, barrier = {}, threading.Barrier(2)

    def work(job_id):
        barrier.wait()
        while True:  # as the task does: a scope that keeps changing is retried
            try:
                results[job_id] = run(runtime, small, job_id)
                return
            except Conflict:
                continue

    threads = [threading.Thread(target=work, args=(job_id,)) for job_id in job_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(r["counts"]["episodes"] for r in results.values()) == 6
    contents = [f["content"] for f in derived(runtime, tenant)]
    assert len(contents) == 6 == len(set(contents))
    evidence = [ref["id"] for f in derived(runtime, tenant) for ref in f["provenance"]["derived_from"]]
    assert len(evidence) == 6 == len(set(evidence))


def test_a_leased_job_is_busy_for_others_and_a_finished_job_is_left_as_it_is(runtime, heuristic, tenant):
    add_episodes(runtime, heuristic, tenant, "I live in Oslo.")
    job_id = queue(runtime, tenant)
    assert jobs.claim(runtime.pool, job_id=job_id, owner="another-worker", settings=heuristic)["state"] == "running"
    with pytest.raises(jobs.JobBusy) as busy:
        run(runtime, heuristic, job_id)
    assert 1 <= busy.value.retry_in <= heuristic.job_lease_seconds + 1
    jobs.release(runtime.pool, job_id=job_id, owner="another-worker")  # as if its lease ran out
    done = run(runtime, heuristic, job_id)
    assert done["state"] == "succeeded" and done["counts"]["added"] == 1
    assert run(runtime, heuristic, job_id) == done
    assert len(derived(runtime, tenant)) == 1
    with runtime.pool.connection() as c:
        assert jobs.get_job(c, tenant=tenant, job_id=job_id)["attempts"] == 2


def test_the_llm_engine_without_an_llm_fails_the_job_visibly(runtime, settings, tenant):
    add_episodes(runtime, settings, tenant, "I live in Oslo.")
    result = run(runtime, settings, queue(runtime, tenant, engine="llm"), llm=None)
    assert result["state"] == "failed" and "MEMCUBE_LLM_BASE_URL" in result["error"]


def test_the_nth_episode_queues_a_consolidation_in_its_own_transaction(conn, runtime, settings, tenant):
    three = settings.model_copy(update={"consolidate_after_episodes": 3})

    def queued():
        return conn.execute("SELECT id, trigger, state FROM jobs WHERE tenant = %s", (tenant,)).fetchall()

    add_episodes(runtime, three, tenant, "one", "two", conn=conn)
    assert queued() == []
    add_episodes(runtime, three, tenant, "three", conn=conn)
    [job] = queued()
    assert (job["trigger"], job["state"]) == ("episodes", "queued")
    [message] = conn.execute("SELECT task, payload, sent_at FROM outbox WHERE payload->>'job_id' = %s",
                             (str(job["id"]),)).fetchall()
    assert (message["task"], message["sent_at"]) == ("memcube.consolidate", None)
    add_episodes(runtime, three, tenant, "four", conn=conn)
    assert queued() == [job]  # the queued job will take the fourth too
    assert scope_store.find_scope(conn, ScopeKey(tenant, "a", "u"))["pending_episodes"] == 4


def test_the_scan_queues_scopes_whose_session_went_quiet(conn, runtime, settings, tenant):
    add_episodes(runtime, settings, tenant, "I live in Oslo.", agent="quiet", session="old")
    add_episodes(runtime, settings, tenant, "I live in Bergen.", agent="busy", session="old")
    idle = settings.model_copy(update={"consolidate_idle_seconds": 1.0})
    time.sleep(1.5)
    add_episodes(runtime, settings, tenant, "Still here.", agent="busy", session="old")
    trigger.scan(conn, idle)
    rows = conn.execute("SELECT agent_id, trigger FROM jobs WHERE tenant = %s", (tenant,)).fetchall()
    assert rows == [{"agent_id": "quiet", "trigger": "idle"}]
    trigger.scan(conn, idle, schedule=True)
    rows = conn.execute("SELECT agent_id, trigger FROM jobs WHERE tenant = %s ORDER BY agent_id", (tenant,)).fetchall()
    assert rows == [{"agent_id": "busy", "trigger": "schedule"}, {"agent_id": "quiet", "trigger": "idle"}]


def test_triggers_leave_a_scope_alone_for_a_while_after_its_job_failed(conn, runtime, settings, tenant):
    add_episodes(runtime, settings, tenant, "I live in Oslo.")
    failed = run(runtime, settings, queue(runtime, tenant, engine="llm"), llm=None)
    assert failed["state"] == "failed"
    eager = settings.model_copy(update={"consolidate_after_episodes": 1})
    add_episodes(runtime, eager, tenant, "I moved to Bergen.", conn=conn)
    add_episodes(runtime, eager, tenant, "I love skiing.", agent="other", conn=conn)
    trigger.scan(conn, eager, schedule=True)
    rows = conn.execute("SELECT agent_id, state FROM jobs WHERE tenant = %s ORDER BY agent_id", (tenant,)).fetchall()
    assert rows == [{"agent_id": "a", "state": "failed"}, {"agent_id": "other", "state": "queued"}]


def test_facts_superseded_within_one_append_keep_a_validity_that_as_of_finds(runtime, heuristic, tenant,
                                                                             redis_client):
    # The messages of one append share their time: the later statement must still leave the earlier a validity.
    request = MessageAppend(agent_id="a", user_id="u", messages=[
        MessageIn(role="user", content="I live in Lisbon."),
        MessageIn(role="user", content="Scratch that, I moved to Porto last week."),
        MessageIn(role="user", content="Oh and I'm allergic to peanuts.")])
    with runtime.pool.connection() as c:
        append_messages(c, redis_client, tenant=tenant, actor="test", session_id="s1", request=request,
                        embedder=runtime.embedder, settings=heuristic)
    result = run(runtime, heuristic, queue(runtime, tenant))
    assert (result["counts"]["added"], result["counts"]["superseded"]) == (3, 1)
    with runtime.pool.connection() as c:
        rows = c.execute("SELECT content, status, valid_from, valid_to FROM memcube_versions WHERE tenant = %s "
                         "AND kind = 'semantic' ORDER BY valid_from, version", (tenant,)).fetchall()
        # Every stored interval, in every version, is open or not empty.
        assert rows and all(r["valid_to"] is None or r["valid_to"] > r["valid_from"] for r in rows), rows
        facts = {f["content"]: f for f in derived(runtime, tenant)}
        lisbon, porto = facts["The user lives in Lisbon"], facts["The user lives in Porto"]
        said = lisbon["valid_from"]
        assert lisbon["status"] == "superseded" and said < lisbon["valid_to"] == porto["valid_from"]

        def city(as_of):
            request = SearchRequest(agent_id="a", query="where does the user live?", kinds=["semantic"], as_of=as_of,
                                    k=1)
            return [h.content for h in search(c, tenant=tenant, request=request, embedder=runtime.embedder,
                                              settings=heuristic, stats=runtime.stats).hits]

        assert city(said) == ["The user lives in Lisbon"]
        assert city(porto["valid_from"]) == ["The user lives in Porto"]
        assert city(datetime.now(timezone.utc)) == ["The user lives in Porto"]


def test_a_fact_consolidation_read_pages_into_core_only_once_it_was_restated(runtime, heuristic, tenant):
    add_episodes(runtime, heuristic, tenant, "My name is Priya Sharma.", agent="pa")
    run(runtime, heuristic, queue(runtime, tenant, agent="pa"))
    [fact] = derived(runtime, tenant, agent="pa")
    assert fact["confidence"] == pytest.approx(0.6)

    def page():
        with runtime.pool.connection() as c:
            cube_store.record_access(c, {fact["id"]: (5, datetime.now(timezone.utc))})
            return [(m.id, m.tier) for m in apply_paging(c, tenant=tenant, agent_id="pa", user_id="u",
                                                         settings=heuristic)]

    assert page() == []  # read once from one episode: not sure enough to be always in context
    add_episodes(runtime, heuristic, tenant, "Yes, my name is Priya Sharma.", agent="pa")
    run(runtime, heuristic, queue(runtime, tenant, agent="pa"))
    [restated] = derived(runtime, tenant, agent="pa")
    assert restated["confidence"] == pytest.approx(0.8) and heuristic.paging_min_confidence == 0.8
    assert page() == [(fact["id"], "core")]
