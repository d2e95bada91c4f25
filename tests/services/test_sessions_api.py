"""/v1/sessions through the real HTTP app: append, working window, scratchpad, recovery and bad input."""

import threading

import httpx

from memcube import working


def say(api, session_id, contents, agent_id, **fields):
    body = {"agent_id": agent_id, "messages": [{"role": "user", "content": c} for c in contents], **fields}
    response = api.post(f"/v1/sessions/{session_id}/messages", json=body)
    assert response.status_code == 201, response.text
    return response.json()["messages"]


def archive(api, session_id):
    items = api.get("/v1/memories", params={"session_id": session_id, "limit": 500}).json()["items"]
    return sorted(items, key=lambda i: i["metadata"]["turn"])


def drop_windows(redis_client, tenant):
    """What a Redis restart does to this tenant: every working-memory key is gone."""
    keys = list(redis_client.scan_iter(working.tenant_pattern(tenant)))
    assert keys
    redis_client.delete(*keys)


def test_append_then_read_the_window(api, agent_id):
    body = {"agent_id": agent_id, "user_id": "u1", "messages": [
        {"role": "user", "content": "Hi, I'm Ana.", "created_at": "2025-01-02T10:00:00Z"},
        {"role": "assistant", "content": "Hello Ana!", "name": "juno"}]}
    response = api.post("/v1/sessions/chat-1/messages", json=body)
    assert response.status_code == 201, response.text
    messages = response.json()["messages"]
    assert [(m["turn"], m["role"], m["name"]) for m in messages] == [(0, "user", None), (1, "assistant", "juno")]
    assert messages[0]["created_at"].startswith("2025-01-02T10:00:00")
    working_memory = api.get("/v1/sessions/chat-1/working").json()
    assert [m["content"] for m in working_memory["messages"]] == ["Hi, I'm Ana.", "Hello Ana!"]
    assert working_memory["user_id"] == "u1" and working_memory["turns"] == 2 and working_memory["scratchpad"] == ""
    cube = api.get(f"/v1/memories/{messages[1]['id']}").json()
    assert cube["kind"] == "episodic" and cube["metadata"] == {"role": "assistant", "turn": 1, "name": "juno"}
    assert cube["provenance"]["source"] == "message"


def test_a_conversation_longer_than_the_window_is_all_in_the_archive(api, agent_id, settings):
    contents = [f"message number {i} about the trip" for i in range(settings.working_max_messages + 15)]
    for start in range(0, len(contents), 20):
        say(api, "long", contents[start:start + 20], agent_id)
    window = api.get("/v1/sessions/long/working").json()["messages"]
    assert [m["content"] for m in window] == contents[-settings.working_max_messages:]
    assert [i["content"] for i in archive(api, "long")] == contents


def test_redis_lost_mid_conversation_loses_nothing(api, agent_id, redis_client, settings):
    contents = [f"turn {i}: we talked about topic {i}" for i in range(70)]
    say(api, "flushed", contents[:30], agent_id)
    drop_windows(redis_client, api.tenant)
    say(api, "flushed", contents[30:], agent_id)
    got = api.get("/v1/sessions/flushed/working").json()
    assert got["rebuilt"] and [m["content"] for m in got["messages"]] == contents[-settings.working_max_messages:]
    assert [m["turn"] for m in got["messages"]] == list(range(70 - settings.working_max_messages, 70))
    again = api.get("/v1/sessions/flushed/working").json()
    assert not again["rebuilt"] and again["messages"] == got["messages"]
    assert [i["content"] for i in archive(api, "flushed")] == contents


def test_concurrent_appends_get_unique_gap_free_turns(api, agent_id):
    say(api, "busy", ["opening"], agent_id)
    barrier, errors = threading.Barrier(6), []

    def writer(n):
        with httpx.Client(base_url=str(api.http.base_url), headers=dict(api.http.headers), timeout=60) as client:
            barrier.wait()
            for j in range(3):
                r = client.post("/v1/sessions/busy/messages", json={"agent_id": agent_id, "messages": [
                    {"role": "user", "content": f"writer {n} message {j}"},
                    {"role": "assistant", "content": f"reply {n}.{j}"}]})
                if r.status_code != 201:
                    errors.append(r.text)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    turns = [i["metadata"]["turn"] for i in archive(api, "busy")]
    assert turns == list(range(37))
    window = api.get("/v1/sessions/busy/working").json()
    assert [m["turn"] for m in window["messages"]] == list(range(37))
    # Each append's two messages are adjacent turns.
    by_turn = {i["metadata"]["turn"]: i["content"] for i in archive(api, "busy")}
    for turn in range(1, 37, 2):
        assert by_turn[turn].startswith("writer") and by_turn[turn + 1].startswith("reply")


def test_bad_messages_store_nothing(api, agent_id, settings):
    cases = [
        (422, {"messages": [{"role": "user", "content": "  "}]}),
        (422, {"messages": [{"role": "robot", "content": "beep"}]}),
        (422, {"messages": []}),
        (422, {"messages": [{"role": "user", "content": "ok", "mood": "extra field"}]}),
        (413, {"messages": [{"role": "user", "content": "x" * (settings.max_content_chars + 1)}]}),
        (413, {"messages": [{"role": "user", "content": "ok"},
                            {"role": "user", "content": "word " * (settings.working_max_tokens + 1)}]}),
        (413, {"messages": [{"role": "user", "content": "m"}] * (settings.max_session_messages + 1)}),
    ]
    for status, body in cases:
        response = api.post("/v1/sessions/bad/messages", json={"agent_id": agent_id, **body})
        assert response.status_code == status, (body, response.text)
    assert "MEMCUBE_WORKING_MAX_TOKENS" in api.post("/v1/sessions/bad/messages", json={
        "agent_id": agent_id, **cases[5][1]}).json()["error"]["message"]
    assert api.get("/v1/memories", params={"session_id": "bad"}).json()["items"] == []
    assert api.get("/v1/sessions/bad/working").status_code == 404


def test_a_session_belongs_to_one_agent_and_user(api, agent_id):
    say(api, "mine", ["hello"], agent_id, user_id="u1")
    response = api.post("/v1/sessions/mine/messages", json={
        "agent_id": "someone-else", "user_id": "u1", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 409 and "belongs to agent" in response.json()["error"]["message"]
    assert api.get("/v1/sessions/mine/working", params={"agent_id": "someone-else"}).status_code == 404
    assert api.get("/v1/sessions/mine/working", params={"agent_id": agent_id}).status_code == 200


def test_unknown_session_is_404_and_scratchpad_round_trips(api, agent_id):
    assert api.get("/v1/sessions/nothing-here/working").json()["error"]["code"] == "not_found"
    assert api.put("/v1/sessions/nothing-here/scratchpad", json={"content": "x"}).status_code == 404
    say(api, "pad", ["let's plan"], agent_id)
    response = api.put("/v1/sessions/pad/scratchpad", json={"content": "Goal: Lyon by Friday"})
    assert response.status_code == 200 and response.json()["tokens"] == 5
    assert api.get("/v1/sessions/pad/working").json()["scratchpad"] == "Goal: Lyon by Friday"


def test_other_tenants_do_not_see_a_session(api, agent_id, server, admin):
    from tests.conftest import new_tenant_api

    say(api, "private", ["secret"], agent_id)
    other = new_tenant_api(server, admin)
    assert other.get("/v1/sessions/private/working").status_code == 404
    # The same session id in another tenant is another session.
    assert other.post("/v1/sessions/private/messages", json={
        "agent_id": "x", "messages": [{"role": "user", "content": "hi"}]}).status_code == 201
    other.http.close()
