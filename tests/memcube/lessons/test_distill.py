"""Distillation jobs run in this process against the real database (the worker tests run them through Celery):
lessons written with lineage and versions, served by situation, retired by utility, isolated by user, checked
against their evidence, written all or nothing."""

import json
import re
import threading
import time

import numpy as np
import pytest

from memcube import context, jobs
from memcube.consolidation.run import run_consolidation
from memcube.errors import Conflict, InvalidInput, NotFound
from memcube.jobs import Replan
from memcube.lessons import feedback, trigger
from memcube.lessons.distill import plan_batch, run_distillation, write_batch
from memcube.lessons.heuristic import HeuristicEngine
from memcube.lessons.serve import find_lessons
from memcube.lessons.trajectory import record_trajectory
from memcube.llm import OpenAILLM
from memcube.models import ContextRequest, LessonFeedback, MemCubeCreate, TrajectoryCreate
from memcube.search import SearchStats
from memcube.store import trajectories as trajectory_store
from memcube.store.consolidation import ScopeKey

FLIGHT = [{"tool": "search_flights", "action": "search flights", "observation": "3 flights found"},
          {"tool": "hold_fare", "action": "hold the cheapest fare", "observation": "held for 20 minutes"},
          {"tool": "pay_card", "action": "pay by card", "observation": "paid, ticket issued"}]
WALLET = [{"tool": "search_flights", "action": "search flights", "observation": "3 flights found"},
          {"tool": "pay_wallet", "action": "pay from the wallet",
           "observation": "Error: wallet payments are not accepted for fares"}]
TASKS = ("Book a flight from Paris to Rome on May 3", "Book a flight from Oslo to Lima on June 9",
         "Book a flight from Cairo to Riga on July 1")


@pytest.fixture()
def quiet(settings):
    """Settings whose trajectories queue nothing by themselves: each test queues its own jobs."""
    return settings.model_copy(update={"distill_after_trajectories": 0, "distill_engine": "heuristic"})


def record(runtime, settings, tenant, task, steps, outcome="success", agent="a", user="u", conn=None, **fields):
    body = TrajectoryCreate(agent_id=agent, user_id=user, task=task, steps=steps, outcome=outcome, **fields)
    if conn is not None:
        return record_trajectory(conn, tenant=tenant, actor="test", body=body, embedder=runtime.embedder,
                                 settings=settings)
    with runtime.pool.connection() as c:
        return record_trajectory(c, tenant=tenant, actor="test", body=body, embedder=runtime.embedder,
                                 settings=settings)


def queue(runtime, tenant, agent="a", user="u", engine="heuristic"):
    with runtime.pool.connection() as c:
        job, created = trigger.enqueue_distillation(c, tenant=tenant, agent_id=agent, user_id=user, trigger="api",
                                                    engine=engine)
    assert created
    return job["id"]


def run(runtime, settings, job_id, llm=None):
    return run_distillation(runtime.pool, job_id=job_id, embedder=runtime.embedder, settings=settings, llm=llm)


def distilled(runtime, settings, tenant, **queue_args):
    return run(runtime, settings, queue(runtime, tenant, **queue_args))


def lessons(runtime, tenant, agent="a", statuses=("active", "quarantined")):
    with runtime.pool.connection() as c:
        return c.execute("SELECT * FROM memcubes WHERE tenant = %s AND agent_id = %s AND kind = 'procedural' "
                         "AND status = ANY(%s) ORDER BY created_at, content", (tenant, agent, list(statuses))).fetchall()


def history(runtime, tenant, cube_id):
    with runtime.pool.connection() as c:
        return c.execute("SELECT version, content, data, status, provenance FROM memcube_versions "
                         "WHERE tenant = %s AND cube_id = %s ORDER BY version", (tenant, cube_id)).fetchall()


def served(runtime, settings, tenant, query, user="u", agent="a"):
    with runtime.pool.connection() as c:
        return find_lessons(c, tenant=tenant, agent_id=agent, user_id=user, task=query, status="served", limit=5,
                            cursor=None, embedder=runtime.embedder).items


def lesson_section(runtime, redis_client, settings, tenant, query, user="u"):
    with runtime.pool.connection() as c:
        ctx = context.assemble_context(c, redis_client, tenant=tenant, settings=settings, embedder=runtime.embedder,
                                       request=ContextRequest(agent_id="a", user_id=user, query=query, budget=2000),
                                       stats=SearchStats(0), access=None)
    return ctx.sections["lessons"]


def test_three_similar_successes_make_one_lesson_with_three_versions(runtime, quiet, tenant):
    made = [record(runtime, quiet, tenant, task, FLIGHT) for task in TASKS]
    result = distilled(runtime, quiet, tenant)
    assert result["state"] == "succeeded" and result["engine"] == "heuristic"
    assert result["counts"] == {"trajectories": 3, "added": 1, "merged": 2, "rejected": 0}
    [lesson] = lessons(runtime, tenant)
    assert (lesson["kind"], lesson["version"], lesson["user_id"]) == ("procedural", 3, "u")
    assert lesson["data"]["polarity"] == "success" and lesson["data"]["when_to_use"] == "Book a flight from … to … on …"
    assert lesson["data"]["tools"] == ["search_flights", "hold_fare", "pay_card"]
    assert (lesson["data"]["uses"], lesson["data"]["status"]) == (0, "probationary")
    assert lesson["content"] == ("When Book a flight from … to … on …: search_flights: search flights → "
                                 "hold_fare: hold the cheapest fare → pay_card: pay by card")
    assert lesson["provenance"]["derived_from"] == [{"id": str(t.id), "version": 1} for t in made]
    assert lesson["provenance"]["source"] == "distillation" and lesson["provenance"]["job_id"] == result["job_id"]
    versions = history(runtime, tenant, lesson["id"])
    assert [len(v["provenance"]["derived_from"]) for v in versions] == [1, 2, 3]
    assert versions[0]["provenance"]["reason"].startswith("new success lesson from success trajectory")
    assert versions[2]["provenance"]["reason"].startswith("merged into success lesson")
    # Found by its situation: the embedding is of when_to_use, not of the steps.
    with runtime.pool.connection() as c:
        stored = c.execute("SELECT embedding FROM memcubes WHERE id = %s", (lesson["id"],)).fetchone()["embedding"]
        links = c.execute("SELECT target_id FROM memcube_links WHERE source_id = %s AND type = 'derived_from'",
                          (lesson["id"],)).fetchall()
    [expected] = runtime.embedder.embed([lesson["data"]["when_to_use"]])
    assert float(np.dot(stored.to_numpy(), np.asarray(expected))) == pytest.approx(1.0, abs=1e-4)
    assert sorted(str(link["target_id"]) for link in links) == sorted(str(t.id) for t in made)
    with runtime.pool.connection() as c:
        assert [t.distilled_at is not None for t in trajectory_store_views(c, tenant)] == [True] * 3


def trajectory_store_views(c, tenant):
    from memcube.lessons.trajectory import list_trajectories

    return list_trajectories(c, tenant=tenant, agent_id="a", user_id="u", limit=50, cursor=None)[0]


def test_distilling_again_adds_nothing(runtime, quiet, tenant):
    for task in TASKS[:2]:
        record(runtime, quiet, tenant, task, FLIGHT)
    record(runtime, quiet, tenant, TASKS[2], WALLET, "failure")
    first = distilled(runtime, quiet, tenant)
    assert first["counts"]["trajectories"] == 3 and first["counts"]["added"] == 3
    before = [(row["id"], row["version"], row["content"]) for row in lessons(runtime, tenant)]
    again = distilled(runtime, quiet, tenant)
    assert again["state"] == "succeeded" and set(again["counts"].values()) == {0}
    assert [(row["id"], row["version"], row["content"]) for row in lessons(runtime, tenant)] == before


def test_a_failure_lesson_is_served_as_a_warning_for_a_similar_task(runtime, quiet, tenant, redis_client):
    record(runtime, quiet, tenant, TASKS[0], WALLET, "failure", feedback="the user had to pay again by card")
    assert distilled(runtime, quiet, tenant)["counts"]["added"] == 1
    section = lesson_section(runtime, redis_client, quiet, tenant, "Book a flight from Berlin to Quito on May 9")
    [item] = section.items
    assert item.content.startswith("Avoid: pay_wallet: pay from the wallet (it gave: Error: wallet payments")
    assert section.text.startswith("# Lessons\n- Avoid: pay_wallet") and item.score > 0
    [lesson] = served(runtime, quiet, tenant, "Book a flight from Berlin to Quito on May 9")
    assert (lesson.polarity, lesson.tools, lesson.status, lesson.utility) == ("failure", ["pay_wallet"],
                                                                             "probationary", 0.5)
    assert lesson.similarity > 0.5 and lesson.score == pytest.approx(lesson.similarity * 0.5, abs=1e-3)


def test_lessons_are_ranked_by_similarity_times_utility(runtime, quiet, tenant):
    record(runtime, quiet, tenant, TASKS[0], FLIGHT)
    record(runtime, quiet, tenant, "Book a flight from Paris to Rome on May 3, window seat",
           [{"tool": "search_flights", "action": "search"}, {"tool": "pay_card", "action": "pay"}])
    distilled(runtime, quiet, tenant)
    first, second = served(runtime, quiet, tenant, TASKS[0])
    worse = second if first.similarity >= second.similarity else first
    with runtime.pool.connection() as c:
        for _ in range(2):
            feedback.give_feedback(c, tenant=tenant, actor="t", lesson_id=worse.id,
                                   feedback=LessonFeedback(outcome="failure"), settings=quiet)
    ranked = served(runtime, quiet, tenant, TASKS[0])
    assert ranked[-1].id == worse.id and ranked[-1].utility == 0.25
    assert ranked[0].score >= ranked[1].score


def test_a_lesson_that_keeps_failing_retires_and_is_no_longer_served_but_keeps_its_history(
        runtime, quiet, tenant, redis_client):
    record(runtime, quiet, tenant, TASKS[0], FLIGHT)
    distilled(runtime, quiet, tenant)
    [lesson] = lessons(runtime, tenant)
    query = "Book a flight from Berlin to Quito on May 9"
    assert [i.id for i in lesson_section(runtime, redis_client, quiet, tenant, query).items] == [lesson["id"]]
    # Two uses reported by trajectories, one by feedback: η = 1/5 after three failures.
    for task in TASKS[1:]:
        recorded = record(runtime, quiet, tenant, task, WALLET, "failure", lessons_used=[lesson["id"]])
        assert recorded.lessons[0].status == "probationary"
    with runtime.pool.connection() as c:
        view = feedback.give_feedback(c, tenant=tenant, actor="key:1", lesson_id=lesson["id"],
                                      feedback=LessonFeedback(outcome="failure", note="wrong fare class"),
                                      settings=quiet)
    assert (view.uses, view.failures, view.utility, view.status) == (3, 3, 0.2, "retired")
    assert lesson_section(runtime, redis_client, quiet, tenant, query).items == []
    assert served(runtime, quiet, tenant, query) == []
    with runtime.pool.connection() as c:
        retired = find_lessons(c, tenant=tenant, agent_id="a", user_id="u", task=None, status="retired", limit=10,
                               cursor=None, embedder=runtime.embedder).items
    assert [r.id for r in retired] == [lesson["id"]]
    versions = history(runtime, tenant, lesson["id"])
    assert [(v["version"], v["status"], v["data"]["uses"]) for v in versions] == \
        [(1, "active", 0), (2, "active", 1), (3, "active", 2), (4, "quarantined", 3)]
    assert all(v["provenance"]["derived_from"] == lesson["provenance"]["derived_from"] for v in versions)
    assert versions[1]["provenance"]["source"] == "trajectory"
    assert versions[1]["provenance"]["reason"].startswith("used in failure trajectory")
    assert versions[3]["provenance"]["reason"] == (
        "feedback: failure (wrong fare class); retired: utility 0.20 is below 0.4 (MEMCUBE_LESSON_RETIRE_BELOW) "
        "after 3 uses")
    # A retired lesson takes no new evidence: the next success makes a new lesson (beside the failure lessons
    # of the two failed trajectories).
    record(runtime, quiet, tenant, TASKS[1], FLIGHT)
    distilled(runtime, quiet, tenant)
    now = served(runtime, quiet, tenant, query)
    assert lesson["id"] not in [r.id for r in now]
    assert sorted(r.polarity for r in now) == ["comparative", "failure", "success"]


def test_two_users_of_an_agent_never_see_each_others_lessons(runtime, quiet, tenant, redis_client):
    record(runtime, quiet, tenant, TASKS[0], FLIGHT, user="ana")
    record(runtime, quiet, tenant, TASKS[1], WALLET, "failure", user="bo")
    result = distilled(runtime, quiet, tenant, user=None)  # the agent's every user
    assert result["counts"]["added"] == 2
    ana, bo = lessons(runtime, tenant)
    assert (ana["user_id"], bo["user_id"]) == ("ana", "bo")
    query = "Book a flight from Berlin to Quito on May 9"
    assert [i.id for i in lesson_section(runtime, redis_client, quiet, tenant, query, user="ana").items] == [ana["id"]]
    assert [lesson.id for lesson in served(runtime, quiet, tenant, query, user="bo")] == [bo["id"]]
    assert served(runtime, quiet, tenant, query, user="cy") == []
    with pytest.raises(InvalidInput, match=r"lessons_used\[0\]: .* is not a lesson of agent 'a' and user 'bo'"):
        record(runtime, quiet, tenant, TASKS[2], FLIGHT, user="bo", lessons_used=[ana["id"]])
    # The refused trajectory stored nothing and counted nothing.
    assert len(trajectory_views(runtime, tenant, "bo")) == 1
    assert [v["version"] for v in history(runtime, tenant, ana["id"])] == [1]


def trajectory_views(runtime, tenant, user):
    from memcube.lessons.trajectory import list_trajectories

    with runtime.pool.connection() as c:
        return list_trajectories(c, tenant=tenant, agent_id="a", user_id=user, limit=50, cursor=None)[0]


def test_lessons_used_must_name_lessons_of_the_agent(runtime, quiet, tenant):
    with runtime.pool.connection() as c:
        from memcube import cube

        [fact] = cube.create_cubes(c, tenant=tenant, actor="t", embedder=runtime.embedder, settings=quiet,
                                   items=[MemCubeCreate(agent_id="a", kind="semantic", content="A fact.")])
        [other] = cube.create_cubes(c, tenant=tenant, actor="t", embedder=runtime.embedder, settings=quiet,
                                    items=[MemCubeCreate(agent_id="b", kind="procedural", content="Another's.")])
    for wrong in (fact["id"], other["id"]):
        with pytest.raises(InvalidInput, match="is not a lesson of agent 'a'"):
            record(runtime, quiet, tenant, TASKS[0], FLIGHT, lessons_used=[wrong])
    with runtime.pool.connection() as c, pytest.raises(NotFound):
        feedback.give_feedback(c, tenant=tenant, actor="t", lesson_id=fact["id"],
                               feedback=LessonFeedback(outcome="success"), settings=quiet)
    with runtime.pool.connection() as c, pytest.raises(NotFound):
        feedback.give_feedback(c, tenant="someone-else", actor="t", lesson_id=other["id"],
                               feedback=LessonFeedback(outcome="success"), settings=quiet)


# --- the LLM engine against the local OpenAI-protocol stub ----------------------------------------------------

TRAJECTORY = re.compile(r"^\[(\d+)\](?: \(earlier\))? Task: (.*) \(outcome: (\w+)", re.MULTILINE)


def lesson_writer(extra_tool=None):
    """The scripted LLM: a success lesson per successful trajectory shown, citing it."""

    def respond(request):
        found = []
        for number, _, outcome in TRAJECTORY.findall(request.prompt):
            if outcome == "success":
                tools = ["search_flights", "hold_fare", "pay_card"] + ([extra_tool] if extra_tool else [])
                found.append({"polarity": "success", "when_to_use": "booking a flight between two cities",
                              "steps": ["search_flights", "hold_fare", "pay_card"], "tools": tools,
                              "evidence": [int(number)], "merge_into": None})
        return json.dumps({"lessons": found})

    return respond


def stub_llm(llm):
    return OpenAILLM(base_url=llm.url, api_key=None, model="stub-model", timeout=10, max_retries=1)


def test_the_llm_engine_writes_validated_lessons_and_counts_its_tokens(runtime, quiet, tenant, llm):
    llm.reset(lesson_writer())
    made = [record(runtime, quiet, tenant, task, FLIGHT) for task in TASKS[:2]]
    result = run(runtime, quiet, queue(runtime, tenant, engine="llm"), llm=stub_llm(llm))
    assert result["state"] == "succeeded" and result["engine"] == "llm"
    # Two lessons of one situation: the second merges into the first, by the similarity of their situations.
    assert result["counts"] == {"trajectories": 2, "added": 1, "merged": 1, "rejected": 0}
    [lesson] = lessons(runtime, tenant)
    assert lesson["data"]["when_to_use"] == "booking a flight between two cities" and lesson["version"] == 2
    assert lesson["provenance"]["prompt_version"] == "distill_v1" and lesson["provenance"]["model"] == "stub-model"
    assert sorted(r["id"] for r in lesson["provenance"]["derived_from"]) == sorted(str(t.id) for t in made)
    with runtime.pool.connection() as c:
        job = jobs.get_job(c, tenant=tenant, job_id=result["job_id"])
    calls = [r for r in llm.requests if any(task in r.prompt for task in TASKS)]
    assert (job["model"], job["prompt_version"], job["llm_calls"]) == ("stub-model", "distill_v1", len(calls))
    assert job["tokens_in"] == sum(r.usage["prompt_tokens"] for r in calls) > 0
    assert job["tokens_out"] == sum(r.usage["completion_tokens"] for r in calls) > 0


def test_a_hallucinated_tool_in_an_llm_answer_is_rejected(runtime, quiet, tenant, llm):
    llm.reset(lesson_writer(extra_tool="teleport_passenger"))
    record(runtime, quiet, tenant, TASKS[0], FLIGHT)
    result = run(runtime, quiet, queue(runtime, tenant, engine="llm"), llm=stub_llm(llm))
    assert result["state"] == "succeeded"
    assert result["counts"] == {"trajectories": 1, "added": 0, "merged": 0, "rejected": 1}
    assert lessons(runtime, tenant) == []


def test_a_malformed_llm_answer_fails_the_job_and_loses_no_trajectory(runtime, quiet, tenant, llm):
    llm.reset(lambda request: json.dumps({"lessons": [{"polarity": "success", "when_to_use": "x", "steps": ["a"],
                                                       "evidence": [7]}]}))
    record(runtime, quiet, tenant, TASKS[0], FLIGHT)
    failed = run(runtime, quiet, queue(runtime, tenant, engine="llm"), llm=stub_llm(llm))
    assert failed["state"] == "failed" and "no trajectory 7" in failed["error"]
    assert lessons(runtime, tenant) == []
    with runtime.pool.connection() as c:
        assert trajectory_store.find_scope(c, ScopeKey(tenant, "a", "u"))["pending_trajectories"] == 1
        job = jobs.get_job(c, tenant=tenant, job_id=failed["job_id"])
    assert job["llm_calls"] == 2 and job["tokens_in"] > 0  # MEMCUBE_LLM_MAX_RETRIES=1 here: two attempts
    llm.reset(lesson_writer())
    assert run(runtime, quiet, queue(runtime, tenant, engine="llm"), llm=stub_llm(llm))["counts"]["added"] == 1


def test_the_llm_engine_without_an_llm_fails_the_job_visibly(runtime, quiet, tenant):
    record(runtime, quiet, tenant, TASKS[0], FLIGHT)
    result = run(runtime, quiet, queue(runtime, tenant, engine="llm"), llm=None)
    assert result["state"] == "failed" and "MEMCUBE_LLM_BASE_URL" in result["error"]


# --- all or nothing -------------------------------------------------------------------------------------------


def test_a_lesson_changed_between_plan_and_write_makes_the_batch_plan_again(runtime, quiet, tenant):
    record(runtime, quiet, tenant, TASKS[0], FLIGHT)
    distilled(runtime, quiet, tenant)
    [lesson] = lessons(runtime, tenant)
    record(runtime, quiet, tenant, TASKS[1], FLIGHT)
    job_id = queue(runtime, tenant)
    job = jobs.claim(runtime.pool, job_id=job_id, owner="me", settings=quiet)
    engine = HeuristicEngine(merge_similarity=quiet.lesson_merge_similarity)
    scope = ScopeKey(tenant, "a", "u")
    plan = plan_batch(runtime.pool, scope, engine=engine, embedder=runtime.embedder, settings=quiet)
    with runtime.pool.connection() as c:  # feedback arrives meanwhile: a new version of the lesson
        feedback.give_feedback(c, tenant=tenant, actor="t", lesson_id=lesson["id"],
                               feedback=LessonFeedback(outcome="success"), settings=quiet)
    with runtime.pool.connection() as c, pytest.raises(Replan):
        write_batch(c, plan, job_id=job["id"], owner="me", engine=engine, embedder=runtime.embedder, settings=quiet,
                    usage={"llm_calls": 0, "tokens_in": 0, "tokens_out": 0})
    [unchanged] = lessons(runtime, tenant)
    assert unchanged["version"] == 2 and unchanged["data"]["successes"] == 1
    jobs.release(runtime.pool, job_id=job_id, owner="me")
    done = run(runtime, quiet, job_id)
    assert done["counts"]["merged"] == 1
    [merged] = lessons(runtime, tenant)
    assert merged["version"] == 3 and merged["data"]["successes"] == 1  # the counters survived the merge
    assert len(merged["provenance"]["derived_from"]) == 2  # and so did the lineage


def test_two_jobs_on_one_scope_never_both_apply(runtime, quiet, tenant):
    small = quiet.model_copy(update={"distill_batch_trajectories": 1})
    for task in TASKS:
        record(runtime, small, tenant, task, FLIGHT)
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
    assert sum(r["counts"]["trajectories"] for r in results.values()) == 3
    [lesson] = lessons(runtime, tenant)
    assert lesson["version"] == 3 and len(lesson["provenance"]["derived_from"]) == 3


# --- triggers, and consolidation leaving trajectories alone ----------------------------------------------------


def test_the_nth_trajectory_queues_a_distillation_in_its_own_transaction(conn, runtime, quiet, tenant):
    two = quiet.model_copy(update={"distill_after_trajectories": 2})

    def queued():
        return conn.execute("SELECT id, agent_id, trigger, kind FROM jobs WHERE tenant = %s ORDER BY agent_id",
                            (tenant,)).fetchall()

    first = record(runtime, two, tenant, TASKS[0], FLIGHT, conn=conn)
    assert first.job_id is None and queued() == []
    second = record(runtime, two, tenant, TASKS[1], FLIGHT, conn=conn)
    [job] = queued()
    assert (job["trigger"], job["kind"], second.job_id) == ("trajectories", "distill", job["id"])
    [message] = conn.execute("SELECT task FROM outbox WHERE payload->>'job_id' = %s", (str(job["id"]),)).fetchall()
    assert message["task"] == "memcube.distill"
    assert record(runtime, two, tenant, TASKS[2], FLIGHT, conn=conn).job_id == job["id"]  # joins the queued job


def test_the_scan_queues_scopes_that_had_no_trajectory_lately_and_every_pending_one_on_schedule(runtime, quiet,
                                                                                              tenant):
    idle = quiet.model_copy(update={"distill_idle_seconds": 1.0})
    record(runtime, quiet, tenant, TASKS[0], FLIGHT, agent="quiet")
    time.sleep(1.2)
    record(runtime, quiet, tenant, TASKS[1], FLIGHT, agent="busy")

    def scan(**kwargs):
        with runtime.pool.connection() as c:  # its own transaction, so now() is now
            trigger.scan(c, idle, **kwargs)
            return c.execute("SELECT agent_id, trigger FROM jobs WHERE tenant = %s AND kind = 'distill' "
                             "ORDER BY agent_id", (tenant,)).fetchall()

    assert scan() == [{"agent_id": "quiet", "trigger": "idle"}]
    assert scan(schedule=True) == [{"agent_id": "busy", "trigger": "schedule"}, {"agent_id": "quiet", "trigger": "idle"}]


def test_consolidation_leaves_trajectories_to_distillation(runtime, quiet, tenant):
    record(runtime, quiet, tenant, "I live in Lisbon and need a flight", FLIGHT, session_id="s1")
    with runtime.pool.connection() as c:
        job, _ = jobs.enqueue_consolidation(c, tenant=tenant, agent_id="a", user_id="u", trigger="api",
                                            engine="heuristic")
        assert c.execute("SELECT pending_episodes FROM consolidation_scopes WHERE tenant = %s",
                         (tenant,)).fetchone() is None
    result = run_consolidation(runtime.pool, job_id=job["id"], embedder=runtime.embedder, settings=quiet, llm=None)
    assert result["counts"]["episodes"] == 0


def test_a_lesson_written_by_hand_is_served_but_never_rewritten_by_distillation(runtime, quiet, tenant):
    from memcube import cube

    with runtime.pool.connection() as c:
        [manual] = cube.create_cubes(c, tenant=tenant, actor="t", embedder=runtime.embedder, settings=quiet, items=[
            MemCubeCreate(agent_id="a", user_id="u", kind="procedural", content="Compare the fares before booking")])
    record(runtime, quiet, tenant, "Compare the fares before booking", [{"action": "compare the fares"}])
    assert distilled(runtime, quiet, tenant)["counts"] == {"trajectories": 1, "added": 1, "merged": 0,
                                                          "rejected": 0}
    found = {lesson.id: lesson for lesson in served(runtime, quiet, tenant, "Compare the fares before booking")}
    assert found[manual["id"]].version == 1 and found[manual["id"]].polarity is None
    assert found[manual["id"]].when_to_use == "Compare the fares before booking"
    assert len(found) == 2
