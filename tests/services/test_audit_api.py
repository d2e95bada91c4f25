"""The audit trail and request ids: every change leaves an append-only row, carried out or refused."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import ADMIN_TOKEN, Api, new_tenant_api


def entries(admin: Api, **params: object) -> list[dict]:
    response = admin.get("/v1/admin/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_every_change_is_audited_with_its_versions_and_caller(server, admin):
    api = new_tenant_api(server, admin)
    key = admin.get("/v1/admin/keys", params={"tenant": api.tenant}).json()["items"][0]
    created = api.post("/v1/memories", json={"agent_id": "a", "content": "the audit sees this"})
    assert created.status_code == 201
    cube_id = created.json()["id"]
    patched = api.patch(f"/v1/memories/{cube_id}", json={"content": "the audit sees this too"})
    assert patched.status_code == 200
    assert api.post("/v1/search", json={"agent_id": "a", "query": "audit"}).status_code == 200
    assert api.delete(f"/v1/memories/{cube_id}", params={"erase": "true"}).status_code == 200

    rows = entries(admin, tenant=api.tenant)
    # Newest first: erase, patch, create. The search is a read and left no row.
    assert [(r["method"], r["route"], r["outcome"]) for r in rows] == [
        ("DELETE", "/v1/memories/{cube_id}", "ok"), ("PATCH", "/v1/memories/{cube_id}", "ok"),
        ("POST", "/v1/memories", "ok")]
    create, patch = rows[2], rows[1]
    assert create["cubes"] == [{"id": cube_id, "version": 1}] and create["status"] == 201
    assert patch["cubes"] == [{"id": cube_id, "version": 2}]
    assert all(r["key_id"] == key["id"] and r["key_name"] == key["name"] for r in rows)
    assert all(r["actor"] == f"key:{key['id']}" for r in rows)
    # Entries hold ids, never content: the erased text is nowhere in the trail.
    assert "audit sees" not in str(rows)
    # One memory's whole story, by its id.
    assert [r["method"] for r in entries(admin, cube_id=cube_id)] == ["DELETE", "PATCH", "POST"]


def test_a_refused_change_is_audited_without_versions(server, admin):
    api = new_tenant_api(server, admin)
    bad = api.post("/v1/memories", json={"agent_id": "a", "content": ""})
    assert bad.status_code == 422
    missing = api.delete(f"/v1/memories/{uuid.uuid4()}")
    assert missing.status_code == 404
    rows = entries(admin, tenant=api.tenant)
    assert [(r["status"], r["outcome"], r["cubes"]) for r in rows] == [(404, "refused", []), (422, "refused", [])]
    # The request id of the answer is the one in the trail, and in the error body.
    assert rows[0]["request_id"] == missing.headers["x-request-id"] == missing.json()["error"]["request_id"]
    assert entries(admin, tenant=api.tenant, outcome="ok") == []


def test_unauthenticated_attempts_and_key_changes_are_audited(server, admin):
    stranger = Api(server, "mc_not-a-real-token", "none")
    request_id = f"probe-{uuid.uuid4().hex}"
    answer = stranger.post("/v1/memories", json={"agent_id": "a", "content": "x"},
                           headers={"X-Request-ID": request_id})
    assert answer.status_code == 401 and answer.headers["x-request-id"] == request_id
    [row] = entries(admin, request_id=request_id)
    assert row["tenant"] is None and row["key_id"] is None and row["outcome"] == "refused"

    tenant = f"t-{uuid.uuid4().hex[:12]}"
    key = admin.post("/v1/admin/keys", json={"tenant": tenant, "scopes": ["read"], "name": "to revoke"}).json()
    assert admin.delete(f"/v1/admin/keys/{key['id']}").status_code == 200
    made, revoked = entries(admin, route="/v1/admin/keys")[:1], entries(admin, route="/v1/admin/keys/{key_id}")[:1]
    assert made[0]["actor"] == "admin-token" and made[0]["status"] == 201
    assert revoked[0]["path"] == f"/v1/admin/keys/{key['id']}" and revoked[0]["outcome"] == "ok"


def test_tenant_admins_see_only_their_tenant(server, admin):
    one = new_tenant_api(server, admin, scopes=("read", "write", "admin"))
    two = new_tenant_api(server, admin, scopes=("read", "write", "admin"))
    assert one.post("/v1/memories", json={"agent_id": "a", "content": "one"}).status_code == 201
    assert two.post("/v1/memories", json={"agent_id": "a", "content": "two"}).status_code == 201
    seen = one.get("/v1/admin/audit").json()["items"]
    assert seen and {r["tenant"] for r in seen} == {one.tenant}
    refused = one.get("/v1/admin/audit", params={"tenant": two.tenant})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    reader = new_tenant_api(server, admin, scopes=("read",))
    assert reader.get("/v1/admin/audit").status_code == 403


def test_audit_pages_follow_the_cursor(server, admin):
    api = new_tenant_api(server, admin)
    for n in range(5):
        assert api.post("/v1/memories", json={"agent_id": "a", "content": f"page {n}"}).status_code == 201
    seen, cursor = [], None
    while True:
        page = admin.get("/v1/admin/audit", params={"tenant": api.tenant, "limit": 2,
                                                     **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    bad = admin.get("/v1/admin/audit", params={"cursor": "nonsense"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"


def test_the_trail_is_append_only(runtime):
    with runtime.pool.connection() as conn:
        for statement in ("UPDATE audit_log SET status = 200", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                with conn.transaction():
                    conn.execute(statement)


def test_every_answer_carries_a_request_id(server, admin):
    ok = admin.get("/healthz")
    assert len(ok.headers["x-request-id"]) == 32
    mine = admin.get("/v1/admin/keys", headers={"X-Request-ID": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    # An id that is not a sane token is replaced, not echoed.
    odd = admin.get("/healthz", headers={"X-Request-ID": "x" * 100})
    assert odd.headers["x-request-id"] != "x" * 100
    too_big = admin.post("/v1/memories", content=b"{}", headers={"Content-Type": "text/plain"})
    assert too_big.status_code == 415
    assert too_big.json()["error"]["request_id"] == too_big.headers["x-request-id"]


def test_the_admin_token_must_be_long_enough():
    from memcube.config import Settings

    with pytest.raises(ValueError, match="at least 16 characters"):
        Settings(admin_token="short")
    assert Settings(admin_token=ADMIN_TOKEN).admin_token == ADMIN_TOKEN
