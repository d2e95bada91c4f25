"""Routes of /v1/trajectories: what an agent did for a task, in; listed back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from memcube.lessons import trajectory
from memcube.models import TrajectoryCreate, TrajectoryPage, TrajectoryRecorded
from services.api.deps import Conn, Reader, RuntimeDep, Writer
from services.api.params import QueryIdent, RequiredQueryIdent

router = APIRouter(prefix="/v1/trajectories", tags=["lessons"])


@router.post("", status_code=201, response_model=TrajectoryRecorded)
def record_trajectory(body: TrajectoryCreate, conn: Conn, rt: RuntimeDep, who: Writer) -> Any:
    return trajectory.record_trajectory(conn, tenant=who.tenant, actor=who.actor, body=body, embedder=rt.embedder,
                                        settings=rt.settings)


@router.get("", response_model=TrajectoryPage)
def list_trajectories(conn: Conn, who: Reader, agent_id: RequiredQueryIdent,
                      user_id: QueryIdent = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      cursor: Annotated[str | None, Query(max_length=512)] = None) -> Any:
    items, next_cursor = trajectory.list_trajectories(conn, tenant=who.tenant, agent_id=agent_id, user_id=user_id,
                                                      limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}
