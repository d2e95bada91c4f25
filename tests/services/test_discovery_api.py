"""GET /v1/agents, /v1/sessions and /v1/jobs through the real HTTP app: counts, cursor pages, tenants, bad input."""

import uuid
from datetime import datetime

from tests.conftest import new_tenant_api


def page_through(api, path, params, limit):
    """Every item of a listing, page by page, and the number of pages."""
    seen, cursor, pages = [], None, 0
    while True:
        response = api.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            return seen, pages


def test_agents_are_listed_once_each_with_their_counts(api):
    items = [{"agent_id": "alpha", "content": f"episode {i}", "user_id": f"u{i % 3}"} for i in range(5)]
    items += [{"agent_id": "alpha", "kind": "semantic", "tier": "core", "content": "prefers tea"},
              {"agent_id": "beta", "kind": "procedural", "content": "retry with backoff"}]
    items += [{"agent_id": f"gamma-{i:02d}", "content": "x"} for i in range(9)]
    created = api.post("/v1/memories/batch", json={"items": items}).json()["items"]
    api.delete(f"/v1/memories/{created[0]['id']}")
    api.post("/v1/sessions/s-1/messages", json={"agent_id": "alpha", "user_id": "u1",
                                                 "messages": [{"role": "user", "content": "hello"}]})
    api.post("/v1/sessions/s-2/messages", json={"agent_id": "alpha", "messages": [{"role": "user", "content": "hi"}]})

    agents, pages = page_through(api, "/v1/agents", {}, limit=4)
    assert [a["agent_id"] for a in agents] == ["alpha", "beta"] + [f"gamma-{i:02d}" for i in range(9)]
    assert pages == 3
    alpha = agents[0]
    assert alpha["memories"] == 8  # 5 episodes, 1 fact, 2 messages
    assert alpha["by_kind"] == {"episodic": 7, "semantic": 1}
    assert alpha["by_tier"] == {"archival": 7, "core": 1}
    assert alpha["by_status"] == {"active": 7, "forgotten": 1}
    assert (alpha["users"], alpha["sessions"]) == (3, 2)
    assert datetime.fromisoformat(alpha["last_activity_at"]) >= datetime.fromisoformat(created[-1]["created_at"])
    assert agents[1]["by_kind"] == {"procedural": 1} and agents[1]["sessions"] == 0


def test_sessions_of_an_agent_newest_first_in_pages(api, agent_id):
    for i in range(7):
        response = api.post(f"/v1/sessions/chat-{i}/messages", json={
            "agent_id": agent_id, "user_id": "u1" if i % 2 else None,
            "messages": [{"role": "user", "content": f"message {j}"} for j in range(i + 1)]})
        assert response.status_code == 201
    api.post("/v1/sessions/elsewhere/messages", json={"agent_id": "other", "messages": [
        {"role": "user", "content": "not listed"}]})

    sessions, pages = page_through(api, "/v1/sessions", {"agent_id": agent_id}, limit=3)
    assert [s["session_id"] for s in sessions] == [f"chat-{i}" for i in reversed(range(7))] and pages == 3
    assert [s["turns"] for s in sessions] == [7, 6, 5, 4, 3, 2, 1]
    assert sessions[0]["agent_id"] == agent_id and sessions[0]["user_id"] is None and sessions[1]["user_id"] == "u1"
    of_user = api.get("/v1/sessions", params={"agent_id": agent_id, "user_id": "u1"}).json()["items"]
    assert [s["session_id"] for s in of_user] == ["chat-5", "chat-3", "chat-1"]


def test_jobs_filtered_by_agent_state_and_kind(api):
    for agent in ("a1", "a2", "a3"):
        api.post("/v1/memories", json={"agent_id": agent, "user_id": "u9", "content": "I live in Oslo."})
        assert api.post(f"/v1/agents/{agent}/consolidate", json={"user_id": "u9"}).status_code == 202
    assert api.post("/v1/agents/a1/consolidate", json={"engine": "heuristic"}).status_code == 202

    jobs, pages = page_through(api, "/v1/jobs", {}, limit=2)
    assert len(jobs) == 4 and pages == 2
    assert [j["agent_id"] for j in jobs] == ["a1", "a3", "a2", "a1"]  # newest first
    assert all(j["state"] == "queued" and j["kind"] == "consolidate" and j["trigger"] == "api" for j in jobs)
    assert [j["user_id"] for j in api.get("/v1/jobs", params={"agent_id": "a1"}).json()["items"]] == [None, "u9"]
    assert len(api.get("/v1/jobs", params={"state": "queued", "kind": "consolidate"}).json()["items"]) == 4
    assert api.get("/v1/jobs", params={"state": "failed"}).json() == {"items": [], "next_cursor": None}
    assert api.get("/v1/jobs", params={"kind": "distill"}).json()["items"] == []


def test_listings_are_tenant_scoped(server, admin, api):
    api.post("/v1/memories", json={"agent_id": "mine", "content": "private"})
    api.post("/v1/sessions/secret/messages", json={"agent_id": "mine", "messages": [{"role": "user", "content": "x"}]})
    api.post("/v1/agents/mine/consolidate")
    other = new_tenant_api(server, admin)
    try:
        assert other.get("/v1/agents").json() == {"items": [], "next_cursor": None}
        assert other.get("/v1/sessions", params={"agent_id": "mine"}).json()["items"] == []
        assert other.get("/v1/jobs").json()["items"] == []
        assert other.get("/v1/memories", params={"agent_id": "mine"}).json()["items"] == []
    finally:
        other.http.close()


def test_listings_need_the_read_scope_and_a_token(server, admin):
    writer = new_tenant_api(server, admin, scopes=("write",))
    try:
        for path, params in (("/v1/agents", {}), ("/v1/sessions", {"agent_id": "a"}), ("/v1/jobs", {})):
            response = writer.get(path, params=params)
            assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
            anonymous = writer.http.get(path, params=params, headers={"Authorization": ""})
            assert anonymous.status_code == 401
    finally:
        writer.http.close()


def test_bad_listing_input_is_a_422_that_names_it(api):
    cases = [
        ("/v1/agents", {"limit": 0}, "limit"),
        ("/v1/agents", {"limit": 501}, "limit"),
        ("/v1/agents", {"cursor": "not-a-cursor"}, "cursor"),
        ("/v1/sessions", {}, "agent_id"),
        ("/v1/sessions", {"agent_id": "a", "cursor": "eyJ4Ijog"}, "cursor"),
        ("/v1/sessions", {"agent_id": "a\x00b"}, "NUL"),
        ("/v1/jobs", {"state": "done"}, "state"),
        ("/v1/jobs", {"kind": "Robert'); DROP TABLE jobs;--"}, "kind"),
        ("/v1/jobs", {"cursor": "W10"}, "cursor"),
        ("/v1/memories", {"since": "yesterday"}, "since"),
        ("/v1/memories", {"agent_id": ""}, "agent_id"),
    ]
    for path, params, named in cases:
        response = api.get(path, params=params)
        assert response.status_code == 422, (path, params, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_input" and named in error["message"], (path, params, error)


def test_memories_filter_by_creation_time(api, agent_id):
    first = api.post("/v1/memories", json={"agent_id": agent_id, "content": "before"}).json()
    second = api.post("/v1/memories", json={"agent_id": agent_id, "content": "after"}).json()
    since = api.get("/v1/memories", params={"agent_id": agent_id, "since": second["created_at"]}).json()["items"]
    until = api.get("/v1/memories", params={"agent_id": agent_id, "until": second["created_at"]}).json()["items"]
    assert [c["id"] for c in since] == [second["id"]] and [c["id"] for c in until] == [first["id"]]
    unknown = str(uuid.uuid4())
    assert api.get("/v1/memories", params={"session_id": unknown}).json()["items"] == []
