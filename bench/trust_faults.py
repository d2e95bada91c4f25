"""Faults, each checked for nothing lost and nothing duplicated: the API killed mid-batch, the worker killed
mid-job, Redis restarted, PostgreSQL restarted. Each check returns its figures and a list of problems (empty
when the check holds); tests/test_faults.py asserts on the problems, `python -m bench.trust` prints both."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from typing import Any

import httpx
import psycopg

from bench.trust_load import Tally, reconcile, run_load, run_sync
from bench.trust_stack import TrustStack, wait_for

Result = dict[str, Any]


def _wait_job(http: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        try:
            job = http.get(f"/v1/jobs/{job_id}").json()
        except (httpx.HTTPError, ValueError):
            return None
        return job if job.get("state") in ("succeeded", "failed") else None

    return wait_for(done, timeout=timeout, what=f"job {job_id} to finish", every=0.3)


def api_killed_mid_batch(stack: TrustStack, *, rounds: int = 3, clients: int = 4, batch: int = 100,
                         seed: int = 1) -> Result:
    """kill -9 the API while clients send batches; afterwards each batch exists whole or not at all, and each
    acknowledged batch exists whole."""
    token = stack.new_key()
    rng = random.Random(seed)
    sent: dict[str, bool] = {}  # batch tag -> acknowledged

    async def send(n: int, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=stack.url, timeout=60,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            while not stop.is_set():
                tag = f"b-{uuid.uuid4().hex[:12]}"
                items = [{"agent_id": "batcher", "content": f"item {i} of batch {tag}", "tags": [tag]}
                         for i in range(batch)]
                sent[tag] = False
                try:
                    r = await http.post("/v1/memories/batch", json={"items": items})
                except httpx.HTTPError:
                    return
                sent[tag] = r.status_code == 201 and len(r.json()["items"]) == batch

    async def round_() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(send(n, stop)) for n in range(clients)]
        # Kill once a batch of this round has been acknowledged (so some are whole, others in flight), or after
        # a while when batches are slow (a heavy embedder).
        acked_before = sum(sent.values())
        deadline = time.monotonic() + 20
        while sum(sent.values()) == acked_before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(rng.uniform(0.05, 0.5))
        await asyncio.to_thread(stack.kill_api)
        stop.set()
        await asyncio.gather(*tasks)

    for _ in range(rounds):
        run_sync(round_())
        stack.start_api()
    problems: list[str] = []
    whole = none = 0
    with stack.client(token) as http:
        for tag, acknowledged in sent.items():
            items = http.get("/v1/memories", params={"agent_id": "batcher", "tag": tag, "status": "any",
                                                     "limit": 500}).json()["items"]
            if len(items) == batch:
                whole += 1
            elif not items:
                none += 1
            if len(items) not in (0, batch):
                problems.append(f"batch {tag}: {len(items)} of {batch} items exist")
            if acknowledged and len(items) != batch:
                problems.append(f"acknowledged batch {tag}: {len(items)} of {batch} items exist")
    acked = sum(sent.values())
    return {"name": "api kill -9 mid-batch", "rounds": rounds, "batches_sent": len(sent), "acknowledged": acked,
            "unacknowledged_whole": whole - acked, "unacknowledged_absent": none, "problems": problems}


def worker_killed_mid_job(stack: TrustStack) -> Result:
    """kill -9 the worker while a consolidation job writes its results (held on a row lock, so the kill lands
    inside the job's transaction); a new worker completes the job exactly once."""
    token = stack.new_key()
    agent = "consolidator"
    problems: list[str] = []
    with stack.client(token) as http, psycopg.connect(stack.database_url) as blocker, \
            psycopg.connect(stack.database_url, autocommit=True) as watcher:
        def remember(content: str, when: str) -> dict[str, Any]:
            r = http.post("/v1/memories", json={"agent_id": agent, "user_id": "u1", "session_id": "s1",
                                                "content": content, "occurred_at": when})
            r.raise_for_status()
            return r.json()

        def consolidate() -> str:
            r = http.post(f"/v1/agents/{agent}/consolidate", json={"user_id": "u1", "engine": "heuristic"})
            r.raise_for_status()
            return r.json()["job_id"]

        def facts() -> list[dict[str, Any]]:
            return http.get("/v1/memories", params={"agent_id": agent, "kind": "semantic", "status": "any",
                                                    "limit": 500}).json()["items"]

        remember("I live in Lisbon, near the river.", "2024-01-10T09:00:00Z")
        first = _wait_job(http, consolidate())
        if first["state"] != "succeeded":
            return {"name": "worker kill -9 mid-job", "problems": [f"the first job did not succeed: {first}"]}
        [lisbon] = facts()
        remember("I moved to Porto last month.", "2024-06-01T18:30:00Z")
        blocker.execute("SELECT 1 FROM memcubes WHERE id = %s FOR UPDATE", (lisbon["id"],))
        job_id = consolidate()
        wait_for(lambda: watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query LIKE 'UPDATE memcubes%'").fetchone(), timeout=60, what="the job to block on the row")
        stack.kill_worker()
        blocker.rollback()
        during = [(f["content"], f["status"], f["version"]) for f in facts()]
        if during != [("The user lives in Lisbon", "active", 1)]:
            problems.append(f"the killed attempt left writes behind: {during}")
        stack.start_worker()
        job = _wait_job(http, job_id)
        after = sorted((f["content"], f["status"]) for f in facts())
        if job["state"] != "succeeded" or job["attempts"] != 2:
            problems.append(f"job {job_id} ended {job['state']} after {job['attempts']} attempts")
        if job.get("counts", {}).get("added") != 1 or job.get("counts", {}).get("superseded") != 1:
            problems.append(f"job counts {job.get('counts')}")
        if after != [("The user lives in Lisbon", "superseded"), ("The user lives in Porto", "active")]:
            problems.append(f"facts after the job: {after}")
        history = http.get(f"/v1/memories/{lisbon['id']}/history").json()["items"]
        if [h["status"] for h in history] != ["active", "superseded"]:
            problems.append(f"the old fact's history: {[h['status'] for h in history]}")
    return {"name": "worker kill -9 mid-job", "job_state": job["state"], "attempts": job["attempts"],
            "facts": after, "problems": problems}


def _ready(stack: TrustStack) -> bool:
    try:
        return httpx.get(stack.url + "/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _outage(stack: TrustStack, *, name: str, stop, start, down_seconds: float, clients: int,
            before: float = 3.0, after: float = 8.0) -> Result:
    """Run light load through an outage (stop, down_seconds, start); return statuses before, during and after,
    and the acknowledged writes that cannot be read back."""
    tokens = [stack.new_key() for _ in range(2)]
    api_pid = stack.api.process.pid if stack.api and stack.api.process else None
    phases: dict[str, Tally] = {"before": Tally(), "during": Tally(), "after": Tally()}
    current = {"tally": phases["before"]}

    class Routed(Tally):
        """Records into whichever phase is current."""

        def record(self, op: str, status: int | str, elapsed: float) -> None:  # type: ignore[override]
            current["tally"].record(op, status, elapsed)

    routed = Routed()
    stop_load = threading.Event()
    thread = threading.Thread(target=lambda: run_sync(run_load(stack.url, tokens, clients=clients,
                                                                  seconds=600, tally=routed, seed=7,
                                                                  pause=0.05, stop=stop_load)))
    thread.start()
    time.sleep(before)
    current["tally"] = phases["during"]
    stopped = time.monotonic()
    stop()
    time.sleep(down_seconds)
    start()
    back = time.monotonic()
    # The outage is over for clients once the API says it is ready again (the pool has reconnected); from then
    # on every answer must be a success.
    wait_for(lambda: _ready(stack), timeout=120, what="the API to be ready again", every=0.1)
    recovered = time.monotonic() - back
    current["tally"] = phases["after"]
    time.sleep(after)
    stop_load.set()
    thread.join()
    problems: list[str] = []
    for phase, tally in phases.items():
        for status, n in tally.errors_by_status().items():
            allowed = phase == "during" and status == 503
            if not allowed:
                problems.append(f"{n} answers {status} {phase} the outage")
    missing = run_sync(reconcile(stack.url, routed.acknowledged))
    if missing:
        problems.append(f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}")
    if routed.bad_errors:
        problems.append(f"errors not in the documented shape: {routed.bad_errors[:3]}")
    new_pid = stack.api.process.pid if stack.api and stack.api.process else None
    if new_pid != api_pid or not (stack.api and stack.api.alive()):
        problems.append("the API process did not survive the outage")
    if not phases["after"].count():
        problems.append("no requests after the outage")
    # Background work still flows: a consolidation asked for now completes.
    with stack.client(tokens[0]) as http:
        r = http.post("/v1/agents/agent-0/consolidate", json={"engine": "heuristic"})
        job = _wait_job(http, r.json()["job_id"]) if r.status_code == 202 else {"state": f"HTTP {r.status_code}"}
        if job["state"] != "succeeded":
            problems.append(f"a consolidation after the outage ended {job['state']}")
    summary = {phase: {"requests": t.count(), "errors": {str(k): v for k, v in t.errors_by_status().items()}}
               for phase, t in phases.items()}
    return {"name": name, "down_seconds": down_seconds, "outage_seconds": round(back - stopped, 1),
            "ready_again_after_seconds": round(recovered, 2),
            "phases": summary, "acknowledged_writes": len(routed.acknowledged), "lost": len(missing),
            "problems": problems}


def redis_restarted(stack: TrustStack, *, down_seconds: float = 3.0, clients: int = 4) -> Result:
    """Stop Redis under load and start it again: acknowledged writes are all there, 503 only while it is down."""
    return _outage(stack, name="redis restart", stop=stack.stop_redis, start=stack.start_redis,
                   down_seconds=down_seconds, clients=clients)


def postgres_restarted(stack: TrustStack, *, down_seconds: float = 5.0, clients: int = 4) -> Result:
    """Stop PostgreSQL under load and start it again: 503 while it is down, then the same API process serves
    again (its pool reconnects), and every acknowledged write is there."""
    return _outage(stack, name="postgres restart", stop=stack.stop_postgres, start=stack.start_postgres,
                   down_seconds=down_seconds, clients=clients)
