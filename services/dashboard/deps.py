"""What every dashboard page needs: the signed-in viewer with a connection in one transaction, the CSRF check of
changes, and a route class that answers errors as HTML pages instead of the API's JSON."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import psycopg
from fastapi import Depends, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

from memcube import audit, dashboard_session, request_context
from memcube.errors import MemCubeError
from memcube.models import DashboardSession
from memcube.runtime import Runtime
from services.api.errors import STATUS
from services.dashboard.render import render_error

log = logging.getLogger(__name__)

COOKIE = "memcube_dashboard"
PREFIX = "/dashboard"
# What a dashboard page may load: its own stylesheet and nothing else. No script runs at all, so stored
# content that slipped past escaping still could not execute; forms post only to this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on their own form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_NEXT = re.compile(r"^/dashboard(/[A-Za-z0-9/_.-]*)?(\?[^\s\\]*)?$")
_key_lock = threading.Lock()


class SignInRequired(Exception):
    """No valid session: the answer is the sign-in page."""


def signing_key(request: Request) -> bytes:
    """The key that signs session cookies, resolved once per app (memcube.dashboard_session.signing_key)."""
    state = request.app.state
    with _key_lock:
        if getattr(state, "dashboard_key", None) is None:
            state.dashboard_key = dashboard_session.signing_key(request.app.state.runtime.settings)
        return state.dashboard_key


def blanks_to_none(values: Any) -> Any:
    """Read the empty fields of a GET form (an unset filter) as absent: a `model_validator(mode="before")`."""
    if isinstance(values, dict):
        return {key: (None if value == "" else value) for key, value in values.items()}
    return values


def safe_next(value: str | None) -> str | None:
    """A dashboard path to go back to after signing in, or None (never another site)."""
    if value and _NEXT.match(value) and "//" not in value:
        return value
    return None


@dataclass
class Viewer:
    """The signed-in user of one request, with the request's connection (one transaction) and the runtime."""

    conn: psycopg.Connection
    session: DashboardSession
    runtime: Runtime

    @property
    def tenant(self) -> str:
        return self.session.principal.tenant

    @property
    def actor(self) -> str:
        return self.session.actor


def get_viewer(request: Request) -> Iterator[Viewer]:
    """Open a connection, read the session cookie, yield the viewer; committed when the page returns, rolled back
    on error. Raises SignInRequired without a valid session."""
    runtime = request.app.state.runtime
    key = signing_key(request)
    with runtime.pool.connection() as conn:
        session = dashboard_session.open_session(conn, cookie=request.cookies.get(COOKIE), settings=runtime.settings,
                                                 key=key)
        if session is None:
            raise SignInRequired()
        request_context.note_caller(session.principal, session.actor)
        yield Viewer(conn=conn, session=session, runtime=runtime)
        # A dashboard change that wrote versions commits with its audit row (memcube/audit.py), and answers with a
        # redirect to the page that shows it. Any other POST (a refusal shown as a page, a key change) is audited
        # by the middleware with the status it really got.
        entry = request_context.current()
        if entry is not None and entry.versions:
            audit.write_in(conn, 303, getattr(request.scope.get("route"), "path", None))


View = Annotated[Viewer, Depends(get_viewer, scope="function")]


class CrossOrigin(MemCubeError):
    """A form posted from another site."""

    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("this form was posted from another site; nothing was changed")


def check_origin(request: Request) -> None:
    """Raise CrossOrigin for a form posted from another site: browsers send Origin with every POST, and its host
    must be the one this request was sent to (the scheme may differ behind a TLS-terminating proxy)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise CrossOrigin()


async def check_change(request: Request, viewer: View, csrf: Annotated[str, Form()] = "") -> Viewer:
    """The viewer of a request that changes something: its form must come from this origin and carry the
    session's CSRF token (else 403, and nothing changes)."""
    check_origin(request)
    dashboard_session.check_csrf(viewer.session, csrf)
    return viewer


Change = Annotated[Viewer, Depends(check_change)]


def _status(exc: MemCubeError) -> int:
    if isinstance(exc, CrossOrigin):
        return 403
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _problem(errors: list[Any]) -> str:
    first = errors[0] if errors else {}
    field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    message = first.get("msg", "invalid input")
    return f"{field}: {message}" if field else str(message)


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = f"?{urlencode({'next': target})}" if request.method == "GET" and safe_next(target) else ""
    return RedirectResponse(f"{PREFIX}/signin{query}", status_code=303)


class DashboardRoute(APIRoute):
    """A dashboard route: errors become HTML pages (sign-in, 403, 404, 409, 412, 422), every answer carries the
    security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                response = sign_in_redirect(request)
            except MemCubeError as exc:
                response = render_error(request, _status(exc), exc.message)
            except RequestValidationError as exc:
                response = render_error(request, 422, _problem(list(exc.errors())))
            except ValidationError as exc:
                response = render_error(request, 422, _problem(list(exc.errors())))
            except Exception:  # noqa: BLE001 - the edge of a page: log it, answer a page, not the API's JSON
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                response = render_error(request, 500, "internal error; the server log has the details")
            response.headers.update(SECURITY_HEADERS)
            return response

        return route
