"""Test fixtures: a real PostgreSQL + pgvector and a real Redis (the embedded stack, or DATABASE_URL/REDIS_URL),
a fresh database per run with the migrations applied, and the real HTTP app served by uvicorn on loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import psycopg
import pytest
import redis
import uvicorn
from psycopg import sql

from bench.trust_load import run_sync
from memcube.config import Settings
from memcube.db import connect
from memcube.embedded import start_stack
from memcube.embedder import build_embedder
from memcube.migrate import apply_migrations
from memcube.runtime import Runtime, open_runtime
from services.api.app import create_app

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token-" + uuid.uuid4().hex
TEST_HOME = Path(os.environ.get("MEMCUBE_TEST_HOME", ROOT / ".memcube-test"))
# The ONNX export of the default embedder is made once and kept with the test stack; every process a test
# starts (workers, `memcube up`, the compose services) is pointed at it instead of exporting into its own home.
MODEL_CACHE = os.environ.setdefault("MEMCUBE_MODEL_CACHE", str(TEST_HOME / "models"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_database(url: str, name: str) -> str:
    """Return a libpq URL that connects to database `name` instead."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def run_async(make, *args):
    """Run a coroutine function to completion on an event loop of its own, in a thread of its own: the
    session's Playwright browser keeps an event loop running in the main thread, where asyncio.run refuses."""
    return run_sync(make(*args))


@pytest.fixture(scope="session")
def stack_urls() -> Iterator[tuple[str, str]]:
    """(admin database URL, Redis URL): external servers from the environment, or the embedded stack."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        yield os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
        return
    stack = start_stack(Settings(database_url=None, redis_url=None), home=TEST_HOME)
    try:
        yield stack.database_url, stack.redis_url
    finally:
        stack.stop()


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def database_url(stack_urls: tuple[str, str]) -> Iterator[str]:
    """A new database for this run, migrated; dropped at the end."""
    with fresh_database(stack_urls[0], "memcube_test") as url:
        with connect(url, autocommit=True) as conn:
            apply_migrations(conn)
        yield url


@pytest.fixture()
def scratch_url(stack_urls: tuple[str, str]) -> Iterator[str]:
    """An empty database of the test's own (no migrations applied)."""
    with fresh_database(stack_urls[0], "memcube_scratch") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(stack_urls: tuple[str, str]) -> str:
    return stack_urls[1]


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, admin_token=ADMIN_TOKEN, embedder="onnx",
                    model_cache=Path(MODEL_CACHE), access_flush_seconds=0.2, db_pool_max=12,
                    # Off for the shared test server (its tests share keys); tests of the limits serve their own.
                    rate_limit_read="", rate_limit_write="", rate_limit_search="")


@pytest.fixture(scope="session")
def embedder(settings: Settings):  # noqa: ANN201 - the Embedder protocol
    return build_embedder(settings)


@pytest.fixture(scope="session")
def runtime(settings: Settings, embedder: Any) -> Iterator[Runtime]:
    rt = open_runtime(settings, embedder=embedder)
    yield rt
    rt.close()


@pytest.fixture()
def conn(runtime: Runtime) -> Iterator[psycopg.Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with runtime.pool.connection() as connection:
        connection.autocommit = False
        try:
            yield connection
        finally:
            connection.rollback()


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


class _Unclosable:
    """Hands the session runtime to the app without letting the app close it."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def serve(settings: Settings, runtime: Runtime) -> Iterator[str]:
    """Serve the real app on a runtime the caller owns, under uvicorn on a loopback port; yield its base URL."""
    app = create_app(settings, runtime_factory=lambda _: _Unclosable(runtime))  # type: ignore[arg-type,return-value]
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def server(settings: Settings, runtime: Runtime) -> Iterator[str]:
    """The real app under uvicorn on a loopback port; yields its base URL."""
    with serve(settings, runtime) as url:
        yield url


@dataclass
class Deployment:
    url: str
    runtime: Runtime
    settings: Settings


@pytest.fixture(scope="session")
def other_deployment(stack_urls: tuple[str, str], settings: Settings, embedder: Any) -> Iterator[Deployment]:
    """A second deployment: the same app and embedder on a database of its own (same Redis, other tenants)."""
    with fresh_database(stack_urls[0], "memcube_other") as url:
        with connect(url, autocommit=True) as conn:
            apply_migrations(conn)
        other = settings.model_copy(update={"database_url": url, "db_pool_max": 4})
        rt = open_runtime(other, embedder=embedder)
        try:
            with serve(other, rt) as base:
                yield Deployment(base, rt, other)
        finally:
            rt.close()


class Api:
    """An HTTP client bound to one tenant's token."""

    def __init__(self, base_url: str, token: str, tenant: str) -> None:
        self.tenant = tenant
        self.token = token
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)


@pytest.fixture(scope="session")
def admin(server: str) -> Iterator[Api]:
    api = Api(server, ADMIN_TOKEN, "default")
    yield api
    api.http.close()


def new_tenant_api(server: str, admin: Api, scopes: tuple[str, ...] = ("read", "write")) -> Api:
    """Create a tenant with a fresh key and return a client for it."""
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    response = admin.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes), "name": "test"})
    assert response.status_code == 201, response.text
    return Api(server, response.json()["token"], tenant)


@pytest.fixture()
def api(server: str, admin: Api) -> Iterator[Api]:
    """A client of a tenant of its own, so tests never see each other's data."""
    client = new_tenant_api(server, admin)
    yield client
    client.http.close()


@pytest.fixture()
def agent_id() -> str:
    return f"agent-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def llm_server() -> Iterator[Any]:
    """The local OpenAI-protocol stub (tests/llm_server.py), shared by the run; script it through `llm`."""
    from tests.llm_server import LLMServer

    stub = LLMServer().start()
    yield stub
    stub.stop()


@pytest.fixture()
def llm(llm_server: Any) -> Iterator[Any]:
    """The stub with a fresh script and record for this test."""
    llm_server.reset()
    yield llm_server
    llm_server.reset()
