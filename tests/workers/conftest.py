"""Real Celery worker processes (`memcube worker`) against the test database and Redis, with the local
OpenAI-protocol stub as their LLM. No eager mode: tasks travel through the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.workers.support import WorkerProcess, worker_env


@pytest.fixture(scope="module")
def worker(database_url: str, redis_url: str, llm_server: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One worker for a test module."""
    home = tmp_path_factory.mktemp("worker")
    process = WorkerProcess(worker_env(database_url, redis_url, llm_server.url, home), home / "worker.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture()
def start_worker(database_url: str, redis_url: str, llm_server: Any,
                 tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers for one test (extra environment as keyword arguments); all are stopped after it."""
    started: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        env = worker_env(database_url, redis_url, llm_server.url, tmp_path, **extra)
        process = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
