"""What every benchmark shares: the embedded stack, fresh databases, the real app on loopback, timing and tables."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import sys
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import httpx
import numpy as np
import psycopg
from psycopg import sql

from memcube.config import Settings, load_settings
from memcube.db import connect
from memcube.embedded import Stack, start_stack
from memcube.embedder import Embedder, build_embedder
from memcube.migrate import apply_migrations
from memcube.supervisor import spawn

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DATA_DIR = BENCH_DIR / ".data"
DEFAULT_HOME = Path(os.environ.get("MEMCUBE_BENCH_HOME", "/tmp/mc-bench"))
ADMIN_TOKEN = "bench-admin-" + uuid.uuid4().hex


class Report:
    """Prints lines as they come and keeps them, with structured figures, for bench/results/."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.figures: dict[str, Any] = {}
        self.started = datetime.now(timezone.utc)

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
        cells = [[_cell(v) for v in row] for row in rows]
        widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
                  for i, h in enumerate(headers)]
        if title:
            self.say(title)
        self.say("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |")
        self.say("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in cells:
            self.say("| " + " | ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths)) + " |")
        self.say()

    def save(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = self.started.strftime("%Y%m%dT%H%M%SZ")
        base = RESULTS_DIR / f"{self.name}-{stamp}"
        base.with_suffix(".txt").write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        base.with_suffix(".json").write_text(json.dumps(self.figures, indent=2, default=str), encoding="utf-8")
        print(f"results written to {base}.txt and .json", flush=True)
        return base


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "-" if value is None else str(value)


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("×x%"))
        return True
    except ValueError:
        return False


def machine_state() -> dict[str, Any]:
    """Return what the figures depend on: cores, load, versions."""
    load = os.getloadavg()
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
            "loadavg_1_5_15": [round(x, 2) for x in load], "python": platform.python_version(),
            "machine": platform.machine()}


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """Return p50/p95/p99/mean of latencies in milliseconds."""
    a = np.asarray(samples_ms, dtype=float)
    if a.size == 0:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "mean": float("nan")}
    return {"n": int(a.size), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# --- the stack and databases ---------------------------------------------------------------------------------


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def with_database(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


@dataclass
class Bench:
    """The embedded stack of this benchmark run and the databases it created (dropped on close)."""

    stack: Stack
    keep: bool = False
    databases: list[str] = field(default_factory=list)
    servers: list["Server"] = field(default_factory=list)

    @classmethod
    def start(cls, home: Path = DEFAULT_HOME, keep: bool = False) -> "Bench":
        # SIGTERM (a killed run) unwinds like Ctrl-C, so `close` stops the servers and the stack.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        # Our own home: never the test suite's .memcube-test, never ~/.memcube.
        return cls(start_stack(Settings(database_url=None, redis_url=None), home=home), keep=keep)

    def new_database(self, label: str) -> str:
        """Create a fresh database with the migrations applied; return its URL."""
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.stack.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.databases.append(name)
        url = with_database(self.stack.database_url, name)
        with connect(url, autocommit=True) as conn:
            apply_migrations(conn)
        return url

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        return load_settings(database_url=database_url, redis_url=self.stack.redis_url, admin_token=ADMIN_TOKEN,
                             log_level="warning", **overrides)

    def serve(self, database_url: str, query_vectors: Path | None = None, **overrides: Any) -> "Server":
        """Start the real app in a process of its own (as `memcube api` runs it) on a loopback port, its rate limits
        off: a benchmark measures the service, and would spend a key's budget in seconds (the limits have their
        tests; bench.trust runs with them on)."""
        overrides = {"rate_limit_read": "", "rate_limit_write": "", "rate_limit_search": "", **overrides}
        server = Server.start(self.settings(database_url, **overrides), query_vectors, overrides)
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers = []
        if not self.keep:
            with psycopg.connect(self.stack.database_url, autocommit=True) as conn:
                for name in self.databases:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.stack.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """The real app under uvicorn on 127.0.0.1, in a child process (python -m bench.server)."""

    url: str
    settings: Settings
    process: subprocess.Popen

    @classmethod
    def start(cls, settings: Settings, query_vectors: Path | None, overrides: dict[str, Any]) -> "Server":
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": settings.database_url or "", "REDIS_URL": settings.redis_url or "",
               "MEMCUBE_ADMIN_TOKEN": ADMIN_TOKEN, "MEMCUBE_HOST": "127.0.0.1", "MEMCUBE_PORT": str(port),
               "MEMCUBE_LOG_LEVEL": "warning"}
        env.update({f"MEMCUBE_{k.upper()}": str(v) for k, v in overrides.items()})
        command = [sys.executable, "-m", "bench.server"]
        if query_vectors is not None:
            command += ["--query-vectors", str(query_vectors)]
        process = spawn(command, env, cwd=BENCH_DIR.parent)
        server = cls(f"http://127.0.0.1:{port}", settings, process)
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the benchmark API server exited with code {process.returncode}")
            try:
                if httpx.get(server.url + "/healthz", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("the benchmark API server did not answer within 180 s")
            time.sleep(0.2)

    def client(self, token: str = ADMIN_TOKEN) -> httpx.Client:
        """A keep-alive client with a token."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=600)

    def new_key(self, tenant: str) -> str:
        """Create a read/write key for a tenant and return its token."""
        with self.client() as admin:
            r = admin.post("/v1/admin/keys", json={"tenant": tenant, "scopes": ["read", "write"], "name": "bench"})
            r.raise_for_status()
            return r.json()["token"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# --- the embedder ---------------------------------------------------------------------------------------------


class BenchEmbedder:
    """The configured embedder, timed, with optional precomputed query vectors.

    With `use_cache` on, texts whose vector was computed beforehand are answered from memory, so that an API
    search measures our overhead over the SQL; the query's own embedding is measured and reported apart.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.cache: dict[str, np.ndarray] = {}
        self.use_cache = False
        self.seconds = 0.0
        self.texts = 0
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> list[Any]:
        if self.use_cache and texts and all(t in self.cache for t in texts):
            return [self.cache[t] for t in texts]
        started = time.perf_counter()
        out = self.inner.embed(texts)
        with self._lock:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)
        return out

    def save_cache(self, path: Path) -> Path:
        """Write the precomputed query vectors for a server process to load."""
        texts = sorted(self.cache)
        np.savez(path, texts=np.asarray(texts, dtype=object),
                 vectors=np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim)))
        return path

    def load_cache(self, path: Path) -> None:
        data = np.load(path, allow_pickle=True)
        self.cache = {str(t): np.asarray(v, dtype=np.float32) for t, v in zip(data["texts"], data["vectors"])}

    def embed_array(self, texts: Sequence[str], chunk: int = 512,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed many texts into a float32 matrix, in chunks."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), chunk):
            part = texts[start:start + chunk]
            out[start:start + len(part)] = np.asarray(self.inner.embed(part), dtype=np.float32)
            if progress:
                progress(start + len(part))
        return out


def load_embedder(**overrides: Any) -> BenchEmbedder:
    """The embedder the servers use: the configured one (MEMCUBE_EMBEDDER, default the ONNX MiniLM), with
    overrides (e.g. `embedder="torch"`)."""
    return BenchEmbedder(build_embedder(load_settings(**overrides)))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Return (milliseconds, result)."""
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000.0, result


class Progress:
    """A rate line on stderr every few seconds."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last >= 5 or done >= self.total:
            self.last = now
            rate = done / max(now - self.started, 1e-9)
            print(f"  {self.label}: {done}/{self.total} ({rate:.0f}/s)", file=sys.stderr, flush=True)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def server_settings_text(conn: psycopg.Connection) -> str:
    rows = conn.execute(
        "SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', "
        "'maintenance_work_mem', 'effective_cache_size', 'max_parallel_workers_per_gather', 'jit')").fetchall()
    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    pg = conn.execute("SHOW server_version").fetchone()
    def val(r: Any) -> str:
        r = dict(r) if not isinstance(r, dict) else r
        return f"{r['name']}={r['setting']}{r['unit'] or ''}"
    pgv = (dict(pg) if not isinstance(pg, dict) else pg)["server_version"]
    vv = (dict(version) if not isinstance(version, dict) else version)["extversion"] if version else "?"
    return f"PostgreSQL {pgv}, pgvector {vv}; " + ", ".join(val(r) for r in rows)
