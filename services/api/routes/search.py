"""POST /v1/search: hybrid search of one scope."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from memcube import search as search_service
from memcube.models import Hit, SearchRequest
from services.api.deps import Conn, Reader, RuntimeDep

router = APIRouter(prefix="/v1", tags=["search"])


class SearchResponse(BaseModel):
    hits: list[Hit]
    plan: str


@router.post("/search", response_model=SearchResponse, response_model_exclude_none=False)
def search(body: SearchRequest, conn: Conn, rt: RuntimeDep, who: Reader) -> Any:
    result = search_service.search(conn, tenant=who.tenant, request=body, embedder=rt.embedder,
                                   settings=rt.settings, stats=rt.stats, access=rt.access)
    return {"hits": result.hits, "plan": result.plan}
