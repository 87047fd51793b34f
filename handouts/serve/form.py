"""The page's form: read its fields into a handout spec, or say in plain words what is wrong with each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..compose import HandoutSpec, tailoring_problems
from ..dates import parse_date, parse_time
from ..errors import Problem
from ..inputs.fields import next_visit_problem
from ..layouts import PATIENT_LAYOUTS
from ..models import Tailoring
from .state import SectionChoice

# Field -> what the page calls it, for messages that stand next to the field.
LABELS = {
    "brand": "Clinic",
    "language": "Language",
    "layout": "Layout",
    "sections": "Sections",
    "prepared_for": "Patient's first name",
    "counselor": "Counselor",
    "note": "Note",
    "next_visit": "Next visit date",
    "next_visit_time": "Next visit time",
}
# A form field's raw length before any other check: far past what any field allows, so no parser sees more.
MAX_FIELD_CHARS = 4000


@dataclass(frozen=True)
class FormValues:
    """What the form sent, as text, to fill the form again next to its errors."""

    brand: str = ""
    language: str = ""
    layout: str = "letter"
    sections: tuple[str, ...] = ()
    prepared_for: str = ""
    counselor: str = ""
    note: str = ""
    next_visit: str = ""
    next_visit_time: str = ""

    def __repr__(self) -> str:
        # Patient text never reaches a log or a traceback.
        return "FormValues(<redacted>)"


@dataclass(frozen=True)
class FormResult:
    """A spec ready to compose, or the errors by field ("" for the whole form)."""

    values: FormValues
    spec: HandoutSpec | None
    errors: dict[str, list[str]] = field(default_factory=dict)


def read_values(form: Mapping[str, str], sections: Sequence[str]) -> FormValues:
    """Take the form's text fields, each cut to a bound length, and its checked sections."""

    def text(name: str) -> str:
        return str(form.get(name, ""))[:MAX_FIELD_CHARS]

    return FormValues(
        brand=text("brand").strip().lower(),
        language=text("language").strip(),
        layout=text("layout").strip().lower() or "letter",
        sections=tuple(dict.fromkeys(s.strip().lower()[:64] for s in sections[:100] if s.strip())),
        prepared_for=text("prepared_for").strip(),
        counselor=text("counselor").strip(),
        # Browsers send line breaks as CR LF; the note keeps them as plain line breaks.
        note=text("note").replace("\r\n", "\n").strip(),
        next_visit=text("next_visit").strip(),
        next_visit_time=text("next_visit_time").strip(),
    )


def problem_field(problem: Problem) -> str:
    """Return the form field a library problem is about, or "" for the whole form."""
    name = problem.path.removeprefix("tailoring.")
    return name if name in LABELS else ""


def check_form(
    values: FormValues,
    *,
    brands: Sequence[str],
    languages: Sequence[str],
    choices: Sequence[SectionChoice],
    today: dt.date,
    release: bool,
) -> FormResult:
    """Check every field against what the page offers and the CLI's limits; return a spec or every error."""
    found: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        found.setdefault(name, []).append(message)

    if values.brand not in brands:
        add("brand", "Choose one of the clinics listed.")
    if values.language not in languages:
        add("language", "Choose one of the languages listed.")
    if values.layout not in PATIENT_LAYOUTS:
        add("layout", "Choose one of the layouts listed.")
    offered = {c.id for c in choices if c.offered}
    unknown = [s for s in values.sections if s not in {c.id for c in choices}]
    refused = [s for s in values.sections if s not in offered and s not in unknown]
    chosen = [s for s in values.sections if s in offered]
    if unknown:
        add("sections", "Some sections are not in this project any more; choose from the list.")
    if refused:
        # The same words the page shows next to each section it does not offer.
        by_id = {c.id: c for c in choices}
        named = "; ".join(f"{by_id[s].title} ({by_id[s].reason})" for s in refused)
        add("sections", f"Not offered: {named}. Choose from the sections listed.")
    if not chosen and not unknown and not refused:
        add("sections", "Choose at least one section.")
    # The layout's own rule, as compose applies it (a brochure prints briefs), in the page's words.
    printed = [c for c in choices if c.offered and (c.id in chosen or c.always)]
    unfit = [(c.title, why) for c in printed if (why := c.layout_refusal(values.layout))]
    if unfit:
        named = "; ".join(f"{title} ({why})" for title, why in unfit)
        add("sections", f"Not in this layout: {named}. Choose another layout or other sections.")
    visit = visit_time = None
    if values.next_visit:
        try:
            visit = parse_date(values.next_visit)
        except ValueError:
            add("next_visit", "Enter the date as YYYY-MM-DD, for example 2026-12-01.")
        else:
            if (reason := next_visit_problem(visit, today)) is not None:  # the CLI's and job files' rule
                add("next_visit", _plain(reason))
    if values.next_visit_time:
        try:
            visit_time = parse_time(values.next_visit_time)
        except ValueError:
            add("next_visit_time", "Enter the time as HH:MM on a 24-hour clock, for example 14:30.")
        if not values.next_visit:
            add("next_visit", "Enter the date of the visit too.")
    tailoring = Tailoring(
        prepared_for=values.prepared_for,
        counselor=values.counselor,
        note=values.note,
        next_visit=visit,
        next_visit_time=visit_time,
    )
    for problem in tailoring_problems(tailoring):
        add(problem_field(problem), _plain(problem.message))
    if found:
        return FormResult(values, None, found)
    spec = HandoutSpec(
        sections=tuple(chosen),
        brand=values.brand,
        language=values.language,
        layout=values.layout,
        release=release,
        tailoring=tailoring,
    )
    return FormResult(values, spec)


def _plain(message: str) -> str:
    # The library's reasons are written for a file's author; the first letter up reads as a sentence here.
    text = message[:1].upper() + message[1:]
    return text if text.endswith(".") else text + "."
