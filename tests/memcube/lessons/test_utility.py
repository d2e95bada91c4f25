"""Utility and retirement, as pure functions."""

import pytest

from memcube.lessons.utility import counters, next_status, score, utility, with_outcome


def test_utility_is_laplace_smoothed_success_rate():
    assert utility(0, 0) == 0.5
    assert utility(3, 3) == pytest.approx(0.8)
    assert utility(0, 3) == pytest.approx(0.2)
    assert score(0.8, 0.5) == pytest.approx(0.4) and score(-0.3, 0.9) == 0.0


def test_a_lesson_is_on_probation_until_min_uses_then_trusted_or_retired_for_good():
    rules = {"min_uses": 3, "retire_below": 0.4}
    data = {"uses": 0, "successes": 0, "failures": 0, "status": "probationary"}
    data = with_outcome(data, "failure", **rules)
    data = with_outcome(data, "failure", **rules)
    assert (data["uses"], data["failures"], data["status"]) == (2, 2, "probationary")  # η 0.25, still on probation
    data = with_outcome(data, "failure", **rules)
    assert data["status"] == "retired"  # η 0.2 < 0.4 after 3 uses
    for _ in range(5):
        data = with_outcome(data, "success", **rules)
    assert data["status"] == "retired" and data["successes"] == 5  # counted, never back

    good = {}
    for outcome in ("success", "failure", "partial"):
        good = with_outcome(good, outcome, **rules)
    assert (good["uses"], good["successes"], good["failures"], good["status"]) == (3, 1, 1, "trusted")  # η 0.4
    assert next_status("trusted", uses=4, successes=1, **rules) == "retired"  # η 0.33


def test_broken_counters_count_as_zero():
    assert counters({"uses": "7", "successes": -1, "failures": True}) == (0, 0, 0)
