"""Agents: the list, one agent (core, sessions, recent memories, lessons), one session's working memory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator

from memcube import agent, core, cube, session
from memcube.lessons import serve
from memcube.models import CubeFilter, check_text
from services.dashboard.deps import PREFIX, DashboardRoute, View
from services.dashboard.render import render

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

Ident = Annotated[str, Query(min_length=1, max_length=256), AfterValidator(check_text)]
Cursor = Annotated[str | None, Query(max_length=512)]
def _optional(value: str | None) -> str | None:
    return value or None


def _optional_text(value: str | None) -> str | None:
    return check_text(value) if value else None


OptionalIdent = Annotated[str | None, Query(max_length=256), AfterValidator(_optional_text)]


@router.get("/agents")
def agents_page(request: Request, viewer: View, cursor: Cursor = None) -> Any:
    agents, next_cursor = agent.list_agents(viewer.conn, tenant=viewer.tenant, limit=50, cursor=_optional(cursor))
    return render(request, viewer, "agents.html", agents=agents, cursor=cursor, next_cursor=next_cursor)


@router.get("/agent")
def agent_page(request: Request, viewer: View, agent_id: Ident,
               user_id: OptionalIdent = None,
               sessions_cursor: Cursor = None) -> Any:
    user_id = _optional(user_id)
    conn, tenant = viewer.conn, viewer.tenant
    summary = agent.get_agent(conn, tenant=tenant, agent_id=agent_id)
    sessions, sessions_next = session.list_sessions(conn, tenant=tenant, agent_id=agent_id, limit=20,
                                                    cursor=_optional(sessions_cursor))
    recent, _ = cube.list_cubes(conn, tenant=tenant, filters=CubeFilter(agent_id=agent_id, status="any"), limit=20,
                                cursor=None)
    lessons = serve.find_lessons(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, task=None, status="any",
                                 limit=100, cursor=None, embedder=viewer.runtime.embedder).items
    return render(request, viewer, "agent.html", agent=summary, user_id=user_id,
                  users=agent.list_agent_users(conn, tenant=tenant, agent_id=agent_id),
                  core=core.get_core(conn, tenant=tenant, agent_id=agent_id, user_id=user_id,
                                     settings=viewer.runtime.settings),
                  sessions=sessions, sessions_next=sessions_next, recent=recent, lessons=lessons)


@router.get("/session")
def session_page(request: Request, viewer: View, session_id: Ident) -> Any:
    working = session.working_memory(viewer.conn, viewer.runtime.redis, tenant=viewer.tenant, session_id=session_id,
                                     agent_id=None, settings=viewer.runtime.settings)
    return render(request, viewer, "session.html", working=working)
