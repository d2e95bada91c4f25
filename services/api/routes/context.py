"""POST /v1/context: the assembled context of an agent under a token budget."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request, Response

from memcube import context
from memcube.models import Context, ContextRequest, Principal
from services.api.deps import RuntimeDep, Token, run_authorized

router = APIRouter(prefix="/v1", tags=["context"])


@router.post("/context", response_model=Context)
async def assemble_context(body: ContextRequest, request: Request, rt: RuntimeDep, token: Token) -> Response:
    def work(conn: psycopg.Connection, who: Principal) -> Context:
        return context.assemble_context(conn, rt.redis, tenant=who.tenant, request=body, embedder=rt.embedder,
                                        settings=rt.settings, stats=rt.stats, access=rt.access)

    return await run_authorized(request, token, "read", work)
