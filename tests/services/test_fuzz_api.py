"""No input makes the API answer 500: random JSON, random strings and random query values."""

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import new_tenant_api

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "a\x00b", "é", "☃", "🙂", "' OR 1=1 --", "%s", "{}", "\\", "1e999", "-0", "NaN"])
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True,
                                                                               allow_infinity=True) | text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner,
                                                                                               max_size=4),
                           max_leaves=12)
FIELDS = ["agent_id", "user_id", "session_id", "kind", "tier", "content", "data", "tags", "metadata", "artifact",
          "occurred_at", "valid_from", "valid_to", "importance", "confidence", "embedding", "status", "reason",
          "query", "k", "kinds", "tiers", "statuses", "as_of", "explain", "ids", "target_id", "type", "items"]
bodies = st.dictionaries(st.sampled_from(FIELDS) | text, json_values, max_size=8) | json_values


def dumps(value) -> bytes:
    # allow_nan: send NaN/Infinity literals too, as a careless client would.
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def client(server, admin):
    api = new_tenant_api(server, admin)
    created = api.post("/v1/memories", json={"agent_id": "fuzz", "content": "seed memory"}).json()
    api.seed_id = created["id"]
    yield api
    api.http.close()


def check(response):
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details", "request_id"}


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@FUZZ
@given(body=bodies, path=st.sampled_from(["/v1/memories", "/v1/memories/batch", "/v1/search", "/v1/memories/fuse",
                                          "/v1/admin/keys", "LINK", "PATCH"]))
def test_random_bodies_never_cause_a_500(client, body, path):
    if path == "LINK":
        response = client.post(f"/v1/memories/{client.seed_id}/links", content=dumps(body),
                               headers={"content-type": "application/json"})
    elif path == "PATCH":
        response = client.patch(f"/v1/memories/{client.seed_id}", content=dumps(body),
                                headers={"content-type": "application/json"})
    else:
        response = client.post(path, content=dumps(body), headers={"content-type": "application/json"})
    check(response)


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["agent_id", "user_id", "session_id", "kind", "tier", "status", "tag",
                                               "limit", "cursor", "version", "as_of", "erase", "reason"]),
                              text, max_size=5),
       target=st.sampled_from(["list", "get", "delete", "history"]), if_match=st.none() | text)
def test_random_query_values_never_cause_a_500(client, params, target, if_match):
    headers = {"If-Match": if_match.encode("utf-8", "surrogatepass").decode("latin-1")} if if_match else {}
    path = {"list": "/v1/memories", "get": f"/v1/memories/{client.seed_id}",
            "delete": f"/v1/memories/{client.seed_id}", "history": f"/v1/memories/{client.seed_id}/history"}[target]
    method = "DELETE" if target == "delete" else "GET"
    try:
        response = client.request(method, path, params=params, headers=headers)
    except (UnicodeEncodeError, ValueError, httpx.LocalProtocolError):
        return  # the client itself cannot send this header or URL
    if any(not_http(c) for c in headers.get("If-Match", "")):
        # Not a valid HTTP header value (RFC 9110 5.5): the server's HTTP parser refuses the request
        # before the app sees it, so it cannot carry the API's error shape (README, Errors and limits).
        assert response.status_code == 400, response.text
        return
    check(response)


def not_http(char: str) -> bool:
    """A control character, which a header value may not hold (tab excepted)."""
    return (ord(char) < 32 and char != "\t") or ord(char) == 127
