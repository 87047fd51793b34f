"""Quality rules over valid sections: length, reading level, briefs, key points, review interval."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from .dates import add_months
from .errors import Problem
from .models import HELP_SECTION, Section
from .project import Limits
from .readability import (
    SPANISH_WORD_RE,
    WORD_RE,
    Readability,
    fernandez_huerta,
    hardest_sentence,
    score,
    spanish_syllables,
    word_count,
)


def _hardest(markdown: str, difficulty: Callable[[Readability], float], language: str) -> str:
    """Return '; hardest sentence: "..."' for a reading warning, the sentence cut short to about 80 characters."""
    spanish = (spanish_syllables, SPANISH_WORD_RE) if language == "es" else ()
    sentence = hardest_sentence(markdown, difficulty, *spanish)
    short = textwrap.shorten(sentence, 80, placeholder=" ...")
    # A first word longer than the width shortens to the placeholder alone.
    short = sentence[:76] + " ..." if short == "..." else short
    return f'; hardest sentence: "{short}"' if sentence else ""


def reading_problems(path: str, field: str, markdown: str, language: str, limits: Limits) -> list[Problem]:
    """Return reading-level warnings for patient text, by its language's formula, each naming its hardest sentence."""
    if language == "es":
        ease = fernandez_huerta(markdown)
        if ease >= limits.min_fernandez_huerta:
            return []
        message = f"Fernandez-Huerta reading ease {ease:.1f} is under {limits.min_fernandez_huerta:g}"
        message += _hardest(markdown, lambda r: -r.fernandez_huerta, language)
        return [Problem(path, field, message, "warning")]
    reading, found = score(markdown), []
    if reading.fk_grade > limits.max_fk_grade:
        message = f"Flesch-Kincaid grade {reading.fk_grade:.1f} is over {limits.max_fk_grade:g}"
        message += _hardest(markdown, lambda r: r.fk_grade, language)
        found.append(Problem(path, field, message, "warning"))
    if reading.smog > limits.max_smog:
        message = f"SMOG {reading.smog:.1f} is over {limits.max_smog:g}"
        message += _hardest(markdown, lambda r: r.smog, language)
        found.append(Problem(path, field, message, "warning"))
    return found


def section_warnings(section: Section, limits: Limits) -> list[Problem]:
    """Return length, reading-level and completeness warnings for a valid section."""
    path, found = section.path, []
    word_re = SPANISH_WORD_RE if section.language == "es" else WORD_RE
    words = word_count(section.body, word_re)
    if not limits.min_words <= words <= limits.max_words:
        found.append(Problem(path, "body", f"{words} words; keep it {limits.min_words}-{limits.max_words}", "warning"))
    found += reading_problems(path, "body", section.body, section.language, limits)
    if not section.brief:
        found.append(Problem(path, "brief", "missing; the tri-fold prints each section's brief", "warning"))
    else:
        brief_words = word_count(section.brief, word_re)
        if brief_words > limits.max_brief_words:
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
