"""Warm render workers: turn composed handouts into PDF bytes in this process, a pool, or a cluster."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import functools
import hashlib
import ipaddress
import os
import pickle
import re
import resource
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, Protocol

from .errors import HandoutError, Problem
from .layouts import LAYOUTS
from .models import Handout
from .output.fit import fit_problems, free_share, require_fit
from .output.pdf import RenderedPdf, Renderer, render_pdf
from .project import BATCH_TIME_LIMIT, Project
from .signals import STOP_SIGNALS, stop_signals_held

# Handouts per worker process before a fresh one takes over. Memory grows about 1 MiB per 15
# renders (measured), so this bounds a worker well under 300 MiB.
RECYCLE_AFTER = 200
DEFAULT_TIME_LIMIT = BATCH_TIME_LIMIT
# The questions box takes about a third of a panel; less room than this is not worth a second render.
EXTRAS_NEED_PANEL_SHARE = 0.35
PACKAGE_DIR = Path(__file__).resolve().parent
# A host name or an IPv4 address in a dask:// address; IPv6 comes in brackets and is checked apart.
HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class RenderJob:
    """What a worker needs to render one output; small and picklable for any executor."""

    key: str
    root: str
    assets: str  # digest of templates, styles and fonts: workers keep their tools by it
    handout: Handout
    html: bool = False


@dataclass(frozen=True)
class RenderOutcome:
    """A worker's answer: the PDF (and HTML) or the reason it failed, plus the worker's peak memory."""

    key: str
    pdf: bytes | None
    html: str | None
    error: str | None
    pages: int = 0
    pid: int = 0
    peak_rss_kib: int = 0
    # The error's problems one by one, for a caller that shows each beside its field (the web page).
    problems: tuple[Problem, ...] = ()


def failure(exc: HandoutError) -> str:
    """Return a library error and its problems as one line."""
    return "; ".join([str(exc), *(str(p) for p in exc.problems)])


# (project folder, assets digest) -> renderer (fonts and parsed stylesheets): a few at most, as a
# long-running process sees edits. Parsed stylesheets hold their own folder's file URLs.
_RENDERERS: dict[tuple[str, str], Renderer] = {}
MAX_RENDERERS = 2


@functools.lru_cache(maxsize=4)
def _environment(root: str, assets: str) -> Any:
    from .output.html import environment

    return environment(Project(Path(root)).template_dirs)


def warm_tools(root: str, assets: str) -> tuple[Any, Renderer]:
    """Return, built once per process, project folder and asset version, the Jinja environment and the renderer."""
    key = (str(Path(root).resolve()), assets)
    if key not in _RENDERERS:
        from .output.html import stylesheet_paths
        from .output.pdf import make_renderer

        project = Project(Path(root))
        stylesheets = {name: stylesheet_paths(project, name) for name in LAYOUTS}
        while len(_RENDERERS) >= MAX_RENDERERS:
            del _RENDERERS[next(iter(_RENDERERS))]
        _RENDERERS[key] = make_renderer(stylesheets, project.readable_dirs, project.fallbacks)
    return _environment(root, assets), _RENDERERS[key]


def render_handout(
    handout: Handout, project: Project, assets: str, *, render: Callable[..., RenderedPdf] = render_pdf
) -> RenderedPdf:
    """Render a handout with this process's warm tools and refuse it if it does not fit its layout."""
    from .output.html import render_html

    env, renderer = warm_tools(str(project.root), assets)
    layout = LAYOUTS[handout.layout]

    def render_with(extras: bool) -> RenderedPdf:
        return render(
            render_html(handout, env, extras=extras),
            base_url=project.base_url,
            roots=project.readable_dirs,
            fallbacks=project.fallbacks,
            bleed_pt=handout.print_options.bleed_pt,
            # Fold marks go where the crop marks go: a print shop reads them together, outside the trim.
            fold_marks_pt=layout.folds_pt if handout.print_options.crop_marks else (),
            column_width_pt=layout.panel_width_pt or None,
            renderer=renderer,
            stylesheet_set=handout.layout,
        )

    rendered = require_fit(layout, render_with(False))
    # A brochure is judged by its panels: inside panels the sections leave free carry questions for
    # the next visit. A second render, only when there is room, and kept only if it still fits.
    if layout.panels and free_share(layout, rendered) >= EXTRAS_NEED_PANEL_SHARE:
        fuller = render_with(True)
        if not fit_problems(layout, fuller):
            return replace(fuller, extras=True)
    return rendered


def standalone_html(handout: Handout, project: Project, assets: str, *, extras: bool = False) -> str:
    """Return a handout's HTML with its stylesheets linked, for opening or printing on its own.

    `extras` as the PDF printed them (RenderedPdf.extras), so the HTML holds what the PDF holds.
    """
    from .output.html import render_html, stylesheet_paths

    sheets = [
        project.relative(path) if path.is_relative_to(project.root) else path.as_uri()
        for path in stylesheet_paths(project, handout.layout)
    ]
    env = warm_tools(str(project.root), assets)[0]
    return render_html(handout, env, base_href=project.base_url, sheets=sheets, extras=extras)


def render_job(job: RenderJob) -> RenderOutcome:
    """Render one output; any failure becomes the outcome's error, never an exception."""
    pdf = html = error = None
    pages = 0
    problems: tuple[Problem, ...] = ()
    project = Project(Path(job.root))
    try:
        rendered = render_handout(job.handout, project, job.assets)
        pdf, pages = rendered.data, rendered.pages
        if job.html:
            html = standalone_html(job.handout, project, job.assets, extras=rendered.extras)
    except HandoutError as exc:
        error, problems = failure(exc), tuple(exc.problems)
    except Exception as exc:  # one broken job must not stop the others
        error = f"{type(exc).__name__}: {exc}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    pdf = pdf if error is None else None
    return RenderOutcome(job.key, pdf, html, error, pages, os.getpid(), peak, problems)


def warm_worker(root: str, assets: str) -> None:
    """Load fonts and parse stylesheets when a worker starts, not during its first job."""
    # A worker that cannot warm up stays alive: its first job meets the same error and reports it
    # for that output, where a dead initializer would break the whole pool.
    with contextlib.suppress(Exception):
        warm_tools(root, assets)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_SECONDS = 0.5


def watch_parent(parent: int, interval: float = PARENT_POLL_SECONDS) -> threading.Thread:
    """Start a daemon thread that ends this process at once when its parent is no longer `parent`."""

    def poll() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        # An orphan's parent becomes init or a subreaper. Nothing of this process is worth keeping.
        os._exit(1)

    thread = threading.Thread(target=poll, name="watch-parent", daemon=True)
    thread.start()
    return thread


def die_with_parent(parent: int) -> None:
    """Make this worker end when the process that started it ends, however it ends (even by SIGKILL).

    Two guards, as each misses what the other catches. PR_SET_PDEATHSIG has the kernel send SIGKILL
    when the parent goes, so it works while the worker is stuck in C code that holds the GIL, where
    no Python thread ever runs. But it is Linux only; it is armed only here, after the worker started,
    so a parent killed in between goes unnoticed; and it follows the *thread* that forked the worker,
    not its process (pebble forks from the thread that first submits and from its manager thread,
    which in a batch live as long as the pool). The polling thread checks the parent process itself,
    on any system, from the first instant: its first look already sees a parent that died early.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL), *[ctypes.c_ulong(0)] * 3)
    watch_parent(parent)


def start_worker(parent: int, root: str, assets: str, warm: bool) -> None:
    """Start a pool worker: tie its life to its parent's, then, for the real renderer, warm its tools."""
    die_with_parent(parent)
    if warm:
        warm_worker(root, assets)
    # Measured from the warm worker: a render may take RENDER_MEMORY_BYTES more, not the whole machine.
    with contextlib.suppress(OSError, ValueError):
        limit_memory()


class Executor(Protocol):
    """Where render jobs run: submit one, get a future of its outcome."""

    def submit(self, job: RenderJob) -> cf.Future[RenderOutcome]:
        """Start rendering a job."""
        ...


class InlineExecutor:
    """Render in the calling thread: one handout at a time, warm after the first."""

    def __init__(self, render: Callable[[RenderJob], RenderOutcome] = render_job) -> None:
        self.render = render

    def submit(self, job: RenderJob) -> cf.Future[RenderOutcome]:
        """Render the job now and return its finished future."""
        future: cf.Future[RenderOutcome] = cf.Future()
        future.set_result(self.render(job))
        return future


class ThreadExecutor:
    """Render on threads of this process; the render function is a parameter, so tests can fake it."""

    def __init__(self, workers: int, render: Callable[[RenderJob], RenderOutcome] = render_job) -> None:
        self.pool = cf.ThreadPoolExecutor(max_workers=workers)
        self.render = render

    def submit(self, job: RenderJob) -> cf.Future[RenderOutcome]:
        """Queue the job on a thread."""
        return self.pool.submit(self.render, job)


class ProcessExecutor:
    """Warm, recycled worker processes; a job past its time limit has its worker killed and replaced.

    pebble does what ProcessPoolExecutor cannot: stop one job stuck inside C code by killing its
    worker, without breaking the pool, and replace workers after a number of jobs.
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
    ) -> None:
        import multiprocessing

        import pebble

        self.time_limit = time_limit
        self.render = render
        self.pool = pebble.ProcessPool(
            max_workers=workers,
            max_tasks=recycle_after,
            # Every worker dies with this process; only the real renderer has fonts and stylesheets to warm.
            initializer=start_worker,
            initargs=(os.getpid(), root, assets, render is render_job),
            context=multiprocessing.get_context("spawn"),
        )

    def submit(self, job: RenderJob) -> cf.Future[RenderOutcome]:
        """Queue the job on a worker process, with the time limit."""
        return self.pool.schedule(self.render, args=(job,), timeout=self.time_limit)

    def call(self, function: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Run another picklable function on a warm worker, with the time limit (the server's `check`)."""
        return self.pool.schedule(function, args=args, timeout=self.time_limit)

    def close(self) -> None:
        """Stop the workers at once: whatever they still hold is not wanted any more."""
        self.pool.stop()  # type: ignore[no-untyped-call]
        self.pool.join()


def code_digest() -> str:
    """Hash the handouts package's own code, so another build of it never passes for this one."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def worker_identity() -> dict[str, Any]:
    """Return what decides a worker's bytes: its handouts code and its renderer versions."""
    from .output.pdf import renderer_versions

    return {"code": code_digest(), "renderer": renderer_versions()}


def check_workers(identities: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Return one line per Dask worker whose code or renderer differs from this client's."""
    found = []
    for worker, identity in sorted(identities.items()):
        if not isinstance(identity, dict):
            found.append(f"{worker}: {identity}")
            continue
        if identity.get("code") != expected["code"]:
            found.append(f"{worker}: runs other handouts code than this client")
        for name, version in expected["renderer"].items():
            theirs = (identity.get("renderer") or {}).get(name)
            if theirs != version:
                found.append(f"{worker}: {name} {theirs}, this client has {version}")
    return found


# Seconds to reach a Dask scheduler and hear its handshake; then to hear every worker say what it runs
# (a cold worker imports WeasyPrint first).
CONNECT_TIMEOUT = 15.0
WORKER_CHECK_TIMEOUT = 60.0


def reach_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Connect to a Dask scheduler and hear its handshake within `timeout` seconds, or raise HandoutError."""
    import asyncio

    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.core import connect

    def fail(reason: str) -> HandoutError:
        return HandoutError(f"cannot reach the Dask scheduler at {address}: {reason}")

    # A plain TCP connection first: a refused port or an unknown host is told at once, in its own
    # words (distributed's connect() retries those until its timeout, then names whichever try was last).
    started = time.monotonic()
    host, port = parse_host_port(parse_address(address)[1])
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise fail(str(exc) or type(exc).__name__) from None

    async def handshake() -> None:
        comm = await connect(address, timeout=timeout)  # type: ignore[no-untyped-call]
        await comm.close()

    # distributed bounds the TCP connect but not the handshake after it: a listener that accepts and
    # never answers (or answers as a web server) would hold Client() forever. This deadline holds.
    left = max(timeout - (time.monotonic() - started), 0.1)
    try:
        asyncio.run(asyncio.wait_for(handshake(), left))
    except TimeoutError:
        raise fail(f"no Dask handshake within {timeout:g} seconds") from None
    except Exception as exc:  # closed, or bytes that are not Dask's
        # A CommClosedError reads "in <TCP (closed) ...>: Stream is closed": the part after the object says it.
        raise fail(f"no Dask handshake ({str(exc).rpartition('>: ')[2] or type(exc).__name__})") from None


class DaskExecutor:
    """A Dask cluster, checked before any work is sent: same handouts code, same renderer versions."""

    def __init__(
        self, address: str, time_limit: float = DEFAULT_TIME_LIMIT, *, connect_timeout: float = CONNECT_TIMEOUT
    ) -> None:
        self.time_limit = time_limit
        try:
            from distributed import Client
        except ImportError:
            raise HandoutError("--executor dask://... needs the dask extra: pip install 'handouts[dask]'") from None
        reach_scheduler(address, connect_timeout)
        try:
            self.client = Client(address, timeout=connect_timeout)  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise HandoutError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        try:
            self._check()
        except BaseException:
            self.client.close()  # type: ignore[no-untyped-call]
            raise
        self.executor = self.client.get_executor(pure=False)  # type: ignore[no-untyped-call]

    def _check(self) -> None:
        # A worker without handouts cannot even unpickle a job: the batch would wait forever.
        try:
            identities = self.client.run(worker_identity, on_error="return", callback_timeout=WORKER_CHECK_TIMEOUT)
        except Exception as exc:
            raise HandoutError(f"cannot ask the Dask workers what they run: {exc}") from None
        lines = [
            f"{worker}: no usable handouts package ({type(answer).__name__}: {answer})"
            for worker, answer in identities.items()
            if isinstance(answer, BaseException)
        ]
        lines += check_workers(
            {w: a for w, a in identities.items() if not isinstance(a, BaseException)}, worker_identity()
        )
        if not identities:
            lines.append("the cluster has no workers")
        if lines:
            raise HandoutError("the Dask workers cannot give this client's bytes: " + "; ".join(lines))

    def submit(self, job: RenderJob) -> cf.Future[RenderOutcome]:
        """Send the job to the cluster."""
        future: cf.Future[RenderOutcome] = self.executor.submit(render_job_limited, job, self.time_limit)
        return future

    def close(self) -> None:
        """Disconnect from the cluster."""
        self.executor.shutdown(wait=False)
        self.client.close()  # type: ignore[no-untyped-call]


def dask_address(where: str) -> str:
    """Return the scheduler's tcp:// address for "dask://HOST:PORT", or raise ValueError saying what is wrong."""

    def wrong(reason: str) -> ValueError:
        return ValueError(f"expected dask://HOST:PORT, got {where!r} ({reason})")

    rest = where.removeprefix("dask://")
    if not rest:
        raise wrong("no host and port")
    if rest.startswith("["):  # IPv6, as [::1]:8786
        host, bracket, port = rest[1:].partition("]")
        if not bracket:
            raise wrong("the IPv6 address has no closing bracket")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise wrong(f"{host!r} is not an IPv6 address") from None
        if port[:1] not in ("", ":"):
            raise wrong("expected :PORT after the IPv6 address")
        host, colon, port = f"[{host}]", port[:1], port[1:]
    else:
        host, colon, port = rest.rpartition(":")
        if ":" in host:
            raise wrong("an IPv6 address goes in brackets, as [::1]:8786")
        if not colon:
            host, port = port, ""
        if not host:
            raise wrong("no host")
        if not HOST_RE.fullmatch(host):
            raise wrong(f"{host!r} is not a host name or address")
    if not colon or not port:
        raise wrong("no port")
    if not port.isascii() or not port.isdigit():
        raise wrong("the port is not a number")
    if not 1 <= int(port) <= 65535:
        raise wrong("the port is not from 1 to 65535")
    return f"tcp://{host}:{int(port)}"


@contextlib.contextmanager
def open_executor(
    where: str,
    *,
    project: Project,
    assets: str,
    workers: int,
    time_limit: float = DEFAULT_TIME_LIMIT,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> Iterator[Executor]:
    """Open where render jobs run: "local" (warm worker processes) or "dask://HOST:PORT"; close it after."""
    if where != "local" and not where.startswith("dask://"):
        raise HandoutError(f"expected local or dask://HOST:PORT, got {where!r}")
    executor: ProcessExecutor | DaskExecutor
    if where == "local":
        executor = ProcessExecutor(workers, str(project.root), assets, time_limit)
    else:
        try:
            address = dask_address(where)
        except ValueError as exc:
            raise HandoutError(str(exc)) from None
        executor = DaskExecutor(address, time_limit, connect_timeout=connect_timeout)
    try:
        yield executor
    finally:
        executor.close()


# Memory a render may use beyond what the process already holds: a normal handout needs a few
# hundred MiB; a picture or document built to exhaust memory is stopped here, also inside C code.
RENDER_MEMORY_BYTES = 2 * 1024**3


def limit_memory(extra: int = RENDER_MEMORY_BYTES) -> None:
    """Cap this process's address space at what it holds now plus `extra` bytes."""
    with open("/proc/self/statm") as statm:
        held = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = held + extra
    if hard == resource.RLIM_INFINITY or wanted < hard:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


def _child(task: Callable[[], Any], parent: int, send: int, receive: int) -> NoReturn:
    """Run the task in this forked child, write its answer to `send`, and end without any cleanup."""
    code = 1
    try:
        os.close(receive)
        # Ctrl-C reaches the whole process group; the parent answers it by killing this child.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Held by the parent across the fork (stop_signals_held); the child starts with none pending.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        die_with_parent(parent)
        with contextlib.suppress(OSError, ValueError):
            limit_memory()
        try:
            answer: tuple[str, Any] = ("ok", task())
        except HandoutError as exc:
            answer = ("error", (str(exc), exc.problems))
        except MemoryError:
            answer = ("error", ("cannot render: the handout needs more memory than a render may use", ()))
        except Exception as exc:  # reported in one line by the parent; a traceback helps no user
            answer = ("error", (f"cannot render: {type(exc).__name__}: {exc}", ()))
        try:
            data = pickle.dumps(answer)
        except Exception as exc:
            data = pickle.dumps(("error", (f"cannot render: the answer cannot be sent: {exc}", ())))
        with open(send, "wb", closefd=False) as pipe:
            pipe.write(len(data).to_bytes(8, "big") + data)
        code = 0
    finally:
        # The parent's threads, atexit handlers and buffered files are the parent's: none of them runs here.
        os._exit(code)


# How often a parent waiting on a child's answer looks whether the child has ended without one.
CHILD_POLL_SECONDS = 0.2


@dataclass
class _Child:
    """A forked child as its parent sees it: its pid, the read end of its pipe, its exit code once reaped."""

    pid: int
    receive: int
    exit_code: int | None = None

    def reap(self, flags: int = 0) -> bool:
        """Collect the child's exit code if it has ended (at once unless `flags` says wait)."""
        done, status = os.waitpid(self.pid, flags)
        if done:
            self.exit_code = os.waitstatus_to_exitcode(status)
        return bool(done)

    def answer(self, time_limit: float) -> bytes | None:
        """Read the child's length-prefixed answer; None if it ended without one."""
        # Not until end of file: a child forked at the same time by another thread (a Dask worker with
        # several) holds a copy of this pipe's write end, so end of file may come only when that one ends.
        deadline = time.monotonic() + time_limit
        poller = select.poll()
        poller.register(self.receive, select.POLLIN)
        buffer = bytearray()
        while len(buffer) < 8 or len(buffer) < 8 + int.from_bytes(buffer[:8], "big"):
            if self.exit_code is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HandoutError(f"stopped: the render ran past its time limit of {time_limit:g} seconds")
                ready = poller.poll(min(left, CHILD_POLL_SECONDS) * 1000)
            else:  # ended: all it wrote is in the pipe; take what is left, without waiting
                ready = poller.poll(0)
            chunk = os.read(self.receive, 1 << 20) if ready else b""
            if chunk:
                buffer += chunk
            elif self.exit_code is not None:
                return None
            else:
                self.reap(os.WNOHANG)
        return bytes(buffer[8:])


def run_limited(task: Callable[[], Any], time_limit: float) -> Any:
    """Run a task in a forked child and return its result; past the time limit the child is killed."""
    # Forked, so the child starts with this process's warm fonts and stylesheets; a thread could not
    # be stopped inside C code, and a spawned process would load everything again. os.fork, not
    # multiprocessing: a Dask worker under its nanny is a daemonic process, and multiprocessing
    # refuses a daemonic process children.
    parent = os.getpid()
    receive, send = os.pipe()
    child = None
    try:
        # A stop that comes while forking is delivered just after, here, where the finally kills the child.
        with stop_signals_held():
            pid = os.fork()
            if pid == 0:
                _child(task, parent, send, receive)
        child = _Child(pid, receive)
        os.close(send)
        send = -1
        answer = child.answer(time_limit)
    finally:
        # Also on Ctrl-C: nothing of an interrupted render may outlive the command. A reaped child's
        # pid may already be another process's: it is never signalled.
        if child is not None and child.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                child.reap()
        for fd in (receive, send):
            if fd >= 0:
                os.close(fd)
    if answer is None:
        raise HandoutError(f"cannot render: the renderer ended without an answer (exit {child.exit_code})")
    kind, value = pickle.loads(answer)  # noqa: S301 - from our own forked child
    if kind == "error":
        raise HandoutError(value[0], value[1])
    return value


def render_job_limited(job: RenderJob, time_limit: float) -> RenderOutcome:
    """Render one output in a forked child of this (cluster) worker, killed past the time limit."""
    # A Dask worker cannot kill the thread that runs a task; it can kill a child process. Warmed
    # here, so each child starts with the worker's fonts and stylesheets.
    with contextlib.suppress(Exception):  # the child meets the same error and reports it
        warm_tools(job.root, job.assets)
    try:
        outcome: RenderOutcome = run_limited(functools.partial(render_job, job), time_limit)
    except HandoutError as exc:
        return RenderOutcome(job.key, None, None, failure(exc), pid=os.getpid())
    return outcome
