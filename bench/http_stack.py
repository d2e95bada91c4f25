"""What the HTTP stack costs per request, apart from any database: uvicorn's event loop and parser, and
FastAPI's thread-pool hand-offs.

A bare FastAPI app (no MemCube code, no database) is served twice, by uvicorn with asyncio + h11 and with
uvloop + httptools, each in a process of its own on 127.0.0.1; one keep-alive client calls, interleaved:
- `GET /healthz`: an async route (no hand-off);
- `POST /sync`: a sync route with a sync yield-dependency and a response model, the shape of a MemCube
  route on `Conn` (four hand-offs: enter the dependency, the route, validating the answer, leave);
- `POST /onehop`: the same answer from an async route that does its work in one hand-off and returns
  the serialized model (`services.api.deps.run_authorized`'s shape).

    python -m bench.http_stack               # 2,000 rounds, under a minute
    python -m bench.http_stack --rounds 500
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from bench.common import Report, _free_port, machine_state, percentiles, ratio
from bench.timing import interleave
from memcube.supervisor import spawn

STACKS = {"asyncio + h11": ("asyncio", "h11"), "uvloop + h11": ("uvloop", "h11"),
          "uvloop + httptools": ("uvloop", "httptools")}


class Hit(BaseModel):
    id: int
    content: str
    score: float


class Hits(BaseModel):
    hits: list[Hit]


def _hits() -> Hits:
    return Hits(hits=[Hit(id=i, content="x" * 120, score=0.5) for i in range(10)])


def _dependency() -> Iterator[int]:
    yield 1


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/sync", response_model=Hits)
    def sync_route(body: dict, dep: Annotated[int, Depends(_dependency, scope="function")]) -> Hits:
        return _hits()

    @app.post("/onehop", response_model=Hits)
    async def onehop(body: dict) -> Response:
        return Response(await run_in_threadpool(lambda: _hits().model_dump_json().encode()),
                        media_type="application/json")

    return app


def serve(port: int, loop: str, http: str) -> None:
    import uvicorn

    uvicorn.run(build_app(), host="127.0.0.1", port=port, loop=loop, http=http, log_level="warning",
                access_log=False)


def _wait(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client.get("/healthz")
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the bare app did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    report = Report("http-stack")
    report.say("# What the HTTP stack costs per request (bare FastAPI app, no database)")
    report.say(f"machine: {machine_state()}")
    procs, clients = [], {}
    try:
        for name, (loop, http) in STACKS.items():
            port = _free_port()
            code = f"from bench.http_stack import serve; serve({port}, {loop!r}, {http!r})"
            procs.append(spawn([sys.executable, "-c", code], os.environ))
            clients[name] = httpx.Client(base_url=f"http://127.0.0.1:{port}")
            _wait(clients[name])
        variants = {}
        for name, client in clients.items():
            variants[f"{name}: GET /healthz"] = lambda i, c=client: c.get("/healthz").raise_for_status()
            variants[f"{name}: POST /sync"] = lambda i, c=client: c.post("/sync", json={"q": i}).raise_for_status()
            variants[f"{name}: POST /onehop"] = lambda i, c=client: c.post("/onehop", json={"q": i}).raise_for_status()
        times, _ = interleave(variants, args.rounds, warmup=100, label="requests")
        base = percentiles(times["asyncio + h11: POST /sync"])["p50"]
        rows = []
        for name, samples in times.items():
            p = percentiles(samples)
            rows.append([name, p["p50"], p["p95"], p["mean"], ratio(p["p50"], base)])
            report.figures[name] = p
        report.table(["request (ms)", "p50", "p95", "mean", "p50 × asyncio+h11 /sync"], rows,
                     title=f"## {args.rounds} rounds, interleaved, one keep-alive client per server")
    finally:
        for client in clients.values():
            client.close()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    report.save()


if __name__ == "__main__":
    main()
