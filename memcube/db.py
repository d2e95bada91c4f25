"""Connections: the pool every process opens, and vector type registration."""

from __future__ import annotations

import psycopg
import psycopg_pool
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from memcube.config import Settings
from memcube.errors import ConfigError


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Open one connection with dict rows and the vector type registered (the vector extension must exist)."""
    conn = psycopg.connect(url, row_factory=dict_row, autocommit=autocommit)
    try:
        _configure(conn)
    except psycopg.ProgrammingError:
        # The vector extension is not there yet: only the migration runner may see this.
        pass
    return conn


def _check(pool: psycopg_pool.ConnectionPool, conn: psycopg.Connection) -> None:
    """Check a connection leaving the pool; raises OperationalError when it is broken.

    A broken one means the server restarted or dropped us: every idle connection is checked at once then, since
    the pool waits 1 s, 2 s, 4 s... between failed checks and would make the next requests meet the others one
    by one, past their timeout.
    """
    try:
        psycopg_pool.ConnectionPool.check_connection(conn)
    except psycopg.OperationalError:
        pool.check()
        raise


def open_pool(settings: Settings, url: str) -> psycopg_pool.ConnectionPool:
    """Open the process's connection pool; raises ConfigError when the database cannot be reached.

    Survives a database restart: each connection is checked as it leaves the pool (an empty query), so one that
    the restart broke is replaced instead of failing the request; while the database is down, a request waits
    at most `db_pool_timeout_seconds` (then PoolTimeout, a 503), and the pool keeps reconnecting in the
    background.
    """
    pool: psycopg_pool.ConnectionPool
    pool = psycopg_pool.ConnectionPool(
        url,
        min_size=settings.db_pool_min,
        max_size=max(settings.db_pool_max, settings.db_pool_min),
        kwargs={"row_factory": dict_row},
        configure=_configure,
        check=lambda conn: _check(pool, conn),
        timeout=settings.db_pool_timeout_seconds,
        open=False,
        name="memcube",
    )
    try:
        pool.open(wait=True, timeout=30)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot connect to the database: {exc}") from exc
    except psycopg_pool.PoolTimeout as exc:
        raise ConfigError(f"cannot connect to the database within 30 s: {exc}") from exc
    return pool

