"""The decisions applied in memory, and topic grouping, without any server."""

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np

from memcube.consolidation.ledger import Candidate, Decision, Episode, Fact, Ledger, group_by_topic

T0 = datetime(2024, 1, 10, tzinfo=timezone.utc)


def episode(at=T0):
    return Episode(id=uuid.uuid4(), version=1, session_id="s", content="x", speaker=None, role=None, at=at,
                   vector=None, active=True)


def known(content="The user lives in Lisbon", since=T0, confidence=0.6, evidence=()):
    return Fact(id=uuid.uuid4(), version=3, content=content, vector=None, confidence=confidence, valid_from=since,
                derived_from=[e.ref() for e in evidence], source_refs=[e.source_ref() for e in evidence])


def test_add_makes_a_new_fact_with_lineage_to_its_episodes():
    ledger, e = Ledger(), episode()
    fact = ledger.apply(Decision("add", Candidate("The user likes tea", [e], confidence=0.7)))
    assert fact.new and fact.valid_from == T0 and fact.confidence == 0.7
    assert fact.derived_from == [{"id": str(e.id), "version": 1}] and fact.source_refs[0]["id"] == str(e.id)
    assert [(link.source_id, link.target_id, link.type) for link in ledger.links] == [(fact.id, e.id, "derived_from")]
    assert ledger.counts == {"added": 1}


def test_restatements_raise_confidence_and_join_the_evidence_once():
    first, second, third = episode(), episode(), episode()
    fact = known(evidence=[first])
    ledger = Ledger()
    for e in (second, third, third):
        assert ledger.apply(Decision("unchanged", Candidate("The user lives in Lisbon", [e]), fact)) is fact
    assert [ref["id"] for ref in fact.derived_from] == [str(first.id), str(second.id), str(third.id)]
    assert fact.confidence == 0.9 and fact.changed == {"evidence", "confidence"}
    assert ledger.counts == {"unchanged": 3}


def test_supersede_closes_the_old_fact_at_the_new_one_start():
    ledger, moved = Ledger(), episode(T0 + timedelta(days=100))
    lisbon = known(since=T0)
    porto = ledger.apply(Decision("supersede", Candidate("The user lives in Porto", [moved]), lisbon))
    assert porto.status == "active" and porto.valid_from == moved.at
    assert (lisbon.status, lisbon.valid_to, lisbon.superseded_by) == ("superseded", moved.at, porto.id)
    assert (porto.id, lisbon.id, "contradicts") in [(k.source_id, k.target_id, k.type) for k in ledger.links]
    assert ledger.counts == {"added": 1, "superseded": 1}


def test_an_older_contradiction_is_recorded_as_the_superseded_one():
    ledger, old_news = Ledger(), episode(T0 - timedelta(days=30))
    lisbon = known(since=T0)
    porto = ledger.apply(Decision("supersede", Candidate("The user lives in Porto", [old_news]), lisbon))
    assert (porto.status, porto.valid_to, porto.superseded_by) == ("superseded", T0, lisbon.id)
    assert lisbon.status == "active" and not lisbon.changed


def test_a_decision_may_target_the_fact_an_earlier_candidate_became():
    ledger = Ledger()
    lisbon = Candidate("The user lives in Lisbon", [episode()])
    ledger.apply(Decision("add", lisbon))
    porto = ledger.apply(Decision("supersede", Candidate("The user lives in Porto", [episode(T0 + timedelta(1))]),
                                  target_candidate=lisbon))
    [old] = [f for f in ledger.new_facts() if f.content.endswith("Lisbon")]
    assert old.status == "superseded" and old.superseded_by == porto.id


def test_update_takes_the_new_content_and_vector():
    ledger, fact = Ledger(), known("The user lives in New York")
    vector = np.ones(4, dtype=np.float32)
    ledger.apply(Decision("update", Candidate("The user lives in New York City", [episode()], vector=vector), fact))
    assert fact.content == "The user lives in New York City" and fact.vector is vector
    assert {"content", "evidence"} <= fact.changed and ledger.counts == {"updated": 1}


def test_topic_groups_join_close_vectors_keep_order_and_respect_the_size_cap():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    near_a = np.array([0.9, 0.1])
    assert group_by_topic([a, b, near_a, None, b], threshold=0.8, max_size=10) == [[0, 2], [1, 4], [3]]
    assert group_by_topic([a, a, a], threshold=0.8, max_size=2) == [[0, 1], [2]]


def test_statements_of_one_instant_follow_each_other_and_no_validity_is_empty():
    ledger, lisbon = Ledger(), known(since=T0)
    porto = ledger.apply(Decision("supersede", Candidate("The user lives in Porto", [episode(T0)]), lisbon))
    braga = ledger.apply(Decision("supersede", Candidate("The user lives in Braga", [episode(T0)]), porto))
    assert lisbon.valid_from == T0 < lisbon.valid_to == porto.valid_from < porto.valid_to == braga.valid_from
    assert (lisbon.status, porto.status, braga.status) == ("superseded", "superseded", "active")
    assert braga.valid_from - T0 == timedelta(microseconds=2) and braga.valid_to is None
    assert {"status", "valid_to"} <= lisbon.changed
