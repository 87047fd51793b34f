"""Batch job files: parse and validate them, and expand each handout into its outputs."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..layouts import PATIENT_LAYOUTS
from ..models import BASE_LANGUAGE, SECTION_ORDER
from ..project import Kit, kit_key
from .fields import char_problem, closest, did_you_mean, key_name, parse_language, shown, tables
from .files import TOML_CAP, parse_toml, read_text

JOB_FIELDS = ("name", "sections", "kit", "brands", "languages", "layouts", "release", "appendix")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
DEFAULT_OUTPUT = "out/batch"


@dataclass(frozen=True)
class JobSpec:
    """One [[handout]] of a job file, before it is expanded."""

    name: str
    sections: tuple[str, ...]
    brands: tuple[str, ...]
    languages: tuple[str, ...]
    layouts: tuple[str, ...]
    release: bool
    appendix: bool = False


@dataclass(frozen=True)
class JobFile:
    """A parsed job file."""

    output: str
    handouts: tuple[JobSpec, ...]
    # A folder of OpenEMR "Local" patient education PDFs (sites/<site>/documents/education) the batch keeps too.
    openemr_education: str | None = None


@dataclass(frozen=True)
class Output:
    """One PDF a job file asks for: a handout for one brand, language and layout."""

    key: str  # its path under the output folder, e.g. example-clinic/en/treatment-letter.pdf
    name: str
    sections: tuple[str, ...]
    brand: str
    language: str
    layout: str
    release: bool
    appendix: bool = False


def _strings(path: str, field: str, value: Any, allowed: Sequence[str], problems: list[Problem]) -> tuple[str, ...]:
    # "*" means every allowed name, written bare or in the list: brands = "*" or brands = ["*"].
    if value == "*" or (isinstance(value, list) and "*" in value):
        return tuple(allowed)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append(Problem(path, field, f'expected a list of names or "*", got {shown(value)}'))
        return ()
    # Names are case-insensitive, as on the command line: "MAT" is mat.
    value = [v.strip().lower() for v in value]
    unknown = [v for v in value if v not in allowed]
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        hint = did_you_mean(unknown[0], allowed)
        problems.append(Problem(path, field, f"unknown {names}{hint}; choose from {', '.join(allowed) or 'none'}"))
        return ()
    return tuple(dict.fromkeys(value))


def _languages(path: str, field: str, value: Any, available: Sequence[str], problems: list[Problem]) -> tuple[str, ...]:
    # The CLI's rule for --lang: any case, a region (es-MX) or an alias (sp, spa) names the language.
    if value == "*" or (isinstance(value, list) and "*" in value):
        return tuple(available)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append(Problem(path, field, f'expected a list of language codes or "*", got {shown(value)}'))
        return ()
    try:
        return tuple(dict.fromkeys(parse_language(v, available) for v in value))
    except ValueError as exc:
        problems.append(Problem(path, field, str(exc)))
        return ()


def _kit_sections(path: str, field: str, value: Any, kits: Sequence[Kit], problems: list[Problem]) -> tuple[str, ...]:
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, field, f"expected the name of a kit in handouts.toml, got {shown(value)}"))
        return ()
    found = next((kit for kit in kits if kit_key(kit.name) == kit_key(value)), None)
    if found is not None:
        return found.sections
    if not kits:
        problems.append(Problem(path, field, f"unknown kit {shown(value)}: handouts.toml names no [kits]"))
        return ()
    close = closest(kit_key(value), [kit_key(kit.name) for kit in kits])
    hint = "".join(f" (did you mean {kit.name!r}?)" for kit in kits if kit_key(kit.name) == close)
    listed = ", ".join(f'"{kit.name}"' for kit in kits)
    problems.append(Problem(path, field, f"unknown kit {shown(value)}{hint}; kits: {listed}"))
    return ()


def _output(path: str, output: Any, problems: list[Problem], field: str = "output") -> Any:
    if not isinstance(output, str) or not output.strip():
        problems.append(Problem(path, field, f"expected a folder path, got {shown(output)}"))
    elif (reason := char_problem(output)) is not None:
        # A NUL or a newline in a folder name fails or garbles every message that names an output.
        problems.append(Problem(path, field, reason))
    return output


def _education(path: str, value: Any, output: Any, problems: list[Problem]) -> str | None:
    """Check the OpenEMR education folder: a folder path (relative to where the command runs, as output is)."""
    before = len(problems)
    _output(path, value, problems, "openemr_education")
    if len(problems) > before:
        return None
    # Each folder keeps a manifest.json of its own: one folder for both would mix the two.
    if isinstance(output, str) and os.path.normpath(value) == os.path.normpath(output):
        problems.append(
            Problem(path, "openemr_education", f"is the output folder {shown(output)}; give a folder of its own")
        )
        return None
    return str(value)


def read_jobs(
    path: Path,
    *,
    brands: Sequence[str],
    languages: Sequence[str],
    sections: Sequence[str] = SECTION_ORDER,
    kits: Sequence[Kit] = (),
) -> tuple[JobFile | None, list[Problem]]:
    """Read a job file from disk and parse it, reporting a file that cannot be read as a problem."""
    # A job file may live anywhere, so no project root: but it must be a regular file of sane size.
    text, problems = read_text(path, str(path), cap=TOML_CAP, root=None)
    if text is None:
        return None, problems
    return parse_jobs(str(path), text, brands=brands, languages=languages, sections=sections, kits=kits)


# Outputs one job file may ask for: a health system's full set is a few thousand; more is a mistake
# (or an attack) that would take hours and gigabytes before the first PDF.
MAX_OUTPUTS = 20_000


def parse_jobs(
    path: str,
    text: str,
    *,
    brands: Sequence[str],
    languages: Sequence[str],
    sections: Sequence[str] = SECTION_ORDER,
    kits: Sequence[Kit] = (),
) -> tuple[JobFile | None, list[Problem]]:
    """Parse a job file's TOML, checking every handout against the project's brands, languages and kits."""
    data, problems = parse_toml(path, text)
    if data is None:
        return None, problems
    for key in sorted(set(data) - {"output", "handout", "openemr_education"}):
        problems.append(
            Problem(path, key_name(key), "unknown field; expected output, openemr_education and [[handout]] tables")
        )
    output = _output(path, data.get("output", DEFAULT_OUTPUT), problems)
    education = _education(path, data["openemr_education"], output, problems) if "openemr_education" in data else None
    items = data.get("handout", [])
    if not isinstance(items, list) or not items:
        problems.append(Problem(path, "handout", "expected at least one [[handout]] table"))
        items = []
    specs = []
    for where, table in tables(path, "handout", items, JOB_FIELDS, "expected a table", problems):
        name = table.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            problems.append(
                Problem(path, f"{where}.name", f"expected a file stem of letters, digits, - and _, got {shown(name)}")
            )
        flags = {flag: table.get(flag, False) for flag in ("release", "appendix")}
        for flag, value in flags.items():
            if not isinstance(value, bool):
                problems.append(Problem(path, f"{where}.{flag}", f"expected true or false, got {shown(value)}"))
        before = len(problems)
        if "kit" in table and "sections" in table:
            problems.append(Problem(path, f"{where}.kit", "a kit names the sections; give kit or sections, not both"))
            chosen: tuple[str, ...] = ()
        elif "kit" in table:
            # A kit is its sections from here on: the plan and the manifest see only those.
            chosen = _kit_sections(path, f"{where}.kit", table["kit"], kits, problems)
        else:
            chosen = _strings(path, f"{where}.sections", table.get("sections", "*"), sections, problems)
        spec = JobSpec(
            name=str(name),
            sections=chosen,
            brands=_strings(path, f"{where}.brands", table.get("brands", "*"), brands, problems),
            languages=_languages(
                path, f"{where}.languages", table.get("languages", [BASE_LANGUAGE]), languages, problems
            ),
            layouts=_strings(
                path, f"{where}.layouts", table.get("layouts", ["letter"]), list(PATIENT_LAYOUTS), problems
            ),
            release=bool(flags["release"]),
            appendix=bool(flags["appendix"]),
        )
        if len(problems) == before:
            specs.append(spec)
    total = sum(len(s.brands) * len(s.languages) * len(s.layouts) for s in specs)
    if total > MAX_OUTPUTS:
        # Counted before anything is expanded: brands = "*" over hundreds of brands could ask for millions.
        problems.append(Problem(path, "handout", f"asks for {total:,} outputs; at most {MAX_OUTPUTS:,} per job file"))
        specs = []
    seen: dict[str, str] = {}
    for spec in specs:
        for output_ in expand_one(spec):
            if output_.key in seen:
                first = seen[output_.key]
                problems.append(
                    Problem(
                        path, "handout", f"{output_.key} is written twice, by {shown(first)} and {shown(spec.name)}"
                    )
                )
                break
            seen[output_.key] = spec.name
    if problems:
        return None, problems
    return JobFile(output=str(output), handouts=tuple(specs), openemr_education=education), []


def expand_one(spec: JobSpec) -> list[Output]:
    """Expand one job into an output for every brand x language x layout."""
    return [
        Output(
            key=f"{brand}/{language}/{spec.name}-{layout}.pdf",
            name=spec.name,
            sections=spec.sections,
            brand=brand,
            language=language,
            layout=layout,
            release=spec.release,
            appendix=spec.appendix,
        )
        for brand in spec.brands
        for language in spec.languages
        for layout in spec.layouts
    ]


def expand(jobs: JobFile) -> list[Output]:
    """Expand every handout of a job file, in file order."""
    return [output for spec in jobs.handouts for output in expand_one(spec)]


RECORD_LAYOUT = "record"


def record_outputs(outputs: list[Output], order: Sequence[str] = SECTION_ORDER) -> list[Output]:
    """Return one review record per brand and language of a batch, beside its manifest.

    Each lists every section the batch prints in that language, so the clinic's document
    control shows exactly what went out.
    """
    used: dict[tuple[str, str], set[str]] = {}
    for output in outputs:
        used.setdefault((output.brand, output.language), set()).update(output.sections)
    return [
        Output(
            key=f"review-record-{brand}-{language}.pdf",
            name="review-record",
            sections=tuple(s for s in order if s in ids),
            brand=brand,
            language=language,
            layout=RECORD_LAYOUT,
            release=False,
        )
        for (brand, language), ids in used.items()
    ]
