"""Request dependencies: the runtime, a connection in one transaction, the caller.

Each sync dependency costs a hop into the thread pool (bench/profile_search.py: about a third of the
API's CPU went to those hand-offs), so the work that needs a thread — taking a connection and
checking the token — is one dependency, and the rest is async. A sync route on `Conn` still costs four
hops (enter the dependency, the route, validating its answer, leave the dependency); the hot read routes
use `run_authorized` instead, which does all of it in one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from memcube import audit, request_context
from memcube.auth import authenticate, require, require_token
from memcube.models import Principal
from memcube.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def bearer_token(scope: dict[str, Any]) -> str | None:
    """The bearer token of a request (its ASGI scope), or None: for the routes and for the middleware that run
    before them."""
    raw = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = raw.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _bearer(request: Request) -> str | None:
    return bearer_token(request.scope)


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """One connection and one transaction per request, on which the caller is authenticated first.

    Committed when the route returns, rolled back on error. Raises Unauthorized.
    """
    runtime = request.app.state.runtime
    with runtime.pool.connection() as conn:
        principal = authenticate(conn, _bearer(request), admin_token=runtime.settings.admin_token)
        request.state.principal = principal
        request_context.note_caller(principal)
        yield conn
        # A change is audited in its own transaction: both commit, or neither (memcube/audit.py).
        route = request.scope.get("route")
        audit.write_in(conn, getattr(route, "status_code", None) or 200, getattr(route, "path", None))


async def get_token(request: Request) -> str:
    """The bearer token; a request without one is refused before its body is read."""
    return require_token(_bearer(request))


@dataclass(frozen=True)
class Answer:
    """What `work` returns when the answer needs another status than 200, or headers."""

    model: BaseModel
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


async def run_authorized(request: Request, token: str, scope: str,
                         work: Callable[..., BaseModel | Answer],
                         prepare: Callable[[Principal], Any] | None = None) -> Response:
    """Answer with `work(conn, caller)` as JSON, in one thread-pool hop: take a connection, authenticate the
    token, require the scope, run `work` in one transaction (committed before the answer is sent, rolled back
    on error), serialize its model.

    With `prepare(caller)` (a write that embeds), the embedding runs first, holding no connection and no lock, and
    `work(conn, caller, prepared)` gets its result: a token is checked before that, from the key cache when it
    was seen lately (else the database), and again in the work's own transaction, so revocation stays
    immediate and a pool connection is never held while a model runs.

    The route's body has been validated by then, so a request with a malformed body and a token that is
    present but invalid gets the 422 (a missing token is a 401 first: `get_token`).
    """
    runtime = request.app.state.runtime
    admin_token = runtime.settings.admin_token

    def run() -> Answer:
        prepared = None
        if prepare is not None:
            caller = runtime.keys.get(token)
            if caller is None:
                with runtime.pool.connection() as conn:
                    caller = authenticate(conn, token, admin_token=admin_token)
            require(caller, scope)
            prepared = prepare(caller)
        with runtime.pool.connection() as conn:
            principal = authenticate(conn, token, admin_token=admin_token)
            request_context.note_caller(principal)
            require(principal, scope)
            answer = work(conn, principal) if prepare is None else work(conn, principal, prepared)
            answer = answer if isinstance(answer, Answer) else Answer(answer)
            audit.write_in(conn, answer.status_code, getattr(request.scope.get("route"), "path", None))
        runtime.keys.put(token, principal)
        return answer

    answer = await run_in_threadpool(run)
    return Response(answer.model.model_dump_json().encode(), status_code=answer.status_code,
                    headers=answer.headers, media_type="application/json")


Token = Annotated[str, Depends(get_token)]
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
