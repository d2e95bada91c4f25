"""The audit middleware: every change request (a write, an erase, a key change, a dashboard action) leaves a
row in the audit trail, carried out or refused (memcube/audit.py)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool

from memcube import audit, request_context
from memcube.auth import authenticate
from memcube.errors import Unauthorized
from memcube.models import Principal
from services.api.deps import bearer_token
from services.api.ratelimit import SEARCHES

log = logging.getLogger(__name__)

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def audited(method: str, path: str) -> bool:
    """Whether a request is a change: a write method under /v1 or /dashboard, other than the POSTs that only
    read (search, context)."""
    return method in CHANGES and (path.startswith("/v1/") or path.startswith("/dashboard/")) \
        and path not in SEARCHES


class AuditMiddleware:
    """Opens the audit entry of a change request; the route's transaction writes it when the change commits,
    and this writes it, just before the answer goes out, when it did not (a refusal, an error)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        entry = request_context.Entry(request_id=request_context.request_id_var.get(), method=scope["method"],
                                      path=scope["path"])
        request_context.begin(entry)

        async def send_wrapper(message: dict[str, Any]) -> None:
            # A 503 leaves no row: the service could not reach a dependency (most often the database, where the
            # trail itself lives), nothing changed, and waiting for a connection would only delay the answer.
            if message["type"] == "http.response.start" and not entry.written and message["status"] != 503:
                entry.route = getattr(scope.get("route"), "path", None) or entry.route
                await run_in_threadpool(self._write, scope, entry, message["status"])
            await send(message)

        await self.app(scope, receive, send_wrapper)

    @staticmethod
    def _write(scope: dict[str, Any], entry: request_context.Entry, status: int) -> None:
        runtime = scope["app"].state.runtime
        try:
            with runtime.pool.connection() as conn:
                if entry.caller is None:
                    # Refused before its key was looked up (a malformed body is checked first): name the caller
                    # when the token is a valid one, so the refusal is in its tenant's trail.
                    entry.caller = _caller(conn, scope, runtime.settings.admin_token)
                    entry.actor = entry.caller.actor if entry.caller else None
                audit.write_after(conn, entry, status)
        except Exception:  # noqa: BLE001 - the answer still goes out; the log says what was not recorded
            log.exception("audit row not written: %s %s -> %s (request %s)", entry.method, entry.path, status,
                          entry.request_id)


def _caller(conn: Any, scope: dict[str, Any], admin_token: str | None) -> Principal | None:
    token = bearer_token(scope)
    if token is None:
        return None
    try:
        return authenticate(conn, token, admin_token=admin_token)
    except Unauthorized:
        return None
