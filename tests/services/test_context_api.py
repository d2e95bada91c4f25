"""POST /v1/context through the real HTTP app (and random input to every virtual-context route)."""

import time
import urllib.parse

import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.services.test_fuzz_api import check, dumps, json_values, text


def setup_agent(api, agent_id):
    api.put(f"/v1/agents/{agent_id}/core/persona", json={"content": "You are Juno, a concise travel assistant."})
    api.put(f"/v1/agents/{agent_id}/core/human", params={"user_id": "ana"},
            json={"content": "Name: Ana. Vegetarian."})
    fact = api.post("/v1/memories", json={"agent_id": agent_id, "user_id": "ana", "kind": "semantic",
                                          "content": "Ana's favourite city is Lyon."}).json()
    api.post("/v1/sessions/trip/messages", json={"agent_id": agent_id, "user_id": "ana", "messages": [
        {"role": "user", "content": "Find me a vegetarian restaurant near the station."},
        {"role": "assistant", "content": "Sure, which city?"}]})
    return fact


def test_context_has_sections_token_counts_and_fits(api, agent_id):
    fact = setup_agent(api, agent_id)
    response = api.post("/v1/context", json={"agent_id": agent_id, "session_id": "trip",
                                             "query": "which city does Ana like?", "budget": 500})
    assert response.status_code == 200, response.text
    ctx = response.json()
    assert list(ctx["sections"]) == ["core", "lessons", "recalled", "working"]
    assert ctx["user_id"] == "ana"
    assert [i["label"] for i in ctx["sections"]["core"]["items"]] == ["persona", "human"]
    assert fact["id"] in [i["id"] for i in ctx["sections"]["recalled"]["items"]]
    assert [i["turn"] for i in ctx["sections"]["working"]["items"]] == [0, 1]
    assert ctx["tokens"] == sum(s["tokens"] for s in ctx["sections"].values()) <= 500
    assert ctx["text"] == "\n\n".join(s["text"] for s in ctx["sections"].values() if s["text"])


def test_context_records_accesses(api, agent_id, settings):
    fact = setup_agent(api, agent_id)
    before = api.get(f"/v1/memories/{fact['id']}").json()["access_count"]
    api.post("/v1/context", json={"agent_id": agent_id, "user_id": "ana", "query": "favourite city", "budget": 300})
    deadline = time.monotonic() + 10
    while api.get(f"/v1/memories/{fact['id']}").json()["access_count"] == before:
        assert time.monotonic() < deadline, "the access was never written"
        time.sleep(settings.access_flush_seconds)


def test_small_budgets_keep_core_or_say_the_minimum(api, agent_id):
    setup_agent(api, agent_id)
    refused = api.post("/v1/context", json={"agent_id": agent_id, "user_id": "ana", "query": "x", "budget": 3})
    assert refused.status_code == 422
    error = refused.json()["error"]
    minimum = error["details"]["minimum"]
    assert f"at least {minimum}" in error["message"]
    ctx = api.post("/v1/context", json={"agent_id": agent_id, "user_id": "ana", "query": "Ana's favourite city",
                                        "budget": minimum}).json()
    assert ctx["tokens"] == minimum and len(ctx["sections"]["core"]["items"]) == 2
    assert ctx["sections"]["recalled"]["items"] == [] and ctx["sections"]["recalled"]["dropped"] >= 1


def test_unknown_agent_session_and_bad_budgets(api, agent_id):
    assert api.post("/v1/context", json={"agent_id": "ghost", "query": "x", "budget": 100}).status_code == 404
    setup_agent(api, agent_id)
    assert api.post("/v1/context", json={"agent_id": agent_id, "session_id": "nope", "query": "x",
                                         "budget": 100}).status_code == 404
    assert api.post("/v1/context", json={"agent_id": agent_id, "user_id": "bo", "session_id": "trip",
                                         "query": "x", "budget": 100}).status_code == 404
    for budget in (0, -5, 10**9, "many"):
        assert api.post("/v1/context", json={"agent_id": agent_id, "query": "x",
                                             "budget": budget}).status_code == 422


FUZZ = hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
VC_FIELDS = ["agent_id", "user_id", "session_id", "query", "budget", "messages", "role", "content", "name",
             "created_at", "metadata", "reason"]


@FUZZ
@given(body=st.dictionaries(st.sampled_from(VC_FIELDS), json_values, max_size=6) | json_values,
       path=st.sampled_from(["/v1/context", "/v1/sessions/fuzz/messages", "/v1/sessions/fuzz/scratchpad",
                             "/v1/agents/fuzz/core/persona"]))
def test_random_bodies_never_cause_a_500(api, body, path):
    method = "PUT" if path.endswith(("scratchpad", "persona")) else "POST"
    check(api.request(method, path, content=dumps(body), headers={"content-type": "application/json"}))


@FUZZ
@given(session_id=text, agent_id=text, label=text)
def test_random_path_and_query_values_never_cause_a_500(api, session_id, agent_id, label):
    quote = lambda value: urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")  # noqa: E731
    for method, path, params in (("GET", f"/v1/sessions/{quote(session_id)}/working", {"agent_id": agent_id}),
                                 ("GET", f"/v1/agents/{quote(agent_id)}/core", {"user_id": session_id}),
                                 ("PUT", f"/v1/agents/{quote(agent_id)}/core/{quote(label)}", {})):
        try:
            response = api.request(method, path, params=params, json={"content": "x"})
        except (UnicodeEncodeError, ValueError, httpx.LocalProtocolError):
            continue  # the client itself cannot send this URL
        check(response)


def _state(runtime, tenant):
    """Every cube of a tenant as (id, version, status, tier), the version rows, and the jobs: what a write changes."""
    with runtime.pool.connection() as conn:
        cubes = conn.execute("SELECT id, version, status, tier FROM memcubes WHERE tenant = %s ORDER BY id",
                             (tenant,)).fetchall()
        versions = conn.execute("SELECT count(*) AS n FROM memcube_versions WHERE tenant = %s", (tenant,)).fetchone()
        jobs = conn.execute("SELECT count(*) AS n FROM jobs WHERE tenant = %s", (tenant,)).fetchone()
    return cubes, versions["n"], jobs["n"]


def test_a_read_key_writes_nothing_even_where_paging_would_promote(server, admin, api, agent_id, runtime, settings,
                                                                   conn):
    from memcube import paging
    from tests.conftest import Api

    fact = setup_agent(api, agent_id)
    before = _state(runtime, api.tenant)
    reader = admin.post("/v1/admin/keys", json={"tenant": api.tenant, "scopes": ["read"], "name": "reader"}).json()
    read_api = Api(server, reader["token"], api.tenant)
    for _ in range(settings.paging_min_accesses + 3):
        r = read_api.post("/v1/context", json={"agent_id": agent_id, "session_id": "trip",
                                               "query": "Ana's favourite city", "budget": 300})
        assert r.status_code == 200, r.text
        assert fact["id"] in [i["id"] for i in r.json()["sections"]["recalled"]["items"]]
    runtime.access.flush()
    # No version, no status or tier change, no job: the same cubes at the same versions.
    assert _state(runtime, api.tenant) == before
    # Yet the fact has earned core: paging (a write, in a transaction rolled back here) would bring it in.
    moves = paging.apply_paging(conn, tenant=api.tenant, agent_id=agent_id, user_id="ana", settings=settings)
    assert [(str(m.id), m.tier) for m in moves] == [(fact["id"], "core")]
    read_api.http.close()


def test_a_read_key_assembling_contexts_never_writes_a_version(server, admin, api, agent_id):
    from tests.conftest import Api

    fact = setup_agent(api, agent_id)
    reader = admin.post("/v1/admin/keys", json={"tenant": api.tenant, "scopes": ["read"], "name": "reader"}).json()
    read_api = Api(server, reader["token"], api.tenant)
    for _ in range(6):  # far past MEMCUBE_PAGING_MIN_ACCESSES
        r = read_api.post("/v1/context", json={"agent_id": agent_id, "user_id": "ana",
                                               "query": "Ana's favourite city", "budget": 300})
        assert r.status_code == 200, r.text
    assert len(api.get(f"/v1/memories/{fact['id']}/history").json()["items"]) == 1
    assert api.get(f"/v1/memories/{fact['id']}").json()["tier"] == "archival"
