"""Approve a section: record reviewers, dates and a fingerprint of the approved body."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .atomic import write_atomic
from .dates import add_months
from .errors import HandoutError, Problem, errors
from .inputs.frontmatter import mapping_list, scalar, set_fields, split, split_front_matter
from .inputs.sections import read_section_file, section_from_text
from .models import Reviewer, Section
from .project import Limits, Project


@dataclass(frozen=True)
class Approval:
    """Who approved which section, when, and until when."""

    section_id: str
    language: str
    reviewers: tuple[Reviewer, ...]
    date: dt.date
    interval_months: int


def parse_reviewer(text: str) -> Reviewer:
    """Parse "Name, Credentials[, Role]" into a Reviewer, or raise ValueError saying why."""
    parts = [part.strip() for part in text.split(",", 2)]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"expected 'Name, Credentials[, Role]', got {text!r}")
    return Reviewer(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


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
        "next_review_due": add_months(approval.date, approval.interval_months).isoformat(),
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
    if approval.date > today:
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
    if section.changed_since_approval and section.version == section.approved_version:
        raise HandoutError(
            "cannot approve",
            [Problem(path, "version", f"body changed since version {section.version} was approved; bump the version")],
        )
    intended = _intended(section, approval)
    try:
        updated = set_fields(text, _lines(intended))
    except ValueError as exc:
        raise HandoutError(f"{path}: front matter: {exc}; approve cannot edit it, file left unchanged") from None
    _verify(path, text, updated, intended, load)
    return updated


def approve(project: Project, approval: Approval, today: dt.date) -> str:
    """Record an approval in the section's file and return the file's path as shown to users."""
    path, rel, text = read_section_file(project, approval.language, approval.section_id)
    write_atomic(path, approve_text(rel, text, approval, today, project.limits).encode("utf-8"))
    return rel
