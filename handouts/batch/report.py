"""What a batch tells its user: the dry-run listing, progress while it renders, and the closing summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from .education import education_lines, education_plan_lines
from .plan import Plan, PlanItem
from .prune import prune_steps
from .run import Summary

LABELS = {"build": "build", "unchanged": "unchanged", "failed": "fail"}
PRUNE_LABELS = {"delete": "prune", "keep": "keep", "refuse": "refuse"}


def item_line(item: PlanItem, out_dir: Path) -> str:
    """Return what a run does with one output and, unless it is unchanged, why."""
    why = f"  ({', '.join(item.reasons)})" if item.action != "unchanged" else ""
    return f"{LABELS[item.action]:<10} {out_dir / item.output.key}{why}"


def rebuild_lines(plan: Plan, out_dir: Path) -> list[str]:
    """Return a line for each output the run will build, with the plan's reasons, as the dry run shows them."""
    return [item_line(item, out_dir) for item in plan.items if item.action == "build"]


def dry_run_lines(plan: Plan, out_dir: Path, *, prune: bool = False) -> list[str]:
    """Return one line per output saying what a run would do and why, then a count.

    With `prune`, each stale file says whether it would be deleted, or kept and why.
    """
    lines = [item_line(item, out_dir) for item in plan.items]
    deletions = 0
    for key in plan.stale:
        if not prune:
            lines.append(f"{'stale':<10} {out_dir / key}")
            continue
        for step in prune_steps(out_dir, plan.manifest[key]):
            why = f"  ({step.reason})" if step.reason else ""
            lines.append(f"{PRUNE_LABELS[step.action]:<10} {out_dir / step.key}{why}")
            deletions += step.action == "delete"
    if plan.education is not None:
        lines += education_plan_lines(plan.education)
    deleting = f" ({deletions} file(s) to delete)" if prune else ""
    lines.append(
        f"Plan: {plan.count('build')} to build, {plan.count('unchanged')} unchanged, "
        f"{plan.count('failed')} failing, {len(plan.stale)} stale{deleting}. Nothing written (--dry-run)."
    )
    return lines


def summary_lines(summary: Summary, out_dir: Path) -> list[str]:
    """Return the closing lines of a run: counts and time, then each stale, kept, failed output and problem."""
    # What --prune handled is no longer stale: deleted, or kept or refused with a line of its own.
    stale = f", stale {len(summary.stale)} (--prune deletes them)" if summary.stale else ""
    deleted = f", {len(summary.pruned)} file(s) pruned" if summary.pruned else ""
    peak = summary.peak_worker_rss_kib
    memory = f" (peak worker memory {max(peak.values()) / 1024:.0f} MiB)" if peak else ""
    lines = [
        f"Built {len(summary.built)}, unchanged {summary.unchanged}, failed {len(summary.failed)}{stale}{deleted}, "
        f"in {summary.seconds:.1f} s{memory}."
    ]
    lines += [f"stale: {out_dir / key}" for key in summary.stale]
    lines += [f"kept: {out_dir / key}: {reason}" for key, reason in summary.kept]
    lines += [f"failed: {out_dir / key}: {reason}" for key, reason in summary.failed]
    lines += [f"problem: {text}" for text in summary.problems]
    if summary.education is not None:
        # Its headline only: its failures are among the problems above.
        lines += education_lines(summary.education)[:1]
    return lines


class Bar(Protocol):
    """A progress bar: told how many steps are done."""

    def update(self, steps: int) -> None:
        """Advance the bar."""
        ...


class NullBar:
    """A progress bar that shows nothing, for output that is not a terminal."""

    def update(self, steps: int) -> None:
        """Do nothing."""


@contextmanager
def progressbar(length: int, *, show: bool, make: Callable[..., Any] | None = None) -> Iterator[Bar]:
    """Yield a progress bar of `length` steps, or a silent one when `show` is false (as sqlite-utils does)."""
    if not show or make is None:
        yield NullBar()
        return
    with make(length=length, label="Rendering") as bar:
        yield bar


def event_reporter(
    out_dir: Path, bar: Bar, echo: Callable[[str, bool], None], *, with_bar: bool
) -> Callable[[str, str, str], None]:
    """Return the run's event handler: a line per output, or beside a bar, only failures (on stderr)."""

    def report(kind: str, key: str, detail: str) -> None:
        if with_bar:
            bar.update(1 if kind in ("built", "failed") else 0)
            if kind in ("failed", "problem"):
                echo(f"\n{kind} {out_dir / key}: {detail}", True)
            return
        echo(f"{kind} {out_dir / key}" + (f" ({detail})" if detail else ""), False)

    return report
