"""Batch builds: plan what changed, render in parallel on any Executor, keep the manifest true."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import functools
import hashlib
import json
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import __version__
from .build import BuildRequest, Inputs, compose_request, load_inputs, render_handout
from .errors import HandoutError
from .jobs import Output, record_outputs
from .manifest import load_manifest, save_manifest, sha256_file
from .models import BASE_LANGUAGE, Handout
from .output.pdf import renderer_versions
from .project import Project

# Handouts per worker process before a fresh pool takes over. Memory grows about 1 MiB per 15
# renders (measured), so this bounds a worker well under 300 MiB.
RECYCLE_AFTER = 200
DEFAULT_TIME_LIMIT = 300.0
MANIFEST_FLUSH_SECONDS = 1.0

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
    assets: str  # one digest of templates, styles and fonts: workers cache their tools by it
    warnings: tuple[str, ...] = ()
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count(self, action: Action) -> int:
        """Return how many outputs have this action."""
        return sum(1 for item in self.items if item.action == action)


@dataclass(frozen=True)
class RenderJob:
    """What a worker needs to render one output; small and picklable for any executor."""

    key: str
    root: str
    assets: str
    handout: Handout
    html: bool
    time_limit: float


@dataclass(frozen=True)
class RenderOutcome:
    """A worker's answer: the PDF (and HTML) or the reason it failed, plus the worker's peak memory."""

    key: str
    pdf: bytes | None
    html: str | None
    error: str | None
    pid: int
    peak_rss_kib: int


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


def input_record(
    handout: Handout, inputs: Inputs, *, release: bool, html: bool, renderer: dict[str, str]
) -> dict[str, Any]:
    """Return everything an output is built from, as the manifest records it."""
    states = handout.states
    return {
        "tool": handout.tool_version,
        "renderer": renderer,
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
    for name, value in new["renderer"].items():
        before = (old.get("renderer") or {}).get(name)
        if before != value:
            reasons.append(f"{name} {before} -> {value}")
    for group, label in (("templates", "template"), ("styles", "stylesheet"), ("fonts", "font"), ("brand", "brand")):
        if old.get(group) != new[group]:
            reasons.append(f"{label} changed")
    old_sections = old.get("sections") or {}
    for section_id, now in new["sections"].items():
        was = old_sections.get(section_id)
        if was is None:
            reasons.append(f"{section_id} added")
        elif was.get("version") != now["version"]:
            reasons.append(f"{section_id} {was.get('version')} -> {now['version']}")
        elif was.get("digest") != now["digest"]:
            reasons.append(f"{section_id} edited")
        if was is not None and was.get("state") != now["state"]:
            reasons.append(f"{section_id} now {now['state']}")
    reasons += [f"{section_id} removed" for section_id in old_sections if section_id not in new["sections"]]
    for flag in ("release", "html", "language", "layout", "appendix"):
        if old.get(flag) != new[flag]:
            reasons.append(f"{flag} changed")
    return reasons or ["inputs changed"]


def plan(
    project: Project,
    outputs: list[Output],
    out_dir: Path,
    *,
    today: dt.date,
    html: bool = False,
    force: bool = False,
) -> Plan:
    """Decide for every output, and the review record of each brand and language, whether to build it."""
    outputs = [*outputs, *record_outputs(outputs)]
    manifest, warning = load_manifest(out_dir)
    inputs = load_inputs(project, [*(o.language for o in outputs), BASE_LANGUAGE], [o.brand for o in outputs], today)
    renderer = renderer_versions()
    items = []
    for output in outputs:
        request = BuildRequest(
            sections=output.sections,
            brand=output.brand,
            language=output.language,
            layout=output.layout,
            out=out_dir / output.key,
            today=today,
            release=output.release,
            appendix=output.appendix,
        )
        try:
            handout = compose_request(inputs, request)
        except HandoutError as exc:
            reason = "; ".join([str(exc), *(str(p) for p in exc.problems)])
            items.append(PlanItem(output, "failed", (reason,)))
            continue
        record = input_record(handout, inputs, release=output.release, html=html, renderer=renderer)
        digest = fingerprint(record)
        reasons = _rebuild_reasons(manifest.get(output.key), record, digest, out_dir / output.key, html=html)
        if force:
            reasons = ["forced"]
        action: Action = "build" if reasons else "unchanged"
        items.append(PlanItem(output, action, tuple(reasons), handout, record, digest))
    wanted = {o.key for o in outputs}
    stale = tuple(sorted(key for key in manifest if key not in wanted))
    return Plan(tuple(items), stale, inputs.assets_digest, (warning,) if warning else (), manifest)


def _rebuild_reasons(
    entry: dict[str, Any] | None, record: dict[str, Any], digest: str, path: Path, *, html: bool
) -> list[str]:
    if entry is None:
        return ["new" if not path.exists() else "not in the manifest"]
    if entry.get("fingerprint") != digest:
        return change_reasons(entry.get("inputs") or {}, record)
    actual = sha256_file(path)
    if actual is None:
        return ["output missing"]
    if actual != entry.get("sha256"):
        return ["output changed on disk"]
    if html and not path.with_suffix(".html").is_file():
        return ["HTML missing"]
    return []


@functools.lru_cache(maxsize=2)
def _worker_tools(root: str, assets: str) -> tuple[Any, Any]:
    """Build, once per worker process and asset version, the Jinja environment and the renderer."""
    from .layouts import LAYOUTS
    from .output.html import environment, stylesheet_paths
    from .output.pdf import make_renderer

    project = Project(Path(root))
    stylesheets = {name: stylesheet_paths(project.styles_dir, name) for name in LAYOUTS}
    return environment(project.templates_dir), make_renderer(stylesheets, project.readable_dirs)


def warm_worker(root: str, assets: str) -> None:
    """Load fonts and parse stylesheets when a worker starts, not during its first job."""
    _worker_tools(root, assets)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError after `seconds`, where the platform lets us (a process's main thread)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield  # e.g. inside a Dask worker thread: the cluster's own limits apply
        return

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render_job(job: RenderJob) -> RenderOutcome:
    """Render one output in a worker; any failure becomes the outcome's error, never an exception."""
    from .output.html import render_html

    pdf = html = error = None
    try:
        env, renderer = _worker_tools(job.root, job.assets)
        project = Project(Path(job.root))
        with time_limit(job.time_limit):
            source = render_html(job.handout, env, link_styles=False)
            pdf = render_handout(job.handout, source, project, renderer=renderer).data
            if job.html:
                html = render_html(job.handout, env, base_href=project.base_url)
    except HandoutError as exc:
        error = "; ".join([str(exc), *(str(p) for p in exc.problems)])
    except TimeoutError as exc:
        error = str(exc)
    except Exception as exc:  # one broken job must not stop the batch
        error = f"{type(exc).__name__}: {exc}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return RenderOutcome(job.key, pdf if error is None else None, html, error, os.getpid(), peak)


class _NoExecutor(cf.Executor):
    """Stands in when nothing needs rendering, so a no-op run starts no workers."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        raise AssertionError("nothing should be submitted when nothing is to be built")


NO_EXECUTOR = _NoExecutor()


class RecyclingProcessPool(cf.Executor):
    """A spawn-based process pool replaced by a fresh one after a number of tasks.

    ProcessPoolExecutor's own max_tasks_per_child can hang on Python 3.11 when workers exit
    (CPython gh-115634), so recycling is done here by swapping whole pools.
    """

    def __init__(self, jobs: int, root: str, assets: str, recycle_after: int = RECYCLE_AFTER) -> None:
        self.jobs, self.root, self.assets = jobs, root, assets
        self.limit = recycle_after * jobs
        self.submitted = 0
        self.pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        import multiprocessing

        return cf.ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=warm_worker,
            initargs=(self.root, self.assets),
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        if self.submitted and self.submitted % self.limit == 0:
            # The old pool finishes what it holds while the new one warms up.
            old, self.pool = self.pool, self._new_pool()
            old.shutdown(wait=False)
        self.submitted += 1
        return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def local_executor(jobs: int, root: str, assets: str) -> tuple[cf.Executor, Callable[[], None]]:
    """Return a pool of warmed-up, recycled worker processes, and how to stop it."""
    pool = RecyclingProcessPool(jobs, root, assets)
    return pool, lambda: pool.shutdown(wait=True, cancel_futures=True)


def dask_executor(address: str) -> tuple[cf.Executor, Callable[[], None]]:
    """Return a concurrent.futures view of a Dask cluster, and how to disconnect from it."""
    try:
        from distributed import Client
    except ImportError:
        raise HandoutError("--executor dask://... needs the dask extra: pip install 'handouts[dask]'") from None
    try:
        client = Client(address, timeout=15)  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise HandoutError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    executor = client.get_executor(pure=False)  # type: ignore[no-untyped-call]

    def close() -> None:
        executor.shutdown(wait=False)
        client.close()  # type: ignore[no-untyped-call]

    return executor, close


def _remove_leftover_temp_files(out_dir: Path) -> None:
    # write_atomic's temporary files are left behind only by a killed run.
    for path in out_dir.rglob(".*.tmp"):
        path.unlink(missing_ok=True)


def run(
    project: Project,
    batch_plan: Plan,
    out_dir: Path,
    executor: cf.Executor,
    *,
    html: bool = False,
    prune: bool = False,
    time_limit_seconds: float = DEFAULT_TIME_LIMIT,
    window: int = 8,
    on_event: Callable[[str, str, str], None] = lambda kind, key, detail: None,
) -> Summary:
    """Render what the plan says to build, write each output atomically and keep the manifest true."""
    started = time.monotonic()
    summary = Summary(unchanged=batch_plan.count("unchanged"), stale=list(batch_plan.stale))
    summary.failed = [(i.output.key, i.reasons[0]) for i in batch_plan.items if i.action == "failed"]
    entries = dict(batch_plan.manifest)
    to_build = [item for item in batch_plan.items if item.action == "build"]
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftover_temp_files(out_dir)
    # Forget outputs about to be replaced before touching them, so that whenever this run is
    # killed, every entry left in the manifest still describes the file on disk.
    if to_build:
        for item in to_build:
            entries.pop(item.output.key, None)
        save_manifest(out_dir, entries)
    queue = iter(to_build)
    in_flight: dict[cf.Future[RenderOutcome], PlanItem] = {}

    def submit_more() -> None:
        # A bounded window keeps Ctrl-C quick and lets the local pool recycle its workers.
        while len(in_flight) < window:
            item = next(queue, None)
            if item is None:
                return
            assert item.handout is not None  # every item planned for building has its handout
            job = RenderJob(
                item.output.key, str(project.root), batch_plan.assets, item.handout, html, time_limit_seconds
            )
            in_flight[executor.submit(render_job, job)] = item

    last_flush = time.monotonic()
    written = 0
    try:
        submit_more()
        while in_flight:
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in done:
                item = in_flight.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # a dead worker takes only its own job down
                    outcome = RenderOutcome(item.output.key, None, None, f"worker failed: {exc}", 0, 0)
                if outcome.pid:
                    summary.peak_worker_rss_kib[outcome.pid] = max(
                        outcome.peak_rss_kib, summary.peak_worker_rss_kib.get(outcome.pid, 0)
                    )
                if outcome.error is not None or outcome.pdf is None:
                    summary.failed.append((item.output.key, outcome.error or "no PDF"))
                    on_event("failed", item.output.key, outcome.error or "no PDF")
                    continue
                entries[item.output.key] = _write_outputs(out_dir, item, outcome)
                written += 1
                summary.built.append(item.output.key)
                on_event("built", item.output.key, ", ".join(item.reasons))
            if time.monotonic() - last_flush >= MANIFEST_FLUSH_SECONDS:
                save_manifest(out_dir, entries)
                last_flush = time.monotonic()
            submit_more()
    finally:
        for future in in_flight:
            future.cancel()
        if written:
            save_manifest(out_dir, entries)
    if prune and batch_plan.stale:
        for key in batch_plan.stale:
            for path in (out_dir / key, (out_dir / key).with_suffix(".html")):
                path.unlink(missing_ok=True)
            entries.pop(key, None)
            summary.pruned.append(key)
            on_event("pruned", key, "")
        save_manifest(out_dir, entries)
    summary.seconds = time.monotonic() - started
    return summary


def _write_outputs(out_dir: Path, item: PlanItem, outcome: RenderOutcome) -> dict[str, Any]:
    from .atomic import write_atomic

    assert outcome.pdf is not None and item.handout is not None
    path = out_dir / item.output.key
    write_atomic(path, outcome.pdf)
    if outcome.html is not None:
        write_atomic(path.with_suffix(".html"), outcome.html.encode("utf-8"))
    handout = item.handout
    return {
        "path": item.output.key,
        "sha256": hashlib.sha256(outcome.pdf).hexdigest(),
        "handout_version": handout.version,
        "sections": {s.id: s.version for s in handout.sections},
        "brand": handout.brand.id,
        "language": handout.language,
        "layout": handout.layout,
        "fingerprint": item.fingerprint,
        "inputs": item.inputs,
        "html": item.output.key.removesuffix(".pdf") + ".html" if outcome.html is not None else None,
        "tool_version": __version__,
    }
