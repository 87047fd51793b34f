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


def test_sentences_are_those_the_formulas_count() -> None:
    text = "You can get better. Medicine helps many people!\n\n- Call a friend\n- Ask your doctor about naloxone.\n"
    blocks = readability.text_blocks(text)
    assert readability.sentences(blocks) == [
        "You can get better.",
        "Medicine helps many people!",
        "Call a friend",
        "Ask your doctor about naloxone.",
    ]
    assert readability.count_sentences(blocks) == 4


def test_hardest_sentence_is_the_one_whose_removal_lowers_the_grade_most() -> None:
    text = (
        "You can do it. We can help.\n\nBuprenorphine works.\n\n"
        "Many people with this condition take their medicine every day for many years.\n"
    )
    # Alone, the short sentence grades higher (a 4-syllable word in 2 words), but the long one lifts the text.
    assert (
        readability.score("Buprenorphine works.").fk_grade
        > readability.score("Many people with this condition take their medicine every day for many years.").fk_grade
    )
    long_one = "Many people with this condition take their medicine every day for many years."
    assert readability.hardest_sentence(text, lambda r: r.fk_grade) == long_one
    assert readability.hardest_sentence(text, lambda r: r.smog) == long_one
    spanish = "Usted puede mejorar. La medicina ayuda a muchas personas."
    hardest = readability.hardest_sentence(
        spanish, lambda r: -r.fernandez_huerta, readability.spanish_syllables, readability.SPANISH_WORD_RE
    )
    assert hardest == "La medicina ayuda a muchas personas."
    assert readability.hardest_sentence("### Only a heading\n", lambda r: r.fk_grade) == ""


def test_reading_warning_quotes_the_hardest_sentence_cut_to_80_characters() -> None:
    from handouts.project import Limits
    from handouts.quality import reading_problems

    text = (
        "You can do it. We can help you. Buprenorphine is a partial opioid agonist that binds tightly to "
        "receptors and blocks other opioids for a day or more.\n"
    )
    found = [
        str(p) for p in reading_problems("content/en/mat.md", "body", text, "en", Limits(max_fk_grade=3, max_smog=99))
    ]
    assert found == [
        "content/en/mat.md: body: Flesch-Kincaid grade 5.8 is over 3; "
        'hardest sentence: "Buprenorphine is a partial opioid agonist that binds tightly to receptors ..."'
    ]
