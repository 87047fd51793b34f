"""Batch builds: plan what changed, render it on warm workers or a cluster, keep the manifest true."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..project import Project
from ..render_service import DEFAULT_TIME_LIMIT, Executor, InlineExecutor, open_executor
from .manifest import ManifestEntry, load_manifest
from .plan import Plan, PlanItem, plan
from .report import dry_run_lines, event_reporter, progressbar, summary_lines
from .run import Summary, run

__all__ = [
    "ManifestEntry",
    "Plan",
    "PlanItem",
    "Summary",
    "dry_run_lines",
    "event_reporter",
    "executor_for",
    "load_manifest",
    "plan",
    "progressbar",
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
