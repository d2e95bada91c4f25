"""The audit trail's rows and what `GET /v1/admin/audit` filters on."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from memcube.models.cube import Ident, Timestamp

Outcome = Literal["ok", "refused"]


class AuditVersion(BaseModel):
    id: UUID
    version: int


class AuditEntry(BaseModel):
    """One change request: who (key and name, the actor written into versions), what (method, route, path, the
    versions written), when, the request id, and whether it was carried out (`ok`) or refused."""

    id: int
    at: datetime
    tenant: str | None
    key_id: UUID | None
    key_name: str | None
    actor: str | None
    request_id: str
    method: str
    route: str
    path: str
    status: int
    outcome: Outcome
    cubes: list[AuditVersion]


class AuditFilter(BaseModel):
    """What `GET /v1/admin/audit` may filter on; unset means any. `tenant` is for the bootstrap admin: a tenant,
    or "" for the refused requests of callers that could not be authenticated."""

    tenant: str | None = Field(default=None, max_length=256)
    key_id: UUID | None = None
    cube_id: UUID | None = None
    route: str | None = Field(default=None, max_length=512)
    outcome: Outcome | None = None
    request_id: Ident | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None
