"""Read content files and brands from disk into models; the only module that reads inputs."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from pathlib import Path

from .errors import HandoutError, Problem
from .models import BASE_LANGUAGE, SECTION_ORDER, Brand, Section
from .project import Limits, Project
from .validate import brand_from_data, is_valid_id, reading_problems, section_from_text


def languages(project: Project) -> list[str]:
    """Return the language folders under content/."""
    if not project.content_dir.is_dir():
        return []
    return sorted(p.name for p in project.content_dir.iterdir() if p.is_dir())


def load_sections(project: Project, language: str, today: dt.date) -> tuple[dict[str, Section], list[Problem]]:
    """Load and validate every section file of one language."""
    folder = project.content_dir / language
    where = project.relative(folder)
    if not folder.is_dir():
        known = ", ".join(languages(project)) or "none"
        return {}, [Problem(where, "", f"no content for language {language!r}; available: {known}")]
    sections: dict[str, Section] = {}
    problems: list[Problem] = []
    for path in sorted(folder.glob("*.md")):
        rel = project.relative(path)
        if path.stem not in SECTION_ORDER:
            problems.append(Problem(rel, "id", f"unknown section {path.stem!r}; known: {', '.join(SECTION_ORDER)}"))
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(rel, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
            continue
        section, found = section_from_text(
            rel, text, expected_id=path.stem, expected_language=language, today=today, limits=project.limits
        )
        problems.extend(found)
        if section is not None:
            sections[section.id] = section
    return sections, problems


def read_section_file(project: Project, language: str, section_id: str) -> tuple[Path, str, str]:
    """Read one section file as it is on disk, returning its path, the path as shown to users, and its text."""
    path = project.content_dir / language / f"{section_id}.md"
    rel = project.relative(path)
    if not path.is_file():
        raise HandoutError(f"{rel}: file not found")
    try:
        # Decoded from bytes, not read_text: approve rewrites the file and must keep its CRLF and BOM.
        return path, rel, path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HandoutError(f"{rel}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def placeholders(text: str) -> set[str]:
    """Return the {names} a template string expects the templates to fill in."""
    return set(PLACEHOLDER_RE.findall(text))


def read_catalogs(project: Project) -> tuple[dict[str, dict[str, object]], list[Problem]]:
    """Read every language's template strings, with a problem for each file that is not valid TOML."""
    catalogs: dict[str, dict[str, object]] = {}
    problems: list[Problem] = []
    for path in sorted((project.templates_dir / "i18n").glob("*.toml")):
        try:
            catalogs[path.stem] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(Problem(project.relative(path), "", f"invalid TOML: {exc}"))
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
            problems.append(Problem(where, key, "missing; every language needs the keys of en.toml"))
        for key in sorted(set(strings) - set(english)):
            problems.append(Problem(where, key, "not in en.toml; English is the reference"))
        for key, value in strings.items():
            if not isinstance(value, str):
                problems.append(Problem(where, key, f"expected text, got {value!r}"))
            elif key in english and placeholders(value) != placeholders(str(english[key])):
                expected = ", ".join(sorted(placeholders(str(english[key])))) or "none"
                problems.append(Problem(where, key, f"placeholders differ from en.toml; expected {expected}"))
    return problems


# The sentences of the catalogs a patient reads on page 1 and in "About this handout".
PATIENT_KEYS = (
    "purpose",
    "sample_banner_text",
    "summary_sample",
    "summary_listed",
    "summary_approved",
    "summary_dates",
    "overdue_since",
    "disclaimer",
    "sources_ask",
    "sources_at",
    "sources_below",
    "trifold_review",
)
PLACEHOLDER_RE = re.compile(r"\{[a-z_]+\}")


def catalog_reading_problems(catalogs: dict[str, dict[str, object]], limits: Limits) -> list[Problem]:
    """Score the patient sentences of each catalog together, by its language's formula."""
    found = []
    for language, strings in catalogs.items():
        # Names and dates fill the placeholders; they are not the catalog's words.
        text = "\n".join(f"- {PLACEHOLDER_RE.sub('', str(strings[k]))}" for k in PATIENT_KEYS if k in strings)
        if text:
            found += reading_problems(f"templates/i18n/{language}.toml", "patient text", text, language, limits)
    return found


def brand_ids(project: Project) -> list[str]:
    """Return the ids of the brand folders under brands/."""
    if not project.brands_dir.is_dir():
        return []
    return sorted(p.name for p in project.brands_dir.iterdir() if (p / "brand.toml").is_file())


def load_brand(project: Project, brand_id: str) -> tuple[Brand | None, list[Problem]]:
    """Load and validate one brand folder."""
    folder = project.brands_dir / brand_id
    toml_path = folder / "brand.toml"
    if not is_valid_id(brand_id) or not toml_path.is_file():
        known = ", ".join(brand_ids(project)) or "none"
        return None, [Problem(f"brands/{brand_id}", "", f"brand not found; available: {known}")]
    rel = project.relative(toml_path)
    try:
        data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return None, [Problem(rel, "", f"invalid TOML: {exc}")]
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    return brand_from_data(rel, data, brand_id=brand_id, files=files)


def asset_digests(project: Project) -> dict[str, str]:
    """Hash the templates, the stylesheets and the fonts, each group apart, to say what changed."""
    fonts = project.styles_dir / "fonts"
    groups: dict[str, list[Path]] = {"templates": [], "styles": [], "fonts": []}
    for folder in (project.templates_dir, project.styles_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            group = "templates" if folder == project.templates_dir else "fonts" if fonts in path.parents else "styles"
            groups[group].append(path)
    digests = {}
    for group, paths in groups.items():
        digest = hashlib.sha256()
        for path in paths:
            digest.update(project.relative(path).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        digests[group] = digest.hexdigest()
    return digests


def combine_digests(digests: dict[str, str]) -> str:
    """Fold named digests into one, independent of their order."""
    return hashlib.sha256(repr(sorted(digests.items())).encode()).hexdigest()
