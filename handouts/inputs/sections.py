"""Section files: read a language's content, check front matter and Markdown, and build Section models."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..codes import CODE_SYSTEMS, Codes, code_problem, normalized_code
from ..dates import add_months
from ..errors import Problem, errors
from ..models import BASE_LANGUAGE, Reviewer, Section, Source
from ..project import Limits, Project
from .fields import (
    SEMVER_RE,
    URL_RE,
    char_problem,
    date_field,
    decode,
    did_you_mean,
    key_name,
    markdown_char_problem,
    person_text,
    person_text_problem,
    shown,
    shown_text,
    tables,
    text_field,
    unknown_fields,
)
from .files import FILE_CAP, SECTION_CAP, list_folder, read_bytes, shown_path
from .frontmatter import split_front_matter

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
    "codes",
    "keywords",
)


# Each section offers page 1 up to this many key points; the box takes 3 to 5 in all.
MAX_SECTION_KEY_POINTS = 3


# Keywords are a few plain words or names an EHR may send (Suboxone, naloxone), not a second text.
MAX_KEYWORDS, MAX_KEYWORD_LENGTH = 30, 60


REQUIRED_SECTION_FIELDS = ("id", "title", "version", "language", "status", "last_reviewed", "sources")


FINGERPRINT_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _reviewers(path: str, value: Any, problems: list[Problem]) -> tuple[Reviewer, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(Problem(path, "reviewers", "expected a list of {name, credentials, role}"))
        return ()
    reviewers = []
    fields = ("name", "credentials", "role")
    for where, item in tables(path, "reviewers", value, fields, "expected name, credentials and role", problems):
        name = _person(path, f"{where}.name", item.get("name"), problems)
        credentials = _person(path, f"{where}.credentials", item.get("credentials"), problems)
        role = item.get("role", "")
        reason = f"expected text, got {shown(role)}" if not isinstance(role, str) else char_problem(role.strip())
        if reason is not None:
            problems.append(Problem(path, f"{where}.role", reason))
            role = ""
        reviewers.append(Reviewer(name, credentials, role.strip()))
    return tuple(reviewers)


def _person(path: str, field: str, value: Any, problems: list[Problem]) -> str:
    # As approve writes it: NFKC, one script, no hidden characters, short enough for the About box.
    text = person_text(text_field(path, field, value, problems))
    reason = person_text_problem(text) if text else None
    if reason is not None:
        problems.append(Problem(path, field, reason))
        return ""
    return text


def _sources(path: str, value: Any, problems: list[Problem]) -> tuple[Source, ...]:
    if not isinstance(value, list) or not value:
        problems.append(Problem(path, "sources", "expected a list of at least one {title, url}"))
        return ()
    sources = []
    for where, item in tables(path, "sources", value, ("title", "url"), "expected title and url", problems):
        title = text_field(path, f"{where}.title", item.get("title"), problems)
        url = item.get("url")
        if not isinstance(url, str) or not URL_RE.fullmatch(url):
            problems.append(Problem(path, f"{where}.url", f"expected an http(s) URL, got {shown(url)}"))
            url = ""
        elif (reason := char_problem(url)) is not None:
            problems.append(Problem(path, f"{where}.url", reason))
            url = ""
        sources.append(Source(title, url))
    return tuple(sources)


def _brief(path: str, value: Any, problems: list[Problem]) -> str | None:
    # Markdown like the body, so it may have several lines; its characters are checked as the body's are.
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, "brief", f"expected non-empty text, got {shown(value)}"))
        return ""
    return value.strip()


def _key_points(path: str, value: Any, problems: list[Problem]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SECTION_KEY_POINTS:
        problems.append(
            Problem(path, "key_points", f"expected a list of 1 to {MAX_SECTION_KEY_POINTS} short sentences")
        )
        return ()
    return tuple(text_field(path, f"key_points[{i}]", item, problems) for i, item in enumerate(value))


def _codes(path: str, meta: dict[str, Any], expected_id: str, language: str, problems: list[Problem]) -> Codes:
    if "codes" not in meta:
        return ()
    value = meta["codes"]
    if language != BASE_LANGUAGE:
        # One list for all languages: a translation's own could only drift from the English one.
        english = PurePosixPath(path).parent.parent / BASE_LANGUAGE / f"{expected_id}.md"
        problems.append(Problem(path, "codes", f"codes are declared once, in {english}, and apply to every language"))
        return ()
    if not isinstance(value, dict) or not value:
        message = f'expected code systems with their codes, like icd10cm: ["F11.*"], got {shown(value)}'
        problems.append(Problem(path, "codes", message))
        return ()
    names = tuple(CODE_SYSTEMS)
    found = []
    for key in sorted(value, key=shown):
        if key not in CODE_SYSTEMS:
            hint = did_you_mean(key, names) if isinstance(key, str) else ""
            message = f"unknown code system{hint}; expected one of {', '.join(names)}"
            problems.append(Problem(path, f"codes.{key_name(key)}", message))
            continue
        where, example = f"codes.{key}", CODE_SYSTEMS[key].example
        codes = value[key]
        if not isinstance(codes, list):
            problems.append(Problem(path, where, f'expected a list of codes, like ["{example}"], got {shown(codes)}'))
            continue
        if not codes:
            problems.append(Problem(path, where, f"empty; list at least one code, or leave {key} out"))
            continue
        kept: dict[str, None] = {}
        for code in codes:
            if not isinstance(code, str):
                # YAML reads 75544000 unquoted as a number: a SNOMED CT or RxNorm code must be quoted.
                message = f'expected each code as quoted text, like "{example}", got {shown(code)}'
                problems.append(Problem(path, where, message))
                continue
            code = normalized_code(key, code)
            if (reason := code_problem(key, code)) is not None:
                problems.append(Problem(path, where, f"{shown(code)} {reason}"))
            elif code in kept:
                problems.append(Problem(path, where, f"{shown(code)} is listed twice"))
            else:
                kept[code] = None
        found.append((key, tuple(sorted(kept))))
    return tuple(sorted(found))


def _keywords(
    path: str, meta: dict[str, Any], expected_id: str, language: str, problems: list[Problem]
) -> tuple[str, ...]:
    if "keywords" not in meta:
        return ()
    value = meta["keywords"]
    if language != BASE_LANGUAGE:
        # As codes: one list for every language, so a translation's own cannot drift from it.
        english = PurePosixPath(path).parent.parent / BASE_LANGUAGE / f"{expected_id}.md"
        message = f"keywords are declared once, in {english}, and apply to every language"
        problems.append(Problem(path, "keywords", message))
        return ()
    if not isinstance(value, list) or not value:
        message = f'expected a list of words an EHR may send, like ["Suboxone", "naloxone"], got {shown(value)}'
        problems.append(Problem(path, "keywords", message))
        return ()
    if len(value) > MAX_KEYWORDS:
        problems.append(Problem(path, "keywords", f"{len(value)} keywords; at most {MAX_KEYWORDS}"))
        return ()
    kept: dict[str, str] = {}
    for i, item in enumerate(value):
        where = f"keywords[{i}]"
        if not isinstance(item, str) or not item.strip():
            problems.append(
                Problem(path, where, f'expected a word or name as text, like "Suboxone", got {shown(item)}')
            )
            continue
        keyword = " ".join(item.split())
        if (reason := char_problem(keyword)) is not None:
            problems.append(Problem(path, where, reason))
        elif len(keyword) > MAX_KEYWORD_LENGTH:
            message = f"{len(keyword)} characters; at most {MAX_KEYWORD_LENGTH} (a word or a name, not a sentence)"
            problems.append(Problem(path, where, message))
        elif not any(char.isalnum() for char in keyword):
            problems.append(Problem(path, where, f"{shown(keyword)} has no letter or digit to match"))
        elif keyword.casefold() in kept:
            problems.append(Problem(path, where, f"{shown(keyword)} is listed twice"))
        else:
            kept[keyword.casefold()] = keyword
    return tuple(kept.values())


def markdown_problems(path: str, field: str, text: str) -> list[Problem]:
    """Return what section Markdown may not contain: # headings, outside images, images without alt, bad boxes.

    Also text nested too deep to be printed, and links that print as text only (a warning; an
    error when the printed text would be a file path or a script).
    """
    # Imported here: a batch with nothing to rebuild never needs the Markdown parser.
    from ..markdown import (
        box_problems,
        image_target,
        images,
        is_outside,
        link_problems,
        nesting_problem,
        parsed,
        parser,
        picture_problems,
    )

    found = [Problem(path, field, message) for message in box_problems(text)]
    tokens = parsed(text)
    for token in tokens:
        if token.type == "heading_open" and token.tag in ("h1", "h2"):
            # A setext heading's markup is its underline, = or -.
            kind = repr(token.markup) if token.markup.startswith("#") else "an underlined heading"
            found.append(Problem(path, field, f"use ### for headings inside a section, found {kind} (the title is ##)"))
            break
    if (nesting := nesting_problem(tokens, parser().options["maxNesting"])) is not None:
        found.append(Problem(path, field, nesting))
    found += [Problem(path, field, message) for message in picture_problems(tokens)]
    no_alt = False
    for image in images(tokens):
        target = image_target(image)
        if is_outside(target):
            message = f"image {shown(target)} must be a file beside the section, not a URL or outside path"
            found.append(Problem(path, field, message))
        no_alt = no_alt or not image.content.strip()
    if no_alt:
        found.append(Problem(path, field, "an image has no alt text; write ![what it shows](file)"))
    found += [Problem(path, field, message, severity) for severity, message in link_problems(tokens)]
    return found


def _semver(path: str, field: str, value: Any, problems: list[Problem]) -> None:
    if not (isinstance(value, str) and SEMVER_RE.fullmatch(value)):
        problems.append(Problem(path, field, f"expected MAJOR.MINOR.PATCH like 1.2.0, got {shown_text(value)}"))


def _identity(
    path: str, meta: dict[str, Any], expected_id: str, expected_language: str, problems: list[Problem]
) -> tuple[str, Any]:
    section_id = meta.get("id")
    if "id" in meta and section_id != expected_id:
        problems.append(Problem(path, "id", f"expected {shown(expected_id)} (the file name), got {shown(section_id)}"))
    title = text_field(path, "title", meta.get("title"), problems) if "title" in meta else ""
    version = meta.get("version")
    if "version" in meta:
        _semver(path, "version", version, problems)
    language = meta.get("language")
    if "language" in meta and language != expected_language:
        problems.append(
            Problem(path, "language", f"expected {shown(expected_language)} (the folder), got {shown(language)}")
        )
    return title, version


def _review(
    path: str, meta: dict[str, Any], today: dt.date, limits: Limits, problems: list[Problem]
) -> tuple[Any, tuple[Reviewer, ...], dt.date | None, dt.date | None]:
    status = meta.get("status")
    if "status" in meta and status not in ("draft", "approved"):
        problems.append(Problem(path, "status", f"expected draft or approved, got {shown(status)}"))
    reviewers = _reviewers(path, meta.get("reviewers"), problems)
    if status == "approved" and not reviewers:
        problems.append(Problem(path, "reviewers", "an approved section needs at least one reviewer"))
    last = date_field(path, "last_reviewed", meta["last_reviewed"], problems) if "last_reviewed" in meta else None
    if last and last > today:
        problems.append(Problem(path, "last_reviewed", f"{last} is in the future"))
    next_due = None
    if meta.get("next_review_due") is not None:
        next_due = date_field(path, "next_review_due", meta["next_review_due"], problems)
        if next_due and last and next_due <= last:
            problems.append(Problem(path, "next_review_due", f"{next_due} is not after last_reviewed {last}"))
    elif last:
        next_due = add_months(last, limits.review_interval_months)
    return status, reviewers, last, next_due


def _translation(path: str, meta: dict[str, Any], expected_language: str, problems: list[Problem]) -> Any:
    translation_of = meta.get("translation_of")
    if expected_language == BASE_LANGUAGE and translation_of is not None:
        problems.append(Problem(path, "translation_of", "only translations have it; English is the original"))
    elif expected_language != BASE_LANGUAGE and translation_of is None:
        problems.append(Problem(path, "translation_of", "required: the English version this translates, like 1.0.0"))
    if translation_of is not None:
        _semver(path, "translation_of", translation_of, problems)
    return translation_of


def _approval(path: str, meta: dict[str, Any], expected_id: str, problems: list[Problem]) -> tuple[Any, Any]:
    approved_version = meta.get("approved_version")
    if approved_version is not None:
        _semver(path, "approved_version", approved_version, problems)
    fingerprint = meta.get("approved_fingerprint")
    if fingerprint is not None and not (isinstance(fingerprint, str) and FINGERPRINT_RE.fullmatch(fingerprint)):
        problems.append(
            Problem(path, "approved_fingerprint", f"expected sha256:<64 hex digits>, got {shown(fingerprint)}")
        )
    if (fingerprint is None) != (approved_version is None):
        message = "approved_version and approved_fingerprint come together, from approve"
        problems.append(Problem(path, "approved_version", message))
    if meta.get("status") == "approved" and fingerprint is None:
        message = f"approved without an approval record; run: generate.py approve {expected_id}"
        problems.append(Problem(path, "status", message))
    return approved_version, fingerprint


def section_from_text(
    path: str,
    text: str,
    *,
    expected_id: str,
    expected_language: str,
    today: dt.date,
    limits: Limits,
    markdown: bool = True,
) -> tuple[Section | None, list[Problem]]:
    """Build a Section from a content file's text, or return why it cannot be built.

    Without `markdown` the body and brief are not parsed: a batch that finds nothing to rebuild
    never loads the Markdown parser; `markdown_problems` checks them before a render.
    """
    meta, body, problems = split_front_matter(path, text)
    if meta is None:
        return None, problems
    problems += unknown_fields(path, meta, SECTION_FIELDS)
    problems += [Problem(path, key, "required field missing") for key in REQUIRED_SECTION_FIELDS if key not in meta]
    title, version = _identity(path, meta, expected_id, expected_language, problems)
    status, reviewers, last_reviewed, next_due = _review(path, meta, today, limits, problems)
    sources = _sources(path, meta["sources"], problems) if "sources" in meta else ()
    translation_of = _translation(path, meta, expected_language, problems)
    approved_version, fingerprint = _approval(path, meta, expected_id, problems)
    if not body.strip():
        problems.append(Problem(path, "body", "empty; write the section text below the front matter"))
    brief = _brief(path, meta.get("brief"), problems)
    for field_name, markdown_text in (("body", body), ("brief", brief or "")):
        if (reason := markdown_char_problem(markdown_text)) is not None:
            problems.append(Problem(path, field_name, reason))
    if markdown:
        # As the Section keeps them, so check parses each text once (readability reads the same tokens).
        problems += markdown_problems(path, "body", body.strip() + "\n")
        problems += markdown_problems(path, "brief", brief + "\n") if brief else []
    key_points = _key_points(path, meta.get("key_points"), problems)
    codes = _codes(path, meta, expected_id, expected_language, problems)
    keywords = _keywords(path, meta, expected_id, expected_language, problems)
    if errors(problems):
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
        codes=codes,
        keywords=keywords,
    )
    # Warnings (a link that prints as text) come with the section; check shows them.
    return section, problems


def section_markdown_problems(section: Section) -> list[Problem]:
    """Return what stops a loaded section's body and brief from rendering: errors only, not warnings."""
    brief = markdown_problems(section.path, "brief", section.brief) if section.brief else []
    return errors(markdown_problems(section.path, "body", section.body) + brief)


def section_images(project: Project, section: Section) -> Iterator[tuple[str, str, Path]]:
    """Yield (field, target as written, file) for each picture beside a section that its text shows."""
    from ..markdown import image_target, images, is_outside, parsed

    folder = (project.root / section.path).parent
    for field_name, text in (("body", section.body), ("brief", section.brief)):
        for target in dict.fromkeys(image_target(image) for image in images(parsed(text))):
            if target and not is_outside(target):  # markdown_problems names the others
                yield field_name, target, folder / target


def image_file_problems(project: Project, section: Section) -> list[Problem]:
    """Return why an image beside a section would not print: missing, not a regular file, too big, unreadable.

    Check runs this; a build leaves it to the renderer, which refuses what it may not read.
    """
    from ..images import raster_problem, svg_problem

    found = []
    for field_name, target, path in section_images(project, section):
        data, problems = read_bytes(path, "", cap=FILE_CAP, root=project.root)
        reasons = [p.message for p in problems]
        if data is not None:
            reason = svg_problem(data) if target.lower().endswith(".svg") else raster_problem(data)
            reasons += [reason] if reason else []
        found += [Problem(section.path, field_name, f"image {shown(target)}: {reason}") for reason in reasons]
    return found


def section_path(project: Project, language: str, section_id: str) -> str:
    """Return where a section's file is, as messages show it."""
    return shown_path(project, project.content_dir / language / f"{section_id}.md")


def languages(project: Project) -> list[str]:
    """Return the language folders under content/."""
    if not project.content_dir.is_dir():
        return []
    # A folder linked out of the project is listed: loading it says why it is refused.
    folders, _ = list_folder(project.content_dir, "content", project.root)
    return [p.name for p in folders if p.is_dir()]


@dataclass(frozen=True)
class LoadedSections:
    """A language's valid sections by id, and the problems found, by section id ("" for the language itself)."""

    sections: dict[str, Section] = field(default_factory=dict)
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    # Where each known section's file is (or would be), as messages show it.
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def all_problems(self) -> list[Problem]:
        """Return every problem, in file order."""
        return [p for found in self.problems.values() for p in found]


def load_sections(project: Project, language: str, today: dt.date, *, markdown: bool = True) -> LoadedSections:
    """Load and validate every section file of one language."""
    folder = project.content_dir / language
    order = project.sections.order
    loaded = LoadedSections(paths={i: section_path(project, language, i) for i in order})
    if not folder.is_dir():
        known = ", ".join(languages(project)) or "none"
        problem = Problem(
            shown_path(project, folder), "", f"no content for language {shown(language)}; available: {known}"
        )
        loaded.problems[""] = [problem]
        return loaded
    paths, found = list_folder(folder, shown_path(project, folder), project.root)
    if found:
        loaded.problems[""] = found
    for path in paths:
        if path.suffix != ".md":
            continue
        rel = shown_path(project, path)
        if path.stem not in order:
            message = (
                f"{shown(path.stem)} is not a section of this project{did_you_mean(path.stem, order)}; "
                f"declare it in sections in handouts.toml (declared: {', '.join(order)})"
            )
            # Filed under its own name: no handout can choose it, so it blocks none; check reports it.
            loaded.problems.setdefault(path.stem, []).append(Problem(rel, "id", message))
            continue
        data, found = read_bytes(path, rel, cap=SECTION_CAP, root=project.root)
        # Read with newline translation: a section's digest is the same whatever its line endings.
        text, found = (
            decode(rel, data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")) if data is not None else (None, found)
        )
        if text is not None:
            section, found = section_from_text(
                rel,
                text,
                expected_id=path.stem,
                expected_language=language,
                today=today,
                limits=project.limits,
                markdown=markdown,
            )
            if section is not None:
                loaded.sections[section.id] = section
        if found:
            loaded.problems[path.stem] = found
    return loaded
