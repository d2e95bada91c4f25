"""Rate limits per API key, kept in Redis (the `limits` library's sliding-window counter), so they hold
across API replicas: reads, writes and searches each have their own (MEMCUBE_RATE_LIMIT_*). Over a limit, the
answer is `429 rate_limited` with `Retry-After`, before the request's body is read or its key looked up.

A request is counted under a hash of its bearer token (a wrong token is limited like a right one, which also
slows guessing), or under the client address when it has none. When Redis cannot be reached the request is
let through: a limit that fails closed would turn a Redis outage into an API outage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Any

import limits
import redis
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from memcube.request_context import request_id_var

log = logging.getLogger(__name__)

# POST routes that only read: they count as searches, not writes.
SEARCHES = frozenset({"/v1/search", "/v1/context"})


def request_class(method: str, path: str) -> str | None:
    """The limit a request counts against: read, write, search, or None (not limited: health, docs, dashboard)."""
    if not path.startswith("/v1/"):
        return None
    if method in ("GET", "HEAD"):
        return "read"
    if method == "OPTIONS":
        return None
    return "search" if path in SEARCHES else "write"


class RateLimits:
    """The configured limits of each class and the Redis-backed limiter that counts them."""

    def __init__(self, connection_pool: redis.ConnectionPool, *, read: str, write: str, search: str) -> None:
        self.items = {name: limits.parse_many(spec) if spec else []
                      for name, spec in (("read", read), ("write", write), ("search", search))}
        self.limiter = SlidingWindowCounterRateLimiter(
            RedisStorage("redis://", connection_pool=connection_pool, key_prefix="memcube:ratelimit"))

    def check(self, klass: str, who: str) -> float | None:
        """Count one request of `who`; return None when it is within every limit of its class, else the seconds
        until it would be."""
        for item in self.items[klass]:
            if not self.limiter.hit(item, klass, who):
                stats = self.limiter.get_window_stats(item, klass, who)
                return max(stats.reset_time - time.time(), 0.0) or 1.0
        return None

    def describe(self, klass: str) -> str:
        return ";".join(str(item) for item in self.items[klass])


def caller(scope: dict[str, Any]) -> str:
    headers = dict(scope.get("headers", []))
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "key:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    client = scope.get("client") or ("unknown", 0)
    return f"addr:{client[0]}"


class RateLimitMiddleware:
    def __init__(self, app: Any, get_limits: Any) -> None:
        self.app = app
        self.get_limits = get_limits

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        klass = request_class(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        rate_limits: RateLimits | None = self.get_limits(scope) if klass else None
        if rate_limits is None or not rate_limits.items[klass]:
            await self.app(scope, receive, send)
            return
        try:
            wait = rate_limits.check(klass, caller(scope))
        except redis.RedisError as exc:
            log.warning("rate limits not checked (Redis: %s); the request goes through", exc)
            wait = None
        if wait is None:
            await self.app(scope, receive, send)
            return
        retry_after = str(max(1, math.ceil(wait)))
        body = json.dumps({"error": {
            "code": "rate_limited",
            "message": f"too many {klass} requests for this key (limit {rate_limits.describe(klass)}, "
                       f"MEMCUBE_RATE_LIMIT_{klass.upper()}); retry after {retry_after} s",
            "details": {"class": klass, "limit": rate_limits.describe(klass), "retry_after": int(retry_after)},
            "request_id": request_id_var.get() or None}}).encode()
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"retry-after", retry_after.encode())]})
        await send({"type": "http.response.body", "body": body})
