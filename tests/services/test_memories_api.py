"""/v1/memories and /v1/search through the real HTTP app."""

import threading
import uuid

import httpx


def create(api, agent_id, content, **fields):
    response = api.post("/v1/memories", json={"agent_id": agent_id, "content": content, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_then_search_at_once_finds_it(api, agent_id):
    for i in range(5):
        created = create(api, agent_id, f"Priya keeps her spare keys in the blue ceramic jar number {i}")
        hits = api.post("/v1/search", json={"agent_id": agent_id, "query": f"jar number {i}", "k": 10}).json()["hits"]
        assert created["id"] in [h["id"] for h in hits]


def test_metadata_round_trips_unchanged_and_etag_is_the_version(api, agent_id):
    metadata = {"nested": {"list": [1, 2.5, "x", None, True]}, "unicode": "naïve ☃"}
    created = create(api, agent_id, "m", metadata=metadata, tags=["a"])
    got = api.get(f"/v1/memories/{created['id']}")
    assert got.json()["metadata"] == metadata and got.headers["etag"] == '"1"'


def test_batch_returns_items_in_order_and_is_atomic(api, agent_id):
    items = [{"agent_id": agent_id, "content": f"entry {i}"} for i in range(20)]
    response = api.post("/v1/memories/batch", json={"items": items})
    assert response.status_code == 201
    assert [i["content"] for i in response.json()["items"]] == [f"entry {i}" for i in range(20)]
    bad = items + [{"agent_id": agent_id, "content": ""}]
    response = api.post("/v1/memories/batch", json={"items": [{**i, "agent_id": "atomic"} for i in bad]})
    assert response.status_code == 422 and "items.20.content" in response.json()["error"]["message"]
    assert api.get("/v1/memories", params={"agent_id": "atomic"}).json()["items"] == []


def test_list_pages_through_everything_once(api, agent_id):
    api.post("/v1/memories/batch", json={"items": [{"agent_id": agent_id, "content": f"n{i}", "tags": ["t"] if i % 2
                                                    else []} for i in range(23)]})
    seen, cursor = [], None
    while True:
        page = api.get("/v1/memories", params={"agent_id": agent_id, "limit": 5, **({"cursor": cursor} if cursor
                                                                                   else {})}).json()
        seen += [i["content"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(f"n{i}" for i in range(23)) and len(seen) == 23
    tagged = api.get("/v1/memories", params={"agent_id": agent_id, "tag": "t", "limit": 100}).json()["items"]
    assert len(tagged) == 11


def test_patch_history_version_and_as_of(api, agent_id):
    created = create(api, agent_id, "version one")
    patched = api.patch(f"/v1/memories/{created['id']}", json={"content": "version two", "reason": "edit"},
                        headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.json()["version"] == 2 and patched.headers["etag"] == '"2"'
    assert api.get(f"/v1/memories/{created['id']}", params={"version": 1}).json()["content"] == "version one"
    as_of = api.get(f"/v1/memories/{created['id']}", params={"as_of": created["created_at"]}).json()
    assert as_of["content"] == "version one" and as_of["version"] == 1
    history = api.get(f"/v1/memories/{created['id']}/history").json()["items"]
    assert [(h["version"], h["provenance"]["source"]) for h in history] == [(1, "api"), (2, "api")]
    assert history[1]["provenance"]["reason"] == "edit"


def test_concurrent_patches_with_the_same_if_match_exactly_one_wins(api, agent_id):
    created = create(api, agent_id, "contended")
    statuses, barrier = [], threading.Barrier(8)

    def attempt(i):
        with httpx.Client(base_url=str(api.http.base_url), headers=dict(api.http.headers)) as client:
            barrier.wait()
            statuses.append(client.patch(f"/v1/memories/{created['id']}", json={"content": f"w{i}"},
                                         headers={"If-Match": "1"}).status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [412] * 7
    history = api.get(f"/v1/memories/{created['id']}/history").json()["items"]
    assert [h["version"] for h in history] == [1, 2]


def test_forget_and_erase(api, agent_id):
    created = create(api, agent_id, "secret plan")
    forgotten = api.delete(f"/v1/memories/{created['id']}")
    assert forgotten.status_code == 200 and forgotten.json()["status"] == "forgotten"
    hits = api.post("/v1/search", json={"agent_id": agent_id, "query": "secret plan"}).json()["hits"]
    assert hits == []
    erased = api.delete(f"/v1/memories/{created['id']}", params={"erase": "true"}).json()
    assert erased["content"] == ""
    history = api.get(f"/v1/memories/{created['id']}/history").json()["items"]
    assert [h["content"] for h in history] == ["", "", ""]


def test_fuse_and_links(api, agent_id):
    a, b = create(api, agent_id, "likes jazz"), create(api, agent_id, "listens to jazz on Sundays")
    fused = api.post("/v1/memories/fuse", json={"ids": [a["id"], b["id"]]})
    assert fused.status_code == 201
    body = fused.json()
    assert body["memory"]["content"] == "likes jazz\nlistens to jazz on Sundays"
    assert {s["status"] for s in body["superseded"]} == {"superseded"}
    link = api.post(f"/v1/memories/{a['id']}/links", json={"target_id": b["id"], "type": "supports"})
    assert link.status_code == 201 and link.json()["type"] == "supports"
    links = api.get(f"/v1/memories/{a['id']}/links").json()["items"]
    assert {(item["type"], item["source_id"]) for item in links} == {("supports", a["id"]),
                                                                      ("derived_from", body["memory"]["id"])}


def test_search_explain_shows_components(api, agent_id):
    create(api, agent_id, "The lighthouse keeper logs ships passing at dawn")
    hit = api.post("/v1/search", json={"agent_id": agent_id, "query": "lighthouse ships", "explain": True}).json()
    explain = hit["hits"][0]["explain"]
    assert explain["plan"] == hit["plan"] == "exact"
    assert explain["vector_rank"] == 1 and explain["text_rank"] == 1 and explain["relevance"] == 1.0


def test_unknown_ids_are_404(api):
    missing = uuid.uuid4()
    for method, path in (("GET", f"/v1/memories/{missing}"), ("PATCH", f"/v1/memories/{missing}"),
                         ("DELETE", f"/v1/memories/{missing}"), ("GET", f"/v1/memories/{missing}/history"),
                         ("GET", f"/v1/memories/{missing}/links")):
        kwargs = {"json": {"content": "x"}} if method == "PATCH" else {}
        response = api.request(method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
