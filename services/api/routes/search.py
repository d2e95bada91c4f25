"""POST /v1/search: hybrid search of one scope."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from memcube import search as search_service
from memcube.errors import Forbidden
from memcube.models import Hit, Principal, SearchRequest
from services.api.deps import RuntimeDep, Token, run_authorized

router = APIRouter(prefix="/v1", tags=["search"])


class SearchResponse(BaseModel):
    hits: list[Hit]
    plan: str


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, request: Request, rt: RuntimeDep, token: Token) -> Response:
    def work(conn: psycopg.Connection, who: Principal) -> SearchResponse:
        if body.statuses and "forgotten" in body.statuses and "admin" not in who.scopes:
            # Forgetting is a soft delete: a forgotten memory's content is served to an admin only, as by GET.
            raise Forbidden("searching forgotten memories needs a key with the `admin` scope",
                            details={"needed": "admin"})
        result = search_service.search(conn, tenant=who.tenant, request=body, embedder=rt.embedder,
                                       settings=rt.settings, stats=rt.stats, access=rt.access)
        return SearchResponse(hits=result.hits, plan=result.plan)

    return await run_authorized(request, token, "read", work)
