"""POST /v1/context: the assembled context of an agent under a token budget."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from memcube import context
from memcube.models import Context, ContextRequest
from services.api.deps import Conn, Reader, RuntimeDep

router = APIRouter(prefix="/v1", tags=["context"])


@router.post("/context", response_model=Context)
def assemble_context(body: ContextRequest, conn: Conn, rt: RuntimeDep, who: Reader) -> Any:
    return context.assemble_context(conn, rt.redis, tenant=who.tenant, request=body, embedder=rt.embedder,
                                    settings=rt.settings, stats=rt.stats, access=rt.access)
