"""Readiness checks of the database, Redis, and the broker (the same Redis unless MEMCUBE_BROKER_URL differs).

What failed, and how, is for operators: anonymous callers see only whether each check passed, since the
error text names hosts, sockets, users and databases.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import psycopg_pool
import redis

from memcube.auth import KeyCache, authenticate
from memcube.errors import Unauthorized


def _timed(check) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        check()
    except (psycopg.Error, psycopg_pool.PoolTimeout, redis.RedisError, OSError) as exc:
        return {"ok": False, "error": str(exc)[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def readiness(runtime: Any) -> dict[str, dict[str, Any]]:
    """Return one {ok, ms | error} entry per dependency."""

    def database() -> None:
        with runtime.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")

    def cache() -> None:
        runtime.redis.ping()

    def broker() -> None:
        (getattr(runtime, "broker", None) or runtime.redis).ping()

    return {"database": _timed(database), "redis": _timed(cache), "broker": _timed(broker)}


def anonymous_view(checks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the checks with only `ok` kept: what an unauthenticated caller may see."""
    return {name: {"ok": check["ok"]} for name, check in checks.items()}


def may_see_details(runtime: Any, token: str | None) -> bool:
    """Return whether the token is valid (the admin token, or a live key); never raises.

    A key is looked up in the key cache first, so an operator still sees the details while the database is
    down if the key was used lately; otherwise a database outage counts as not authenticated.
    """
    if not token:
        return False
    cache: KeyCache | None = getattr(runtime, "keys", None)
    if cache is not None and cache.get(token) is not None:
        return True
    try:
        with runtime.pool.connection(timeout=2) as conn:
            authenticate(conn, token, admin_token=runtime.settings.admin_token)
    except (Unauthorized, psycopg.Error, psycopg_pool.PoolTimeout):
        return False
    return True
