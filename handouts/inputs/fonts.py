"""Fonts the stylesheets declare: the characters each @font-face family can draw, read from its files."""

from __future__ import annotations

import functools
import posixpath
import struct
from pathlib import Path

import tinycss2

from ..project import Project
from .assets import CSS_URL_RE, FONT_SUFFIXES, asset_files
from .files import FILE_CAP, read_bytes, shown_path


def declared_fonts(project: Project) -> dict[str, frozenset[int]]:
    """Return each font family the stylesheets declare by @font-face, with the code points its files draw."""
    # A font or stylesheet that cannot be read is named by the asset checks; here it draws nothing.
    chosen, _ = asset_files(project)
    families: dict[str, set[int]] = {}
    for name, path in sorted(chosen.items()):
        if not (name.startswith("styles/") and name.endswith(".css")):
            continue
        data, _ = read_bytes(path, shown_path(project, path), cap=FILE_CAP, root=project.root_of(path))
        if data is None:
            continue
        for family, urls in _font_faces(data.decode("utf-8", "replace")):
            drawn = families.setdefault(family, set())
            for url in urls:
                # Resolved as WeasyPrint would from this stylesheet; a project's stylesheet may also
                # name the tool's fonts as if they were beside it (the fetcher's fallback).
                font = chosen.get(posixpath.normpath(posixpath.join(posixpath.dirname(name), url)))
                if font is not None and font.suffix.lower() in FONT_SUFFIXES:
                    drawn |= _code_points(str(font), *_stamp(font))
    return {family: frozenset(points) for family, points in families.items()}


def _font_faces(css: str) -> list[tuple[str, list[str]]]:
    """Return the family name and source URLs of each @font-face rule."""
    faces = []
    for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
        if rule.type != "at-rule" or rule.lower_at_keyword != "font-face" or rule.content is None:
            continue
        family, urls = "", []
        for item in tinycss2.parse_declaration_list(rule.content, skip_comments=True, skip_whitespace=True):
            if item.type != "declaration":
                continue
            if item.lower_name == "font-family":
                # Quoted ("Noto Sans") or not (Noto Sans: two idents, a space between).
                family = " ".join(t.value for t in item.value if t.type in ("string", "ident")).strip()
            elif item.lower_name == "src":
                # Quoted or not: the one pattern the asset checks read url()s with.
                urls = [url for url in CSS_URL_RE.findall(tinycss2.serialize(item.value)) if url]
        if family:
            faces.append((family, urls))
    return faces


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _code_points(path: str, size: int, mtime_ns: int) -> frozenset[int]:
    """Return the code points a font file maps to glyphs; nothing for one that cannot be read."""
    # Keyed by size and time: a server checks its project after every edit, and reading the
    # cmap of a Chinese font takes a tenth of a second.
    from fontTools.ttLib import TTFont, TTLibError

    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            cmap = font.getBestCmap() or {}
    except (OSError, TTLibError, AssertionError, KeyError, ValueError, struct.error):
        return frozenset()
    return frozenset(cmap)
