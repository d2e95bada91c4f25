"""`memcube mcp` driven by the `mcp` client library: over stdio as a process of its own, and over streamable
HTTP, against the real API (the `server` fixture), authenticated with a MemCube key."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from memcube.config import Settings, env_name
from tests.conftest import run_async

ROOT = Path(__file__).resolve().parents[3]
SETTING_VARS = {env_name(name) for name in Settings.model_fields}


def mcp_env(server: str, key: str | None, agent_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARS}
    env.update(MEMCUBE_URL=server, MEMCUBE_MCP_AGENT_ID=agent_id)
    if key:
        env["MEMCUBE_API_KEY"] = key
    return env


def text(result) -> str:
    return "".join(block.text for block in result.content if getattr(block, "text", None))


async def session_calls(server: str, key: str, agent_id: str):
    params = StdioServerParameters(command=sys.executable, args=["-m", "services.cli", "mcp"],
                                   env=mcp_env(server, key, agent_id), cwd=str(ROOT))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name for tool in (await session.list_tools()).tools}
        remembered = await session.call_tool("remember", {"content": "The user's cat is called Miso",
                                                          "user_id": "u1", "tags": ["pets"]})
        found = await session.call_tool("search_memory", {"query": "what is the cat's name?", "user_id": "u1"})
        core = await session.call_tool("update_core", {"label": "human", "content": "Name: Ana. Has a cat.",
                                                       "user_id": "u1"})
        read_core = await session.call_tool("read_core", {"user_id": "u1"})
        context = await session.call_tool("get_context", {"query": "tell me about the pet", "budget": 300,
                                                          "user_id": "u1"})
        other = await session.call_tool("search_memory", {"query": "cat", "agent_id": "someone-else"})
        missing = await session.call_tool("forget", {"memory_id": "00000000-0000-0000-0000-000000000000"})
        forgotten = await session.call_tool("forget", {"memory_id": remembered.structured_content["id"]})
        steps = [{"tool": "search_flights", "action": "search flights"}, {"tool": "pay_card", "action": "pay"}]
        recorded = await session.call_tool("record_trajectory", {"task": "Book a flight to Rome", "steps": steps,
                                                                 "outcome": "success"})
        lessons = await session.call_tool("find_lessons", {"task": "Book a flight to Rome"})
        return tools, remembered, found, core, read_core, context, other, missing, forgotten, recorded, lessons


def test_tools_over_stdio_act_through_the_api_with_the_key(api, server, agent_id):
    tools, remembered, found, core, read_core, context, other, missing, forgotten, recorded, lessons = run_async(session_calls, server, api.token, agent_id)
    assert tools == {"remember", "search_memory", "get_context", "read_core", "update_core", "forget",
                     "find_lessons", "record_trajectory", "lesson_feedback"}
    assert not remembered.is_error and remembered.structured_content["version"] == 1
    cube = api.get(f"/v1/memories/{remembered.structured_content['id']}", params={"version": 1}).json()
    # Forgotten by now (below), so its content and tags are withheld.
    assert (cube["agent_id"], cube["user_id"], cube["tags"], cube["kind"]) == (agent_id, "u1", [], "semantic")
    assert cube["provenance"]["actor"].startswith("key:")  # written by the API, as the key
    hits = found.structured_content["result"]
    assert hits[0]["content"] == "The user's cat is called Miso"
    assert core.structured_content["version"] == 1
    assert json.loads(text(read_core))["blocks"] == {"human": "Name: Ana. Has a cat."}
    assert "Name: Ana. Has a cat." in text(context) and "Miso" in text(context)
    assert other.structured_content["result"] == []  # another agent of the same tenant holds nothing
    assert missing.is_error and "404 not_found" in text(missing)
    assert forgotten.structured_content["status"] == "forgotten"
    trajectories = api.get("/v1/trajectories", params={"agent_id": agent_id}).json()["items"]
    assert [t["id"] for t in trajectories] == [recorded.structured_content["id"]]
    assert lessons.structured_content["result"] == []  # none distilled yet


def test_lesson_tools_over_stdio(api, server, agent_id, runtime):
    from memcube.lessons.distill import run_distillation

    steps = [{"tool": "search_flights", "action": "search flights", "observation": "3 found"},
             {"tool": "pay_card", "action": "pay by card", "observation": "ticket issued"}]
    assert api.post("/v1/trajectories", json={"agent_id": agent_id, "task": "Book a flight from Paris to Rome",
                                              "steps": steps, "outcome": "success"}).status_code == 201
    job = api.post(f"/v1/agents/{agent_id}/distill", json={"engine": "heuristic"}).json()
    run_distillation(runtime.pool, job_id=job["job_id"], embedder=runtime.embedder, settings=runtime.settings,
                     llm=None)

    async def calls():
        params = StdioServerParameters(command=sys.executable, args=["-m", "services.cli", "mcp"],
                                       env=mcp_env(server, api.token, agent_id), cwd=str(ROOT))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            found = await session.call_tool("find_lessons", {"task": "Book a flight from Lyon to Rome"})
            [lesson] = found.structured_content["result"]
            feedback = await session.call_tool("lesson_feedback", {"lesson_id": lesson["id"], "outcome": "success"})
            return lesson, feedback

    lesson, feedback = run_async(calls)
    assert "search_flights" in lesson["lesson"] or "flight" in lesson["lesson"]
    assert feedback.structured_content["uses"] == lesson["uses"] + 1


def test_a_wrong_key_is_refused_by_the_api(server, agent_id):
    async def call():
        params = StdioServerParameters(command=sys.executable, args=["-m", "services.cli", "mcp"],
                                       env=mcp_env(server, "mc_not_a_key", agent_id), cwd=str(ROOT))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await session.call_tool("search_memory", {"query": "anything"})

    result = run_async(call)
    assert result.is_error and "401 unauthorized" in text(result)


def test_stdio_needs_a_key(server, agent_id):
    result = subprocess.run([sys.executable, "-m", "services.cli", "mcp"], env=mcp_env(server, None, agent_id),
                            capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "MEMCUBE_API_KEY must be set" in result.stderr


def test_streamable_http_needs_a_bearer_key_per_request(api, server, agent_id, tmp_path):
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = mcp_env(server, None, agent_id) | {"MEMCUBE_MCP_PORT": str(port)}
    log = (tmp_path / "mcp.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "mcp", "--transport", "http"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                refused = httpx.post(url, json={})
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "mcp.log").read_text()
                time.sleep(0.2)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"

        async def call():
            headers = {"Authorization": f"Bearer {api.token}"}
            async with httpx.AsyncClient(headers=headers) as http, \
                    streamable_http_client(url, http_client=http) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                await session.call_tool("remember", {"content": "Over HTTP"})
                return await session.call_tool("search_memory", {"query": "over http"})

        result = run_async(call)
        assert result.structured_content["result"][0]["content"] == "Over HTTP"
    finally:
        process.terminate()
        process.wait(30)
        log.close()
