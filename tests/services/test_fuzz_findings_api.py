"""Inputs schemathesis found answering 500 (tests/test_faults.py, `python -m bench.trust`), now 4xx or 200."""

from urllib.parse import unquote

import pytest


@pytest.mark.parametrize("field", ["content", "tags", "metadata", "kind", "tier", "status", "importance",
                                   "confidence"])
def test_a_patch_that_nulls_a_required_field_is_a_422(api, agent_id, field):
    cube = api.post("/v1/memories", json={"agent_id": agent_id, "content": "a fact"}).json()
    response = api.patch(f"/v1/memories/{cube['id']}", json={field: None})
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]
    assert api.get(f"/v1/memories/{cube['id']}").json()["version"] == 1


def test_a_nul_in_the_tenant_filter_of_the_key_listing_is_a_422(admin):
    response = admin.get("/v1/admin/keys", params={"tenant": "acme\x00"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("agent", ["agent-☃-東京", "quote\"and\\back"])
def test_an_export_of_an_agent_with_any_name_names_its_file(api, agent):
    assert api.post("/v1/memories", json={"agent_id": agent, "content": "exported"}).status_code == 201
    response = api.get("/v1/export", params={"agent_id": agent})
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert disposition.isascii()
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"memcube-{agent}.ndjson"
    assert "exported" in response.text
