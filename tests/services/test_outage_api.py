"""A dependency that is down is a 503 `unavailable` with Retry-After, never a 500; /readyz shows what failed
only to a caller with a valid token."""

from pathlib import Path
from typing import Any

import httpx
import psycopg
import psycopg_pool
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.errors import install_error_handlers
from tests.conftest import ADMIN_TOKEN, _free_port, serve


class Outage:
    """The session runtime with some of its connections swapped for ones to servers that are not there."""

    def __init__(self, runtime: Any, **broken: Any) -> None:
        self._runtime = runtime
        self.__dict__.update(broken)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)


@pytest.fixture(scope="module")
def dead_pool():
    """A pool whose database does not answer: every request for a connection times out after a second."""
    pool = psycopg_pool.ConnectionPool(f"host=127.0.0.1 port={_free_port()} dbname=none connect_timeout=1",
                                       min_size=1, max_size=2, timeout=1, open=False, reconnect_timeout=600)
    pool.open(wait=False)
    yield pool
    pool.close(timeout=0)


@pytest.fixture(scope="module")
def dead_redis(tmp_path_factory):
    # Made as the runtime makes its client (from a URL): it fails at once, where a client built with
    # `unix_socket_path=` would retry each command for seconds.
    client = redis.Redis.from_url(f"unix://{tmp_path_factory.mktemp('noredis') / 'none.sock'}", socket_timeout=1)
    yield client
    client.close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    assert set(response.json()["error"]) == {"code", "message", "details", "request_id"}
    assert int(response.headers["retry-after"]) > 0


def test_a_database_outage_is_a_503_with_retry_after(settings, runtime, dead_pool):
    with serve(settings, Outage(runtime, pool=dead_pool)) as url:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert_unavailable(httpx.get(f"{url}/v1/memories", headers=headers, timeout=30))
        assert_unavailable(httpx.post(f"{url}/v1/search", headers=headers, timeout=30,
                                      json={"agent_id": "a", "query": "anything"}))
        assert_unavailable(httpx.post(f"{url}/v1/memories", headers=headers, timeout=30,
                                      json={"agent_id": "a", "content": "something"}))


@pytest.mark.parametrize("exc", [psycopg.OperationalError("connection lost"), psycopg_pool.PoolTimeout("busy"),
                                 redis.ConnectionError("refused"), redis.TimeoutError("timed out")],
                         ids=lambda exc: type(exc).__name__)
def test_every_outage_exception_is_mapped_to_503(exc):
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert_unavailable(response)
    assert str(exc) not in response.text


def test_readyz_shows_error_text_only_to_an_authenticated_caller(settings, runtime, dead_redis, api):
    with serve(settings, Outage(runtime, redis=dead_redis, broker=dead_redis)) as url:
        anonymous = httpx.get(f"{url}/readyz", timeout=60)
        assert anonymous.status_code == 503
        assert anonymous.json() == {"status": "not_ready", "checks": {
            "database": {"ok": True}, "redis": {"ok": False}, "broker": {"ok": False}}}
        assert "none.sock" not in anonymous.text
        wrong = httpx.get(f"{url}/readyz", headers={"Authorization": "Bearer mc_not-a-key"}, timeout=60)
        assert wrong.json() == anonymous.json()
        for token in (ADMIN_TOKEN, api.token):
            operator = httpx.get(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"}, timeout=60)
            assert operator.status_code == 503
            checks = operator.json()["checks"]
            assert checks["database"]["ok"] and "ms" in checks["database"]
            assert not checks["redis"]["ok"] and "none.sock" in checks["redis"]["error"]
