"""Helpers of the worker tests: worker processes, and the HTTP calls the tests repeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

# Short leases and timeouts, so that recovery from a killed worker takes seconds, not minutes.
FAST = {
    "MEMCUBE_JOB_LEASE_SECONDS": "3",
    "MEMCUBE_BROKER_VISIBILITY_TIMEOUT_SECONDS": "4",
    "MEMCUBE_OUTBOX_POLL_SECONDS": "0.5",
    "MEMCUBE_LLM_MAX_RETRIES": "1",
    "MEMCUBE_LLM_TIMEOUT_SECONDS": "30",
    "MEMCUBE_LLM_MODEL": "stub-model",
    "MEMCUBE_DB_POOL_MIN": "1",
    "MEMCUBE_LOG_LEVEL": "info",
    # A small core, so that a few memories put it over budget and paging has work.
    "MEMCUBE_CORE_BUDGET_TOKENS": "40",
}


class WorkerProcess:
    """One `memcube worker` (its main process and its pool child), logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "services.cli", "worker"], env=self.env,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if "worker process ready" in text and " ready." in text:
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"the worker did not start:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: no warm shutdown, no acknowledgement."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def worker_env(database_url: str, redis_url: str, llm_url: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a test worker: this run's database and Redis, the LLM stub, a queue of its own."""
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("MEMCUBE_") or k == "MEMCUBE_MODEL_CACHE")
           and k not in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY")}
    env.update(FAST, DATABASE_URL=database_url, REDIS_URL=redis_url, MEMCUBE_LLM_BASE_URL=llm_url,
               MEMCUBE_HOME=str(home), MEMCUBE_WORKER_QUEUE=f"test-{uuid.uuid4().hex[:8]}")
    env.update(extra)
    return env


def wait_job(api: Any, job_id: str, *, timeout: float = 90, worker: WorkerProcess | None = None) -> dict[str, Any]:
    """Poll GET /v1/jobs/{id} until the job has finished; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    log = worker.log()[-4000:] if worker else ""
    raise AssertionError(f"job {job_id} did not finish: {job}\n{log}")


def consolidate(api: Any, agent_id: str, **body: Any) -> str:
    """POST /v1/agents/{agent_id}/consolidate; return the job id."""
    response = api.post(f"/v1/agents/{agent_id}/consolidate", json=body)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def remember(api: Any, agent_id: str, content: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/memories", json={"agent_id": agent_id, "content": content, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def memories(api: Any, agent_id: str, kind: str) -> list[dict[str, Any]]:
    response = api.get("/v1/memories", params={"agent_id": agent_id, "kind": kind, "status": "any", "limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]
