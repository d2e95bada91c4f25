"""The MCP server: tools to remember, search, get a context, read and update core blocks, find lessons, record
a trajectory and give a lesson feedback.

Every tool calls the REST API through the SDK (`memcube_client`), so every call passes the API's
authentication, scopes and tenant isolation. Over stdio the key is MEMCUBE_API_KEY; over streamable HTTP each
request carries its own `Authorization: Bearer <key>` (a request without one is refused with a 401), and
nothing identifies a user or tenant in the URL.

Built on `mcp` 2.x (`mcp.server.mcpserver.MCPServer`, the 1.x `FastMCP` renamed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import OrderedDict
from datetime import datetime
from typing import Any, Awaitable, Callable, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from memcube.config import Settings
from memcube.errors import ConfigError
from memcube_client import AsyncMemCube, MemCubeError

INSTRUCTIONS = (
    "Long-term memory for this agent. Call get_context at the start of a task with what the user asked, "
    "remember what is worth keeping (facts about the user, decisions, outcomes), search_memory when you need "
    "something specific, and keep core blocks (persona, human) up to date with update_core. For a multi-step "
    "task, find_lessons first, and record_trajectory when done."
)
# Clients kept per key for the HTTP transport (each holds a connection pool to the API).
MAX_CLIENTS = 64

ClientFor = Callable[[Context], AsyncMemCube]


class Clients:
    """SDK clients by API key: one for stdio, one per key seen over HTTP (least recently used go first)."""

    def __init__(self, base_url: str, fixed_key: str | None) -> None:
        self.base_url = base_url
        self.fixed_key = fixed_key
        self._by_key: OrderedDict[str, AsyncMemCube] = OrderedDict()
        # Evicted clients being closed (a task needs a reference until it is done).
        self._closing: set[asyncio.Task[None]] = set()

    def for_context(self, ctx: Context) -> AsyncMemCube:
        key = self.fixed_key or _bearer(ctx.headers or {})
        if not key:
            raise ToolError("401 unauthorized: send `Authorization: Bearer <MemCube key>`")
        client = self._by_key.pop(key, None) or AsyncMemCube(self.base_url, api_key=key)
        self._by_key[key] = client
        while len(self._by_key) > MAX_CLIENTS:
            _, old = self._by_key.popitem(last=False)
            self._closing.add(asyncio.get_running_loop().create_task(old.aclose()))
            self._closing = {task for task in self._closing if not task.done()}
        return client


def _bearer(headers: Any) -> str | None:
    scheme, _, token = str(headers.get("authorization", "")).partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _agent(agent_id: str | None, default: str | None) -> str:
    agent = agent_id or default
    if not agent:
        raise ToolError("no agent: pass agent_id (or start the server with MEMCUBE_MCP_AGENT_ID)")
    return agent


async def _call(work: Awaitable[Any]) -> Any:
    """Await an SDK call; a refusal of the API becomes a tool error with its status, code and message."""
    try:
        return await work
    except MemCubeError as exc:
        raise ToolError(str(exc)) from exc


def build_server(clients: Clients, *, default_agent: str | None) -> MCPServer:
    """Return the MCP server with MemCube's tools, calling the API with the client `clients` picks per call."""
    server = MCPServer(name="memcube", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool()
    async def remember(content: str, ctx: Context, kind: Literal["semantic", "episodic", "procedural"] = "semantic",
                       agent_id: str | None = None, user_id: str | None = None, tags: list[str] | None = None,
                       importance: float | None = None) -> dict[str, Any]:
        """Store a memory: a fact or preference (semantic), an event (episodic) or a how-to (procedural).
        Returns its id and version."""
        cube = await _call(clients.for_context(ctx).memories.create(
            _agent(agent_id, default_agent), content, kind=kind, user_id=user_id, tags=tags, importance=importance))
        return {"id": str(cube.id), "version": cube.version, "kind": cube.kind}

    @server.tool()
    async def search_memory(query: str, ctx: Context, agent_id: str | None = None, user_id: str | None = None,
                            k: int = 10, kinds: list[str] | None = None) -> list[dict[str, Any]]:
        """Search the agent's memories (hybrid: meaning and words), best first."""
        result = await _call(clients.for_context(ctx).search(
            _agent(agent_id, default_agent), query, user_id=user_id, k=k, kinds=kinds))
        return [{"id": str(h.id), "content": h.content, "kind": h.kind, "score": round(h.score, 4),
                 "occurred_at": _time(h.occurred_at), "derived": [d.content for d in h.derived]} for h in result.hits]

    @server.tool()
    async def get_context(query: str, ctx: Context, budget: int = 2000, agent_id: str | None = None,
                          user_id: str | None = None, session_id: str | None = None) -> str:
        """A ready-made context for the task at hand, within `budget` tokens: core memory, lessons, recalled
        memories and the session's recent messages."""
        context = await _call(clients.for_context(ctx).context(
            _agent(agent_id, default_agent), query, budget, user_id=user_id, session_id=session_id))
        return context.text

    @server.tool()
    async def read_core(ctx: Context, agent_id: str | None = None, user_id: str | None = None) -> dict[str, Any]:
        """The core blocks (always in context) of the agent, or of one user of it, with the token budget."""
        core = await _call(clients.for_context(ctx).core.get(_agent(agent_id, default_agent), user_id=user_id))
        return {"budget_tokens": core.budget_tokens, "tokens": core.tokens,
                "blocks": {b.label: b.content for b in core.blocks}}

    @server.tool()
    async def update_core(label: str, content: str, ctx: Context, agent_id: str | None = None,
                          user_id: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """Create or replace a core block (e.g. `persona`, `human`); every change is a new version."""
        written = await _call(clients.for_context(ctx).core.put(
            _agent(agent_id, default_agent), label, content, user_id=user_id, reason=reason))
        return {"id": str(written.block.id), "label": label, "version": written.block.version,
                "tokens": written.tokens}

    @server.tool()
    async def forget(memory_id: str, ctx: Context, reason: str | None = None) -> dict[str, Any]:
        """Forget a memory (its history keeps what it said)."""
        cube = await _call(clients.for_context(ctx).memories.forget(memory_id, reason=reason))
        return {"id": str(cube.id), "status": cube.status, "version": cube.version}

    @server.tool()
    async def find_lessons(task: str, ctx: Context, agent_id: str | None = None, user_id: str | None = None,
                           limit: int = 5) -> list[dict[str, Any]]:
        """Lessons learnt on tasks like this one (best first): what worked, what to avoid, and how useful each
        has been. Pass the ids you follow to record_trajectory as `lessons_used`."""
        page = await _call(clients.for_context(ctx).lessons.list(
            _agent(agent_id, default_agent), task=task, user_id=user_id, limit=limit))
        return [{"id": str(lesson.id), "lesson": lesson.content, "polarity": lesson.polarity,
                 "utility": round(lesson.utility, 3), "uses": lesson.uses} for lesson in page.items]

    @server.tool()
    async def record_trajectory(task: str, steps: list[dict[str, str]], outcome: Literal["success", "failure",
                                                                                         "partial"],
                                ctx: Context, agent_id: str | None = None, user_id: str | None = None,
                                feedback: str | None = None, lessons_used: list[str] | None = None) -> dict[str, Any]:
        """Record what you did for a task (steps of {action, tool?, thought?, observation?}) and how it went, so
        that lessons are distilled from it; the lessons in `lessons_used` get the outcome as feedback."""
        recorded = await _call(clients.for_context(ctx).trajectories.record(
            _agent(agent_id, default_agent), task, steps, outcome, user_id=user_id, feedback=feedback,
            lessons_used=lessons_used))
        return {"id": str(recorded.id), "lessons_updated": [str(lesson.id) for lesson in recorded.lessons],
                "distillation_job": str(recorded.job_id) if recorded.job_id else None}

    @server.tool()
    async def lesson_feedback(lesson_id: str, outcome: Literal["success", "failure", "partial"], ctx: Context,
                              note: str | None = None) -> dict[str, Any]:
        """Say how it went when you followed a lesson; its utility moves, and useless lessons retire."""
        lesson = await _call(clients.for_context(ctx).lessons.feedback(lesson_id, outcome, note=note))
        return {"id": str(lesson.id), "utility": round(lesson.utility, 3), "uses": lesson.uses,
                "status": lesson.status}

    return server


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class RequireBearer:
    """ASGI guard of the HTTP transport: a request without a bearer token never reaches the MCP session."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if not _bearer(headers):
                body = json.dumps({"error": {"code": "unauthorized", "details": None,
                                             "message": "send `Authorization: Bearer <MemCube key>`"}}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def run(settings: Settings, argv: list[str]) -> int:
    """`memcube mcp [--transport stdio|http]`: serve until the client (stdio) or a signal (HTTP) ends it."""
    parser = argparse.ArgumentParser(prog="memcube mcp", description="Serve MemCube to MCP clients.")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                        help="stdio (the client starts this command) or streamable HTTP at /mcp")
    args = parser.parse_args(argv)
    if args.transport == "stdio":
        if not settings.api_key:
            raise ConfigError("MEMCUBE_API_KEY must be set: the MCP server calls the API with that key")
        server = build_server(Clients(settings.api_url(), settings.api_key), default_agent=settings.mcp_agent_id)
        server.run("stdio")
        return 0
    import uvicorn

    server = build_server(Clients(settings.api_url(), None), default_agent=settings.mcp_agent_id)
    app = RequireBearer(server.streamable_http_app(streamable_http_path="/mcp", host=settings.mcp_host))
    uvicorn.run(app, host=settings.mcp_host, port=settings.mcp_port, log_level=settings.log_level.lower(),
                access_log=False)
    return 0
