"""Brands: read a brand folder, check its fields, colors and logo, and build the Brand model."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from ..color import BODY_TEXT_RATIO, LARGE_TEXT_RATIO, WHITE, contrast_ratio
from ..errors import Problem
from ..models import Brand
from ..project import Project
from .fields import URL_RE, is_valid_id, text_field, unknown_fields

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
)


# Fields a brand may give per language, in a table named after the language: [es]
LOCALIZABLE_BRAND_FIELDS = ("name", "short_name", "address", "hours", "note", "logo_alt", "qr_url", "sources_url")


LANGUAGE_RE = re.compile(r"^[a-z]{2}$")


REQUIRED_BRAND_FIELDS = ("name", "short_name", "phone", "address", "website", "colors", "logo_alt")


COLOR_FIELDS = ("primary", "accent")


HEX_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# Any reference in an SVG logo: href, xlink:href, src or url(...); only #fragments and data: may stay.
SVG_REFERENCE_RE = re.compile(rb"""(?:href|src)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)|@import\s+["']([^"']*)""")


# How each brand color is used, so how much contrast against white it needs.
COLOR_USES = {
    "primary": (BODY_TEXT_RATIO, "body-size text (white on it, and it on white)"),
    "accent": (LARGE_TEXT_RATIO, "heading bars and large text"),
}


def _localized(
    path: str, data: Mapping[str, Any], problems: list[Problem]
) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Read the per-language tables ([es]) and report any other unknown field."""
    localized = []
    for key in sorted(set(data) - set(BRAND_FIELDS)):
        if LANGUAGE_RE.match(key) and isinstance(data[key], dict):
            fields = data[key]
            for name in sorted(set(fields) - set(LOCALIZABLE_BRAND_FIELDS)):
                problems.append(
                    Problem(path, f"{key}.{name}", f"not translatable; expected {', '.join(LOCALIZABLE_BRAND_FIELDS)}")
                )
            translated = tuple(
                (name, text_field(path, f"{key}.{name}", fields[name], problems))
                for name in LOCALIZABLE_BRAND_FIELDS
                if name in fields
            )
            localized.append((key, translated))
            continue
        problems.append(
            Problem(path, key, f"unknown field; expected one of {', '.join(BRAND_FIELDS)}, or a table like [es]")
        )
    return localized


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
            elif not (isinstance(value, str) and HEX_COLOR_RE.match(value)):
                problems.append(Problem(path, f"colors.{key}", f"expected a hex color like #1d4e89, got {value!r}"))
            else:
                needed, use = COLOR_USES[key]
                ratio = contrast_ratio(value, WHITE)
                if ratio < needed:
                    problems.append(
                        Problem(
                            path,
                            f"colors.{key}",
                            f"contrast with white is {ratio:.2f}:1; {use} needs at least {needed:g}:1 (WCAG AA)",
                        )
                    )
    return colors


def brand_from_data(
    path: str, data: Mapping[str, Any], *, brand_id: str, files: Mapping[str, bytes]
) -> tuple[Brand | None, list[Problem]]:
    """Build a Brand from parsed brand.toml data and the files of its folder."""
    problems: list[Problem] = []
    localized = _localized(path, data, problems)
    for key in REQUIRED_BRAND_FIELDS:
        if key not in data:
            problems.append(Problem(path, key, "required field missing"))
    values = {
        key: text_field(path, key, data[key], problems)
        for key in ("name", "short_name", "phone", "address", "website", "logo_alt", "qr_url", "sources_url")
        if key in data
    }
    note = data.get("note", "")
    if not isinstance(note, str):
        problems.append(Problem(path, "note", f"expected text, got {note!r}"))
        note = ""
    hours = data.get("hours", "")
    if not isinstance(hours, str):
        problems.append(Problem(path, "hours", f"expected text, got {hours!r}"))
        hours = ""
    for key in ("website", "qr_url", "sources_url"):
        if values.get(key) and not URL_RE.match(values[key]):
            problems.append(Problem(path, key, f"expected an http(s) URL, got {values[key]!r}"))
    for language, fields in localized:
        for key in ("qr_url", "sources_url"):
            url = dict(fields).get(key)
            if url and not URL_RE.match(url):
                problems.append(Problem(path, f"{language}.{key}", f"expected an http(s) URL, got {url!r}"))
    colors = _colors(path, data, problems)
    logo = data.get("logo", "logo.svg")
    if not isinstance(logo, str) or "/" in logo or "\\" in logo or ":" in logo or logo.startswith("."):
        problems.append(Problem(path, "logo", f"expected a file name inside the brand folder, got {logo!r}"))
    elif not logo.lower().endswith((".svg", ".png")):
        problems.append(Problem(path, "logo", f"expected an .svg or .png file, got {logo!r}"))
    elif logo not in files:
        problems.append(Problem(path, "logo", f"file {logo!r} not found in the brand folder"))
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
        ),
        [],
    )


def logo_problems(path: str, logo: str, data: bytes) -> list[Problem]:
    """Return why a logo file is not a self-contained SVG or a real PNG."""
    if logo.lower().endswith(".png"):
        if not data.startswith(PNG_SIGNATURE):
            return [Problem(path, "logo", f"{logo!r} is not a PNG image")]
        return []
    if b"<svg" not in data[:4096]:
        return [Problem(path, "logo", f"{logo!r} is not an SVG image")]
    for match in SVG_REFERENCE_RE.finditer(data):
        target = (match[1] or match[2] or match[3] or b"").decode("utf-8", "replace").strip()
        if target and not target.startswith(("#", "data:")):
            return [Problem(path, "logo", f"{logo!r} loads {target!r}; a logo must be self-contained")]
    return []


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
