"""Translation catalogs of template strings: one reader for check and for rendering."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import Problem
from ..models import BASE_LANGUAGE
from ..project import Limits, Project
from .fields import char_problem, decode, key_name, shown
from .files import TOML_CAP, layer_folders, list_folder, parse_toml, read_bytes, shown_path

PLACEHOLDER_RE = re.compile(r"\{[a-z_]+\}")


# The sentences of the catalogs a patient reads on page 1 and in "About this handout".
PATIENT_KEYS = (
    "purpose",
    "sample_banner_text",
    "sample_banner_example",
    "summary_sample",
    "summary_listed",
    "summary_approved",
    "summary_dates",
    "overdue_since",
    "disclaimer",
    "sources_ask",
    "sources_at",
    "sources_below",
)


def placeholders(text: str) -> set[str]:
    """Return the {names} a template string expects the templates to fill in."""
    return set(PLACEHOLDER_RE.findall(text))


def brace_problem(text: str) -> str | None:
    """Say why a template string holds a brace that is not a plain {name} placeholder, or None."""
    # Only {name} is filled in: str.format would also run {phone.__class__}, {phone[0]}, {phone!r}
    # and {phone:>99999999}, printing Python's insides or padding to gigabytes.
    if "{" in PLACEHOLDER_RE.sub("", text) or "}" in PLACEHOLDER_RE.sub("", text):
        return "a brace that is not part of a {name} placeholder; write placeholders exactly as en.toml does"
    return None


def fill(text: str, values: dict[str, str]) -> str:
    """Fill the {name} placeholders of a template string; raise ValueError on any other brace or name."""
    problem = brace_problem(text)
    if problem is not None:
        raise ValueError(problem)
    missing = placeholders(text) - {f"{{{name}}}" for name in values}
    if missing:
        raise ValueError(f"no value for {', '.join(sorted(missing))}; use the placeholders of en.toml")
    return PLACEHOLDER_RE.sub(lambda match: values[match[0][1:-1]], text)


def parse_catalog(path: str, data: bytes) -> tuple[dict[str, object] | None, list[Problem]]:
    """Parse one catalog file's bytes, or say why it cannot be read; `check` and the renderer both use this."""
    text, problems = decode(path, data)
    if text is None:
        return None, problems
    catalog, problems = parse_toml(path, text)
    if catalog is None:
        return None, problems
    # A catalog line is printed on every handout, the review line among them.
    problems = [
        Problem(path, key_name(key), reason)
        for key, value in catalog.items()
        if isinstance(value, str) and (reason := char_problem(value)) is not None
    ]
    return (None if problems else catalog), problems


def read_catalog(project: Project, path: Path) -> tuple[dict[str, object] | None, list[Problem]]:
    """Read and parse one catalog file through the one safe reader."""
    where = shown_path(project, path)
    data, problems = read_bytes(path, where, cap=TOML_CAP, root=project.root_of(path))
    return (None, problems) if data is None else parse_catalog(where, data)


def catalog_file_problems(project: Project, language: str) -> list[Problem]:
    """Return why a language's catalog, when there is one, cannot be used: a build refuses before rendering."""
    # The project's own catalog, else the tool's; a missing one is the renderer's to report.
    for folder in project.template_dirs:
        path = folder / "i18n" / f"{language}.toml"
        if os.path.lexists(path):
            return read_catalog(project, path)[1]
    return []


def read_catalogs(project: Project) -> tuple[dict[str, dict[str, object]], list[Problem]]:
    """Read every language's template strings, with a problem for each file that cannot be used."""
    catalogs: dict[str, dict[str, object]] = {}
    problems: list[Problem] = []
    paths: list[Path] = []
    for folder in layer_folders([folder / "i18n" for folder in project.template_dirs]):
        listed, more = list_folder(folder, shown_path(project, folder), project.root_of(folder))
        problems += more
        # The project's own catalog of a language stands in for the tool's.
        paths += [path for path in listed if path.name not in {p.name for p in paths}]
    for path in paths:
        if path.suffix != ".toml":
            continue
        catalog, found = read_catalog(project, path)
        problems += found
        if catalog is not None:
            catalogs[path.stem] = catalog
    return catalogs, problems


def catalog_problems(
    catalogs: dict[str, dict[str, object]], read_problems: list[Problem], content_languages: list[str]
) -> list[Problem]:
    """Check that every language has template strings, with exactly the keys and placeholders English has."""
    problems = list(read_problems)
    english = catalogs.get(BASE_LANGUAGE, {})
    for language in content_languages:
        if language not in catalogs and not any(p.path.endswith(f"/{language}.toml") for p in problems):
            problems.append(
                Problem(f"templates/i18n/{language}.toml", "", f"file not found; content/{language} needs it")
            )
    for language, strings in catalogs.items():
        where = f"templates/i18n/{language}.toml"
        for key in sorted(set(english) - set(strings)):
            problems.append(Problem(where, key_name(key), "missing; every language needs the keys of en.toml"))
        for key in sorted(set(strings) - set(english)):
            problems.append(Problem(where, key_name(key), "not in en.toml; English is the reference"))
        for key, value in strings.items():
            if not isinstance(value, str):
                problems.append(Problem(where, key_name(key), f"expected text, got {shown(value)}"))
            elif brace_problem(value):
                problems.append(Problem(where, key_name(key), str(brace_problem(value))))
            elif key in english and placeholders(value) != placeholders(str(english[key])):
                expected = ", ".join(sorted(placeholders(str(english[key])))) or "none"
                problems.append(Problem(where, key_name(key), f"placeholders differ from en.toml; expected {expected}"))
    return problems


def catalog_reading_problems(catalogs: dict[str, dict[str, object]], limits: Limits) -> list[Problem]:
    """Score the patient sentences of each catalog together, by its language's formula."""
    # Imported here: a build reads catalogs too, and a batch with nothing to rebuild never needs the Markdown parser.
    from ..quality import reading_problems

    found = []
    for language, strings in catalogs.items():
        # Names and dates fill the placeholders; they are not the catalog's words.
        text = "\n".join(f"- {PLACEHOLDER_RE.sub('', str(strings[k]))}" for k in PATIENT_KEYS if k in strings)
        if text:
            found += reading_problems(f"templates/i18n/{language}.toml", "patient text", text, language, limits)
    return found
