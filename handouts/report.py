"""Plain-text reports for the terminal: the sections and brands tables and what is due for review."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .errors import Problem
from .languages import language
from .models import BASE_LANGUAGE, Section
from .project import Project
from .readability import average_sentence, fernandez_huerta, score, unit_pattern
from .review import due_for_review, translation_state

if TYPE_CHECKING:
    from .inputs.brands import BrandSummary

HEADERS = ("id", "title", "version", "status", "last reviewed", "next review due", "reading")
DUE_HEADERS = ("id", "title", "version", "status", "next review due", "why")
BRAND_HEADERS = ("id", "name", "example", "state")


def table(rows: Sequence[Sequence[str]]) -> str:
    """Lay out rows as fixed-width columns."""
    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell + " " * (w - width(cell)) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def width(text: str) -> int:
    """Return how many terminal columns text takes: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def status(section: Section, today: dt.date, english: Mapping[str, Section] | None = None) -> str:
    """Return the review state as the tables show it; a translation behind its English says so first."""
    state = section.review_state(today)
    shown = {"changed": "changed after approval"}.get(state, state)
    lag = translation_state(section, english)
    return shown if lag is None else f"{lag.status} ({lag.detail}); {shown}"


def reading(section: Section) -> str:
    """Return the reading score by the section's language's measure: FK grade, FH ease, or sentence length."""
    row = language(section.language)
    if row.measure == "fernandez-huerta":
        return f"FH {fernandez_huerta(section.body):.1f}"
    if row.measure == "sentence-length":
        average, _ = average_sentence(section.body, unit_pattern(row))
        unit = "chars" if row.units == "characters" else "words"
        return f"{average:.1f} {unit}/sentence"
    return f"FK {score(section.body).fk_grade:.1f}"


def sections_table(
    sections: Iterable[Section],
    today: dt.date,
    order: Sequence[str],
    english: Mapping[str, Section] | None = None,
) -> str:
    """Return a table of sections in the project's print order, with their reading grade."""
    ordered = sorted(sections, key=lambda s: order.index(s.id))
    return table(
        [HEADERS]
        + [
            (
                s.id,
                s.title,
                s.version,
                status(s, today, english),
                s.last_reviewed.isoformat(),
                s.next_review_due.isoformat(),
                reading(s),
            )
            for s in ordered
        ]
    )


def due_table(due: Sequence[tuple[Section, str]], today: dt.date) -> str:
    """Return a table of sections that need review with the reason for each, in the order given."""
    # The why column of a translation behind English says so; its status column keeps its own review state.
    return table(
        [DUE_HEADERS]
        + [(s.id, s.title, s.version, status(s, today), s.next_review_due.isoformat(), why) for s, why in due]
    )


def sections_report(project: Project, language: str, today: dt.date, *, due: bool) -> tuple[str, list[Problem]]:
    """Return the `sections` table (or, with `due`, what needs review) of one language, and the loading problems."""
    from .inputs.sections import load_sections

    content = load_sections(project, language, today)
    # A translation is judged against the English sections: one behind them needs review first.
    english = load_sections(project, BASE_LANGUAGE, today).sections if language != BASE_LANGUAGE else None
    loaded, problems = content.sections, content.all_problems
    if not due:
        return sections_table(loaded.values(), today, project.sections.order, english), problems
    needing = due_for_review(loaded.values(), today, project.limits, english)
    if not needing:
        return f"Nothing needs review in the next {project.limits.warning_window_days} days.", problems
    return due_table(needing, today), problems


def brands_table(brands: Iterable[BrandSummary]) -> str:
    """Return a table of brand folders: id, name, whether an example, and ok or how many problems."""

    def state(brand: BrandSummary) -> str:
        # A warning (a translated field behind its English) leaves the brand usable: said apart from problems.
        count = sum(p.severity == "error" for p in brand.problems)
        warnings = len(brand.problems) - count
        parts = [f"{count} problem{'' if count == 1 else 's'}"] * bool(count)
        parts += [f"{warnings} warning{'' if warnings == 1 else 's'}"] * bool(warnings)
        return ", ".join(parts) or "ok"

    rows = [(b.id, b.name or "-", "yes" if b.example else "no", state(b)) for b in brands]
    return table([BRAND_HEADERS, *rows])
