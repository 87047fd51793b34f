"""Approve a section: record reviewers, dates and a fingerprint of the approved body."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .dates import add_months
from .errors import HandoutError, Problem, errors
from .inputs.fields import char_problem, person_text, person_text_problem, shown
from .inputs.files import SECTION_CAP, read_bytes
from .inputs.frontmatter import mapping_list, scalar, set_fields, split, split_front_matter
from .inputs.sections import section_from_text
from .languages import is_language_code
from .models import Reviewer, Section
from .project import Limits, Project
from .review import version_bump_problem

# A second approve of the same folder waits this long for the first, then gives up.
LOCK_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Approval:
    """Who approved which section, when, and until when."""

    section_id: str
    language: str
    reviewers: tuple[Reviewer, ...]
    date: dt.date
    interval_months: int

    @property
    def next_review_due(self) -> dt.date:
        """Return the date of the next review this approval sets."""
        return add_months(self.date, self.interval_months)


def overdue_warning(approval: Approval, today: dt.date) -> str | None:
    """Say when an approval's next review date has already passed, as for a review dated long ago; else None."""
    if approval.next_review_due >= today:
        return None
    due = approval.next_review_due
    return f"next review due {due} is already past; this section is overdue as soon as it is approved"


def parse_reviewer(text: str) -> Reviewer:
    """Parse "Name, Credentials[, Role]" into a Reviewer (NFKC), or raise ValueError naming the part and why."""
    parts = [person_text(part) for part in text.split(",", 2)]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"expected 'Name, Credentials[, Role]', got {shown(text)}")
    # The same rules as loading, so a name approve writes is one check accepts.
    for part, value in zip(("name", "credentials"), parts, strict=False):
        reason = person_text_problem(value)
        if reason is not None:
            raise ValueError(f"{part}: {reason}")
    role = parts[2] if len(parts) == 3 else ""
    if (reason := char_problem(role)) is not None:
        raise ValueError(f"role: {reason}")
    return Reviewer(parts[0], parts[1], role)


def latest_review_date(today: dt.date, clock: Callable[[], dt.date] = dt.date.today) -> dt.date:
    """Return the latest date a review may carry: a test's earlier --today is stricter, a later one is ignored."""
    return min(today, clock())


def as_loaded(text: str) -> str:
    """Return a section file's text as loading reads it: with its line endings made \\n."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _tables(reviewers: tuple[Reviewer, ...]) -> list[dict[str, str]]:
    return [{"name": r.name, "credentials": r.credentials} | ({"role": r.role} if r.role else {}) for r in reviewers]


def _intended(section: Section, approval: Approval) -> dict[str, Any]:
    return {
        "status": "approved",
        "reviewers": _tables(approval.reviewers),
        "last_reviewed": approval.date.isoformat(),
        "next_review_due": approval.next_review_due.isoformat(),
        "approved_version": section.version,
        "approved_fingerprint": section.fingerprint,
    }


def _recorded(section: Section) -> dict[str, Any]:
    """Return what a loaded section says about its approval, in the terms approve writes it."""
    return {
        "status": section.status,
        "reviewers": _tables(section.reviewers),
        "last_reviewed": section.last_reviewed.isoformat(),
        "next_review_due": section.next_review_due.isoformat(),
        "approved_version": section.approved_version,
        "approved_fingerprint": section.approved_fingerprint,
    }


def _lines(intended: dict[str, Any]) -> dict[str, list[str]]:
    # Dates unquoted, as people write them; the loader reads them as text.
    plain = {"status", "last_reviewed", "next_review_due"}
    return {
        key: mapping_list(key, value)
        if key == "reviewers"
        else [f"{key}: {value if key in plain else scalar(value)}\n"]
        for key, value in intended.items()
    }


Load = Callable[[str], tuple[Section | None, list[Problem]]]


def _verify(path: str, text: str, updated: str, intended: dict[str, Any], load: Load) -> None:
    """Refuse unless the new text loads as the old front matter with exactly the intended fields, and the same body."""
    old_meta, old_body, _ = split_front_matter(path, as_loaded(text))
    new_meta, new_body, _ = split_front_matter(path, as_loaded(updated))
    expected = {**(old_meta or {}), **intended}
    found = new_meta or {}
    missing = object()  # a field that vanished differs, even if it held null
    differ = sorted(str(k) for k in expected.keys() | found.keys() if expected.get(k, missing) != found.get(k, missing))
    if new_meta is None or split(updated)[2] != split(text)[2] or new_body != old_body:
        differ = differ or ["body"]
    if differ:
        raise HandoutError(
            f"{path}: front matter: the approval would not read back as written ({', '.join(differ)}); "
            "file left unchanged"
        )
    check, problems = load(updated)
    if check is None:
        raise HandoutError(f"cannot approve: {len(errors(problems))} problem(s)", problems)
    if _recorded(check) != intended or check.changed_since_approval:
        raise HandoutError(f"{path}: front matter: the approval would not read back as written; file left unchanged")


def approve_text(path: str, text: str, approval: Approval, today: dt.date, limits: Limits) -> str:
    """Return the section file's text with the approval recorded; nothing else changes."""
    if not approval.reviewers:
        raise HandoutError("name at least one reviewer")
    if approval.date > latest_review_date(today):
        raise HandoutError(f"--date: {approval.date} is in the future")

    def load(candidate: str) -> tuple[Section | None, list[Problem]]:
        # Checked as loading reads it: with \n line endings, which YAML and the fingerprint also see.
        return section_from_text(
            path,
            as_loaded(candidate),
            expected_id=approval.section_id,
            expected_language=approval.language,
            today=today,
            limits=limits,
        )

    section, problems = load(text)
    if section is None:
        raise HandoutError(f"cannot approve: {len(errors(problems))} problem(s)", problems)
    bump = version_bump_problem(section)
    if bump is not None:
        raise HandoutError("cannot approve", [bump])
    intended = _intended(section, approval)
    try:
        updated = set_fields(text, _lines(intended))
    except ValueError as exc:
        raise HandoutError(f"{path}: front matter: {exc}; approve cannot edit it, file left unchanged") from None
    _verify(path, text, updated, intended, load)
    return updated


def _target(project: Project, link: Path, rel: str) -> Path:
    """Return the file to edit: the section file, or the file its link points to inside the project."""
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        raise HandoutError(f"{rel}: file not found") from None
    except (OSError, RuntimeError):
        raise HandoutError(f"{rel}: a link that cannot be followed (a loop, or a missing folder)") from None
    # Editing through a link is editing its target: only a file of this project may be changed.
    if not target.is_relative_to(project.root.resolve()):
        raise HandoutError(f"{rel}: a link to a file outside the project; approve edits only files inside it")
    return target


@contextmanager
def _folder_lock(folder: Path, rel: str, wait: float) -> Iterator[None]:
    """Hold an exclusive lock on a folder, waiting up to `wait` seconds for another approve to finish."""
    # The folder, not the file: the rename replaces the file, and a lock on the old one would lock nothing.
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise HandoutError(f"{rel}: cannot open its folder to lock it ({exc.strerror}); nothing written") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HandoutError(
                        f"{rel}: another approve in the same folder still runs after {wait:g} s; "
                        "nothing written, try again when it has finished"
                    ) from None
                time.sleep(0.05)
            except OSError as exc:
                raise HandoutError(f"{rel}: cannot lock its folder ({exc.strerror}); nothing written") from None
        yield
    finally:
        os.close(fd)  # closing the folder releases the lock


def _read(project: Project, target: Path, rel: str) -> tuple[str, tuple[int, ...]]:
    """Read a section file through the one safe reader; return its text and identity."""
    try:
        info = target.stat()
    except OSError:
        info = None  # the reader says why
    # Regular files inside the project only, read without blocking, at most what a section may hold.
    data, problems = read_bytes(target, rel, cap=SECTION_CAP, root=project.root)
    if data is None or info is None:
        raise HandoutError(str(problems[0]) if problems else f"{rel}: file not found")
    # The atomic rename gives this name a new file; the other names would keep the old text.
    if info.st_nlink > 1:
        raise HandoutError(f"{rel}: has {info.st_nlink} hard links, which approve would split; make it a single file")
    # A read-only file says "do not change me"; the rename would replace it all the same.
    if not info.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise HandoutError(f"{rel}: read-only; make it writable to approve it")
    try:
        # Decoded from bytes, not read_text: approve rewrites the file and must keep its CRLF and BOM.
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HandoutError(f"{rel}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return text, _identity(info)


def _identity(info: os.stat_result) -> tuple[int, ...]:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _write(target: Path, rel: str, data: bytes, read_as: tuple[int, ...]) -> None:
    # The lock keeps other approves out, not editors: refuse if the file changed since it was read.
    try:
        now = _identity(target.lstat())
    except OSError:
        now = ()
    if now != read_as:
        raise HandoutError(f"{rel}: changed while it was being approved; nothing written, run approve again")
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise HandoutError(f"{rel}: cannot write the approval ({exc.strerror})") from None


def approve(project: Project, approval: Approval, today: dt.date, *, wait: float = LOCK_WAIT_SECONDS) -> str:
    """Record an approval in the section's file and return the file's path as shown to users."""
    language, section_id = approval.language, approval.section_id
    if section_id not in project.sections.order:
        raise HandoutError(f"unknown section {section_id!r}; valid ids: {', '.join(project.sections.order)}")
    # A language names a folder under content/: no separators, no '..'.
    if not is_language_code(language):
        raise HandoutError(f"expected a language code like en, got {language!r}")
    rel = f"{project.content_dir.name}/{language}/{section_id}.md"
    link = project.content_dir / language / f"{section_id}.md"
    target = _target(project, link, rel)
    with _folder_lock(target.parent, rel, wait):
        # Read only once the lock is held: another approve may have just written the file.
        if _target(project, link, rel) != target:
            raise HandoutError(f"{rel}: its link changed while it was being approved; nothing written, run it again")
        text, read_as = _read(project, target, rel)
        updated = approve_text(rel, text, approval, today, project.limits)
        _write(target, rel, updated.encode("utf-8"), read_as)
    return rel
