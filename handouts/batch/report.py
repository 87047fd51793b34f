"""What a batch tells its user: the dry-run listing, progress while it renders, and the closing summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from .plan import Plan
from .run import Summary

LABELS = {"build": "build", "unchanged": "unchanged", "failed": "fail"}


def dry_run_lines(plan: Plan, out_dir: Path) -> list[str]:
    """Return one line per output saying what a run would do and why, then a count."""
    lines = []
    for item in plan.items:
        why = f"  ({', '.join(item.reasons)})" if item.action != "unchanged" else ""
        lines.append(f"{LABELS[item.action]:<10} {out_dir / item.output.key}{why}")
    lines += [f"{'stale':<10} {out_dir / key}" for key in plan.stale]
    lines.append(
        f"Plan: {plan.count('build')} to build, {plan.count('unchanged')} unchanged, "
        f"{plan.count('failed')} failing, {len(plan.stale)} stale. Nothing written (--dry-run)."
    )
    return lines


def summary_lines(summary: Summary, out_dir: Path, *, pruned: bool) -> list[str]:
    """Return the closing lines of a run: counts and time, then each stale and failed output."""
    stale = ""
    if summary.stale:
        stale = f", stale {len(summary.stale)}" + ("" if pruned else " (--prune deletes them)")
    peak = summary.peak_worker_rss_kib
    memory = f" (peak worker memory {max(peak.values()) / 1024:.0f} MiB)" if peak else ""
    lines = [
        f"Built {len(summary.built)}, unchanged {summary.unchanged}, failed {len(summary.failed)}{stale}, "
        f"in {summary.seconds:.1f} s{memory}."
    ]
    lines += [f"stale: {out_dir / key}" for key in (summary.stale if not pruned else ())]
    lines += [f"failed: {out_dir / key}: {reason}" for key, reason in summary.failed]
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
            if kind == "failed":
                echo(f"\nfailed {out_dir / key}: {detail}", True)
            return
        echo(f"{kind} {out_dir / key}" + (f" ({detail})" if detail else ""), False)

    return report
