"""The heuristic engine's extraction and decisions, without any server."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from memcube.consolidation.heuristic import decide, extract_facts, summarize, values_match
from memcube.consolidation.ledger import Episode, Fact

T0 = datetime(2024, 1, 10, 9, 0, tzinfo=timezone.utc)


def episode(content, *, speaker=None, role=None, at=T0, session_id="s1", active=True):
    return Episode(id=uuid.uuid4(), version=1, session_id=session_id, content=content, speaker=speaker, role=role,
                   at=at, vector=None, active=active)


def facts(content, **kwargs):
    return [(c.content, c.attribute, c.value, c.polarity) for c in extract_facts(episode(content, **kwargs))]


@pytest.mark.parametrize("text, expected", [
    ("I live in Lisbon.", ("The user lives in Lisbon", "lives_in", "Lisbon", None)),
    ("Actually I just moved to Porto last week.", ("The user lives in Porto", "lives_in", "Porto", None)),
    ("We talked a lot. I've relocated to New York City for work!",
     ("The user lives in New York City", "lives_in", "New York City", None)),
    ("I work at Acme Robotics since March", ("The user works at Acme Robotics", "works_at", "Acme Robotics", None)),
    ("I work as a nurse.", ("The user works as a nurse", "occupation", "nurse", None)),
    ("My name is Priya", ("The user's name is Priya", "name", "Priya", None)),
    ("I'm 34 years old", ("The user is 34 years old", "age", "34", None)),
    ("I'm allergic to peanuts", ("The user is allergic to peanuts", "allergic_to", "peanuts", None)),
    ("I have a dog named Rex.", ("The user has a dog named Rex", "has", "dog named Rex", None)),
    ("I really love hiking in the mountains", ("The user loves hiking", "opinion", "hiking", "+")),
    ("Honestly, I don't like horror movies.", ("The user doesn't like horror movies", "opinion", "horror movies", "-")),
    ("My favorite color is green.", ("The user's favorite color is green", "my:favorite color", "green", None)),
])
def test_first_person_statements_become_third_person_facts(text, expected):
    assert facts(text) == [expected]


def test_the_speaker_names_the_subject_and_the_assistant_states_no_facts():
    assert facts("I live in Oslo.", speaker="Caroline") == [("Caroline lives in Oslo", "lives_in", "Oslo", None)]
    assert facts("Big news: I love painting sunsets.") == [("The user loves painting sunsets", "opinion",
                                                          "painting sunsets", "+")]
    assert facts("I love helping you with that!", role="assistant") == []
    assert facts("I live in Oslo.", active=False) == []


@pytest.mark.parametrize("text", [
    "I like that.", "I love it when you do that", "My point is that it's late.", "I have a question for you",
    "Hello there, how are you?", "I would like to know more.",
])
def test_conversational_phrases_are_not_facts(text):
    assert facts(text) == []


def test_values_match_restatements_but_not_other_things():
    assert values_match("window seats", "a window seat")
    assert values_match("New York", "New York City")
    assert not values_match("Lisbon", "Porto")
    assert not values_match("tea", "coffee")
    assert not values_match("coffee over tea", "tea over coffee")


def fact(content, attribute=None, value=None, polarity=None, status="active"):
    return Fact(id=uuid.uuid4(), version=1, content=content, vector=None, attribute=attribute, value=value,
                polarity=polarity, status=status)


def candidate(text, **kwargs):
    [c] = extract_facts(episode(text, **kwargs))
    return c


def test_a_new_value_of_a_one_valued_attribute_supersedes_the_old_fact():
    lisbon = fact("The user lives in Lisbon", "lives_in", "Lisbon")
    decision = decide(candidate("I moved to Porto."), [(lisbon, 0.8)], duplicate_similarity=0.9)
    assert (decision.action, decision.target) == ("supersede", lisbon)


def test_the_same_value_restated_is_unchanged_and_with_more_detail_an_update():
    seats = fact("The user prefers window seats", "opinion", "window seats", "+")
    restated = decide(candidate("I always prefer a window seat."), [(seats, 0.9)], duplicate_similarity=0.9)
    assert (restated.action, restated.target) == ("unchanged", seats)
    city = fact("The user lives in New York", "lives_in", "New York")
    more = decide(candidate("I live in New York City."), [(city, 0.95)], duplicate_similarity=0.9)
    assert (more.action, more.target) == ("update", city)


def test_opinions_about_other_things_are_new_facts_and_opposite_ones_supersede():
    tea = fact("The user likes tea", "opinion", "tea", "+")
    assert decide(candidate("I like coffee."), [(tea, 0.85)], duplicate_similarity=0.9).action == "add"
    flipped = decide(candidate("I hate tea."), [(tea, 0.7)], duplicate_similarity=0.9)
    assert (flipped.action, flipped.target) == ("supersede", tea)


def test_many_valued_attributes_add_side_by_side():
    dog = fact("The user has a dog", "has", "dog")
    assert decide(candidate("I have a cat."), [(dog, 0.8)], duplicate_similarity=0.9).action == "add"
    assert decide(candidate("I have a dog."), [(dog, 0.99)], duplicate_similarity=0.9).action == "unchanged"


def test_similarity_decides_against_facts_without_an_attribute_and_inactive_facts_are_ignored():
    free_text = fact("The user lives in Porto")
    near = decide(candidate("I live in Porto."), [(free_text, 0.95)], duplicate_similarity=0.9)
    assert (near.action, near.target) == ("unchanged", free_text)
    assert decide(candidate("I live in Porto."), [(free_text, 0.5)], duplicate_similarity=0.9).action == "add"
    gone = fact("The user lives in Lisbon", "lives_in", "Lisbon", status="superseded")
    assert decide(candidate("I live in Porto."), [(gone, 0.9)], duplicate_similarity=0.9).action == "add"


def test_a_summary_keeps_the_informative_sentences_in_order_and_grows_with_the_session():
    episodes = [episode("Hi!"), episode("I moved to Porto last week.", at=T0 + timedelta(minutes=1)),
                episode("The new flat has a view over the river and a small balcony.", at=T0 + timedelta(minutes=2))]
    content, data = summarize("s1", episodes, None, {episodes[1].id})
    assert content == ("Session s1, 2024-01-10, 3 messages. I moved to Porto last week. "
                       "The new flat has a view over the river and a small balcony.")
    later = [episode("We adopted a puppy called Biscuit yesterday.", at=T0 + timedelta(days=1))]
    content, data = summarize("s1", later, data, set())
    assert content.startswith("Session s1, 2024-01-10 to 2024-01-11, 4 messages. I moved to Porto")
    assert content.endswith("We adopted a puppy called Biscuit yesterday.") and data["episodes"] == 4
