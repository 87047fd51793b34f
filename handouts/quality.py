"""Quality rules over valid sections: length, reading level, briefs, key points, review interval."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from .dates import add_months
from .errors import Problem
from .languages import language as language_row
from .models import BASE_LANGUAGE, HELP_SECTION, Section
from .project import Limits
from .readability import (
    SPANISH_WORD_RE,
    Readability,
    average_sentence,
    fernandez_huerta,
    hardest_sentence,
    score,
    spanish_syllables,
    unit_pattern,
    word_count,
)


def _shortened(sentence: str) -> str:
    """Return a sentence cut short to about 80 characters, for a warning."""
    short = textwrap.shorten(sentence, 80, placeholder=" ...")
    # A first word longer than the width shortens to the placeholder alone; Chinese has no spaces at all.
    return sentence[:76] + " ..." if short == "..." or (len(sentence) > 80 and " " not in sentence) else short


def _hardest(markdown: str, difficulty: Callable[[Readability], float], measure: str) -> str:
    """Return '; hardest sentence: "..."' for a reading warning."""
    spanish = (spanish_syllables, SPANISH_WORD_RE) if measure == "fernandez-huerta" else ()
    sentence = hardest_sentence(markdown, difficulty, *spanish)
    return f'; hardest sentence: "{_shortened(sentence)}"' if sentence else ""


def reading_problems(path: str, field: str, markdown: str, language: str, limits: Limits) -> list[Problem]:
    """Return reading-level warnings for patient text, by its language's measure, each naming its hardest sentence."""
    row = language_row(language)
    if row.measure == "sentence-length":
        average, longest = average_sentence(markdown, unit_pattern(row))
        if average <= row.max_sentence:
            return []
        unit = "characters" if row.units == "characters" else "words"
        # No reading formula is validated for this language: a borrowed English one would mislead.
        message = (
            f"sentences average {average:.1f} {unit}, over {row.max_sentence} (no validated reading formula for "
            f'{row.name}; sentence length only); longest sentence: "{_shortened(longest)}"'
        )
        return [Problem(path, field, message, "warning")]
    if row.measure == "fernandez-huerta":
        ease = fernandez_huerta(markdown)
        if ease >= limits.min_fernandez_huerta:
            return []
        message = f"Fernandez-Huerta reading ease {ease:.1f} is under {limits.min_fernandez_huerta:g}"
        message += _hardest(markdown, lambda r: -r.fernandez_huerta, row.measure)
        return [Problem(path, field, message, "warning")]
    reading, found = score(markdown), []
    if reading.fk_grade > limits.max_fk_grade:
        message = f"Flesch-Kincaid grade {reading.fk_grade:.1f} is over {limits.max_fk_grade:g}"
        message += _hardest(markdown, lambda r: r.fk_grade, row.measure)
        found.append(Problem(path, field, message, "warning"))
    if reading.smog > limits.max_smog:
        message = f"SMOG {reading.smog:.1f} is over {limits.max_smog:g}"
        message += _hardest(markdown, lambda r: r.smog, row.measure)
        found.append(Problem(path, field, message, "warning"))
    return found


def section_warnings(section: Section, limits: Limits) -> list[Problem]:
    """Return length, reading-level and completeness warnings for a valid section."""
    path, found = section.path, []
    row = language_row(section.language)
    word_re = unit_pattern(row)
    words = word_count(section.body, word_re)
    # The limits are English words. A translation says what its English says, in more or fewer words
    # of its own (Vietnamese writes a space between syllables; Chinese none at all): its English carries
    # the length rule, and the build measures whether a translated brief fits its tri-fold panel.
    measured = section.language == BASE_LANGUAGE
    if measured and not limits.min_words <= words <= limits.max_words:
        found.append(Problem(path, "body", f"{words} words; keep it {limits.min_words}-{limits.max_words}", "warning"))
    found += reading_problems(path, "body", section.body, section.language, limits)
    if not section.brief:
        found.append(Problem(path, "brief", "missing; the tri-fold prints each section's brief", "warning"))
    else:
        brief_words = word_count(section.brief, word_re)
        if measured and brief_words > limits.max_brief_words:
            message = f"{brief_words} words; keep it at most {limits.max_brief_words} so three fit a tri-fold"
            found.append(Problem(path, "brief", message, "warning"))
        found += reading_problems(path, "brief", section.brief, section.language, limits)
    if section.key_points:
        # Scored as the list page 1 shows when only this section is chosen.
        points = "\n".join(f"- {point}" for point in section.key_points)
        found += reading_problems(path, "key_points", points, section.language, limits)
    if not section.key_points and section.id != HELP_SECTION:
        found.append(Problem(path, "key_points", "missing; page 1 shows the key points of each section", "warning"))
    interval = limits.review_interval_months
    if section.next_review_due > add_months(section.last_reviewed, interval):
        message = f"{section.next_review_due} is more than the {interval}-month review interval after last_reviewed"
        found.append(Problem(path, "next_review_due", message, "warning"))
    return found
