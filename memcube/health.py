"""Readiness checks of the database, Redis, and the broker (the same Redis unless MEMCUBE_BROKER_URL differs)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import psycopg_pool
import redis


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
