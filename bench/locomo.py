"""LoCoMo through the REST API: what search and context assembly hand back, before and after consolidation,
beside BM25 alone and dense alone over the same turns, in one run.

    python -m bench.locomo            # all 10 conversations (5,882 turns, 1,982 questions), ~25 min
    python -m bench.locomo --quick    # the first 2 conversations

Four figures (issue "memory that pays its way"):
1. Derived memory never costs recall: strict evidence recall@10 of the default search after consolidation has
   settled, beside the episodes-only search and beside derived memories returned as hits of their own
   (strict, and crediting each derived hit with the episodes it was derived from).
2. Search itself: evidence recall@5/@10 by category; ablations through the API (turns stored without their
   session, so no turn carries its neighbours' words; every query word kept).
3. Context keeps the evidence: the share of a question's evidence turns that `POST /v1/context` includes at
   500, 1,000 and 2,000 tokens (the conversations appended as sessions, consolidated, each question asked for
   the conversation's user without a session), beside the same budget filled with plain top-k search hits,
   and the tokens used against the whole conversation's.
4. Facts that are right: the heuristic engine's precision and recall on the hand-written corpus in tests/
   (`python -m bench.facts` alone).

LoCoMo is CC BY-NC 4.0 (non-commercial evaluation only): it is read in place from ../shared/data/locomo and
never copied into the project. Cite Maharana et al., ACL 2024 (arXiv 2402.17753).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from rank_bm25 import BM25Okapi

from bench.common import DEFAULT_HOME, Bench, BenchEmbedder, Progress, Report, load_embedder, machine_state
from bench.corpus import Question, Turn, load_locomo, postgres_english_stopwords, questions_of, turns_of
from memcube import jobs, tokens
from memcube.config import load_settings
from memcube.consolidation.run import run_consolidation
from memcube.runtime import open_runtime

AGENT = "locomo"
TENANT = "locomo"              # turns stored through POST /v1/memories/batch, each with its session
FLAT_TENANT = "locomo-flat"    # the same turns without their session: no turn carries its neighbours' words
CHAT_TENANT = "locomo-chat"    # the conversations appended as sessions, for context assembly
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
BUDGETS = (500, 1000, 2000)
K = 10
WORD = re.compile(r"\w+")


@dataclass
class Conversation:
    sample_id: str
    turns: list[Turn]
    questions: list[Question]
    speaker_a: str


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.locomo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the first 2 conversations only")
    p.add_argument("--home", default=str(DEFAULT_HOME))
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument("--embedders", default=None, metavar="SPEC,SPEC",
                   help="only compare embedders on the same turns and questions, e.g. onnx,torch,onnx:fp32 "
                        "(MEMCUBE_EMBEDDER[:MEMCUBE_ONNX_PRECISION]): hybrid and dense recall, embedding speed")
    p.add_argument("--check", action="append", default=None, metavar="SETTING=VALUE",
                   help="also search through an API started with this setting changed (repeatable; default: "
                        "text_common_fraction=1, every query word kept)")
    args = p.parse_args(argv)
    samples = load_locomo()[: 2 if args.quick else None]
    report = Report("locomo" + ("-quick" if args.quick else ""))
    report.figures["machine"] = machine_state()
    report.say(f"# LoCoMo through the API ({len(samples)} conversations)\nmachine: {report.figures['machine']}")
    bench = Bench.start(Path(args.home), keep=args.keep)
    try:
        if args.embedders:
            compare_embedders(report, bench, samples, args.embedders.split(","))
        else:
            run(report, bench, samples, args.check if args.check is not None else ["text_common_fraction=1"])
    finally:
        bench.close()
        report.save()
    return 0


def run(report: Report, bench: Bench, samples: list[dict[str, Any]], checks: Sequence[str]) -> None:
    convs = []
    for s in samples:
        turns = turns_of(s)
        convs.append(Conversation(s["sample_id"], turns, questions_of(s, {t.dia_id for t in turns}),
                                  s["conversation"]["speaker_a"]))
    questions = [q for c in convs for q in c.questions]
    turns = [t for c in convs for t in c.turns]
    report.say(f"{len(turns)} turns, {len(questions)} questions with evidence. One agent `{AGENT}`, one user per "
               "conversation (its sample_id), one session per LoCoMo session; a turn's content is "
               "\"<speaker>: <text>\" (+ \" [shares a photo: <caption>]\"), occurred_at = the session's date + i s.")
    embedder = load_embedder()
    started = time.perf_counter()
    turn_vectors = embedder.embed_array([t.content for t in turns], progress=Progress("embed turns", len(turns)))
    for q in questions:
        # One at a time, as the API embeds a query.
        embedder.cache[q.question] = np.asarray(embedder.inner.embed([q.question])[0], dtype=np.float32)
    report.say(f"turns and questions embedded once in {time.perf_counter() - started:.0f} s (MiniLM); the turns' "
               "vectors go with the batch writes, the questions' are the servers' cache")
    vectors_path = embedder.save_cache(Path(tempfile.mkdtemp(prefix="locomo-")) / "questions.npz")
    url = bench.new_database("locomo")
    server = bench.serve(url, query_vectors=vectors_path)
    keys = {t: server.new_key(t) for t in (TENANT, FLAT_TENANT, CHAT_TENANT)}
    vector_of = {(t.sample_id, t.dia_id): turn_vectors[i] for i, t in enumerate(turns)}
    dia_of = _ingest_batch(server, keys[TENANT], convs, vector_of, with_sessions=True)
    flat_dia_of = _ingest_batch(server, keys[FLAT_TENANT], convs, vector_of, with_sessions=False)
    chat_ids = _ingest_sessions(server, keys[CHAT_TENANT], convs)

    ranked: dict[str, list[list[set[str]]]] = {}
    ranked["episodes only (kinds: [episodic])"] = _api_search(server, keys[TENANT], questions, dia_of,
                                                              kinds=["episodic"])
    ranked["episodes only, stored without sessions (no neighbour words)"] = _api_search(
        server, keys[FLAT_TENANT], questions, flat_dia_of, kinds=["episodic"])
    runtime = open_runtime(server.settings, embedder=embedder.inner)
    try:
        counts = {tenant: _consolidate(server, keys[tenant], runtime, tenant)
                  for tenant in (TENANT, CHAT_TENANT)}
    finally:
        runtime.close()
    report.say("consolidation (heuristic engine, one job per tenant, run to the end): " +
               "; ".join(f"{t}: {c}" for t, c in counts.items()))
    ranked["default search, after consolidation"] = _api_search(server, keys[TENANT], questions, dia_of)
    ranked["derived memories as hits of their own (strict)"] = _api_search(
        server, keys[TENANT], questions, dia_of, derived="hits")
    ranked["derived memories as hits, credited with their evidence"] = _api_search(
        server, keys[TENANT], questions, dia_of, derived="hits", lineage=True)
    every_kind = ["episodic", "semantic", "procedural", "summary", "core", "artifact"]
    ranked["every kind, summaries too, as hits (strict)"] = _api_search(
        server, keys[TENANT], questions, dia_of, kinds=every_kind)
    ranked["every kind, summaries too, as hits, credited with their evidence"] = _api_search(
        server, keys[TENANT], questions, dia_of, kinds=every_kind, lineage=True)
    for check in checks:
        name, _, value = check.partition("=")
        other = bench.serve(url, query_vectors=vectors_path, **{name: value})
        ranked[f"default search, MEMCUBE_{name.upper()}={value}"] = _api_search(other, keys[TENANT], questions,
                                                                               dia_of)
        other.stop()
    stop = postgres_english_stopwords()
    ranked["BM25 alone (BM25Okapi over the turns)"] = _bm25(convs, questions, stop)
    ranked["dense alone (exact cosine, MiniLM)"] = _dense(convs, questions, turn_vectors, embedder)
    _report_search(report, questions, ranked)
    _report_context(report, server, keys[CHAT_TENANT], convs, chat_ids)
    _report_facts(report)


# --- ingest -------------------------------------------------------------------------------------------------------


def _session_of(turn: Turn) -> str:
    return f"{turn.sample_id}:{turn.dia_id.split(':')[0]}"


def embedder_overrides(spec: str) -> dict[str, str]:
    """`onnx`, `torch`, `onnx:fp32` -> the settings that build that embedder."""
    name, _, precision = spec.partition(":")
    return {"embedder": name, **({"onnx_precision": precision} if precision else {})}


def compare_embedders(report: Report, bench: Bench, samples: list[dict[str, Any]], specs: list[str]) -> None:
    """The same turns and questions through one API per embedder: hybrid recall (the default search) and dense
    recall (exact cosine over the stored vectors), and each embedder's speed, measured interleaved."""
    convs = []
    for s in samples:
        turns = turns_of(s)
        convs.append(Conversation(s["sample_id"], turns, questions_of(s, {t.dia_id for t in turns}),
                                  s["conversation"]["speaker_a"]))
    questions = [q for c in convs for q in c.questions]
    turns = [t for c in convs for t in c.turns]
    report.say(f"{len(turns)} turns, {len(questions)} questions; embedders: {', '.join(specs)}")
    embedders = {spec: load_embedder(**embedder_overrides(spec)) for spec in specs}
    vectors, batch_rate = {}, {}
    for spec, embedder in embedders.items():
        started = time.perf_counter()
        vectors[spec] = embedder.embed_array([t.content for t in turns], progress=Progress(f"embed {spec}", len(turns)))
        batch_rate[spec] = len(turns) / (time.perf_counter() - started)
    single: dict[str, list[float]] = {spec: [] for spec in specs}
    for i, q in enumerate(questions):
        # One at a time, as the API embeds a query; the order rotates so that no embedder always goes first.
        for spec in specs[i % len(specs):] + specs[:i % len(specs)]:
            started = time.perf_counter()
            embedders[spec].cache[q.question] = np.asarray(embedders[spec].inner.embed([q.question])[0],
                                                           dtype=np.float32)
            single[spec].append((time.perf_counter() - started) * 1000)
    rows, figures = [], {}
    base = specs[-1]
    for spec in specs:
        path = embedders[spec].save_cache(Path(tempfile.mkdtemp(prefix="locomo-")) / "questions.npz")
        server = bench.serve(bench.new_database("emb"), query_vectors=path, **embedder_overrides(spec))
        key = server.new_key(TENANT)
        vector_of = {(t.sample_id, t.dia_id): vectors[spec][i] for i, t in enumerate(turns)}
        dia_of = _ingest_batch(server, key, convs, vector_of, with_sessions=True)
        hybrid = _scores(questions, _api_search(server, key, questions, dia_of))
        dense = _scores(questions, _dense(convs, questions, vectors[spec], embedders[spec]))
        server.stop()
        cos = float(np.mean(np.sum(vectors[spec] * vectors[base], axis=1)))
        p50, p95 = np.percentile(single[spec], 50), np.percentile(single[spec], 95)
        rows.append([spec, embedders[spec].name, hybrid[0], hybrid[1], dense[0], dense[1], p50, p95,
                     batch_rate[spec], cos])
        figures[spec] = {"name": embedders[spec].name, "hybrid_r5": hybrid[0], "hybrid_r10": hybrid[1],
                         "dense_r5": dense[0], "dense_r10": dense[1], "batch1_p50_ms": p50, "batch1_p95_ms": p95,
                         "batch_texts_per_s": batch_rate[spec], "cosine_to_" + base: cos}
    report.table(["embedder", "space", "hybrid R@5", "hybrid R@10", "dense R@5", "dense R@10", "batch-1 p50 ms",
                  "p95 ms", f"batch {load_settings().embed_batch_size or 'default'} texts/s", f"cos to {base}"], rows,
                 title="## Embedders on the same turns (default search through the API, k = 10; dense = exact "
                       "cosine over the stored vectors)")
    for spec in specs[:-1]:
        d_h = figures[spec]["hybrid_r10"] - figures[base]["hybrid_r10"]
        d_d = figures[spec]["dense_r10"] - figures[base]["dense_r10"]
        speed = figures[base]["batch1_p50_ms"] / figures[spec]["batch1_p50_ms"]
        report.say(f"{spec} against {base}: hybrid R@10 {d_h:+.3f} (within 0.005: {abs(d_h) <= 0.005 or d_h > 0}), "
                   f"dense R@10 {d_d:+.3f} (within 0.01: {abs(d_d) <= 0.01 or d_d > 0}); batch-1 {speed:.1f}x "
                   f"faster, batch {figures[spec]['batch_texts_per_s'] / figures[base]['batch_texts_per_s']:.1f}x")
    report.say(f"load average after the run: {machine_state()['loadavg_1_5_15']}")
    report.figures["embedders"] = figures


def _ingest_batch(server: Any, token: str, convs: list[Conversation], vector_of: dict[tuple[str, str], np.ndarray],
                  with_sessions: bool) -> dict[str, str]:
    """Store every turn through POST /v1/memories/batch; return cube id -> dia_id."""
    ids: dict[str, str] = {}
    total = sum(len(c.turns) for c in convs)
    progress = Progress("batch ingest" + ("" if with_sessions else " (no sessions)"), total)
    done = 0
    with server.client(token) as http:
        for conv in convs:
            for start in range(0, len(conv.turns), 500):
                items = []
                for t in conv.turns[start:start + 500]:
                    item = {"agent_id": AGENT, "user_id": conv.sample_id, "kind": "episodic", "content": t.content,
                            "metadata": {"dia_id": t.dia_id}, "occurred_at": t.occurred_at.isoformat(),
                            "embedding": vector_of[(t.sample_id, t.dia_id)].tolist()}
                    if with_sessions:
                        item["session_id"] = _session_of(t)
                    items.append(item)
                r = http.post("/v1/memories/batch", json={"items": items})
                r.raise_for_status()
                ids.update((made["id"], item["metadata"]["dia_id"]) for made, item in zip(r.json()["items"], items))
                done += len(items)
                progress(done)
    return ids


def _ingest_sessions(server: Any, token: str, convs: list[Conversation]) -> dict[Any, str]:
    """Append every LoCoMo session as a session of its user; return cube id -> dia_id."""
    ids: dict[Any, str] = {}
    progress = Progress("session appends", sum(len(c.turns) for c in convs))
    with server.client(token) as http:
        for conv in convs:
            by_session: dict[str, list[Turn]] = defaultdict(list)
            for t in conv.turns:
                by_session[_session_of(t)].append(t)
            for session_id, session_turns in by_session.items():
                for start in range(0, len(session_turns), 100):
                    part = session_turns[start:start + 100]
                    messages = [{"role": "user" if t.speaker == conv.speaker_a else "assistant", "name": t.speaker,
                                 "content": t.content.split(": ", 1)[1], "created_at": t.occurred_at.isoformat()}
                                for t in part]
                    r = http.post(f"/v1/sessions/{session_id}/messages",
                                  json={"agent_id": AGENT, "user_id": conv.sample_id, "messages": messages})
                    r.raise_for_status()
                    for t, m in zip(part, r.json()["messages"]):
                        ids[m["id"]] = t.dia_id
                    progress(len(ids))
    return ids


def _consolidate(server: Any, token: str, runtime: Any, tenant: str) -> dict[str, int]:
    """Ask the API for a consolidation of the agent, then run the job to its end in this process (as a worker)."""
    with server.client(token) as http:
        r = http.post(f"/v1/agents/{AGENT}/consolidate", json={})
        r.raise_for_status()
        job_id = r.json()["job_id"]
    result = run_consolidation(runtime.pool, job_id=job_id, embedder=runtime.embedder, settings=runtime.settings,
                               llm=None)
    if result["state"] != "succeeded":
        raise SystemExit(f"consolidation of {tenant} failed: {result}")
    # Jobs the ingest's triggers queued meanwhile find nothing left to do.
    with runtime.pool.connection() as conn:
        rows = conn.execute("SELECT id FROM jobs WHERE tenant = %s AND state = 'queued'", (tenant,)).fetchall()
    for row in rows:
        run_consolidation(runtime.pool, job_id=row["id"], embedder=runtime.embedder, settings=runtime.settings,
                          llm=None)
    return dict(result["counts"])


# --- search -------------------------------------------------------------------------------------------------------


def _api_search(server: Any, token: str, questions: list[Question], dia_of: dict[str, str], *,
                kinds: list[str] | None = None, derived: str | None = None, lineage: bool = False,
                k: int = K) -> list[list[set[str]]]:
    """Each question's top-k, as the dia_ids each hit covers: an episode its own; a derived hit none, or with
    `lineage` those of the episodes it lists as its evidence."""
    out = []
    label = "search" + (f" kinds={kinds}" if kinds else "") + (f" derived={derived}" if derived else "")
    progress = Progress(label, len(questions))
    with server.client(token) as http:
        for i, q in enumerate(questions):
            body: dict[str, Any] = {"agent_id": AGENT, "user_id": q.sample_id, "query": q.question, "k": k}
            if kinds:
                body["kinds"] = kinds
            if derived:
                body["derived"] = derived
            r = http.post("/v1/search", json=body)
            r.raise_for_status()
            out.append([_covers(h, dia_of, lineage) for h in r.json()["hits"]])
            progress(i + 1)
    return out


def _covers(hit: dict[str, Any], dia_of: dict[str, str], lineage: bool) -> set[str]:
    if hit["id"] in dia_of:
        return {dia_of[hit["id"]]}
    if lineage:
        return {dia_of[e["id"]] for e in hit.get("evidence", []) if e["id"] in dia_of}
    return set()


def recall(ranked: Sequence[set[str]], evidence: Sequence[str], k: int) -> float:
    covered = set().union(*ranked[:k]) if ranked[:k] else set()
    return len(covered & set(evidence)) / len(evidence)


def _bm25(convs: list[Conversation], questions: list[Question], stop: set[str], k: int = K) -> list[list[set[str]]]:
    index = {}
    for c in convs:
        docs = [[w for w in WORD.findall(t.content.lower()) if w not in stop] or ["_"] for t in c.turns]
        index[c.sample_id] = (BM25Okapi(docs), [t.dia_id for t in c.turns])
    out = []
    for q in questions:
        bm, ids = index[q.sample_id]
        scores = bm.get_scores([w for w in WORD.findall(q.question.lower()) if w not in stop])
        out.append([{ids[j]} for j in np.argsort(-scores, kind="stable")[:k]])
    return out


def _dense(convs: list[Conversation], questions: list[Question], vectors: np.ndarray, embedder: BenchEmbedder,
           k: int = K) -> list[list[set[str]]]:
    start, spans = 0, {}
    for c in convs:
        spans[c.sample_id] = (start, [t.dia_id for t in c.turns])
        start += len(c.turns)
    out = []
    for q in questions:
        first, ids = spans[q.sample_id]
        sims = vectors[first:first + len(ids)] @ embedder.cache[q.question]
        out.append([{ids[j]} for j in np.argsort(-sims, kind="stable")[:k]])
    return out


def _scores(questions: list[Question], ranked: list[list[set[str]]],
            subset: Callable[[Question], bool] = lambda q: True) -> tuple[float, float, float, int]:
    picked = [(q, r) for q, r in zip(questions, ranked) if subset(q)]
    if not picked:
        return float("nan"), float("nan"), float("nan"), 0
    r5 = float(np.mean([recall(r, q.evidence, 5) for q, r in picked]))
    r10 = float(np.mean([recall(r, q.evidence, 10) for q, r in picked]))
    hit = float(np.mean([recall(r, q.evidence, 10) > 0 for q, r in picked]))
    return r5, r10, hit, len(picked)


def _report_search(report: Report, questions: list[Question], ranked: dict[str, list[list[set[str]]]]) -> None:
    rows = [[name, *_scores(questions, r)] for name, r in ranked.items()]
    report.table(["method", "recall@5", "recall@10", "hit@10", "questions"], rows,
                 title="## 1-2. Evidence recall, all categories (user-scoped search through the API, k = 10)")
    figures: dict[str, Any] = {"overall": {r[0]: dict(zip(("r5", "r10", "hit10", "n"), r[1:])) for r in rows}}
    names = list(ranked)
    crow = []
    for cat, label in CATEGORIES.items():
        line: list[Any] = [f"{cat} {label}"]
        n = 0
        for name in names:
            r5, r10, hit, n = _scores(questions, ranked[name], lambda q, c=cat: q.category == c)
            line.append(r10)
            figures.setdefault("by_category", {}).setdefault(label, {})[name] = {"r5": r5, "r10": r10, "n": n}
        line.append(n)
        crow.append(line)
    report.table(["category (R@10)"] + [f"({i + 1})" for i in range(len(names))] + ["questions"], crow,
                 title="## By category; columns in the order of the table above")
    overall = figures["overall"]
    default = overall["default search, after consolidation"]["r10"]
    episodic = overall["episodes only (kinds: [episodic])"]["r10"]
    report.say(f"goal 1 (default search after consolidation ≥ episodes only, strictly): {default:.3f} vs "
               f"{episodic:.3f}: {'met' if default >= episodic else 'NOT met'}")
    report.say(f"goal 2 (search recall@10 ≥ 0.70): {max(default, episodic):.3f}: "
               f"{'met' if max(default, episodic) >= 0.70 else 'NOT met'}\n")
    report.figures["search"] = figures


# --- context ------------------------------------------------------------------------------------------------------


def _report_context(report: Report, server: Any, token: str, convs: list[Conversation],
                    dia_of: dict[Any, str]) -> None:
    questions = [q for c in convs for q in c.questions]
    whole = {c.sample_id: sum(tokens.count_many([f"{t.speaker}: {t.content.split(': ', 1)[1]}" for t in c.turns]))
             for c in convs}
    got: dict[int, list[float]] = defaultdict(list)
    used: dict[int, list[int]] = defaultdict(list)
    base: dict[int, list[float]] = defaultdict(list)
    base_used: dict[int, list[int]] = defaultdict(list)
    share: dict[int, list[float]] = defaultdict(list)
    progress = Progress("context", len(questions))
    with server.client(token) as http:
        for i, q in enumerate(questions):
            gold = set(q.evidence)
            for budget in BUDGETS:
                r = http.post("/v1/context", json={"agent_id": AGENT, "user_id": q.sample_id, "query": q.question,
                                                   "budget": budget})
                r.raise_for_status()
                ctx = r.json()
                items = {dia_of.get(item["id"]) for s in ctx["sections"].values() for item in s["items"]
                         if item.get("id")}
                got[budget].append(len(items & gold) / len(gold))
                used[budget].append(ctx["tokens"])
                share[budget].append(ctx["tokens"] / whole[q.sample_id])
            r = http.post("/v1/search", json={"agent_id": AGENT, "user_id": q.sample_id, "query": q.question,
                                              "k": 200})
            r.raise_for_status()
            hits = r.json()["hits"]
            lines = tokens.count_many([f"- {h['content']}" for h in hits])
            for budget in BUDGETS:
                total, covered = 0, set()
                for h, n in zip(hits, lines):
                    if total + n > budget:
                        break
                    total += n
                    covered.add(dia_of.get(h["id"]))
                base[budget].append(len(covered & gold) / len(gold))
                base_used[budget].append(total)
            progress(i + 1)
    rows = [[b, float(np.mean(got[b])), float(np.mean(base[b])), float(np.mean(used[b])), float(np.mean(base_used[b])),
             float(np.mean(share[b]))] for b in BUDGETS]
    report.table(["budget", "context evidence recall", "top-k search hits, same budget", "context tokens used",
                  "search lines' tokens", "context / whole conversation"], rows,
                 title="## 3. Context keeps the evidence (POST /v1/context, no session, after consolidation)")
    report.say(f"whole conversations: {np.mean(list(whole.values())):.0f} tokens on average "
               f"(memcube.tokens over \"<speaker>: <text>\" lines)")
    met = all(np.mean(got[b]) >= np.mean(base[b]) for b in BUDGETS) and np.mean(got[2000]) >= 0.75
    report.say(f"goal 3 (context ≥ search hits at every budget, ≥ 0.75 at 2,000 tokens): "
               f"{'met' if met else 'NOT met'}\n")
    report.figures["context"] = {str(r[0]): dict(zip(("recall", "baseline", "tokens", "baseline_tokens", "share"),
                                                     r[1:])) for r in rows}


def _report_facts(report: Report) -> None:
    from bench import facts

    rows, figures = [], {}
    corpora = [path for path in sorted(facts.CORPUS.parent.glob("fact_*.jsonl"))]
    for path in corpora:
        result = facts.score(facts.load_corpus(path))
        rows.append([path.name, result.statements, result.produced, len(result.false), result.expected,
                     result.found, result.precision, result.recall])
        figures[path.name] = {"statements": result.statements, "precision": result.precision,
                              "recall": result.recall}
    report.table(["corpus (tests/memcube/consolidation)", "statements", "facts produced", "false", "required",
                  "found", "precision", "recall"], rows,
                 title="## 4. Facts that are right (the heuristic engine; details: python -m bench.facts)")
    report.figures["facts"] = figures


if __name__ == "__main__":
    sys.exit(main())
