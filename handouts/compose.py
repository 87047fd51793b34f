"""Choose the sections of a handout and derive its version from every input."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping

from .errors import HandoutError, Problem
from .models import ALWAYS_INCLUDED, SECTION_ORDER, Brand, Handout, PrintOptions, ReviewState, Section, Tailoring

NO_PRINT_OPTIONS = PrintOptions()


class UnknownSectionError(HandoutError):
    """A requested section id that no section has."""

    def __init__(self, unknown: Iterable[str]) -> None:
        self.unknown = tuple(unknown)
        valid = ", ".join(SECTION_ORDER)
        names = ", ".join(repr(u) for u in self.unknown)
        super().__init__(f"unknown section {names}; valid ids: {valid}")


def selection(requested: Iterable[str] | None) -> tuple[str, ...]:
    """Return the section ids to print, in the fixed order, always ending with find-help."""
    wanted = set(SECTION_ORDER) if requested is None else {r.strip() for r in requested if r.strip()}
    unknown = sorted(wanted - set(SECTION_ORDER))
    if unknown:
        raise UnknownSectionError(unknown)
    wanted.add(ALWAYS_INCLUDED)
    return tuple(s for s in SECTION_ORDER if s in wanted)


def handout_version(
    sections: Iterable[Section],
    brand: Brand,
    *,
    language: str,
    layout: str,
    assets: str,
    tool_version: str,
    print_options: PrintOptions = NO_PRINT_OPTIONS,
    review: Iterable[tuple[str, ReviewState]] = (),
    appendix: bool = False,
) -> str:
    """Return a short hash of everything that shapes the PDF except the patient's text."""
    digest = hashlib.sha256()
    parts = [tool_version, assets, brand.digest, language, layout, print_options.key]
    # Only a handout with the appendix hashes it, so every other version stays as it was.
    for part in [*parts, "appendix"] if appendix else parts:
        digest.update(part.encode() + b"\0")
    for section in sections:
        digest.update(f"{section.id}\0{section.version}\0{section.digest}\0".encode())
    # The printed review state (e.g. overdue) is part of what the PDF says.
    for section_id, state in review:
        digest.update(f"{section_id}={state}\0".encode())
    return digest.hexdigest()[:12]


def compose(
    ids: Iterable[str],
    available: Mapping[str, Section],
    brand: Brand,
    *,
    language: str,
    layout: str,
    tailoring: Tailoring,
    assets: str,
    tool_version: str,
    today: dt.date,
    print_options: PrintOptions = NO_PRINT_OPTIONS,
    appendix: bool = False,
) -> Handout:
    """Assemble a Handout from loaded sections; fail if a chosen one is missing."""
    ids = tuple(ids)
    missing = [i for i in ids if i not in available]
    if missing:
        raise HandoutError(
            f"cannot build: {len(missing)} section(s) not available in {language!r}",
            [Problem(f"content/{language}/{i}.md", "", "missing or invalid") for i in missing],
        )
    sections = tuple(available[i] for i in ids)
    brand = brand.for_language(language)
    review = tuple((s.id, s.review_state(today)) for s in sections)
    return Handout(
        language=language,
        layout=layout,
        brand=brand,
        sections=sections,
        tailoring=tailoring,
        version=handout_version(
            sections,
            brand,
            language=language,
            layout=layout,
            assets=assets,
            tool_version=tool_version,
            print_options=print_options,
            review=review,
            appendix=appendix,
        ),
        tool_version=tool_version,
        print_options=print_options,
        appendix=appendix,
        review=review,
    )
