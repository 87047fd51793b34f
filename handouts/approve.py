"""Approve a section: record reviewers, dates and a fingerprint of the approved body."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .atomic import write_atomic
from .dates import add_months
from .errors import HandoutError, Problem, errors
from .inputs.frontmatter import mapping_list, scalar, set_fields, split
from .inputs.sections import read_section_file, section_from_text
from .models import Reviewer
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


def approve_text(path: str, text: str, approval: Approval, today: dt.date, limits: Limits) -> str:
    """Return the section file's text with the approval recorded; nothing else changes."""
    if not approval.reviewers:
        raise HandoutError("name at least one reviewer")
    if approval.date > today:
        raise HandoutError(f"--date: {approval.date} is in the future")
    section, problems = section_from_text(
        path, text, expected_id=approval.section_id, expected_language=approval.language, today=today, limits=limits
    )
    if section is None:
        raise HandoutError(f"cannot approve: {len(errors(problems))} problem(s)", problems)
    if section.changed_since_approval and section.version == section.approved_version:
        raise HandoutError(
            "cannot approve",
            [Problem(path, "version", f"body changed since version {section.version} was approved; bump the version")],
        )
    reviewers = [
        {"name": r.name, "credentials": r.credentials} | ({"role": r.role} if r.role else {})
        for r in approval.reviewers
    ]
    updated = set_fields(
        text,
        {
            "status": ["status: approved\n"],
            "reviewers": mapping_list("reviewers", reviewers),
            "last_reviewed": [f"last_reviewed: {approval.date.isoformat()}\n"],
            "next_review_due": [
                f"next_review_due: {add_months(approval.date, approval.interval_months).isoformat()}\n"
            ],
            "approved_version": [f"approved_version: {scalar(section.version)}\n"],
            "approved_fingerprint": [f"approved_fingerprint: {scalar(section.fingerprint)}\n"],
        },
    )
    # The body must come out untouched and the result must be a valid, approved section.
    check, problems = section_from_text(
        path, updated, expected_id=approval.section_id, expected_language=approval.language, today=today, limits=limits
    )
    if check is None or check.changed_since_approval or split(updated)[2] != split(text)[2]:
        raise HandoutError(f"{path}: could not record the approval safely; file left unchanged", problems)
    return updated


def approve(project: Project, approval: Approval, today: dt.date) -> str:
    """Record an approval in the section's file and return the file's path as shown to users."""
    path, rel, text = read_section_file(project, approval.language, approval.section_id)
    write_atomic(path, approve_text(rel, text, approval, today, project.limits).encode("utf-8"))
    return rel
