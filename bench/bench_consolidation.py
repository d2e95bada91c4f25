"""Consolidation: heuristic throughput, LLM calls and tokens per episode, and LoCoMo evidence recall with
facts and summaries searched beside the episodes.

    python -m bench.bench_consolidation            # all 10 LoCoMo conversations (5,882 turns), ~5 min
    python -m bench.bench_consolidation --quick    # the first 2 conversations

1. Every LoCoMo turn becomes an episodic cube: agent = the conversation, session = its session, metadata
   {speaker, dia_id}, occurred_at = the session's date (+ i seconds for turn i).
2. Heuristic engine: one consolidation job per conversation, run in this process against the embedded
   PostgreSQL (memcube.consolidation.run, as a worker runs it); episodes per second, and the embedder's share.
3. LLM engine against the local OpenAI-protocol stub (tests/llm_server.py; it answers at once, with one fact
   per first-person episode and a one-line summary), on the same episodes in a second database: LLM calls and
   tokens per episode. Tokens are what the stub reports (characters / 4): the prompt side is ours, the answer
   side is the stub's, not a real model's.
4. Evidence recall (the locomo benchmark's questions and cleanup, the service's own hybrid search, k = 10)
   before consolidation (episodes) and after it (episodes, facts and summaries; and episodes and facts),
   counted three ways: a derived hit covers nothing (it only takes a slot), covers the episodes in its
   lineage (derived_from), or — for facts only — covers its lineage while summaries cover nothing.

LoCoMo is CC BY-NC 4.0 (non-commercial evaluation only): it is read in place from ../shared/data/locomo and
never copied into the project. Cite Maharana et al., ACL 2024 (arXiv 2402.17753).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence
from uuid import UUID

import numpy as np

from bench.common import Bench, Progress, Report, load_embedder, machine_state
from bench.corpus import Question, Turn, load_locomo, questions_of, session_numbers, turns_of
from memcube import cube, jobs
from memcube.config import Settings
from memcube.consolidation.run import run_consolidation
from memcube.llm import OpenAILLM
from memcube.models import MemCubeCreate, SearchRequest
from memcube.runtime import Runtime, open_runtime
from memcube.search import search
from tests.llm_server import LLMServer, Request

TENANT = "locomo"
K = 10
EPISODE_LINE = re.compile(r"^\[(\d+)\] \S+ \S+ (?:\(session \S+\) )?([^:]+): (.*)$", re.MULTILINE)
FIRST_PERSON = re.compile(r"\bI(?:'m|'ve| am| have| love| like| live| work| went| just)\b")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_consolidation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the first 2 conversations only")
    parser.add_argument("--home", default="/tmp/mc-bench-consolidation", help="the embedded stack's folder")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    args = parser.parse_args(argv)
    samples = load_locomo()[: 2 if args.quick else None]
    report = Report("consolidation" + ("-quick" if args.quick else ""))
    report.figures["machine"] = machine_state()
    report.say(f"# Consolidation ({len(samples)} LoCoMo conversations)\nmachine: {report.figures['machine']}")
    bench = Bench.start(Path(args.home), keep=args.keep)
    try:
        run(report, bench, samples)
    finally:
        bench.close()
        report.save()
    return 0


def run(report: Report, bench: Bench, samples: list[dict[str, Any]]) -> None:
    conversations = {s["sample_id"]: turns_of(s) for s in samples}
    sessions = {s["sample_id"]: len(session_numbers(s["conversation"])) for s in samples}
    questions = [q for s in samples for q in questions_of(s, {t.dia_id for t in conversations[s["sample_id"]]})]
    n_turns = sum(len(t) for t in conversations.values())
    report.say(f"{n_turns} turns in {sum(sessions.values())} sessions; {len(questions)} questions with usable "
               f"evidence.\n")
    embedder = load_embedder()
    heuristic_url = bench.new_database("consolidation_heuristic")
    settings = bench.settings(heuristic_url, consolidate_engine="heuristic", consolidate_after_episodes=0)
    runtime = open_runtime(settings, embedder=embedder)
    try:
        vectors = _ingest(runtime, settings, conversations)
        before = _recall(runtime, settings, questions, kinds=["episodic"])
        embedder.seconds, embedder.texts = 0.0, 0
        heuristic = _consolidate(runtime, settings, list(conversations))
        heuristic["embed_seconds"] = embedder.seconds
        after = _recall(runtime, settings, questions, kinds=["episodic", "semantic", "summary"])
        with_facts = _recall(runtime, settings, questions, kinds=["episodic", "semantic"])
        lineage = _lineage(runtime)
    finally:
        runtime.close()
    _report_heuristic(report, heuristic, n_turns)
    _report_recall(report, questions, before, after, with_facts, lineage)

    stub = LLMServer().start()
    stub.reset(_stub_answer)
    llm_url = bench.new_database("consolidation_llm")
    llm_settings = bench.settings(llm_url, consolidate_engine="llm", consolidate_after_episodes=0,
                                  llm_base_url=stub.url, llm_model="stub")
    runtime = open_runtime(llm_settings, embedder=embedder)
    try:
        _ingest(runtime, llm_settings, conversations, vectors)
        llm = OpenAILLM(base_url=stub.url, api_key=None, model="stub", timeout=30, max_retries=0)
        result = _consolidate(runtime, llm_settings, list(conversations), llm=llm)
    finally:
        runtime.close()
        stub.stop()
    _report_llm(report, result, n_turns, sum(sessions.values()))


def _ingest(runtime: Runtime, settings: Settings, conversations: dict[str, list[Turn]],
            vectors: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Store every turn as an episodic cube (with the given vectors, else embedded); return the vectors."""
    total = sum(len(t) for t in conversations.values())
    progress, done, stored = Progress("ingest", total), 0, {}
    for sample_id, turns in conversations.items():
        for start in range(0, len(turns), 500):
            batch = turns[start:start + 500]
            items = [MemCubeCreate(agent_id=sample_id, session_id=f"{sample_id}:{t.dia_id.split(':')[0]}",
                                   content=t.content, occurred_at=t.occurred_at,
                                   metadata={"speaker": t.speaker, "dia_id": t.dia_id},
                                   embedding=vectors.get(f"{sample_id}/{t.dia_id}") if vectors else None)
                     for t in batch]
            with runtime.pool.connection() as conn:
                rows = cube.create_cubes(conn, tenant=TENANT, actor="bench", items=items,
                                         embedder=runtime.embedder, settings=settings)
            if vectors is None:
                with runtime.pool.connection() as conn:
                    for row in conn.execute("SELECT metadata->>'dia_id' AS dia_id, embedding FROM memcubes "
                                            "WHERE id = ANY(%s)", ([r["id"] for r in rows],)).fetchall():
                        stored[f"{sample_id}/{row['dia_id']}"] = row["embedding"].to_numpy().tolist()
            done += len(items)
            progress(done)
    return stored if vectors is None else vectors


def _consolidate(runtime: Runtime, settings: Settings, agents: Sequence[str], llm: Any = None) -> dict[str, Any]:
    """One job per conversation, run to the end in this process; return the summed counts and timings."""
    counts: Counter[str] = Counter()
    usage = {"llm_calls": 0, "tokens_in": 0, "tokens_out": 0}
    seconds = 0.0
    for agent in agents:
        with runtime.pool.connection() as conn:
            job, _ = jobs.enqueue_consolidation(conn, tenant=TENANT, agent_id=agent, user_id=None, trigger="api")
        started = time.perf_counter()
        result = run_consolidation(runtime.pool, job_id=job["id"], embedder=runtime.embedder, settings=settings,
                                   llm=llm)
        seconds += time.perf_counter() - started
        if result["state"] != "succeeded":
            raise SystemExit(f"consolidation of {agent} failed: {result}")
        counts.update(result["counts"])
        with runtime.pool.connection() as conn:
            row = jobs.get_job(conn, tenant=TENANT, job_id=job["id"])
        for key in usage:
            usage[key] += row[key]
    return {"seconds": seconds, "counts": dict(counts), **usage}


def _stub_answer(request: Request) -> str:
    """The stub LLM: one fact per first-person episode ("<speaker> said: <text>"), a one-line summary."""
    episodes = EPISODE_LINE.findall(request.prompt)
    if "Summarize" in request.prompt:
        speakers = sorted({speaker for _, speaker, _ in episodes})
        return json.dumps({"summary": f"{' and '.join(speakers)} talked ({len(episodes)} messages)."})
    facts = [{"content": f"{speaker} said: {text[:200]}", "evidence": [int(n)], "action": "add", "confidence": 0.7}
             for n, speaker, text in episodes if FIRST_PERSON.search(text)]
    return json.dumps({"facts": facts})


def _search(runtime: Runtime, settings: Settings, question: Question, kinds: list[str]) -> list[dict[str, Any]]:
    request = SearchRequest(agent_id=question.sample_id, query=question.question, k=K, kinds=kinds)  # type: ignore
    with runtime.pool.connection() as conn:
        hits = search(conn, tenant=TENANT, request=request, embedder=runtime.embedder, settings=settings,
                      stats=runtime.stats).hits
    return [{"id": h.id, "kind": h.kind, "dia_id": h.metadata.get("dia_id")} for h in hits]


def _recall(runtime: Runtime, settings: Settings, questions: list[Question],
            kinds: list[str]) -> list[list[dict[str, Any]]]:
    progress, out = Progress(f"search {'+'.join(kinds)}", len(questions)), []
    for i, question in enumerate(questions):
        out.append(_search(runtime, settings, question, kinds))
        progress(i + 1)
    return out


def _lineage(runtime: Runtime) -> dict[UUID, list[str]]:
    """The dia_ids each derived cube came from (its derived_from episodes)."""
    with runtime.pool.connection() as conn:
        dia = {r["id"]: r["dia_id"] for r in conn.execute(
            "SELECT id, metadata->>'dia_id' AS dia_id FROM memcubes WHERE tenant = %s AND kind = 'episodic'",
            (TENANT,)).fetchall()}
        rows = conn.execute("SELECT id, provenance FROM memcubes WHERE tenant = %s AND kind <> 'episodic'",
                            (TENANT,)).fetchall()
    return {r["id"]: [dia[UUID(ref["id"])] for ref in r["provenance"].get("derived_from", [])
                      if UUID(ref["id"]) in dia] for r in rows}


def _covered(hits: list[dict[str, Any]], k: int, lineage: dict[UUID, list[str]], count: set[str]) -> set[str]:
    """The dia_ids the first k hits cover: an episode its own; a derived cube of a kind in `count` its lineage."""
    out: set[str] = set()
    for hit in hits[:k]:
        if hit["kind"] == "episodic":
            out.add(hit["dia_id"])
        elif hit["kind"] in count:
            out.update(lineage.get(hit["id"], []))
    return out


def _score(questions: list[Question], ranked: list[list[dict[str, Any]]], k: int, lineage: dict[UUID, list[str]],
           count: set[str]) -> float:
    return float(np.mean([len(_covered(hits, k, lineage, count) & set(q.evidence)) / len(q.evidence)
                          for q, hits in zip(questions, ranked)]))


def _report_heuristic(report: Report, result: dict[str, Any], n_turns: int) -> None:
    rate = n_turns / result["seconds"]
    counts = result["counts"]
    report.table(["engine", "episodes", "seconds", "episodes/s", "embedding share", "facts added", "updated",
                  "superseded", "unchanged", "summaries"],
                 [["heuristic", n_turns, result["seconds"], rate, result["embed_seconds"] / result["seconds"],
                   counts.get("added", 0), counts.get("updated", 0), counts.get("superseded", 0),
                   counts.get("unchanged", 0), counts.get("summaries", 0)]],
                 title="## Heuristic consolidation throughput (one job per conversation, in process)")
    report.figures["heuristic"] = {**result, "episodes_per_second": rate}


def _report_llm(report: Report, result: dict[str, Any], n_turns: int, n_sessions: int) -> None:
    calls, t_in, t_out = result["llm_calls"], result["tokens_in"], result["tokens_out"]
    report.table(["engine", "episodes", "sessions", "LLM calls", "calls/episode", "tokens in/episode",
                  "tokens out/episode", "episodes/s (stub answers at once)"],
                 [["llm (stub)", n_turns, n_sessions, calls, calls / n_turns, t_in / n_turns, t_out / n_turns,
                   n_turns / result["seconds"]]],
                 title="## LLM engine against the local stub")
    report.say(f"Calls: one per topic group (≤ 20 episodes, MEMCUBE_CONSOLIDATE_GROUP_MAX_EPISODES) and one "
               f"summary per session in each batch. Counts: {result['counts']}\n")
    report.figures["llm"] = {**result, "calls_per_episode": calls / n_turns, "tokens_in_per_episode": t_in / n_turns,
                             "tokens_out_per_episode": t_out / n_turns}


def _report_recall(report: Report, questions: list[Question], before: list[list[dict[str, Any]]],
                   after: list[list[dict[str, Any]]], with_facts: list[list[dict[str, Any]]],
                   lineage: dict[UUID, list[str]]) -> None:
    rows = []
    ways = [("episodes only, before consolidation", before, set()),
            ("all kinds after; derived hits cover nothing", after, set()),
            ("all kinds after; facts cover their lineage, summaries nothing", after, {"semantic"}),
            ("all kinds after; facts and summaries cover their lineage", after, {"semantic", "summary"}),
            ("episodes and facts after (no summaries); facts cover nothing", with_facts, set()),
            ("episodes and facts after (no summaries); facts cover their lineage", with_facts, {"semantic"})]
    figures = {}
    for name, ranked, count in ways:
        r5, r10 = _score(questions, ranked, 5, lineage, count), _score(questions, ranked, 10, lineage, count)
        rows.append([name, r5, r10])
        figures[name] = {"r5": r5, "r10": r10}
    report.table(["search", "recall@5", "recall@10"], rows, title="## LoCoMo evidence recall (hybrid search, k = 10)")
    kinds = Counter(hit["kind"] for hits in after for hit in hits)
    report.say(f"Hits after consolidation, by kind: {dict(kinds)} (of {sum(kinds.values())}).")
    sizes = [len(v) for v in lineage.values()]
    report.say(f"Derived cubes: {len(lineage)}, lineage {np.mean(sizes):.1f} episodes on average "
               f"(a session summary covers its whole session).\n")
    report.figures["recall"] = {**figures, "hits_by_kind": dict(kinds), "questions": len(questions),
                                "at": datetime.now(timezone.utc).isoformat()}


if __name__ == "__main__":
    raise SystemExit(main())
