"""Batch builds: plan what changed, render it on warm workers or a cluster, keep the manifest true."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import HandoutError
from ..inputs.brands import brand_ids
from ..inputs.jobs import JobFile, expand, read_jobs
from ..inputs.sections import languages
from ..openemr import education_languages
from ..project import Project
from ..render_service import DEFAULT_TIME_LIMIT, Executor, InlineExecutor, open_executor, worker_identity
from .education import (
    EducationPlan,
    EducationRequest,
    EducationSummary,
    check_brand,
    check_folder,
    education_lines,
    education_plan_lines,
    folder_problem,
    plan_education,
    run_education,
)
from .lock import folder_lock
from .manifest import ManifestEntry, load_manifest
from .plan import Plan, PlanItem, plan
from .report import dry_run_lines, event_reporter, progressbar, rebuild_lines, summary_lines
from .run import Summary, run

__all__ = [
    "EducationPlan",
    "EducationRequest",
    "EducationSummary",
    "ManifestEntry",
    "Plan",
    "PlanItem",
    "Summary",
    "check_brand",
    "check_folder",
    "dry_run_lines",
    "education_lines",
    "education_plan_lines",
    "event_reporter",
    "executor_for",
    "folder_lock",
    "folder_problem",
    "job_id",
    "load_manifest",
    "plan",
    "plan_education",
    "plan_job_file",
    "progressbar",
    "read_job_file",
    "rebuild_lines",
    "renders_executor",
    "run",
    "run_education",
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
    renders = batch_plan.count("build") + (batch_plan.education.renders if batch_plan.education is not None else 0)
    with renders_executor(
        renders, batch_plan.assets, where, project=project, workers=workers, time_limit=time_limit
    ) as ex:
        yield ex


@contextmanager
def renders_executor(
    renders: int, assets: str, where: str, *, project: Project, workers: int, time_limit: float = DEFAULT_TIME_LIMIT
) -> Iterator[Executor]:
    """Open the executor for some renders; for none, start no workers at all."""
    if not renders:
        yield InlineExecutor()
        return
    with open_executor(where, project=project, assets=assets, workers=workers, time_limit=time_limit) as ex:
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
    identity = worker_identity()
    batch_plan = plan(
        project, expand(job_file), out_dir, today=today, identity=identity, html=html, force=force, job=job
    )
    if job_file.openemr_education is None:
        return batch_plan
    folder = Path(job_file.openemr_education)
    if folder.resolve() == out_dir.resolve():
        where = str(job_path) if job_path is not None else "job file"
        raise HandoutError(f"{where}: openemr_education: is the output folder {out_dir}; give a folder of its own")
    # The project's default brand, every language OpenEMR asks for; its own force, never pruned by --prune.
    request = EducationRequest(folder, project.default_brand, education_languages(languages(project)), force=force)
    education = plan_education(project, request, today=today, identity=identity)
    return dataclasses.replace(batch_plan, education=education)
