"""The one reader of project input files: regular files inside the project, read without blocking, size-capped."""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..project import Project
from .fields import decode

KIB = 1024
MIB = 1024 * KIB
# A section is a page or two of text: the longest shipped one is under 10 KB, and max_words at
# its largest (5000) is about 30 KB. markdown-it-py parses its slowest input ("![" repeated) at
# about 20 µs a character, so 64 KiB keeps the worst check near a second (bench/regex.py).
SECTION_CAP = 64 * KIB
# brand.toml, catalogs, handouts.toml, pyproject.toml and job files: the largest shipped is under
# 10 KB; tomllib parses 256 KiB of its slowest shapes in under a second.
TOML_CAP = 256 * KIB
# tomllib takes time and memory quadratic in the parts of one dotted key: `a.a.a...` with 80,000
# parts exhausts the memory. No key of ours has more than three parts.
MAX_DOTS_PER_LINE = 64
# A logo, a picture beside a section, a template or a stylesheet: printed a few inches wide, or
# read by WeasyPrint as a whole.
FILE_CAP = 5 * MIB
# Fonts: the bundled ones are under 100 KB each; a font with the Chinese, Japanese or Korean
# characters a future language needs is about 20 MB.
FONT_CAP = 32 * MIB
# Entries in one folder of the project; the shipped folders hold at most a dozen.
MAX_ENTRIES = 1000

# What a path is, when it is not a regular file, as messages say it.
KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def size_text(size: int) -> str:
    """Say a size cap in the unit people read it in: 256 KiB, 1 MiB."""
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    return f"{size // KIB} KiB" if size % KIB == 0 else f"{size:,} bytes"


def shown_path(project: Project, path: Path) -> str:
    """Return a project path as messages show it: relative to the root as written, a link not followed."""
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return project.relative(path)


def is_inside(path: Path, root: Path) -> bool:
    """Tell whether a path, every link on the way followed, lies under the root."""
    # os.path.realpath, unlike Path.resolve in 3.11, gives a result for a link loop; opening it then fails.
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _why_not(exc: OSError) -> str:
    reasons = {
        errno.ENOENT: "file not found",
        errno.ENOTDIR: "file not found",
        errno.ELOOP: "a symbolic link that loops or is followed too many times",
        errno.EACCES: "cannot read: permission denied",
        errno.EPERM: "cannot read: permission denied",
    }
    return reasons.get(exc.errno or 0, f"cannot read: {exc.strerror or exc}")


def _kind(mode: int) -> str | None:
    """Return what a file is when it is not a regular file, else None."""
    return None if stat.S_ISREG(mode) else KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_bytes(path: Path, where: str, *, cap: int, root: Path | None) -> tuple[bytes | None, list[Problem]]:
    """Read a regular file of at most `cap` bytes that, when `root` is given, lies inside it.

    A named pipe, device, socket or folder is refused before it is opened, and again from the
    open file (it may have changed in between): reading one could block or never end.
    """
    if root is not None and not is_inside(path, root):
        return None, [Problem(where, "", "a link to outside the project; every input must be a file inside it")]
    try:
        kind = _kind(os.stat(path).st_mode)
        if kind is not None:
            return None, [Problem(where, "", f"not a regular file but {kind}")]
        # O_NONBLOCK: were it swapped for a pipe since the stat, the open still returns at once.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        return None, [Problem(where, "", _why_not(exc))]
    try:
        info = os.fstat(fd)
        kind = _kind(info.st_mode)
        if kind is not None:
            return None, [Problem(where, "", f"not a regular file but {kind}")]
        data = b"" if info.st_size > cap else _read_at_most(fd, cap + 1)
    except OSError as exc:
        return None, [Problem(where, "", _why_not(exc))]
    finally:
        os.close(fd)
    if info.st_size > cap or len(data) > cap:
        return None, [Problem(where, "", f"{max(info.st_size, len(data)):,} bytes; at most {size_text(cap)}")]
    return data, []


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while total < limit:
        chunk = os.read(fd, min(limit - total, MIB))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_text(path: Path, where: str, *, cap: int, root: Path | None) -> tuple[str | None, list[Problem]]:
    """Read a file as strict UTF-8 text, saying at which byte it is not."""
    data, problems = read_bytes(path, where, cap=cap, root=root)
    if data is None:
        return None, problems
    return decode(where, data)


def parse_toml(where: str, text: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parse TOML text, turning every way tomllib can fail on hostile input into a problem."""
    if any(line.count(".") > MAX_DOTS_PER_LINE for line in text.splitlines()):
        return None, [Problem(where, "", f"a line with more than {MAX_DOTS_PER_LINE} dots; keys that deep are refused")]
    try:
        # A byte order mark, as some Windows editors write, is not part of the settings.
        return tomllib.loads(text.removeprefix("\ufeff")), []
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(where, "", f"invalid TOML: {exc}")]
    except RecursionError:
        # tomllib parses arrays and inline tables recursively: `a = [[[[...` exhausts the stack.
        return None, [Problem(where, "", "invalid TOML: arrays or tables nested too deep")]
    except ValueError:
        # int() refuses numbers of more than 4300 digits.
        return None, [Problem(where, "", "invalid TOML: a number too long to read")]


def read_toml(path: Path, where: str, *, root: Path | None) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Read and parse a TOML file through the one safe reader."""
    text, problems = read_text(path, where, cap=TOML_CAP, root=root)
    if text is None:
        return None, problems
    return parse_toml(where, text)


def layer_folders(layers: Sequence[Path]) -> list[Path]:
    """Return the layered folders to list, the project's first; a project need not have one, the tool must."""
    return [folder for folder in layers if os.path.lexists(folder) or folder == layers[-1]]


def list_folder(folder: Path, where: str, root: Path) -> tuple[list[Path], list[Problem]]:
    """List a project folder's entries by name; refuse a folder that links out, is not one, or is huge.

    Entries whose names hold control or invisible characters are left out, each with a problem:
    such a name would garble or reorder every message that shows it.
    """
    if not is_inside(folder, root):
        return [], [Problem(where, "", "a link to outside the project; every input must be a file inside it")]
    names: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(names) == MAX_ENTRIES:
                    return [], [Problem(where, "", f"more than {MAX_ENTRIES:,} entries; is this the right folder?")]
                names.append(entry.name)
    except OSError as exc:
        reason = "not a folder" if exc.errno == errno.ENOTDIR else _why_not(exc)
        return [], [Problem(where, "", reason)]
    problems = [
        Problem(where, "", f"the name {name!r} holds control or invisible characters; rename it")
        for name in sorted(names)
        if not name.isprintable()
    ]
    return [folder / name for name in sorted(names) if name.isprintable()], problems


def find_file(folders: Sequence[Path], name: str) -> Path:
    """Return the first folder's file of that name, else the last folder's (whose absence a render reports)."""
    return next((folder / name for folder in folders if (folder / name).is_file()), folders[-1] / name)
