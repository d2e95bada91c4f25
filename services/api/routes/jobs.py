"""Routes of /v1/jobs: watch background work."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from memcube import jobs
from memcube.models import Job
from services.api.deps import Conn, Reader

router = APIRouter(prefix="/v1/jobs", tags=["background work"])


@router.get("/{job_id}", response_model=Job)
def get_job(job_id: UUID, conn: Conn, who: Reader) -> Any:
    return jobs.get_job(conn, tenant=who.tenant, job_id=job_id)
