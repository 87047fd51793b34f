"""Plain-text reports for the terminal: the sections and brands tables and what is due for review."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .models import Section
from .readability import fernandez_huerta, score

if TYPE_CHECKING:
    from .inputs.brands import BrandSummary

HEADERS = ("id", "title", "version", "status", "last reviewed", "next review due", "reading")
DUE_HEADERS = ("id", "title", "version", "status", "next review due", "why")
BRAND_HEADERS = ("id", "name", "example", "state")


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


def sections_table(sections: Iterable[Section], today: dt.date, order: Sequence[str]) -> str:
    """Return a table of sections in the project's print order, with their reading grade."""
    ordered = sorted(sections, key=lambda s: order.index(s.id))
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


def brands_table(brands: Iterable[BrandSummary]) -> str:
    """Return a table of brand folders: id, name, whether an example, and ok or how many problems."""

    def state(brand: BrandSummary) -> str:
        count = len(brand.problems)
        return "ok" if not count else f"{count} problem{'' if count == 1 else 's'}"

    rows = [(b.id, b.name or "-", "yes" if b.example else "no", state(b)) for b in brands]
    return table([BRAND_HEADERS, *rows])
