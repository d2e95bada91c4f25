"""Where the exact scan of a scope stops beating the HNSW index: one scope at a time, both plans, same queries."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from bench.common import BenchEmbedder, Report, percentiles
from bench.ingest import TENANT
from bench.plans import NO_MATCH_TEXT, candidate_statements, run_statements, service_text
from bench.timing import interleave
from memcube.db import connect

SCOPE_SIZES = (1000, 2000, 5000, 10000, 20000, 50000)


def crossover_layout(total: int) -> tuple[list[str], list[int]]:
    """Agents of the raw-SQL database: one scope of each size in SCOPE_SIZES that fits in 90% of the table
    (for tables under 20k rows: 5%, 10%, 20% and 50% of it), the rest in filler agents of 1000 rows."""
    candidates = SCOPE_SIZES if total >= 20_000 else tuple(int(total * f) for f in (0.05, 0.1, 0.2, 0.5))
    sizes, used = [], 0
    for s in candidates:
        if s > 0 and used + s <= 0.9 * total:
            sizes.append(s)
            used += s
    agents: list[str] = []
    for s in sizes:
        agents.extend([f"x-{s}"] * s)
    filler = total - len(agents)
    agents.extend(f"f-{i // 1000:03d}" for i in range(filler))
    return agents, sizes


def crossover_section(report: Report, server: Any, url: str, embedder: BenchEmbedder, texts: list[str],
                      sizes: list[int], k: int) -> None:
    """For each scope size: the vector half alone (exact vs HNSW), the whole candidate query (exact vs HNSW),
    HNSW's recall of the exact answer, and the plan the API chose for that scope."""
    settings = server.settings
    token = server.new_key(TENANT)
    http = server.client(token)
    missing = [t for t in texts if t not in embedder.cache]
    if missing:
        raise RuntimeError(f"{len(missing)} crossover queries have no precomputed vector")
    rows, figures = [], {}
    common = service_text(url, settings)
    with connect(url) as conn:
        total = conn.execute("SELECT count(*) AS n FROM memcubes").fetchone()["n"]
        for size in sizes:
            agent = f"x-{size}"

            def stmts(plan: str, text: str, match: bool) -> list[Any]:
                return candidate_statements(settings, tenant=TENANT, agent_id=agent, vector=embedder.cache[text],
                                            text=text if match else NO_MATCH_TEXT, plan=plan, dim=embedder.dim,
                                            words=common, k=k)

            prepared = {(plan, match): [stmts(plan, t, match) for t in texts]
                        for plan in ("exact", "hnsw") for match in (False, True)}

            def api(i: int) -> Any:
                r = http.post("/v1/search", json={"agent_id": agent, "query": texts[i], "k": k})
                r.raise_for_status()
                return r.json()["plan"]

            variants = {f"{plan} {'full' if match else 'vector'}": (
                lambda i, key=(plan, match): _ids(run_statements(conn, prepared[key][i])))
                for plan in ("exact", "hnsw") for match in (False, True)}
            variants["api"] = api
            times, outs = interleave(variants, len(texts), warmup=5, label=f"crossover {size}")
            s = {name: percentiles(t) for name, t in times.items()}
            recall = np.mean([len(set(h[:k]) & set(e[:k])) / max(len(e[:k]), 1)
                              for h, e in zip(outs["hnsw vector"], outs["exact vector"])])
            short = sum(len(h) < len(e) for h, e in zip(outs["hnsw vector"], outs["exact vector"]))
            plans = dict(Counter(outs["api"]))
            rows.append([size, f"{100 * size / total:.0f}%", s["exact vector"]["p50"], s["hnsw vector"]["p50"],
                         s["exact vector"]["p95"], s["hnsw vector"]["p95"], float(recall), short,
                         s["exact full"]["p50"], s["hnsw full"]["p50"], _plans(plans), s["api"]["p50"]])
            figures[size] = {"latency_ms": s, "hnsw_recall_at_k": float(recall), "hnsw_short": short,
                             "api_plans": plans}
    http.close()
    report.table(["scope rows", "of table", "exact p50", "hnsw p50", "exact p95", "hnsw p95", "hnsw recall@10",
                  "hnsw short", "full exact p50", "full hnsw p50", "API plan", "API p50"], rows,
                 title=f"## 3. Plan crossover: one scope at a time in a table of {total} rows, {len(texts)} "
                       f"queries each (ms; 'vector' = the candidate query with a text that matches nothing, "
                       f"'full' = with the question's text; 'hnsw short' = queries where HNSW returned fewer "
                       f"vector rows than exact)")
    report.say(_crossover_sentence(rows, settings.exact_scan_max_rows))
    report.figures["crossover"] = {"table_rows": total, "scopes": figures,
                                   "threshold_setting": settings.exact_scan_max_rows}


def _ids(rows: list[dict[str, Any]]) -> list[Any]:
    found = [r for r in rows if r["vector_distance"] is not None]
    return [r["id"] for r in sorted(found, key=lambda r: r["vector_distance"])]


def _plans(plans: dict[str, int]) -> str:
    return ", ".join(f"{p}×{n}" for p, n in plans.items())


def _crossover_sentence(rows: list[list[Any]], threshold: int) -> str:
    """Where HNSW starts to win (p50 of the vector half, and of the whole candidate query)."""
    parts = []
    for label, e_col, h_col in (("vector half", 2, 3), ("whole candidate query", 8, 9)):
        wins = [r[0] for r in rows if r[h_col] < r[e_col]]
        loses = [r[0] for r in rows if r[h_col] >= r[e_col]]
        if not wins:
            parts.append(f"{label}: exact is faster at every measured size (up to {rows[-1][0] if rows else '?'})")
        elif not loses:
            parts.append(f"{label}: HNSW is faster at every measured size (from {rows[0][0]})")
        else:
            below = max((s for s in loses if s < min(wins)), default=None)
            parts.append(f"{label}: exact faster up to {below}, HNSW faster from {min(wins)} rows" if below
                         else f"{label}: mixed ({loses} exact, {wins} hnsw)")
    return ("crossover — " + "; ".join(parts) + f". The service's threshold (MEMCUBE_EXACT_SCAN_MAX_ROWS) is "
            f"{threshold}.")
