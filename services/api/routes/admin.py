"""Admin routes: API keys and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from memcube import audit, auth
from memcube.models import ApiKey, ApiKeyCreate, ApiKeyCreated, AuditEntry, AuditFilter, Page
from services.api.deps import Admin, Conn
from services.api.params import Cursor, Limit, QueryIdent

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


@router.get("/audit", response_model=Page[AuditEntry])
def list_audit(conn: Conn, who: Admin, filters: Annotated[AuditFilter, Query()], limit: Limit = 50,
               cursor: Cursor = None) -> Any:
    items, next_cursor = audit.list_entries(conn, who, filters=filters.model_dump(), limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}
