"""What each version changed: pure functions, no server."""

from datetime import datetime, timezone

from memcube.diff import WORD_DIFF_MAX_TOKENS, diff_history, diff_text, diff_versions


def ops(before, after):
    return [(op.op, op.text) for op in diff_text(before, after)]


def test_a_word_diff_keeps_whitespace_and_punctuation():
    assert ops("Priya lives in Leeds.", "Priya lives in York.") == [
        ("equal", "Priya lives in "), ("delete", "Leeds"), ("insert", "York"), ("equal", ".")]
    assert ops("a b", "a  b\nc") == [("equal", "a"), ("delete", " "), ("insert", "  "), ("equal", "b"),
                                     ("insert", "\nc")]
    assert ops("same", "same") == []
    assert ops("", "new") == [("insert", "new")]
    assert ops("<b>x</b>", "<i>x</i>") == [("equal", "<"), ("delete", "b"), ("insert", "i"), ("equal", ">x</"),
                                           ("delete", "b"), ("insert", "i"), ("equal", ">")]


def test_joining_the_kept_and_inserted_runs_gives_the_new_text_back():
    before = "The quick brown fox jumps over the lazy dog. " * 3
    after = "The quick red fox leaps over the lazy dog! " * 2 + "Then it sleeps."
    result = diff_text(before, after)
    assert "".join(o.text for o in result if o.op != "delete") == after
    assert "".join(o.text for o in result if o.op != "insert") == before


def test_long_texts_are_compared_line_by_line():
    before = "\n".join(f"line {i} " + "word " * 3 for i in range(WORD_DIFF_MAX_TOKENS))
    after = before.replace("line 7 ", "line seven ")
    result = diff_text(before, after)
    changed = [o for o in result if o.op != "equal"]
    assert [o.op for o in changed] == ["delete", "insert"]
    assert changed[0].text.startswith("line 7 ") and changed[1].text.startswith("line seven ")


def test_version_diffs_name_each_changed_field():
    at = datetime(2025, 1, 1, tzinfo=timezone.utc)
    v1 = {"version": 1, "content": "x", "status": "active", "tier": "archival", "tags": ["a"], "importance": 0.5,
          "metadata": {}, "data": None, "valid_to": None}
    v2 = {**v1, "version": 2, "status": "superseded", "tags": ["a", "b"], "importance": 0.5000000001,
          "valid_to": at}
    v3 = {**v2, "version": 3, "content": "y", "data": {"k": 1}}
    first, second, third = diff_history([v1, v2, v3])
    assert (first.previous, first.changes, first.content) == (None, [], [])
    assert [(c.field, c.before, c.after) for c in second.changes] == [
        ("status", "active", "superseded"), ("tags", ["a"], ["a", "b"]), ("valid_to", None, at)]
    assert second.content == [] and second.previous == 1
    assert [c.field for c in third.changes] == ["data"] and [o.op for o in third.content] == ["delete", "insert"]
    assert diff_versions(v1, {**v1, "version": 2}).changes == []
