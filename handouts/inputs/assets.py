"""Templates, styles and fonts: digests that say what changed, and fonts that WeasyPrint can use."""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
from pathlib import Path

from ..errors import Problem
from ..project import Project
from .files import FILE_CAP, FONT_CAP, layer_folders, list_folder, read_bytes, shown_path

FONT_SUFFIXES = (".ttf", ".otf", ".woff")
# A url() in a stylesheet, quoted or not: what a missing font or picture would be named by.
CSS_URL_RE = re.compile(r"""url\(\s*["']?([^"')]*)""")


def _files(project: Project, folder: Path, root: Path) -> tuple[list[Path], list[Problem]]:
    """List every file under a folder, each subfolder through the safe listing too."""
    paths, problems = list_folder(folder, shown_path(project, folder), root)
    files: list[Path] = []
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            found, more = _files(project, path, root)
            files += found
            problems += more
        else:
            files.append(path)
    return files, problems


def asset_files(project: Project) -> tuple[dict[str, Path], list[Problem]]:
    """Return every template, style and font file by its name (templates/..., styles/...), the project's first."""
    chosen: dict[str, Path] = {}
    problems: list[Problem] = []
    for kind, layers in (("templates", project.template_dirs), ("styles", project.style_dirs)):
        for folder in layer_folders(layers):
            paths, found = _files(project, folder, project.root_of(folder))
            problems += found
            for path in paths:
                chosen.setdefault(f"{kind}/{path.relative_to(folder).as_posix()}", path)
    return chosen, problems


def read_assets(project: Project, *, thorough: bool = False) -> tuple[dict[str, str], list[Problem]]:
    """Hash the templates, the stylesheets and the fonts, each group apart, and say which cannot be used.

    Each font is opened with fontTools: WeasyPrint would silently print a damaged one in another
    font. With `thorough` (check), every table of it is read too, and every file a stylesheet
    names by url() must be there.
    """
    groups: dict[str, list[tuple[str, bytes]]] = {"templates": [], "styles": [], "fonts": []}
    chosen, problems = asset_files(project)
    styles: list[tuple[str, bytes]] = []
    for name, path in sorted(chosen.items()):
        group = "fonts" if name.startswith("styles/fonts/") else name.split("/", 1)[0]
        where = shown_path(project, path)
        cap = FONT_CAP if group == "fonts" else FILE_CAP
        data, found = read_bytes(path, where, cap=cap, root=project.root_of(path))
        problems += found
        if data is not None:
            groups[group].append((where, data))
            if group == "styles":
                styles.append((name, data))
            if group == "fonts" and path.suffix.lower() in FONT_SUFFIXES:
                problems += font_problems(where, data, thorough=thorough)
    if thorough:
        # A build already fails cleanly on a missing font ("cannot load stylesheets"); check says it first.
        # Names, not places: a project's own stylesheet may use the tool's fonts.
        problems += missing_url_problems(styles, set(chosen))
    digests = {}
    for group, files in groups.items():
        digest = hashlib.sha256()
        for where, data in files:
            digest.update(where.encode() + b"\0")
            digest.update(hashlib.sha256(data).digest())
        digests[group] = digest.hexdigest()
    return digests, problems


def missing_url_problems(stylesheets: list[tuple[str, bytes]], present: set[str]) -> list[Problem]:
    """Return each relative url() of a stylesheet that names no file: a font WeasyPrint would replace unseen."""
    found = []
    for where, data in stylesheets:
        if not where.endswith(".css"):
            continue
        folder = posixpath.dirname(where)
        for match in CSS_URL_RE.finditer(data.decode("utf-8", "replace")):
            target = match[1].strip()
            relative = target and ":" not in target and not target.startswith(("#", "/"))
            if relative and posixpath.normpath(posixpath.join(folder, target)) not in present:
                found.append(Problem(where, "", f"url({target}) names no file of the project"))
    return found


def font_problems(where: str, data: bytes, *, thorough: bool = False) -> list[Problem]:
    """Return why a font file cannot be used: not a font, cut short, or (with `thorough`) a damaged table."""
    from fontTools.ttLib import TTFont

    # A font with the same bytes decompiles the same: a server checks its project after every edit,
    # and reading every table of the Chinese fonts takes a third of a second.
    key = hashlib.sha256(data).hexdigest() if thorough else ""
    if key in _SOUND_FONTS:
        return []
    try:
        font = TTFont(io.BytesIO(data), lazy=True)
        for tag, entry in font.reader.tables.items():
            if entry.offset + entry.length > len(data):
                return [Problem(where, "", f"not a usable font: its {tag.strip()} table is cut short")]
        if thorough:
            for tag in font.reader.tables:
                font[tag]  # reading a table decompiles it, which is the check
            font.getBestCmap()
    # fontTools reports damage with whatever its parser hit: TTLibError, struct.error, ValueError,
    # AssertionError, IndexError and more. Any of them means WeasyPrint cannot use the font either.
    except Exception as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return [Problem(where, "", f"not a usable font: {reason}")]
    if thorough:
        _SOUND_FONTS.add(key)
    return []


# Fonts (by content) this process has read whole without a problem.
_SOUND_FONTS: set[str] = set()


def combine_digests(digests: dict[str, str]) -> str:
    """Fold named digests into one, independent of their order."""
    return hashlib.sha256(repr(sorted(digests.items())).encode()).hexdigest()
