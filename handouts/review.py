"""Review rules: unreviewed edits, version bumps, review dates, and what a release refuses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from .errors import Problem
from .models import BASE_LANGUAGE, Brand, Section, TranslationLag
from .project import Limits

# What a reviewer types in place of their own name in the command a message suggests.
REVIEWER_PLACEHOLDER = "Name, Credentials"


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


def translation_state(section: Section, english: Mapping[str, Section] | None) -> TranslationLag | None:
    """Return how far a translation is behind its English section, or None if it is not (or is English)."""
    original = (english or {}).get(section.id)
    if section.language == BASE_LANGUAGE or section.translation_of is None or original is None:
        return None
    if version_key(section.translation_of) >= version_key(original.version):
        return None
    # The English review date tells when the English changed only if it is the review of that version.
    current = original.approved_version == original.version and not original.changed_since_approval
    approved = original.last_reviewed if current and original.status == "approved" else None
    return TranslationLag(section.id, section.translation_of, original.version, approved)


def translation_problems(section: Section, english: Mapping[str, Section], *, strict: bool) -> list[Problem]:
    """Return a problem when a translation translates an older English version than the current one."""
    lag = translation_state(section, english)
    if lag is None:
        return []
    return [Problem(section.path, "", lag.reason, "error" if strict else "warning")]


def approve_command(section: Section) -> str:
    """Return the approve command a reviewer runs for a section, with a placeholder for their name."""
    language = "" if section.language == BASE_LANGUAGE else f" --lang {section.language}"
    return f'handouts approve {section.id}{language} --reviewer "{REVIEWER_PLACEHOLDER}"'


def _fix(section: Section) -> str:
    """Say how to make an edited, unapproved or overdue section releasable: review it, then approve it."""
    if section.changed_since_approval and section.version == section.approved_version:
        return f"bump the version, then run: {approve_command(section)}"
    return f"run: {approve_command(section)}"


def release_problems(
    sections: Iterable[Section], today: dt.date, english: Mapping[str, Section] | None = None
) -> list[Problem]:
    """Return why each section may not go into a release build, each ending with the command that fixes it."""
    found = []
    for s in sections:
        lag = translation_state(s, english) if english is not None else None
        if lag is not None:
            # Words of a message, not SQL (ruff takes "update ..., set" for a query).
            fix = f"update the translation, set translation_of: {lag.english_version}"  # noqa: S608
            fix += f", then run: {approve_command(s)}"
            found.append(Problem(s.path, "", f"{lag.reason}; {fix}"))
        state = s.review_state(today)
        if state == "changed":
            message = f"body changed after approval on {s.last_reviewed}; a release needs it approved again"
            found.append(Problem(s.path, "", f"{message}; {_fix(s)}"))
        elif s.status != "approved":
            found.append(Problem(s.path, "status", f"{s.status}; a release needs approved content; {_fix(s)}"))
        elif s.approved_version != s.version:
            # The same text under a new version (a translation_of moved on, say) was never reviewed as that version.
            message = f"version {s.version}, but {s.approved_version} was approved; a release needs it approved"
            found.append(Problem(s.path, "version", f"{message}; {_fix(s)}"))
        if s.is_overdue(today):
            message = f"review overdue since {s.next_review_due}; a release needs a current review"
            found.append(Problem(s.path, "next_review_due", f"{message}; review it, then {_fix(s)}"))
    return found


def brand_release_problems(brand: Brand) -> list[Problem]:
    """Return why a brand may not go into a release build: an example brand's clinic is made up."""
    if not brand.example:
        return []
    message = (
        "true; an example brand's name and phone number are made up; a release needs your own brand: "
        "make one with `handouts init` or a brands/<id>/ folder with example = false, then pass --brand <id>"
    )
    return [Problem(f"brands/{brand.id}/brand.toml", "example", message)]


def due_reason(
    section: Section, today: dt.date, limits: Limits, english: Mapping[str, Section] | None = None
) -> str | None:
    """Say why a section needs review, now or within the warning window; None if it does not."""
    lag = translation_state(section, english)
    if lag is not None:
        return f"{lag.status}: {lag.detail}"
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


def due_for_review(
    sections: Iterable[Section], today: dt.date, limits: Limits, english: Mapping[str, Section] | None = None
) -> list[tuple[Section, str]]:
    """Return each section that needs review with the reason: translations behind English first, then soonest due."""
    # `english`: the English sections a translation is judged by; without them none is behind.
    due = [(s, reason) for s in sections if (reason := due_reason(s, today, limits, english)) is not None]

    # A translation behind its English prints outdated facts; a draft or an unreviewed edit needs review now.
    def urgency(pair: tuple[Section, str]) -> tuple[int, dt.date, str]:
        section = pair[0]
        if translation_state(section, english) is not None:
            rank = 0
        else:
            rank = 1 if section.changed_since_approval else 2 if section.status != "approved" else 3
        return rank, section.next_review_due, section.id

    return sorted(due, key=urgency)


def changed_note(section: Section) -> str | None:
    """Say that approved text was edited, as a build's sample marker says it; None if it was not."""
    if not (section.changed_since_approval and section.status == "approved"):
        return None
    if section.version == section.approved_version:
        return f"{section.path}: changed since version {section.approved_version} was approved; printed as a sample"
    return (
        f"{section.path}: changed since approval ({section.approved_version} approved; now {section.version}); "
        "printed as a sample"
    )
