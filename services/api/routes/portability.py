"""GET /v1/export and POST /v1/import: a tenant's memory as NDJSON, out and back in."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from memcube import portability
from memcube.models.portability import ImportResult
from services.api.deps import Conn, Reader, RuntimeDep, Writer
from services.api.params import QueryIdent

router = APIRouter(prefix="/v1", tags=["export and import"])
NDJSON = "application/x-ndjson"


@router.get("/export", response_class=StreamingResponse,
            responses={200: {"content": {NDJSON: {}}, "description": "the export, one JSON record a line"}})
def export(rt: RuntimeDep, who: Reader, agent_id: QueryIdent = None) -> StreamingResponse:
    # Forgotten memories are withheld from a key without the admin scope, as everywhere they are served; a
    # complete backup is an admin key's export.
    lines = portability.stream_export(rt.pool, tenant=who.tenant, agent_id=agent_id,
                                      withhold_forgotten="admin" not in who.scopes)
    return StreamingResponse(lines, media_type=NDJSON,
                             headers={"Content-Disposition": _attachment(f"memcube-{agent_id or who.tenant}.ndjson")})


def _attachment(filename: str) -> str:
    """A Content-Disposition for any file name: headers are Latin-1, so the name goes as UTF-8 in `filename*`
    (RFC 6266), with a printable-ASCII `filename` for clients that do not read it."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.post("/import", response_model=ImportResult,
             openapi_extra={"requestBody": {"required": True, "content": {NDJSON: {"schema": {"type": "string"}}}}})
async def import_(request: Request, conn: Conn, rt: RuntimeDep, who: Writer) -> Any:
    body = await request.body()
    return await run_in_threadpool(portability.import_export, conn, tenant=who.tenant, body=body,
                                   embedder=rt.embedder, settings=rt.settings)
