"""Sign in, sign out, and (for the bootstrap admin) the tenant the dashboard acts in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from memcube import auth, dashboard_session
from memcube.errors import Forbidden, Unauthorized
from services.dashboard.deps import COOKIE, PREFIX, Change, DashboardRoute, View, check_origin, safe_next, signing_key
from services.dashboard.render import render

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


def _signed_in(request: Request) -> bool:
    runtime = request.app.state.runtime
    with runtime.pool.connection() as conn:
        return dashboard_session.open_session(conn, cookie=request.cookies.get(COOKIE), settings=runtime.settings,
                                              key=signing_key(request)) is not None


@router.get("/signin")
def signin_page(request: Request, next: str | None = None, signed_out: bool = False) -> Any:
    if _signed_in(request):
        return RedirectResponse(safe_next(next) or PREFIX, status_code=303)
    return render(request, None, "signin.html", error=None, next=safe_next(next),
                  notice="You are signed out." if signed_out else None)


@router.post("/signin")
def signin(request: Request, token: Annotated[str, Form(max_length=1000)] = "",
           next: Annotated[str | None, Form(max_length=2000)] = None) -> Any:
    check_origin(request)
    runtime = request.app.state.runtime
    try:
        with runtime.pool.connection() as conn:
            cookie, session = dashboard_session.sign_in(conn, token=token, settings=runtime.settings,
                                                        key=signing_key(request))
    except Unauthorized:
        return render(request, None, "signin.html", status=401, next=safe_next(next), notice=None,
                      error="That token is not valid: it is wrong, unknown or revoked.")
    except Forbidden:
        return render(request, None, "signin.html", status=403, next=safe_next(next), notice=None,
                      error="That key lacks the admin scope; sign in with the admin token or an admin key.")
    target = safe_next(next) or (f"{PREFIX}/tenants" if session.principal.superuser else PREFIX)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=runtime.settings.dashboard_session_seconds, path=PREFIX,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/signout")
def signout(request: Request, viewer: Change) -> Response:
    dashboard_session.sign_out(viewer.conn, cookie=request.cookies.get(COOKIE), key=signing_key(request))
    response = RedirectResponse(f"{PREFIX}/signin?signed_out=true", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


@router.get("/tenants")
def tenants_page(request: Request, viewer: View) -> Any:
    names = auth.list_tenants(viewer.conn, viewer.session.principal)
    return render(request, viewer, "tenants.html", tenants=sorted(set(names) | {viewer.tenant, "default"}))


@router.post("/tenant")
def switch_tenant(request: Request, viewer: Change, tenant: Annotated[str, Form(max_length=256)] = "") -> Response:
    dashboard_session.switch_tenant(viewer.conn, cookie=request.cookies.get(COOKIE), key=signing_key(request),
                                    session=viewer.session, tenant=tenant)
    return RedirectResponse(PREFIX, status_code=303)
