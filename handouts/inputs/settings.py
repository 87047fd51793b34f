"""Read a project's settings from handouts.toml or pyproject.toml, and find the project itself."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..languages import is_language_code
from ..models import HELP_SECTION
from ..project import CONFIG_FILE, DEFAULT_BRAND, Kit, Limits, Project, Sections, kit_key
from .fields import char_problem, did_you_mean, is_valid_id, shown, unknown_fields
from .files import read_toml

# Each review and readability setting: (type it must have, smallest sensible value, largest).
SETTINGS: dict[str, tuple[type, float, float]] = {
    "review_interval_months": (int, 1, 60),
    "warning_window_days": (int, 0, 730),
    "max_fk_grade": (float, 1, 16),
    "max_smog": (float, 1, 20),
    "min_fernandez_huerta": (float, 0, 120),
    "min_words": (int, 0, 5000),
    "max_words": (int, 1, 5000),
    "max_brief_words": (int, 1, 5000),
}
PROJECT_SETTINGS = ("sections", "always", "default_brand", "kits", "languages")
# A language's fonts are a few families: its script's, and perhaps a second for its numbers.
MAX_LANGUAGE_FONTS = 4
# More sections than this is no longer a handout but a book; a typo'd list would make every build slow.
MAX_SECTIONS = 40
MAX_ID_LENGTH = 32
# A kit's name is a button's label on the counselor's page and a line in --help: a few words.
MAX_KIT_NAME = 60
MAX_KITS = 40


def limits_from_data(path: str, data: Mapping[str, Any]) -> tuple[Limits, list[Problem]]:
    """Build Limits from a settings table, returning every problem with it."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key, (kind, low, high) in SETTINGS.items():
        if key not in data:
            continue
        value = data[key]
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or (kind is int and not isinstance(value, int)):
            expected = "a whole number" if kind is int else "a number"
            problems.append(Problem(path, key, f"expected {expected}, got {shown(value)}"))
        elif not low <= value <= high:
            problems.append(Problem(path, key, f"expected {low:g} to {high:g}, got {shown(value)}"))
        else:
            values[key] = kind(value)
    limits = dataclasses.replace(Limits(), **values) if not problems else Limits()
    if not problems and limits.min_words > limits.max_words:
        problems.append(Problem(path, "min_words", f"{limits.min_words} is more than max_words {limits.max_words}"))
    return limits, problems


def _ids(path: str, key: str, value: Any, problems: list[Problem]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(path, key, f"expected a list of section ids, got {shown(value)}"))
        return None
    bad = [v for v in value if not is_valid_id(v)]
    if bad:
        problems.append(Problem(path, key, f"{shown(bad[0])} is not an id: lowercase letters, digits and hyphens"))
        return None
    long = [v for v in value if len(v) > MAX_ID_LENGTH]
    if long:
        # Ids make file names; a handout of a few long ones would not fit a file name's 255 bytes.
        problems.append(Problem(path, key, f"{shown(long[0])} is {len(long[0])} characters; at most {MAX_ID_LENGTH}"))
        return None
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        problems.append(Problem(path, key, f"{twice[0]!r} is listed twice"))
        return None
    return tuple(value)


def sections_from_data(path: str, data: Mapping[str, Any]) -> tuple[Sections, list[Problem]]:
    """Build the project's section list from a settings table, returning every problem with it."""
    problems: list[Problem] = []
    order = _ids(path, "sections", data.get("sections", list(Sections().order)), problems)
    always = _ids(path, "always", data.get("always", [HELP_SECTION]), problems)
    if order is not None:
        if not 1 < len(order) <= MAX_SECTIONS:
            problems.append(Problem(path, "sections", f"{len(order)} sections; expected 2 to {MAX_SECTIONS}"))
        if HELP_SECTION not in order:
            message = f"must include {HELP_SECTION}: every handout ends with where to get help"
            problems.append(Problem(path, "sections", message))
    if always is not None:
        if HELP_SECTION not in always:
            problems.append(Problem(path, "always", f"must include {HELP_SECTION}: every handout prints it"))
        # find-help missing from sections is said once, above.
        missing = [a for a in always if order is not None and a not in order and a != HELP_SECTION]
        if missing:
            problems.append(Problem(path, "always", f"{missing[0]!r} is not in sections"))
    if problems or order is None or always is None:
        return Sections(), problems
    return Sections(order=order, always=always), []


def kit_field(name: str) -> str:
    """Name a kit's setting in a message as TOML writes its key: kits."Starting buprenorphine"."""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'kits."{quoted}"' if quoted.isprintable() and len(name) <= MAX_KIT_NAME else f"kits.{shown(name)}"


def kits_from_data(path: str, data: Mapping[str, Any], sections: Sections) -> tuple[tuple[Kit, ...], list[Problem]]:
    """Build the project's kits (named sets of sections) from a settings table, returning every problem with them."""
    value = data.get("kits", {})
    if not isinstance(value, dict):
        return (), [Problem(path, "kits", f"expected a table of kit names and section lists, got {shown(value)}")]
    problems: list[Problem] = []
    if len(value) > MAX_KITS:
        problems.append(Problem(path, "kits", f"{len(value)} kits; at most {MAX_KITS}"))
    kits: list[Kit] = []
    seen: dict[str, str] = {}
    for name, ids in value.items():
        where = kit_field(name)
        reason = char_problem(name)
        if not name.strip() or reason is not None or len(name.strip()) > MAX_KIT_NAME:
            why = reason or (f"a kit's name is at most {MAX_KIT_NAME} characters" if name.strip() else "empty name")
            problems.append(Problem(path, where, why))
            continue
        if kit_key(name) in seen:
            problems.append(Problem(path, where, f"the same name as kit {seen[kit_key(name)]!r}"))
            continue
        seen[kit_key(name)] = name.strip()
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            problems.append(Problem(path, where, f"expected a list of section ids, got {shown(ids)}"))
            continue
        if not ids:
            problems.append(Problem(path, where, "empty; a kit names at least one section"))
            continue
        wanted = [i.strip().lower() for i in ids]
        unknown = [i for i in wanted if i not in sections.order]
        twice = sorted({i for i in wanted if wanted.count(i) > 1})
        if unknown:
            hint = did_you_mean(unknown[0], sections.order)
            declared = ", ".join(sections.order)
            problems.append(Problem(path, where, f"unknown section {unknown[0]!r}{hint}; sections are {declared}"))
        elif twice:
            problems.append(Problem(path, where, f"{twice[0]!r} is listed twice"))
        else:
            kits.append(Kit(name.strip(), tuple(wanted)))
    return tuple(kits), problems


def languages_from_data(
    path: str, data: Mapping[str, Any]
) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], list[Problem]]:
    """Read [languages."TAG"] fonts = [...]: the font families a project adds for a language."""
    value = data.get("languages", {})
    if not isinstance(value, dict):
        return (), [Problem(path, "languages", f'expected a table like [languages."th"], got {shown(value)}')]
    found: list[tuple[str, tuple[str, ...]]] = []
    problems: list[Problem] = []
    for tag, table in value.items():
        where = f"languages.{tag}" if is_language_code(tag) else f"languages.{shown(tag)}"
        if not is_language_code(tag):
            problems.append(
                Problem(path, where, "expected a language tag like th or pt-BR (the content folder's name)")
            )
            continue
        if not isinstance(table, dict):
            problems.append(Problem(path, where, f"expected a table with fonts = [...], got {shown(table)}"))
            continue
        problems += unknown_fields(path, table, ["fonts"], f"{where}.")
        fonts = table.get("fonts", [])
        names_ok = isinstance(fonts, list) and all(isinstance(f, str) and f.strip() for f in fonts)
        if not names_ok or not 0 < len(fonts) <= MAX_LANGUAGE_FONTS:
            expected = f"a list of 1 to {MAX_LANGUAGE_FONTS} font family names"
            problems.append(Problem(path, f"{where}.fonts", f"expected {expected}, got {shown(fonts)}"))
            continue
        bad = next((f for f in fonts if char_problem(f) is not None or '"' in f or "\\" in f), None)
        if bad is not None:
            problems.append(Problem(path, f"{where}.fonts", f"{shown(bad)} is not a font family name"))
            continue
        found.append((tag, tuple(f.strip() for f in fonts)))
    return tuple(found), problems


def project_from_data(root: Path, path: str, data: Mapping[str, Any]) -> tuple[Project, list[Problem]]:
    """Build a Project from its settings table, returning every problem with it."""
    problems = unknown_fields(path, data, [*PROJECT_SETTINGS, *SETTINGS], noun="setting")
    limits, found = limits_from_data(path, data)
    problems += found
    sections, found = sections_from_data(path, data)
    problems += found
    # Checked against the declared sections only once those are valid: else every kit would repeat their problem.
    kits, found = kits_from_data(path, data, sections) if not found else ((), [])
    problems += found
    fonts, found = languages_from_data(path, data)
    problems += found
    brand = data.get("default_brand", DEFAULT_BRAND)
    if not isinstance(brand, str) or not is_valid_id(brand):
        problems.append(Problem(path, "default_brand", f"expected a brand folder name, got {shown(brand)}"))
        brand = DEFAULT_BRAND
    return Project(root, limits, sections, brand, kits, fonts), problems


def load_project(root: Path) -> tuple[Project, list[Problem]]:
    """Read the settings from handouts.toml, else [tool.handouts] in pyproject.toml, else use defaults."""
    for name, table in ((CONFIG_FILE, None), ("pyproject.toml", ("tool", "handouts"))):
        path = root / name
        # lexists: a settings file that is a pipe, a folder or a broken link is refused, not skipped.
        if not os.path.lexists(path):
            continue
        data: Any
        data, problems = read_toml(path, name, root=root)
        if data is None:
            return Project(root), problems
        for key in table or ():
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if table and not data:
            continue  # a pyproject.toml without [tool.handouts] sets nothing
        where = name if table is None else f"{name} [tool.handouts]"
        if not isinstance(data, dict):
            return Project(root), [Problem(where, "", "expected a table of settings")]
        return project_from_data(root, where, data)
    return Project(root), []


def find_root(start: Path) -> Path | None:
    """Return the nearest folder from `start` upward that holds a handouts.toml, as mkdocs finds mkdocs.yml."""
    for folder in (start, *start.parents):
        if os.path.lexists(folder / CONFIG_FILE):
            return folder
    return None


def owned_by_another(root: Path) -> bool:
    """Tell whether a found project folder or its handouts.toml belongs to another user, as git asks of a repository."""
    # Its templates run as whoever builds: a handouts.toml left in /tmp or a shared parent folder would
    # otherwise take over every build started below it.
    try:
        return any(os.lstat(path).st_uid != os.getuid() for path in (root, root / CONFIG_FILE))
    except OSError:
        return False  # gone since it was found: loading it says so
