"""Frozen models of sections, brands and handouts; no I/O here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["draft", "approved"]

# The order sections always print in; `find-help` closes every handout and cannot be left out.
SECTION_ORDER = ("detox", "mat", "behavioral-therapy", "self-help", "overdose-safety", "find-help")
ALWAYS_INCLUDED = "find-help"
DEFAULT_BRAND = "example-clinic"
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Reviewer:
    """A clinical reviewer of a section."""

    name: str
    credentials: str
    role: str = ""

    @property
    def signature(self) -> str:
        """Return the name with credentials, as a short line of review information."""
        return f"{self.name}, {self.credentials}"

    def __str__(self) -> str:
        return f"{self.signature} ({self.role})" if self.role else self.signature


@dataclass(frozen=True)
class Source:
    """A public source a section rests on."""

    title: str
    url: str


@dataclass(frozen=True)
class Section:
    """One reviewed, versioned piece of handout content in one language."""

    id: str
    title: str
    version: str
    language: str
    status: Status
    reviewers: tuple[Reviewer, ...]
    last_reviewed: dt.date
    next_review_due: dt.date
    sources: tuple[Source, ...]
    body: str
    path: str
    digest: str
    translation_of: str | None = None

    def is_overdue(self, today: dt.date) -> bool:
        """Tell whether the section is past its review date."""
        return today > self.next_review_due


@dataclass(frozen=True)
class Brand:
    """An organization's name, contact details, colors and logo."""

    id: str
    name: str
    short_name: str
    phone: str
    address: str
    website: str
    primary_color: str
    accent_color: str
    logo: str
    logo_alt: str
    note: str
    qr_url: str
    digest: str


@dataclass(frozen=True)
class Tailoring:
    """Text for one patient; printed in that PDF only, never logged or stored."""

    prepared_for: str = ""
    counselor: str = ""
    note: str = ""
    next_visit: dt.date | None = None

    def __bool__(self) -> bool:
        return bool(self.prepared_for or self.counselor or self.note or self.next_visit)

    def __repr__(self) -> str:
        # Keep patient text out of tracebacks and debug logs.
        return "Tailoring(<redacted>)"


@dataclass(frozen=True)
class PrintOptions:
    """Print-shop extras: bleed around the trimmed page and crop marks outside it."""

    bleed_pt: float = 0.0
    crop_marks: bool = False

    @property
    def key(self) -> str:
        """Return a stable text form for the handout version."""
        return f"bleed={self.bleed_pt:g}pt marks={'crop' if self.crop_marks else 'none'}"


@dataclass(frozen=True)
class Handout:
    """Everything one PDF shows: chosen sections in order, brand, layout and tailoring."""

    title: str
    language: str
    layout: str
    brand: Brand
    sections: tuple[Section, ...]
    tailoring: Tailoring
    version: str
    tool_version: str
    print_options: PrintOptions = field(default_factory=PrintOptions)

    @property
    def is_sample(self) -> bool:
        """Tell whether any section is unapproved, so the PDF must say it is a sample."""
        return any(s.status != "approved" for s in self.sections)

    @property
    def section_ids(self) -> tuple[str, ...]:
        """Return the ids of the included sections in print order."""
        return tuple(s.id for s in self.sections)

    @property
    def body_sections(self) -> tuple[Section, ...]:
        """Return the chosen sections without the always-printed help block."""
        return tuple(s for s in self.sections if s.id != ALWAYS_INCLUDED)

    @property
    def help_section(self) -> Section:
        """Return the always-printed "where to get help" block."""
        return next(s for s in self.sections if s.id == ALWAYS_INCLUDED)
