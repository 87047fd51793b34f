"""Review rules: unreviewed edits, version bumps, review dates, and what a release refuses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from .errors import Problem
from .models import BASE_LANGUAGE, Brand, Section
from .project import Limits


def version_bump_problem(section: Section) -> Problem | None:
    """Return the problem of a text changed since its approval under the same version, or None."""
    if not (section.changed_since_approval and section.version == section.approved_version):
        return None
    version = section.approved_version
    return Problem(
        section.path,
        "version",
        f"body changed since version {version} was approved; bump the version, then approve again",
    )


def unreviewed_edit_problem(section: Section) -> Problem | None:
    """Return what an edit since the last approval still needs, a version bump or a review; None if nothing."""
    if not section.changed_since_approval:
        return None
    # One problem for one edit: until the version is bumped that comes first; after it, only the review is left.
    bump = version_bump_problem(section)
    if bump is not None or section.status != "approved":
        return bump
    message = (
        f"body changed since version {section.approved_version} was approved on {section.last_reviewed}; "
        f"version {section.version} needs a review: approve again"
    )
    return Problem(section.path, "", message)


def review_problems(section: Section, today: dt.date, limits: Limits) -> list[Problem]:
    """Return review errors (an unreviewed edit, once) and review-date warnings."""
    path, found = section.path, []
    edit = unreviewed_edit_problem(section)
    if edit is not None:
        found.append(edit)
    if section.is_overdue(today):
        found.append(Problem(path, "next_review_due", f"review overdue since {section.next_review_due}", "warning"))
    elif (section.next_review_due - today).days <= limits.warning_window_days:
        days = (section.next_review_due - today).days
        found.append(
            Problem(path, "next_review_due", f"review due in {days} days, on {section.next_review_due}", "warning")
        )
    return found


def version_key(version: str) -> tuple[int, ...]:
    """Order semantic versions numerically: 1.10.0 comes after 1.9.0."""
    return tuple(int(part) for part in version.split("."))


def translation_problems(section: Section, english: Mapping[str, Section], *, strict: bool) -> list[Problem]:
    """Return a problem when a translation translates an older English version than the current one."""
    original = english.get(section.id)
    if section.translation_of is None or original is None:
        return []
    if version_key(section.translation_of) < version_key(original.version):
        message = f"translates {section.id} {section.translation_of}, English is now {original.version}"
        return [Problem(section.path, "", message, "error" if strict else "warning")]
    return []


def release_problems(
    sections: Iterable[Section], today: dt.date, english: Mapping[str, Section] | None = None
) -> list[Problem]:
    """Return why each section may not go into a release build."""
    found = []
    for s in sections:
        if english is not None and s.language != BASE_LANGUAGE:
            found += translation_problems(s, english, strict=True)
        state = s.review_state(today)
        if state == "changed":
            found.append(
                Problem(
                    s.path, "", f"body changed after approval on {s.last_reviewed}; a release needs it approved again"
                )
            )
        elif s.status != "approved":
            found.append(Problem(s.path, "status", f"{s.status}; a release needs approved content"))
        if s.is_overdue(today):
            found.append(
                Problem(
                    s.path,
                    "next_review_due",
                    f"review overdue since {s.next_review_due}; a release needs a current review",
                )
            )
    return found


def brand_release_problems(brand: Brand) -> list[Problem]:
    """Return why a brand may not go into a release build: an example brand's clinic is made up."""
    if not brand.example:
        return []
    message = "true; an example brand's name and phone number are made up; a release needs your own brand"
    return [Problem(f"brands/{brand.id}/brand.toml", "example", message)]


def due_reason(section: Section, today: dt.date, limits: Limits) -> str | None:
    """Say why a section needs review, now or within the warning window; None if it does not."""
    if section.changed_since_approval:
        return "changed since approval"
    if section.status != "approved":
        # Set back to draft by hand after an approval: not "never".
        return "draft: never approved" if section.approved_fingerprint is None else "draft: not approved"
    days = (section.next_review_due - today).days
    if days < 0:
        return f"overdue since {section.next_review_due}, {-days} day{'s' if days != -1 else ''} ago"
    if days <= limits.warning_window_days:
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        return f"due {section.next_review_due}, {when}"
    return None


def due_for_review(sections: Iterable[Section], today: dt.date, limits: Limits) -> list[tuple[Section, str]]:
    """Return each section that needs review with the reason: unapproved text first, then soonest due."""
    due = [(s, reason) for s in sections if (reason := due_reason(s, today, limits)) is not None]

    # A draft or an unreviewed edit needs review now, whatever its date says.
    def urgency(pair: tuple[Section, str]) -> tuple[int, dt.date, str]:
        section = pair[0]
        rank = 0 if section.changed_since_approval else 1 if section.status != "approved" else 2
        return rank, section.next_review_due, section.id

    return sorted(due, key=urgency)
