"""Batch builds: plan what changed, render it on warm workers or a cluster, keep the manifest true."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import HandoutError
from ..inputs.brands import brand_ids
from ..inputs.jobs import JobFile, expand, read_jobs
from ..inputs.sections import languages
from ..project import Project
from ..render_service import DEFAULT_TIME_LIMIT, Executor, InlineExecutor, open_executor, worker_identity
from .lock import folder_lock
from .manifest import ManifestEntry, load_manifest
from .plan import Plan, PlanItem, plan
from .report import dry_run_lines, event_reporter, progressbar, rebuild_lines, summary_lines
from .run import Summary, run

__all__ = [
    "ManifestEntry",
    "Plan",
    "PlanItem",
    "Summary",
    "dry_run_lines",
    "event_reporter",
    "executor_for",
    "folder_lock",
    "job_id",
    "load_manifest",
    "plan",
    "plan_job_file",
    "progressbar",
    "read_job_file",
    "rebuild_lines",
    "run",
    "summary_lines",
    "window_for",
]


def window_for(where: str, workers: int) -> int:
    """Return how many renders to keep in flight: two per local worker, more for a cluster that queues them."""
    return 2 * workers if where == "local" else max(2 * workers, 64)


@contextmanager
def executor_for(
    batch_plan: Plan, where: str, *, project: Project, workers: int, time_limit: float = DEFAULT_TIME_LIMIT
) -> Iterator[Executor]:
    """Open the executor a plan needs; when nothing is to be built, start no workers at all."""
    if not batch_plan.count("build"):
        yield InlineExecutor()
        return
    with open_executor(where, project=project, assets=batch_plan.assets, workers=workers, time_limit=time_limit) as ex:
        yield ex


def read_job_file(project: Project, path: Path) -> JobFile:
    """Read a job file, checked against the project's brands and languages, or raise with every problem."""
    job_file, problems = read_jobs(
        path,
        brands=brand_ids(project),
        languages=languages(project),
        sections=project.sections.order,
        kits=project.kits,
    )
    if job_file is None:
        raise HandoutError(f"invalid job file: {len(problems)} problem(s)", problems)
    return job_file


def job_id(job_path: Path, root: Path) -> str:
    """Name a job file as manifest entries record it: its path in the project, or its absolute path if outside.

    Not a path from the output folder: a copied or moved output folder would belong to no job any more.
    """
    job = job_path.resolve()
    return job.relative_to(root.resolve()).as_posix() if job.is_relative_to(root.resolve()) else job.as_posix()


def plan_job_file(
    project: Project,
    job_file: JobFile,
    out_dir: Path,
    *,
    today: dt.date,
    html: bool,
    force: bool,
    job_path: Path | None = None,
) -> Plan:
    """Plan every output of a job file, fingerprinted with this process's code and renderer versions."""
    job = job_id(job_path, project.root) if job_path is not None else None
    return plan(
        project, expand(job_file), out_dir, today=today, identity=worker_identity(), html=html, force=force, job=job
    )
