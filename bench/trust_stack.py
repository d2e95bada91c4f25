"""A MemCube deployment of its own for trust checks: an embedded PostgreSQL, a Redis, one `memcube api` and one
`memcube worker`, each a process this module can kill -9, stop and start again while clients keep calling.

Used by `python -m bench.trust` and by tests/test_faults.py. Everything listens on loopback or on unix sockets.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import redis

from memcube.config import Settings
from memcube.embedded import redis_server_binary, start_stack

# Short leases and timeouts, so that recovery from a killed worker takes seconds, not minutes.
FAST = {
    "MEMCUBE_JOB_LEASE_SECONDS": "3",
    "MEMCUBE_BROKER_VISIBILITY_TIMEOUT_SECONDS": "4",
    "MEMCUBE_OUTBOX_POLL_SECONDS": "0.5",
    "MEMCUBE_CONSOLIDATE_ENGINE": "heuristic",
    "MEMCUBE_DISTILL_ENGINE": "heuristic",
    "MEMCUBE_DB_POOL_TIMEOUT_SECONDS": "3",
    "MEMCUBE_LOG_LEVEL": "info",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, *, timeout: float, what: str, every: float = 0.1):  # noqa: ANN001, ANN201
    """Return check()'s first truthy value; raise AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Process:
    """One `memcube <command>` in a process group of its own, logging to a file."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command, self.env, self.log_path = command, env, log_path
        self.process: subprocess.Popen | None = None

    def spawn(self) -> Process:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "services.cli", self.command], env=self.env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children at once: no shutdown, no acknowledgement, no flush."""
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


class TrustStack:
    """PostgreSQL, Redis, an API and a worker under `home`; start(), then kill and restart any of them."""

    def __init__(self, home: Path, *, embedder: str = "hash", admin_token: str | None = None,
                 **env: str) -> None:
        self.home = home
        self.admin_token = admin_token or "trust-admin-" + uuid.uuid4().hex
        self.embedder = embedder
        self.extra_env = env
        self._pg = None
        self.redis_process: subprocess.Popen | None = None
        # Unix socket paths are limited to about 100 bytes: Redis gets a short folder of its own.
        self._redis_dir = Path(tempfile.mkdtemp(prefix="mct-"))
        self.redis_socket = self._redis_dir / "redis.sock"
        self.redis_url = "unix://" + quote(str(self.redis_socket))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api: Process | None = None
        self.worker: Process | None = None

    # --- the whole stack

    def start(self) -> TrustStack:
        self.home.mkdir(parents=True, exist_ok=True)
        stack = start_stack(Settings(database_url=None, redis_url="unused"), home=self.home, with_redis=False)
        self._pg, self.database_url = stack._postgres, stack.database_url
        self.start_redis()
        self.env = self._env()
        migrate = subprocess.run([sys.executable, "-m", "services.cli", "migrate"], env=self.env,
                                 capture_output=True, text=True, timeout=300)
        if migrate.returncode != 0:
            raise RuntimeError(f"memcube migrate failed:\n{migrate.stderr}")
        self.api = Process("api", self.env, self.home / "api.log")
        self.worker = Process("worker", self.env, self.home / "worker.log")
        self.start_api()
        self.start_worker()
        return self

    def stop(self) -> None:
        for process in (self.worker, self.api):
            if process is not None:
                process.stop()
        self.stop_redis()
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None
        shutil.rmtree(self._redis_dir, ignore_errors=True)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if (not k.startswith("MEMCUBE_") or k == "MEMCUBE_MODEL_CACHE")
               and k not in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY")}
        env.update(FAST, DATABASE_URL=self.database_url, REDIS_URL=self.redis_url, MEMCUBE_HOME=str(self.home),
                   MEMCUBE_ADMIN_TOKEN=self.admin_token, MEMCUBE_EMBEDDER=self.embedder,
                   MEMCUBE_PORT=str(self.port), MEMCUBE_HOST="127.0.0.1",
                   MEMCUBE_WORKER_QUEUE=f"trust-{uuid.uuid4().hex[:8]}")
        env.update(self.extra_env)
        return env

    def client(self, token: str | None = None, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token or self.admin_token}"},
                            timeout=timeout)

    def new_key(self, tenant: str | None = None) -> str:
        """Return the token of a new read/write key of a new (or the given) tenant."""
        with self.client() as admin:
            answer = admin.post("/v1/admin/keys", json={"tenant": tenant or f"t-{uuid.uuid4().hex[:10]}",
                                                        "scopes": ["read", "write"], "name": "trust"})
            answer.raise_for_status()
            return answer.json()["token"]

    # --- the API

    def start_api(self, timeout: float = 180) -> None:
        assert self.api is not None
        self.api.spawn()

        def ready() -> bool:
            assert self.api is not None
            if not self.api.alive():
                raise RuntimeError("the API exited:\n" + self.api.log()[-3000:])
            try:
                return httpx.get(self.url + "/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=timeout, what="the API to be ready", every=0.2)

    def kill_api(self) -> None:
        assert self.api is not None
        self.api.kill()

    # --- the worker

    def start_worker(self, timeout: float = 180) -> None:
        assert self.worker is not None
        self.worker.spawn()
        started = len(self.worker.log())

        def ready() -> bool:
            assert self.worker is not None
            if not self.worker.alive():
                raise RuntimeError("the worker exited:\n" + self.worker.log()[-3000:])
            return " ready." in self.worker.log()[started:]

        wait_for(ready, timeout=timeout, what="the worker to be ready", every=0.2)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()

    # --- Redis

    def start_redis(self) -> None:
        folder = self.home / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        command = [redis_server_binary(), "--port", "0", "--unixsocket", str(self.redis_socket),
                   "--unixsocketperm", "700", "--dir", str(folder), "--appendonly", "yes",
                   "--appendfsync", "everysec", "--save", "", "--logfile", str(folder / "redis.log")]
        self.redis_process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis(unix_socket_path=str(self.redis_socket), socket_timeout=1)

        def pings() -> bool:
            try:
                return self.redis_socket.exists() and bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(pings, timeout=30, what="Redis to start")
        client.close()

    def stop_redis(self) -> None:
        if self.redis_process is not None and self.redis_process.poll() is None:
            self.redis_process.terminate()
            self.redis_process.wait(30)
        self.redis_process = None

    # --- PostgreSQL

    def stop_postgres(self) -> None:
        """Stop PostgreSQL (pg_ctl's fast mode: open transactions are rolled back, clients disconnected)."""
        assert self._pg is not None
        self._pg.stop()

    def start_postgres(self) -> None:
        assert self._pg is not None
        with self._pg._lock:
            self._pg.ensure_postgres_running()
