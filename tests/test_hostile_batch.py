"""Hostile input and faults for `batch`: nothing lost, nothing touched outside the output folder, nothing hangs.

The tests that start worker processes and kill them are in the render tier.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT

from handouts.render_service import RenderJob, RenderOutcome


def test_the_parent_watch_ends_an_orphaned_worker() -> None:
    code = "from handouts.render_service import watch_parent\nimport time\nwatch_parent(-1, 0.05)\ntime.sleep(30)\n"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=20)
    assert done.returncode == 1 and time.monotonic() - started < 10


def stuck_holding_the_gil(job: RenderJob) -> RenderOutcome:
    """Say it started (in the file its key names), then run C code that never releases the GIL."""
    Path(job.key).write_text("started")
    re.match(r"(a+)+$", "a" * 64 + "b")  # backtracks for ages inside the regex engine: no Python thread runs
    return RenderOutcome(job.key, b"%PDF", None, None)


def alive(pids: list[int]) -> list[int]:
    """Return the pids that still run (a zombie has ended)."""
    found = []
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(pid)
    return found


def children(pid: int) -> list[int]:
    """Return the pids of a process's children, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def workers_of(pid: int) -> list[int]:
    """Return the pids of a process's pool workers (not multiprocessing's resource tracker)."""
    found = []
    for child in children(pid):
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def wait_for(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.render
def test_workers_stuck_in_c_die_with_a_killed_parent(tmp_path: Path) -> None:
    markers = [tmp_path / f"started-{i}" for i in range(2)]
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{str(ROOT)!r}, {str(Path(__file__).parent)!r}]
        from test_hostile_batch import stuck_holding_the_gil
        from handouts.render_service import ProcessExecutor, RenderJob
        if __name__ == "__main__":
            pool = ProcessExecutor(2, {str(ROOT)!r}, "test", 600, render=stuck_holding_the_gil)
            keys = {[str(m) for m in markers]!r}
            futures = [pool.submit(RenderJob(key, {str(ROOT)!r}, "test", None)) for key in keys]
            time.sleep(600)
        """)
    )
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT)
    try:
        assert wait_for(lambda: all(m.exists() for m in markers), 60)
        workers = workers_of(parent.pid)
        assert len(workers) == 2
    finally:
        parent.kill()  # SIGKILL: the parent runs no cleanup at all
        parent.wait()
    assert wait_for(lambda: not alive(workers), 10), alive(workers)
