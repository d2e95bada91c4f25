"""LoCoMo evidence recall: every turn stored as an episodic cube of its conversation's agent, every question with
evidence searched through the API, beside BM25 alone and dense alone over the same turns, in the same run.

    python -m bench.locomo            # all 10 conversations (5,882 turns, 1,982 questions), ~5 min
    python -m bench.locomo --quick    # 2 conversations

LoCoMo is CC BY-NC 4.0 (non-commercial evaluation only): it is read in place from ../shared/data/locomo and
never copied into the project. Cite Maharana et al., ACL 2024 (arXiv 2402.17753).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from rank_bm25 import BM25Okapi

from bench.common import DEFAULT_HOME, Bench, Progress, Report, load_embedder, machine_state
from bench.corpus import Question, Turn, load_locomo, postgres_english_stopwords, questions_of, turns_of
from memcube.config import Settings
from memcube.db import connect
from memcube.ranking import RankWeights, fuse
from memcube.store.search import TSQUERY, ScopeFilter, search_candidates

TENANT = "locomo"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
WORD = re.compile(r"\w+")
# Full-text scores of every matching turn of the scope, four ways; the OR query is the service's own
# (keeping every word: the variants below replay the full OR query).
SQL_TEXT_SCORES = (
    "SELECT m.id, m.metadata->>'dia_id' AS dia_id, m.occurred_at, m.created_at, m.importance, "
    "ts_rank_cd(m.tsv, tq.q) AS cd, ts_rank_cd(m.tsv, tq.q, 1) AS cd_log, ts_rank_cd(m.tsv, tq.q, 32) AS cd_32, "
    "ts_rank(m.tsv, tq.q) AS rank, m.tsv @@ plainto_tsquery('english', %(text)s) AS all_words "
    "FROM memcubes m, (SELECT " + TSQUERY + " AS q) AS tq "
    "WHERE m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND m.status = 'active' AND m.tsv @@ tq.q"
)
SQL_TURNS = ("SELECT id, agent_id, metadata->>'dia_id' AS dia_id, occurred_at, created_at, importance, embedding "
             "FROM memcubes WHERE tenant = %s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.locomo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the first 2 conversations only")
    p.add_argument("--home", default=str(DEFAULT_HOME))
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument("--check", action="append", default=None, metavar="SETTING=VALUE",
                   help="also search through an API started with this setting changed (repeatable; default: "
                        "text_common_fraction=1, i.e. without leaving common words out)")
    args = p.parse_args(argv)
    samples = load_locomo()[: 2 if args.quick else None]
    report = Report("locomo" + ("-quick" if args.quick else ""))
    report.figures["machine"] = machine_state()
    report.say(f"# LoCoMo evidence recall ({len(samples)} conversations)\nmachine: {report.figures['machine']}")
    bench = Bench.start(Path(args.home), keep=args.keep)
    try:
        run(report, bench, samples, args.check if args.check is not None else ["text_common_fraction=1"])
    finally:
        bench.close()
        report.save()
    return 0


@dataclass
class Conversation:
    sample_id: str
    turns: list[Turn]
    questions: list[Question]


def run(report: Report, bench: Bench, samples: list[dict[str, Any]], checks: Sequence[str] = ()) -> None:
    convs = []
    for s in samples:
        turns = turns_of(s)
        convs.append(Conversation(s["sample_id"], turns, questions_of(s, {t.dia_id for t in turns})))
    n_turns = sum(len(c.turns) for c in convs)
    questions = [q for c in convs for q in c.questions]
    captions = sum(1 for c in convs for t in c.turns if t.caption)
    report.say(f"{n_turns} turns stored as episodic cubes, agent_id = sample_id, metadata {{\"dia_id\"}}, content "
               f"\"<speaker>: <text>\" with \" [shares a photo: <BLIP caption>]\" appended for the {captions} turns "
               f"that shared an image; occurred_at = the session's date and time (+ i seconds for turn i).")
    report.say(f"{len(questions)} questions with usable evidence after cleanup (multi-id entries split, ids "
               f"normalized to D<int>:<int>, ids that are not turns dropped, empty evidence skipped).")
    url = bench.new_database("locomo")
    server = bench.serve(url)
    token = server.new_key(TENANT)
    _ingest(server, token, convs)
    with connect(url, autocommit=True) as conn:
        # What autovacuum does after a load on a live database: the statistics search reads common words from.
        conn.execute("ANALYZE memcubes")
    embedder = load_embedder()
    # One at a time, as the API embeds a query: the replay below must see the very same vectors.
    qvec = np.stack([np.asarray(embedder.inner.embed([q.question])[0], dtype=np.float32) for q in questions])
    ranked: dict[str, list[list[str]]] = {"hybrid (API)": _api_search(server, token, questions)}
    for check in checks:
        # The same API with one setting changed, as an operator would change it.
        name, _, value = check.partition("=")
        other = bench.serve(url, **{name: value})
        ranked[f"hybrid (API, MEMCUBE_{name.upper()}={value})"] = _api_search(other, token, questions)
        other.stop()
    stored = _stored_turns(url)
    ranked["dense alone (exact cosine, same MiniLM vectors)"] = _dense(questions, qvec, stored)
    stop = postgres_english_stopwords()
    ranked["BM25 alone (BM25Okapi)"] = _bm25(convs, questions, stop)
    text_rows = _text_scores(url, questions)
    _report_recall(report, questions, ranked)
    _variants(report, questions, qvec, url, stored, text_rows, convs, stop, ranked["hybrid (API)"])
    report.say("BM25: rank_bm25.BM25Okapi (k1 1.5, b 0.75), one index per conversation; tokens = \\w+ runs of the "
               "lowercased text, minus PostgreSQL's english stopword list (the service's full-text side drops the "
               "same words); no stemming.")


def _ingest(server: Any, token: str, convs: list[Conversation]) -> None:
    progress = Progress("LoCoMo ingest", sum(len(c.turns) for c in convs))
    done = 0
    with server.client(token) as http:
        for conv in convs:
            for start in range(0, len(conv.turns), 500):
                items = [{"agent_id": conv.sample_id, "kind": "episodic", "content": t.content,
                          "metadata": {"dia_id": t.dia_id}, "occurred_at": t.occurred_at.isoformat()}
                         for t in conv.turns[start:start + 500]]
                r = http.post("/v1/memories/batch", json={"items": items})
                r.raise_for_status()
                done += len(items)
                progress(done)


def _api_search(server: Any, token: str, questions: list[Question], k: int = 10) -> list[list[str]]:
    out = []
    progress = Progress("API search", len(questions))
    with server.client(token) as http:
        for i, q in enumerate(questions):
            r = http.post("/v1/search", json={"agent_id": q.sample_id, "query": q.question, "k": k})
            r.raise_for_status()
            out.append([h["metadata"].get("dia_id") for h in r.json()["hits"]])
            progress(i + 1)
    return out


@dataclass
class Stored:
    """The turns as stored, by conversation: ids, dia_ids, vectors, times."""

    rows: dict[str, list[dict[str, Any]]]
    vectors: dict[str, np.ndarray]


def _stored_turns(url: str) -> Stored:
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with connect(url) as conn:
        for row in conn.execute(SQL_TURNS, (TENANT,)).fetchall():
            v = row.pop("embedding")
            row["vector"] = np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32)
            by_agent[row["agent_id"]].append(row)
    vectors = {a: np.stack([r["vector"] for r in rows]) for a, rows in by_agent.items()}
    return Stored(dict(by_agent), vectors)


def _dense_order(stored: Stored, agent: str, qv: np.ndarray) -> list[int]:
    sims = stored.vectors[agent] @ qv
    return list(np.argsort(-sims, kind="stable"))


def _dense(questions: list[Question], qvec: np.ndarray, stored: Stored, k: int = 10) -> list[list[str]]:
    return [[stored.rows[q.sample_id][j]["dia_id"] for j in _dense_order(stored, q.sample_id, qvec[i])[:k]]
            for i, q in enumerate(questions)]


def tokens(text: str, stop: set[str]) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in stop]


def _bm25_indexes(convs: list[Conversation], stop: set[str]) -> dict[str, tuple[BM25Okapi, list[str]]]:
    return {c.sample_id: (BM25Okapi([tokens(t.content, stop) or ["_"] for t in c.turns]),
                          [t.dia_id for t in c.turns]) for c in convs}


def _bm25(convs: list[Conversation], questions: list[Question], stop: set[str], k: int = 10) -> list[list[str]]:
    indexes = _bm25_indexes(convs, stop)
    out = []
    for q in questions:
        bm, ids = indexes[q.sample_id]
        scores = bm.get_scores(tokens(q.question, stop))
        out.append([ids[j] for j in np.argsort(-scores, kind="stable")[:k]])
    return out


def _text_scores(url: str, questions: list[Question]) -> list[list[dict[str, Any]]]:
    out = []
    with connect(url) as conn:
        for q in questions:
            out.append(conn.execute(SQL_TEXT_SCORES, {"text": q.question, "tenant": TENANT, "common": [],
                                                      "agent_id": q.sample_id}).fetchall())
            conn.rollback()
    return out


def recall(ranked: Sequence[str], evidence: Sequence[str], k: int) -> float:
    return len(set(ranked[:k]) & set(evidence)) / len(evidence)


def _scores(questions: list[Question], ranked: list[list[str]], subset: Callable[[Question], bool] = lambda q: True
            ) -> tuple[float, float, float, int]:
    picked = [(q, r) for q, r in zip(questions, ranked) if subset(q)]
    if not picked:
        return float("nan"), float("nan"), float("nan"), 0
    r5 = float(np.mean([recall(r, q.evidence, 5) for q, r in picked]))
    r10 = float(np.mean([recall(r, q.evidence, 10) for q, r in picked]))
    hit = float(np.mean([recall(r, q.evidence, 10) > 0 for q, r in picked]))
    return r5, r10, hit, len(picked)


def _report_recall(report: Report, questions: list[Question], ranked: dict[str, list[list[str]]]) -> None:
    rows = [[name, *_scores(questions, r)] for name, r in ranked.items()]
    report.table(["method", "recall@5", "recall@10", "hit@10", "questions"], rows,
                 title="## Evidence recall, all categories")
    figures: dict[str, Any] = {"overall": {r[0]: dict(zip(("r5", "r10", "hit10", "n"), r[1:])) for r in rows}}
    crow = []
    for cat, label in CATEGORIES.items():
        line: list[Any] = [f"{cat} {label}"]
        for name, r in ranked.items():
            r5, r10, hit, n = _scores(questions, r, lambda q, c=cat: q.category == c)
            line += [r5, r10]
            figures.setdefault("by_category", {}).setdefault(label, {})[name] = {"r5": r5, "r10": r10, "hit10": hit,
                                                                                  "n": n}
        line.append(n)
        crow.append(line)
    heads = ["category"]
    for name in ranked:
        short = name.split(" ")[0] if "RRF" not in name else "k" + name.split("=")[-1].rstrip(")")
        heads += [f"{short} R@5", f"{short} R@10"]
    report.table(heads + ["questions"], crow, title="## By category")
    hybrid = figures["overall"]["hybrid (API)"]["r10"]
    others = {n: v["r10"] for n, v in figures["overall"].items() if not n.startswith("hybrid")}
    verdict = "met" if all(hybrid > v for v in others.values()) else "NOT met"
    report.say(f"target: hybrid recall@10 {hybrid:.3f} above " + " and ".join(f"{n.split(' (')[0]} {v:.3f}"
                                                                               for n, v in others.items())
               + f": {verdict}\n")
    report.figures["recall"] = figures
    report.figures["target_met"] = verdict == "met"


# --- what the hybrid would score with other choices, replayed over the service's own candidate rows -----------


@dataclass(frozen=True)
class Variant:
    name: str
    n: int = 50                     # candidates per retriever (the service: MEMCUBE_SEARCH_CANDIDATES)
    text: str = "service"           # service | cd_log | cd_32 | rank | and | bm25
    rrf_k: int | None = None        # None: the service's MEMCUBE_RRF_K
    vector_weight: float = 1.0
    text_weight: float = 1.0
    ties: str = "sql"               # text-rank ties broken by: sql (row order) | id | vector | shuffle<seed>
    now: str = "today"              # today | last session (recency as the conversation itself saw it)
    no_weights: bool = False        # recency and importance weights 0
    only: str | None = None         # text | vector: one retriever alone


VARIANTS = [
    Variant("the service's ranking, every query word kept (as MEMCUBE_TEXT_COMMON_FRACTION=1)"),
    Variant("text-rank ties broken by id", ties="id"),
    *[Variant(f"text-rank ties in random order, seed {seed}", ties=f"shuffle{seed}") for seed in range(1, 6)],
    Variant("text ties broken by vector similarity (cut and rank)", text="cd_tievec", ties="vector"),
    Variant("no recency/importance weights", no_weights=True),
    Variant("recency as of the conversation's last session", now="last session"),
    Variant("100 candidates each", n=100),
    Variant("text ranked by ts_rank_cd normalization 1 (log length)", text="cd_log"),
    Variant("text ranked by ts_rank_cd normalization 32", text="cd_32"),
    Variant("text ranked by ts_rank", text="rank"),
    Variant("text candidates hold every query word (AND)", text="and"),
    Variant("text half = BM25 top-50 instead of the service's", text="bm25"),
    Variant("RRF k = 10", rrf_k=10),
    Variant("RRF k = 1", rrf_k=1),
    Variant("text weighted 2:1 in RRF", text_weight=2.0),
    Variant("vector weighted 2:1 in RRF", vector_weight=2.0),
    Variant("RRF k = 10, text = BM25", rrf_k=10, text="bm25"),
    Variant("RRF k = 10, text weighted 2:1", rrf_k=10, text_weight=2.0),
    Variant("RRF k = 10, text ranked by ts_rank", rrf_k=10, text="rank"),
    Variant("RRF k = 10, ts_rank, ties by vector similarity", rrf_k=10, text="rank_tievec", ties="vector"),
    Variant("text half alone (service's OR query and ranking)", only="text"),
    Variant("text half alone, ts_rank", only="text", text="rank"),
    Variant("vector half alone (service's exact plan)", only="vector"),
]


def _variants(report: Report, questions: list[Question], qvec: np.ndarray, url: str, stored: Stored,
              text_rows: list[list[dict[str, Any]]], convs: list[Conversation], stop: set[str],
              api_ranked: list[list[str]]) -> None:
    """Rank fusion replayed with memcube.ranking.fuse over the rows the service's own candidate query returns
    (memcube.store.search.search_candidates, exact plan), changing one choice at a time. The first line must
    reproduce the API's answers."""
    settings = Settings()
    sizes = sorted({v.n for v in VARIANTS} | {settings.search_candidates})
    candidates = _service_candidates(url, questions, qvec, sizes)
    bm25 = _bm25_indexes(convs, stop)
    by_dia = {agent: {r["dia_id"]: r for r in rows} for agent, rows in stored.rows.items()}
    last_session = {c.sample_id: max(t.occurred_at for t in c.turns) for c in convs}
    sims = []
    for i, q in enumerate(questions):
        values = stored.vectors[q.sample_id] @ qvec[i]
        sims.append({r["id"]: float(x) for r, x in zip(stored.rows[q.sample_id], values)})
    rows_out = []
    for v in VARIANTS:
        n = v.n if v.n != 50 else settings.search_candidates
        ranked = []
        for i, q in enumerate(questions):
            sim = sims[i]
            text = _text_candidates(v, n, q, text_rows[i], bm25, by_dia, stop, sim)
            now = last_session[q.sample_id] if v.now == "last session" else datetime.now(timezone.utc)
            ranked.append(_replay(v, candidates[n][i], text, now, settings, sim))
        rows_out.append([v.name, *_scores(questions, ranked)[:3]])
        if v.name.startswith("service"):
            same = sum(a == b for a, b in zip(ranked, api_ranked))
            report.say(f"replay check: the replay gives the API's exact top-10 for {same} of {len(questions)} "
                       "questions")
    report.table(["hybrid variant (same turns, vectors and candidate SQL)", "recall@5", "recall@10", "hit@10"],
                 rows_out, title="## Hybrid variants, replayed outside the service over its own candidate rows (full OR query: no common-word cut)")
    report.figures["variants"] = {r[0]: {"r5": r[1], "r10": r[2], "hit10": r[3]} for r in rows_out}


def _service_candidates(url: str, questions: list[Question], qvec: np.ndarray,
                        sizes: list[int]) -> dict[int, list[list[dict[str, Any]]]]:
    out: dict[int, list[list[dict[str, Any]]]] = {n: [] for n in sizes}
    with connect(url) as conn:
        for i, q in enumerate(questions):
            for n in sizes:
                rows = search_candidates(conn, scope=ScopeFilter(tenant=TENANT, agent_id=q.sample_id),
                                         query_vector=qvec[i], text=q.question, n_vector=n, n_text=n,
                                         plan="exact", dim=len(qvec[i]))
                for r in rows:
                    r["dia_id"] = r["metadata"].get("dia_id")
                out[n].append(rows)
            conn.rollback()
    return out


def _text_candidates(v: Variant, n: int, q: Question, matches: list[dict[str, Any]],
                     bm25: dict[str, tuple[BM25Okapi, list[str]]], by_dia: dict[str, dict[str, dict[str, Any]]],
                     stop: set[str], sim: dict[Any, float]) -> list[tuple[dict[str, Any], float]] | None:
    """The text half under the variant, best first; None keeps the service's own."""
    if v.text == "service":
        return None
    if v.text == "bm25":
        index, ids = bm25[q.sample_id]
        scores = index.get_scores(tokens(q.question, stop))
        top = [j for j in np.argsort(-scores, kind="stable")[:n] if scores[j] > 0]
        return [(by_dia[q.sample_id][ids[j]], float(scores[j])) for j in top]
    field = {"and": "cd", "cd_tievec": "cd", "rank_tievec": "rank"}.get(v.text, v.text)
    kept = [m for m in matches if v.text != "and" or m["all_words"]]
    if v.text.endswith("_tievec"):
        kept.sort(key=lambda m: (-float(m[field]), -sim[m["id"]]))
    else:
        kept.sort(key=lambda m: (-float(m[field]), str(m["id"])))
    return [(m, float(m[field])) for m in kept[:n]]


def _replay(v: Variant, rows: list[dict[str, Any]], text: list[tuple[dict[str, Any], float]] | None,
            now: datetime, settings: Settings, sim: dict[Any, float], k: int = 10) -> list[str]:
    """One question's top-k dia_ids under variant `v`."""
    cands = [dict(r) for r in rows]
    if text is not None:
        by_id = {c["id"]: c for c in cands}
        for c in cands:
            c["text_score"] = None
        for row, score in text:
            entry = by_id.get(row["id"])
            if entry is None:
                entry = by_id[row["id"]] = {**row, "vector_distance": None}
                cands.append(entry)
            entry["text_score"] = score
        cands = [c for c in cands if c["vector_distance"] is not None or c["text_score"] is not None]
    # fuse() ranks equal scores in the order it is given the rows: that order breaks text-rank ties.
    if v.ties == "id":
        cands.sort(key=lambda c: str(c["id"]))
    elif v.ties == "vector":
        cands.sort(key=lambda c: -sim[c["id"]])
    elif v.ties.startswith("shuffle"):
        random.Random(int(v.ties[len("shuffle"):])).shuffle(cands)
    if v.only is not None:
        key = "text_score" if v.only == "text" else "vector_distance"
        present = [c for c in cands if c[key] is not None]
        present.sort(key=lambda c: ((-c[key]) if v.only == "text" else c[key], str(c["id"])))
        return [c["dia_id"] for c in present[:k]]
    rrf_k = v.rrf_k or settings.rrf_k
    if v.vector_weight != 1.0 or v.text_weight != 1.0:
        return _weighted_rrf(cands, v, rrf_k, k)
    weights = RankWeights(rrf_k, 0.0 if v.no_weights else settings.weight_recency,
                          0.0 if v.no_weights else settings.weight_importance, settings.recency_half_life_days)
    return [f.row["dia_id"] for f in fuse(cands, now=now, weights=weights)[:k]]


def _weighted_rrf(cands: list[dict[str, Any]], v: Variant, rrf_k: int, k: int) -> list[str]:
    """RRF with a weight per retriever (no recency or importance: they are ~constant here)."""
    vec = sorted((c for c in cands if c["vector_distance"] is not None), key=lambda c: c["vector_distance"])
    txt = sorted((c for c in cands if c["text_score"] is not None), key=lambda c: -c["text_score"])
    score: dict[Any, float] = defaultdict(float)
    for rank, c in enumerate(vec, 1):
        score[c["id"]] += v.vector_weight / (rrf_k + rank)
    for rank, c in enumerate(txt, 1):
        score[c["id"]] += v.text_weight / (rrf_k + rank)
    by_id = {c["id"]: c for c in cands}
    best = sorted(score, key=lambda i: (-score[i], str(i)))[:k]
    return [by_id[i]["dia_id"] for i in best]


if __name__ == "__main__":
    sys.exit(main())
