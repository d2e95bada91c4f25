"""The admin dashboard, served by the API's app under /dashboard: server-rendered pages, plain forms, no script."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from memcube.errors import NotFound
from services.dashboard.deps import PREFIX, DashboardRoute

from services.dashboard.routes import agents, jobs, keys, memories, overview, signin

STATIC = Path(__file__).resolve().parent / "static"


fallback = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


@fallback.get("/{path:path}")
def unknown_page(path: str) -> None:
    raise NotFound(f"there is no dashboard page /dashboard/{path}")


def install_dashboard(app: FastAPI) -> None:
    """Add the dashboard's stylesheet and pages to the app; an unknown page under /dashboard is an HTML 404."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="dashboard-static")
    for module in (signin, overview, agents, memories, jobs, keys):
        app.include_router(module.router)
    app.include_router(fallback)
