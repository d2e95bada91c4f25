"""Routes of /v1/agents/{agent_id}/consolidate and /distill: ask for background work now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from memcube import jobs
from memcube.lessons.trigger import enqueue_distillation
from memcube.models import ConsolidateRequest, DistillRequest, JobAccepted
from services.api.deps import Conn, Writer
from services.api.params import PathIdent

router = APIRouter(prefix="/v1/agents", tags=["background work"])


@router.post("/{agent_id}/consolidate", status_code=202, response_model=JobAccepted)
def consolidate(agent_id: PathIdent, conn: Conn, who: Writer, response: Response,
                body: ConsolidateRequest | None = None) -> Any:
    request = body or ConsolidateRequest()
    job, created = jobs.enqueue_consolidation(conn, tenant=who.tenant, agent_id=agent_id, user_id=request.user_id,
                                              trigger="api", engine=request.engine, actor=who.actor)
    response.headers["Location"] = f"/v1/jobs/{job['id']}"
    return {"job_id": job["id"], "state": job["state"], "existing": not created}


@router.post("/{agent_id}/distill", status_code=202, response_model=JobAccepted)
def distill(agent_id: PathIdent, conn: Conn, who: Writer, response: Response,
            body: DistillRequest | None = None) -> Any:
    request = body or DistillRequest()
    job, created = enqueue_distillation(conn, tenant=who.tenant, agent_id=agent_id, user_id=request.user_id,
                                        trigger="api", engine=request.engine, actor=who.actor)
    response.headers["Location"] = f"/v1/jobs/{job['id']}"
    return {"job_id": job["id"], "state": job["state"], "existing": not created}
