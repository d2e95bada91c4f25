"""Past one machine: two API processes and two workers on one database and one Redis keep every guarantee —
read-your-writes across processes, revocation effective on both APIs at once, one owner per job, and no
consolidation applied twice even when every job is delivered to both workers at once."""

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from memcube.db import connect
from memcube.jobs import CONSOLIDATE_TASK
from memcube.store import outbox as outbox_store
from tests.workers.support import WorkerProcess, worker_env

TOKEN = "deployment-admin-" + uuid.uuid4().hex
USERS = [f"u{i}" for i in range(4)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiProcess:
    """One `memcube api` process, as a deployment runs several behind a load balancer."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "services.cli", "api"],
                                            env={**env, "MEMCUBE_PORT": str(self.port)}, stdout=out,
                                            stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise AssertionError("api did not become ready:\n" + self.log.read_text())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture()
def deployment(scratch_url, redis_url, tmp_path):
    """Two APIs and two workers on one fresh database and the run's Redis, all on the `hash` embedder (no model
    to load, so four processes start in seconds)."""
    env = worker_env(scratch_url, redis_url, "http://127.0.0.1:9/v1", tmp_path, MEMCUBE_EMBEDDER="hash",
                     MEMCUBE_ADMIN_TOKEN=TOKEN, MEMCUBE_CONSOLIDATE_ENGINE="heuristic")
    migrate = subprocess.run([sys.executable, "-m", "services.cli", "migrate"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    apis = [ApiProcess(env, tmp_path / f"api-{i}.log") for i in range(2)]
    workers = []
    try:
        for api in apis:
            api.wait_ready()
        workers = [WorkerProcess(env, tmp_path / f"worker-{i}.log").start() for i in range(2)]
        yield apis, workers, env
    finally:
        for process in [*workers]:
            process.stop()
        for api in apis:
            api.stop()


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_two_apis_and_two_workers_keep_every_guarantee(deployment):
    (a, b), workers, env = deployment
    admin = client(a.url, TOKEN)
    key = admin.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["read", "write"]}).json()
    on_a, on_b = client(a.url, key["token"]), client(b.url, key["token"])

    # Read-your-writes across processes: what one API acknowledged, the other serves at once.
    for i in range(10):
        writer, reader = (on_a, on_b) if i % 2 == 0 else (on_b, on_a)
        created = writer.post("/v1/memories", json={"agent_id": "bot", "content": f"Fact number {i} is {i * 7}"})
        assert created.status_code == 201
        assert reader.get(f"/v1/memories/{created.json()['id']}").status_code == 200
        hits = reader.post("/v1/search", json={"agent_id": "bot", "query": f"fact number {i}", "k": 20}).json()
        assert created.json()["id"] in [h["id"] for h in hits["hits"]]

    # Episodes for four scopes, written through both APIs.
    for n, user in enumerate(USERS):
        for text in (f"I live in City{n}.", f"My name is Person{n}."):
            api = on_a if n % 2 else on_b
            assert api.post("/v1/memories", json={"agent_id": "bot", "user_id": user, "content": text,
                                                  "session_id": f"s-{user}"}).status_code == 201

    # Both APIs ask for each scope's consolidation at the same moment: they join one queued job, or (when a
    # worker took it meanwhile) queue the next, which finds nothing left to do. With two idle workers every job
    # may be taken before its twin asks, so all eight may be new: joining a queued job is tested without a
    # worker in tests/services/test_consolidate_api.py.
    answers: list[dict] = []
    ask = [threading.Thread(target=lambda api=api, user=user: answers.append(
        api.post("/v1/agents/bot/consolidate", json={"user_id": user}).json()))
        for user in USERS for api in (on_a, on_b)]
    for thread in ask:
        thread.start()
    for thread in ask:
        thread.join()
    jobs = {answer["job_id"] for answer in answers}
    assert len(answers) == 8 and 4 <= len(jobs) == sum(not answer["existing"] for answer in answers) <= 8

    # Every job delivered to the broker three more times: both workers race for each one.
    with connect(env["DATABASE_URL"]) as conn:
        for job_id in jobs:
            for _ in range(3):
                outbox_store.insert_message(conn, task=CONSOLIDATE_TASK, payload={"job_id": job_id})
        conn.commit()

    # Wait until every delivery, duplicates included, has been handled by one worker or the other.
    deadline = time.monotonic() + 90
    while True:
        handled = sum(w.log().count(f"Task {CONSOLIDATE_TASK}[") for w in workers) // 2  # received + succeeded
        states = [on_b.get(f"/v1/jobs/{job_id}").json() for job_id in jobs]
        if handled >= 4 * len(jobs) and all(job["state"] in ("succeeded", "failed") for job in states):
            break
        assert time.monotonic() < deadline, f"{handled} deliveries handled; jobs {states}\n" + workers[0].log()[-2000:]
        time.sleep(0.3)
    assert {(job["state"], job["attempts"]) for job in states} == {("succeeded", 1)}
    # Each episode consolidated once, each fact added once, whichever worker ran which job.
    assert sum(job["counts"]["episodes"] for job in states) == 8
    assert sum(job["counts"]["added"] for job in states) == 8
    facts = on_a.get("/v1/memories", params={"agent_id": "bot", "kind": "semantic", "limit": 500}).json()["items"]
    assert sorted((f["content"], f["version"]) for f in facts) == sorted(
        (text, 1) for n in range(4) for text in (f"The user lives in City{n}", f"The user's name is Person{n}"))

    # Revocation is effective on both APIs at once: no cache holds the key anywhere.
    assert on_a.get("/v1/memories").status_code == on_b.get("/v1/memories").status_code == 200
    assert admin.delete(f"/v1/admin/keys/{key['id']}").status_code == 200
    assert on_b.get("/v1/memories").status_code == 401 and on_a.get("/v1/memories").status_code == 401
    for http in (admin, on_a, on_b):
        http.close()
