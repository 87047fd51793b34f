"""Review rules: unreviewed edits, version bumps, review dates, and what a release refuses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from .errors import Problem
from .models import BASE_LANGUAGE, Brand, Section
from .project import Limits


def review_problems(section: Section, today: dt.date, limits: Limits) -> list[Problem]:
    """Return review errors (unreviewed edits, missing version bump) and review-date warnings."""
    path, found = section.path, []
    if section.changed_since_approval:
        if section.status == "approved":
            found.append(
                Problem(
                    path, "", f"body changed after approval on {section.last_reviewed}; bump version and approve again"
                )
            )
        if section.version == section.approved_version:
            found.append(
                Problem(
                    path,
                    "version",
                    f"body changed since version {section.approved_version} was approved; bump the version",
                )
            )
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


def due_for_review(sections: Iterable[Section], today: dt.date, limits: Limits) -> list[Section]:
    """Return sections changed since approval or due within the warning window, soonest first."""
    window = today + dt.timedelta(days=limits.warning_window_days)
    due = [s for s in sections if s.changed_since_approval or s.next_review_due <= window]
    # An unreviewed edit needs review now, whatever its date says.
    return sorted(due, key=lambda s: (not s.changed_since_approval, s.next_review_due, s.id))
