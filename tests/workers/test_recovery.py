"""Crashes and outages: a worker killed in the middle of writing a job's results, and a broker that is down
while work is requested. Each test runs its own workers (and broker)."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis

from memcube.embedded import redis_server_binary
from tests.workers.support import consolidate, memories, remember, wait_job

JAN, JUN = "2024-01-10T09:00:00Z", "2024-06-01T18:30:00Z"


def wait_for(check, *, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_while_writing_a_job_leaves_nothing_and_the_job_completes_once(
        api, agent_id, start_worker, database_url):
    first = start_worker()
    remember(api, agent_id, "I live in Lisbon, near the river.", user_id="u1", session_id="s1", occurred_at=JAN)
    assert wait_job(api, consolidate(api, agent_id, user_id="u1", engine="heuristic"), worker=first)["state"] == \
        "succeeded"
    [lisbon] = memories(api, agent_id, "semantic")
    moved = remember(api, agent_id, "I moved to Porto last month.", user_id="u1", session_id="s1", occurred_at=JUN)

    # Hold the old fact's row: the job's transaction will have written the new fact and then wait here.
    with psycopg.connect(database_url) as blocker, psycopg.connect(database_url, autocommit=True) as watcher:
        blocker.execute("SELECT 1 FROM memcubes WHERE id = %s FOR UPDATE", (lisbon["id"],))
        job_id = consolidate(api, agent_id, user_id="u1", engine="heuristic")
        # (Activity is read from a connection outside the blocker's transaction, which would cache it.)
        wait_for(lambda: watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query LIKE 'UPDATE memcubes%'").fetchone(), timeout=60, what="the job to block on the row")
        assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "running"
        first.kill()
        blocker.rollback()

    # Nothing of the killed attempt is visible.
    assert [(f["content"], f["status"], f["version"]) for f in memories(api, agent_id, "semantic")] == \
        [("The user lives in Lisbon", "active", 1)]
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "running"

    second = start_worker(MEMCUBE_WORKER_QUEUE=first.env["MEMCUBE_WORKER_QUEUE"])
    job = wait_job(api, job_id, worker=second)
    assert job["state"] == "succeeded" and job["attempts"] == 2
    assert job["counts"] == {"episodes": 1, "added": 1, "updated": 0, "superseded": 1, "unchanged": 0,
                             "quarantined": 0, "summaries": 1}
    facts = sorted((f["content"], f["status"]) for f in memories(api, agent_id, "semantic"))
    assert facts == [("The user lives in Lisbon", "superseded"), ("The user lives in Porto", "active")]
    history = api.get(f"/v1/memories/{lisbon['id']}/history").json()["items"]
    assert [h["status"] for h in history] == ["active", "superseded"]
    [porto] = [f for f in memories(api, agent_id, "semantic") if f["status"] == "active"]
    assert porto["provenance"]["derived_from"] == [{"id": moved["id"], "version": 1}]
    [summary] = memories(api, agent_id, "summary")
    assert summary["version"] == 2 and len(summary["provenance"]["derived_from"]) == 2


def start_broker(socket: Path) -> subprocess.Popen:
    process = subprocess.Popen([redis_server_binary(), "--port", "0", "--unixsocket", str(socket), "--save", "",
                                "--appendonly", "no", "--dir", str(socket.parent)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket))
    wait_for(lambda: socket.exists() and _pings(client), timeout=15, what="the broker to start")
    return process


def _pings(client):
    try:
        return client.ping()
    except redis.RedisError:
        return False


def test_work_requested_while_the_broker_is_down_is_done_when_it_is_back(api, agent_id, start_worker, runtime):
    # A broker of its own (short path: unix socket paths are limited), so the rest of the run keeps its Redis.
    socket = Path(tempfile.mkdtemp(prefix="mcb-")) / "broker.sock"
    broker = start_broker(socket)
    try:
        worker = start_worker(MEMCUBE_BROKER_URL="unix://" + quote(str(socket)))
        broker.terminate()
        broker.wait(10)

        remember(api, agent_id, "I work at Acme Robotics.", user_id="u1", session_id="s1")
        response = api.post(f"/v1/agents/{agent_id}/consolidate", json={"user_id": "u1", "engine": "heuristic"})
        assert response.status_code == 202  # the request does not need the broker: it is an outbox row
        job_id = response.json()["job_id"]

        def refused():
            with runtime.pool.connection() as conn:
                return conn.execute("SELECT attempts, last_error FROM outbox WHERE payload->>'job_id' = %s "
                                    "AND sent_at IS NULL AND attempts > 0", (job_id,)).fetchone()

        assert "broker" in wait_for(refused, timeout=30, what="the relay to try the broker")["last_error"]
        time.sleep(1)
        assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"

        broker = start_broker(socket)
        job = wait_job(api, job_id, timeout=120, worker=worker)
        assert job["state"] == "succeeded" and job["counts"]["added"] == 1
        assert [f["content"] for f in memories(api, agent_id, "semantic")] == ["The user works at Acme Robotics"]
        with runtime.pool.connection() as conn:
            sent = conn.execute("SELECT count(*) AS n FROM outbox WHERE payload->>'job_id' = %s "
                                "AND sent_at IS NOT NULL", (job_id,)).fetchone()["n"]
        assert sent == 1
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(socket.parent, ignore_errors=True)
