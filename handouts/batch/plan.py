"""Plan a batch: for every output of a job file, build it, keep it, or say why it cannot be built."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..compose import HandoutSpec, compose_spec
from ..errors import HandoutError, Problem
from ..inputs import Inputs, load_inputs
from ..inputs.jobs import Output, record_outputs
from ..inputs.sections import section_markdown_problems
from ..layouts import LAYOUTS
from ..models import BASE_LANGUAGE, Handout, Section
from ..project import Project
from ..render_service import failure
from ..review import translation_problems
from .manifest import STAT_NAME, ManifestEntry, file_sha256, load_manifest, load_stats

if TYPE_CHECKING:
    from .education import EducationPlan

Action = Literal["build", "unchanged", "failed"]


@dataclass(frozen=True)
class PlanItem:
    """What a batch will do with one output, and why."""

    output: Output
    action: Action
    reasons: tuple[str, ...] = ()
    handout: Handout | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""


@dataclass(frozen=True)
class Plan:
    """Every output of a job file with its action, and outputs no job asks for any more."""

    items: tuple[PlanItem, ...]
    stale: tuple[str, ...]
    assets: str  # one digest of templates, styles and fonts: workers keep their tools by it
    warnings: tuple[str, ...] = ()
    manifest: dict[str, ManifestEntry] = field(default_factory=dict)
    # Output -> [size, mtime_ns, sha256] for every output whose hash was confirmed while planning.
    stats: dict[str, list[Any]] = field(default_factory=dict)
    stats_changed: bool = False
    # The job file planned, as batch.job_id names it: each manifest entry names the one that wrote it.
    job: str | None = None
    # Unchanged outputs whose entry is to name this job file: written before jobs were told apart, or by another.
    adopt: tuple[str, ...] = ()
    # Files at the tool's names that it did not write (manifest, journal, hash cache): moved aside before writing.
    aside: tuple[Path, ...] = ()
    # Of the warnings, those that make the run end with exit 1: a manifest or journal the tool did not write.
    problems: tuple[str, ...] = ()
    # The job file's OpenEMR education folder, planned with the rest (planned again under its lock when run).
    education: EducationPlan | None = None

    def count(self, action: Action) -> int:
        """Return how many outputs have this action."""
        return sum(1 for item in self.items if item.action == action)


def spec_of(output: Output) -> HandoutSpec:
    """Return the handout a job file's output prints."""
    return HandoutSpec(
        output.sections, output.brand, output.language, output.layout, output.release, appendix=output.appendix
    )


def input_record(
    handout: Handout, inputs: Inputs, *, release: bool, html: bool, identity: dict[str, Any]
) -> dict[str, Any]:
    """Return everything an output is built from, as the manifest records it."""
    states = handout.states
    return {
        "tool": handout.tool_version,
        "code": identity["code"],
        "renderer": identity["renderer"],
        **inputs.assets,
        "brand": handout.brand.digest,
        "language": handout.language,
        "layout": handout.layout,
        "sections": {s.id: {"version": s.version, "digest": s.digest, "state": states[s.id]} for s in handout.sections},
        "release": release,
        "html": html,
        "appendix": handout.appendix,
    }


def fingerprint(record: dict[str, Any]) -> str:
    """Hash an input record."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def change_reasons(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Say in a few words why an output must be rebuilt: `mat 2.0.0 -> 2.1.0`, `template changed`."""
    reasons = []
    if old.get("tool") != new["tool"]:
        reasons.append(f"tool {old.get('tool')} -> {new['tool']}")
    elif old.get("code") != new["code"]:
        reasons.append("tool code changed")
    for name, value in new["renderer"].items():
        before = (old.get("renderer") or {}).get(name)
        if before != value:
            reasons.append(f"{name} {before} -> {value}")
    for group, label in (("templates", "template"), ("styles", "stylesheet"), ("fonts", "font"), ("brand", "brand")):
        if old.get(group) != new[group]:
            reasons.append(f"{label} changed")
    reasons += _section_reasons(old.get("sections") or {}, new["sections"])
    for flag in ("release", "html", "language", "layout", "appendix"):
        if old.get(flag) != new[flag]:
            reasons.append(f"{flag} changed")
    return reasons or ["inputs changed"]


def _section_reasons(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    reasons = []
    for section_id, now in new.items():
        was = old.get(section_id)
        if was is None:
            reasons.append(f"{section_id} added")
        elif was.get("version") != now["version"]:
            reasons.append(f"{section_id} {was.get('version')} -> {now['version']}")
        elif was.get("digest") != now["digest"]:
            reasons.append(f"{section_id} edited")
        if was is not None and was.get("state") != now["state"]:
            reasons.append(f"{section_id} now {now['state']}")
    return reasons + [f"{section_id} removed" for section_id in old if section_id not in new]


def plan(
    project: Project,
    outputs: list[Output],
    out_dir: Path,
    *,
    today: dt.date,
    identity: dict[str, Any],
    html: bool = False,
    force: bool = False,
    job: str | None = None,
) -> Plan:
    """Decide for every output, and the review record of each brand and language, whether to build it."""
    outputs = [*outputs, *record_outputs(outputs, project.sections.order)]
    manifest = load_manifest(out_dir)
    known_stats, stats_note = load_stats(out_dir)
    languages = [*(o.language for o in outputs), BASE_LANGUAGE]
    # Markdown is checked only for what is rebuilt: a no-op run never loads the parser.
    inputs = load_inputs(project, languages, [o.brand for o in outputs], today, markdown=False)
    markdown: dict[str, list[Problem]] = {}
    items, stats = [], {}
    for output in outputs:
        item, stat = _plan_one(output, inputs, manifest.entries.get(output.key), out_dir, known_stats, markdown,
                               today=today, identity=identity, html=html, force=force)  # fmt: skip
        items.append(item)
        if stat is not None:
            stats[output.key] = stat
    entries = manifest.entries
    wanted = {o.key for o in outputs}
    warnings = [*manifest.problems, *([stats_note] if stats_note else []), *translation_warnings(items, inputs)]
    warnings += [
        f"{out_dir / key}: written by job file {entry.job}, which asks for it too; now recorded as this job file's"
        for key, entry in entries.items()
        if key in wanted and entry.job not in (None, job)
    ]
    # Each job file prunes only what it wrote: other job files' outputs in the same folder are theirs.
    stale = tuple(sorted(key for key, entry in entries.items() if entry.job in (None, job) and key not in wanted))
    unchanged = [item.output.key for item in items if item.action == "unchanged"]
    adopt = tuple(key for key in unchanged if job is not None and entries[key].job != job)
    changed = any(known_stats.get(key) != value for key, value in stats.items())
    aside = (*manifest.aside, *([out_dir / STAT_NAME] if stats_note else []))
    return Plan(
        tuple(items), stale, inputs.assets_digest, tuple(warnings), entries, stats, changed,
        job=job, adopt=adopt, aside=aside, problems=tuple(manifest.problems),
    )  # fmt: skip


def translation_warnings(items: list[PlanItem], inputs: Inputs) -> list[str]:
    """Warn once per translation older than its English that a patient handout of the plan prints, not once per output.

    The rule is check's; a release output refuses such a translation and fails, any other prints the older text.
    """
    english = inputs.sections.get(BASE_LANGUAGE, {})
    stale = {
        section.path: (section.language, problem)
        for item in items
        if item.handout is not None and not item.output.release and LAYOUTS[item.output.layout].for_patients
        for section in item.handout.sections
        for problem in translation_problems(section, english, strict=False)
    }
    if not stale:
        return []
    from babel import Locale  # only now: a batch without stale translations never needs it

    names = Locale(BASE_LANGUAGE).languages
    return [f"{problem}; the {names.get(code, code)} handouts print the older text" for code, problem in stale.values()]


def _plan_one(
    output: Output,
    inputs: Inputs,
    entry: ManifestEntry | None,
    out_dir: Path,
    known_stats: dict[str, list[Any]],
    markdown: dict[str, list[Problem]],
    *,
    today: dt.date,
    identity: dict[str, Any],
    html: bool,
    force: bool,
) -> tuple[PlanItem, list[Any] | None]:
    """Plan one output, with its file signature and hash to remember when it is unchanged."""
    try:
        handout = compose_spec(spec_of(output), inputs, today)
    except HandoutError as exc:
        return PlanItem(output, "failed", (failure(exc),)), None
    record = input_record(handout, inputs, release=output.release, html=html, identity=identity)
    digest = fingerprint(record)
    reasons, stat = _rebuild_reasons(entry, record, digest, out_dir / output.key, known_stats, html=html)
    reasons = ["forced"] if force else reasons
    refused = [p for s in handout.sections for p in _markdown(s, markdown)] if reasons else []
    if refused:
        reason = failure(HandoutError(f"cannot build: {len(refused)} problem(s)", refused))
        return PlanItem(output, "failed", (reason,)), None
    action: Action = "build" if reasons else "unchanged"
    return PlanItem(output, action, tuple(reasons), handout, record, digest), (None if reasons else stat)


def _markdown(section: Section, checked: dict[str, list[Problem]]) -> list[Problem]:
    """Check a section's Markdown once per plan."""
    if section.path not in checked:
        checked[section.path] = section_markdown_problems(section)
    return checked[section.path]


def _rebuild_reasons(
    entry: ManifestEntry | None,
    record: dict[str, Any],
    digest: str,
    path: Path,
    stats: dict[str, list[Any]],
    *,
    html: bool,
) -> tuple[list[str], list[Any] | None]:
    """Say why an output must be rebuilt (nothing if not), with its file signature and hash to remember."""
    if entry is None:
        return ["new" if not os.path.lexists(path) else "not in the manifest"], None
    if entry.fingerprint != digest:
        return change_reasons(entry.inputs, record), None
    actual, stat = file_sha256(path, stats, entry.path)
    if actual is None:
        return ["output missing"], None
    if actual != entry.sha256:
        return ["output changed on disk"], None
    if html and not os.path.isfile(path.with_suffix(".html")):
        return ["HTML missing"], None
    return [], stat
