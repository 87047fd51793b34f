"""Plain-text reports for the terminal: the sections table."""

from __future__ import annotations

from collections.abc import Iterable

from .models import SECTION_ORDER, Section
from .readability import score

HEADERS = ("id", "title", "version", "status", "last reviewed", "next review due", "grade")


def sections_table(sections: Iterable[Section]) -> str:
    """Return a fixed-width table of sections in print order, with their reading grade."""
    ordered = sorted(sections, key=lambda s: SECTION_ORDER.index(s.id))
    rows = [HEADERS] + [
        (
            s.id,
            s.title,
            s.version,
            s.status,
            s.last_reviewed.isoformat(),
            s.next_review_due.isoformat(),
            f"{score(s.body).fk_grade:.1f}",
        )
        for s in ordered
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
