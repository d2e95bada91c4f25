"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from memcube.health import anonymous_view, may_see_details, readiness
from services.api.deps import RuntimeDep, bearer_token

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, rt: RuntimeDep) -> Any:
    """Each check's `ok`; its timing or error text only for a caller with a valid bearer token."""
    checks = readiness(rt)
    ready = all(c["ok"] for c in checks.values())
    if not may_see_details(rt, bearer_token(request.scope)):
        checks = anonymous_view(checks)
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
