"""/v1/agents/{agent_id}/core through the real HTTP app: blocks, versions, limits, scopes."""

import threading

import httpx

from memcube import tokens


def put(api, agent_id, label, content, **params):
    return api.put(f"/v1/agents/{agent_id}/core/{label}", json={"content": content}, params=params)


def test_put_creates_then_versions_a_block(api, agent_id):
    created = put(api, agent_id, "persona", "You are Juno, a travel assistant.")
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    block = created.json()["block"]
    assert (block["label"], block["kind"], block["tier"], block["version"]) == ("persona", "core", "core", 1)
    changed = api.put(f"/v1/agents/{agent_id}/core/persona", json={"content": "You are Juno, terse.",
                                                                    "reason": "shorter"})
    assert changed.status_code == 200 and changed.json()["block"]["version"] == 2
    assert changed.json()["block"]["id"] == block["id"]
    same = put(api, agent_id, "persona", "You are Juno, terse.")
    assert same.status_code == 200 and same.json()["block"]["version"] == 2
    history = api.get(f"/v1/memories/{block['id']}/history").json()["items"]
    assert [(v["version"], v["content"], v["label"]) for v in history] == [
        (1, "You are Juno, a travel assistant.", "persona"), (2, "You are Juno, terse.", "persona")]
    assert history[1]["provenance"]["reason"] == "shorter"
    core = api.get(f"/v1/agents/{agent_id}/core").json()
    assert [(b["label"], b["content"]) for b in core["blocks"]] == [("persona", "You are Juno, terse.")]
    assert core["tokens"] == core["blocks"][0]["tokens"] == tokens.count("You are Juno, terse.")
    assert core["pageable"] == [] and core["budget_tokens"] > core["tokens"]
    one = api.get(f"/v1/agents/{agent_id}/core/persona")
    assert one.json()["content"] == "You are Juno, terse." and one.headers["etag"] == '"2"'
    assert api.get(f"/v1/agents/{agent_id}/core/human").status_code == 404


def test_blocks_are_per_user_when_asked(api, agent_id):
    put(api, agent_id, "persona", "You are Juno.")
    assert put(api, agent_id, "human", "Name: Ana.", user_id="ana").status_code == 201
    assert put(api, agent_id, "human", "Name: Bo.", user_id="bo").status_code == 201
    ana = api.get(f"/v1/agents/{agent_id}/core", params={"user_id": "ana"}).json()
    assert [(b["label"], b["content"]) for b in ana["blocks"]] == [("human", "Name: Ana.")]
    agent = api.get(f"/v1/agents/{agent_id}/core").json()
    assert [b["label"] for b in agent["blocks"]] == ["persona"]


def test_limits_if_match_and_bad_labels(api, agent_id, settings):
    too_big = put(api, agent_id, "notes", "word " * (settings.core_block_max_tokens + 1))
    assert too_big.status_code == 413
    message = too_big.json()["error"]["message"]
    assert "MEMCUBE_CORE_BLOCK_MAX_TOKENS" in message and str(settings.core_block_max_tokens) in message
    put(api, agent_id, "persona", "v1")
    stale = api.put(f"/v1/agents/{agent_id}/core/persona", json={"content": "v2"}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["error"]["details"] == {"current_version": 1}
    assert api.put(f"/v1/agents/{agent_id}/core/persona", json={"content": "v2"},
                   headers={"If-Match": "1"}).status_code == 200
    for label in ("has space", "-dash-first", "x" * 65):
        assert put(api, agent_id, label, "x").status_code in (404, 422), label
    assert put(api, agent_id, "persona", "").status_code == 422


def test_blocks_together_must_fit_the_core_budget(api, agent_id, settings):
    half = min(settings.core_budget_tokens // 2 + 1, settings.core_block_max_tokens)
    blocks = 0
    while blocks * half <= settings.core_budget_tokens:
        response = put(api, agent_id, f"block-{blocks}", "word " * half)
        if response.status_code == 413:
            assert "MEMCUBE_CORE_BUDGET_TOKENS" in response.json()["error"]["message"]
            break
        blocks += 1
    else:
        raise AssertionError("the budget never refused a block")
    assert api.get(f"/v1/agents/{agent_id}/core").json()["tokens"] <= settings.core_budget_tokens


def test_unknown_agent_is_404(api):
    response = api.get("/v1/agents/nobody-at-all/core")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_concurrent_first_writes_make_one_block(api, agent_id):
    statuses, barrier = [], threading.Barrier(6)

    def write(i):
        with httpx.Client(base_url=str(api.http.base_url), headers=dict(api.http.headers), timeout=60) as client:
            barrier.wait()
            statuses.append(client.put(f"/v1/agents/{agent_id}/core/persona", json={"content": f"v{i}"}).status_code)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 5 + [201]
    blocks = api.get(f"/v1/agents/{agent_id}/core").json()["blocks"]
    assert len(blocks) == 1 and blocks[0]["version"] == 6


def test_a_block_changes_content_tier_and_kind_only_through_its_own_route(api, agent_id, settings):
    block = put(api, agent_id, "persona", "You are Kit.").json()["block"]
    other = api.post("/v1/memories", json={"agent_id": agent_id, "content": "a plain memory"}).json()
    too_big = "word " * (settings.core_block_max_tokens + 10)
    for change in ({"content": too_big}, {"tier": "archival"}, {"kind": "semantic"}):
        response = api.patch(f"/v1/memories/{block['id']}", json=change)
        assert response.status_code == 409, change
        assert f"PUT /v1/agents/{agent_id}/core/persona" in response.json()["error"]["message"]
    response = api.post("/v1/memories/fuse", json={"ids": [block["id"], other["id"]]})
    assert response.status_code == 409
    assert api.get(f"/v1/memories/{block['id']}").json()["version"] == 1  # none of the above changed it
    patched = api.patch(f"/v1/memories/{block['id']}", json={"metadata": {"owner": "ops"}, "importance": 0.9})
    assert patched.status_code == 200 and patched.json()["version"] == 2


def test_a_block_is_not_made_active_again_while_another_holds_its_label(api, agent_id):
    old = put(api, agent_id, "persona", "You are Kit.").json()["block"]
    assert api.patch(f"/v1/memories/{old['id']}", json={"status": "quarantined"}).status_code == 200
    new = put(api, agent_id, "persona", "You are Rex.")
    assert new.status_code == 201  # the quarantined block no longer holds the label
    refused = api.patch(f"/v1/memories/{old['id']}", json={"status": "active"})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "conflict" and "'persona'" in error["message"]
    assert new.json()["block"]["id"] in error["message"]
    assert error["details"] == {"label": "persona", "active_id": new.json()["block"]["id"]}
    assert api.get(f"/v1/memories/{old['id']}").json()["version"] == 2  # nothing written
    # Once the new block is out of the way, the old one may come back; a user's block of the label is another scope.
    assert api.patch(f"/v1/memories/{new.json()['block']['id']}", json={"status": "quarantined"}).status_code == 200
    assert put(api, agent_id, "persona", "You are Ana's Kit.", user_id="ana").status_code == 201
    back = api.patch(f"/v1/memories/{old['id']}", json={"status": "active"})
    assert back.status_code == 200 and back.json()["status"] == "active"
    assert api.get(f"/v1/agents/{agent_id}/core/persona").json()["id"] == old["id"]
