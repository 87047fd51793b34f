"""Plain-text reports for the terminal: the sections table and what is due for review."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from .models import SECTION_ORDER, Section
from .readability import fernandez_huerta, score

HEADERS = ("id", "title", "version", "status", "last reviewed", "next review due", "reading")
DUE_HEADERS = ("id", "title", "version", "status", "next review due", "why")


def table(rows: Sequence[Sequence[str]]) -> str:
    """Lay out rows as fixed-width columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def status(section: Section, today: dt.date) -> str:
    """Return the review state as the tables show it."""
    return {"changed": "changed after approval"}.get(section.review_state(today), section.review_state(today))


def reading(section: Section) -> str:
    """Return the reading score in the section's language: FK grade for English, FH ease for Spanish."""
    if section.language == "es":
        return f"FH {fernandez_huerta(section.body):.1f}"
    return f"FK {score(section.body).fk_grade:.1f}"


def sections_table(sections: Iterable[Section], today: dt.date) -> str:
    """Return a table of sections in print order, with their reading grade."""
    ordered = sorted(sections, key=lambda s: SECTION_ORDER.index(s.id))
    return table(
        [HEADERS]
        + [
            (
                s.id,
                s.title,
                s.version,
                status(s, today),
                s.last_reviewed.isoformat(),
                s.next_review_due.isoformat(),
                reading(s),
            )
            for s in ordered
        ]
    )


def due_table(due: Sequence[tuple[Section, str]], today: dt.date) -> str:
    """Return a table of sections that need review with the reason for each, in the order given."""
    return table(
        [DUE_HEADERS]
        + [(s.id, s.title, s.version, status(s, today), s.next_review_due.isoformat(), why) for s, why in due]
    )
