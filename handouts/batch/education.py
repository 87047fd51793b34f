"""OpenEMR's patient-education folder: plan and write each code's untailored letter PDF under OpenEMR's names.

Each distinct handout (sections x language) is composed and rendered once, on the batch's workers,
then written under every name that asks for it: a hard link to one written file where the file
system has them, else a copy. The folder keeps the batch's manifest, so a rerun writes only what
changed, and the tool never writes into a folder holding files it did not write.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..atomic import NO_HARD_LINKS, write_atomic
from ..compose import HandoutSpec, compose_spec, release_refusals
from ..errors import HandoutError, Problem
from ..inputs import Inputs, load_inputs
from ..inputs.jobs import Output
from ..models import BASE_LANGUAGE, Brand
from ..openemr import EducationFile, education_files
from ..project import Project
from ..render_service import Executor, RenderJob, RenderOutcome, failure, worker_identity
from ..review import brand_release_problems
from .folder import NotOurs, kind_of, target_problem
from .lock import LOCK_NAME
from .manifest import (
    JOURNAL_NAME,
    MANIFEST_NAME,
    STAT_NAME,
    Journal,
    ManifestEntry,
    _read_entries,
    file_sha256,
    load_stats,
    replay,
    signature,
)
from .plan import Action, PlanItem, change_reasons, fingerprint, input_record
from .prune import prune_steps
from .run import _outcomes, entry_for

# The job its manifest entries name: a batch sharing the folder by mistake never prunes them, and
# entries of a batch's own are told apart from ours.
EDUCATION_JOB = "openemr-education"
OWN_FILES = (MANIFEST_NAME, JOURNAL_NAME, STAT_NAME, LOCK_NAME)
# A temporary file atomic.py left beside one of our names when a run was killed mid-write.
OWN_FOLDER = "the tool writes only into a folder of its own files (give a new or empty folder)"
LEFTOVER_RE = re.compile(r"\.(?P<name>[^/]+)\.[A-Za-z0-9_]{1,16}\.tmp")

Event = Callable[[str, str, str], None]


@dataclass(frozen=True)
class EducationRequest:
    """What to write: the folder, the brand and languages, which sections' codes, and how."""

    out_dir: Path
    brand: str
    languages: tuple[str, ...]
    sections: tuple[str, ...] | None = None  # None: every section of the project
    release: bool = False
    force: bool = False
    prune: bool = False


@dataclass(frozen=True)
class EducationUnit:
    """One handout (sections in one language) and the file names it is written under."""

    item: PlanItem  # its action: build when any of its names is to be written
    names: tuple[str, ...]
    writes: tuple[tuple[str, str], ...] = ()  # (name, why) to write now


@dataclass(frozen=True)
class EducationPlan:
    """What a run will write, keep and leave alone in an education folder, and why."""

    request: EducationRequest
    units: tuple[EducationUnit, ...]
    assets: str
    today: dt.date
    identity: dict[str, Any]
    manifest: dict[str, ManifestEntry] = field(default_factory=dict)
    stats: dict[str, list[Any]] = field(default_factory=dict)
    unchanged: int = 0
    # Files written earlier and changed since: never overwritten. (name, why)
    changed: tuple[tuple[str, str], ...] = ()
    stale: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def renders(self) -> int:
        """Return how many handouts must be rendered."""
        return sum(1 for unit in self.units if unit.item.action == "build")

    @property
    def files(self) -> int:
        """Return how many files the folder is to hold."""
        return sum(len(unit.names) for unit in self.units)


@dataclass
class EducationSummary:
    """What a run did in an education folder."""

    out_dir: Path
    written: list[tuple[str, str]] = field(default_factory=list)
    renders: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def folder_problem(out_dir: Path) -> str | None:
    """Say why `out_dir` may not be an education folder (a link, a file), or None; it need not exist yet."""
    try:
        mode = os.lstat(out_dir).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{out_dir}: cannot use it as the education folder: {exc.strerror or exc}"
    if not stat.S_ISDIR(mode):
        # Never through a link: the tool would write and delete wherever it points.
        return f"{out_dir}: the education folder is {kind_of(mode)}; give the folder itself"
    return None


def foreign_files(out_dir: Path, manifest: dict[str, ManifestEntry]) -> tuple[list[Problem], list[str]]:
    """Return a problem for each thing in the folder the tool did not write, and notes on leftovers of killed runs."""
    problems, notes = [], []
    try:
        names = sorted(os.listdir(out_dir))
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [Problem(str(out_dir), "", f"cannot list it: {exc.strerror or exc}")], []
    for name in names:
        path = out_dir / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:  # gone since it was listed
            continue
        entry = manifest.get(name)
        if name in OWN_FILES and stat.S_ISREG(mode):
            continue  # read and checked as the tool's own (the manifest) or when locked (the lock)
        if entry is not None and entry.job == EDUCATION_JOB:
            continue  # ours; what is at the name now is judged when it is planned
        leftover = LEFTOVER_RE.fullmatch(name)
        if leftover and stat.S_ISREG(mode) and (leftover["name"] in manifest or leftover["name"] in OWN_FILES):
            notes.append(f"{path}: a temporary file a killed run left; not ours to delete, delete it yourself")
            continue
        what = f"{kind_of(mode)} that the tool did not write (not in {MANIFEST_NAME})"
        problems.append(Problem(str(path), "", f"{what}; {OWN_FOLDER}"))
    return problems, notes


def refuse(headline: str, problems: list[Problem]) -> HandoutError:
    """Return the error that stops a run: one problem as its own line, several under a headline."""
    if len(problems) == 1:
        return HandoutError(str(problems[0]))
    return HandoutError(f"{headline}: {len(problems)} problem(s)", problems)


def check_folder(out_dir: Path) -> dict[str, ManifestEntry]:
    """Return the folder's manifest entries, or raise if it is a link, not a folder, or holds files of others."""
    problem = folder_problem(out_dir)
    if problem is not None:
        raise HandoutError(problem)
    # A batch sets a manifest it cannot read aside and rebuilds; here nothing of another's is moved.
    path = out_dir / MANIFEST_NAME
    try:
        entries = _read_entries(path)
        path = out_dir / JOURNAL_NAME
        entries = replay(path, entries)
    except NotOurs as exc:
        raise HandoutError(f"{path}: not the tool's own ({exc}); {OWN_FOLDER}") from None
    others = sorted({entry.job or "" for entry in entries.values() if entry.job != EDUCATION_JOB})
    if others:
        # A batch's output folder: its outputs are its own, never ours to overwrite or prune.
        who = f"job file {others[-1]}" if others[-1] else "a batch"
        raise HandoutError(f"{out_dir / MANIFEST_NAME}: written by {who}, not by {EDUCATION_JOB}; {OWN_FOLDER}")
    problems, _ = foreign_files(out_dir, entries)
    if problems:
        raise refuse(f"{out_dir}: holds files the tool did not write", problems)
    return entries


def check_brand(brand_id: str, loaded: tuple[Brand | None, list[Problem]], *, release: bool) -> Brand:
    """Return the brand, or raise if it cannot be used or, for a release, is an example."""
    brand, problems = loaded
    if brand is None:
        raise refuse(f"brand {brand_id}: cannot be used", problems)
    if release and (refused := brand_release_problems(brand)):
        raise refuse(f"brand {brand_id}: release refused", refused)
    return brand


def _offered(inputs: Inputs, request: EducationRequest, today: dt.date) -> tuple[dict[str, list[str]], list[str]]:
    """Return per language the sections whose codes get files, and why any section is left out."""
    english = inputs.sections.get(BASE_LANGUAGE, {})
    wanted = request.sections if request.sections is not None else inputs.plan.order
    offered: dict[str, list[str]] = {}
    notes: list[str] = []
    for language in request.languages:
        sections, problems = inputs.sections.get(language, {}), inputs.problems.get(language, {})
        offered[language] = []
        for section_id in wanted:
            section = sections.get(section_id)
            if section is None and section_id not in problems:
                # Not translated yet: the language's files leave it out rather than print none at all.
                notes.append(f"{section_id} has no {language} file yet; the {language} files leave it out")
                continue
            if request.release and section is not None:
                refused = release_refusals([section], today, english)
                if refused:
                    notes.append(f"{section_id} ({language}) left out of the release: {refused[0]}")
                    continue
            offered[language].append(section_id)
    return offered, notes


def plan_education(
    project: Project, request: EducationRequest, *, today: dt.date, identity: dict[str, Any] | None = None
) -> EducationPlan:
    """Decide which files to write, keep, leave alone and prune; raise if the folder or the brand is refused.

    `identity` is the renderer's (render_service.worker_identity), which every file's fingerprint holds.
    """
    identity = identity if identity is not None else worker_identity()
    manifest = check_folder(request.out_dir)
    inputs = load_inputs(project, [*request.languages, BASE_LANGUAGE], [request.brand], today, markdown=False)
    check_brand(request.brand, inputs.brands[request.brand], release=request.release)
    offered, warnings = _offered(inputs, request, today)
    files, notes = education_files(inputs.sections.get(BASE_LANGUAGE, {}), offered)
    grouped: dict[tuple[tuple[str, ...], str], list[EducationFile]] = {}
    for file in files:
        grouped.setdefault((file.sections, file.language), []).append(file)
    known_stats, _ = load_stats(request.out_dir)
    units, stats, changed, unchanged = [], {}, [], 0
    for (section_ids, language), members in grouped.items():
        names = tuple(f.name for f in members)
        output = Output(names[0], EDUCATION_JOB, section_ids, request.brand, language, "letter", request.release)
        spec = HandoutSpec(section_ids, request.brand, language, "letter", request.release)
        try:
            handout = compose_spec(spec, inputs, today)
        except HandoutError as exc:
            units.append(EducationUnit(PlanItem(output, "failed", (failure(exc),)), names))
            continue
        record = input_record(handout, inputs, release=request.release, html=False, identity=identity)
        digest = fingerprint(record)
        writes = []
        for name in names:
            kind, why, stat_ = _why_write(request.out_dir, name, manifest.get(name), record, digest, known_stats)
            if kind == "current" and not request.force:
                unchanged += 1
                if stat_ is not None:
                    stats[name] = stat_
            elif kind == "changed":
                changed.append((name, why))
            else:
                writes.append((name, why if kind == "write" else "forced"))
        action: Action = "build" if writes else "unchanged"
        item = PlanItem(output, action, tuple(dict.fromkeys(w for _, w in writes)), handout, record, digest)
        units.append(EducationUnit(item, names, tuple(writes)))
    wanted = {f.name for f in files}
    stale = tuple(sorted(k for k, e in manifest.items() if e.job == EDUCATION_JOB and k not in wanted))
    _, leftovers = foreign_files(request.out_dir, manifest)
    return EducationPlan(
        request, tuple(units), inputs.assets_digest, today, identity, manifest, stats, unchanged,
        tuple(changed), stale, tuple([*warnings, *notes, *leftovers]),
    )  # fmt: skip


def _why_write(
    out_dir: Path,
    name: str,
    entry: ManifestEntry | None,
    record: dict[str, Any],
    digest: str,
    known_stats: dict[str, list[Any]],
) -> tuple[Literal["write", "current", "changed"], str, list[Any] | None]:
    """Say whether a file is to be written (and why), is current, or was changed by someone; with what to remember."""
    if entry is None:
        return "write", "new", None
    actual, stat_ = file_sha256(out_dir / name, known_stats, name)
    if actual is None:
        return "write", "file missing", None
    if actual != entry.sha256:
        # Someone replaced or edited it: theirs now, never overwritten.
        return "changed", "changed on disk since it was written; left alone (delete it to have it written again)", None
    if entry.fingerprint != digest:
        return "write", ", ".join(change_reasons(entry.inputs, record)), None
    return "current", "", stat_


def run_education(
    project: Project,
    plan: EducationPlan,
    executor: Executor,
    *,
    window: int = 8,
    on_event: Event = lambda kind, key, detail: None,
) -> EducationSummary:
    """Render each handout that has files to write once, write it under each name, keep the manifest true.

    The caller holds the folder's lock (batch.folder_lock) from planning to the end.
    """
    started = time.monotonic()
    out_dir = plan.request.out_dir
    summary = EducationSummary(out_dir, unchanged=plan.unchanged, changed=list(plan.changed), stale=list(plan.stale))
    for unit in plan.units:
        if unit.item.action == "failed":
            summary.failed += [(name, unit.item.reasons[0]) for name in unit.names]
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(out_dir, plan.manifest)
    stats = dict(plan.stats)
    building = {unit.item.output.key: unit for unit in plan.units if unit.item.action == "build"}
    jobs = (
        (unit.item, RenderJob(key, str(project.root), plan.assets, unit.item.handout))
        for key, unit in building.items()
        if unit.item.handout is not None
    )
    try:
        journal.drop(name for unit in building.values() for name, _ in unit.writes)
        for item, outcome in _outcomes(jobs, executor, window):
            _record(out_dir, building[item.output.key], outcome, journal, stats, summary, on_event)
        if plan.request.prune:
            _prune(out_dir, plan, journal, summary, on_event)
    finally:
        problem = journal.fold(stats)
        if problem is not None:
            summary.problems.append(f"{out_dir / MANIFEST_NAME}: {problem}")
    summary.seconds = time.monotonic() - started
    return summary


def _record(
    out_dir: Path,
    unit: EducationUnit,
    outcome: RenderOutcome,
    journal: Journal,
    stats: dict[str, list[Any]],
    summary: EducationSummary,
    on_event: Event,
) -> None:
    """Write one rendered handout under each of its names to write, and record each; a refused name fails alone."""
    error = None if outcome.error is None and outcome.pdf is not None else (outcome.error or "no PDF")
    if error is not None or outcome.pdf is None:
        for name, _ in unit.writes:
            summary.failed.append((name, error or "no PDF"))
            on_event("failed", str(out_dir / name), error or "no PDF")
        return
    summary.renders += 1
    entry = entry_for(unit.item, outcome, EDUCATION_JOB)
    first: Path | None = None
    written = []
    for name, why in unit.writes:
        try:
            first = _write_one(out_dir, name, outcome.pdf, first)
        except OSError as exc:
            summary.failed.append((name, f"cannot write: {exc.strerror or exc}"))
            on_event("failed", str(out_dir / name), f"cannot write: {exc.strerror or exc}")
            continue
        journal.put(dataclasses.replace(entry, path=name))
        summary.written.append((name, why))
        written.append(name)
        on_event("wrote", str(out_dir / name), why)
    # Taken once every name is linked: each new link changes the shared file's ctime.
    for name in written:
        sig = signature(out_dir / name)
        if sig is not None:
            stats[name] = [*sig, entry.sha256]


def _write_one(out_dir: Path, name: str, data: bytes, first: Path | None) -> Path:
    """Write `data` at `name` atomically: a hard link to the first name written, else the bytes; return the first."""
    problem = target_problem(out_dir, name)
    if problem is not None:
        raise OSError(0, problem)
    path = out_dir / name
    if first is not None and _link_atomic(first, path):
        return first
    write_atomic(path, data)
    return first or path


def _link_atomic(source: Path, path: Path) -> bool:
    """Make `path` a hard link to `source`, replacing what is there in one step; False where links are not had."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        os.link(source, temporary)
    except OSError as exc:
        if exc.errno in NO_HARD_LINKS:
            return False
        raise
    try:
        os.replace(temporary, path)
    finally:
        # rename(2) between two links to one file does nothing and leaves the temporary name.
        if os.path.lexists(temporary):
            os.unlink(temporary)
    return True


def _prune(out_dir: Path, plan: EducationPlan, journal: Journal, summary: EducationSummary, on_event: Event) -> None:
    for name in plan.stale:
        journal.drop([name])
        for step in prune_steps(out_dir, plan.manifest[name]):
            if step.action == "delete":
                try:
                    (out_dir / step.key).unlink(missing_ok=True)
                except OSError as exc:
                    summary.problems.append(f"{out_dir / step.key}: cannot delete: {exc.strerror or exc}")
                    continue
                summary.pruned.append(step.key)
                on_event("pruned", str(out_dir / step.key), "")
            else:
                summary.kept.append((step.key, step.reason))
    summary.stale = []


def education_lines(summary: EducationSummary) -> list[str]:
    """Return the closing lines of a run: the counts, then each file failed, changed, stale or kept, and problems."""
    out_dir = summary.out_dir
    stale = f", stale {len(summary.stale)} (--prune deletes them)" if summary.stale else ""
    pruned = f", pruned {len(summary.pruned)}" if summary.pruned else ""
    lines = [
        f"OpenEMR education folder {out_dir}: wrote {len(summary.written)} file(s) from {summary.renders} "
        f"handout(s), unchanged {summary.unchanged}, failed {len(summary.failed)}{stale}{pruned}, "
        f"in {summary.seconds:.1f} s."
    ]
    lines += [f"failed: {out_dir / name}: {reason}" for name, reason in summary.failed]
    lines += [f"left alone: {out_dir / name}: {reason}" for name, reason in summary.changed]
    lines += [f"stale: {out_dir / name}" for name in summary.stale]
    lines += [f"kept: {out_dir / name}: {reason}" for name, reason in summary.kept]
    lines += [f"problem: {text}" for text in summary.problems]
    return lines


def education_plan_lines(plan: EducationPlan) -> Iterator[str]:
    """Yield what a dry run of the folder would do: each file to write and why, then each file left alone."""
    out_dir = plan.request.out_dir
    for unit in plan.units:
        if unit.item.action == "failed":
            yield from (f"{'fail':<10} {out_dir / name}  ({unit.item.reasons[0]})" for name in unit.names)
        yield from (f"{'write':<10} {out_dir / name}  ({why})" for name, why in unit.writes)
    yield from (f"{'left alone':<10} {out_dir / name}  ({why})" for name, why in plan.changed)
    yield from (f"{'stale':<10} {out_dir / name}" for name in plan.stale)
