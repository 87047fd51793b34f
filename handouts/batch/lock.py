"""One batch per output folder: a lock file the run holds, naming who holds it."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import HandoutError
from .folder import kind_of

LOCK_NAME = ".batch.lock"
MAX_LOCK = 64 * 1024


def _holder(fd: int) -> dict[str, object] | None:
    """Return what the lock file says about the run holding it, or None if it says nothing this tool wrote."""
    data = os.pread(fd, MAX_LOCK, 0)
    try:
        holder = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return holder if isinstance(holder, dict) and {"pid", "job", "started"} <= holder.keys() else None


def _open(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        why = "it is a symbolic link" if exc.errno == errno.ELOOP else str(exc.strerror or exc)
        raise HandoutError(f"{path}: cannot lock the output folder: {why}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        what = kind_of(info.st_mode) if not stat.S_ISREG(info.st_mode) else "a file with other hard links"
        raise HandoutError(f"{path}: cannot lock the output folder: it is {what}")
    return fd


def _acquire(path: Path, fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        who = (
            f"pid {holder['pid']}, job file {holder['job']}, started {holder['started']}"
            if holder
            else "it has not said which yet"
        )
        raise HandoutError(f"{path.parent}: another batch is writing here ({who}); wait for it to end") from None
    except OSError as exc:
        raise HandoutError(f"{path}: cannot lock the output folder: {exc.strerror or exc}") from None
    if os.fstat(fd).st_size and _holder(fd) is None:
        raise HandoutError(f"{path}: not a lock file this tool wrote; move it away and run again")


@contextmanager
def folder_lock(out_dir: Path, job_path: Path) -> Iterator[None]:
    """Create the output folder if needed and hold its lock for the block, or raise naming the run that holds it."""
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        what = "a file" if os.path.isfile(out_dir) else kind_of(os.lstat(out_dir).st_mode)
        raise HandoutError(f"{out_dir}: the output folder is {what}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HandoutError(f"{out_dir}: cannot create the output folder: {exc.strerror or exc}") from None
    path = out_dir / LOCK_NAME
    fd = _open(path)
    held = False
    try:
        _acquire(path, fd)
        held = True
        started = dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")
        record = {"pid": os.getpid(), "job": str(job_path.resolve()), "started": started}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        except OSError as exc:
            raise HandoutError(f"{path}: cannot write the lock file: {exc.strerror or exc}") from None
        yield
    finally:
        if held:
            # Emptied, not removed: removing a lock file lets a waiting run lock a file no one else sees.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        os.close(fd)
