"""Where an API search spends its time beyond the SQL: py-spy samples the server process while a client searches.

    pip install py-spy                       # not a project dependency; only this script needs it
    python -m bench.profile_search           # 2,000 cubes (client vectors) over 20 agents, 1,500 searches

Prints the wall-clock layers (raw SQL, memcube.search() in process, the API) and the server's CPU samples
by function, inclusive, so the HTTP-side overhead can be assigned to its parts.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import DEFAULT_HOME, Bench, Report, load_embedder, machine_state, percentiles
from bench.corpus import build_corpus, query_texts
from bench.ingest import TENANT, ingest_api
from bench.plans import candidate_statements, run_statements, service_text
from bench.timing import interleave
from memcube.db import connect
from memcube.models import SearchRequest
from memcube.search import SearchStats, search

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_search")
    p.add_argument("--cubes", type=int, default=2000)
    p.add_argument("--queries", type=int, default=1500)
    p.add_argument("--home", default=str(DEFAULT_HOME) + "-profile")
    args = p.parse_args(argv)
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    report = Report("profile-search")
    report.say(f"# Where API search time goes\nmachine: {machine_state()}")
    bench = Bench.start(Path(args.home))
    try:
        _run(report, bench, args, spy)
    finally:
        bench.close()
        report.save()
    return 0


def _run(report: Report, bench: Bench, args: argparse.Namespace, spy: str) -> None:
    embedder = load_embedder()
    questions = list(dict.fromkeys(query_texts()))[:300]
    embedder.cache = dict(zip(questions, embedder.embed_array(questions)))
    qfile = embedder.save_cache(Path(args.home) / "query-vectors.npz")
    url = bench.new_database("profile")
    server = bench.serve(url, qfile)
    token = server.new_key(TENANT)
    texts = build_corpus(args.cubes).texts
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((len(texts), embedder.dim)).astype(np.float32)
    agent_of = lambda i: f"agent-{i % 20:02d}"  # noqa: E731
    ingest_api(server, token, texts, agent_of, embedder, vectors=vectors, label="load (client vectors)")
    queries = [(agent_of(i), questions[i % len(questions)]) for i in range(args.queries)]
    raw, lib = connect(url), connect(url)
    stats = SearchStats(server.settings.scope_count_ttl_seconds)
    common = service_text(url, server.settings)
    stmts = [candidate_statements(server.settings, tenant=TENANT, agent_id=a, vector=embedder.cache[q], text=q,
                                  plan="exact", dim=embedder.dim, words=common) for a, q in queries]
    http = server.client(token)
    embedder.use_cache = True

    def api(i: int) -> None:
        r = http.post("/v1/search", json={"agent_id": queries[i][0], "query": queries[i][1], "k": 10})
        r.raise_for_status()

    def library(i: int) -> None:
        search(lib, tenant=TENANT, request=SearchRequest(agent_id=queries[i][0], query=queries[i][1], k=10),
               embedder=embedder, settings=server.settings, stats=stats)
        lib.commit()

    times, _ = interleave({"raw SQL exact": lambda i: run_statements(raw, stmts[i]),
                           "memcube.search() in process": library, "API POST /v1/search": api},
                          min(300, args.queries), label="layers")
    report.table(["layer (ms)", "p50", "p95", "mean"],
                 [[k, *(percentiles(v)[m] for m in ("p50", "p95", "mean"))] for k, v in times.items()])
    out = Path(tempfile.mkdtemp(prefix="mc-spy-")) / "stacks.txt"
    duration = 20
    spy_proc = subprocess.Popen([spy, "record", "-p", str(server.process.pid), "-d", str(duration), "-r", "200",
                                 "-f", "raw", "-o", str(out), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < duration - 2:
        api(done % len(queries))
        done += 1
    spy_proc.wait(60)
    report.say(f"py-spy: {done} searches in {duration - 2} s while sampling the server at 200 Hz (CPU samples)")
    _summarize(report, out)
    http.close()


IDLE_LEAVES = ("EpollSelector.select", "Condition.wait", "Event.wait", "Connection.wait", "_worker (concurrent")
GROUPS = ("memcube/", "psycopg/", "psycopg_pool/", "pydantic", "fastapi/", "starlette/", "anyio/", "asyncio/",
          "uvicorn/", "h11/", "httptools", "json/", "prometheus_client/", "threading.py", "uuid.py")


def _summarize(report: Report, path: Path) -> None:
    """Self time by leaf function and by package, without the leaves where a thread waits (the event loop's
    select, idle pool workers, psycopg waiting for the server: that time is the database's, not ours)."""
    if not path.exists():
        report.say("py-spy wrote nothing (no ptrace permission?)")
        return
    leaves, groups = collections.Counter(), collections.Counter()
    waiting = total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count, leaf = int(n), stack.split(";")[-1]
        if any(leaf.startswith(idle) for idle in IDLE_LEAVES):
            waiting += count
            continue
        total += count
        leaves[leaf[:100]] += count
        groups[next((g for g in GROUPS if g in leaf), "other")] += count
    report.say(f"server samples: {total} busy, {waiting} waiting (select, idle threads, psycopg awaiting PostgreSQL)")
    report.table(["busy samples by package of the leaf frame", "samples", "% of busy"],
                 [[g, c, 100.0 * c / max(total, 1)] for g, c in groups.most_common()])
    report.table(["busiest leaf functions", "samples", "% of busy"],
                 [[f, c, 100.0 * c / max(total, 1)] for f, c in leaves.most_common(15)])


if __name__ == "__main__":
    sys.exit(main())
