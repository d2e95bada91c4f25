"""Where a request's fixed overhead goes: each part measured alone, interleaved with the whole API search.

    python -m bench.overhead                 # 2,000 cubes over 20 agents (client vectors), 400 rounds, ~2 min

Parts, each timed in this process beside the same search through the API (query vectors precomputed, so the
embedding is not in it): the HTTP round trip of `GET /healthz` with httpx and with the standard library's
http.client (how much of the floor is the client's); a pool checkout; the key lookup as a request makes it
(checkout, key SELECT, commit) and the SELECT alone; the candidate query unprepared (as the service sends it)
and prepared (what planning costs); serializing a 10-hit answer with pydantic and with orjson; and the layers:
raw SQL, `memcube.search()` in process (with questions asked before, and with a new question each round, whose
words the process has not seen), the API.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import pstats
import http.client
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from bench.common import DEFAULT_HOME, Bench, Report, load_embedder, machine_state, percentiles
from bench.corpus import build_corpus, query_texts
from bench.ingest import TENANT, ingest_api
from bench.plans import candidate_statements, run_statements, service_text
from bench.timing import interleave
from memcube.auth import authenticate, hash_token
from memcube.db import connect, open_pool
from memcube.models import SearchRequest
from memcube.search import SearchStats, search
from memcube.store import keys as key_store
from services.api.routes.search import SearchResponse


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cubes", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=400)
    p.add_argument("--home", default=str(DEFAULT_HOME) + "-overhead")
    args = p.parse_args(argv)
    report = Report("overhead")
    report.figures["machine"] = machine_state()
    report.say(f"# Where a request's fixed overhead goes\nmachine: {report.figures['machine']}")
    bench = Bench.start(Path(args.home))
    try:
        _run(report, bench, args)
    finally:
        bench.close()
        report.say(f"load average at the end: {machine_state()['loadavg_1_5_15']}")
        report.save()
    return 0


def _run(report: Report, bench: Bench, args: argparse.Namespace) -> None:
    embedder = load_embedder()
    asked = list(dict.fromkeys(query_texts()))
    questions = asked[:200]
    # Questions no search has seen, one a round: their words are not in the per-process caches yet.
    fresh = asked[200:200 + args.rounds + 20]
    embedder.cache = dict(zip(questions + fresh, embedder.embed_array(questions + fresh)))
    qfile = embedder.save_cache(Path(args.home) / "query-vectors.npz")
    url = bench.new_database("overhead")
    server = bench.serve(url, qfile)
    token = server.new_key(TENANT)
    texts = build_corpus(args.cubes).texts
    vectors = np.random.default_rng(7).standard_normal((len(texts), embedder.dim)).astype(np.float32)
    agent_of = lambda i: f"agent-{i % 20:02d}"  # noqa: E731
    ingest_api(server, token, texts, agent_of, embedder, vectors=vectors, label="load (client vectors)")
    queries = [(agent_of(i), questions[i % len(questions)]) for i in range(args.rounds)]
    settings = server.settings
    common = service_text(url, settings)
    stmts = [candidate_statements(settings, tenant=TENANT, agent_id=a, vector=embedder.cache[q], text=q,
                                  plan="exact", dim=embedder.dim, words=common) for a, q in queries]
    pool = open_pool(settings.model_copy(update={"db_pool_min": 2, "db_pool_max": 2}), url)
    raw, prepared, lib, held = connect(url), connect(url), connect(url), connect(url)
    stats = SearchStats(settings.scope_count_ttl_seconds)
    client = server.client(token)
    parsed = urlparse(server.url)
    plain = http.client.HTTPConnection(parsed.hostname, parsed.port)
    digest = hash_token(token)
    sample = search(lib, tenant=TENANT, request=SearchRequest(agent_id=queries[0][0], query=queries[0][1], k=10),
                    embedder=embedder, settings=settings, stats=stats)
    lib.commit()
    answer = SearchResponse(hits=sample.hits, plan=sample.plan)
    embedder.use_cache = True

    def healthz_plain(i: int) -> None:
        plain.request("GET", "/healthz")
        plain.getresponse().read()

    def checkout(i: int) -> None:
        with pool.connection():
            pass

    def auth(i: int) -> None:
        with pool.connection() as conn:
            authenticate(conn, token, admin_token=None)

    def key_select(i: int) -> None:
        key_store.find_key_by_hash(held, digest)

    def candidate(conn, prepare: bool):  # noqa: ANN001, ANN202
        def run(i: int) -> None:
            query, params = stmts[i][-1]
            conn.execute(query, params, prepare=prepare).fetchall()
            conn.commit()
        return run

    def library(i: int) -> None:
        search(lib, tenant=TENANT, request=SearchRequest(agent_id=queries[i][0], query=queries[i][1], k=10),
               embedder=embedder, settings=settings, stats=stats)
        lib.commit()

    new_questions = iter(fresh)

    def library_new_question(i: int) -> None:
        search(lib, tenant=TENANT, request=SearchRequest(agent_id=queries[i][0], query=next(new_questions), k=10),
               embedder=embedder, settings=settings, stats=stats)
        lib.commit()

    def api(i: int) -> None:
        client.post("/v1/search", json={"agent_id": queries[i][0], "query": queries[i][1], "k": 10}).raise_for_status()

    parts = {
        "GET /healthz, httpx client": lambda i: client.get("/healthz").raise_for_status(),
        "GET /healthz, http.client": healthz_plain,
        "pool checkout + return": checkout,
        "key lookup as a request does it (checkout, SELECT, commit)": auth,
        "key SELECT alone, held connection": key_select,
        "candidate query, unprepared (as the service sends it)": candidate(raw, False),
        "candidate query, prepared (no planning)": candidate(prepared, True),
        "10-hit answer to JSON, pydantic model_dump_json": lambda i: answer.model_dump_json(),
        "raw SQL, every statement of a search": lambda i: run_statements(raw, stmts[i]),
        "memcube.search() in process": library,
        "memcube.search() in process, a question never asked before": library_new_question,
        "API POST /v1/search (query vector precomputed)": api,
    }
    if _has_orjson():
        parts["10-hit answer to JSON, orjson"] = lambda i: _orjson(answer)
    times, _ = interleave(parts, args.rounds, label="parts")
    _search_steps(report, library, args.rounds)
    rows = [[name, *(percentiles(v)[m] for m in ("p50", "p95", "mean"))] for name, v in times.items()]
    report.table(["part (ms)", "p50", "p95", "mean"], rows,
                 title=f"## Parts, interleaved ({args.rounds} rounds; {args.cubes} cubes, 100-row scopes)")
    report.figures["parts"] = {name: percentiles(v) for name, v in times.items()}
    p50 = {name: percentiles(v)["p50"] for name, v in times.items()}
    report.say(f"API over raw SQL: {p50['API POST /v1/search (query vector precomputed)'] - p50['raw SQL, every statement of a search']:.2f} ms "
               f"a search; planning (unprepared − prepared): "
               f"{p50['candidate query, unprepared (as the service sends it)'] - p50['candidate query, prepared (no planning)']:.2f} ms")
    client.close()
    plain.close()
    pool.close()


def _search_steps(report: Report, library: Any, rounds: int) -> None:
    """Where memcube.search() spends its time beyond the candidate query: cProfile over the same searches."""
    profile = cProfile.Profile()
    profile.enable()
    for i in range(rounds):
        library(i)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(r"memcube|psycopg/cursor", 25)
    report.say("## memcube.search() under cProfile (cumulative; profiling slows Python, not the database)\n"
               + "\n".join(line for line in out.getvalue().splitlines() if line.strip())[-6000:])


def _has_orjson() -> bool:
    # orjson is no dependency of the service: the part is timed only where it happens to be installed.
    return importlib.util.find_spec("orjson") is not None


def _orjson(answer: SearchResponse) -> bytes:
    import orjson

    return orjson.dumps(answer.model_dump())


if __name__ == "__main__":
    sys.exit(main())
