"""How fast the default embedder embeds a batch, by chunk size and thread count: the choice behind the
defaults of MEMCUBE_EMBED_BATCH_SIZE (for `onnx`) and MEMCUBE_EMBED_THREADS.

    python -m bench.embed_batches            # 500 LoCoMo turns a round, 5 rounds (about a minute)

Every configuration embeds the same texts in each round, in a rotated order, so a change of load on a shared
machine hits all of them alike; read the figures as ratios to the first row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench.common import Report, machine_state
from bench.corpus import build_corpus
from memcube.config import load_settings
from memcube.embedder import build_embedder

CONFIGS = ((1, 64), (1, 32), (1, 16), (1, 8), (2, 64), (2, 16), (2, 8))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.embed_batches", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=500, help="texts a round (default 500)")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    report = Report("embed-batches")
    report.figures["machine"] = machine_state()
    report.say(f"# Batch embedding by chunk size and threads; machine: {report.figures['machine']}")
    texts = build_corpus(args.texts * args.rounds).texts
    base = load_settings()
    embedders = {(t, b): build_embedder(base.model_copy(update={"embed_threads": t, "embed_batch_size": b}))
                 for t, b in CONFIGS}
    name = next(iter(embedders.values())).name
    report.say(f"embedder {name}; {args.rounds} rounds of {args.texts} LoCoMo texts (mean "
               f"{sum(map(len, texts)) / len(texts):.0f} characters), {os.cpu_count()} cores")
    for e in embedders.values():
        e.embed(texts[:32])  # warm up
    rates: dict[tuple[int, int], list[float]] = {k: [] for k in embedders}
    keys = list(embedders)
    for r in range(args.rounds):
        part = texts[r * args.texts:(r + 1) * args.texts]
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            started = time.perf_counter()
            embedders[k].embed(part)
            rates[k].append(len(part) / (time.perf_counter() - started))
    first = statistics.median(rates[keys[0]])
    rows = [[t, b, statistics.median(v), min(v), max(v), statistics.median(v) / first] for (t, b), v in rates.items()]
    report.table(["threads", "chunk", "texts/s median", "min", "max", "× first row"], rows)
    report.figures["rates"] = {f"{t}x{b}": v for (t, b), v in rates.items()}
    report.say(f"load average after: {os.getloadavg()}")
    report.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
