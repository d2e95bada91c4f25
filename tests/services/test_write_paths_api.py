"""Writes embed before they take a connection or a lock, and a key revoked a moment ago writes nothing even
though writers check tokens from a cache first."""

import threading
import time
from typing import Any, Iterator, Sequence

import httpx
import pytest
import uvicorn

from memcube.runtime import open_runtime
from services.api.app import create_app
from tests.conftest import ADMIN_TOKEN, _free_port


class PoolWatchingEmbedder:
    """The suite's embedder, noting for each call how many of the pool's connections were checked out."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.pool: Any = None
        self.in_use: list[int] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        stats = self.pool.get_stats()
        self.in_use.append(stats["pool_size"] - stats["pool_available"])
        return self.inner.embed(texts)


@pytest.fixture()
def watched(settings, embedder) -> Iterator[tuple[str, PoolWatchingEmbedder]]:
    """The real app on a runtime of its own (a pool of two connections, opened at start) and the watcher."""
    probe = PoolWatchingEmbedder(embedder)
    own = settings.model_copy(update={"db_pool_min": 2, "db_pool_max": 2})

    def factory(s: Any) -> Any:
        runtime = open_runtime(s, embedder=probe)
        probe.pool = runtime.pool
        return runtime

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(own, runtime_factory=factory), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", probe
    server.should_exit = True
    thread.join(10)


def test_writes_embed_holding_no_connection(watched):
    base, probe = watched
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
    writes = [
        ("POST", "/v1/memories", {"agent_id": "w", "content": "The spare wheel is under the boot floor"}),
        ("POST", "/v1/memories/batch", {"items": [{"agent_id": "w", "content": f"note {i}"} for i in range(3)]}),
        ("POST", "/v1/sessions/s-1/messages", {"agent_id": "w", "messages": [
            {"role": "user", "content": "My order never arrived."},
            {"role": "assistant", "content": "Sorry! Let me check."}]}),
        ("PUT", "/v1/agents/w/core/persona", {"content": "You are Juno, a calm support agent."}),
    ]
    for method, path, body in writes:
        before = len(probe.in_use)
        response = admin.request(method, path, json=body)
        assert response.status_code == 201, response.text
        assert len(probe.in_use) > before, f"{path} embedded nothing"
    # A change of content and a fusion embed before their transaction too.
    made = [admin.post("/v1/memories", json={"agent_id": "w", "content": f"part {i}"}).json() for i in range(2)]
    before = len(probe.in_use)
    patched = admin.patch(f"/v1/memories/{made[0]['id']}", json={"content": "part zero, changed"})
    assert patched.status_code == 200 and patched.headers["etag"] == '"2"' and len(probe.in_use) > before
    before = len(probe.in_use)
    fused = admin.post("/v1/memories/fuse", json={"ids": [made[0]["id"], made[1]["id"]]})
    assert fused.status_code == 201 and fused.json()["memory"]["content"] == "part zero, changed\npart 1"
    assert len(probe.in_use) > before
    # Every embedding ran while both of the pool's connections sat idle: none held, so no lock either.
    assert probe.in_use and set(probe.in_use) == {0}
    found = admin.post("/v1/search", json={"agent_id": "w", "query": "part zero, changed", "k": 1}).json()["hits"]
    assert found[0]["id"] == fused.json()["memory"]["id"]
    assert admin.get("/v1/memories", params={"agent_id": "w", "limit": 10}).json()["items"]
    admin.close()


def test_a_revoked_key_writes_nothing_though_writers_check_a_cache_first(watched, runtime):
    base, _ = watched
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
    made = admin.post("/v1/admin/keys", json={"tenant": "cache-t", "scopes": ["read", "write"], "name": "x"}).json()
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {made['token']}"}, timeout=60)
    assert client.post("/v1/memories", json={"agent_id": "a", "content": "first"}).status_code == 201
    assert admin.delete(f"/v1/admin/keys/{made['id']}").status_code == 200
    # The token is still in the writer's key cache; the write's own transaction looks it up again.
    refused = client.post("/v1/memories", json={"agent_id": "a", "content": "after revocation"})
    assert refused.status_code == 401
    with runtime.pool.connection() as conn:
        rows = conn.execute("SELECT content FROM memcubes WHERE tenant = 'cache-t'").fetchall()
    assert [r["content"] for r in rows] == ["first"]
    client.close()
    admin.close()
