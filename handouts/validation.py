"""Check every content file and brand of a project, collecting all problems."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import mmap
import re
import struct
from collections.abc import Sequence
from pathlib import Path

from .errors import HandoutError, Problem
from .glyphs import brand_texts, catalog_texts, glyph_problems, section_texts
from .inputs.assets import read_assets
from .inputs.brands import brand_folders, brand_ids, load_brand, missing_toml_problem
from .inputs.catalogs import catalog_problems, catalog_reading_problems, read_catalogs
from .inputs.files import list_folder
from .inputs.fonts import declared_fonts
from .inputs.sections import image_file_problems, languages, load_sections, section_images, section_path
from .logos import logo_problems
from .models import BASE_LANGUAGE
from .project import BUILD_TIME_LIMIT, Project, language_fonts
from .quality import section_warnings
from .review import review_problems, translation_problems


def check_project(
    project: Project, today: dt.date, *, strict: bool = False, time_limit: float | None = None
) -> list[Problem]:
    """Return every problem in content and brands; with `strict`, warnings become errors."""
    # `time_limit`: seconds the SVG drawings may take (a server passes its own); DRAWING_TIME_LIMIT if None.
    problems: list[Problem] = []
    # The listings that find languages and brands: a folder linked out, huge, or with a garbled name.
    for folder, where in ((project.content_dir, "content"), (project.brands_dir, "brands")):
        problems += list_folder(folder, where, project.root)[1] if folder.is_dir() else []
    found_languages = languages(project)
    if BASE_LANGUAGE not in found_languages:
        problems.append(
            Problem("content", "", f"no {BASE_LANGUAGE}/ folder; every section is written in English first")
        )
    loaded = {language: load_sections(project, language, today) for language in found_languages}
    english = loaded[BASE_LANGUAGE].sections if BASE_LANGUAGE in loaded else {}
    for language, content in loaded.items():
        sections = content.sections
        problems += content.all_problems
        for section_id in project.sections.order:
            if section_id in sections or section_id in content.problems:
                continue
            path = section_path(project, language, section_id)
            if language == BASE_LANGUAGE:
                problems.append(Problem(path, "", "file not found; every section needs an English version"))
            elif section_id in project.sections.always:
                # Every handout prints it: without it no handout in this language can be built.
                message = f"file not found; every handout prints {section_id}, so none can be built in {language}"
                problems.append(Problem(path, "", message))
            elif section_id in english:
                # Only a build that needs this section fails; the others may go ahead.
                original = english[section_id].version
                problems.append(
                    Problem(path, "", f"file not found; no translation of {section_id} {original} yet", "warning")
                )
        for section in sections.values():
            problems += image_file_problems(project, section)
            problems += review_problems(section, today, project.limits)
            problems += section_warnings(section, project.limits)
            if language != BASE_LANGUAGE:
                problems += translation_problems(section, english, strict=False)
    # Templates, styles and fonts: files that cannot be read, and fonts WeasyPrint would replace unseen.
    problems += read_assets(project, thorough=True)[1]
    catalogs, unreadable = read_catalogs(project)
    problems += catalog_problems(catalogs, unreadable, found_languages)
    problems += catalog_reading_problems(catalogs, project.limits)
    fonts = declared_fonts(project)
    ids = brand_ids(project)
    if not ids:
        problems.append(Problem("brands", "", "no brand folder with a brand.toml"))
    problems += [missing_toml_problem(project, folder) for folder in brand_folders(project) if folder.name not in ids]
    drawings: dict[Path, tuple[str, str]] = {}  # SVG file -> the file and field to name when it cannot be drawn
    brands = {}
    for brand_id in ids:
        brand, found = load_brand(project, brand_id)
        problems += found
        if brand is not None:
            brands[brand_id] = brand
            drawings[project.brands_dir / brand_id / brand.logo] = (f"brands/{brand_id}/brand.toml", "logo")
    problems += logo_problems(project, brands)
    for language in found_languages:
        texts = [*section_texts(loaded[language].sections.values()), *catalog_texts(language, catalogs.get(language))]
        texts += [text for brand in brands.values() for text in brand_texts(brand, language)]
        problems += glyph_problems(language, texts, fonts, language_fonts(project, language))
    for content in loaded.values():
        for section in content.sections.values():
            drawings.update((path, (section.path, field)) for field, _, path in section_images(project, section))
    problems += drawing_problems(project, drawings, time_limit)
    if strict:
        problems = [dataclasses.replace(p, severity="error") for p in problems]
    # A catalog is a template too: one that cannot be read is named once, not by both readers.
    return sorted(dict.fromkeys(problems), key=lambda p: (p.path, p.field))


def drawing_problems(
    project: Project, drawings: dict[Path, tuple[str, str]], time_limit: float | None = None
) -> list[Problem]:
    """Draw each SVG picture with the renderer, as a build would; one that parses may still not draw."""
    limit = DRAWING_TIME_LIMIT if time_limit is None else time_limit
    from .output.pdf import load_weasyprint
    from .render_service import run_limited

    # A raster has no drawing step of its own; a missing picture is named by the input checks.
    svgs = [(path, where) for path, where in drawings.items() if path.suffix.lower() == ".svg" and path.is_file()]
    digests = {path: _drawing_key(path) for path, _ in svgs}
    waiting = [(path, where) for path, where in svgs if digests[path] is None or digests[path] not in _DRAWN]
    # The same drawing in five languages' folders is drawn once, and judged for each.
    copies: dict[str, list[tuple[Path, tuple[str, str]]]] = {}
    unique = []
    for path, where in waiting:
        key = digests[path]
        if key is not None and key in copies:
            copies[key].append((path, where))
        else:
            copies.setdefault(key or str(path), []).append((path, where))
            unique.append((path, where))
    waiting = unique
    if not waiting:
        return []
    # Loaded here, so each child starts warm and a next check in this process does not load it again.
    load_weasyprint()
    found: list[Problem] = []
    while waiting:
        # One child draws them all (a fork per picture would double the time of a check). It marks the
        # picture it is drawing, so the one that hangs or blows up can be named once the child is killed.
        with mmap.mmap(-1, DRAWING_MARK.size) as mark:
            try:
                reasons = run_limited(
                    functools.partial(_draw_all, [path for path, _ in waiting], project.readable_dirs, mark),
                    limit,
                )
            except HandoutError as exc:
                started = DRAWING_MARK.unpack(mark[:])[0]
                if not started:  # the child ended before its first picture: nothing to blame but the machine
                    path, (file, field) = waiting[0]
                    return [*found, Problem(file, field, f"pictures cannot be drawn: {exc}")]
                path, (file, field) = waiting[started - 1]
                found.append(Problem(file, field, f"{path.name} {_stopped(exc, limit)}"))
                # The others are drawn again in a fresh child: those done before were lost with this one.
                del waiting[started - 1]
                continue
        found += [
            Problem(file, field, f"{copy.name} cannot be drawn: {reason}")
            for (path, _), reason in zip(waiting, reasons, strict=True)
            if reason is not None
            for copy, (file, field) in copies[digests[path] or str(path)]
        ]
        drawn = (digests[path] for (path, _), reason in zip(waiting, reasons, strict=True) if reason is None)
        _DRAWN.update(key for key in drawn if key is not None)
        break
    return found


# Self-contained SVG drawings (by content) this process has drawn without a problem. A server checks
# its project again after every edit: an unchanged drawing draws the same, so it is not drawn again.
_DRAWN: set[str] = set()
# What lets an SVG draw another file (a linked image, a stylesheet): such a drawing is drawn every time.
_REFERENCE = re.compile(rb"href|src\s*=|url\s*\(|@import", re.IGNORECASE)
MAX_DRAWING_KEY_BYTES = 5 * 1024 * 1024


def _drawing_key(path: Path) -> str | None:
    """Return the content key of a self-contained SVG, or None for one that refers to other files."""
    try:
        if path.stat().st_size > MAX_DRAWING_KEY_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    # The search reads ASCII-compatible bytes only: a UTF-16 drawing could hide a link from it, so
    # one that is not plainly UTF-8 is drawn every time.
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") or _REFERENCE.search(data):
        return None
    return hashlib.sha256(data).hexdigest()


# The number (from 1) of the picture a drawing child has started on, shared with its parent.
DRAWING_MARK = struct.Struct("=Q")
# A picture gets the time a whole handout may take to render in `build`, which draws it too.
DRAWING_TIME_LIMIT = BUILD_TIME_LIMIT


def _draw_all(paths: list[Path], roots: Sequence[Path], mark: mmap.mmap) -> list[str | None]:
    from .output.pdf import picture_problem

    reasons: list[str | None] = []
    for number, path in enumerate(paths, 1):
        mark[:] = DRAWING_MARK.pack(number)
        try:
            reasons.append(picture_problem(path, roots))
        except MemoryError:  # the child's memory cap; the next picture starts with it freed
            reasons.append("it needs more memory than a render may use")
    return reasons


def _stopped(exc: HandoutError, limit: float) -> str:
    # The child was killed at the time limit (the parent stops waiting), or died without an answer.
    if str(exc).startswith("stopped:"):
        return f"cannot be drawn within {limit:g} seconds, the time a render may take"
    return f"cannot be drawn: {str(exc).removeprefix('cannot render: ')}"
