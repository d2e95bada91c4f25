"""Virtual-context benchmark: message append and context assembly through the HTTP API, for one agent with
100k archival cubes, beside the SQL and Redis operations underneath them, measured in the same run.

    python -m bench.bench_context --quick     # 10k cubes, 30 appends, 20 contexts: about two minutes
    python -m bench.bench_context             # 100k cubes, 200 appends, 100 contexts

The archival cubes are loaded with a raw binary COPY (then one set-based INSERT of their first versions,
VACUUM ANALYZE and the HNSW build): their texts are LoCoMo-derived (bench/corpus.py) and their vectors are
seeded random unit vectors, so latency is real but recall is not measured here. Messages and queries are
embedded by the real model (bundled MiniLM) inside the API, as in production.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import redis
from psycopg import sql
from psycopg.types.json import Jsonb

from bench.common import DEFAULT_HOME, Bench, Report, load_embedder, machine_state, percentiles, ratio
from bench.corpus import build_corpus, query_texts
from bench.plans import service_text
from bench.timing import interleave
from memcube import working
from memcube.store import vector_index as index_store
from memcube.context import RECALL_KINDS
from memcube.db import connect
from memcube.models import Message
from memcube.search import choose_plan
from memcube.space import ensure_space
from memcube.store.cubes import SNAPSHOT_COLUMNS, insert_cubes
from memcube.store.search import ScopeFilter, search_candidates

TENANT = "bench-context"
AGENT = "agent-100k"
SESSION = "bench-session"
BUDGET = 2000
COPY_COLUMNS = ("id", "tenant", "agent_id", "kind", "tier", "content", "metadata", "occurred_at", "importance",
                "provenance", "embedding")
COPY_TYPES = ("uuid", "text", "text", "text", "text", "text", "jsonb", "timestamptz", "real", "jsonb", "vector")
_COLUMNS = ", ".join(COPY_COLUMNS)
# COPY fills a staging table; one INSERT then moves the rows in with their search document (a row outside a
# session: its own words, weight A; migrations/0006_search_text.sql), as the API's insert writes it.
SQL_STAGE = "CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT " + _COLUMNS + " FROM memcubes WITH NO DATA"
SQL_FROM_STAGE = (
    "INSERT INTO memcubes (" + _COLUMNS + ", search_tsv, search_len) SELECT " + _COLUMNS + ", d.doc, "
    "memcube_search_len(d.doc) FROM stage, LATERAL (SELECT setweight(to_tsvector('english', content), 'A') AS doc) d"
)
SQL_FIRST_VERSIONS = (
    "INSERT INTO memcube_versions (cube_id, version, " + SNAPSHOT_COLUMNS + ") "
    "SELECT id, version, " + SNAPSHOT_COLUMNS + " FROM memcubes WHERE tenant = %s AND agent_id = %s"
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_context", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cubes", type=int, default=100_000, help="archival cubes of the agent (default 100000)")
    p.add_argument("--appends", type=int, default=200, help="timed message appends (default 200)")
    p.add_argument("--contexts", type=int, default=100, help="timed context assemblies (default 100)")
    p.add_argument("--quick", action="store_true", help="10k cubes, 30 appends, 20 contexts")
    p.add_argument("--home", default=str(DEFAULT_HOME), help="embedded stack folder (default /tmp/mc-bench)")
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = p.parse_args(argv)
    if args.quick:
        args.cubes, args.appends, args.contexts = 10_000, 30, 20
    report = Report(f"context-{args.cubes}")
    report.figures.update(machine=machine_state(), cubes=args.cubes, appends=args.appends, contexts=args.contexts)
    report.say(f"# Virtual context: {args.cubes} archival cubes for one agent, {args.appends} appends, "
               f"{args.contexts} contexts (budget {BUDGET})")
    report.say(f"machine: {report.figures['machine']}")
    bench = Bench.start(Path(args.home), keep=args.keep)
    try:
        _run(bench, report, args)
    finally:
        bench.close()
        report.save()
    return 0


def _load(url: str, texts: list[str], embedder: Any, report: Report) -> None:
    """COPY the archival cubes in, write their first versions, analyze, and build the HNSW index."""
    rng = np.random.default_rng(20240509)
    vectors = rng.standard_normal((len(texts), embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    provenance = Jsonb({"source": "import", "actor": "bench"})
    with connect(url) as conn:
        t0 = time.perf_counter()
        # One agent of this size is searched through the HNSW index: its rows enter it (memcube/vector_index.py).
        index_store.mark_filling(conn, tenant=TENANT, agent_id=AGENT)
        conn.execute(SQL_STAGE)
        copy_sql = sql.SQL("COPY stage ({}) FROM STDIN WITH (FORMAT BINARY)").format(
            sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS)))
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.set_types(list(COPY_TYPES))
            for i, text in enumerate(texts):
                copy.write_row([uuid.uuid4(), TENANT, AGENT, "episodic", "archival", text, Jsonb({"n": i}),
                                start + timedelta(minutes=5 * i), 0.5, provenance, vectors[i]])
        conn.execute(SQL_FROM_STAGE)
        conn.execute(SQL_FIRST_VERSIONS, (TENANT, AGENT))
        index_store.mark_ready(conn, tenant=TENANT, agent_id=AGENT)  # every row was written after the mark
        conn.commit()
        t1 = time.perf_counter()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE memcubes")
        conn.execute("VACUUM ANALYZE memcube_versions")
        t2 = time.perf_counter()
        # The HNSW graph of 100k vectors outgrows the default 64 MB, and a build that spills is many times slower.
        conn.execute("SET maintenance_work_mem = '1GB'")
        ensure_space(conn, embedder)  # records the embedder and builds the HNSW index, as API start-up would
        t3 = time.perf_counter()
    report.figures["load_seconds"] = {"copy_and_versions": t1 - t0, "vacuum_analyze": t2 - t1, "hnsw_build": t3 - t2}
    report.say(f"load: COPY + versions {t1 - t0:.1f} s ({len(texts) / (t1 - t0):.0f} rows/s), "
               f"VACUUM ANALYZE {t2 - t1:.1f} s, HNSW build {t3 - t2:.1f} s")


def _setup_agent(http: Any) -> None:
    for label, content in (("persona", "You are Juno, a warm and concise assistant who remembers what friends "
                                       "tell you and answers in two or three sentences."),
                           ("human", "Caroline and Melanie are friends who talk about family, art, LGBTQ support "
                                     "groups, camping trips and their plans.")):
        http.put(f"/v1/agents/{AGENT}/core/{label}", json={"content": content}).raise_for_status()
    lessons = ["When asked about dates, answer with the date the event happened, not when it was mentioned.",
               "When a friend shares a plan, ask a follow-up question about it in the next session.",
               "Keep answers short: quote the memory that supports the answer."]
    http.post("/v1/memories/batch", json={"items": [{"agent_id": AGENT, "kind": "procedural", "content": c}
                                                   for c in lessons]}).raise_for_status()


def _run(bench: Bench, report: Report, args: argparse.Namespace) -> None:
    corpus = build_corpus(args.cubes + args.appends + 40)
    archival, conversation = corpus.texts[:args.cubes], corpus.texts[args.cubes:]
    report.say(f"corpus: {corpus.description}")
    embedder = load_embedder()
    url = bench.new_database("context")
    _load(url, archival, embedder, report)
    t0 = time.perf_counter()
    server = bench.serve(url)
    report.say(f"API process up in {time.perf_counter() - t0:.1f} s")
    settings = server.settings
    http = server.client(server.new_key(TENANT))
    _setup_agent(http)
    # The first assembly pages the agent's scope inline (then at most every MEMCUBE_PAGING_INTERVAL_SECONDS).
    http.post("/v1/context", json={"agent_id": AGENT, "query": "warm up", "budget": BUDGET}).raise_for_status()

    conn = connect(url)
    redis_client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    raw_key, list_key = working.window_key(TENANT, "bench-raw", "s"), f"bench:{uuid.uuid4().hex}:list"
    rng = np.random.default_rng(7)
    payload = "x" * 1000

    def append_http(i: int) -> Any:
        role = "user" if i % 2 == 0 else "assistant"
        r = http.post(f"/v1/sessions/{SESSION}/messages", json={"agent_id": AGENT, "messages": [
            {"role": role, "content": conversation[i % len(conversation)]}]})
        r.raise_for_status()

    def embed_one(i: int) -> Any:
        return embedder.inner.embed([conversation[i % len(conversation)]])

    def sql_insert(i: int) -> Any:
        vector = rng.standard_normal(embedder.dim).astype(np.float32)
        insert_cubes(conn, [{"id": uuid.uuid4(), "tenant": TENANT, "agent_id": "bench-raw", "user_id": None,
                             "session_id": "s", "kind": "episodic", "tier": "archival",
                             "content": conversation[i % len(conversation)], "data": None, "tags": [],
                             "metadata": {"role": "user", "turn": i}, "artifact": None,
                             "occurred_at": datetime.now(timezone.utc), "valid_from": None, "valid_to": None,
                             "importance": 0.5, "confidence": 1.0, "embedding": vector,
                             "provenance": {"source": "message", "actor": "bench"}}])
        conn.commit()

    def redis_push(i: int) -> Any:
        message = Message(id=uuid.uuid4(), turn=i, role="user", content=conversation[i % len(conversation)],
                          created_at=datetime.now(timezone.utc), tokens=30)
        return working.push_messages(redis_client, raw_key, [message], max_messages=settings.working_max_messages,
                                     max_tokens=settings.working_max_tokens, ttl_seconds=600)

    def redis_lpush(i: int) -> Any:
        with redis_client.pipeline(transaction=False) as pipe:
            pipe.lpush(list_key, payload).ltrim(list_key, 0, settings.working_max_messages - 1).execute()

    redis_push(0)  # the script's window must start at turn 0
    append_times, _ = interleave({"HTTP append (1 message)": append_http, "embed 1 message": embed_one,
                                  "SQL insert + version + commit": sql_insert, "Redis push script": redis_push,
                                  "Redis LPUSH+LTRIM pipelined (1 KB)": redis_lpush},
                                 args.appends, warmup=5, label="append")

    questions = query_texts()[:args.contexts]
    vectors = [np.asarray(v, dtype=np.float32) for v in embedder.inner.embed(questions)]
    plan = choose_plan(args.cubes, settings.exact_scan_max_rows)
    # The candidates the API's recall asks for: k = MEMCUBE_CONTEXT_RECALL_K + the messages in the window.
    window = working.read_window(redis_client, working.window_key(TENANT, AGENT, SESSION), ttl_seconds=600)
    n = max(settings.search_candidates, 2 * (settings.context_recall_k + len(window)))
    scope = ScopeFilter(tenant=TENANT, agent_id=AGENT, kinds=RECALL_KINDS, tiers=("archival",))
    sizes: list[dict[str, int]] = []
    words = service_text(url, settings)  # the full-text half the service would send

    def context_http(i: int) -> Any:
        r = http.post("/v1/context", json={"agent_id": AGENT, "session_id": SESSION, "query": questions[i],
                                           "budget": BUDGET})
        r.raise_for_status()
        body = r.json()
        sizes.append({"total": body["tokens"], **{k: len(s["items"]) for k, s in body["sections"].items()}})

    def search_http(i: int) -> Any:
        r = http.post("/v1/search", json={"agent_id": AGENT, "query": questions[i], "k": 10})
        r.raise_for_status()

    def embed_query(i: int) -> Any:
        return embedder.inner.embed([questions[i]])

    def search_sql(i: int) -> Any:
        rows = search_candidates(conn, scope=scope, query_vector=vectors[i], text=words(TENANT, AGENT, questions[i]),
                                 n_vector=n,
                                 n_text=n, plan=plan, dim=embedder.dim,  # type: ignore[arg-type]
                                 ef_search=max(settings.hnsw_ef_search, n))
        conn.commit()
        return rows

    def window_read(i: int) -> Any:
        return working.read_window(redis_client, working.window_key(TENANT, AGENT, SESSION), ttl_seconds=600)

    context_times, _ = interleave({"HTTP context (budget 2000)": context_http, "HTTP search (k 10)": search_http,
                                   "embed query": embed_query,
                                   f"search SQL ({plan}, {n}+{n} candidates)": search_sql,
                                   "Redis window read": window_read}, args.contexts, warmup=5, label="context")
    redis_client.delete(raw_key, list_key)
    redis_client.close()
    conn.close()
    http.close()
    _report(report, append_times, context_times, sizes)


def _report(report: Report, append_times: dict[str, list[float]], context_times: dict[str, list[float]],
            sizes: list[dict[str, int]]) -> None:
    stats = {name: percentiles(t) for name, t in {**append_times, **context_times}.items()}
    report.figures["latency_ms"] = stats
    parts = {"append": ["embed 1 message", "SQL insert + version + commit", "Redis push script"],
             "context": ["embed query", next(k for k in context_times if k.startswith("search SQL")),
                         "Redis window read"]}
    whole = {"append": "HTTP append (1 message)", "context": "HTTP context (budget 2000)"}
    rows = []
    for group, times in (("append", append_times), ("context", context_times)):
        base = {q: sum(stats[k][q] for k in parts[group]) for q in ("p50", "p95")}
        for name in times:
            s = stats[name]
            share = "" if name == whole[group] else f"{ratio(s['p50'], stats[whole[group]]['p50']):.2f} of HTTP"
            rows.append([name, s["n"], s["p50"], s["p95"], share])
        rows.append([f"sum of the {group} parts", "", base["p50"], base["p95"],
                     f"HTTP is {ratio(stats[whole[group]]['p50'], base['p50']):.2f}x"])
        report.figures[f"{group}_http_over_parts_p50"] = ratio(stats[whole[group]]["p50"], base["p50"])
    report.table(["operation", "n", "p50 ms", "p95 ms", "ratio"], rows, title="## Latency, same run")
    context, search = stats["HTTP context (budget 2000)"], stats["HTTP search (k 10)"]
    report.figures["context_over_search"] = {q: ratio(context[q], search[q]) for q in ("p50", "p95")}
    report.say(f"context assembly against one search of the same question, same run: p50 "
               f"{ratio(context['p50'], search['p50']):.2f}x, p95 {ratio(context['p95'], search['p95']):.2f}x")
    if sizes:
        mean = {k: sum(s[k] for s in sizes) / len(sizes) for k in sizes[0]}
        report.figures["context_mean"] = mean
        report.say("context answers, mean: " + ", ".join(f"{k} {v:.1f}" for k, v in mean.items())
                   + " (total in tokens, sections in items)")


if __name__ == "__main__":
    raise SystemExit(main())
