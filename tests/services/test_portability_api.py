"""GET /v1/export and POST /v1/import through the real app: a byte-identical round trip into an empty tenant
of another deployment, idempotent re-import, all or nothing, and clear refusals that change nothing."""

import json

import pytest

from memcube.consolidation.run import run_consolidation
from memcube.lessons.distill import run_distillation
from tests.conftest import ADMIN_TOKEN, Api, new_tenant_api

NDJSON = {"Content-Type": "application/x-ndjson"}


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def export(api, **params) -> bytes:
    response = api.get("/v1/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return response.content


def records(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines()]


def consolidate_now(api, runtime, settings, agent_id, user_id):
    job = ok(api.post(f"/v1/agents/{agent_id}/consolidate", json={"user_id": user_id, "engine": "heuristic"}), 202)
    run_consolidation(runtime.pool, job_id=job["job_id"], embedder=runtime.embedder, settings=settings, llm=None)
    assert ok(api.get(f"/v1/jobs/{job['job_id']}"))["state"] == "succeeded"


@pytest.fixture()
def rich(api, agent_id, runtime, settings):
    """A tenant holding every kind of history: consolidated episodes and a fact superseded by a later one,
    a pending episode, fused and erased and forgotten memories, links, core blocks with versions, a session."""
    messages = [{"role": "user", "content": "I live in Lisbon.", "created_at": "2024-01-10T09:00:00Z"},
                {"role": "assistant", "content": "Lisbon is lovely.", "created_at": "2024-01-10T09:00:01Z"}]
    ok(api.post("/v1/sessions/s1/messages", json={"agent_id": agent_id, "user_id": "u1", "messages": messages}), 201)
    consolidate_now(api, runtime, settings, agent_id, "u1")
    moved = [{"role": "user", "content": "I moved to Berlin.", "created_at": "2024-06-01T18:30:00Z"}]
    ok(api.post("/v1/sessions/s1/messages", json={"agent_id": agent_id, "user_id": "u1", "messages": moved}), 201)
    consolidate_now(api, runtime, settings, agent_id, "u1")
    ok(api.post("/v1/sessions/s1/messages", json={"agent_id": agent_id, "user_id": "u1",
                                                  "messages": [{"role": "user", "content": "Not consolidated yet."}]}), 201)
    ok(api.put("/v1/sessions/s1/scratchpad", json={"content": "Goal: find her a flat."}))
    a = ok(api.post("/v1/memories", json={"agent_id": agent_id, "kind": "semantic", "content": "Likes tea",
                                          "tags": ["taste"], "metadata": {"n": 1.5, "k": [1, "x"]}}), 201)
    b = ok(api.post("/v1/memories", json={"agent_id": agent_id, "kind": "semantic", "content": "Likes green tea"}), 201)
    ok(api.post("/v1/memories/fuse", json={"ids": [a["id"], b["id"]], "reason": "same taste"}), 201)
    c = ok(api.post("/v1/memories", json={"agent_id": agent_id, "content": "Password is hunter2",
                                          "data": {"secret": True}}), 201)
    ok(api.patch(f"/v1/memories/{c['id']}", json={"importance": 0.9, "reason": "flag"}))
    ok(api.delete(f"/v1/memories/{c['id']}", params={"erase": "true"}))
    d = ok(api.post("/v1/memories", json={"agent_id": agent_id, "content": "An old plan",
                                          "artifact": {"uri": "s3://b/plan", "format": "pdf", "checksum": "sha256:1"},
                                          "kind": "artifact"}), 201)
    e = ok(api.post("/v1/memories", json={"agent_id": agent_id, "content": "Plan B", "user_id": "u1"}), 201)
    ok(api.post(f"/v1/memories/{d['id']}/links", json={"target_id": e["id"], "type": "supports"}), 201)
    ok(api.delete(f"/v1/memories/{d['id']}"))
    ok(api.put(f"/v1/agents/{agent_id}/core/persona", json={"content": "You are Juno."}), 201)
    ok(api.put(f"/v1/agents/{agent_id}/core/persona", json={"content": "You are Juno, and brief."}))
    ok(api.put(f"/v1/agents/{agent_id}/core/human", params={"user_id": "u1"}, json={"content": "Name: Ana."}), 201)
    steps = [{"tool": "search_flights", "action": "search flights"}, {"tool": "pay_card", "action": "pay by card"}]
    ok(api.post("/v1/trajectories", json={"agent_id": agent_id, "task": "Book a flight to Rome", "steps": steps,
                                          "outcome": "success"}), 201)
    job = ok(api.post(f"/v1/agents/{agent_id}/distill", json={"engine": "heuristic"}), 202)
    run_distillation(runtime.pool, job_id=job["job_id"], embedder=runtime.embedder, settings=settings, llm=None)
    ok(api.post("/v1/trajectories", json={"agent_id": agent_id, "task": "Book a train to Rome", "steps": steps,
                                          "outcome": "failure"}), 201)
    return api


@pytest.fixture()
def other(other_deployment):
    admin = Api(other_deployment.url, ADMIN_TOKEN, "default")
    client = new_tenant_api(other_deployment.url, admin)
    yield client
    client.http.close()
    admin.http.close()


def test_round_trip_into_an_empty_tenant_of_another_deployment_is_byte_identical(rich, other, agent_id):
    first = export(rich)
    lines = records(first)
    assert lines[0] == {"record": "header", "format": "memcube-export", "version": 1, "agent_id": None,
                        "embedder": lines[0]["embedder"]}
    kinds = [line["record"] for line in lines[1:]]
    assert kinds == sorted(kinds, key=["cube", "link", "session"].index)
    cubes = [line for line in lines if line["record"] == "cube"]
    statuses = {c["status"] for c in cubes}
    assert {"active", "superseded", "forgotten"} <= statuses
    erased = next(c for c in cubes if c["versions"][0]["data"] is None and c["status"] == "forgotten"
                  and c["content"] == "" and len(c["versions"]) == 3)
    assert all(v["content"] == "" for v in erased["versions"]) and erased["embedding"] is None
    superseded = next(c for c in cubes if c["kind"] == "semantic" and c["status"] == "superseded"
                      and "Lisbon" in c["content"])
    assert superseded["valid_to"] is not None and superseded["superseded_by"]
    assert {c["consolidated"] for c in cubes if c["kind"] == "episodic"} == {True, False}
    assert {l["type"] for l in lines if l["record"] == "link"} >= {"derived_from", "contradicts", "supports"}
    assert [c["label"] for c in cubes if c["label"]] == ["persona", "human"]
    trajectories = [c["trajectory"] for c in cubes if c["trajectory"]]
    assert len(trajectories) == 2 and sorted(t["distilled_at"] is None for t in trajectories) == [False, True]
    assert any(c["kind"] == "procedural" for c in cubes)  # the lesson distilled from the first
    [session] = [line for line in lines if line["record"] == "session"]
    assert session["scratchpad"] == "Goal: find her a flat." and [t["turn"] for t in session["turns"]] == [0, 1, 2, 3]
    assert b" " not in first.split(b"\n")[0] and "tenant" not in first.decode()

    result = ok(other.post("/v1/import", content=first, headers=NDJSON))
    assert result["created"]["cubes"] == len(cubes) and result["unchanged"] == {"cubes": 0}
    assert result["created"]["links"] == kinds.count("link") and result["reembedded"] == 0
    assert export(other) == first

    # Again: nothing changes, every record is reported as already there.
    again = ok(other.post("/v1/import", content=first, headers=NDJSON))
    assert again["created"] == {} and again["unchanged"]["cubes"] == len(cubes)
    assert export(other) == first

    # What was imported works: search finds by the kept vectors and words, the window is back, history kept.
    hits = ok(other.post("/v1/search", json={"agent_id": agent_id, "user_id": "u1", "query": "where does she live",
                                            "kinds": ["semantic"], "as_of": "2024-03-01T00:00:00Z"}))["hits"]
    assert hits and "Lisbon" in hits[0]["content"]
    window = ok(other.get("/v1/sessions/s1/working"))
    assert [m["turn"] for m in window["messages"]] == [0, 1, 2, 3] and window["scratchpad"].startswith("Goal")
    assert len(ok(other.get(f"/v1/memories/{erased['id']}/history"))["items"]) == 3
    assert [b["label"] for b in ok(other.get(f"/v1/agents/{agent_id}/core"))["blocks"]] == ["persona"]
    listed = ok(other.get("/v1/trajectories", params={"agent_id": agent_id}))["items"]
    assert sorted(t["distilled_at"] is None for t in listed) == [False, True]
    assert ok(other.get("/v1/lessons", params={"agent_id": agent_id, "task": "flight to Rome"}))["items"]
    user_core = ok(other.get(f"/v1/agents/{agent_id}/core", params={"user_id": "u1"}))
    assert [b["content"] for b in user_core["blocks"]] == ["Name: Ana."]



def test_consolidation_state_travels_with_the_episodes(rich, other, agent_id, other_deployment):
    first = export(rich)
    ok(other.post("/v1/import", content=first, headers=NDJSON))
    pending = [c["content"] for c in records(export(other)) if c["record"] == "cube" and c["session_id"] == "s1"
               and c["consolidated"] is False]
    assert pending == ["Not consolidated yet."]
    # Consolidating the imported scope takes only that episode: the facts from the others stay as they were.
    facts = {c["id"]: c["version"] for c in records(first) if c["record"] == "cube" and c["kind"] == "semantic"}
    deployment = other_deployment
    consolidate_now(other, deployment.runtime, deployment.settings, agent_id, "u1")
    [job] = ok(other.get("/v1/jobs", params={"agent_id": agent_id, "kind": "consolidate"}))["items"]
    waiting = [c for c in records(first) if c["record"] == "cube" and c["user_id"] == "u1" and c["consolidated"] is False]
    assert job["counts"]["episodes"] == len(waiting) == 2
    after = {c["id"]: c["version"] for c in records(export(other)) if c["record"] == "cube" and c["id"] in facts}
    assert after == facts


def test_agent_export_holds_only_that_agent(rich, api, agent_id):
    ok(api.post("/v1/memories", json={"agent_id": "someone-else", "content": "Not mine"}), 201)
    mine = records(export(api, agent_id=agent_id))
    assert mine[0]["agent_id"] == agent_id
    assert {line["agent_id"] for line in mine[1:] if line["record"] in ("cube", "session")} == {agent_id}
    assert "someone-else" in {line.get("agent_id") for line in records(export(api))}


def test_another_embedder_means_the_vectors_are_made_again(rich, other):
    lines = records(export(rich))
    lines[0]["embedder"] = {"model": "some-other-model", "dim": 3}
    for line in lines:
        if line["record"] == "cube" and line["embedding"] is not None:
            line["embedding"] = [0.0, 0.6, 0.8]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    result = ok(other.post("/v1/import", content=body, headers=NDJSON))
    assert result["reembedded"] == sum(1 for line in lines if line["record"] == "cube" and line["embedding"])
    assert ok(other.post("/v1/search", json={"agent_id": lines[1]["agent_id"], "query": "tea"}))["hits"]


def bad(api, body: bytes, status: int, code: str, *, headers=NDJSON):
    response = api.post("/v1/import", content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def test_bad_input_is_refused_clearly_and_changes_nothing(rich, other, api):
    first = export(rich)
    lines = first.splitlines()
    before = export(other)
    error = bad(other, b"\n".join(lines[:3] + [b"{not json"]), 400, "malformed")
    assert "line 4" in error["message"]
    error = bad(other, b"\n".join([lines[0], b'{"record": "cube", "id": "x"}']), 422, "invalid_input")
    assert error["message"].startswith("line 2 is not a cube record") and error["details"]["line"] == 2
    error = bad(other, b"\n".join(lines[1:]), 422, "invalid_input")
    assert "header" in error["message"]
    error = bad(other, b"\n".join([lines[0], b'{"record": "trajectory"}']), 422, "invalid_input")
    assert "unknown record" in error["message"]
    link = next(line for line in lines if b'"record":"link"' in line)
    error = bad(other, b"\n".join([lines[0], link]), 422, "invalid_input")
    assert "neither in the import nor in this tenant" in error["message"]
    # A good batch followed by one bad record stores nothing of the batch.
    bad(other, b"\n".join(lines[:-1] + [lines[-1].replace(b'"turn":0', b'"turn":-1')]), 422, "invalid_input")
    bad(other, first, 415, "unsupported_media_type", headers={"Content-Type": "application/json"})
    assert export(other) == before
    # The same ids cannot go into a second tenant of one deployment.
    error = bad(new_tenant_api(str(api.http.base_url).rstrip("/"), Api(str(api.http.base_url).rstrip("/"),
                                                                      ADMIN_TOKEN, "default")),
                first, 409, "conflict")
    assert "already in use in this deployment" in error["message"]


def test_a_changed_memory_is_a_conflict_not_an_overwrite(rich, other):
    first = export(rich)
    ok(other.post("/v1/import", content=first, headers=NDJSON))
    cube = next(line for line in records(first) if line["record"] == "cube" and line["status"] == "active"
                and not line["label"])
    ok(other.patch(f"/v1/memories/{cube['id']}", json={"importance": 0.1}))
    after = export(other)
    error = bad(other, first, 409, "conflict")
    assert error["details"]["current_version"] == cube["version"] + 1
    assert export(other) == after


def test_export_and_import_need_their_scopes(server, admin, rich):
    reader = new_tenant_api(server, admin, scopes=("read",))
    assert reader.get("/v1/export").status_code == 200
    assert reader.post("/v1/import", content=export(rich), headers=NDJSON).status_code == 403
    assert Api(server, "wrong", "x").get("/v1/export").status_code == 401


def test_a_key_without_admin_exports_forgotten_memories_withheld(server, admin, rich, other):
    full_key = admin.post("/v1/admin/keys", json={"tenant": rich.tenant, "scopes": ["read", "admin"]}).json()
    full = export(Api(server, full_key["token"], rich.tenant))
    partial = export(rich)
    assert b"An old plan" in full and b"s3://b/plan" in full
    assert b"An old plan" not in partial and b"s3://b/plan" not in partial
    # What is withheld still imports: the forgotten memory arrives, forgotten and empty.
    assert other.post("/v1/import", content=partial, headers=NDJSON).status_code == 200
    forgotten = [json.loads(line) for line in export(other).splitlines()
                 if b'"status":"forgotten"' in line and b'"record":"cube"' in line]
    assert forgotten and all(c["content"] == "" for c in forgotten)
