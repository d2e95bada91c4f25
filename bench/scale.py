"""Scale benchmark: batch ingest and scoped search through the API, beside the same work done directly in SQL
on the same data in the same run, and the crossover between the exact and the HNSW plan.

    python -m bench.scale --quick            # ~2k cubes, about a minute: checks that everything runs
    python -m bench.scale --size 10000
    python -m bench.scale --size 100000      # ~25 min on 2 cores (the corpus is embedded twice)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (DEFAULT_HOME, Bench, BenchEmbedder, Report, load_embedder, machine_state,
                          percentiles, ratio, server_settings_text)
from bench.corpus import build_corpus, query_texts
from bench.crossover import crossover_layout, crossover_section
from bench.ingest import (TENANT, IngestRun, ingest_api, ingest_raw, raw_rows, stored_vectors,
                          vacuum_analyze)
from bench.plans import (candidate_statements, explain, explain_generic, run_statements, service_text,
                         short_plan, vector_indexes)
from bench.timing import interleave
from memcube.config import Settings
from memcube.db import connect, open_pool
from memcube.models import SearchRequest
from memcube.search import SearchStats, search
from memcube.vector_index import fill_pending, index_large_scopes

K = 10


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    stages = [1000] if args.quick else sorted(set(args.size or [10_000]))
    if args.quick:
        args.diag_size, args.diag_embed_size = 1000, 500
    n_queries = args.queries or (100 if args.quick else 1000)
    report = Report("scale-" + "-".join(str(s) for s in stages))
    state = machine_state()
    report.figures.update(machine=state, stages=stages, agents=args.agents, queries=n_queries)
    report.say(f"# MemCube scale benchmark: {' then '.join(map(str, stages))} cubes over {args.agents} agents, "
               f"{n_queries} queries per stage, k={K}")
    report.say(f"machine: {state}")
    bench = Bench.start(Path(args.home), keep=args.keep)
    try:
        _run(bench, report, args, stages, n_queries)
    finally:
        bench.close()
        report.save()
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, action="append", default=None,
                   help="cubes to ingest; repeat for stages measured in one run, e.g. --size 10000 --size 100000 "
                        "(search at 10k, then ingest on to 100k and search again; default 10000)")
    p.add_argument("--quick", action="store_true", help="1000 cubes and 100 queries: checks the script runs")
    p.add_argument("--agents", type=int, default=100, help="agents the cubes are spread over (default 100)")
    p.add_argument("--queries", type=int, default=0, help="search queries (default 1000; quick 150)")
    p.add_argument("--crossover-queries", type=int, default=0, help="queries per crossover scope (default 100)")
    p.add_argument("--batch", type=int, default=500, help="items per batch call (default 500)")
    p.add_argument("--probe-every", type=int, default=0,
                   help="embed every n-th batch with the embedder alone too (default: about 10k texts in all)")
    p.add_argument("--diag-size", type=int, default=5000, help="cubes of the SQL-path diagnostics (default 5000)")
    p.add_argument("--diag-embed-size", type=int, default=2000,
                   help="cubes of the diagnostics that embed (default 2000)")
    p.add_argument("--skip-crossover", action="store_true")
    p.add_argument("--home", default=str(DEFAULT_HOME), help="embedded stack folder (default /tmp/mc-bench)")
    p.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    return p.parse_args(argv)


def index_every_scope(url: str) -> float:
    """Put every scope into the HNSW index now (what the worker does for scopes past the threshold); return
    seconds. Server B searches with threshold 0, and uses the index only for scopes it holds whole."""
    started = time.perf_counter()
    pool = open_pool(Settings(db_pool_min=1, db_pool_max=2), url)
    try:
        with pool.connection() as conn:
            index_large_scopes(conn, threshold=0)
        for _ in range(10):
            if not fill_pending(pool, limit=1000)["scopes"]:
                break
    finally:
        pool.close()
    return time.perf_counter() - started


def _run(bench: Bench, report: Report, args: argparse.Namespace, stages: list[int], n_queries: int) -> None:
    size = stages[-1]
    corpus = build_corpus(size)
    report.say(f"corpus: {corpus.description}")
    embedder = load_embedder()
    report.say(f"embedder: {embedder.name} ({embedder.dim} dims); query texts: LoCoMo questions, agent i % "
               f"{args.agents} for query i")
    agent_of = lambda i: f"agent-{i % args.agents:03d}"  # noqa: E731
    questions = query_texts()
    queries = [(agent_of(i), questions[i % len(questions)]) for i in range(n_queries)]
    x_queries = args.crossover_queries or (20 if args.quick else 100)
    cached = list(dict.fromkeys(questions[:max(n_queries, x_queries)]))
    embedder.cache = dict(zip(cached, embedder.embed_array(cached)))
    qfile = embedder.save_cache(Path(args.home) / "query-vectors.npz")
    # End-to-end searches use other questions, which no server has precomputed.
    fresh = [q for q in dict.fromkeys(questions) if q not in embedder.cache] or [f"and {q}" for q in cached]

    api_url = bench.new_database("api")
    raw_url = bench.new_database("raw")
    diag_url = bench.new_database("diag")
    # Every server starts now: a migration file edited during a long run cannot stop a later start.
    server_a = bench.serve(api_url, qfile)
    server_b = bench.serve(api_url, qfile, exact_scan_max_rows=0)
    server_c = bench.serve(raw_url, qfile)
    server_d = bench.serve(diag_url)
    with connect(api_url) as c:
        report.say("database: " + server_settings_text(c))
    token = server_a.new_key(TENANT)
    n_batches = -(-size // args.batch)
    probe_every = args.probe_every or max(1, -(-n_batches * args.batch // 8_000))
    report.say(f"ingest: calls of {args.batch}; every {probe_every}. batch is also embedded by the embedder alone "
               f"right before its API call (off the API's clock): the embedder's own throughput on the same "
               f"texts, interleaved so that load changes hit both alike.\n")
    runs, done = [], 0
    for stage in stages:
        run = ingest_api(server_a, token, corpus.texts[done:stage], agent_of, embedder, batch=args.batch,
                         offset=done, probe_every=probe_every, label=f"API ingest to {stage}")
        runs.append((f"{done}→{stage}", run))
        _stage_ingest_report(report, stage, done, run)
        seconds = vacuum_analyze(api_url)
        report.say(f"VACUUM ANALYZE after the load: {seconds:.1f} s (what autovacuum would do; keeps plans "
                   "stable)")
        seconds = index_every_scope(api_url)
        report.say(f"every scope put into the HNSW index for server B's hnsw plan (threshold 0): {seconds:.1f} s; "
                   "later stages ingest into indexed scopes, as a large scope does\n")
        _search_section(report, stage, server_a, server_b, token, embedder, queries, fresh)
        _explain_section(report, api_url, embedder, queries[0], f"{stage} cubes, one agent's scope "
                                                                 f"({stage // args.agents} rows)")
        done = stage
    vectors = stored_vectors(api_url, size)
    layout, sizes = crossover_layout(size)
    raw_run = ingest_raw(raw_url, raw_rows(corpus.texts, vectors, layout.__getitem__), embedder, batch=args.batch)
    diag = _ingest_diagnostics(server_d, diag_url, embedder, corpus.texts, vectors, args)
    _ingest_report(report, runs, raw_run, diag, args.batch)
    vacuum_analyze(raw_url)
    if not args.skip_crossover:
        index_every_scope(raw_url)  # the crossover compares both plans on every scope size
        crossover_section(report, server_c, raw_url, embedder, questions[:x_queries], sizes, K)
        _explain_section(report, raw_url, embedder, (f"x-{sizes[-1]}", questions[0]),
                         f"the largest crossover scope ({sizes[-1]} rows)")
    _targets(report)


def _stage_ingest_report(report: Report, stage: int, start: int, run: IngestRun) -> None:
    e = run.probe_rows / run.probe_embed_seconds if run.probe_embed_seconds else float("nan")
    same = ratio(run.probe_embed_seconds, run.probe_api_seconds)
    report.table(["ingest", "cubes", "seconds", "cubes/s", "× embedder"], [
        ["embedder alone (the service's chunks and threads; interleaved sample, same texts)", run.probe_rows, run.probe_embed_seconds, e,
         1.0],
        [f"API POST /v1/memories/batch (1 client), cubes {start}→{stage}", run.rows, run.seconds, run.rate,
         ratio(run.rate, e)],
        ["API on exactly the sampled batches", run.probe_rows, run.probe_api_seconds,
         ratio(run.probe_rows, run.probe_api_seconds), same],
    ], title=f"## Stage {stage}: 1. batch ingest (HNSW, GIN and btree indexes present)")
    embed_ms = 1000 * run.probe_embed_seconds / max(run.probe_rows, 1)
    api_ms = 1000 * run.probe_api_seconds / max(run.probe_rows, 1)
    report.say(f"per cube on the sampled batches: API {api_ms:.2f} ms, embedder alone {embed_ms:.2f} ms; the "
               f"difference, {api_ms - embed_ms:.2f} ms a cube, is HTTP, validation, SQL and serialization.")
    report.figures.setdefault("ingest_stages", {})[stage] = {
        **vars(run), "embedder_rate": e, "ratio_api_to_embedder": ratio(run.rate, e), "ratio_same_batches": same}


def _ingest_diagnostics(server: Any, url: str, embedder: BenchEmbedder, texts: list[str], vectors: np.ndarray,
                        args: argparse.Namespace) -> dict[str, IngestRun]:
    """Where the API's ingest time goes, on a sample in a database of its own:
    raw SQL without the HNSW index; the API with client-supplied vectors (no embedding); the API with
    two clients at once (embedding of one batch overlapping the insert of another)."""
    n = min(args.diag_size, len(texts))
    with connect(url) as conn:  # the server built the HNSW index at start: drop it for this one measurement
        conn.execute("SELECT memcube_ensure_vector_index(NULL)")
        conn.commit()
    out = {"raw SQL, no HNSW index": ingest_raw(url, raw_rows(texts[:n], vectors[:n], lambda i: f"d-{i % 100}"),
                                                 None, batch=args.batch, label="raw SQL, no HNSW")}
    with connect(url) as conn:
        conn.execute("SELECT memcube_ensure_vector_index(%s)", (embedder.dim,))
        conn.commit()
    token = server.new_key(TENANT)
    agent = lambda i: f"d-{i % 100}"  # noqa: E731
    out["API, client vectors (no embedding)"] = ingest_api(
        server, token, texts[:n], agent, embedder, batch=args.batch, offset=n, vectors=vectors[:n],
        label="API client vectors")
    m = min(args.diag_embed_size, len(texts))
    out["API, embedding, 1 client"] = ingest_api(server, token, texts[:m], agent, embedder, batch=args.batch,
                                                 offset=2 * n, clients=1, label="API 1 client")
    out["API, embedding, 2 clients"] = ingest_api(server, token, texts[:m], agent, embedder, batch=args.batch,
                                                  offset=2 * n + m, clients=2, label="API 2 clients")
    embed_only = time.perf_counter()
    embedder.embed_array(texts[:m], chunk=args.batch)
    out["embedder alone (same sample)"] = IngestRun(rows=m, seconds=time.perf_counter() - embed_only)
    return out


def _ingest_report(report: Report, runs: list[tuple[str, IngestRun]], raw_run: IngestRun,
                   diag: dict[str, IngestRun], batch: int) -> None:
    probe_rows = sum(r.probe_rows for _, r in runs)
    probe_embed = sum(r.probe_embed_seconds for _, r in runs)
    e = probe_rows / probe_embed if probe_embed else float("nan")
    total = IngestRun(rows=sum(r.rows for _, r in runs), seconds=sum(r.seconds for _, r in runs))
    rows = [["embedder alone (the service's chunks and threads; interleaved sample of the same texts)", probe_rows, probe_embed, e, 1.0]]
    for label, run in runs:
        rows.append([f"API POST /v1/memories/batch ({batch}/call, 1 client), cubes {label}", run.rows, run.seconds,
                     run.rate, ratio(run.rate, e)])
    rows.append(["API, all stages", total.rows, total.seconds, total.rate, ratio(total.rate, e)])
    rows.append(["raw SQL insert of precomputed rows (same statements, own database)", raw_run.rows,
                 raw_run.seconds, raw_run.rate, ratio(raw_run.rate, e)])
    report.table(["ingest", "cubes", "seconds", "cubes/s", "× embedder"], rows,
                 title="## Ingest, all stages (every row with the HNSW, GIN and btree indexes present)")
    per_row = {k: 1000 * v / raw_run.rows for k, v in raw_run.phases.items()}
    report.say("raw SQL phases, ms a cube: " + ", ".join(f"{k} {v:.3f}" for k, v in per_row.items()))
    drows = []
    for name, run in diag.items():
        phases = ", ".join(f"{k} {1000 * v / run.rows:.3f}" for k, v in run.phases.items()) if run.phases else ""
        drows.append([name, run.rows, run.rate, 1000 / run.rate if run.rate else float("nan"), phases])
    report.table(["diagnostic (sample, own database)", "cubes", "cubes/s", "ms/cube", "phases, ms/cube"], drows,
                 title="\nIngest diagnostics")
    report.figures["ingest"] = {
        "embedder_rate": e, "api": vars(total), "raw_sql": vars(raw_run),
        "ratio_api_to_embedder": ratio(total.rate, e), "diagnostics": {k: vars(v) for k, v in diag.items()}}


def _search_section(report: Report, stage: int, server_a: Any, server_b: Any, token: str,
                    embedder: BenchEmbedder, queries: list[tuple[str, str]], fresh: list[str]) -> None:
    """Search latency through the API beside the service's own candidate query run directly, per plan."""
    settings = server_a.settings
    url = settings.database_url
    raw = connect(url)
    lib = connect(url)
    stats = SearchStats(settings.scope_count_ttl_seconds)
    dim = embedder.dim
    common = service_text(url, settings)
    report.say(f"query words in more than {settings.text_common_fraction:.0%} of a scope's memories are left out "
               "of its full-text half")
    stmts = {plan: [candidate_statements(settings, tenant=TENANT, agent_id=a, vector=embedder.cache[q], text=q,
                                         plan=plan, dim=dim, words=common, k=K) for a, q in queries]
             for plan in ("exact", "hnsw")}
    http_a, http_b = server_a.client(token), server_b.client(token)

    def api(http: Any, cached: bool) -> Any:
        def call(i: int) -> Any:
            agent, text = queries[i]
            text = text if cached else fresh[i % len(fresh)]
            r = http.post("/v1/search", json={"agent_id": agent, "query": text, "k": K})
            r.raise_for_status()
            body = r.json()
            return len(body["hits"]), body["plan"]
        return call

    def library(i: int) -> Any:
        embedder.use_cache = True
        agent, text = queries[i]
        result = search(lib, tenant=TENANT, request=SearchRequest(agent_id=agent, query=text, k=K),
                        embedder=embedder, settings=settings, stats=stats)
        lib.commit()
        return len(result.hits), result.plan

    variants = {
        "raw SQL exact": lambda i: _vector_ids(run_statements(raw, stmts["exact"][i])),
        "memcube.search() in process, exact": library,
        "API exact (query vector precomputed)": api(http_a, True),
        "raw SQL hnsw": lambda i: _vector_ids(run_statements(raw, stmts["hnsw"][i])),
        "API hnsw (threshold 0; query vector precomputed)": api(http_b, True),
        "API end to end (embeds the query; other questions)": api(http_a, False),
        "embedder alone, batch 1 (the query)": lambda i: embedder.inner.embed([queries[i][1]]),
        "HTTP floor (GET /healthz, no auth, no DB)": lambda i: http_a.get("/healthz").status_code,
        "API floor (GET /v1/memories?limit=1: auth + 1 row)": lambda i: http_a.get(
            "/v1/memories", params={"agent_id": queries[i][0], "limit": 1}).status_code,
    }
    times, outs = interleave(variants, len(queries), label="search")
    embedder.use_cache = False
    latency = {name: percentiles(t) for name, t in times.items()}
    base = {"exact": latency["raw SQL exact"]["p50"], "hnsw": latency["raw SQL hnsw"]["p50"]}
    rows = []
    for name, s in latency.items():
        plan = "hnsw" if "hnsw" in name else "exact"
        versus = ratio(s["p50"], base[plan]) if ("API" in name or "memcube" in name or "raw" in name) else None
        rows.append([name, s["p50"], s["p95"], s["p99"], s["mean"], versus])
    report.table(["search (ms)", "p50", "p95", "p99", "mean", "p50 × raw SQL same plan"], rows,
                 title=f"## Stage {stage}: 2. search, {len(queries)} queries over the agents, k={K} "
                       "(interleaved, order rotated per query)")
    p95 = {n: ratio(latency[n]["p95"], base_p95) for n, base_p95 in
           (("API exact (query vector precomputed)", latency["raw SQL exact"]["p95"]),
            ("API hnsw (threshold 0; query vector precomputed)", latency["raw SQL hnsw"]["p95"]))}
    report.say("p95 ratios API/raw: " + ", ".join(f"{k.split(' (')[0]} {v:.2f}×" for k, v in p95.items()))
    _completeness(report, outs, queries)
    report.figures.setdefault("search", {})[stage] = {"latency_ms": latency, "p50_ratio_api_exact": ratio(
        latency["API exact (query vector precomputed)"]["p50"], base["exact"]), "p50_ratio_api_hnsw": ratio(
        latency["API hnsw (threshold 0; query vector precomputed)"]["p50"], base["hnsw"])}
    http_a.close()
    http_b.close()
    raw.close()
    lib.close()


def _vector_ids(rows: list[dict[str, Any]]) -> list[Any]:
    """The ids the vector half returned, nearest first."""
    found = [r for r in rows if r["vector_distance"] is not None]
    return [r["id"] for r in sorted(found, key=lambda r: r["vector_distance"])]


def _completeness(report: Report, outs: dict[str, list[Any]], queries: list[tuple[str, str]]) -> None:
    exact, hnsw = outs["raw SQL exact"], outs["raw SQL hnsw"]
    n = len(exact[0]) if exact else 0
    full_exact = sum(len(e) == max(len(x) for x in exact) for e in exact)
    full_hnsw = sum(len(h) >= len(e) for h, e in zip(hnsw, exact))
    recall10 = np.mean([len(set(h[:K]) & set(e[:K])) / max(len(e[:K]), 1) for h, e in zip(hnsw, exact)])
    recall_n = np.mean([len(set(h) & set(e)) / max(len(e), 1) for h, e in zip(hnsw, exact)])
    api_rows = []
    for name in ("memcube.search() in process, exact", "API exact (query vector precomputed)",
                 "API hnsw (threshold 0; query vector precomputed)", "API end to end (embeds the query; other questions)"):
        got = outs[name]
        plans = Counter(p for _, p in got)
        api_rows.append([name, sum(h == K for h, _ in got), len(got), dict(plans)])
    report.say(f"completeness (after {len(queries)} repeats of the prepared statements): raw exact returned "
               f"{n} vector rows for {full_exact}/{len(exact)} queries; raw hnsw returned as many vector rows as "
               f"exact for {full_hnsw}/{len(hnsw)}; hnsw recall of the exact top-{K}: {recall10:.3f}, "
               f"of the exact top-{n}: {recall_n:.3f}")
    report.table(["search", f"answers with {K} hits", "queries", "plans reported"], api_rows)
    report.figures.setdefault("completeness", {})[len(report.figures.get("completeness", {}))] = {"raw_exact_full": full_exact, "raw_hnsw_full": full_hnsw,
                                      "hnsw_recall_at_10": float(recall10), "hnsw_recall_at_n": float(recall_n),
                                      "api": {r[0]: {"full": r[1], "of": r[2], "plans": r[3]} for r in api_rows}}


def _explain_section(report: Report, url: str, embedder: BenchEmbedder, query: tuple[str, str], label: str,
                     tenant: str = TENANT) -> None:
    """EXPLAIN ANALYZE of each plan's candidate query, and the generic plan a prepared statement could switch
    to, with the index the vector half walks."""
    settings = Settings()
    agent, text = query
    vector = embedder.cache.get(text)
    if vector is None:
        vector = np.asarray(embedder.inner.embed([text])[0], dtype=np.float32)
    rows, plans = [], {}
    common = service_text(url, settings)
    with connect(url) as conn:
        for plan in ("exact", "hnsw"):
            stmts = candidate_statements(settings, tenant=tenant, agent_id=agent, vector=vector, text=text,
                                         plan=plan, dim=embedder.dim, words=common, k=K)
            analyzed = explain(conn, stmts)
            generic = explain_generic(conn, stmts)
            plans[plan] = {"analyze": short_plan(analyzed), "generic": short_plan(generic)}
            took = [ln.split(":")[1].strip() for ln in analyzed.splitlines() if ln.startswith("Execution Time")]
            rows.append([plan, vector_indexes(analyzed), vector_indexes(generic), took[0] if took else "?"])
    report.table(["plan", "vector half walks (EXPLAIN ANALYZE)", "generic plan walks", "execution"], rows,
                 title=f"EXPLAIN of the candidate query, {label}, agent {agent}")
    for plan, texts in plans.items():
        report.say(f"-- {plan}: the `vec` CTE of EXPLAIN ANALYZE")
        report.say(_vec_block(texts["analyze"]))
        tail = [ln for ln in texts["analyze"].splitlines() if ln.startswith(("Planning Time", "Execution Time",
                                                                               "JIT", "  Functions", "  Timing"))]
        report.say("   " + "; ".join(ln.strip() for ln in tail))
    report.say()
    report.figures.setdefault("explain", {})[label] = plans


def _vec_block(plan_text: str) -> str:
    lines = plan_text.splitlines()
    out, inside, indent = [], False, 0
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("CTE vec"):
            inside, indent = True, len(line) - len(stripped)
            out.append(line)
            continue
        if inside:
            if len(line) - len(stripped) <= indent:
                break
            out.append(line)
    return "\n".join(out)


def _targets(report: Report) -> None:
    f = report.figures
    rows = []
    for stage, figures in f.get("ingest_stages", {}).items():
        r = figures["ratio_api_to_embedder"]
        rows.append([f"batch ingest ≥ 0.70 × embedder throughput, stage to {stage}", f"{r:.2f}",
                     "met" if r >= 0.70 else "NOT met"])
    for stage, figures in f.get("search", {}).items():
        r = figures["p50_ratio_api_exact"]
        rows.append([f"API search ≤ 1.5 × raw SQL at {stage} (p50, plan the service chose)", f"{r:.2f}",
                     "met" if r <= 1.5 else "NOT met"])
    report.table(["target", "measured", "verdict"], rows, title="## Targets")


if __name__ == "__main__":
    sys.exit(main())
