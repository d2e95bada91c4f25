"""Request dependencies: the runtime, a connection in one transaction, the caller.

Each sync dependency costs a hop into the thread pool (bench/profile_search.py: about a third of the
API's CPU went to those hand-offs), so the work that needs a thread — taking a connection and
checking the token — is one dependency, and the rest is async.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from memcube.auth import authenticate, require
from memcube.models import Principal
from memcube.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """One connection and one transaction per request, on which the caller is authenticated first.

    Committed when the route returns, rolled back on error. Raises Unauthorized.
    """
    runtime = request.app.state.runtime
    with runtime.pool.connection() as conn:
        request.state.principal = authenticate(conn, _bearer(request), admin_token=runtime.settings.admin_token)
        yield conn


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": the commit happens before the response is sent, so a write is visible
# to the next request as soon as the client has the answer (read-your-writes).
Conn = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]


def _needs(scope: str):  # noqa: ANN202 - returns a FastAPI dependency
    async def dependency(request: Request, conn: Conn) -> Principal:
        principal: Principal = request.state.principal
        require(principal, scope)
        return principal

    return dependency


Reader = Annotated[Principal, Depends(_needs("read"))]
Writer = Annotated[Principal, Depends(_needs("write"))]
Admin = Annotated[Principal, Depends(_needs("admin"))]
