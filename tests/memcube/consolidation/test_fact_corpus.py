"""The heuristic engine's facts measured on hand-written statements (bench.facts scores them), and the text
reading under it: dots that do not end a sentence, values that are never cut. No server needed."""

import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.facts import CORPUS, Score, load_corpus, normalise, score
from memcube.consolidation.extract import extract_facts
from memcube.consolidation.heuristic import summarize
from memcube.consolidation.ledger import Episode
from memcube.text import split_sentences

HELDOUT = Path(__file__).with_name("fact_heldout.jsonl")
T0 = datetime(2024, 1, 10, 9, 0, tzinfo=timezone.utc)
# The recall floors sit well under the measured figures (0.98 on both files): an engine that says nothing has
# a precision of 1, so the floor is what stops precision being bought with silence; the room left lets a new
# precision rule cost a handful of facts (each is 0.7 points of the corpus, 1.5 of the second set), never a
# whole kind of statement.
CORPUS_RECALL_FLOOR = 0.90
HELDOUT_RECALL_FLOOR = 0.85


def episode(content, *, role="user"):
    return Episode(id=uuid.uuid4(), version=1, session_id="s1", content=content, speaker=None, role=role, at=T0,
                   vector=None, active=True)


def report(result: Score) -> str:
    false = "\n".join(f"  {p.statement.text!r} -> {p.content!r}" for p in result.false)
    return f"precision {result.precision:.3f}, recall {result.recall:.3f}; false facts:\n{false}"


def test_the_corpus_is_large_and_varied_enough_to_measure():
    statements = load_corpus()
    assert len(statements) >= 100
    kinds = {s.kind for s in statements}
    assert {"fact", "multi", "negation", "hypothetical", "question", "figurative", "third_party", "dots", "chat",
            "not_fact"} <= kinds
    assert sum(not s.facts for s in statements) >= 50  # statements that state nothing about the speaker
    assert len({s.text for s in statements}) == len(statements)


@pytest.mark.parametrize("path, recall_floor", [(CORPUS, CORPUS_RECALL_FLOOR), (HELDOUT, HELDOUT_RECALL_FLOOR)],
                         ids=["corpus", "second-set"])
def test_the_heuristic_engine_states_right_facts(path, recall_floor):
    result = score(load_corpus(path))
    assert result.produced > 0
    assert result.precision >= 0.95, report(result)
    assert result.recall >= recall_floor, report(result)


def test_the_score_matches_by_attribute_and_normalised_value_not_wording():
    [statement] = [s for s in load_corpus() if s.text == "I'm from the U.K. but I live in Spain now."]
    assert any(e.matches("from", "the U.K.", None) for e in statement.facts)
    assert any(e.matches("from", "UK", None) for e in statement.facts)
    assert not any(e.matches("lives_in", "the U.K.", None) for e in statement.facts)
    assert not any(e.matches("from", "the U", None) for e in statement.facts)
    assert normalise(' "The Netherlands". ') == "netherlands"


def every_value():
    for path in (CORPUS, HELDOUT):
        for statement in load_corpus(path):
            for candidate in extract_facts(episode(statement.text, role=statement.role)):
                yield statement.text, candidate


def test_a_value_is_never_cut_inside_a_word_or_at_an_inner_dot():
    values = list(every_value())
    assert len(values) > 150
    for text, candidate in values:
        value = candidate.value
        if candidate.attribute in ("has", "opinion"):
            value = re.sub(r"\btheir\b", "my", value)  # "my" was made "their"
        at = text.find(value)
        assert at >= 0, (text, value)
        after = text[at + len(value):at + len(value) + 2]
        assert not re.match(r"\w", after), (text, value)  # not "Dr" of "Dr. Patel", not "priya@example" of ".com"
        assert not re.match(r"\.\w", after), (text, value)
        assert " and I " not in value and " and i " not in value, (text, value)


@pytest.mark.parametrize("text, expected", [
    ("I moved to the U.S. in 2019. I love it.", ["I moved to the U.S. in 2019.", "I love it."]),
    ("My doctor is Dr. Patel. He is kind.", ["My doctor is Dr. Patel.", "He is kind."]),
    ("Mail me at j.doe@mail.co.uk. Thanks!", ["Mail me at j.doe@mail.co.uk.", "Thanks!"]),
    ("See https://priya.dev/posts. Or www.priya.dev.", ["See https://priya.dev/posts.", "Or www.priya.dev."]),
    ("I've lived here 3.5 years. I wake at 5.30 daily.", ["I've lived here 3.5 years.", "I wake at 5.30 daily."]),
    ("Born 12.04.1990 in St. Louis, e.g. near Mt. Vernon.", ["Born 12.04.1990 in St. Louis, e.g. near Mt. Vernon."]),
    ("I work at Acme Inc. It is fine. Acme Inc. and J.P. Morgan merged.",
     ["I work at Acme Inc.", "It is fine.", "Acme Inc. and J.P. Morgan merged."]),
    ("Is it 9 a.m. or 10 a.m.? Either.\nOk", ["Is it 9 a.m. or 10 a.m.?", "Either.", "Ok"]),
])
def test_sentences_end_only_at_dots_that_end_them(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("My name is Priya Sharma and I live in Berlin.",
     [("name", "Priya Sharma"), ("lives_in", "Berlin")]),
    ("my email is priya@example.com, write me", [("my:email", "priya@example.com")]),
    ("I live in St. Louis and I'm 3.5 hours from Chicago.", [("lives_in", "St. Louis")]),
    ("I moved to Washington D.C. last year", [("lives_in", "Washington D.C.")]),
    ("My birthday is 12.04.1990.", [("my:birthday", "12.04.1990")]),
    ("I'm allergic to waiting.", []),
    ("I'm allergic to eggs, milk and soy.", [("allergic_to", "eggs"), ("allergic_to", "milk"), ("allergic_to", "soy")]),
    ("My friend thinks I live in London, but I actually live in Bath.", [("lives_in", "Bath")]),
    ("Do I live in Berlin or Potsdam?", []),
    ("I love my job, said no one ever.", []),
    ("I work at Procter and Gamble.", []),
    ("I live in fear of my landlord.", []),
])
def test_statements_that_once_gave_wrong_facts(text, expected):
    assert [(c.attribute, c.value) for c in extract_facts(episode(text))] == expected


def test_a_summary_keeps_sentences_whole_at_abbreviations_and_numbers():
    said = episode("We met Dr. Patel at 5.30 in the U.S. embassy and talked for 2.5 hours about the move.")
    content, _ = summarize("s1", [said], None, set())
    assert content.endswith("We met Dr. Patel at 5.30 in the U.S. embassy and talked for 2.5 hours about the move.")
