"""Request dependencies: the runtime, a connection in one transaction, the caller."""

from __future__ import annotations

from typing import Annotated, Iterator

import psycopg
from fastapi import Depends, Request

from memcube.auth import authenticate, require
from memcube.models import Principal
from memcube.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """One connection and one transaction per request: committed when the route returns, rolled back on error."""
    with request.app.state.runtime.pool.connection() as conn:
        yield conn


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": the commit happens before the response is sent, so a write is visible
# to the next request as soon as the client has the answer (read-your-writes).
Conn = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]


def _principal(request: Request, conn: Conn) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    principal = authenticate(conn, token or None, admin_token=request.app.state.runtime.settings.admin_token)
    request.state.principal = principal
    return principal


def _needs(scope: str):
    def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        require(principal, scope)
        return principal

    return dependency


Reader = Annotated[Principal, Depends(_needs("read"))]
Writer = Annotated[Principal, Depends(_needs("write"))]
Admin = Annotated[Principal, Depends(_needs("admin"))]
