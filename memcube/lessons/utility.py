"""Utility and retirement, as pure functions: η = (successes + 1) / (uses + 2) (Laplace's rule: a lesson never
used counts 0.5), probation for the first MEMCUBE_LESSON_MIN_USES uses, and retirement for a lesson past
probation whose η falls below MEMCUBE_LESSON_RETIRE_BELOW. Retirement is for good: a retired lesson is kept
with its history and never served again.

An outcome counts one use: `success` adds a success, `failure` a failure, `partial` neither.
"""

from __future__ import annotations

from typing import Any


def utility(successes: int, uses: int) -> float:
    """Return η = (successes + 1) / (uses + 2)."""
    return (successes + 1) / (uses + 2)


def score(similarity: float, eta: float) -> float:
    """Return how well a lesson fits a task: its situation's similarity to the task (never below 0) × η."""
    return max(similarity, 0.0) * eta


def counters(data: dict[str, Any]) -> tuple[int, int, int]:
    """Return (uses, successes, failures) from a lesson's data; missing or broken counters are 0."""
    values = []
    for key in ("uses", "successes", "failures"):
        value = data.get(key)
        values.append(value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0)
    return values[0], values[1], values[2]


def next_status(status: str | None, *, uses: int, successes: int, min_uses: int, retire_below: float) -> str:
    """Return a lesson's status after its counters changed: retired stays retired; under `min_uses` uses it is
    probationary; then retired when η < `retire_below`, else trusted."""
    if status == "retired":
        return "retired"
    if uses < min_uses:
        return "probationary"
    return "retired" if utility(successes, uses) < retire_below else "trusted"


def with_outcome(data: dict[str, Any], outcome: str, *, min_uses: int, retire_below: float) -> dict[str, Any]:
    """Return a lesson's data after one more use with `outcome` (success, failure or partial)."""
    uses, successes, failures = counters(data)
    uses += 1
    successes += outcome == "success"
    failures += outcome == "failure"
    status = next_status(data.get("status"), uses=uses, successes=successes, min_uses=min_uses,
                         retire_below=retire_below)
    return {**data, "uses": uses, "successes": successes, "failures": failures, "status": status}
