"""Reading-level scoring: syllables, sentences and the two formulas."""

from __future__ import annotations

import pytest

from handouts import readability


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("medicine", 3),
        ("buprenorphine", 4),  # from the CMU dictionary
        ("naloxone", 3),  # not in the dictionary: guessed from spelling
        ("opioid", 3),
        ("fentanyl", 3),
        ("helped", 1),
        ("doses", 2),
        ("the", 1),
    ],
)
def test_count_syllables(word: str, expected: int) -> None:
    assert readability.count_syllables(word) == expected


def test_text_blocks_skip_headings_and_keep_list_items() -> None:
    text = "### What to do\n\nCall **988** now. It is free!\n\n- Ask for help\n- Keep naloxone.\n"
    assert readability.text_blocks(text) == ["Call 988 now. It is free!", "Ask for help", "Keep naloxone."]


def test_score_counts_sentences_words_and_grades() -> None:
    text = "You can get better. Medicine helps many people!\n\n- Call a friend\n- Ask your doctor about naloxone.\n"
    result = readability.score(text)
    # Counted by hand: 4 + 4 + 3 + 5 words; 5 + 8 + 3 + 9 syllables; medicine and naloxone have 3.
    assert (result.words, result.sentences) == (16, 4)
    assert result.syllables == 25
    assert result.polysyllables == 2
    assert result.fk_grade == pytest.approx(0.39 * 16 / 4 + 11.8 * 25 / 16 - 15.59)
    assert result.smog == pytest.approx(1.0430 * (2 * 30 / 4) ** 0.5 + 3.1291)


def test_long_words_raise_the_grade() -> None:
    easy = readability.score("You can call us. We will help you. It is free.")
    hard = readability.score("Comprehensive pharmacological interventions substantially ameliorate outcomes.")
    assert easy.fk_grade < 2 < 12 < hard.fk_grade


def test_word_count_includes_headings() -> None:
    assert readability.word_count("### Two words\n\nAnd three more.\n") == 5
