"""Routes of /v1/agents: list the agents of a tenant; ask for an agent's consolidation or distillation now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from memcube import agent, jobs
from memcube.lessons.trigger import request_distillation
from memcube.models import AgentSummary, ConsolidateRequest, DistillRequest, JobAccepted, Page
from services.api.deps import Conn, Reader, RuntimeDep, Writer
from services.api.params import Cursor, Limit, PathIdent

router = APIRouter(prefix="/v1/agents", tags=["background work"])


@router.get("", response_model=Page[AgentSummary], tags=["discovery"])
def list_agents(conn: Conn, who: Reader, limit: Limit = 50,
                cursor: Cursor = None) -> Any:
    items, next_cursor = agent.list_agents(conn, tenant=who.tenant, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/{agent_id}/consolidate", status_code=202, response_model=JobAccepted)
def consolidate(agent_id: PathIdent, conn: Conn, who: Writer, rt: RuntimeDep, response: Response,
                body: ConsolidateRequest | None = None) -> Any:
    request = body or ConsolidateRequest()
    job, created = jobs.request_consolidation(conn, tenant=who.tenant, agent_id=agent_id, user_id=request.user_id,
                                              engine=request.engine, actor=who.actor, settings=rt.settings)
    response.headers["Location"] = f"/v1/jobs/{job['id']}"
    return {"job_id": job["id"], "state": job["state"], "existing": not created}


@router.post("/{agent_id}/distill", status_code=202, response_model=JobAccepted)
def distill(agent_id: PathIdent, conn: Conn, who: Writer, rt: RuntimeDep, response: Response,
            body: DistillRequest | None = None) -> Any:
    request = body or DistillRequest()
    job, created = request_distillation(conn, tenant=who.tenant, agent_id=agent_id, user_id=request.user_id,
                                        engine=request.engine, actor=who.actor, settings=rt.settings)
    response.headers["Location"] = f"/v1/jobs/{job['id']}"
    return {"job_id": job["id"], "state": job["state"], "existing": not created}
