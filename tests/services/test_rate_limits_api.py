"""Rate limits per key: 429 with Retry-After once a class is spent, each class and each key on its own."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, new_tenant_api, serve


@pytest.fixture(scope="module")
def limited(settings, runtime):
    """The app with tight limits, on the test stack (counts from an earlier run are cleared)."""
    for key in runtime.redis.scan_iter("memcube:ratelimit*"):
        runtime.redis.delete(key)
    tight = settings.model_copy(update={"rate_limit_write": "3/minute", "rate_limit_search": "2/minute",
                                        "rate_limit_read": "50/minute"})
    with serve(tight, runtime) as url:
        yield url


def tenant_on(limited: str, server: str, admin: Api) -> Api:
    """A new tenant's key (made on the unlimited server), used against the limited one."""
    made = new_tenant_api(server, admin)
    return Api(limited, made.token, made.tenant)


def test_a_key_over_its_write_limit_gets_429_with_retry_after(limited, server, admin):
    api = tenant_on(limited, server, admin)
    for n in range(3):
        assert api.post("/v1/memories", json={"agent_id": "a", "content": f"w{n}"}).status_code == 201
    refused = api.post("/v1/memories", json={"agent_id": "a", "content": "one too many"})
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and error["details"]["class"] == "write"
    assert "MEMCUBE_RATE_LIMIT_WRITE" in error["message"] and error["request_id"] == refused.headers["x-request-id"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Nothing was stored by the refused request, and reads have a limit of their own.
    listed = api.get("/v1/memories", params={"agent_id": "a"})
    assert listed.status_code == 200 and len(listed.json()["items"]) == 3
    # Searches count apart from writes.
    assert api.post("/v1/search", json={"agent_id": "a", "query": "w"}).status_code == 200
    assert api.post("/v1/context", json={"agent_id": "a", "query": "w", "budget": 500}).status_code == 200
    assert api.post("/v1/search", json={"agent_id": "a", "query": "w"}).status_code == 429


def test_each_key_has_its_own_budget(limited, server, admin):
    one, two = tenant_on(limited, server, admin), tenant_on(limited, server, admin)
    for _ in range(3):
        one.post("/v1/memories", json={"agent_id": "a", "content": "x"})
    assert one.post("/v1/memories", json={"agent_id": "a", "content": "x"}).status_code == 429
    assert two.post("/v1/memories", json={"agent_id": "a", "content": "x"}).status_code == 201


def test_callers_without_a_token_are_limited_by_address(limited):
    anonymous = Api(limited, "", "none")
    anonymous.http.headers.pop("Authorization")
    codes = [anonymous.get(f"/v1/memories/{uuid.uuid4()}").status_code for _ in range(60)]
    assert codes.count(401) == 50 and codes[-1] == 429


def test_without_redis_requests_go_through_and_limits_pause():
    import socket
    import time

    from services.api.ratelimit import RateLimits

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    limits = RateLimits(f"redis://127.0.0.1:{port}/0", read="1/minute", write="1/minute", search="1/minute")
    started = time.monotonic()
    assert [limits.check("write", "key:x") for _ in range(50)] == [None] * 50
    # One failed attempt, then the breaker: fifty checks cost about one connection timeout, not fifty.
    assert time.monotonic() - started < 1.0
    limits.close()
