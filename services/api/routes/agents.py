"""Routes of /v1/agents/{agent_id}/consolidate: ask for consolidation now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from memcube import jobs
from memcube.models import ConsolidateRequest, JobAccepted
from services.api.deps import Conn, RuntimeDep, Writer
from services.api.params import PathIdent

router = APIRouter(prefix="/v1/agents", tags=["background work"])


@router.post("/{agent_id}/consolidate", status_code=202, response_model=JobAccepted)
def consolidate(agent_id: PathIdent, conn: Conn, who: Writer, rt: RuntimeDep, response: Response,
                body: ConsolidateRequest | None = None) -> Any:
    request = body or ConsolidateRequest()
    job, created = jobs.request_consolidation(conn, tenant=who.tenant, agent_id=agent_id, user_id=request.user_id,
                                              engine=request.engine, actor=who.actor, settings=rt.settings)
    response.headers["Location"] = f"/v1/jobs/{job['id']}"
    return {"job_id": job["id"], "state": job["state"], "existing": not created}
