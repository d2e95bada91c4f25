"""What a long-running process holds: settings, the pool, Redis, the embedder and their caches."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

import psycopg_pool
import redis

from memcube.access import AccessRecorder
from memcube.auth import KeyCache
from memcube.config import Settings
from memcube.db import open_pool
from memcube.embedder import Embedder, build_embedder
from memcube.errors import ConfigError
from memcube.migrate import pending_migrations
from memcube.search import SearchStats
from memcube.space import ensure_space

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    pool: psycopg_pool.ConnectionPool
    redis: redis.Redis
    embedder: Embedder
    stats: SearchStats
    access: AccessRecorder
    # The Celery broker when MEMCUBE_BROKER_URL names another Redis than REDIS_URL (readiness pings it).
    broker: redis.Redis | None = None
    # Tokens seen lately: writes check them before embedding, without a connection (memcube.auth.KeyCache).
    keys: KeyCache = field(default_factory=KeyCache)

    def close(self) -> None:
        """Write pending access counts and close connections."""
        self.access.stop()
        self.pool.close()
        self.redis.close()
        if self.broker is not None:
            self.broker.close()


def require_urls(settings: Settings) -> tuple[str, str]:
    """Return (database URL, Redis URL); raises ConfigError when either is missing."""
    if not settings.database_url or not settings.redis_url:
        raise ConfigError("DATABASE_URL and REDIS_URL must be set for a single process; "
                          "`memcube up` starts the embedded stack and sets both")
    return settings.database_url, settings.redis_url


def celery_broker_url(redis_url: str) -> str:
    """Return the kombu spelling of a Redis URL (unix sockets are `redis+socket://`)."""
    parsed = urlparse(redis_url)
    if parsed.scheme == "unix":
        return "redis+socket://" + unquote(parsed.path) + (f"?{parsed.query}" if parsed.query else "")
    return redis_url


def open_runtime(settings: Settings, *, embedder: Embedder | None = None) -> Runtime:
    """Connect to the database and Redis, check migrations and the embedding space, start the access recorder.

    Raises ConfigError when something is missing or does not match.
    """
    database_url, redis_url = require_urls(settings)
    pool = open_pool(settings, database_url)
    try:
        with pool.connection() as conn:
            pending = pending_migrations(conn)
            if pending:
                raise ConfigError(f"the database is missing migrations {', '.join(pending)}: run `memcube migrate`")
        embedder = embedder or build_embedder(settings)
        with pool.connection() as conn:
            ensure_space(conn, embedder)
        client = redis.Redis.from_url(redis_url, decode_responses=True, health_check_interval=30)
        broker = None
        if settings.broker_url and settings.broker_url != redis_url:
            broker = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
        access = AccessRecorder(pool, settings.access_flush_seconds)
        access.start()
    except BaseException:
        pool.close()
        raise
    return Runtime(settings=settings, pool=pool, redis=client, embedder=embedder,
                   stats=SearchStats(settings.scope_count_ttl_seconds), access=access, broker=broker)
