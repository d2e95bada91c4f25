"""The overview page: a tenant at a glance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from memcube import overview
from services.dashboard.deps import PREFIX, DashboardRoute, View
from services.dashboard.render import render

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


@router.get("")
def overview_page(request: Request, viewer: View) -> Any:
    return render(request, viewer, "overview.html",
                  overview=overview.tenant_overview(viewer.conn, tenant=viewer.tenant))
