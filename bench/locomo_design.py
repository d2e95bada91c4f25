"""How full-text search was designed: LoCoMo evidence recall@10 of text retrieval variants, each fused with
dense retrieval by RRF (k = 10, 50 candidates a side), computed outside the service over the same turns.

    python -m bench.locomo_design      # all 10 conversations, ~5 min (embedding the turns is most of it)

Words are PostgreSQL's own lexemes (`to_tsvector('english', ...)` on the embedded server), vectors the service's
MiniLM; BM25 (k1 1.2, b 0.75) is computed here, per conversation (a conversation is one user's scope). Each
variant changes one choice: what a turn's document holds (its own words; the turns around it, before it, at
what weights), and which query words are kept (those in at most a share of the scope). A last pair uses the
facts LoCoMo's authors wrote for each session with the turns they came from (`observation`), as an LLM
consolidation would: as hits of their own, and lending their fusion score to their evidence.

LoCoMo is read in place from ../shared/data/locomo (CC BY-NC 4.0; never copied into the project).
"""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.common import DEFAULT_HOME, Bench, Report, load_embedder, machine_state
from bench.corpus import load_locomo, questions_of, turns_of
from memcube.db import connect

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
SQL_LEXEMES = "SELECT lexeme, coalesce(array_length(positions, 1), 1) AS n FROM unnest(to_tsvector('english', %s))"
N, RRF_K = 50, 10


def bm25(docs: list[Counter], queries: list[dict[str, int]], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """BM25 scores [query, doc] with document frequencies counted in `docs` (one scope)."""
    df: Counter = Counter()
    for d in docs:
        df.update(d.keys())
    lengths = np.array([sum(d.values()) for d in docs], dtype=float)
    avg = lengths.mean() or 1.0
    out = np.zeros((len(queries), len(docs)))
    for qi, query in enumerate(queries):
        for lexeme in query:
            n = df.get(lexeme, 0)
            if not n:
                continue
            idf = math.log(1 + (len(docs) - n + 0.5) / (n + 0.5))
            for di, d in enumerate(docs):
                tf = d.get(lexeme)
                if tf:
                    out[qi, di] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[di] / avg))
    return out


def with_neighbours(turns: list[Counter], sessions: list[int], weights: dict[int, float], before: bool = True,
                    after: bool = True) -> list[Counter]:
    """Each turn's words plus those of the turns `offset` away in its session, times `weights[offset]`."""
    out = []
    for i, own in enumerate(turns):
        doc = Counter(own)
        for offset, weight in weights.items():
            for j in ([i - offset] if before else []) + ([i + offset] if after else []):
                if 0 <= j < len(turns) and sessions[j] == sessions[i]:
                    for lexeme, n in turns[j].items():
                        doc[lexeme] += weight * n
        out.append(doc)
    return out


def ranks(scores: np.ndarray, present: np.ndarray | None = None) -> dict[int, int]:
    order = np.argsort(-scores, kind="stable")[:N]
    return {int(j): r for r, j in enumerate(order, 1) if present is None or present[j]}


def fused(text: np.ndarray, dense: np.ndarray) -> dict[int, float]:
    score: dict[int, float] = defaultdict(float)
    for ranked in (ranks(text, text > 0), ranks(dense)):
        for doc, rank in ranked.items():
            score[doc] += 1.0 / (RRF_K + rank)
    return score


def main(argv: list[str] | None = None) -> int:
    report = Report("locomo-design")
    report.say(f"# How full-text search was designed (LoCoMo)\nmachine: {machine_state()}")
    samples = load_locomo()
    bench = Bench.start(Path(str(DEFAULT_HOME)))
    try:
        convs = _load(samples, bench)
    finally:
        bench.close()
    embedder = load_embedder()
    for c in convs:
        c["turn_vectors"] = embedder.embed_array([t.content for t in c["turns"]])
        # One at a time, as the API embeds a query.
        c["query_vectors"] = np.stack([np.asarray(embedder.inner.embed([q.question])[0]) for q in c["questions"]])
        c["dense"] = c["query_vectors"] @ c["turn_vectors"].T
        c["fact_vectors"] = embedder.embed_array([f for f, _ in c["facts"]]) if c["facts"] else np.zeros((0, 384))
    rows = []

    def run(name: str, rank_one: Callable[[dict[str, Any], int], list[int]]) -> None:
        per: dict[int, list[float]] = defaultdict(list)
        for c in convs:
            for qi, q in enumerate(c["questions"]):
                top = {c["dia"][j] for j in rank_one(c, qi)[:10] if j < len(c["dia"])}
                per[q.category].append(len(top & set(q.evidence)) / len(q.evidence))
        everything = [x for v in per.values() for x in v]
        rows.append([name, float(np.mean(everything)), *[float(np.mean(per[k])) for k in CATEGORIES]])
        print(f"  {name}: {rows[-1][1]:.3f}", file=sys.stderr, flush=True)

    def hybrid(docs_of: Callable[[dict[str, Any]], list[Counter]], keep: float = 1.0) -> Callable:
        cache: dict[str, np.ndarray] = {}

        def rank_one(c: dict[str, Any], qi: int) -> list[int]:
            if c["id"] not in cache:
                docs = docs_of(c)
                df: Counter = Counter()
                for d in docs:
                    df.update(d.keys())
                queries = []
                for q in c["query_lexemes"]:
                    kept = {w: n for w, n in q.items() if df.get(w, 0) <= keep * len(docs)} or q
                    queries.append(kept)
                cache[c["id"]] = bm25(docs, queries)
            score = fused(cache[c["id"]][qi], c["dense"][qi])
            return sorted(score, key=lambda d: -score[d])
        return rank_one

    own = lambda c: [Counter(t) for t in c["turn_lexemes"]]  # noqa: E731
    run("dense alone", lambda c, qi: list(np.argsort(-c["dense"][qi], kind="stable")))
    run("own words (BM25, per-scope IDF) + dense", hybrid(own))
    for name, weights, before, after in (
            ("± 1 turn at 0.5", {1: .5}, True, True), ("± 2 turns at 0.5, 0.25", {1: .5, 2: .25}, True, True),
            ("± 3 turns at 0.5, 0.25, 0.125", {1: .5, 2: .25, 3: .125}, True, True),
            ("± 2 turns at 1", {1: 1, 2: 1}, True, True), ("± 2 turns at 0.25", {1: .25, 2: .25}, True, True),
            ("2 turns before at 0.5, 0.25 (the service)", {1: .5, 2: .25}, True, False),
            ("2 turns after at 0.5, 0.25", {1: .5, 2: .25}, False, True)):
        run(f"own words + {name} + dense", hybrid(
            lambda c, w=weights, bf=before, af=after: with_neighbours([Counter(t) for t in c["turn_lexemes"]],
                                                                     c["sessions"], w, bf, af)))
    service = lambda c: with_neighbours([Counter(t) for t in c["turn_lexemes"]], c["sessions"],  # noqa: E731
                                        {1: .5, 2: .25}, True, False)
    for share in (0.5, 0.25, 0.1):
        run(f"the service's documents, words in more than {share:.0%} of the scope left out", hybrid(service, share))
    run("+ facts as hits of their own (strict)", _with_facts(service, lend=False))
    run("+ facts lending half their fusion score to their evidence", _with_facts(service, lend=True))
    report.table(["variant (recall@10)", "all", *CATEGORIES.values()], rows,
                 title="## Text retrieval variants, each fused with dense by RRF")
    report.save()
    return 0


def _with_facts(docs_of: Callable[[dict[str, Any]], list[Counter]], lend: bool) -> Callable:
    cache: dict[str, np.ndarray] = {}

    def rank_one(c: dict[str, Any], qi: int) -> list[int]:
        n = len(c["dia"])
        if c["id"] not in cache:
            cache[c["id"]] = bm25(docs_of(c) + [Counter(f) for f in c["fact_lexemes"]], c["query_lexemes"])
        dense = np.concatenate([c["dense"][qi], c["fact_vectors"] @ c["query_vectors"][qi]])
        score = fused(cache[c["id"]][qi], dense)
        if not lend:
            return sorted(score, key=lambda d: -score[d])  # a fact's index is past the turns: covers nothing
        lent: dict[int, float] = defaultdict(float)
        for d, s in score.items():
            if d < n:
                lent[d] += s
            else:
                for e in c["facts"][d - n][1]:
                    lent[e] += 0.5 * s
        return sorted(lent, key=lambda d: -lent[d])
    return rank_one


def _load(samples: list[dict[str, Any]], bench: Bench) -> list[dict[str, Any]]:
    url = bench.new_database("design")
    convs = []
    with connect(url) as conn:
        def lexemes(text: str) -> dict[str, int]:
            return {r["lexeme"]: r["n"] for r in conn.execute(SQL_LEXEMES, (text,)).fetchall()}

        for s in samples:
            turns = turns_of(s)
            index = {t.dia_id: i for i, t in enumerate(turns)}
            facts = []
            for per_session in s.get("observation", {}).values():
                for items in per_session.values():
                    for item in items:
                        if isinstance(item, list) and len(item) >= 2 and isinstance(item[0], str):
                            evidence = item[1] if isinstance(item[1], list) else [item[1]]
                            ids = [index[e] for e in evidence if isinstance(e, str) and e in index]
                            if ids:
                                facts.append((item[0], ids))
            questions = questions_of(s, set(index))
            convs.append({
                "id": s["sample_id"], "turns": turns, "dia": [t.dia_id for t in turns],
                "sessions": [int(t.dia_id.split(":")[0][1:]) for t in turns], "questions": questions,
                "turn_lexemes": [lexemes(t.content) for t in turns],
                "query_lexemes": [lexemes(q.question) for q in questions],
                "facts": facts, "fact_lexemes": [lexemes(f) for f, _ in facts],
            })
    return convs


if __name__ == "__main__":
    sys.exit(main())
