"""The tasks through the real API and a real worker: consolidation with the LLM engine against the scripted
stub, with the heuristic engine offline, with a malformed LLM answer; the jobs API; background paging.
(memcube.scan runs through a worker in test_compose.py, sent by a real beat.)"""

import json
import re
import time
import uuid

from memcube.config import Settings
from memcube.store import vector_index as index_store
from tests.workers.support import consolidate, memories, remember, wait_job
from workers.app import create_celery

JAN, MAR, JUN = "2024-01-10T09:00:00Z", "2024-03-15T12:00:00Z", "2024-06-01T18:30:00Z"
EPISODE = re.compile(r"^\[(\d+)\] \S+ \S+ (?:\(session \S+\) )?[^:]+: (.*)$", re.MULTILINE)
KNOWN = re.compile(r"^(F\d+): (.*) \(", re.MULTILINE)


def city_mover(request):
    """The scripted LLM: an answer built from the episodes and known facts the prompt shows."""
    if "Summarize" in request.prompt:
        return json.dumps({"summary": "Ana told the agent she moved from Lisbon to Porto."})
    episodes = {text: int(n) for n, text in EPISODE.findall(request.prompt)}
    lisbon = next((n for text, n in episodes.items() if "Lisbon" in text), None)
    porto = next((n for text, n in episodes.items() if "Porto" in text), None)
    facts = []
    if lisbon:
        facts.append({"content": "Ana lives in Lisbon", "evidence": [lisbon], "action": "add",
                      "attribute": "lives_in", "confidence": 0.9})
    if porto:
        known = {text: label for label, text in KNOWN.findall(request.prompt)}
        target = "N1" if lisbon else known["Ana lives in Lisbon"]
        facts.append({"content": "Ana lives in Porto", "evidence": [porto], "action": "supersede",
                      "target": target, "attribute": "lives_in", "confidence": 0.95})
    return json.dumps({"facts": facts})


def search(api, agent_id, **body):
    response = api.post("/v1/search", json={"agent_id": agent_id, "query": "Which city does Ana live in?",
                                            "kinds": ["semantic"], **body})
    assert response.status_code == 200, response.text
    return [hit["content"] for hit in response.json()["hits"]]


def test_a_move_yields_the_new_city_active_and_the_old_one_superseded_with_lineage(api, agent_id, worker, llm):
    llm.reset(city_mover)
    said = [remember(api, agent_id, text, user_id="ana", session_id="s1", occurred_at=at)
            for text, at in (("I live in Lisbon, near the river.", JAN), ("The weather has been lovely.", MAR),
                             ("Big news: I moved to Porto last month!", JUN))]
    response = api.post(f"/v1/agents/{agent_id}/consolidate", json={"user_id": "ana"})
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["state"] == "queued" and accepted["existing"] is False
    assert response.headers["location"] == f"/v1/jobs/{accepted['job_id']}"
    job = wait_job(api, accepted["job_id"], worker=worker)

    assert job["state"] == "succeeded", job
    assert (job["engine"], job["model"], job["prompt_version"]) == ("llm", "stub-model", "consolidate_v1")
    assert job["counts"] == {"episodes": 3, "added": 2, "updated": 0, "superseded": 1, "unchanged": 0,
                             "quarantined": 0, "summaries": 1}
    assert job["started_at"] and job["finished_at"] and job["trigger"] == "api"
    # Every call the stub answered for this job was counted, with the tokens it reported. (The worker may
    # also run jobs other tests queued; their prompts hold none of these episodes.)
    calls = [r for r in llm.requests if any(e["content"] in r.prompt for e in said)]
    assert job["llm_calls"] == len(calls) >= 2
    assert job["tokens_in"] == sum(r.usage["prompt_tokens"] for r in calls) > 0
    assert job["tokens_out"] == sum(r.usage["completion_tokens"] for r in calls) > 0

    facts = {f["content"]: f for f in memories(api, agent_id, "semantic")}
    assert set(facts) == {"Ana lives in Lisbon", "Ana lives in Porto"}
    lisbon, porto = facts["Ana lives in Lisbon"], facts["Ana lives in Porto"]
    assert (porto["status"], porto["valid_to"]) == ("active", None)
    assert (lisbon["status"], lisbon["superseded_by"]) == ("superseded", porto["id"])
    assert lisbon["valid_to"] == porto["valid_from"] == said[2]["occurred_at"]
    assert lisbon["provenance"]["derived_from"] == [{"id": said[0]["id"], "version": 1}]
    assert porto["provenance"]["derived_from"] == [{"id": said[2]["id"], "version": 1}]
    for fact in (lisbon, porto):
        assert (fact["provenance"]["source"], fact["provenance"]["model"], fact["provenance"]["prompt_version"],
                fact["provenance"]["job_id"]) == ("consolidation", "stub-model", "consolidate_v1", job["id"])
        assert fact["user_id"] == "ana"
    [summary] = memories(api, agent_id, "summary")
    assert summary["session_id"] == "s1" and summary["content"].startswith("Ana told the agent")
    assert summary["provenance"]["prompt_version"] == "summarize_v1"
    assert sorted(r["id"] for r in summary["provenance"]["derived_from"]) == sorted(e["id"] for e in said)
    history = api.get(f"/v1/memories/{lisbon['id']}/history").json()["items"]
    assert [h["status"] for h in history] == ["active", "superseded"]

    assert search(api, agent_id, as_of="2024-03-01T00:00:00Z") == ["Ana lives in Lisbon"]
    assert search(api, agent_id) == ["Ana lives in Porto"]


def test_the_heuristic_engine_merges_three_restatements_and_a_rerun_adds_nothing(api, agent_id, worker, llm):
    said = [remember(api, agent_id, text, user_id="u1", session_id="trip")
            for text in ("I prefer window seats on flights.", "Remember, I prefer a window seat when I fly.",
                         "Booking the Oslo trip now. I always prefer window seats.")]
    job = wait_job(api, consolidate(api, agent_id, user_id="u1", engine="heuristic"), worker=worker)
    assert job["state"] == "succeeded", job
    assert (job["engine"], job["model"], job["llm_calls"]) == ("heuristic", None, 0)
    assert job["counts"] == {"episodes": 3, "added": 1, "updated": 0, "superseded": 0, "unchanged": 2,
                             "quarantined": 0, "summaries": 1}
    [fact] = memories(api, agent_id, "semantic")
    assert fact["content"] == "The user prefers window seats" and fact["confidence"] == 0.9
    assert sorted(r["id"] for r in fact["provenance"]["derived_from"]) == sorted(e["id"] for e in said)
    assert len(fact["provenance"]["source_refs"]) == 3 and fact["provenance"]["model"] is None
    links = api.get(f"/v1/memories/{fact['id']}/links").json()["items"]
    assert sorted(link["target_id"] for link in links if link["type"] == "derived_from") == \
        sorted(e["id"] for e in said)
    assert [r for r in llm.requests if "window seat" in r.prompt] == []

    before = memories(api, agent_id, "semantic") + memories(api, agent_id, "summary")
    again = wait_job(api, consolidate(api, agent_id, user_id="u1", engine="heuristic"), worker=worker)
    assert again["state"] == "succeeded" and set(again["counts"].values()) == {0}
    assert memories(api, agent_id, "semantic") + memories(api, agent_id, "summary") == before


def test_a_malformed_llm_answer_fails_the_job_and_the_episodes_wait_for_the_next_one(api, agent_id, worker, llm,
                                                                                   runtime):
    llm.reset(lambda request: "Sure! Here are the facts: {facts: [")
    texts = ("I live in Lisbon.", "I love jazz.")
    for text in texts:
        remember(api, agent_id, text, user_id="u1", session_id="s1")
    failed = wait_job(api, consolidate(api, agent_id, user_id="u1"), worker=worker)
    assert failed["state"] == "failed" and "malformed answer" in failed["error"]
    calls = [r for r in llm.requests if any(text in r.prompt for text in texts)]
    assert failed["llm_calls"] == 2 == len(calls)  # MEMCUBE_LLM_MAX_RETRIES=1: two attempts, then stop
    assert failed["tokens_in"] > 0 and failed["finished_at"]
    assert memories(api, agent_id, "semantic") == [] and memories(api, agent_id, "summary") == []
    with runtime.pool.connection() as conn:
        scope = conn.execute("SELECT mark_xact, pending_episodes FROM consolidation_scopes "
                             "WHERE tenant = %s AND agent_id = %s", (api.tenant, agent_id)).fetchone()
    assert scope == {"mark_xact": None, "pending_episodes": 2}

    llm.reset(lambda request: json.dumps({"summary": "Jazz and Lisbon."}) if "Summarize" in request.prompt
              else json.dumps({"facts": [{"content": "The user lives in Lisbon", "evidence": [1], "action": "add"}]}))
    retried = wait_job(api, consolidate(api, agent_id, user_id="u1"), worker=worker)
    assert retried["state"] == "succeeded" and retried["counts"]["episodes"] == 2


def test_jobs_belong_to_their_tenant_and_bad_requests_are_refused(api, agent_id, worker, server, admin):
    from tests.conftest import new_tenant_api

    remember(api, agent_id, "Hello there!")
    job_id = consolidate(api, agent_id)
    assert api.get(f"/v1/jobs/{job_id}").status_code == 200
    other = new_tenant_api(server, admin)
    assert other.get(f"/v1/jobs/{job_id}").status_code == 404
    assert api.get(f"/v1/jobs/{uuid.uuid4()}").status_code == 404
    bad = api.post(f"/v1/agents/{agent_id}/consolidate", json={"engine": "magic"})
    assert bad.status_code == 422 and "engine" in bad.json()["error"]["message"]
    assert api.post(f"/v1/agents/{agent_id}/consolidate", json={"user_id": ""}).status_code == 422
    reader = new_tenant_api(server, admin, scopes=("read",))
    assert reader.post(f"/v1/agents/{agent_id}/consolidate").status_code == 403
    # An agent without episodes has nothing to consolidate: refused, not a job that does nothing.
    assert api.post(f"/v1/agents/{agent_id}-none/consolidate").status_code == 404
    # An episode that states nothing is consolidated into nothing but its session's count.
    job = wait_job(api, job_id, worker=worker)
    assert job["state"] == "succeeded" and job["counts"]["episodes"] == 1 and job["counts"]["added"] == 0


def test_the_page_task_moves_the_least_valuable_core_memories_to_archival(api, agent_id, worker, redis_url):
    words = "remember this detail about the customer and their account history for later"
    made = {importance: remember(api, agent_id, f"{words} ({importance})", tier="core", importance=importance)
            for importance in (0.9, 0.8, 0.2, 0.1)}
    app = create_celery(Settings(redis_url=redis_url))
    app.send_task("memcube.page", kwargs={"tenant": api.tenant, "agent_id": agent_id},
                  queue=worker.env["MEMCUBE_WORKER_QUEUE"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tiers = {m["importance"]: m["tier"] for m in memories(api, agent_id, "episodic")}
        if "archival" in tiers.values():
            break
        time.sleep(0.2)
    # The worker's core budget is 40 tokens: the two most important memories stay, the others leave.
    assert tiers == {0.9: "core", 0.8: "core", 0.2: "archival", 0.1: "archival"}, worker.log()[-3000:]
    history = api.get(f"/v1/memories/{made[0.1]['id']}/history").json()["items"]
    assert [(h["tier"], h["provenance"]["source"]) for h in history] == [("core", "api"), ("archival", "paging")]
    assert history[1]["provenance"]["actor"] == "paging:background"


def test_the_index_task_sweeps_a_grown_scope_into_the_hnsw_index(api, agent_id, worker, redis_url, runtime):
    for i in range(3):
        remember(api, agent_id, f"a memory of a scope that grew, number {i}")
    with runtime.pool.connection() as conn:  # what the write that takes a scope past the threshold does
        index_store.mark_filling(conn, tenant=api.tenant, agent_id=agent_id)
    app = create_celery(Settings(redis_url=redis_url))
    app.send_task("memcube.index", queue=worker.env["MEMCUBE_WORKER_QUEUE"])
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:
        with runtime.pool.connection() as conn:
            state = index_store.state(conn, tenant=api.tenant, agent_id=agent_id)
        if state == "ready":
            break
        time.sleep(0.2)
    assert state == "ready", worker.log()[-3000:]
    with runtime.pool.connection() as conn:
        flags = conn.execute("SELECT ann FROM memcubes WHERE tenant = %s AND agent_id = %s",
                             (api.tenant, agent_id)).fetchall()
    assert [r["ann"] for r in flags] == [True, True, True]
