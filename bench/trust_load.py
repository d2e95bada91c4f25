"""Concurrent clients on httpx (no load-testing framework): single creates, batches, session appends, searches
and context assembly for a given time; every acknowledged write is recorded and read back afterwards.

`run_load` is the loop; `Tally` holds what happened; `reconcile` checks that nothing acknowledged was lost.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

WORDS = ("river garden coffee train ticket mountain museum doctor invoice birthday sister project deadline "
         "guitar kitchen winter summer flight hotel lunch budget report meeting concert bicycle library "
         "painting holiday dentist recipe office").split()
# An operation and its weight in the mix.
MIX = {"create": 3, "batch": 1, "append": 3, "search": 4, "context": 2}
BATCH_SIZE = 10


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))).capitalize() + "."


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Tally:
    """Requests per operation and status, latencies of the 2xx answers, and the ids of acknowledged writes."""

    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    acknowledged: dict[str, str] = field(default_factory=dict)  # cube id -> tenant token
    bad_errors: list[str] = field(default_factory=list)  # error answers not in the documented shape
    samples: list[str] = field(default_factory=list)  # the first error answers, for the report
    seconds: float = 0.0

    def record(self, op: str, status: int | str, elapsed: float) -> None:
        self.statuses[op][status] += 1
        if isinstance(status, int) and status < 300:
            self.latencies[op].append(elapsed)

    def errors_by_status(self) -> Counter:
        out: Counter = Counter()
        for counts in self.statuses.values():
            for status, n in counts.items():
                if not (isinstance(status, int) and status < 300):
                    out[status] += n
        return out

    def count(self, op: str | None = None) -> int:
        return sum(sum(c.values()) for name, c in self.statuses.items() if op in (None, name))

    def summary(self) -> dict[str, Any]:
        ops = {}
        for op in sorted(self.statuses):
            lat = self.latencies[op]
            ops[op] = {"requests": self.count(op), "ok": len(lat),
                       "errors": {str(k): v for k, v in self.statuses[op].items()
                                  if not (isinstance(k, int) and k < 300)},
                       "p50_ms": round(percentile(lat, 0.50) * 1000, 1),
                       "p99_ms": round(percentile(lat, 0.99) * 1000, 1)}
        total = self.count()
        return {"seconds": round(self.seconds, 1), "requests": total,
                "per_second": round(total / self.seconds, 1) if self.seconds else None,
                "errors_by_status": {str(k): v for k, v in self.errors_by_status().items()},
                "acknowledged_writes": len(self.acknowledged), "badly_shaped_errors": len(self.bad_errors),
                "error_samples": self.samples[:5],
                "operations": ops}


def error_shape_ok(response: httpx.Response) -> bool:
    """Whether an error answer is {"error": {"code": str, "message": str, "details": ..., "request_id": ...}}."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return (isinstance(error, dict) and set(error) == {"code", "message", "details", "request_id"}
            and isinstance(error["code"], str) and isinstance(error["message"], str))


class Client:
    """One simulated agent application: its own tenant key, agent, users and sessions."""

    def __init__(self, http: httpx.AsyncClient, token: str, n: int, tally: Tally, seed: int) -> None:
        self.http, self.token, self.tally = http, token, tally
        self.rng = random.Random(seed)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.agent = f"agent-{n}"
        self.users = [f"u{n}-{i}" for i in range(3)]
        self.sessions = {user: f"s-{n}-{user}-{uuid.uuid4().hex[:6]}" for user in self.users}
        self.opened: set[str] = set()  # sessions with a message (context names only those: others are a 404)

    async def call(self, op: str, method: str, path: str, body: dict[str, Any]) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, json=body, headers=self.headers)
        except httpx.HTTPError as exc:
            self.tally.record(op, type(exc).__name__, time.perf_counter() - started)
            return None
        self.tally.record(op, response.status_code, time.perf_counter() - started)
        if response.status_code >= 400 and len(self.tally.samples) < 20:
            self.tally.samples.append(f"{op} {path} {response.status_code} {response.text[:300]}")
        if response.status_code >= 400 and not error_shape_ok(response):
            self.tally.bad_errors.append(f"{op} {response.status_code} {response.text[:200]}")
        return response

    def _ack(self, ids: list[str]) -> None:
        for cube_id in ids:
            self.tally.acknowledged[cube_id] = self.token

    async def step(self) -> None:
        rng = self.rng
        user = rng.choice(self.users)
        op = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if not self.tally.acknowledged or not self.opened:
            op = "append"  # context assembly for an agent that holds nothing yet is a 404
        if op == "create":
            r = await self.call(op, "POST", "/v1/memories", {"agent_id": self.agent, "user_id": user,
                                                             "kind": "semantic", "content": sentence(rng),
                                                             "importance": round(rng.random(), 2)})
            if r is not None and r.status_code == 201:
                self._ack([r.json()["id"]])
        elif op == "batch":
            items = [{"agent_id": self.agent, "user_id": user, "content": sentence(rng)} for _ in range(BATCH_SIZE)]
            r = await self.call(op, "POST", "/v1/memories/batch", {"items": items})
            if r is not None and r.status_code in (200, 201):
                self._ack([item["id"] for item in r.json()["items"]])
        elif op == "append":
            messages = [{"role": "user", "content": sentence(rng)}, {"role": "assistant", "content": sentence(rng)}]
            r = await self.call(op, "POST", f"/v1/sessions/{self.sessions[user]}/messages",
                                {"agent_id": self.agent, "user_id": user, "messages": messages})
            if r is not None and r.status_code in (200, 201):
                self._ack([m["id"] for m in r.json()["messages"]])
                self.opened.add(self.sessions[user])
        elif op == "search":
            await self.call(op, "POST", "/v1/search", {"agent_id": self.agent, "user_id": user,
                                                       "query": sentence(rng), "k": 10})
        else:
            session = self.sessions[user]
            await self.call(op, "POST", "/v1/context", {"agent_id": self.agent, "user_id": user,
                                                        "query": sentence(rng), "budget": 1000,
                                                        **({"session_id": session} if session in self.opened
                                                           else {})})


async def run_load(url: str, tokens: list[str], *, clients: int, seconds: float, tally: Tally | None = None,
                   seed: int = 13, pause: float = 0.0, stop: threading.Event | None = None) -> Tally:
    """Run `clients` concurrent clients (round-robin over the tenant tokens) for `seconds`, or until `stop` is
    set; return the tally."""
    tally = tally or Tally()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        agents = [Client(http, tokens[n % len(tokens)], n, tally, seed * 1000 + n) for n in range(clients)]

        async def loop(agent: Client) -> None:
            while time.monotonic() < deadline and not (stop and stop.is_set()):
                await agent.step()
                if pause:
                    await asyncio.sleep(pause)

        started = time.monotonic()
        await asyncio.gather(*(loop(agent) for agent in agents))
        tally.seconds += time.monotonic() - started
    return tally


def run_sync(coroutine: Any) -> Any:
    """Run a coroutine to completion on an event loop of its own, in a thread of its own: callers may already
    run a loop in theirs (a test session whose Playwright browser keeps one running), where asyncio.run refuses."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


async def reconcile(url: str, acknowledged: dict[str, str], *, concurrency: int = 16) -> list[str]:
    """Return the acknowledged cube ids that cannot be read back (should be none)."""
    missing: list[str] = []
    queue = list(acknowledged.items())
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        async def worker() -> None:
            while queue:
                cube_id, token = queue.pop()
                attempt = 0
                while attempt < 5:
                    attempt += 1
                    try:
                        r = await http.get(f"/v1/memories/{cube_id}", headers={"Authorization": f"Bearer {token}"})
                    except httpx.HTTPError:
                        await asyncio.sleep(1)
                        continue
                    if r.status_code == 429:  # the key's read budget: wait as told, not an attempt
                        attempt -= 1
                        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                        continue
                    if r.status_code == 503:
                        await asyncio.sleep(1)
                        continue
                    if r.status_code != 200:
                        missing.append(cube_id)
                    break
                else:
                    missing.append(cube_id)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return missing
