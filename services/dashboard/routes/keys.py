"""API keys of the tenant: list, create (the token shown once), revoke (confirmed first)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from memcube import auth
from memcube.models import ApiKeyCreate, Scope
from services.dashboard.deps import PREFIX, Change, DashboardRoute, View
from services.dashboard.render import render

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


@router.get("/keys")
def keys_page(request: Request, viewer: View, done: str | None = None) -> Any:
    keys = auth.list_keys(viewer.conn, viewer.session.principal, viewer.tenant)
    return render(request, viewer, "keys.html", keys=keys, done="Revoked." if done == "revoked" else None)


@router.post("/keys")
def create_key(request: Request, viewer: Change, scopes: Annotated[list[Scope], Form()],
               name: Annotated[str, Form(max_length=200)] = "") -> Any:
    body = ApiKeyCreate(tenant=viewer.tenant, scopes=scopes, name=name)
    created = auth.create_key(viewer.conn, viewer.session.principal, body)
    return render(request, viewer, "key_created.html", status=201, key=created)


@router.get("/keys/{key_id}/revoke")
def confirm_revoke(request: Request, viewer: View, key_id: UUID) -> Any:
    key = auth.get_key(viewer.conn, viewer.session.principal, key_id, viewer.tenant)
    return render(request, viewer, "confirm.html", section="keys", heading=f"Revoke key “{key['name'] or key_id}”",
                  description=f"The token {key['token_prefix']}… stops working at once, for every client that uses it. "
                              "This cannot be undone.",
                  preview=None, action_url=f"{PREFIX}/keys/{key_id}/revoke", hidden={}, with_reason=False,
                  button="Revoke", dangerous=True, cancel_url=f"{PREFIX}/keys")


@router.post("/keys/{key_id}/revoke")
def revoke_key(viewer: Change, key_id: UUID) -> Any:
    auth.revoke_key(viewer.conn, viewer.session.principal, key_id, viewer.tenant)
    return RedirectResponse(f"{PREFIX}/keys?done=revoked", status_code=303)
