"""Jobs: what background work did (state, trigger, engine, counts, tokens, errors, attempts), and running it now."""

from __future__ import annotations

from typing import Annotated, Any, Callable, Literal
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import AfterValidator, BaseModel, Field, model_validator

from memcube import agent, jobs
from memcube.lessons.trigger import request_distillation
from memcube.models import Engine, JobFilter, JobKind, JobState, check_text
from services.dashboard.deps import PREFIX, Change, DashboardRoute, View, Viewer, blanks_to_none
from services.dashboard.render import render

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)
STATES = ("queued", "running", "succeeded", "failed")


def _consolidate(viewer: Viewer, agent_id: str, user_id: str | None, engine: str | None) -> dict[str, Any]:
    job, _ = jobs.request_consolidation(viewer.conn, tenant=viewer.tenant, agent_id=agent_id, user_id=user_id,
                                        engine=engine, actor=viewer.actor, settings=viewer.runtime.settings)
    return job


def _distill(viewer: Viewer, agent_id: str, user_id: str | None, engine: str | None) -> dict[str, Any]:
    job, _ = request_distillation(viewer.conn, tenant=viewer.tenant, agent_id=agent_id, user_id=user_id,
                                  engine=engine, actor=viewer.actor, settings=viewer.runtime.settings)
    return job


# The background work an operator may start from the Jobs page, by job kind.
RUNNABLE: dict[str, Callable[[Viewer, str, str | None, str | None], dict[str, Any]]] = {
    "consolidate": _consolidate,
    "distill": _distill,
}


class JobQuery(BaseModel):
    agent_id: Annotated[str, Field(max_length=256), AfterValidator(check_text)] | None = None
    state: JobState | None = None
    kind: JobKind | None = None
    cursor: Annotated[str, Field(max_length=512)] | None = None

    _blanks = model_validator(mode="before")(blanks_to_none)


@router.get("/jobs")
def jobs_page(request: Request, viewer: View, params: Annotated[JobQuery, Query()]) -> Any:
    items, next_cursor = jobs.list_jobs(viewer.conn, tenant=viewer.tenant, limit=50, cursor=params.cursor,
                                        filters=JobFilter(agent_id=params.agent_id, state=params.state,
                                                          kind=params.kind))
    return render(request, viewer, "jobs.html", jobs=items, next_cursor=next_cursor,
                  params=params.model_dump(mode="json"), states=STATES, runnable=list(RUNNABLE),
                  agent_ids=agent.list_agent_ids(viewer.conn, tenant=viewer.tenant))


@router.get("/jobs/{job_id}")
def job_page(request: Request, viewer: View, job_id: UUID) -> Any:
    return render(request, viewer, "job.html", job=jobs.get_job(viewer.conn, tenant=viewer.tenant, job_id=job_id))


Ident = Annotated[str, Form(min_length=1, max_length=256), AfterValidator(check_text)]


@router.post("/jobs/run")
def run_job(viewer: Change, kind: Annotated[Literal[tuple(RUNNABLE)], Form()],  # type: ignore[valid-type]
            agent_id: Ident, user_id: Annotated[str | None, Form(max_length=256)] = None,
            engine: Annotated[Engine | None, Form()] = None) -> Any:
    job = RUNNABLE[kind](viewer, agent_id, check_text(user_id) if user_id else None, engine)
    return RedirectResponse(f"{PREFIX}/jobs/{job['id']}", status_code=303)
