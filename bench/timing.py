"""Interleaved latency runs: every variant answers the same queries, in an order rotated per query."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

Variant = Callable[[int], Any]


def interleave(variants: dict[str, Variant], n: int, *, warmup: int = 20,
               label: str = "search") -> tuple[dict[str, list[float]], dict[str, list[Any]]]:
    """Run query i = 0..n-1 through every variant (order rotated by i, so no variant always goes first and
    gets or gives warm caches); return latencies in ms and each call's result, by variant."""
    names = list(variants)
    times: dict[str, list[float]] = {k: [] for k in names}
    outs: dict[str, list[Any]] = {k: [] for k in names}
    for i in range(min(warmup, n)):
        for name in names:
            variants[name](i)
    last = time.perf_counter()
    for i in range(n):
        j = i % len(names)
        for name in names[j:] + names[:j]:
            started = time.perf_counter()
            result = variants[name](i)
            times[name].append((time.perf_counter() - started) * 1000.0)
            outs[name].append(result)
        if time.perf_counter() - last > 5:
            last = time.perf_counter()
            print(f"  {label}: {i + 1}/{n} queries", file=sys.stderr, flush=True)
    return times, outs
