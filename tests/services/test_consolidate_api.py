"""POST /v1/agents/{agent_id}/consolidate through the real HTTP app: what is refused at request time (an agent
or user without episodes, an engine that is not configured), and `auto`. The queued jobs are run here, in
process, as a worker would run them (tests/workers runs them through Celery)."""

from uuid import UUID

from memcube.consolidation.run import run_consolidation
from tests.conftest import new_tenant_api


def remember(api, agent_id, content, **fields):
    response = api.post("/v1/memories", json={"agent_id": agent_id, "content": content, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def consolidate(api, agent_id, **body):
    return api.post(f"/v1/agents/{agent_id}/consolidate", json=body)


def test_an_agent_or_user_without_episodes_is_a_404_and_queues_nothing(api, agent_id, server, admin):
    nothing = consolidate(api, agent_id)
    assert nothing.status_code == 404
    error = nothing.json()["error"]
    assert error["code"] == "not_found" and agent_id in error["message"] and "no episodes" in error["message"]
    remember(api, agent_id, "I live in Oslo.", user_id="ana")
    remember(api, agent_id, "The user is a vegetarian.", user_id="bo", kind="semantic")  # a fact, not an episode
    assert consolidate(api, agent_id, user_id="bo").status_code == 404
    assert consolidate(api, agent_id, user_id="cy").json()["error"]["message"] == \
        f"user 'cy' of agent {agent_id!r} has no episodes to consolidate"
    # Another tenant's episodes are not this tenant's.
    other = new_tenant_api(server, admin)
    assert consolidate(other, agent_id).status_code == 404
    assert consolidate(api, agent_id, user_id="ana").status_code == 202
    whole = consolidate(api, agent_id)
    assert whole.status_code == 202
    job = api.get(f"/v1/jobs/{whole.json()['job_id']}").json()
    assert (job["agent_id"], job["user_id"], job["state"], job["trigger"]) == (agent_id, None, "queued", "api")


def test_forgotten_episodes_do_not_count(api, agent_id):
    episode = remember(api, agent_id, "I live in Oslo.")
    assert api.delete(f"/v1/memories/{episode['id']}").status_code in (200, 204)
    assert consolidate(api, agent_id).status_code == 404


def test_the_llm_engine_without_an_llm_is_a_422_that_names_the_setting(api, agent_id, settings):
    assert settings.llm_base_url is None
    remember(api, agent_id, "I live in Oslo.")
    refused = consolidate(api, agent_id, engine="llm")
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_input" and "MEMCUBE_LLM_BASE_URL" in error["message"]
    assert error["details"] == {"setting": "MEMCUBE_LLM_BASE_URL"}
    # Refused before anything was queued: an accepted request next is a new job.
    assert consolidate(api, agent_id, engine="heuristic").json()["existing"] is False
    assert consolidate(api, agent_id, engine="magic").status_code == 422


def test_auto_is_the_configured_engine_decided_when_the_job_runs(api, agent_id, runtime, settings):
    remember(api, agent_id, "I live in Oslo.", user_id="ana")
    accepted = consolidate(api, agent_id, user_id="ana", engine="auto")
    assert accepted.status_code == 202 and accepted.json()["existing"] is False
    # `auto` and no engine ask for the same thing: the job already queued is returned.
    again = consolidate(api, agent_id, user_id="ana")
    assert again.json() == {**accepted.json(), "existing": True}
    job_id = accepted.json()["job_id"]
    assert api.get(f"/v1/jobs/{job_id}").json()["engine"] is None  # queued: decided when it runs
    run_consolidation(runtime.pool, job_id=UUID(job_id), embedder=runtime.embedder, settings=settings, llm=None)
    job = api.get(f"/v1/jobs/{job_id}").json()
    # MEMCUBE_CONSOLIDATE_ENGINE is `auto` and no LLM is configured here: the heuristic engine.
    assert (settings.consolidate_engine, job["state"], job["engine"]) == ("auto", "succeeded", "heuristic")
    assert job["counts"]["added"] == 1
