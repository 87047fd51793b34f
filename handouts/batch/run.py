"""Run a batch plan: render what must be built on any executor, write each output atomically, keep the manifest true."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import write_atomic
from ..project import Project
from ..render_service import Executor, RenderJob, RenderOutcome
from .manifest import Journal, ManifestEntry, signature
from .plan import Plan, PlanItem

Event = Callable[[str, str, str], None]


@dataclass
class Summary:
    """What a batch run did."""

    built: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    peak_worker_rss_kib: dict[int, int] = field(default_factory=dict)


def _remove_leftover_temp_files(out_dir: Path) -> None:
    # write_atomic's temporary files are left behind only by a killed run.
    for path in out_dir.rglob(".*.tmp"):
        path.unlink(missing_ok=True)


def entry_for(item: PlanItem, outcome: RenderOutcome) -> ManifestEntry:
    """Return the manifest entry of an output just rendered."""
    assert outcome.pdf is not None and item.handout is not None
    handout = item.handout
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
        html=item.output.key.removesuffix(".pdf") + ".html" if outcome.html is not None else None,
        tool_version=__version__,
    )


def _write(out_dir: Path, item: PlanItem, outcome: RenderOutcome) -> tuple[ManifestEntry, list[Any]]:
    assert outcome.pdf is not None
    path = out_dir / item.output.key
    write_atomic(path, outcome.pdf)
    if outcome.html is not None:
        write_atomic(path.with_suffix(".html"), outcome.html.encode("utf-8"))
    entry = entry_for(item, outcome)
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
    to_build = [item for item in batch_plan.items if item.action == "build"]
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftover_temp_files(out_dir)
    journal = Journal(out_dir, batch_plan.manifest)
    stats = dict(batch_plan.stats)
    # Forget outputs about to be replaced before touching them, so that whenever this run is
    # killed, every entry the manifest and its journal hold still describes the file on disk.
    journal.drop(item.output.key for item in to_build)
    jobs = (
        (item, RenderJob(item.output.key, str(project.root), batch_plan.assets, item.handout, html))
        for item in to_build
        if item.handout is not None
    )
    try:
        for item, outcome in _outcomes(jobs, executor, window):
            if outcome.pid:
                peak = summary.peak_worker_rss_kib
                peak[outcome.pid] = max(outcome.peak_rss_kib, peak.get(outcome.pid, 0))
            if outcome.error is not None or outcome.pdf is None:
                summary.failed.append((item.output.key, outcome.error or "no PDF"))
                on_event("failed", item.output.key, outcome.error or "no PDF")
                continue
            entry, stats[item.output.key] = _write(out_dir, item, outcome)
            journal.put(entry)
            summary.built.append(item.output.key)
            on_event("built", item.output.key, ", ".join(item.reasons))
        if prune:
            _prune(out_dir, batch_plan.stale, journal, summary, on_event)
    finally:
        journal.fold(stats if to_build or batch_plan.stats_changed else None)
    summary.seconds = time.monotonic() - started
    return summary


def _prune(out_dir: Path, stale: tuple[str, ...], journal: Journal, summary: Summary, on_event: Event) -> None:
    for key in stale:
        # Forgotten first: a run killed between the two leaves a file the manifest does not vouch for.
        journal.drop([key])
        for path in (out_dir / key, (out_dir / key).with_suffix(".html")):
            path.unlink(missing_ok=True)
        summary.pruned.append(key)
        on_event("pruned", key, "")
