"""The heuristic engine, without any server: masks, generalization, the failing step, and the candidates it
makes from successes and failures (applied to an in-memory ledger)."""

import pytest

from memcube.lessons.heuristic import HeuristicEngine, failing_step, generalize, mask, overlap
from tests.memcube.lessons.support import Batch, trajectory

FLIGHT = [("search_flights", "search flights", "3 found"), ("hold_fare", "hold the cheapest fare", "held"),
          ("pay_card", "pay by card", "paid")]


def test_mask_hides_instance_values_and_generalize_keeps_what_two_tasks_share():
    assert mask('Refund order #1234 for "Ana Lima" to ana@example.com by 2024-05-03') == \
        "Refund order … for … to … by …"
    assert generalize("Book a flight from Paris to Rome on May …", "book a flight from Oslo to Lima on June 9.") == \
        "Book a flight from … to … on …"
    assert generalize("Book a flight from … to … on …", "Book a flight from Cairo to Riga on July 1") == \
        "Book a flight from … to … on …"
    assert generalize("Book a flight from Paris to Rome", "Rotate the API keys of the billing service") is None
    # Of the longer one's words, the task's values masked: "book a flight from Cairo to Riga on July …".
    assert overlap("Book a flight from … to … on …", "book a flight from Cairo to Riga on July 1") == \
        pytest.approx(6 / 9)
    assert overlap("Book a flight from … to … on …", "Book a hotel in Rome") == pytest.approx(2 / 6)


def test_the_failing_step_is_the_first_that_reads_like_an_error_else_the_last():
    t = trajectory("x", [("a", "one", "ok"), ("b", "two", "Error 403: forbidden"), ("c", "three", "failed")], "failure")
    assert failing_step(t) == 1
    assert failing_step(trajectory("x", [("a", "one", "ok"), ("b", "two", "ok")], "failure")) == 1


@pytest.fixture()
def batch(embedder):
    return Batch(embedder)


@pytest.fixture()
def engine(settings):
    return HeuristicEngine(merge_similarity=settings.lesson_merge_similarity)


def test_three_variants_of_a_task_merge_into_one_lesson_with_a_general_situation(batch, engine):
    for task in ("Book a flight from Paris to Rome on May 3", "Book a flight from Oslo to Lima on June 9",
                 "Book a flight from Cairo to Riga on July 1"):
        batch.run(engine, batch.task(task, FLIGHT))
    [lesson] = batch.lessons()
    assert lesson.polarity == "success" and lesson.tools == ["search_flights", "hold_fare", "pay_card"]
    assert lesson.when_to_use == "Book a flight from … to … on …"
    assert lesson.steps == ["search_flights: search flights", "hold_fare: hold the cheapest fare",
                            "pay_card: pay by card"]
    assert lesson.content() == ("When Book a flight from … to … on …: search_flights: search flights → "
                                "hold_fare: hold the cheapest fare → pay_card: pay by card")
    assert len(lesson.revisions) == 3 and len(lesson.derived_from) == 3
    assert batch.ledger.counts == {"added": 1, "merged": 2}


def test_another_procedure_for_the_same_situation_is_a_lesson_of_its_own(batch, engine):
    batch.run(engine, batch.task("Book a flight from Paris to Rome on May 3", FLIGHT))
    batch.run(engine, batch.task("Book a flight from Oslo to Lima on June 9",
                                 [("search_flights", "search", "ok"), ("pay_card", "pay", "paid")]))
    assert len(batch.lessons("success")) == 2


def test_a_failure_becomes_a_warning_with_what_to_do_instead_and_a_comparison(batch, engine):
    batch.run(engine, batch.task("Book a flight from Paris to Rome on May 3", FLIGHT))
    failed = batch.task("Book a flight from Oslo to Lima on June 9", [
        ("search_flights", "search flights", "3 found"),
        ("pay_wallet", "pay from the wallet", "Error: wallet payments are not accepted for fares"),
    ], outcome="failure")
    made = batch.run(engine, failed)
    assert [c.polarity for c in made] == ["failure", "comparative"]
    [warning] = batch.lessons("failure")
    assert warning.tools == ["pay_wallet"]
    assert warning.content() == (
        "Avoid: pay_wallet: pay from the wallet (it gave: Error: wallet payments are not accepted for fares) "
        "(when Book a flight from Oslo to Lima on June …); instead: hold_fare, as the successful runs do: "
        "search_flights → hold_fare → pay_card")
    [comparison] = batch.lessons("comparative")
    assert comparison.difference.startswith("the successful runs go search_flights → hold_fare → pay_card; "
                                            "a failed run used pay_wallet at step 2 where they use hold_fare")
    assert {ref["id"] for ref in comparison.derived_from} == {str(failed.id)} | {
        ref["id"] for ref in batch.lessons("success")[0].derived_from}
    # The same mistake again merges into the warning, generalizing its situation; another one joins it.
    batch.run(engine, batch.task("Book a flight from Cairo to Riga on July 1", [
        ("search_flights", "search flights", "2 found"), ("pay_wallet", "pay from the wallet", "Error: refused")],
        outcome="failure"))
    batch.run(engine, batch.task("Book a flight from Lyon to Kyiv on May 9", [
        ("search_flights", "search flights", "2 found"), ("pay_cash", "pay cash; no receipt", "Error: no cash")],
        outcome="failure"))
    assert len(batch.lessons("failure")) == 1 and len(batch.lessons("comparative")) == 1
    [warning] = batch.lessons("failure")
    assert warning.when_to_use == "Book a flight from … to … on …" and warning.tools == ["pay_wallet", "pay_cash"]
    assert warning.avoid == ("pay_wallet: pay from the wallet (it gave: Error: refused); "
                             "pay_cash: pay cash, no receipt (it gave: Error: no cash)")
    assert len(warning.revisions) == 3


def test_a_success_after_a_failure_makes_the_comparison_and_a_partial_makes_nothing(batch, engine):
    batch.run(engine, batch.task("Book a flight from Oslo to Lima on June 9", [
        ("search_flights", "search", "ok"), ("pay_wallet", "pay from the wallet", "error: refused")], "failure"))
    batch.run(engine, batch.task("Book a flight from Paris to Rome on May 3", FLIGHT))
    assert sorted(lesson.polarity for lesson in batch.lessons()) == ["comparative", "failure", "success"]
    assert batch.run(engine, batch.task("Book a flight from Lyon to Kyiv on May 9", FLIGHT, "partial")) == []

