"""Check a handout spec against the loaded inputs, compose the Handout, and derive its version."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from . import __version__
from .errors import HandoutError, Problem, errors
from .inputs import Inputs
from .inputs.fields import char_problem, did_you_mean
from .layouts import LAYOUTS, PATIENT_LAYOUTS
from .models import (
    BASE_LANGUAGE,
    Brand,
    Handout,
    PrintOptions,
    ReviewState,
    Section,
    Tailoring,
    TranslationLag,
)
from .project import Sections
from .review import brand_release_problems, release_problems, translation_state

NO_PRINT_OPTIONS = PrintOptions()
MAX_TAILORING_CHARS = 600


@dataclass(frozen=True)
class HandoutSpec:
    """Everything that decides what one handout says and how it looks; `sections=None` means every section."""

    sections: tuple[str, ...] | None
    brand: str
    language: str
    layout: str
    release: bool = False
    tailoring: Tailoring = field(default_factory=Tailoring)
    print_options: PrintOptions = field(default_factory=PrintOptions)
    appendix: bool = False


def unknown_sections(requested: Iterable[str] | None, plan: Sections) -> list[str]:
    """Return the requested ids the project does not declare."""
    return sorted({r.strip() for r in requested or () if r.strip()} - set(plan.order))


def unknown_section_message(order: Sequence[str], unknown: Sequence[str]) -> str:
    """Say which requested ids are unknown, suggest the closest declared one, and list the valid ids."""
    names = ", ".join(repr(u) for u in unknown)
    return f"unknown section {names}{did_you_mean(unknown[0], order)}; valid ids: {', '.join(order)}"


def selection(requested: Iterable[str] | None, plan: Sections) -> tuple[str, ...]:
    """Return the section ids to print, in the project's order, with those it always prints."""
    wanted = set(plan.order) if requested is None else {r.strip() for r in requested if r.strip()}
    wanted.update(plan.always)
    return tuple(s for s in plan.order if s in wanted)


def tailoring_problems(tailoring: Tailoring) -> list[Problem]:
    """Return problems with tailoring text without ever quoting it: it is a patient's."""
    found = []
    for name in ("prepared_for", "counselor", "note"):
        value = getattr(tailoring, name)
        if len(value) > MAX_TAILORING_CHARS:
            message = f"{len(value)} characters; at most {MAX_TAILORING_CHARS} fit the box"
            found.append(Problem(f"tailoring.{name}", "", message))
        # The note prints line by line; a name is one line. The message names the character, never the text.
        elif (reason := char_problem(value, newlines=name == "note")) is not None:
            found.append(Problem(f"tailoring.{name}", "", reason))
    return found


def chosen_ids(spec: HandoutSpec, inputs: Inputs) -> tuple[str, ...]:
    """Return the ids a spec prints; a record of every section leaves out translations not made yet."""
    ids = selection(spec.sections, inputs.plan)
    if not LAYOUTS[spec.layout].for_patients and spec.sections is None:
        sections, problems = inputs.sections[spec.language], inputs.problems[spec.language]
        ids = tuple(i for i in ids if i in sections or i in problems)
    return ids


def release_refusals(
    sections: Sequence[Section],
    today: dt.date,
    english: Mapping[str, Section] | None,
    clock: Callable[[], dt.date] = dt.date.today,
) -> list[Problem]:
    """Return why sections may not go into a release, judged by the later of `today` and the real date."""
    # `today` may be a test's --today: a later one is only stricter; an earlier one must not pass
    # a section whose review is overdue now, nor one that says it was reviewed on a day to come.
    real = clock()
    found = release_problems(sections, max(today, real), english)
    message = "is after today's date {}; a release needs a review that has taken place"
    found += [
        Problem(s.path, "last_reviewed", f"{s.last_reviewed} {message.format(real)}")
        for s in sections
        if s.last_reviewed > real
    ]
    return found


def check_spec(spec: HandoutSpec, inputs: Inputs, today: dt.date) -> tuple[str, list[Problem]]:
    """Return a headline and every reason the spec cannot be built, each named by its field or file."""
    problems = _build_problems(spec, inputs)
    brand = inputs.brands[spec.brand][0]
    if spec.release and not problems and brand is not None:
        ids = chosen_ids(spec, inputs)
        sections = inputs.sections[spec.language]
        # The brand first: a counselor who forgot --brand learns that before any review date.
        refused = brand_release_problems(brand)
        refused += release_refusals([sections[i] for i in ids], today, inputs.sections.get(BASE_LANGUAGE))
        return "release refused", refused
    return "cannot build", problems


def _build_problems(spec: HandoutSpec, inputs: Inputs) -> list[Problem]:
    unknown = unknown_sections(spec.sections, inputs.plan)
    if unknown:
        return [Problem("sections", "", unknown_section_message(inputs.plan.order, unknown))]
    layout = LAYOUTS.get(spec.layout)
    if layout is None:
        return [Problem("layout", "", f"unknown layout {spec.layout!r}; choose one of {', '.join(LAYOUTS)}")]
    problems = tailoring_problems(spec.tailoring)
    if spec.appendix and layout.briefs:
        message = f"a {layout.name} has no room for the source list; use letter, a4 or large-print"
        problems.append(Problem("appendix", "", message))
    ids = chosen_ids(spec, inputs)
    sections, found = inputs.sections[spec.language], inputs.problems[spec.language]
    # A broken section the handout does not include must not block it.
    for key in ("", *ids):
        problems += errors(found.get(key, []))
    problems += [
        Problem(inputs.paths[spec.language][i], "", "file not found")
        for i in ids
        if i not in sections and i not in found
    ]
    if layout.briefs:
        problems += [
            Problem(s.path, "brief", f"missing; the {layout.name} prints each section's brief")
            for i in ids
            if (s := sections.get(i)) is not None and not s.brief
        ]
    problems += errors(inputs.brands[spec.brand][1])
    return problems


def compose_spec(spec: HandoutSpec, inputs: Inputs, today: dt.date) -> Handout:
    """Check a spec and compose its Handout, or raise with every problem found."""
    headline, problems = check_spec(spec, inputs, today)
    brand = inputs.brands[spec.brand][0]
    if problems or brand is None:
        raise HandoutError(f"{headline}: {len(problems)} problem(s)", problems)
    return compose(
        chosen_ids(spec, inputs),
        inputs.sections[spec.language],
        brand,
        language=spec.language,
        layout=spec.layout,
        tailoring=spec.tailoring,
        assets=inputs.assets_digest,
        tool_version=__version__,
        print_options=spec.print_options,
        today=today,
        appendix=spec.appendix,
        english=inputs.sections.get(BASE_LANGUAGE),
        fonts=inputs.fonts.get(spec.language, ()),
    )


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
    translations: Iterable[tuple[str, TranslationLag]] = (),
    fonts: tuple[str, ...] = (),
) -> str:
    """Return a short hash of everything that shapes the PDF except the patient's text."""
    digest = hashlib.sha256()
    parts = [tool_version, assets, brand.digest, language, layout, print_options.key]
    # Only a language a project gives fonts of its own hashes them: every other version stays as it was.
    parts += [f"fonts={','.join(fonts)}"] if fonts else []
    # Only a handout with the appendix hashes it, so every other version stays as it was.
    for part in [*parts, "appendix"] if appendix else parts:
        digest.update(part.encode() + b"\0")
    for section in sections:
        digest.update(f"{section.id}\0{section.version}\0{section.digest}\0".encode())
    # The printed review state (e.g. overdue) is part of what the PDF says.
    for section_id, state in review:
        digest.update(f"{section_id}={state}\0".encode())
    # Only a review record prints how far a translation is behind; every other version stays as it was.
    for section_id, lag in translations:
        digest.update(f"{section_id}<{lag.english_version}@{lag.english_approved}\0".encode())
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
    english: Mapping[str, Section] | None = None,
    fonts: tuple[str, ...] = (),
) -> Handout:
    """Assemble a Handout from loaded sections; fail if a chosen one is missing."""
    ids = tuple(ids)
    missing = [i for i in ids if i not in available]
    if missing:
        raise HandoutError(
            f"cannot build: {len(missing)} section(s) not available in {language!r}",
            [Problem("sections", "", f"{i}: missing or invalid") for i in missing],
        )
    sections = tuple(available[i] for i in ids)
    brand = brand.for_language(language)
    review = tuple((s.id, s.review_state(today)) for s in sections)
    # This handout's version and the codes a review record lists differ only in layout, print options and appendix.
    version_of = functools.partial(
        handout_version,
        sections,
        brand,
        language=language,
        assets=assets,
        tool_version=tool_version,
        review=review,
        fonts=fonts,
    )
    covers: tuple[tuple[str, bool, str], ...] = ()
    translations: tuple[tuple[str, TranslationLag], ...] = ()
    if layout in LAYOUTS and not LAYOUTS[layout].for_patients:
        # A reviewer reads the record: a translation of an older English must not look simply approved.
        translations = tuple((s.id, lag) for s in sections if (lag := translation_state(s, english)) is not None)
        # What `build` of these sections would print today in each patient layout, plain and with
        # --appendix where it fits: the codes staff look up from a patient's page. Print-shop
        # copies (bleed, crop marks) have codes of their own, listed in the batch manifest.
        covers = tuple(
            (name, appendix, version_of(layout=name, appendix=appendix))
            for name in PATIENT_LAYOUTS
            for appendix in ((False,) if LAYOUTS[name].briefs else (False, True))
        )
    return Handout(
        language=language,
        layout=layout,
        brand=brand,
        sections=sections,
        tailoring=tailoring,
        version=version_of(layout=layout, print_options=print_options, appendix=appendix, translations=translations),
        tool_version=tool_version,
        print_options=print_options,
        appendix=appendix,
        review=review,
        covers=covers,
        translations=translations,
        fonts=fonts,
    )
