"""/healthz, /readyz and /metrics."""

import httpx


def test_health_and_readiness(server):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "redis", "broker"} and all(c["ok"] for c in checks.values())


def test_metrics_count_requests_per_route_template(server, api, agent_id):
    api.get("/v1/memories", params={"agent_id": agent_id})
    api.get(f"/v1/memories/{'0' * 8}-0000-0000-0000-{'0' * 12}")
    text = httpx.get(f"{server}/metrics").text
    assert 'memcube_http_requests_total{method="GET",route="/v1/memories",status="200"}' in text
    assert 'route="/v1/memories/{cube_id}",status="404"' in text
    assert "memcube_http_request_duration_seconds_bucket" in text
