"""Run a batch plan: render what must be built on any executor, write each output atomically, keep the manifest true."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..atomic import write_atomic
from ..errors import HandoutError
from ..project import Project
from ..render_service import Executor, RenderJob, RenderOutcome
from .folder import set_aside, target_problem
from .lock import folder_lock
from .manifest import MANIFEST_NAME, STAT_NAME, Journal, ManifestEntry, signature
from .plan import Plan, PlanItem
from .prune import PruneStep, prune_steps

if TYPE_CHECKING:
    from .education import EducationSummary

Event = Callable[[str, str, str], None]


@dataclass
class Summary:
    """What a batch run did."""

    built: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    # Stale outputs left in the manifest: none after --prune, which forgets every one it handles.
    stale: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    # Stale files pruning left in place: (file, why), e.g. changed since they were built.
    kept: list[tuple[str, str]] = field(default_factory=list)
    # What needs the user's attention beyond failed outputs: files kept aside, paths refused. Exit 1.
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    peak_worker_rss_kib: dict[int, int] = field(default_factory=dict)
    # What the job file's OpenEMR education folder got, if it names one.
    education: EducationSummary | None = None


def entry_for(item: PlanItem, outcome: RenderOutcome, job: str | None = None) -> ManifestEntry:
    """Return the manifest entry of an output just rendered."""
    assert outcome.pdf is not None and item.handout is not None
    handout = item.handout
    html = outcome.html.encode("utf-8") if outcome.html is not None else None
    return ManifestEntry(
        path=item.output.key,
        sha256=hashlib.sha256(outcome.pdf).hexdigest(),
        handout_version=handout.version,
        sections={s.id: s.version for s in handout.sections},
        brand=handout.brand.id,
        language=handout.language,
        layout=handout.layout,
        fingerprint=item.fingerprint,
        inputs=item.inputs,
        html=item.output.key.removesuffix(".pdf") + ".html" if html is not None else None,
        tool_version=__version__,
        job=job,
        html_sha256=hashlib.sha256(html).hexdigest() if html is not None else None,
    )


def _write(out_dir: Path, item: PlanItem, outcome: RenderOutcome, job: str | None) -> tuple[ManifestEntry, list[Any]]:
    """Write an output and its HTML, raising OSError with the reason when the folder refuses them."""
    entry = entry_for(item, outcome, job)
    assert outcome.pdf is not None
    for key in (entry.path, entry.html):
        # Never through a link or over a folder: the tool writes only plain files of its own. Raised
        # as the OSError a refused write gives, so both fail this output the same way.
        problem = target_problem(out_dir, key) if key is not None else None
        if problem is not None:
            raise OSError(0, problem)
    path = out_dir / item.output.key
    write_atomic(path, outcome.pdf)
    if outcome.html is not None:
        write_atomic(path.with_suffix(".html"), outcome.html.encode("utf-8"))
    return entry, [*(signature(path) or []), entry.sha256]


def _outcomes(
    jobs: Iterator[tuple[PlanItem, RenderJob]], executor: Executor, window: int
) -> Iterator[tuple[PlanItem, RenderOutcome]]:
    """Yield each job's outcome as it finishes, keeping at most `window` in flight."""
    in_flight: dict[cf.Future[RenderOutcome], PlanItem] = {}
    try:
        while True:
            # A bounded window keeps Ctrl-C quick and memory flat however long the batch.
            while len(in_flight) < window and (pair := next(jobs, None)) is not None:
                try:
                    in_flight[executor.submit(pair[1])] = pair[0]
                except Exception as exc:  # a pool that cannot take work fails the job, not the batch
                    yield pair[0], RenderOutcome(pair[1].key, None, None, f"cannot start rendering: {exc}")
            if not in_flight:
                return
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in done:
                item = in_flight.pop(future)
                try:
                    yield item, future.result()
                except TimeoutError:
                    yield item, RenderOutcome(item.output.key, None, None, "stopped: over the time limit")
                except Exception as exc:  # a dead worker takes only its own job down
                    yield (
                        item,
                        RenderOutcome(item.output.key, None, None, f"worker failed: {exc or type(exc).__name__}"),
                    )
    finally:
        for future in in_flight:
            future.cancel()


def run(
    project: Project,
    batch_plan: Plan,
    out_dir: Path,
    executor: Executor,
    *,
    html: bool = False,
    prune: bool = False,
    window: int = 8,
    on_event: Event = lambda kind, key, detail: None,
) -> Summary:
    """Render what the plan says to build, write each output atomically and keep the manifest true."""
    started = time.monotonic()
    summary = Summary(unchanged=batch_plan.count("unchanged"), stale=list(batch_plan.stale))
    summary.failed = [(i.output.key, i.reasons[0]) for i in batch_plan.items if i.action == "failed"]
    summary.problems = list(batch_plan.problems)
    to_build = [item for item in batch_plan.items if item.action == "build"]
    _prepare(out_dir, batch_plan)
    journal = Journal(out_dir, batch_plan.manifest)
    stats = dict(batch_plan.stats)
    jobs = (
        (item, RenderJob(item.output.key, str(project.root), batch_plan.assets, item.handout, html))
        for item in to_build
        if item.handout is not None
    )
    try:
        # Forget outputs about to be replaced before touching them, so that whenever this run is
        # killed, every entry the manifest and its journal hold still describes the file on disk.
        journal.drop(item.output.key for item in to_build)
        for key in batch_plan.adopt:
            journal.put(dataclasses.replace(batch_plan.manifest[key], job=batch_plan.job))
        for item, outcome in _outcomes(jobs, executor, window):
            _record(out_dir, item, outcome, journal, stats, summary, on_event, batch_plan.job)
        if prune:
            _prune(out_dir, batch_plan, journal, summary, on_event)
    finally:
        cache_changed = bool(to_build) or batch_plan.stats_changed or (out_dir / STAT_NAME) in batch_plan.aside
        problem = journal.fold(stats if cache_changed else None)
        if problem is not None:
            summary.problems.append(f"{out_dir / MANIFEST_NAME}: {problem}")
            on_event("problem", MANIFEST_NAME, problem)
    if batch_plan.education is not None:
        _run_education(project, batch_plan, executor, window, on_event, summary)
    summary.seconds = time.monotonic() - started
    return summary


def _run_education(
    project: Project, batch_plan: Plan, executor: Executor, window: int, on_event: Event, summary: Summary
) -> None:
    """Keep the job file's OpenEMR education folder on the same workers, planned again under its own lock."""
    from .education import EDUCATION_JOB, folder_problem, plan_education, run_education

    assert batch_plan.education is not None
    request, planned = batch_plan.education.request, batch_plan.education
    if (problem := folder_problem(request.out_dir)) is not None:
        raise HandoutError(problem)
    with folder_lock(request.out_dir, Path(batch_plan.job or EDUCATION_JOB)):
        plan = plan_education(project, request, today=planned.today, identity=planned.identity)
        # Its events name whole paths: the reporter puts them after the batch's folder, which an absolute one replaces.
        education = run_education(
            project,
            plan,
            executor,
            window=window,
            on_event=lambda kind, path, detail: on_event(kind, str(Path(path).absolute()), detail),
        )
    summary.education = education
    out = request.out_dir
    summary.problems += [f"{out / name}: {reason}" for name, reason in [*education.failed, *education.changed]]
    summary.problems += education.problems


def _prepare(out_dir: Path, batch_plan: Plan) -> None:
    """Make the output folder and move aside the files at the tool's names that the tool did not write."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HandoutError(f"{out_dir}: cannot create the output folder: {exc.strerror or exc}") from None
    for path in batch_plan.aside:
        try:
            set_aside(path)
        except OSError as exc:
            raise HandoutError(f"{path}: cannot move it aside: {exc.strerror or exc}") from None


def _record(
    out_dir: Path,
    item: PlanItem,
    outcome: RenderOutcome,
    journal: Journal,
    stats: dict[str, list[Any]],
    summary: Summary,
    on_event: Event,
    job: str | None,
) -> None:
    """Write one rendered output and record it, or record why it failed; a refused write fails only this output."""
    key = item.output.key
    if outcome.pid:
        peak = summary.peak_worker_rss_kib
        peak[outcome.pid] = max(outcome.peak_rss_kib, peak.get(outcome.pid, 0))
    error = None if outcome.error is None and outcome.pdf is not None else (outcome.error or "no PDF")
    if error is None:
        try:
            entry, stats[key] = _write(out_dir, item, outcome, job)
        except OSError as exc:
            error = f"cannot write: {exc.strerror or exc}"
    if error is not None:
        summary.failed.append((key, error))
        on_event("failed", key, error)
        return
    journal.put(entry)
    summary.built.append(key)
    on_event("built", key, ", ".join(item.reasons))


def _prune(out_dir: Path, batch_plan: Plan, journal: Journal, summary: Summary, on_event: Event) -> None:
    for key in batch_plan.stale:
        steps = prune_steps(out_dir, batch_plan.manifest[key])
        # Forgotten first: a run killed between the two leaves a file the manifest does not vouch for.
        # A file kept or refused is forgotten too: the manifest no longer vouches for what is there.
        journal.drop([key])
        for step in steps:
            if step.action == "delete":
                try:
                    (out_dir / step.key).unlink(missing_ok=True)
                except OSError as exc:
                    step = PruneStep(step.key, "refuse", f"cannot delete: {exc.strerror or exc}")
            if step.action == "delete":
                summary.pruned.append(step.key)
                on_event("pruned", step.key, "")
            elif step.action == "keep":
                summary.kept.append((step.key, step.reason))
                on_event("kept", step.key, step.reason)
            else:
                summary.problems.append(f"{out_dir / step.key}: {step.reason}")
                on_event("problem", step.key, step.reason)
    summary.stale = []
