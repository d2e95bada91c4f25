"""Does the `hnsw` candidate query keep its plan once psycopg has prepared it? One 50k-row scope in 60k rows.

    python -m bench.plan_cache          # ~5 min on 2 cores (most of it is the HNSW build)

psycopg prepares a statement after 5 runs; PostgreSQL then tries 5 custom plans and may switch to a generic
plan for good. The same statements as search_candidates' `hnsw` plan run 30 times on one connection, with
`plan_cache_mode` at its default (`auto`) and at `force_custom_plan`; the generic plan is printed.
Random unit vectors (the plan, not the answer, is under test).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from bench.common import DEFAULT_HOME, Bench, Report, load_embedder, machine_state
from bench.corpus import build_corpus
from bench.ingest import TENANT, ingest_raw, raw_rows, vacuum_analyze
from bench.plans import candidate_statements, explain_generic, run_statements, service_text, short_plan
from memcube.config import Settings
from memcube.db import connect
from memcube.space import ensure_space

QUESTIONS = ["When did Caroline go to the LGBTQ support group?", "What did Melanie paint?", "Where does Jon work?"]


def main() -> int:
    report = Report("plan-cache")
    report.say(f"# Plan cache and the hnsw plan\nmachine: {machine_state()}")
    bench = Bench.start(Path(str(DEFAULT_HOME) + "-plancache"))
    try:
        url = bench.new_database("plancache")
        n, scope = 60_000, 50_000
        rng = np.random.default_rng(1)
        vectors = rng.standard_normal((n, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        agent = lambda i: "x-50000" if i < scope else f"f-{i % 10}"  # noqa: E731
        ingest_raw(url, raw_rows(build_corpus(n).texts, vectors, agent), None, label="load (no HNSW yet)")
        embedder = load_embedder()
        with connect(url) as conn:
            started = time.perf_counter()
            ensure_space(conn, embedder)  # builds the HNSW index, as API start-up does
            conn.commit()
        report.say(f"{n} rows, scope x-50000 holds {scope}; HNSW built in {time.perf_counter() - started:.0f} s")
        vacuum_analyze(url)
        settings = Settings()
        common = service_text(url, settings)
        qv = embedder.embed_array(QUESTIONS)
        stmts = None
        for mode in ("auto", "force_custom_plan"):
            with connect(url) as conn:
                conn.execute("SELECT set_config('plan_cache_mode', %s, false)", (mode,))
                conn.commit()
                times = []
                for i in range(30):
                    stmts = candidate_statements(settings, tenant=TENANT, agent_id="x-50000", vector=qv[i % 3],
                                                 text=QUESTIONS[i % 3], plan="hnsw", dim=embedder.dim,
                                                 words=common)
                    started = time.perf_counter()
                    run_statements(conn, stmts)
                    times.append((time.perf_counter() - started) * 1000)
            report.say(f"plan_cache_mode={mode}: runs 1-10 median {np.median(times[:10]):.0f} ms, runs 11-30 "
                       f"median {np.median(times[10:]):.0f} ms; all: " + " ".join(f"{t:.0f}" for t in times))
        with connect(url) as conn:
            report.say("generic plan of the hnsw candidate query (vec CTE):")
            report.say(short_plan(explain_generic(conn, stmts)).split("CTE txt")[0])
    finally:
        bench.close()
        report.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
