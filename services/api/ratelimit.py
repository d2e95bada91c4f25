"""Rate limits per API key, kept in Redis (the `limits` library's sliding-window counter), so they hold
across API replicas: reads, writes and searches each have their own (MEMCUBE_RATE_LIMIT_*). Over a limit, the
answer is `429 rate_limited` with `Retry-After`, before the request's body is read or its key looked up.

A request is counted under a hash of its bearer token (a wrong token is limited like a right one, which also
slows guessing), or under the client address when it has none. When Redis cannot be reached the request is
let through, and limits are not checked for a few seconds: a limit that fails closed would turn a Redis outage
into an API outage.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

import limits
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from services.api.deps import bearer_token
from services.api.middleware import error_body

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
    """The configured limits of each class and the Redis-backed limiter that counts them.

    The limiter has a Redis connection pool of its own with short timeouts, and a breaker: when Redis fails to
    answer, limits are not checked for `pause_seconds`, so a Redis outage (or a hung Redis) costs at most one
    short wait now and then, never every request's time on the event loop.
    """

    def __init__(self, redis_url: str, *, read: str, write: str, search: str, timeout_seconds: float = 0.25,
                 pause_seconds: float = 5.0) -> None:
        self.items = {name: limits.parse_many(spec) if spec else []
                      for name, spec in (("read", read), ("write", write), ("search", search))}
        self.pool = redis.ConnectionPool.from_url(redis_url, socket_timeout=timeout_seconds,
                                                  socket_connect_timeout=timeout_seconds,
                                                  retry=Retry(NoBackoff(), 0))
        self.limiter = SlidingWindowCounterRateLimiter(
            RedisStorage("redis://", connection_pool=self.pool, key_prefix="memcube:ratelimit"))
        self.pause_seconds = pause_seconds
        self._paused_until = 0.0

    def check(self, klass: str, who: str) -> float | None:
        """Count one request of `who`; return None when it is within every limit of its class (or the limits
        cannot be checked just now), else the seconds until it would be."""
        if time.monotonic() < self._paused_until:
            return None
        try:
            for item in self.items[klass]:
                if not self.limiter.hit(item, klass, who):
                    stats = self.limiter.get_window_stats(item, klass, who)
                    return max(stats.reset_time - time.time(), 0.0) or 1.0
        except redis.RedisError as exc:
            self._paused_until = time.monotonic() + self.pause_seconds
            log.warning("rate limits not checked for %g s (Redis: %s); requests go through", self.pause_seconds, exc)
        return None

    def describe(self, klass: str) -> str:
        return ";".join(str(item) for item in self.items[klass])

    def close(self) -> None:
        self.pool.disconnect()


def caller(scope: dict[str, Any]) -> str:
    token = bearer_token(scope)
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
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
        wait = rate_limits.check(klass, caller(scope))
        if wait is None:
            await self.app(scope, receive, send)
            return
        retry_after = str(max(1, math.ceil(wait)))
        body = error_body("rate_limited",
                          f"too many {klass} requests for this key (limit {rate_limits.describe(klass)}, "
                          f"MEMCUBE_RATE_LIMIT_{klass.upper()}); retry after {retry_after} s",
                          {"class": klass, "limit": rate_limits.describe(klass), "retry_after": int(retry_after)})
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"retry-after", retry_after.encode())]})
        await send({"type": "http.response.body", "body": body})
