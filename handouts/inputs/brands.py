"""Brands: read a brand folder, check its fields, colors and logo, and build the Brand model."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from ..color import BODY_TEXT_RATIO, LARGE_TEXT_RATIO, WHITE, contrast_ratio, nearest_passing
from ..errors import Problem, errors
from ..images import ENTITIES_REFUSED, parse_svg, raster_problem
from ..models import Brand
from ..project import Project
from .fields import URL_RE, char_problem, closest, decode, is_valid_id, key_name, shown, text_field, unknown_fields
from .files import FILE_CAP, MIB, TOML_CAP, list_folder, parse_toml, read_bytes, shown_path, size_text
from .sections import languages

BRAND_FIELDS = (
    "name",
    "short_name",
    "phone",
    "address",
    "website",
    "qr_url",
    "logo",
    "logo_alt",
    "note",
    "hours",
    "sources_url",
    "colors",
    "example",
    "organization_ids",
)


# Fields a brand may give per language, in a table named after the language: [es]
LOCALIZABLE_BRAND_FIELDS = ("name", "short_name", "address", "hours", "note", "logo_alt", "qr_url", "sources_url")


# In a language's table, the English text each translated field translates, as a section records
# translation_of: translates.hours = "Monday to Friday, ...". check warns when the English has changed since.
TRANSLATES = "translates"


# How alike a misspelled key and a known one must be to suggest it (difflib's ratio). Two-letter
# language codes one letter apart ([sp] for [es]) score 0.5, below difflib's default of 0.6.
SUGGEST_TABLE, SUGGEST_FIELD = 0.5, 0.6


REQUIRED_BRAND_FIELDS = ("name", "short_name", "phone", "address", "website", "colors", "logo_alt")


COLOR_FIELDS = ("primary", "accent")


HEX_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# The short name starts the footer line of every page: longer, the line wraps past the margin.
MAX_SHORT_NAME = 40


# An HL7 OID: numbers joined by dots, the first arc 0, 1 or 2, no number with a leading zero.
OID_RE = re.compile(r"^[0-2](?:\.(?:0|[1-9][0-9]*))+$")
# HL7's data types let an OID (an II root) run to 64 characters; a clinic answers for a few organizations.
MAX_OID_LENGTH, MAX_ORGANIZATION_IDS = 64, 50
EXAMPLE_OID = "2.16.840.1.113883.19.5"


# All the files of one brand folder together: a logo or two and brand.toml.
BRAND_FOLDER_CAP = 20 * MIB


# Any reference in an SVG logo: href, xlink:href, src or url(...); only #fragments and data: may stay.
SVG_REFERENCE_RE = re.compile(rb"""(?:href|src)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)|@import\s+["']([^"']*)""")


# How each brand color is used, so how much contrast against white it needs.
COLOR_USES = {
    "primary": (BODY_TEXT_RATIO, "body-size text (white on it, and it on white)"),
    "accent": (LARGE_TEXT_RATIO, "heading bars and large text"),
}


def _localized(
    path: str, data: Mapping[str, Any], content_languages: Sequence[str], problems: list[Problem]
) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Read the per-language tables ([es]) and report any other unknown field."""
    localized = []
    for key in sorted(set(data) - set(BRAND_FIELDS)):
        if key not in content_languages:
            problems.append(_unknown_key(path, key, data[key], content_languages))
        elif not isinstance(data[key], dict):
            message = f"expected a table [{key}] of translated fields, got {shown(data[key])}"
            problems.append(Problem(path, key, message))
        else:
            fields = data[key]
            for name in sorted(set(fields) - {*LOCALIZABLE_BRAND_FIELDS, TRANSLATES}):
                problems.append(
                    Problem(path, f"{key}.{name}", f"not translatable; expected {', '.join(LOCALIZABLE_BRAND_FIELDS)}")
                )
            translated = tuple(
                (name, text_field(path, f"{key}.{name}", fields[name], problems))
                for name in LOCALIZABLE_BRAND_FIELDS
                if name in fields
            )
            localized.append((key, translated))
    return localized


def translated_field_problems(path: str, data: Mapping[str, Any], content_languages: Sequence[str]) -> list[Problem]:
    """Warn about each translated field whose English has changed since it was translated, or is not recorded."""
    found: list[Problem] = []
    for language in sorted(set(data) & set(content_languages)):
        fields = data[language]
        if not isinstance(fields, dict):
            continue  # said by the loader
        translates = fields.get(TRANSLATES, {})
        if not isinstance(translates, dict):
            message = (
                f'expected the English each field translates, like hours = "Monday to Friday", got {shown(translates)}'
            )
            found.append(Problem(path, f"{language}.{TRANSLATES}", message))
            continue
        for name in sorted(set(translates) - set(LOCALIZABLE_BRAND_FIELDS)):
            found.append(Problem(path, f"{language}.{TRANSLATES}.{key_name(name)}", "not a translatable field"))
        for name in LOCALIZABLE_BRAND_FIELDS:
            english = data.get(name)
            if name not in fields or not isinstance(english, str) or not english.strip():
                continue  # nothing translated, or no English to translate: nothing to go stale
            english, field = english.strip(), f"{language}.{name}"
            recorded = translates.get(name)
            where = f"{language}.{TRANSLATES}.{name}"
            if recorded is None:
                message = (
                    f"no record of which English {name} it translates; under [{language}], add "
                    f"{TRANSLATES}.{name} with the English {name} it translates"
                )
                found.append(Problem(path, field, message, "warning"))
            elif not isinstance(recorded, str):
                found.append(Problem(path, where, f"expected the English text, got {shown(recorded)}"))
            elif recorded.strip() != english:
                message = (
                    f"translates an older English {name} ({shown(recorded.strip())}); English is now {shown(english)}; "
                    f"translate the new English into {field}, then set {where} to it"
                )
                found.append(Problem(path, field, message, "warning"))
    return found


def _unknown_key(path: str, key: str, value: Any, content_languages: Sequence[str]) -> Problem:
    """Name an unknown key of brand.toml, with the known key it most likely misspells."""
    known = ", ".join(content_languages) or "none"
    # A table is either [colors] or a language's translations: a language with no content
    # folder, [sp] for [es], would otherwise never print and never be noticed.
    if isinstance(value, dict):
        reason = f"unknown field; a table is [colors] or a language with content: {known}"
        # Lowercased: [ES] is es written as --lang takes it, and difflib scores it 0 against es.
        close = closest(key.lower(), ["colors", *content_languages], SUGGEST_TABLE)
    else:
        fields = ", ".join(BRAND_FIELDS)
        reason = f"unknown field; expected one of {fields}, or a table for a language with content: {known}"
        close = closest(key, BRAND_FIELDS, SUGGEST_FIELD)
    return Problem(path, key_name(key), f"{reason}; did you mean {close}?" if close else reason)


def _colors(path: str, data: Mapping[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Read the brand colors, checking their contrast with white for the use each has."""
    colors = data.get("colors", {})
    if not isinstance(colors, dict):
        problems.append(Problem(path, "colors", "expected a table with primary and accent"))
        return {}
    if "colors" in data:
        problems += unknown_fields(path, colors, COLOR_FIELDS, "colors.")
        for key in COLOR_FIELDS:
            value = colors.get(key)
            if value is None:
                problems.append(Problem(path, f"colors.{key}", "required field missing"))
            elif not (isinstance(value, str) and HEX_COLOR_RE.fullmatch(value)):
                problems.append(
                    Problem(path, f"colors.{key}", f"expected a hex color like #1d4e89, got {shown(value)}")
                )
            else:
                problems += _contrast_problems(path, key, value)
    return colors


def _contrast_problems(path: str, key: str, value: str) -> list[Problem]:
    """Say when a brand color has too little contrast with white, and the nearest color that has enough."""
    needed, use = COLOR_USES[key]
    ratio = contrast_ratio(value, WHITE)
    if ratio >= needed:
        return []
    message = f"contrast with white is {ratio:.2f}:1; {use} needs at least {needed:g}:1 (WCAG AA)"
    # Black passes every ratio WCAG asks for, so there is always a darker color to suggest.
    nearest = nearest_passing(value, WHITE, needed)
    return [Problem(path, f"colors.{key}", f"{message}; nearest passing: {nearest}" if nearest else message)]


def _optional_text(path: str, key: str, value: Any, problems: list[Problem]) -> str:
    """Return an optional text field, or "" with a problem when it is not printable text."""
    reason = f"expected text, got {shown(value)}" if not isinstance(value, str) else char_problem(value.strip())
    if reason is not None:
        problems.append(Problem(path, key, reason))
        return ""
    return str(value)


def _organization_ids(path: str, data: Mapping[str, Any], problems: list[Problem]) -> tuple[str, ...]:
    """Read the HL7 OIDs of the organizations a brand answers for; each bad one is one problem."""
    if "organization_ids" not in data:
        return ()
    value, field = data["organization_ids"], "organization_ids"
    if not isinstance(value, list):
        problems.append(
            Problem(path, field, f'expected a list of HL7 OIDs, like ["{EXAMPLE_OID}"], got {shown(value)}')
        )
        return ()
    if not value:
        problems.append(Problem(path, field, f"empty; list at least one OID, or leave {field} out"))
        return ()
    if len(value) > MAX_ORGANIZATION_IDS:
        problems.append(Problem(path, field, f"{len(value)} OIDs; at most {MAX_ORGANIZATION_IDS}"))
        return ()
    kept: dict[str, None] = {}
    for oid in value:
        if not isinstance(oid, str):
            # TOML reads an unquoted 2.16 as a number, and 2.16.840 not at all: an OID must be quoted.
            message = f'expected each OID as quoted text, like "{EXAMPLE_OID}", got {shown(oid)}'
            problems.append(Problem(path, field, message))
            continue
        oid = oid.strip()
        if oid[:8].lower() == "urn:oid:":
            problems.append(Problem(path, field, f"{shown(oid)}: write the OID without urn:oid:, like {EXAMPLE_OID}"))
        elif not OID_RE.fullmatch(oid):
            message = (
                f"{shown(oid)} is not an HL7 OID (numbers joined by dots, the first 0, 1 or 2, "
                f"none starting with 0, like {EXAMPLE_OID})"
            )
            problems.append(Problem(path, field, message))
        elif len(oid) > MAX_OID_LENGTH:
            problems.append(Problem(path, field, f"an OID of {len(oid)} characters; at most {MAX_OID_LENGTH}"))
        elif oid in kept:
            problems.append(Problem(path, field, f"{shown(oid)} is listed twice"))
        else:
            kept[oid] = None
    return tuple(kept)


def _url_and_length_problems(
    path: str, values: Mapping[str, str], localized: list[tuple[str, tuple[tuple[str, str], ...]]]
) -> list[Problem]:
    """Check the URLs of a brand and of its translations, and that each short name fits the footer."""
    found = []
    every = [("", values), *((f"{language}.", dict(fields)) for language, fields in localized)]
    for prefix, fields in every:
        for key in ("website", "qr_url", "sources_url"):
            url = fields.get(key)
            if url and not URL_RE.fullmatch(url):
                found.append(Problem(path, f"{prefix}{key}", f"expected an http(s) URL, got {shown(url)}"))
        short_name = fields.get("short_name", "")
        if len(short_name) > MAX_SHORT_NAME:
            message = f"{len(short_name)} characters; at most {MAX_SHORT_NAME} fit the footer of every page"
            found.append(Problem(path, f"{prefix}short_name", message))
    return found


def brand_from_data(
    path: str,
    data: Mapping[str, Any],
    *,
    brand_id: str,
    files: Mapping[str, bytes],
    content_languages: Sequence[str],
) -> tuple[Brand | None, list[Problem]]:
    """Build a Brand from parsed brand.toml data, the files of its folder and the languages with content."""
    problems: list[Problem] = []
    localized = _localized(path, data, content_languages, problems)
    for key in REQUIRED_BRAND_FIELDS:
        if key not in data:
            problems.append(Problem(path, key, "required field missing"))
    values = {
        key: text_field(path, key, data[key], problems)
        for key in ("name", "short_name", "phone", "address", "website", "logo_alt", "qr_url", "sources_url")
        if key in data
    }
    note, hours = (_optional_text(path, key, data.get(key, ""), problems) for key in ("note", "hours"))
    example = data.get("example", False)
    if not isinstance(example, bool):
        problems.append(Problem(path, "example", f"expected true or false, got {shown(example)}"))
    organization_ids = _organization_ids(path, data, problems)
    problems += _url_and_length_problems(path, values, localized)
    colors = _colors(path, data, problems)
    logo = data.get("logo", "logo.svg")
    if not isinstance(logo, str) or "/" in logo or "\\" in logo or ":" in logo or logo.startswith("."):
        problems.append(Problem(path, "logo", f"expected a file name inside the brand folder, got {shown(logo)}"))
    elif not logo.lower().endswith((".svg", ".png")):
        problems.append(Problem(path, "logo", f"expected an .svg or .png file, got {shown(logo)}"))
    elif logo not in files:
        problems.append(Problem(path, "logo", f"file {shown(logo)} not found in the brand folder"))
    else:
        problems += logo_problems(path, logo, files[logo])
    if problems:
        return None, problems
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return (
        Brand(
            id=brand_id,
            name=values["name"],
            short_name=values["short_name"],
            phone=values["phone"],
            address=values["address"],
            website=values["website"],
            primary_color=colors["primary"].lower(),
            accent_color=colors["accent"].lower(),
            logo=logo,
            logo_alt=values["logo_alt"],
            note=note.strip(),
            qr_url=values.get("qr_url", values["website"]),
            digest=digest.hexdigest(),
            hours=hours.strip(),
            sources_url=values.get("sources_url", ""),
            localized=tuple(localized),
            example=example,
            organization_ids=organization_ids,
        ),
        [],
    )


def logo_problems(path: str, logo: str, data: bytes) -> list[Problem]:
    """Return why a logo file is not a self-contained SVG or a real PNG that WeasyPrint can load."""
    if logo.lower().endswith(".png"):
        if not data.startswith(PNG_SIGNATURE):
            return [Problem(path, "logo", f"{shown(logo)} is not a PNG image")]
        reason = raster_problem(data, "a PNG image")
        return [Problem(path, "logo", f"{shown(logo)} {reason}")] if reason else []
    root, reason = parse_svg(data)
    if root is None:
        # Bytes that are no SVG at all (a PNG renamed .svg) are called that; entities in any encoding are named.
        if reason != ENTITIES_REFUSED and b"<svg" not in data[:4096]:
            reason = "is not an SVG image"
        return [Problem(path, "logo", f"{shown(logo)} {reason}")]
    # Searched in the parsed drawing written out again, so a file in UTF-16 cannot hide a reference.
    for match in SVG_REFERENCE_RE.finditer(ET.tostring(root, encoding="utf-8")):
        target = (match[1] or match[2] or match[3] or b"").decode("utf-8", "replace").strip()
        if target and not target.startswith(("#", "data:")):
            return [Problem(path, "logo", f"{shown(logo)} loads {shown(target)}; a logo must be self-contained")]
    return []


def brand_folders(project: Project) -> list[Path]:
    """Return the folders under brands/: each one is a brand, whether or not its brand.toml is there."""
    folders, _ = list_folder(project.brands_dir, "brands", project.root) if project.brands_dir.is_dir() else ([], [])
    return [p for p in folders if p.is_dir()]


def brand_ids(project: Project) -> list[str]:
    """Return the ids of the brand folders under brands/: each folder holding a brand.toml."""
    # lexists, not is_file: a brand.toml that is a pipe or a link out is listed, and loading it says why not.
    return [p.name for p in brand_folders(project) if os.path.lexists(p / "brand.toml")]


def missing_toml_problem(project: Project, folder: Path) -> Problem:
    """Say that a brand folder has no brand.toml: left alone, it is no brand and no one would notice."""
    message = "no brand.toml; every folder under brands/ is a brand: add its brand.toml, or move the folder out"
    return Problem(shown_path(project, folder), "", message)


def brand_files(project: Project, folder: Path) -> tuple[dict[str, bytes], list[Problem]]:
    """Read the files of a brand folder (its logo, and all of them for the brand's digest), within the caps."""
    where = shown_path(project, folder)
    paths, problems = list_folder(folder, where, project.root)
    files: dict[str, bytes] = {}
    total = 0
    for path in paths:
        if path.name != "brand.toml" and path.is_dir() and not path.is_symlink():
            continue  # a subfolder is not part of the brand
        cap = TOML_CAP if path.name == "brand.toml" else FILE_CAP
        data, found = read_bytes(path, shown_path(project, path), cap=cap, root=project.root)
        problems += found
        if data is not None:
            files[path.name] = data
            total += len(data)
        if total > BRAND_FOLDER_CAP:
            message = f"more than {size_text(BRAND_FOLDER_CAP)} of files; keep brand.toml, the logo and little else"
            return files, [*problems, Problem(where, "", message)]
    return files, problems


def load_brand(project: Project, brand_id: str) -> tuple[Brand | None, list[Problem]]:
    """Load and validate one brand folder."""
    _, brand, problems = _load(project, brand_id, languages(project))
    return brand, problems


def _load(
    project: Project, brand_id: str, content_languages: Sequence[str]
) -> tuple[dict[str, Any] | None, Brand | None, list[Problem]]:
    """Load one brand folder, returning its parsed brand.toml too (None when it cannot be read)."""
    folder = project.brands_dir / brand_id
    toml_path = folder / "brand.toml"
    if not is_valid_id(brand_id) or not os.path.lexists(toml_path):
        # A folder without brand.toml is a brand half made: say what it lacks, not that there is none.
        if is_valid_id(brand_id) and folder.is_dir():
            return None, None, [missing_toml_problem(project, folder)]
        ids = brand_ids(project)
        if brand_id in ids:
            # Listed as a brand folder, but --brand could never name it (ids are taken in lowercase).
            message = "not a brand id; rename the folder with lowercase letters, digits and hyphens"
            return None, None, [Problem(f"brands/{brand_id}", "", message)]
        known = ", ".join(i for i in ids if is_valid_id(i)) or "none"
        return None, None, [Problem(f"brands/{brand_id}", "", f"brand not found; available: {known}")]
    rel = shown_path(project, toml_path)
    files, problems = brand_files(project, folder)
    if problems:
        return None, None, problems
    text, problems = decode(rel, files["brand.toml"])
    data, problems = parse_toml(rel, text) if text is not None else (None, problems)
    if data is None:
        return None, None, problems
    brand, problems = brand_from_data(rel, data, brand_id=brand_id, files=files, content_languages=content_languages)
    # Warnings, unless a record is malformed: a stale translation still prints, as a stale section does.
    translated = translated_field_problems(rel, data, content_languages)
    return data, None if errors(translated) else brand, problems + translated


@dataclass(frozen=True)
class BrandSummary:
    """One brand folder as `brands` lists it: the brand, or what its brand.toml says, and its problems."""

    id: str
    name: str  # "" when brand.toml gives no printable name
    example: bool
    problems: tuple[Problem, ...]


def brand_summaries(project: Project) -> list[BrandSummary]:
    """Load every folder under brands/, valid or not, for a listing."""
    found = []
    content_languages = languages(project)
    for folder in brand_folders(project):
        data, brand, problems = _load(project, folder.name, content_languages)
        if brand is not None:
            # A loaded brand may still have warnings: a translated field behind its English.
            found.append(BrandSummary(brand.id, brand.name, brand.example, tuple(problems)))
            continue
        # An invalid brand is still named as its brand.toml names it, when that is printable text.
        name = (data or {}).get("name")
        name = name.strip() if isinstance(name, str) and char_problem(name.strip()) is None else ""
        found.append(BrandSummary(folder.name, name, (data or {}).get("example") is True, tuple(problems)))
    return found
