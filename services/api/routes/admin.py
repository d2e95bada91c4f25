"""Admin routes: API keys."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from memcube import auth
from memcube.models import ApiKey, ApiKeyCreate, ApiKeyCreated
from services.api.deps import Admin, Conn
from services.api.params import QueryIdent

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class Keys(BaseModel):
    items: list[ApiKey]


@router.post("/keys", status_code=201, response_model=ApiKeyCreated)
def create_key(body: ApiKeyCreate, conn: Conn, who: Admin) -> Any:
    return auth.create_key(conn, who, body)


@router.get("/keys", response_model=Keys)
def list_keys(conn: Conn, who: Admin, tenant: QueryIdent = None) -> Any:
    return {"items": auth.list_keys(conn, who, tenant)}


@router.delete("/keys/{key_id}", response_model=ApiKey)
def revoke_key(key_id: UUID, conn: Conn, who: Admin) -> Any:
    return auth.revoke_key(conn, who, key_id)
