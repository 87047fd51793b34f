"""The output folder: read the tool's own files safely, refuse paths that leave it, keep aside what is not ours."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..inputs.fields import shown

# A manifest of 10,000 outputs is about 20 MiB; anything far larger was not written by this tool,
# and reading it whole could exhaust memory.
MAX_READ = 64 * 1024 * 1024
ASIDE_SUFFIX = ".unreadable-"
KEY_PART_RE = re.compile(r"[^/\\\x00-\x1f\x7f]+")
MAX_KEY = 1024


class NotOurs(ValueError):
    """A file at one of the tool's names that the tool cannot have written."""


def key_problem(key: object, suffix: str = ".pdf") -> str | None:
    """Say why `key` is not an output path the tool writes: relative, POSIX, inside the folder, ending in `suffix`."""
    if not isinstance(key, str):
        return f"expected a relative path, got {type(key).__name__}"
    if not key.endswith(suffix) or len(key) > MAX_KEY:
        return f"expected a relative path ending in {suffix}, got {shown(key)}"
    parts = key.split("/")
    if key.startswith("/") or any(not KEY_PART_RE.fullmatch(p) or p in (".", "..") for p in parts):
        return f"expected a relative path inside the output folder, got {shown(key)}"
    return None


def kind_of(mode: int) -> str:
    """Name a file type in a few words, for messages."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file" if not stat.S_ISREG(mode) else "a file"


def read_capped(path: Path, limit: int = MAX_READ, *, appended: bool = False) -> bytes | None:
    """Read a regular file the tool keeps, without following a link or blocking on a pipe; None if absent.

    Raise NotOurs when the name holds a link, a folder, a device, or more than `limit` bytes; for a
    file the tool appends to (`appended`), also when the file has other hard links, which would
    carry the appends to a file elsewhere.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):  # no folder yet, or a file where it goes: nothing to read
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotOurs("a symbolic link") from None
        raise NotOurs(f"cannot read: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (appended and info.st_nlink > 1):
        os.close(fd)
        raise NotOurs(kind_of(info.st_mode) if not stat.S_ISREG(info.st_mode) else "a file with other hard links")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotOurs(f"larger than {limit // (1024 * 1024)} MiB")
    return data


def read_json(path: Path, limit: int = MAX_READ) -> Any:
    """Read a JSON file the tool keeps (None if absent), raising NotOurs with the reason it is not one."""
    data = read_capped(path, limit)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise NotOurs(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise NotOurs(f"not JSON ({exc})") from None
    except RecursionError:
        raise NotOurs("not JSON (nested too deeply)") from None


def aside_name(path: Path) -> Path:
    """Return the first free `NAME.unreadable-N` beside `path`, where a file that is not ours is kept."""
    number = 1
    while os.path.lexists(f"{path}{ASIDE_SUFFIX}{number}"):
        number += 1
    return Path(f"{path}{ASIDE_SUFFIX}{number}")


def set_aside(path: Path) -> Path | None:
    """Rename a file, folder or link the tool cannot read out of its way, never over another; None if it is gone."""
    if not os.path.lexists(path):
        return None
    target = aside_name(path)
    # Checked, then renamed: only a process that ignores the folder's lock could take the name between.
    os.rename(path, target)
    return target


def target_problem(out_dir: Path, key: str) -> str | None:
    """Say why the tool may not write or delete `out_dir/key`: a link, a file where a folder goes, a folder.

    The key is already a checked relative path; a component that does not exist yet is fine.
    """
    current = out_dir
    parts = key.split("/")
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:  # a name too long for the file system, a folder that cannot be read
            return str(exc.strerror)
        last = index == len(parts) - 1
        if stat.S_ISLNK(mode) or (not last and not stat.S_ISDIR(mode)) or (last and not stat.S_ISREG(mode)):
            where = "/".join(parts[: index + 1])
            return f"{where} is {kind_of(mode)}" + ("" if last else ", not a folder of outputs")
    return None
