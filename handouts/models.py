"""Frozen models of sections, brands and handouts; no I/O here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from .codes import Codes

Status = Literal["draft", "approved"]
# What a printed copy says about a section's review.
ReviewState = Literal["draft", "approved", "changed", "overdue"]

# The sections of a project whose handouts.toml lists none, in print order: medicines first (most
# people do best starting one directly), withdrawal management late.
SECTION_ORDER = ("mat", "overdose-safety", "behavioral-therapy", "self-help", "detox", "find-help")
# Where to get help closes every handout; no project may leave it out.
HELP_SECTION = "find-help"
# The page-1 box stays short enough to read at a glance.
MIN_KEY_POINTS, MAX_KEY_POINTS = 3, 5
# Every section is written in English first; other languages are translations of it.
BASE_LANGUAGE = "en"
# The characters of a handout code, read over the phone from a patient's page: no 0 or O, no 1, I
# or L to mistake for each other, and no U (heard as "you").
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8


def handout_code(version: str) -> str:
    """Return the short code a patient's pages print for a handout version (12 hex digits), e.g. K7QP-3MX2."""
    # 8 characters of 30 hold 39 bits of the version's 48: two handouts of one clinic share a code
    # about once in a hundred million pairs, and the manifest or the record tells them apart anyway.
    number = int(version, 16)
    characters = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, len(CODE_ALPHABET))
        characters.append(CODE_ALPHABET[digit])
    code = "".join(characters)
    return f"{code[:4]}-{code[4:]}"


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

    @property
    def full(self) -> str:
        """Return name, credentials and role, as the About block prints them."""
        return f"{self.signature} ({self.role})" if self.role else self.signature

    def __str__(self) -> str:
        return self.full


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
    # The short form the tri-fold prints, and the points page 1 may pick; both reviewed with the body.
    brief: str = ""
    key_points: tuple[str, ...] = ()
    translation_of: str | None = None
    approved_version: str | None = None
    approved_fingerprint: str | None = None
    # (code system, (code, ...)) in name order, declared by the English file for every language: an
    # Infobutton request finds the section by them. Never printed, so not part of the fingerprint.
    codes: Codes = ()
    # Plain words an Infobutton request's display name may hold (Suboxone, naloxone), declared by the
    # English file for every language as codes are; never printed, so not part of the fingerprint either.
    keywords: tuple[str, ...] = ()

    def is_overdue(self, today: dt.date) -> bool:
        """Tell whether the section is past its review date."""
        return today > self.next_review_due

    @property
    def fingerprint(self) -> str:
        """Return the fingerprint of the reviewed text (body, brief, key points) as an approval records it."""
        return text_fingerprint(self.body, self.brief, self.key_points)

    @property
    def changed_since_approval(self) -> bool:
        """Tell whether the body differs from the one last approved."""
        return self.approved_fingerprint is not None and self.approved_fingerprint != self.fingerprint

    def review_state(self, today: dt.date) -> ReviewState:
        """Return what a printed copy must say about this section's review."""
        if self.changed_since_approval and self.status == "approved":
            return "changed"
        if self.status != "approved":
            return "draft"
        return "overdue" if self.is_overdue(today) else "approved"


def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


def text_fingerprint(body: str, brief: str = "", key_points: tuple[str, ...] = ()) -> str:
    """Hash the reviewed text the same way whatever its line endings or trailing blank lines."""
    text = _normalized(body)
    # A section without a brief or key points hashes as its body alone, as approvals before
    # briefs existed recorded it; anything added makes a different text to review.
    if brief.strip() or key_points:
        text += "\0brief\0" + _normalized(brief) + "\0key_points\0" + "\n".join(p.strip() for p in key_points)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TranslationLag:
    """A translation of an older English version than the current one: "translation behind English 2.0.1"."""

    section_id: str
    translates: str
    english_version: str
    # When the English version was approved, if it was; an English edit not yet approved has no date.
    english_approved: dt.date | None = None

    @property
    def status(self) -> str:
        """Return the state as tables show it, e.g. translation behind English 2.0.1."""
        return f"translation behind English {self.english_version}"

    @property
    def reason(self) -> str:
        """Return what check says: translates detox 2.0.0, English is now 2.0.1."""
        return f"translates {self.section_id} {self.translates}, English is now {self.english_version}"

    @property
    def detail(self) -> str:
        """Return which English it translates and, if known, when the English changed."""
        when = f"; English {self.english_version} approved {self.english_approved}" if self.english_approved else ""
        return f"translates {self.translates}{when}"


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
    hours: str = ""
    # Where a patient can read the full list of sources; empty: "ask us for the list".
    sources_url: str = ""
    # Per-language overrides, e.g. (("es", (("name", "Clínica ..."),)),); English is the base.
    localized: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # A made-up organization (example = true in brand.toml): its name and numbers must never reach a patient.
    example: bool = False
    # The HL7 OIDs of the organizations this brand answers for: an Infobutton request that names one
    # (representedOrganization.id.root) gets this brand's handouts.
    organization_ids: tuple[str, ...] = ()

    def for_language(self, language: str) -> Brand:
        """Return the brand with its fields in a language, falling back to the base ones."""
        overrides: dict[str, Any] = dict(dict(self.localized).get(language, ()))
        return dataclasses.replace(self, **overrides) if overrides else self


@dataclass(frozen=True)
class Tailoring:
    """Text for one patient; printed in that PDF only, never logged or stored."""

    prepared_for: str = ""
    counselor: str = ""
    note: str = ""
    next_visit: dt.date | None = None
    next_visit_time: dt.time | None = None

    def __bool__(self) -> bool:
        return bool(self.prepared_for or self.counselor or self.note or self.next_visit or self.next_visit_time)

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

    language: str
    layout: str
    brand: Brand
    sections: tuple[Section, ...]
    tailoring: Tailoring
    version: str
    tool_version: str
    print_options: PrintOptions = field(default_factory=PrintOptions)
    # Print the full source list after the patient pages (build --appendix).
    appendix: bool = False
    # Section id -> review state on the day of the build, in print order.
    review: tuple[tuple[str, ReviewState], ...] = ()
    # A review record's patient handouts of the same sections, brand and language, as (layout,
    # with the source appendix, version): the codes their pages print. Empty for a patient handout.
    covers: tuple[tuple[str, bool, str], ...] = ()
    # Section id -> how far behind its English a translation is, for those that are (a record prints it).
    translations: tuple[tuple[str, TranslationLag], ...] = ()
    # Font families the project adds for this language, printed before the language table's own.
    fonts: tuple[str, ...] = ()

    @property
    def lags(self) -> dict[str, TranslationLag]:
        """Return the translations behind their English by section id."""
        return dict(self.translations)

    @property
    def changed(self) -> tuple[Section, ...]:
        """Return the sections whose text changed since their approval, in print order."""
        states = self.states
        return tuple(s for s in self.sections if states.get(s.id) == "changed")

    @property
    def code(self) -> str:
        """Return the short handout code the footer of every patient page prints."""
        return handout_code(self.version)

    @property
    def states(self) -> dict[str, ReviewState]:
        """Return each section's review state by id."""
        return dict(self.review)

    @property
    def is_draft(self) -> bool:
        """Tell whether any section is unapproved, so the review line must say the handout is not approved."""
        return any(state in ("draft", "changed") for _, state in self.review)

    @property
    def is_unreviewed_translation(self) -> bool:
        """Tell whether the PDF must say no qualified medical translator checked it: a translation with a draft."""
        return self.language != BASE_LANGUAGE and any(state == "draft" for _, state in self.review)

    @property
    def is_sample(self) -> bool:
        """Tell whether the PDF must say it is a sample: a section is unapproved, or the brand is an example."""
        # Approved content under a made-up clinic is still no handout to give a patient: its phone is fake.
        return self.is_draft or self.brand.example

    @property
    def is_overdue(self) -> bool:
        """Tell whether an approved section is past its review date."""
        return any(state == "overdue" for _, state in self.review)

    @property
    def section_ids(self) -> tuple[str, ...]:
        """Return the ids of the included sections in print order."""
        return tuple(s.id for s in self.sections)

    @property
    def body_sections(self) -> tuple[Section, ...]:
        """Return the chosen sections without the always-printed help block."""
        return tuple(s for s in self.sections if s.id != HELP_SECTION)

    @property
    def help_section(self) -> Section:
        """Return the always-printed "where to get help" block."""
        return next(s for s in self.sections if s.id == HELP_SECTION)

    @property
    def reviewers(self) -> tuple[Reviewer, ...]:
        """Return every reviewer of the chosen sections once, in order of first appearance."""
        seen: dict[tuple[str, str], Reviewer] = {}
        for section in self.sections:
            for reviewer in section.reviewers:
                seen.setdefault((reviewer.name, reviewer.credentials), reviewer)
        return tuple(seen.values())

    @property
    def last_reviewed(self) -> dt.date:
        """Return the oldest review date of the chosen sections: the whole handout is that current."""
        return min(s.last_reviewed for s in self.sections)

    @property
    def next_review_due(self) -> dt.date:
        """Return the soonest next review of the chosen sections."""
        return min(s.next_review_due for s in self.sections)

    @property
    def key_points(self) -> tuple[str, ...]:
        """Return one key point per chosen section, 3 to 5, taking every first point before any second one."""
        lists = [s.key_points for s in self.body_sections]
        depth = max((len(points) for points in lists), default=0)
        picked = [points[i] for i in range(depth) for points in lists if i < len(points)]
        # A box longer than the handout's number of topics stops being a summary.
        return tuple(picked[: min(MAX_KEY_POINTS, max(MIN_KEY_POINTS, len(lists)))])
