"""The audit trail: who changed what, when, through which request, and whether it was carried out.

One `Entry` follows each change request (made by the API's audit middleware, memcube/request_context.py).
Code that writes versions notes them on it, the code that authenticates names the caller, and the entry is
written either inside the request's own transaction, just before its commit (`write_in`: the change and its
audit row commit together or not at all), or, for a request refused or served elsewhere, afterwards on a
connection of its own (`write_after`). Rows are append-only (a trigger refuses UPDATE, DELETE and TRUNCATE) and hold no content.
"""

from __future__ import annotations

from typing import Any

import psycopg

from memcube.auth import require
from memcube.errors import Forbidden
from memcube.models import Principal
from memcube.request_context import Entry, current
from memcube.store import audit as audit_store
from memcube.store.cursor import check_limit


def _row(entry: Entry, status: int, outcome: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    caller = entry.caller
    return {"tenant": caller.tenant if caller else None, "key_id": caller.key_id if caller else None,
            "key_name": caller.key_name if caller else None, "actor": entry.actor,
            "request_id": entry.request_id, "method": entry.method, "route": entry.route or entry.path,
            "path": entry.path, "status": status, "outcome": outcome, "cubes": versions}


def write_in(conn: psycopg.Connection, status: int, route: str | None = None) -> None:
    """Write the current request's entry as carried out, in `conn`'s transaction (before it commits)."""
    entry = current()
    if entry is None or entry.written:
        return
    entry.route = route or entry.route
    audit_store.insert(conn, _row(entry, status, "ok", entry.versions))
    entry.written = True


def write_after(conn: psycopg.Connection, entry: Entry, status: int) -> None:
    """Write the entry of a request that has been answered without one: refused (an error status: it rolled
    back, so the versions it noted were not kept and none are listed), or carried out by a route that commits
    on its own."""
    audit_store.insert(conn, _row(entry, status, "ok" if status < 400 else "refused",
                                  entry.versions if status < 400 else []))
    entry.written = True


def list_entries(conn: psycopg.Connection, principal: Principal, *, filters: dict[str, Any], limit: int,
                 cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return a page of the audit trail, newest first: a tenant admin sees its tenant's, the bootstrap admin
    every tenant's (or one, with `tenant`) and the refused unauthenticated attempts (`tenant` = "")."""
    require(principal, "admin")
    check_limit(limit)
    tenant = filters.get("tenant")
    if not principal.superuser:
        if tenant is not None and tenant != principal.tenant:
            raise Forbidden("an admin key reads only the audit trail of its own tenant")
        tenant = principal.tenant
    return audit_store.list_entries(conn, tenant=tenant, filters=filters, limit=limit, cursor=cursor)

