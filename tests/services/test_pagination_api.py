"""Cursor pages under concurrent writes: a listing returns every memory committed before its first page exactly
once, also when a write that began earlier commits while the client is paging."""

from __future__ import annotations

from memcube import cube
from memcube.models import MemCubeCreate
from tests.conftest import new_tenant_api


def test_a_late_commit_is_not_skipped_by_a_cursor_already_handed_out(server, admin, runtime, embedder, settings):
    api = new_tenant_api(server, admin)
    for n in range(4):
        assert api.post("/v1/memories", json={"agent_id": "a", "content": f"early {n}"}).status_code == 201
    with runtime.pool.connection() as slow:
        # A write that began now (another agent: a write takes its scope's episode counter, see trigger.py) (its rows carry this moment) and commits only after the client has paged on.
        [late] = cube.create_cubes(slow, tenant=api.tenant, actor="test", embedder=embedder, settings=settings,
                                   items=[MemCubeCreate(agent_id="b", content="committed late")])
        for n in range(4):
            assert api.post("/v1/memories", json={"agent_id": "a", "content": f"after {n}"}).status_code == 201
        first = api.get("/v1/memories", params={"limit": 3}).json()
        assert len(first["items"]) == 3 and first["next_cursor"]
        # The slow write commits here, behind the cursor the client already holds.
    seen = [item["id"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/v1/memories", params={"limit": 3, "cursor": cursor}).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 9
    assert str(late["id"]) in seen
