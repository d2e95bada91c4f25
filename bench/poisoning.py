"""Poisoning defence, measured: how many poisoned memories the detector quarantines and how many benign ones it
holds by mistake, on our own labelled data (bench/data/poisoning_*.jsonl), per split and per category.

Two splits: `tune` (the rules were tuned on it) and `heldout` (written at the same time, before any tuning, in
other words and styles, and never looked at while tuning). Each row has a label (poisoned/benign), a category,
the origin that wrote it (user, agent, tool, web, document, import: its trust sets the threshold) and the text.

Two measurements of each split:
- the detector alone: `memcube.poisoning.screen` with the default settings, in this process;
- end to end: every row written through the real HTTP API (rows from a user, the agent or a tool as session
  messages with that role; the others through `POST /v1/memories/batch` with their `origin`), then what came
  back quarantined counted from `GET /v1/memories?status=quarantined`; and a search for each quarantined text,
  which must never return a quarantined memory.

    python -m bench.poisoning                  # both (~1 min: starts an embedded stack)
    python -m bench.poisoning --detector-only  # the detector alone (seconds)
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from bench.corpus import LOCOMO_PATH, load_locomo, turns_of
from bench.common import BENCH_DIR, DEFAULT_HOME, Bench, Report, chunks
from memcube.config import Settings
from memcube.poisoning import ORIGINS, screen

DATA = BENCH_DIR / "data"
SPLITS = ("tune", "heldout")
# Origins written as session messages, with the role that maps to them (memcube.poisoning.ROLE_ORIGIN).
ROLES = {"user": "user", "agent": "assistant", "tool": "tool"}


def load(split: str) -> list[dict[str, Any]]:
    """Return the rows of a split."""
    path = DATA / f"poisoning_{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def rates(rows: Sequence[dict[str, Any]], held: set[str]) -> dict[str, Any]:
    """Return the detection rate (poisoned rows held), the false-positive rate (benign rows held), and both per
    category, as {"detection", "false_positive", "poisoned", "benign", "categories": {(label, cat): (held, n)}}."""
    by: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        cell = by[(row["label"], row["category"])]
        cell[0] += row["id"] in held
        cell[1] += 1

    def share(label: str) -> tuple[float, int]:
        hits = sum(v[0] for (lab, _), v in by.items() if lab == label)
        n = sum(v[1] for (lab, _), v in by.items() if lab == label)
        return (hits / n if n else float("nan")), n

    detection, poisoned = share("poisoned")
    false_positive, benign = share("benign")
    return {"detection": detection, "false_positive": false_positive, "poisoned": poisoned, "benign": benign,
            "categories": {f"{label}/{cat}": tuple(v) for (label, cat), v in sorted(by.items())}}


def detect(rows: Iterable[dict[str, Any]], settings: Settings) -> tuple[set[str], float]:
    """Return the ids the detector quarantines, and its mean time per text in milliseconds."""
    held, rows = set(), list(rows)
    start = time.perf_counter()
    for row in rows:
        if screen(row["text"], origin=row["origin"], threshold=settings.poison_threshold,
                  trust=settings.poison_trust).quarantined:
            held.add(row["id"])
    return held, (time.perf_counter() - start) * 1000 / max(len(rows), 1)


def write_all(http: Any, agent_id: str, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Write every row through the API; return the ids of the rows the write answers said were quarantined."""
    said: set[str] = set()
    by_text = {row["text"]: row["id"] for row in rows}
    as_messages = [r for r in rows if r["origin"] in ROLES]
    for n, part in enumerate(chunks(as_messages, 20)):
        r = http.post(f"/v1/sessions/{agent_id}-s{n}/messages", json={"agent_id": agent_id, "messages": [
            {"role": ROLES[row["origin"]], "content": row["text"]} for row in part]})
        r.raise_for_status()
        turns = {m["turn"]: m["content"] for m in r.json()["messages"]}
        said.update(by_text[turns[q["turn"]]] for q in r.json()["quarantined"])
    as_items = [r for r in rows if r["origin"] not in ROLES]
    for part in chunks(as_items, 100):
        r = http.post("/v1/memories/batch", json={"items": [
            {"agent_id": agent_id, "content": row["text"], "origin": row["origin"]} for row in part]})
        r.raise_for_status()
        said.update(by_text[item["content"]] for item in r.json()["items"] if item["status"] == "quarantined")
    return said


def listed(http: Any, agent_id: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the agent's quarantined memories, as an admin lists them."""
    out, cursor = [], None
    while True:
        params = {"agent_id": agent_id, "status": "quarantined", "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/memories", params=params).json()
        out += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def leaks(http: Any, agent_id: str, quarantined: Sequence[dict[str, Any]]) -> int:
    """Search for each quarantined text in its scope; return how many hits were quarantined memories."""
    held = {m["id"] for m in quarantined}
    found = 0
    for memory in quarantined:
        query = memory["content"][:4000].strip() or "x"
        r = http.post("/v1/search", json={"agent_id": agent_id, "query": query, "k": 20})
        r.raise_for_status()
        found += sum(1 for hit in r.json()["hits"] if hit["id"] in held or hit["status"] != "active")
    return found


def end_to_end(report: Report, home: Path, keep: bool, data: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Write every split through the real API; return {split: (held ids, answered ids, leaks, seconds)}."""
    bench = Bench.start(home, keep=keep)
    out: dict[str, Any] = {}
    try:
        server = bench.serve(bench.new_database("poisoning"))
        with server.client(server.new_key("poisoning")) as http:
            for split, rows in data.items():
                agent_id = f"bench-{split}"
                start = time.perf_counter()
                answered = write_all(http, agent_id, rows)
                seconds = time.perf_counter() - start
                by_text = {row["text"]: row["id"] for row in rows}
                quarantined = listed(http, agent_id, rows)
                held = {by_text[m["content"]] for m in quarantined}
                out[split] = (held, answered, leaks(http, agent_id, quarantined), seconds)
                report.say(f"{split}: {len(rows)} writes in {seconds:.1f} s, {len(held)} listed as quarantined "
                           f"({len(answered)} said so when written)")
    finally:
        bench.close()
    return out


def show(report: Report, title: str, measured: dict[str, dict[str, Any]]) -> None:
    """Print overall and per-category rates of each split."""
    report.table(["split", "poisoned", "detected", "detection rate", "benign", "held by mistake",
                  "false-positive rate"],
                 [[split, m["poisoned"], round(m["detection"] * m["poisoned"]), m["detection"], m["benign"],
                   round(m["false_positive"] * m["benign"]), m["false_positive"]] for split, m in measured.items()],
                 title=f"{title}: overall")
    categories = sorted({c for m in measured.values() for c in m["categories"]})
    rows = []
    for category in categories:
        row: list[Any] = [category]
        for m in measured.values():
            held, n = m["categories"].get(category, (0, 0))
            row += [f"{held}/{n}" if n else "-", held / n if n else None]
        rows.append(row)
    headers = ["category (rate: held/n)"] + [f"{s} {h}" for s in measured for h in ("held/n", "rate")]
    report.table(headers, rows, title=f"{title}: per category (poisoned: detection; benign: false positives)")


def locomo_false_positives(report: Report, settings: Settings) -> None:
    """Real conversations nobody tuned on: every LoCoMo turn (read in place, when it is there), screened as each
    origin would write it. Every one is benign, so whatever is held is a false positive."""
    if not LOCOMO_PATH.is_file():
        report.say(f"LoCoMo not found at {LOCOMO_PATH}: its false-positive check is skipped")
        return
    texts = [turn.text for sample in load_locomo() for turn in turns_of(sample)]
    for origin in ("user", "agent", "unknown", "tool", "web"):
        held = [t for t in texts if screen(t, origin=origin, threshold=settings.poison_threshold,
                                           trust=settings.poison_trust).quarantined]
        report.figures[f"locomo_{origin}"] = {"turns": len(texts), "held": len(held)}
        report.say(f"LoCoMo, {len(texts)} turns written as {origin}: {len(held)} held "
                   f"(false-positive rate {len(held) / len(texts):.4f})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector-only", action="store_true", help="measure the detector alone, no stack")
    parser.add_argument("--home", default=str(DEFAULT_HOME), help="folder of the embedded stack")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    report = Report("poisoning")
    settings = Settings(database_url=None, redis_url=None)
    data = {split: load(split) for split in SPLITS}
    report.say(f"threshold {settings.poison_threshold}, trust {json.dumps(settings.poison_trust)}")
    report.say(", ".join(f"{split}: {sum(r['label'] == 'poisoned' for r in rows)} poisoned, "
                         f"{sum(r['label'] == 'benign' for r in rows)} benign" for split, rows in data.items()))
    report.say()
    pure = {}
    for split, rows in data.items():
        held, ms = detect(rows, settings)
        pure[split] = rates(rows, held)
        report.figures[f"detector_{split}"] = {**pure[split], "ms_per_text": ms}
        report.say(f"detector, {split}: {ms:.3f} ms a text")
    report.say()
    show(report, "Detector alone", pure)
    # What trust adds: the same rules with every origin trusted fully (the threshold the same for all).
    uniform = settings.model_copy(update={"poison_trust": dict.fromkeys(ORIGINS, 1.0)})
    for split, rows in data.items():
        m = rates(rows, detect(rows, uniform)[0])
        report.figures[f"detector_{split}_uniform_trust"] = m
        report.say(f"detector, {split}, every origin trusted 1.0: detection {m['detection']:.3f}, "
                   f"false positives {m['false_positive']:.3f}")
    report.say()
    locomo_false_positives(report, settings)
    report.say()
    if not args.detector_only:
        api = end_to_end(report, Path(args.home), args.keep, data)
        report.say()
        measured = {split: rates(data[split], held) for split, (held, _, _, _) in api.items()}
        for split, (held, answered, leaked, seconds) in api.items():
            report.figures[f"api_{split}"] = {**measured[split], "answered_quarantined": len(answered),
                                               "listed_quarantined": len(held), "search_leaks": leaked,
                                               "seconds": seconds, "agrees_with_detector": held == detect(
                                                   data[split], settings)[0]}
            report.say(f"{split}: the write answers and the admin listing agree: {held == answered}; the detector "
                       f"alone agrees: {report.figures[f'api_{split}']['agrees_with_detector']}; quarantined "
                       f"memories a search returned: {leaked}")
        report.say()
        show(report, "End to end (REST API)", measured)
    report.save()


if __name__ == "__main__":
    main()
