"""Trust under load and faults, the short version of `python -m bench.trust`: a deployment of its own (embedded
PostgreSQL, Redis, one `memcube api`, one `memcube worker`, the `hash` embedder) under concurrent clients, with
the API killed mid-batch, the worker killed mid-job, Redis and PostgreSQL restarted, and schemathesis fuzzing
every route. Each check asserts that nothing acknowledged is lost or duplicated."""

import concurrent.futures
import os
import signal
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from bench import trust_faults
from bench.trust_fuzz import fuzz
from bench.trust_load import reconcile, run_load, run_sync
from bench.trust_stack import TrustStack, wait_for


@pytest.fixture(scope="module")
def stack():
    # A short home: pgserver puts its unix socket there when the path allows.
    home = Path(tempfile.mkdtemp(prefix="mcf-"))
    deployment = TrustStack(home).start()
    yield deployment
    deployment.stop()


def test_concurrent_clients_lose_no_acknowledged_write(stack):
    tokens = [stack.new_key() for _ in range(4)]
    tally = run_sync(run_load(stack.url, tokens, clients=16, seconds=20))
    summary = tally.summary()
    assert summary["errors_by_status"] == {}, "\n".join(tally.samples)
    assert not tally.bad_errors
    assert {"create", "batch", "append", "search", "context"} <= set(summary["operations"]), summary
    assert summary["acknowledged_writes"] > 100, summary
    assert run_sync(reconcile(stack.url, tally.acknowledged)) == []


def test_a_batch_is_all_or_nothing_when_the_api_is_killed_mid_batch(stack):
    result = trust_faults.api_killed_mid_batch(stack, rounds=2)
    assert result["problems"] == [], result
    assert result["batches_sent"] > result["acknowledged"] > 0, result


def test_a_job_completes_exactly_once_when_its_worker_is_killed_mid_job(stack):
    result = trust_faults.worker_killed_mid_job(stack)
    assert result["problems"] == [], result


def test_a_redis_restart_loses_no_acknowledged_write(stack):
    result = trust_faults.redis_restarted(stack, down_seconds=3)
    assert result["problems"] == [], result
    assert result["lost"] == 0 and result["acknowledged_writes"] > 0, result


def test_a_postgres_restart_is_503_while_down_and_the_api_recovers_by_itself(stack):
    result = trust_faults.postgres_restarted(stack, down_seconds=5)
    assert result["problems"] == [], result
    assert set(result["phases"]["during"]["errors"]) <= {"503"}, result
    assert result["phases"]["after"]["errors"] == {}, result


def test_schemathesis_finds_no_5xx_and_every_error_in_the_documented_shape(stack):
    report = fuzz(stack.url, stack.admin_token, max_examples=8)
    assert report.operations >= 30, report.summary()
    assert report.problems() == [], "\n".join(report.problems())


def test_after_a_postgres_restart_no_request_meets_a_connection_the_restart_broke(stack):
    token = stack.new_key()
    with stack.client(token) as http:
        # Fill the API's pool with connections (concurrent requests), then restart PostgreSQL under it.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(lambda _: http.get("/v1/memories").status_code, range(40))) == {200}
        stack.stop_postgres()
        stack.start_postgres()
        wait_for(lambda: _connects(stack.database_url), timeout=60, what="PostgreSQL to accept connections")
        # The pool's background reconnection backs off (1 s, 2 s, 4 s) from a failure seen while the database
        # was down; give it time to be past that, without touching the pooled connections meanwhile.
        time.sleep(8)
        # Each pooled connection is checked as it is handed out: a broken one is replaced, not used.
        answers = [http.get("/v1/memories") for _ in range(20)]
        assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers[:2]] + [stack.api.log()[-3000:]]


def _connects(url):
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def test_a_redis_that_stops_answering_slows_an_append_by_seconds_and_loses_nothing(stack):
    # SIGSTOP: the socket stays open and nothing answers, as with a hung server or a partition.
    token = stack.new_key()
    with stack.client(token, timeout=60) as http:
        body = {"agent_id": "frozen", "messages": [{"role": "user", "content": "said while Redis hung"}]}
        assert http.post("/v1/sessions/s-frozen/messages", json=body).status_code == 201
        os.kill(stack.redis_process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            appended = http.post("/v1/sessions/s-frozen/messages", json=body)
            took = time.monotonic() - started
            ready = httpx.get(stack.url + "/readyz", timeout=60)
        finally:
            os.kill(stack.redis_process.pid, signal.SIGCONT)
        assert appended.status_code == 201, appended.text
        assert took < 15, took
        assert ready.status_code == 503 and not ready.json()["checks"]["redis"]["ok"]
        turns = http.get("/v1/memories", params={"agent_id": "frozen", "session_id": "s-frozen"}).json()["items"]
        assert len(turns) == 2
