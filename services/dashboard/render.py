"""Templates: one Jinja2 environment with autoescaping on, the filters the pages use, and the page answers."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.dashboard import charts

if TYPE_CHECKING:
    from services.dashboard.deps import Viewer

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _dt(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return value.isoformat()


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _show(value: Any) -> str:
    """A field's value for reading: text as it is, times in UTC, nothing as a dash, anything else as JSON."""
    if value is None:
        return "—"
    if isinstance(value, (str, UUID)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return _dt(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _short(value: Any, n: int = 120) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _query(params: dict[str, Any], **changes: Any) -> str:
    """A query string of `params` with `changes` applied; empty values are left out."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
env.filters.update(dt=_dt, pretty=_pretty, short=_short, show=_show)
env.globals.update(query=_query, bar_chart=charts.bar_chart, growth_chart=charts.growth_chart,
                   jobs_chart=charts.jobs_chart, lineage_graph=charts.lineage_graph)


def render(request: Request, viewer: Viewer | None, template: str, *, status: int = 200,
           **context: Any) -> HTMLResponse:
    """Answer with a page; signed-in pages get the navigation, the tenant and the CSRF token for their forms."""
    page = env.get_template(template).render(
        request=request, viewer=viewer, session=viewer.session if viewer else None,
        tenant=viewer.tenant if viewer else None, csrf=viewer.session.csrf if viewer else "", **context)
    return HTMLResponse(page, status_code=status)


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    """Answer with an error page (no navigation: the session may be what failed)."""
    return render(request, None, "error.html", status=status, status_code=status, message=message)
