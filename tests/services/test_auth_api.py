"""Keys, scopes and tenant isolation across every endpoint."""

import uuid

from tests.conftest import new_tenant_api


def test_no_token_bad_token_and_revoked_token_are_401(server, admin):
    import httpx

    assert httpx.get(f"{server}/v1/memories").status_code == 401
    bad = httpx.get(f"{server}/v1/memories", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    assert bad.headers["www-authenticate"] == "Bearer"
    client = new_tenant_api(server, admin)
    assert client.get("/v1/memories").status_code == 200
    key_id = next(k["id"] for k in admin.get("/v1/admin/keys", params={"tenant": client.tenant}).json()["items"])
    assert admin.delete(f"/v1/admin/keys/{key_id}").json()["revoked_at"] is not None
    assert client.get("/v1/memories").status_code == 401


def test_search_and_context_check_the_token_like_every_route(server, admin):
    # These two routes authenticate in their own thread hop (services.api.deps.run_authorized).
    import httpx

    client = new_tenant_api(server, admin)
    client.post("/v1/memories", json={"agent_id": "a", "content": "tulips in the garden"})
    good = {"/v1/search": {"agent_id": "a", "query": "tulips"},
            "/v1/context": {"agent_id": "a", "query": "tulips", "budget": 500}}
    for path, body in good.items():
        assert client.post(path, json=body).status_code == 200
        missing = httpx.post(f"{server}{path}", json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        bad = httpx.post(f"{server}{path}", json=body, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
        # No token is refused before the body is read; a present token is looked up after it is validated.
        assert httpx.post(f"{server}{path}", json={"k": "x"}).status_code == 401
        assert httpx.post(f"{server}{path}", json={"k": "x"},
                          headers={"Authorization": "Bearer nope"}).status_code == 422
    key_id = next(k["id"] for k in admin.get("/v1/admin/keys", params={"tenant": client.tenant}).json()["items"])
    admin.delete(f"/v1/admin/keys/{key_id}")
    for path, body in good.items():
        assert client.post(path, json=body).status_code == 401


def test_scopes_are_enforced(server, admin):
    reader = new_tenant_api(server, admin, scopes=("read",))
    response = reader.post("/v1/memories", json={"agent_id": "a", "content": "x"})
    assert response.status_code == 403 and "write" in response.json()["error"]["message"]
    assert reader.get("/v1/memories").status_code == 200
    assert reader.get("/v1/admin/keys").status_code == 403
    writer = new_tenant_api(server, admin, scopes=("write",))
    assert writer.post("/v1/memories", json={"agent_id": "a", "content": "x"}).status_code == 201
    assert writer.post("/v1/search", json={"agent_id": "a", "query": "x"}).status_code == 403


def test_keys_are_stored_hashed_and_shown_once(server, admin, runtime):
    created = admin.post("/v1/admin/keys", json={"tenant": "hash-check", "scopes": ["read"]}).json()
    assert created["token"].startswith("mc_")
    listed = admin.get("/v1/admin/keys", params={"tenant": "hash-check"}).json()["items"]
    assert all("token" not in k for k in listed)
    with runtime.pool.connection() as conn:
        row = conn.execute("SELECT token_hash::text AS h, token_prefix FROM api_keys WHERE id = %s",
                           (created["id"],)).fetchone()
    label, _, secret = created["token"].removeprefix("mc_").partition("_")
    assert len(label) == 8 and len(secret) >= 43
    # Stored: the token's hash and its public label, not one character of the secret after it.
    assert created["token"] not in row["h"] and row["token_prefix"] == "mc_" + label


def test_tenant_admin_manages_only_its_own_tenant(server, admin):
    tenant_admin = new_tenant_api(server, admin, scopes=("admin",))
    other = tenant_admin.post("/v1/admin/keys", json={"tenant": "someone-else", "scopes": ["read"]})
    assert other.status_code == 403
    own = tenant_admin.post("/v1/admin/keys", json={"tenant": tenant_admin.tenant, "scopes": ["read"]})
    assert own.status_code == 201
    foreign_key = admin.post("/v1/admin/keys", json={"tenant": "victim", "scopes": ["read"]}).json()
    assert tenant_admin.delete(f"/v1/admin/keys/{foreign_key['id']}").status_code == 404
    assert {k["tenant"] for k in tenant_admin.get("/v1/admin/keys").json()["items"]} == {tenant_admin.tenant}


def test_one_tenant_cannot_touch_another_tenants_cubes_anywhere(server, admin):
    alice, mallory = new_tenant_api(server, admin), new_tenant_api(server, admin)
    agent = "shared-agent-name"
    a = alice.post("/v1/memories", json={"agent_id": agent, "content": "alice's diary entry about tulips"}).json()
    b = alice.post("/v1/memories", json={"agent_id": agent, "content": "alice's second entry about tulips"}).json()
    mine = mallory.post("/v1/memories", json={"agent_id": agent, "content": "mallory's note"}).json()

    assert mallory.get(f"/v1/memories/{a['id']}").status_code == 404
    assert mallory.get(f"/v1/memories/{a['id']}", params={"version": 1}).status_code == 404
    assert mallory.get(f"/v1/memories/{a['id']}/history").status_code == 404
    assert mallory.get(f"/v1/memories/{a['id']}/links").status_code == 404
    assert mallory.patch(f"/v1/memories/{a['id']}", json={"content": "pwned"}).status_code == 404
    assert mallory.delete(f"/v1/memories/{a['id']}").status_code == 404
    assert mallory.delete(f"/v1/memories/{a['id']}", params={"erase": "true"}).status_code == 404
    assert mallory.post("/v1/memories/fuse", json={"ids": [a["id"], b["id"]]}).status_code == 404
    assert mallory.post("/v1/memories/fuse", json={"ids": [mine["id"], a["id"]]}).status_code == 404
    assert mallory.post(f"/v1/memories/{mine['id']}/links", json={"target_id": a["id"]}).status_code == 404
    assert mallory.post(f"/v1/memories/{a['id']}/links", json={"target_id": mine["id"]}).status_code == 404
    listed = mallory.get("/v1/memories", params={"agent_id": agent}).json()["items"]
    assert [m["id"] for m in listed] == [mine["id"]]
    assert [m["id"] for m in mallory.get("/v1/memories").json()["items"]] == [mine["id"]]
    hits = mallory.post("/v1/search", json={"agent_id": agent, "query": "tulips diary", "k": 50}).json()["hits"]
    assert [h["id"] for h in hits] == [mine["id"]]
    # Alice's data is untouched by all of the above.
    assert alice.get(f"/v1/memories/{a['id']}").json()["version"] == 1
    assert len(alice.post("/v1/search", json={"agent_id": agent, "query": "tulips"}).json()["hits"]) == 2


def test_admin_routes_need_the_admin_scope_and_ids_are_validated(api, admin):
    assert api.get("/v1/admin/keys").status_code == 403
    assert admin.delete(f"/v1/admin/keys/{uuid.uuid4()}").status_code == 404
    assert admin.post("/v1/admin/keys", json={"tenant": "x", "scopes": ["root"]}).status_code == 422
    assert admin.post("/v1/admin/keys", json={"tenant": "x", "scopes": []}).status_code == 422
