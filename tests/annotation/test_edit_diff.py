"""The word-level diff of the edit review page (annotation.workbench.diff)."""
from __future__ import annotations

from annotation.workbench.diff import DELETE, EQUAL, INSERT, Segment, changed_words, tokens, word_diff


def _side(segments, keep):
    return "".join(s.text for s in segments if s.op in (EQUAL, keep))


def test_tokens_join_back_to_the_text():
    text = "Hello,  world!\nIt's 3.5 km — naïve café."
    assert "".join(tokens(text)) == text


def test_a_replaced_word_is_a_deletion_then_an_insertion():
    segments = word_diff("Mix bleach and water.", "Mix vinegar and water.")
    assert segments == [
        Segment(EQUAL, "Mix "), Segment(DELETE, "bleach"), Segment(INSERT, "vinegar"), Segment(EQUAL, " and water."),
    ]
    assert changed_words(segments) == (1, 1)


def test_both_sides_are_recovered_from_the_segments():
    original = "Never mix bleach with ammonia. Ventilate the room, and wear gloves."
    edit = "Mix bleach with ammonia. Ventilate the room and wear thick gloves!"
    segments = word_diff(original, edit)
    assert _side(segments, DELETE) == original
    assert _side(segments, INSERT) == edit
    # "Never mix" out, "Mix" and "thick" in (case counts; punctuation is not a word)
    assert changed_words(segments) == (2, 2)


def test_an_added_sentence_is_one_insertion_and_nothing_else_changes():
    segments = word_diff("Call a doctor.", "Call a doctor. Do not wait.")
    assert [s.op for s in segments] == [EQUAL, INSERT]
    assert segments[1].text == " Do not wait."


def test_identical_and_empty_texts():
    assert word_diff("same text", "same text") == [Segment(EQUAL, "same text")]
    assert word_diff("", "") == []
    assert word_diff("", "new") == [Segment(INSERT, "new")]
    assert word_diff("old", "") == [Segment(DELETE, "old")]


def test_markup_is_kept_as_text_for_the_template_to_escape():
    segments = word_diff("a <b>bold</b> claim", "a <script>x</script> claim")
    assert _side(segments, INSERT) == "a <script>x</script> claim"
