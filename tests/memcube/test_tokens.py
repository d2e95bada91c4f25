"""Token counting: offline, no truncation, batched equals single, additive over whitespace."""

from hypothesis import given, settings
from hypothesis import strategies as st

from memcube import tokens


def test_counts_words_and_pieces_without_special_tokens():
    assert tokens.count("") == 0
    assert tokens.count("hello world") == 2
    assert tokens.count("the tokenizer") == 3  # token, ##izer


def test_long_text_is_not_truncated_to_the_model_window():
    # The bundled tokenizer.json truncates and pads to 128 tokens; a count must do neither.
    assert tokens.count("word " * 1000) == 1000
    assert tokens.count("short") == 1


def test_batch_counts_equal_single_counts():
    texts = ["Caroline adopted a rescue dog.", "", "naïve café ☃ 中文", "x" * 300, "multi\nline\ttext"]
    assert tokens.count_many(texts) == [tokens.count(t) for t in texts]
    assert tokens.count_many([]) == []


@settings(max_examples=200, deadline=None)
@given(a=st.text(max_size=60), b=st.text(max_size=60), sep=st.sampled_from(["\n", "\n\n", " ", "\t"]))
def test_counts_add_up_over_whitespace(a, b, sep):
    # Context assembly adds section and line counts instead of recounting the whole text.
    assert tokens.count(a + sep + b) == tokens.count(a) + tokens.count(b)
