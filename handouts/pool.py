"""A render pool that heals: each worker process on its own pipe, replaced when it dies, hangs or has done enough."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .render_service import RECYCLE_AFTER, RenderJob, RenderOutcome, render_job, start_worker

# A fresh worker loads WeasyPrint, fonts and stylesheets; one that is not ready by then is killed and tried again.
START_SECONDS = 120.0
# How often an idle slot looks at its worker: an idle worker that died is replaced within this.
IDLE_LOOK_SECONDS = 0.25
# After a worker fails to start, the next try waits longer, up to this (a machine out of memory recovers slowly).
MAX_BACKOFF_SECONDS = 30.0


class WorkerStopped(RuntimeError):
    """A worker ended without answering, twice, or a job's function raised in the worker."""


@dataclass
class _Task:
    function: Callable[..., Any]
    args: tuple[Any, ...]
    future: cf.Future[Any]
    time_limit: float
    tries: int = 0


@dataclass
class PoolHealth:
    """What `/healthz` reports: workers wanted, ready now, and how many were replaced since the start."""

    workers: int
    ready: int
    replaced: int
    queued: int

    @property
    def ok(self) -> bool:
        """Tell whether a request can be rendered now or soon: at least one worker is ready."""
        return self.ready > 0


def _worker_main(connection: Any, parent: int, root: str, assets: str, warm: bool) -> None:
    # The worker's whole life: warm up, say so, then run what comes down its own pipe until told to stop.
    start_worker(parent, root, assets, warm)
    connection.send(("ready", None))
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        function, args = message
        try:
            answer: tuple[str, Any] = ("ok", function(*args))
        except Exception as exc:  # the type and words only; the parent turns them into one line
            answer = ("error", f"{type(exc).__name__}: {exc}")
        connection.send(answer)


@dataclass
class _Slot:
    """One worker process, its pipe, and how many jobs it has done."""

    number: int
    process: Any = None
    connection: Any = None
    done: int = 0
    ready: bool = False
    busy: bool = False
    replaced: int = 0  # counted here, by the slot's own thread: no two threads add to one number
    backoff: float = 0.5
    lock: threading.Lock = field(default_factory=threading.Lock)


class HealingPool:
    """Warm worker processes fed by one thread each; a dead, stuck or worn-out worker is replaced, never the pool.

    Each worker has its own pipe, so a worker killed mid-answer (by the out-of-memory killer, say)
    cannot leave a shared queue or lock broken for the others, which is how a shared-channel pool
    (pebble, ProcessPoolExecutor) ends in a state only a restart clears. A job whose worker died is
    tried once more on a fresh worker; a job past its time limit has its worker killed.
    """

    def __init__(
        self,
        workers: int,
        root: str,
        assets: str,
        time_limit: float,
        *,
        recycle_after: int = RECYCLE_AFTER,
        render: Callable[[RenderJob], RenderOutcome] = render_job,
        start_seconds: float = START_SECONDS,
    ) -> None:
        self.time_limit = time_limit
        self.render = render
        self.recycle_after = recycle_after
        self.start_seconds = start_seconds
        # Spawned, not forked: the server's threads and its event loop are not copied into a worker.
        self.context = multiprocessing.get_context("spawn")
        self.args = (os.getpid(), root, assets, render is render_job)
        self.tasks: queue.Queue[_Task | None] = queue.Queue()
        self.slots = [_Slot(number) for number in range(max(1, workers))]
        self.closed = threading.Event()
        self.threads = [
            threading.Thread(target=self._run_slot, args=(slot,), name=f"render-slot-{slot.number}", daemon=True)
            for slot in self.slots
        ]
        for thread in self.threads:
            thread.start()

    # -- what callers use ------------------------------------------------------------------------

    def submit(self, job: RenderJob) -> cf.Future[RenderOutcome]:
        """Queue a render job on the next free worker, with the time limit."""
        return self.call(self.render, job)

    def call(self, function: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Run a picklable function on a warm worker, with the time limit (the server's `check`)."""
        future: cf.Future[Any] = cf.Future()
        if self.closed.is_set():
            future.set_exception(WorkerStopped("the render workers are stopped"))
            return future
        self.tasks.put(_Task(function, args, future, self.time_limit))
        return future

    def health(self) -> PoolHealth:
        """Return how many workers are ready now, and how many were replaced."""
        return PoolHealth(
            workers=len(self.slots),
            ready=sum(1 for s in self.slots if s.ready and _alive(s.process)),
            replaced=sum(s.replaced for s in self.slots),
            queued=self.tasks.qsize(),
        )

    def pids(self) -> list[int]:
        """Return the worker processes' ids (for a watchdog, or a test that kills them)."""
        return [s.process.pid for s in self.slots if s.process is not None and s.process.pid is not None]

    def close(self) -> None:
        """Stop every worker at once: what they still hold is not wanted any more."""
        self.closed.set()
        for _ in self.slots:
            self.tasks.put(None)
        for slot in self.slots:
            self._stop(slot)
        for thread in self.threads:
            thread.join(timeout=5)
        # Whatever was still queued is answered, so no caller waits for a pool that is gone.
        while True:
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None and task.future.set_running_or_notify_cancel():
                task.future.set_exception(WorkerStopped("the render workers are stopped"))

    # -- one thread per worker -------------------------------------------------------------------

    def _run_slot(self, slot: _Slot) -> None:
        while not self.closed.is_set():
            if not slot.ready and not self._start(slot):
                self.closed.wait(slot.backoff)
                slot.backoff = min(slot.backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            try:
                task = self.tasks.get(timeout=IDLE_LOOK_SECONDS)
            except queue.Empty:
                if not _alive(slot.process):  # died while idle: replace it now, not at the next request
                    self._replace(slot)
                continue
            if task is None:
                return
            if not task.future.set_running_or_notify_cancel():
                continue
            try:
                self._run_task(slot, task)
            except Exception as exc:  # never leave a caller waiting on a future nobody will answer
                if not task.future.done():
                    task.future.set_exception(WorkerStopped(f"the renderer stopped ({type(exc).__name__})"))

    def _run_task(self, slot: _Slot, task: _Task) -> None:
        while True:
            slot.busy = True
            try:
                kind, value = self._exchange(slot, task)
            finally:
                slot.busy = False
            if kind == "ok":
                task.future.set_result(value)
            elif kind == "error":
                task.future.set_exception(WorkerStopped(value))
            elif kind == "timeout":
                self._replace(slot)
                task.future.set_exception(TimeoutError(f"stopped after its time limit of {task.time_limit:g} seconds"))
                return
            else:  # the worker died under the job: once more on a fresh one, then say so
                self._replace(slot)
                task.tries += 1
                if task.tries < 2 and not self.closed.is_set() and self._start(slot):
                    continue
                task.future.set_exception(WorkerStopped("the renderer stopped; please try again"))
                return
            slot.done += 1
            if slot.done >= self.recycle_after:  # memory creeps up over many renders: a fresh worker takes over
                self._replace(slot, count=False)
            return

    @staticmethod
    def _exchange(slot: _Slot, task: _Task) -> tuple[str, Any]:
        connection = slot.connection  # read once: close() may take it away meanwhile
        if connection is None:
            return "died", None
        try:
            connection.send((task.function, task.args))
            if not connection.poll(task.time_limit):
                return "timeout", None
            kind, value = connection.recv()
            return str(kind), value
        except (EOFError, OSError, ValueError):  # closed under us, or the worker's end is gone
            return "died", None

    # -- starting and stopping workers -----------------------------------------------------------

    def _start(self, slot: _Slot) -> bool:
        """Start a worker in this slot and wait until it is warm; return whether it is ready."""
        with slot.lock:
            if self.closed.is_set():
                return False
            ours, theirs = self.context.Pipe(duplex=True)
            # Not a daemon: a worker may fork a child of its own (check draws SVGs in one, with a time
            # limit). It still never outlives the server: start_worker ties its life to this process.
            process = self.context.Process(
                target=_worker_main, args=(theirs, *self.args), name=f"handouts-render-{slot.number}", daemon=False
            )
            try:
                process.start()
            except OSError:
                ours.close()
                theirs.close()
                return False
            # Only the worker holds its end now: when it dies the pipe reads as closed at once.
            theirs.close()
            slot.process, slot.connection, slot.done = process, ours, 0
        try:
            ready = ours.poll(self.start_seconds) and ours.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._stop(slot)
            return False
        slot.ready, slot.backoff = True, 0.5
        return True

    def _replace(self, slot: _Slot, *, count: bool = True) -> None:
        self._stop(slot)
        if count:
            slot.replaced += 1

    def _stop(self, slot: _Slot) -> None:
        with slot.lock:
            slot.ready = False
            process, connection = slot.process, slot.connection
            slot.process = slot.connection = None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)


def _alive(process: Any) -> bool:
    # Read once: the slot's thread may set it to None between two looks.
    return process is not None and bool(process.is_alive())


def wait_ready(pool: HealingPool, seconds: float = START_SECONDS) -> bool:
    """Wait until every worker of a pool is warm; return whether they all are."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pool.health().ready == len(pool.slots):
            return True
        time.sleep(0.05)
    return False
