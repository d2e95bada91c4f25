"""Trajectories, lessons and distillation through the real HTTP app (the job itself runs in this process, as a
worker runs it: tests/workers run it through Celery)."""

import urllib.parse
import uuid

import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from memcube.lessons.distill import run_distillation
from tests.conftest import new_tenant_api
from tests.services.test_fuzz_api import check, dumps, json_values, text

FLIGHT = [{"tool": "search_flights", "action": "search flights", "observation": "3 flights found"},
          {"tool": "hold_fare", "action": "hold the cheapest fare", "thought": "fares move fast"},
          {"tool": "pay_card", "action": "pay by card", "observation": "paid, ticket issued"}]
WALLET = [{"tool": "search_flights", "action": "search flights", "observation": "3 flights found"},
          {"tool": "pay_wallet", "action": "pay from the wallet",
           "observation": "Error: wallet payments are not accepted for fares"}]


def trajectory(api, agent_id, task="Book a flight from Paris to Rome on May 3", steps=FLIGHT, outcome="success",
               status=201, **fields):
    response = api.post("/v1/trajectories", json={"agent_id": agent_id, "task": task, "steps": steps,
                                                  "outcome": outcome, **fields})
    assert response.status_code == status, response.text
    return response.json()


def distill(api, agent_id, runtime, **body):
    """POST /v1/agents/{agent_id}/distill, then run the job as a worker would; return the job."""
    response = api.post(f"/v1/agents/{agent_id}/distill", json=body)
    assert response.status_code == 202, response.text
    run_distillation(runtime.pool, job_id=uuid.UUID(response.json()["job_id"]), embedder=runtime.embedder,
                     settings=runtime.settings, llm=None)
    job = api.get(response.headers["location"])
    assert job.status_code == 200
    return job.json()


def error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and set(body) == {"code", "message", "details", "request_id"}
    return body


def stored(api, agent_id):
    return api.get("/v1/trajectories", params={"agent_id": agent_id, "limit": 500}).json()["items"]


def test_a_trajectory_is_stored_as_an_episodic_cube_and_queues_its_distillation(api, agent_id):
    made = trajectory(api, agent_id, user_id="ana", session_id="trip-1", score=0.9, feedback="smooth")
    assert made["outcome"] == "success" and made["version"] == 1 and made["distilled_at"] is None
    assert [s["tool"] for s in made["steps"]] == ["search_flights", "hold_fare", "pay_card"]
    assert made["job_id"] is not None and made["lessons"] == []  # MEMCUBE_DISTILL_AFTER_TRAJECTORIES is 1
    cube = api.get(f"/v1/memories/{made['id']}").json()
    assert (cube["kind"], cube["provenance"]["source"], cube["session_id"], cube["tags"]) == \
        ("episodic", "trajectory", "trip-1", ["trajectory", "success"])
    assert cube["data"]["task"] == "Book a flight from Paris to Rome on May 3" and cube["data"]["score"] == 0.9
    assert cube["content"].startswith("Task: Book a flight from Paris to Rome on May 3\nOutcome: success (score 0.9)"
                                      "\n1. search_flights: search flights → 3 flights found")
    again = trajectory(api, agent_id, user_id="ana", outcome="failure", steps=WALLET)
    assert again["job_id"] == made["job_id"]  # the queued job takes it too
    job = api.get(f"/v1/jobs/{made['job_id']}").json()
    assert (job["kind"], job["trigger"], job["state"]) == ("distill", "trajectories", "queued")


def test_trajectories_are_listed_newest_first_in_pages(api, agent_id):
    ids = [trajectory(api, agent_id, task=f"Task number {n}", user_id="u1" if n % 2 else None)["id"]
           for n in range(5)]
    first = api.get("/v1/trajectories", params={"agent_id": agent_id, "limit": 2}).json()
    second = api.get("/v1/trajectories", params={"agent_id": agent_id, "limit": 2,
                                                 "cursor": first["next_cursor"]}).json()
    third = api.get("/v1/trajectories", params={"agent_id": agent_id, "limit": 2,
                                                "cursor": second["next_cursor"]}).json()
    assert [t["id"] for t in first["items"] + second["items"] + third["items"]] == ids[::-1]
    assert third["next_cursor"] is None
    mine = api.get("/v1/trajectories", params={"agent_id": agent_id, "user_id": "u1"}).json()["items"]
    assert [t["id"] for t in mine] == [ids[3], ids[1]]
    error(api.get("/v1/trajectories"), 422, "invalid_input")
    error(api.get("/v1/trajectories", params={"agent_id": agent_id, "cursor": "garbage"}), 422, "invalid_input")


def test_bad_trajectories_get_a_clear_error_and_store_nothing(api, agent_id, settings):
    fact = api.post("/v1/memories", json={"agent_id": agent_id, "kind": "semantic", "content": "A fact."}).json()
    cases = [
        ({"task": "   "}, 422, "task"),
        ({"steps": []}, 422, "steps"),
        ({"steps": [{"tool": "x"}]}, 422, "action"),
        ({"outcome": "great"}, 422, "outcome"),
        ({"score": 1.5}, 422, "score"),
        ({"surprise": 1}, 422, "surprise"),
        ({"lessons_used": ["not-a-uuid"]}, 422, "lessons_used"),
        ({"lessons_used": [fact["id"]]}, 422, "is not a lesson of agent"),
        ({"lessons_used": [str(uuid.uuid4())]}, 422, "is not a lesson of agent"),
        ({"steps": [{"action": "step"}] * (settings.trajectory_max_steps + 1)}, 413, "MEMCUBE_TRAJECTORY_MAX_STEPS"),
        ({"steps": [{"action": "x" * (settings.trajectory_max_step_chars + 1)}]}, 413,
         "MEMCUBE_TRAJECTORY_MAX_STEP_CHARS"),
        ({"task": "x" * (settings.max_content_chars + 1)}, 413, "MEMCUBE_MAX_CONTENT_CHARS"),
    ]
    for fields, status, named in cases:
        body = {"agent_id": agent_id, "task": "Book a flight", "steps": FLIGHT, "outcome": "success", **fields}
        err = error(api.post("/v1/trajectories", json=body), status, "invalid_input" if status == 422 else "too_large")
        assert named in str(err), (fields, err)
    assert stored(api, agent_id) == []
    # Nothing was stored, so there is nothing to distil.
    assert api.post(f"/v1/agents/{agent_id}/distill", json={"engine": "heuristic"}).status_code == 404


def test_distilled_lessons_are_found_for_a_task_and_reach_the_context(api, agent_id, runtime):
    for task in ("Book a flight from Paris to Rome on May 3", "Book a flight from Oslo to Lima on June 9"):
        trajectory(api, agent_id, task=task, user_id="ana")
    trajectory(api, agent_id, task="Book a flight from Cairo to Riga on July 1", user_id="ana", outcome="failure",
               steps=WALLET)
    response = api.post(f"/v1/agents/{agent_id}/distill", json={"user_id": "ana"})
    assert response.json()["existing"] is True  # the trajectories had queued it already
    job = distill(api, agent_id, runtime, user_id="ana")
    assert job["state"] == "succeeded" and job["kind"] == "distill" and job["engine"] == "heuristic"
    assert job["counts"] == {"trajectories": 3, "added": 3, "merged": 1, "rejected": 0}

    found = api.get("/v1/lessons", params={"agent_id": agent_id, "user_id": "ana",
                                           "task": "Book a flight from Berlin to Quito on May 9"}).json()["items"]
    assert sorted(lesson["polarity"] for lesson in found) == ["comparative", "failure", "success"]
    success = next(lesson for lesson in found if lesson["polarity"] == "success")
    assert success["when_to_use"] == "Book a flight from … to … on …"
    assert (success["uses"], success["utility"], success["status"], success["version"]) == (0, 0.5, "probationary", 2)
    assert all(lesson["score"] == round(lesson["similarity"] * lesson["utility"], 4) for lesson in found)
    assert [lesson["score"] for lesson in found] == sorted((lesson["score"] for lesson in found), reverse=True)
    everything = api.get("/v1/lessons", params={"agent_id": agent_id, "user_id": "ana", "limit": 2}).json()
    assert len(everything["items"]) == 2 and everything["next_cursor"]
    assert api.get("/v1/lessons", params={"agent_id": agent_id, "task": "flights"}).json()["items"] == []  # ana's

    ctx = api.post("/v1/context", json={"agent_id": agent_id, "user_id": "ana", "budget": 1000,
                                        "query": "Book a flight from Berlin to Quito on May 9"}).json()
    lines = ctx["sections"]["lessons"]["text"].split("\n")
    assert lines[0] == "# Lessons" and len(lines) == 4
    assert any(line.startswith("- Avoid: pay_wallet: pay from the wallet") for line in lines)
    hits = api.post("/v1/search", json={"agent_id": agent_id, "user_id": "ana", "query": "book a flight",
                                        "kinds": ["procedural"]}).json()["hits"]
    assert {hit["id"] for hit in hits} == {lesson["id"] for lesson in found}


def test_feedback_counts_a_use_retires_a_failing_lesson_and_refuses_what_is_not_a_lesson(api, agent_id, runtime,
                                                                                          server, admin):
    trajectory(api, agent_id)
    distill(api, agent_id, runtime)
    [lesson] = api.get("/v1/lessons", params={"agent_id": agent_id}).json()["items"]
    url = f"/v1/lessons/{lesson['id']}/feedback"
    first = api.post(url, json={"outcome": "success", "note": "worked first time"})
    assert first.status_code == 200, first.text
    assert (first.json()["uses"], first.json()["successes"], first.json()["version"]) == (1, 1, 2)
    used = trajectory(api, agent_id, task="Book a flight from Oslo to Lima", outcome="failure", steps=WALLET,
                      lessons_used=[lesson["id"]])
    assert [(x["id"], x["uses"], x["failures"]) for x in used["lessons"]] == [(lesson["id"], 2, 1)]
    for _ in range(2):
        last = api.post(url, json={"outcome": "failure"}).json()
    assert (last["uses"], last["utility"], last["status"]) == (4, 0.3333, "retired")
    served = api.get("/v1/lessons", params={"agent_id": agent_id, "task": "Book a flight to Rome"}).json()["items"]
    assert lesson["id"] not in [x["id"] for x in served]
    retired = api.get("/v1/lessons", params={"agent_id": agent_id, "status": "retired"}).json()["items"]
    assert [x["id"] for x in retired] == [lesson["id"]]
    history = api.get(f"/v1/memories/{lesson['id']}/history").json()["items"]
    assert [h["status"] for h in history] == ["active"] * 4 + ["quarantined"]
    assert "retired: utility 0.33" in history[-1]["provenance"]["reason"]

    error(api.post(f"/v1/lessons/{uuid.uuid4()}/feedback", json={"outcome": "success"}), 404, "not_found")
    episode = api.post("/v1/memories", json={"agent_id": agent_id, "content": "Just an episode."}).json()
    error(api.post(f"/v1/lessons/{episode['id']}/feedback", json={"outcome": "success"}), 404, "not_found")
    other = new_tenant_api(server, admin)
    error(other.post(url, json={"outcome": "success"}), 404, "not_found")
    error(api.post(url, json={"outcome": "meh"}), 422, "invalid_input")
    error(api.post(url, json={"outcome": "success", "note": "x" * 1001}), 422, "invalid_input")
    assert api.get(f"/v1/memories/{lesson['id']}").json()["version"] == 5  # none of that changed it
    reader = new_tenant_api(server, admin, scopes=("read",))
    error(reader.post(url, json={"outcome": "success"}), 403, "forbidden")


def test_the_distill_route_queues_one_job_per_scope_and_refuses_bad_requests(api, agent_id, server, admin):
    trajectory(api, agent_id, user_id="ana")  # queues a job with the configured engine
    response = api.post(f"/v1/agents/{agent_id}/distill", json={"user_id": "ana", "engine": "heuristic"})
    assert response.status_code == 202 and response.json()["existing"] is False
    assert response.headers["location"] == f"/v1/jobs/{response.json()['job_id']}"
    again = api.post(f"/v1/agents/{agent_id}/distill", json={"user_id": "ana", "engine": "heuristic"}).json()
    assert again == {**response.json(), "existing": True}
    assert api.post(f"/v1/agents/{agent_id}/distill").status_code == 202  # no body: every user of the agent
    error(api.post(f"/v1/agents/{agent_id}/distill", json={"engine": "magic"}), 422, "invalid_input")
    error(api.post(f"/v1/agents/{agent_id}/distill", json={"user_id": ""}), 422, "invalid_input")
    reader = new_tenant_api(server, admin, scopes=("read",))
    error(reader.post(f"/v1/agents/{agent_id}/distill"), 403, "forbidden")
    error(reader.post("/v1/trajectories", json={"agent_id": agent_id, "task": "t", "steps": FLIGHT,
                                                "outcome": "success"}), 403, "forbidden")
    error(api.get("/v1/lessons", params={"agent_id": agent_id, "status": "sleeping"}), 422, "invalid_input")
    error(api.get("/v1/lessons", params={"agent_id": agent_id, "task": " "}), 422, "invalid_input")


FUZZ = hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
FIELDS = ["agent_id", "user_id", "session_id", "task", "steps", "outcome", "score", "feedback", "lessons_used",
          "occurred_at", "action", "tool", "thought", "observation", "note", "engine"]


@FUZZ
@given(body=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=7) | json_values,
       path=st.sampled_from(["/v1/trajectories", "FEEDBACK", "/v1/agents/fuzz/distill"]))
def test_random_bodies_never_cause_a_500(api, body, path):
    if path == "FEEDBACK":
        path = f"/v1/lessons/{uuid.uuid4()}/feedback"
    check(api.post(path, content=dumps(body), headers={"content-type": "application/json"}))


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["agent_id", "user_id", "task", "status", "limit", "cursor"]), text,
                              max_size=5),
       path=st.sampled_from(["/v1/lessons", "/v1/trajectories"]), lesson_id=text)
def test_random_query_values_never_cause_a_500(api, params, path, lesson_id):
    try:
        check(api.get(path, params=params))
        check(api.post(f"/v1/lessons/{urllib.parse.quote(lesson_id.encode('utf-8', 'surrogatepass'), safe='')}"
                       "/feedback", json={"outcome": "success"}))
    except (UnicodeEncodeError, ValueError, httpx.LocalProtocolError):
        return  # the client itself cannot send this URL


def test_a_distillation_request_is_checked_like_a_consolidation(api, agent_id, settings):
    nothing = api.post(f"/v1/agents/{agent_id}/distill", json={})
    assert nothing.status_code == 404 and "no trajectories" in nothing.json()["error"]["message"]
    trajectory(api, agent_id)
    assert api.post(f"/v1/agents/{agent_id}/distill", json={"user_id": "nobody"}).status_code == 404
    assert settings.llm_base_url is None
    refused = api.post(f"/v1/agents/{agent_id}/distill", json={"engine": "llm"})
    assert refused.status_code == 422 and refused.json()["error"]["details"] == {"setting": "MEMCUBE_LLM_BASE_URL"}
    accepted = api.post(f"/v1/agents/{agent_id}/distill", json={"engine": "auto"})
    assert accepted.status_code == 202
    job = api.get(f"/v1/jobs/{accepted.json()['job_id']}").json()
    assert (job["kind"], job["engine"]) == ("distill", None)  # the configured engine, decided when it runs
