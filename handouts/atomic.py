"""Write files so that readers see the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

NEW_FILE_MODE = 0o644
# What link(2) says on a file system that has no hard links (FAT or exFAT on a USB stick, some shares).
NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write bytes to a temporary file beside `path`, then rename it into place, with `mode` if given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A rewrite (approve) keeps the file's own mode; mkstemp alone would leave 0600.
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = NEW_FILE_MODE
    tmp = _write_temporary(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


class NamesTaken(FileExistsError):
    """Every name `write_new` was offered names something already."""


def write_new(candidates: Iterable[Path], data: bytes, mode: int = NEW_FILE_MODE) -> Path:
    """Write bytes under the first of `candidates` (all in one folder) that names nothing yet; return it.

    Raise NamesTaken when every name is taken. Two writers racing for a name cannot both get it.
    """
    names = iter(candidates)
    first = next(names)
    first.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temporary(first, data, mode)
    try:
        for path in (first, *names):
            if _take_name(tmp, path):
                break
        else:
            raise NamesTaken(errno.EEXIST, "every name is taken", str(first))
    finally:
        tmp.unlink(missing_ok=True)
    _sync_folder(path.parent)
    return path


def _take_name(tmp: Path, path: Path) -> bool:
    # A hard link names the finished file only if the name is free, in one step: nothing is ever
    # replaced and nothing half-written is ever seen under it.
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
    # Without hard links, an empty file created exclusively holds the name until the rename fills it.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        return False
    try:
        os.replace(tmp, path)
    except BaseException:
        path.unlink(missing_ok=True)  # the empty placeholder made just above, nothing else
        raise
    return True


def _write_temporary(path: Path, data: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, mode)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _sync_folder(folder: Path) -> None:
    # A new name is durable only once the folder's entry is on disk too.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
