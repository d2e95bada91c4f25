"""Routes of /v1/jobs: list and watch background work."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from memcube import jobs
from memcube.models import Job, JobFilter, Page
from services.api.deps import Conn, Reader
from services.api.params import Cursor, Limit

router = APIRouter(prefix="/v1/jobs", tags=["background work"])


@router.get("", response_model=Page[Job])
def list_jobs(conn: Conn, who: Reader, filters: Annotated[JobFilter, Query()],
              limit: Limit = 50,
              cursor: Cursor = None) -> Any:
    items, next_cursor = jobs.list_jobs(conn, tenant=who.tenant, filters=filters, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{job_id}", response_model=Job)
def get_job(job_id: UUID, conn: Conn, who: Reader) -> Any:
    return jobs.get_job(conn, tenant=who.tenant, job_id=job_id)
