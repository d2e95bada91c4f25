"""Every error code, in the documented shape, and bad input that changes nothing."""

import json

import pytest


def error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details", "request_id"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def count(api, agent_id):
    return len(api.get("/v1/memories", params={"agent_id": agent_id, "status": "any", "limit": 500}).json()["items"])


def test_malformed_json_is_400(api, agent_id):
    response = api.post("/v1/memories", content=b'{"agent_id": "a", "content": ', headers={"content-type":
                                                                                          "application/json"})
    assert error(response, 400)["code"] == "malformed"


@pytest.mark.parametrize("body, field", [
    ({"content": "x"}, "agent_id"),
    ({"agent_id": "a"}, "content"),
    ({"agent_id": "a", "content": "   "}, "content"),
    ({"agent_id": "a", "content": "x", "kind": "dream"}, "kind"),
    ({"agent_id": "a", "content": "x", "importance": 1.5}, "importance"),
    ({"agent_id": "a", "content": "x", "unknown_field": 1}, "unknown_field"),
    ({"agent_id": "a", "content": "nul \u0000 byte"}, "content"),
    ({"agent_id": "a", "content": "x", "metadata": {"k": "nul \u0000"}}, "metadata"),
    ({"agent_id": "a", "content": "x", "metadata": []}, "metadata"),
    ({"agent_id": "a", "content": "x", "kind": "artifact"}, "artifact"),
    ({"agent_id": "a", "content": "x", "occurred_at": "yesterday"}, "occurred_at"),
    ({"agent_id": "", "content": "x"}, "agent_id"),
    ({"agent_id": "a", "content": "x", "tags": [""]}, "tags"),
    ({"agent_id": "a", "content": "x", "embedding": [1.0, "NaN"]}, "embedding"),
])
def test_invalid_bodies_are_422_naming_the_field_and_store_nothing(api, agent_id, body, field):
    body = {**body, "agent_id": agent_id} if body.get("agent_id") == "a" else body
    err = error(api.post("/v1/memories", json=body), 422)
    assert err["code"] == "invalid_input" and field in str(err)
    assert count(api, agent_id) == 0


def test_lone_surrogates_are_422_not_500(api, agent_id):
    raw = ('{"agent_id": "%s", "content": "bad \\ud800 text"}' % agent_id).encode()
    err = error(api.post("/v1/memories", content=raw, headers={"content-type": "application/json"}), 422)
    assert "surrogate" in err["message"]


def test_wrong_embedding_size_is_422(api, agent_id):
    err = error(api.post("/v1/memories", json={"agent_id": agent_id, "content": "x", "embedding": [0.1, 0.2]}), 422)
    assert err["details"]["expected_dim"] == 384


def test_size_limits_are_413_naming_the_limit(api, agent_id, settings):
    err = error(api.post("/v1/memories", json={"agent_id": agent_id, "content": "x" * (settings.max_content_chars + 1)}),
                413)
    assert "MEMCUBE_MAX_CONTENT_CHARS" in err["message"] and err["details"]["limit"] == settings.max_content_chars
    items = [{"agent_id": agent_id, "content": "x"}] * (settings.max_batch_items + 1)
    err = error(api.post("/v1/memories/batch", json={"items": items}), 413)
    assert "MEMCUBE_MAX_BATCH_ITEMS" in err["message"]
    err = error(api.post("/v1/memories", content=b"x" * (settings.max_body_bytes + 1),
                         headers={"content-type": "application/json"}), 413)
    assert "MEMCUBE_MAX_BODY_BYTES" in err["message"]
    assert count(api, agent_id) == 0


def test_k_over_the_limit_is_422(api, agent_id, settings):
    err = error(api.post("/v1/search", json={"agent_id": agent_id, "query": "x", "k": settings.max_k + 1}), 422)
    assert "MEMCUBE_MAX_K" in err["message"]
    error(api.post("/v1/search", json={"agent_id": agent_id, "query": "x", "k": 0}), 422)
    error(api.post("/v1/search", json={"agent_id": agent_id, "query": ""}), 422)


def test_stale_if_match_is_412_and_bad_if_match_is_422(api, agent_id):
    created = api.post("/v1/memories", json={"agent_id": agent_id, "content": "x"}).json()
    path = f"/v1/memories/{created['id']}"
    err = error(api.patch(path, json={"content": "y"}, headers={"If-Match": "7"}), 412)
    assert err["code"] == "stale_version" and err["details"] == {"current_version": 1}
    error(api.patch(path, json={"content": "y"}, headers={"If-Match": "abc"}), 422)
    error(api.patch(path, json={}), 422)
    assert api.get(path).json()["version"] == 1


def test_conflicts_are_409(api, agent_id):
    a = api.post("/v1/memories", json={"agent_id": agent_id, "content": "a"}).json()
    b = api.post("/v1/memories", json={"agent_id": agent_id, "content": "b"}).json()
    assert api.post("/v1/memories/fuse", json={"ids": [a["id"], b["id"]]}).status_code == 201
    assert error(api.post("/v1/memories/fuse", json={"ids": [a["id"], b["id"]]}), 409)["code"] == "conflict"
    api.delete(f"/v1/memories/{a['id']}")
    error(api.patch(f"/v1/memories/{a['id']}", json={"content": "back"}), 409)


def test_bad_paths_and_queries(api):
    error(api.get("/v1/memories/not-a-uuid"), 422)
    error(api.get("/v1/memories", params={"limit": 0}), 422)
    error(api.get("/v1/memories", params={"cursor": "garbage!"}), 422)
    error(api.get("/v1/memories", params={"kind": "dream"}), 422)
    error(api.get("/v1/nope"), 404)
    error(api.put("/v1/memories"), 405)


@pytest.mark.parametrize("headers", [{"Content-Type": "application/x-www-form-urlencoded"},
                                     {"Content-Type": "text/plain; charset=utf-8"}, {}])
def test_a_body_that_is_not_declared_json_is_415_saying_so_and_stores_nothing(api, agent_id, headers):
    body = json.dumps({"agent_id": agent_id, "content": "sent as a form"}).encode()
    response = api.post("/v1/memories", content=body, headers=headers)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert api.get("/v1/memories", params={"agent_id": agent_id}).json()["items"] == []
    # JSON with parameters, and +json types, are JSON; a request without a body needs no type.
    ok = api.post("/v1/memories", content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 201
    assert api.post(f"/v1/agents/{agent_id}/consolidate").status_code == 202
