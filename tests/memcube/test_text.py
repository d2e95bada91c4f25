"""The dots of chat text: protect() masks those that do not end a sentence, one character for one."""

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from memcube.text import MASK, case_tells, clause_start, protect, unmask

TOKENS = ["I", "live", "in", "St.", "Louis", "Dr.", "Patel", "U.S.", "e.g.", "a.m.", "3.5", "5.30", "12.04.1990",
          "priya@example.com", "www.priya.dev", "https://x.io/a.b", "Acme", "Inc.", "It", "The", "end.", "ok?",
          "wow!", "...", "(Dr.", "Jr.,", "No.", "5", "and", "\n", '"quoted."', "J.", "Kennedy"]


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_protect_only_masks_dots_and_unmask_gives_the_text_back(tokens):
    text = " ".join(tokens)
    masked = protect(text)
    assert len(masked) == len(text) and unmask(masked) == text
    assert all(a == b or (a == "." and b == MASK) for a, b in zip(text, masked))


def test_a_sentence_end_stays_a_dot_and_the_rest_do_not():
    masked = protect("I met Dr. Patel at 5.30 in the U.S. It was fine. Mail priya@example.com today.")
    assert masked.count(".") == 3  # after "U.S." (a sentence starts), "fine." and "today."
    assert unmask(masked).endswith("today.")


def test_clauses_and_case():
    sentence = "My friend thinks I live in London, but I live in Bath"
    assert sentence[clause_start(sentence, sentence.index("I live in Bath")):].strip() == "I live in Bath"
    assert case_tells("I live in Berlin") and not case_tells("i live in berlin") and not case_tells("I LIVE HERE")
