"""Routes of /v1/sessions: list an agent's sessions, append messages, read the working window, write the
scratchpad."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request, Response

from memcube import session
from memcube.models import (Appended, MessageAppend, Page, Principal, Scratchpad, ScratchpadPut, SessionSummary,
                            WorkingMemory)
from services.api.deps import Answer, Conn, Reader, RuntimeDep, Token, Writer, run_authorized
from services.api.params import Cursor, Limit, PathIdent, QueryIdent, RequiredQueryIdent

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

@router.get("", response_model=Page[SessionSummary])
def list_sessions(agent_id: RequiredQueryIdent, conn: Conn, who: Reader, user_id: QueryIdent = None,
                  limit: Limit = 50,
                  cursor: Cursor = None) -> Any:
    items, next_cursor = session.list_sessions(conn, tenant=who.tenant, agent_id=agent_id, user_id=user_id,
                                               limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/{session_id}/messages", status_code=201, response_model=Appended)
async def append_messages(session_id: PathIdent, body: MessageAppend, request: Request, rt: RuntimeDep,
                          token: Token) -> Response:
    def work(conn: psycopg.Connection, who: Principal, prepared: session.PreparedAppend) -> Answer:
        return Answer(session.append_messages(conn, rt.redis, tenant=who.tenant, actor=who.actor,
                                              session_id=session_id, request=body, embedder=rt.embedder,
                                              settings=rt.settings, prepared=prepared), 201)

    return await run_authorized(request, token, "write", work,
                                prepare=lambda _: session.prepare_append(body, rt.embedder, rt.settings))


@router.get("/{session_id}/working", response_model=WorkingMemory)
def working_memory(session_id: PathIdent, conn: Conn, rt: RuntimeDep, who: Reader,
                   agent_id: QueryIdent = None) -> Any:
    return session.working_memory(conn, rt.redis, tenant=who.tenant, session_id=session_id, agent_id=agent_id,
                                  settings=rt.settings)


@router.put("/{session_id}/scratchpad", response_model=Scratchpad)
def put_scratchpad(session_id: PathIdent, body: ScratchpadPut, conn: Conn, rt: RuntimeDep, who: Writer) -> Any:
    return session.set_scratchpad(conn, tenant=who.tenant, session_id=session_id, body=body, settings=rt.settings)
