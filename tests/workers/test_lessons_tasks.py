"""memcube.distill through the real API and real worker processes: the LLM engine against the scripted stub
(merging, a hallucinated tool rejected, tokens on the job), and a worker killed while it writes a job's
lessons, which leaves nothing half-written."""

import json
import re

import psycopg

from memcube.lessons.trajectory import record_trajectory
from memcube.models import TrajectoryCreate
from tests.workers.support import wait_job
from tests.workers.test_recovery import wait_for

FLIGHT = [{"tool": "search_flights", "action": "search flights", "observation": "3 flights found"},
          {"tool": "hold_fare", "action": "hold the cheapest fare", "observation": "held"},
          {"tool": "pay_card", "action": "pay by card", "observation": "paid, ticket issued"}]
WALLET = [{"tool": "search_flights", "action": "search flights", "observation": "3 flights found"},
          {"tool": "pay_wallet", "action": "pay from the wallet",
           "observation": "Error: wallet payments are not accepted for fares"}]
SHOWN = re.compile(r"^\[(\d+)\](?: \(earlier\))? Task: (.*) \(outcome: (\w+)", re.MULTILINE)
KNOWN = re.compile(r"^(L\d+) \((\w+),", re.MULTILINE)


def travel_agent_llm(request):
    """The scripted LLM: a lesson per trajectory shown, merged into a lesson of the same polarity when one is
    shown; and one lesson that names a tool no trajectory used."""
    if "Distil lessons" not in request.prompt:
        return json.dumps({"facts": []})
    known = {polarity: label for label, polarity in KNOWN.findall(request.prompt)}
    lessons = []
    for number, _, outcome in SHOWN.findall(request.prompt):
        if outcome == "success":
            lessons.append({"polarity": "success", "when_to_use": "booking a flight between two cities",
                            "steps": ["search_flights", "hold_fare", "pay_card"],
                            "tools": ["search_flights", "hold_fare", "pay_card"], "evidence": [int(number)],
                            "merge_into": known.get("success")})
            lessons.append({"polarity": "success", "when_to_use": "booking a flight fast",
                            "steps": ["call instant_book_v2"], "tools": ["instant_book_v2"],
                            "evidence": [int(number)]})
        elif outcome == "failure":
            lessons.append({"polarity": "failure", "when_to_use": "paying for a flight",
                            "avoid": "pay_wallet: the wallet is refused for fares", "instead": "pay by card",
                            "tools": ["pay_wallet"], "evidence": [int(number)], "merge_into": known.get("failure")})
    return json.dumps({"lessons": lessons})


def post(api, agent_id, task, steps=FLIGHT, outcome="success", **fields):
    response = api.post("/v1/trajectories", json={"agent_id": agent_id, "task": task, "steps": steps,
                                                  "outcome": outcome, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def lessons(api, agent_id, **params):
    response = api.get("/v1/lessons", params={"agent_id": agent_id, "status": "any", "limit": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_trajectories_are_distilled_by_a_worker_with_the_llm_engine(api, agent_id, start_worker, llm):
    # Workers of this test only: any worker's relay publishes every queued job to its own queue.
    llm.reset(travel_agent_llm)
    worker = start_worker()
    # The tasks name the agent: other tests' trajectories, queued without a worker, may reach this one too.
    first = post(api, agent_id, f"Book a flight from Paris to Rome on May 3 ({agent_id})", user_id="ana")
    job = wait_job(api, first["job_id"], worker=worker)
    assert job["state"] == "succeeded", job
    assert (job["kind"], job["trigger"], job["engine"], job["model"], job["prompt_version"]) == \
        ("distill", "trajectories", "llm", "stub-model", "distill_v1")
    assert job["counts"] == {"trajectories": 1, "added": 1, "merged": 0, "rejected": 1}
    calls = [r for r in llm.requests if f"Paris to Rome on May 3 ({agent_id})" in r.prompt]
    assert job["llm_calls"] == len(calls) == 1
    assert job["tokens_in"] == calls[0].usage["prompt_tokens"] and job["tokens_out"] > 0

    second = post(api, agent_id, "Book a flight from Oslo to Lima on June 9", user_id="ana")
    failed = post(api, agent_id, "Book a flight from Cairo to Riga on July 1", steps=WALLET, outcome="failure",
                  user_id="ana")
    for job_id in {second["job_id"], failed["job_id"]}:
        assert wait_job(api, job_id, worker=worker)["state"] == "succeeded"
    found = {lesson["polarity"]: lesson for lesson in lessons(api, agent_id, user_id="ana")}
    assert set(found) == {"success", "failure"}  # the hallucinated instant_book_v2 never made it
    assert found["success"]["version"] == 2 and len(found["success"]["provenance"]["derived_from"]) == 2
    assert found["success"]["when_to_use"] == "booking a flight between two cities"
    ctx = api.post("/v1/context", json={"agent_id": agent_id, "user_id": "ana", "budget": 800,
                                        "query": "Book a flight from Berlin to Quito and pay for it"}).json()
    assert "- Avoid: pay_wallet: the wallet is refused for fares (when paying for a flight); instead: pay by card" \
        in ctx["sections"]["lessons"]["text"]


def test_a_worker_killed_while_writing_a_jobs_lessons_leaves_nothing_and_the_job_completes_once(
        api, agent_id, start_worker, database_url, runtime, settings):
    first = start_worker(MEMCUBE_DISTILL_ENGINE="heuristic")
    made = post(api, agent_id, "Book a flight from Paris to Rome on May 3")
    assert wait_job(api, made["job_id"], worker=first)["state"] == "succeeded"
    [lesson] = lessons(api, agent_id)
    assert lesson["version"] == 1

    # Hold the lesson's row: the job's transaction will have written its new lessons and then wait here.
    with psycopg.connect(database_url) as blocker, psycopg.connect(database_url, autocommit=True) as watcher:
        blocker.execute("SELECT 1 FROM memcubes WHERE id = %s FOR UPDATE", (lesson["id"],))
        with runtime.pool.connection() as conn:  # two trajectories, one transaction, one job
            for task, steps, outcome in (("Book a flight from Oslo to Lima on June 9", FLIGHT, "success"),
                                         ("Book a flight from Cairo to Riga on July 1", WALLET, "failure")):
                body = TrajectoryCreate(agent_id=agent_id, task=task, steps=steps, outcome=outcome)
                recorded = record_trajectory(conn, tenant=api.tenant, actor="test", body=body,
                                             embedder=runtime.embedder, settings=settings)
        job_id = str(recorded.job_id)
        wait_for(lambda: watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query LIKE 'UPDATE memcubes%'").fetchone(), timeout=60, what="the job to block on the lesson")
        assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "running"
        first.kill()
        blocker.rollback()

    # Nothing of the killed attempt is visible: no new lesson, no new version, the trajectories still pending.
    assert [(x["id"], x["version"]) for x in lessons(api, agent_id)] == [(lesson["id"], 1)]
    pending = api.get("/v1/trajectories", params={"agent_id": agent_id}).json()["items"]
    assert [t["distilled_at"] is None for t in pending] == [True, True, False]
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "running"

    second = start_worker(MEMCUBE_DISTILL_ENGINE="heuristic", MEMCUBE_WORKER_QUEUE=first.env["MEMCUBE_WORKER_QUEUE"])
    job = wait_job(api, job_id, worker=second)
    assert job["state"] == "succeeded" and job["attempts"] == 2
    assert job["counts"] == {"trajectories": 2, "added": 2, "merged": 1, "rejected": 0}
    now = {x["polarity"]: x for x in lessons(api, agent_id)}
    assert set(now) == {"success", "failure", "comparative"}
    assert now["success"]["id"] == lesson["id"] and now["success"]["version"] == 2
    assert now["success"]["when_to_use"] == "Book a flight from … to … on …"
    history = api.get(f"/v1/memories/{lesson['id']}/history").json()["items"]
    assert [len(h["provenance"]["derived_from"]) for h in history] == [1, 2]
    assert all(t["distilled_at"] for t in api.get("/v1/trajectories", params={"agent_id": agent_id}).json()["items"])
