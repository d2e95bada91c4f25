"""Routes of /v1/agents/{agent_id}/core: read a scope's core, read and write a labelled block."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Header, Request, Response

from memcube import core
from memcube.cube import check_content
from memcube.models import CoreBlockPut, CoreBlockWritten, CoreMemory, MemCube, Principal
from services.api.deps import Answer, Conn, Reader, RuntimeDep, Token, run_authorized
from services.api.params import PathIdent, PathLabel, QueryIdent
from services.api.routes.memories import parse_if_match

router = APIRouter(prefix="/v1/agents", tags=["core"])


@router.get("/{agent_id}/core", response_model=CoreMemory)
def get_core(agent_id: PathIdent, conn: Conn, rt: RuntimeDep, who: Reader, user_id: QueryIdent = None) -> Any:
    return core.get_core(conn, tenant=who.tenant, agent_id=agent_id, user_id=user_id, settings=rt.settings)


@router.get("/{agent_id}/core/{label}", response_model=MemCube)
def get_core_block(agent_id: PathIdent, label: PathLabel, conn: Conn, who: Reader, response: Response,
                   user_id: QueryIdent = None) -> Any:
    block = core.get_block(conn, tenant=who.tenant, agent_id=agent_id, user_id=user_id, label=label)
    response.headers["ETag"] = f'"{block["version"]}"'
    return block


@router.put("/{agent_id}/core/{label}", response_model=CoreBlockWritten)
async def put_core_block(agent_id: PathIdent, label: PathLabel, body: CoreBlockPut, request: Request, rt: RuntimeDep,
                         token: Token, user_id: QueryIdent = None,
                         if_match: Annotated[str | None, Header()] = None) -> Response:
    version = parse_if_match(if_match)

    def prepare(_: Principal) -> Any:
        check_content(body.content, rt.settings)
        return rt.embedder.embed([body.content])[0]

    def work(conn: psycopg.Connection, who: Principal, vector: Any) -> Answer:
        written, created = core.put_block(conn, tenant=who.tenant, actor=who.actor, agent_id=agent_id,
                                          user_id=user_id, label=label, body=body, embedder=rt.embedder,
                                          settings=rt.settings, if_match=version, vector=vector)
        return Answer(written, 201 if created else 200, {"ETag": f'"{written.block.version}"'})

    return await run_authorized(request, token, "write", work, prepare=prepare)
