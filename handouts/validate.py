"""Turn raw front matter and brand data into models, returning every problem found."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from .color import BODY_TEXT_RATIO, LARGE_TEXT_RATIO, WHITE, contrast_ratio
from .dates import parse_date
from .errors import Problem
from .markdown import box_problems, checking_parser, image_target, images, is_outside
from .models import ALWAYS_INCLUDED, BASE_LANGUAGE, Brand, Reviewer, Section, Source
from .project import Limits
from .readability import SPANISH_WORD_RE, WORD_RE, fernandez_huerta, score, word_count

SECTION_FIELDS = (
    "id",
    "title",
    "version",
    "language",
    "status",
    "reviewers",
    "last_reviewed",
    "next_review_due",
    "sources",
    "brief",
    "key_points",
    "translation_of",
    "approved_version",
    "approved_fingerprint",
)
# Each section offers page 1 up to this many key points; the box takes 3 to 5 in all.
MAX_SECTION_KEY_POINTS = 3
REQUIRED_SECTION_FIELDS = ("id", "title", "version", "language", "status", "last_reviewed", "sources")
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

FINGERPRINT_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
SEMVER_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
HEX_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Any reference in an SVG logo: href, xlink:href, src or url(...); only #fragments and data: may stay.
SVG_REFERENCE_RE = re.compile(rb"""(?:href|src)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)|@import\s+["']([^"']*)""")
# How each brand color is used, so how much contrast against white it needs.
COLOR_USES = {
    "primary": (BODY_TEXT_RATIO, "body-size text (white on it, and it on white)"),
    "accent": (LARGE_TEXT_RATIO, "heading bars and large text"),
}
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class _FrontMatterLoader(yaml.SafeLoader):
    """A safe YAML loader that leaves dates as text, so bad dates get our message."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def split_front_matter(path: str, text: str) -> tuple[dict[str, Any] | None, str, list[Problem]]:
    """Split a section file into its front matter mapping and Markdown body."""
    # Some editors start a UTF-8 file with a byte order mark; it is not part of the text.
    match = re.match(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?(.*)\Z", text, re.DOTALL | re.MULTILINE)
    if not match:
        return (
            None,
            "",
            [Problem(path, "front matter", "expected a YAML block between '---' lines at the top")],
        )
    try:
        meta = yaml.load(match[1], Loader=_FrontMatterLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, "", [Problem(path, "front matter", f"invalid YAML{where}: {reason}")]
    if not isinstance(meta, dict):
        return None, "", [Problem(path, "front matter", "expected a mapping of fields")]
    return meta, match[2], []


def unknown_fields(
    path: str, data: Mapping[Any, Any], allowed: Sequence[str], prefix: str = "", noun: str = "field"
) -> list[Problem]:
    """Return one problem per key of `data` that is not an allowed field."""
    return [
        Problem(path, f"{prefix}{key}", f"unknown {noun}; expected one of {', '.join(allowed)}")
        for key in sorted(set(data) - set(allowed), key=str)
    ]


def _date(path: str, field: str, value: Any, problems: list[Problem]) -> dt.date | None:
    if not isinstance(value, str):
        problems.append(Problem(path, field, f"expected YYYY-MM-DD, got {str(value)!r}"))
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        problems.append(Problem(path, field, str(exc)))
        return None


def _text(path: str, field: str, value: Any, problems: list[Problem]) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, field, f"expected non-empty text, got {value!r}"))
        return ""
    return value.strip()


def _reviewers(path: str, value: Any, problems: list[Problem]) -> tuple[Reviewer, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(Problem(path, "reviewers", "expected a list of {name, credentials, role}"))
        return ()
    reviewers = []
    for i, item in enumerate(value):
        field = f"reviewers[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(path, field, "expected name, credentials and role"))
            continue
        problems += unknown_fields(path, item, ("name", "credentials", "role"), f"{field}.")
        name = _text(path, f"{field}.name", item.get("name"), problems)
        credentials = _text(path, f"{field}.credentials", item.get("credentials"), problems)
        role = item.get("role", "")
        if not isinstance(role, str):
            problems.append(Problem(path, f"{field}.role", f"expected text, got {role!r}"))
            role = ""
        reviewers.append(Reviewer(name, credentials, role.strip()))
    return tuple(reviewers)


def _sources(path: str, value: Any, problems: list[Problem]) -> tuple[Source, ...]:
    if not isinstance(value, list) or not value:
        problems.append(Problem(path, "sources", "expected a list of at least one {title, url}"))
        return ()
    sources = []
    for i, item in enumerate(value):
        field = f"sources[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(path, field, "expected title and url"))
            continue
        problems += unknown_fields(path, item, ("title", "url"), f"{field}.")
        title = _text(path, f"{field}.title", item.get("title"), problems)
        url = item.get("url")
        if not isinstance(url, str) or not URL_RE.match(url):
            problems.append(Problem(path, f"{field}.url", f"expected an http(s) URL, got {url!r}"))
            url = ""
        sources.append(Source(title, url))
    return tuple(sources)


def _key_points(path: str, value: Any, problems: list[Problem]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SECTION_KEY_POINTS:
        problems.append(
            Problem(path, "key_points", f"expected a list of 1 to {MAX_SECTION_KEY_POINTS} short sentences")
        )
        return ()
    return tuple(_text(path, f"key_points[{i}]", item, problems) for i, item in enumerate(value))


def markdown_problems(path: str, field: str, text: str) -> list[Problem]:
    """Return what section Markdown may not contain: # headings, outside images, images without alt, bad boxes."""
    found = [Problem(path, field, message) for message in box_problems(text)]
    tokens = checking_parser().parse(text)
    for token in tokens:
        if token.type == "heading_open" and token.tag in ("h1", "h2"):
            # A setext heading's markup is its underline, = or -.
            kind = repr(token.markup) if token.markup.startswith("#") else "an underlined heading"
            found.append(Problem(path, field, f"use ### for headings inside a section, found {kind} (the title is ##)"))
            break
    no_alt = False
    for image in images(tokens):
        target = image_target(image)
        if is_outside(target):
            found.append(
                Problem(path, field, f"image {target!r} must be a file beside the section, not a URL or outside path")
            )
        no_alt = no_alt or not image.content.strip()
    if no_alt:
        found.append(Problem(path, field, "an image has no alt text; write ![what it shows](file)"))
    return found


def add_months(day: dt.date, months: int) -> dt.date:
    """Return the same day `months` later, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has at least 28 days")


def section_from_text(
    path: str,
    text: str,
    *,
    expected_id: str,
    expected_language: str,
    today: dt.date,
    limits: Limits,
) -> tuple[Section | None, list[Problem]]:
    """Build a Section from a content file's text, or return why it cannot be built."""
    meta, body, problems = split_front_matter(path, text)
    if meta is None:
        return None, problems
    problems += unknown_fields(path, meta, SECTION_FIELDS)
    for key in REQUIRED_SECTION_FIELDS:
        if key not in meta:
            problems.append(Problem(path, key, "required field missing"))

    section_id = meta.get("id")
    if "id" in meta and section_id != expected_id:
        problems.append(Problem(path, "id", f"expected {expected_id!r} (the file name), got {section_id!r}"))
    title = _text(path, "title", meta.get("title"), problems) if "title" in meta else ""
    version = meta.get("version")
    if "version" in meta and not (isinstance(version, str) and SEMVER_RE.match(version)):
        problems.append(Problem(path, "version", f"expected MAJOR.MINOR.PATCH like 1.2.0, got {str(version)!r}"))
    language = meta.get("language")
    if "language" in meta and language != expected_language:
        problems.append(Problem(path, "language", f"expected {expected_language!r} (the folder), got {language!r}"))
    status = meta.get("status")
    if "status" in meta and status not in ("draft", "approved"):
        problems.append(Problem(path, "status", f"expected draft or approved, got {status!r}"))
    reviewers = _reviewers(path, meta.get("reviewers"), problems)
    if status == "approved" and not reviewers:
        problems.append(Problem(path, "reviewers", "an approved section needs at least one reviewer"))
    last_reviewed = _date(path, "last_reviewed", meta["last_reviewed"], problems) if "last_reviewed" in meta else None
    if last_reviewed and last_reviewed > today:
        problems.append(Problem(path, "last_reviewed", f"{last_reviewed} is in the future"))
    next_due = None
    if meta.get("next_review_due") is not None:
        next_due = _date(path, "next_review_due", meta["next_review_due"], problems)
        if next_due and last_reviewed and next_due <= last_reviewed:
            problems.append(Problem(path, "next_review_due", f"{next_due} is not after last_reviewed {last_reviewed}"))
    elif last_reviewed:
        next_due = add_months(last_reviewed, limits.review_interval_months)
    sources = _sources(path, meta["sources"], problems) if "sources" in meta else ()
    translation_of = meta.get("translation_of")
    if expected_language == BASE_LANGUAGE and translation_of is not None:
        problems.append(Problem(path, "translation_of", "only translations have it; English is the original"))
    elif expected_language != BASE_LANGUAGE and translation_of is None:
        problems.append(Problem(path, "translation_of", "required: the English version this translates, like 1.0.0"))
    if translation_of is not None and not (isinstance(translation_of, str) and SEMVER_RE.match(translation_of)):
        problems.append(
            Problem(path, "translation_of", f"expected MAJOR.MINOR.PATCH like 1.2.0, got {str(translation_of)!r}")
        )
    approved_version = meta.get("approved_version")
    if approved_version is not None and not (isinstance(approved_version, str) and SEMVER_RE.match(approved_version)):
        problems.append(
            Problem(path, "approved_version", f"expected MAJOR.MINOR.PATCH like 1.2.0, got {str(approved_version)!r}")
        )
    fingerprint = meta.get("approved_fingerprint")
    if fingerprint is not None and not (isinstance(fingerprint, str) and FINGERPRINT_RE.match(fingerprint)):
        problems.append(Problem(path, "approved_fingerprint", f"expected sha256:<64 hex digits>, got {fingerprint!r}"))
    if (fingerprint is None) != (approved_version is None):
        problems.append(
            Problem(path, "approved_version", "approved_version and approved_fingerprint come together, from approve")
        )
    if status == "approved" and fingerprint is None:
        problems.append(
            Problem(path, "status", f"approved without an approval record; run: generate.py approve {expected_id}")
        )
    if not body.strip():
        problems.append(Problem(path, "body", "empty; write the section text below the front matter"))
    problems += markdown_problems(path, "body", body)
    brief = meta.get("brief")
    if brief is not None:
        brief = _text(path, "brief", brief, problems)
        problems += markdown_problems(path, "brief", brief)
    key_points = _key_points(path, meta.get("key_points"), problems)
    if problems:
        return None, problems
    assert last_reviewed is not None and next_due is not None  # guaranteed by the checks above
    section = Section(
        id=expected_id,
        title=title,
        version=str(version),
        language=expected_language,
        status="approved" if status == "approved" else "draft",
        reviewers=reviewers,
        last_reviewed=last_reviewed,
        next_review_due=next_due,
        sources=sources,
        body=body.strip() + "\n",
        brief=brief + "\n" if brief else "",
        key_points=key_points,
        path=path,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        translation_of=translation_of,
        approved_version=approved_version,
        approved_fingerprint=fingerprint,
    )
    return section, []


def reading_problems(path: str, field: str, markdown: str, language: str, limits: Limits) -> list[Problem]:
    """Return reading-level warnings for patient text, by its language's formula."""
    if language == "es":
        ease = fernandez_huerta(markdown)
        if ease >= limits.min_fernandez_huerta:
            return []
        message = f"Fernandez-Huerta reading ease {ease:.1f} is under {limits.min_fernandez_huerta:g}"
        return [Problem(path, field, message, "warning")]
    reading, found = score(markdown), []
    if reading.fk_grade > limits.max_fk_grade:
        message = f"Flesch-Kincaid grade {reading.fk_grade:.1f} is over {limits.max_fk_grade:g}"
        found.append(Problem(path, field, message, "warning"))
    if reading.smog > limits.max_smog:
        found.append(Problem(path, field, f"SMOG {reading.smog:.1f} is over {limits.max_smog:g}", "warning"))
    return found


def section_warnings(section: Section, limits: Limits) -> list[Problem]:
    """Return length, reading-level and completeness warnings for a valid section."""
    path, found = section.path, []
    word_re = SPANISH_WORD_RE if section.language == "es" else WORD_RE
    words = word_count(section.body, word_re)
    if not limits.min_words <= words <= limits.max_words:
        found.append(Problem(path, "body", f"{words} words; keep it {limits.min_words}-{limits.max_words}", "warning"))
    found += reading_problems(path, "body", section.body, section.language, limits)
    if not section.brief:
        found.append(Problem(path, "brief", "missing; the tri-fold prints each section's brief", "warning"))
    else:
        brief_words = word_count(section.brief, word_re)
        if brief_words > limits.max_brief_words:
            message = f"{brief_words} words; keep it at most {limits.max_brief_words} so three fit a tri-fold"
            found.append(Problem(path, "brief", message, "warning"))
        found += reading_problems(path, "brief", section.brief, section.language, limits)
    if section.key_points:
        # Scored as the list page 1 shows when only this section is chosen.
        points = "\n".join(f"- {point}" for point in section.key_points)
        found += reading_problems(path, "key_points", points, section.language, limits)
    if not section.key_points and section.id != ALWAYS_INCLUDED:
        found.append(Problem(path, "key_points", "missing; page 1 shows the key points of each section", "warning"))
    interval = limits.review_interval_months
    if section.next_review_due > add_months(section.last_reviewed, interval):
        message = f"{section.next_review_due} is more than the {interval}-month review interval after last_reviewed"
        found.append(Problem(path, "next_review_due", message, "warning"))
    return found


def brand_from_data(
    path: str, data: Mapping[str, Any], *, brand_id: str, files: Mapping[str, bytes]
) -> tuple[Brand | None, list[Problem]]:
    """Build a Brand from parsed brand.toml data and the files of its folder."""
    problems: list[Problem] = []
    localized = []
    for key in sorted(set(data) - set(BRAND_FIELDS)):
        if LANGUAGE_RE.match(key) and isinstance(data[key], dict):
            fields = data[key]
            for name in sorted(set(fields) - set(LOCALIZABLE_BRAND_FIELDS)):
                problems.append(
                    Problem(path, f"{key}.{name}", f"not translatable; expected {', '.join(LOCALIZABLE_BRAND_FIELDS)}")
                )
            translated = tuple(
                (name, _text(path, f"{key}.{name}", fields[name], problems))
                for name in LOCALIZABLE_BRAND_FIELDS
                if name in fields
            )
            localized.append((key, translated))
            continue
        problems.append(
            Problem(path, key, f"unknown field; expected one of {', '.join(BRAND_FIELDS)}, or a table like [es]")
        )
    for key in REQUIRED_BRAND_FIELDS:
        if key not in data:
            problems.append(Problem(path, key, "required field missing"))
    values = {
        key: _text(path, key, data[key], problems)
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
    colors = data.get("colors", {})
    if not isinstance(colors, dict):
        problems.append(Problem(path, "colors", "expected a table with primary and accent"))
        colors = {}
    elif "colors" in data:
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


def is_valid_id(value: str) -> bool:
    """Tell whether a section or brand id is lowercase words joined by hyphens."""
    return bool(ID_RE.match(value))
