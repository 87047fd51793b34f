"""`handouts batch --executor dask://...`: the address, an unreachable scheduler, real worker processes."""

from __future__ import annotations

import contextlib
import http.server
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from conftest import ROOT, TODAY

from handouts.cli import cli
from handouts.errors import HandoutError
from handouts.render_service import DaskExecutor, dask_address, run_limited

if TYPE_CHECKING:
    import psutil

pytest.importorskip("distributed")


@pytest.mark.parametrize(
    ("where", "address"),
    [
        ("dask://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("dask://scheduler.example.org:1", "tcp://scheduler.example.org:1"),
        ("dask://[::1]:65535", "tcp://[::1]:65535"),
    ],
)
def test_a_dask_address_names_the_scheduler_over_tcp(where: str, address: str) -> None:
    assert dask_address(where) == address


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("dask://", "no host and port"),
        ("dask://scheduler", "no port"),
        ("dask://scheduler:", "no port"),
        ("dask://:8786", "no host"),
        ("dask://h:notaport", "the port is not a number"),
        ("dask://h:-1", "the port is not a number"),
        ("dask://h:0", "the port is not from 1 to 65535"),
        ("dask://h:65536", "the port is not from 1 to 65535"),
        ("dask://::1:8786", "an IPv6 address goes in brackets, as [::1]:8786"),
        ("dask://[::1:8786", "the IPv6 address has no closing bracket"),
        ("dask://[::1]8786", "expected :PORT after the IPv6 address"),
        ("dask://[nope]:8786", "'nope' is not an IPv6 address"),
        ("dask://a b:8786", "'a b' is not a host name or address"),
    ],
)
def test_a_bad_dask_address_is_a_one_line_usage_error(where: str, reason: str) -> None:
    jobs = str(ROOT / "jobs/example.toml")
    result = CliRunner().invoke(cli, ["--root", str(ROOT), "batch", jobs, "--executor", where])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    expected = f"Error: Invalid value for --executor: expected dask://HOST:PORT, got {where!r} ({reason})"
    assert result.output.splitlines()[-1] == expected


def test_an_executor_that_is_neither_local_nor_dask_is_a_usage_error() -> None:
    jobs = str(ROOT / "jobs/example.toml")
    result = CliRunner().invoke(cli, ["--root", str(ROOT), "batch", jobs, "--executor", "spark://h:1"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for --executor: expected local or dask://HOST:PORT, got 'spark://h:1'"
    )


@pytest.fixture
def silent_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """Listen on loopback, accept every connection and never send a byte; yield the port and the connections."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:  # the listener was closed: the test is over
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


class Page(http.server.BaseHTTPRequestHandler):
    """A web server's answer to anything: a small page."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<html>not a scheduler</html>")

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's output is the command's


@pytest.fixture
def web_server() -> Iterator[http.server.ThreadingHTTPServer]:
    """Serve HTTP on loopback from a thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.render  # waits out the real 15-second timeout: the slow tier
def test_a_silent_scheduler_address_fails_in_one_line_within_the_connect_timeout(
    silent_listener: tuple[int, list[socket.socket]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, accepted = silent_listener
    # The command's own 15 seconds, shortened: the rule under test is the same at any length.
    from handouts import render_service

    defaults = render_service.open_executor.__wrapped__.__kwdefaults__  # type: ignore[attr-defined]
    monkeypatch.setitem(defaults, "connect_timeout", 3.0)
    jobs = str(ROOT / "jobs/example.toml")
    args = [
        "--root",
        str(ROOT),
        "batch",
        jobs,
        "--out",
        str(tmp_path / "out"),
        "--executor",
        f"dask://127.0.0.1:{port}",
    ]
    started = time.monotonic()
    result = CliRunner().invoke(cli, args)
    took = time.monotonic() - started
    assert accepted, "the command never connected"
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: no Dask handshake within 3 seconds"
    ]
    assert took >= 3  # waited for the timeout, and (a noisy machine allowing) not much longer
    assert took < 45
    assert not list((tmp_path / "out").rglob("*.pdf"))


def test_a_web_server_is_not_taken_for_a_scheduler(web_server: http.server.ThreadingHTTPServer) -> None:
    port = web_server.server_address[1]
    started = time.monotonic()
    with pytest.raises(HandoutError) as caught:
        DaskExecutor(f"tcp://127.0.0.1:{port}", connect_timeout=2)
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: no Dask handshake within 2 seconds"
    )
    # A web server it is: the same port answers a browser.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as browser:
        browser.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert b"not a scheduler" in browser.makefile("rb").read()


def test_a_closed_port_fails_at_once_with_the_reason(unused_port: int, tmp_path: Path) -> None:
    jobs = str(ROOT / "jobs/example.toml")
    where = f"dask://127.0.0.1:{unused_port}"
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["--root", str(ROOT), "batch", jobs, "--out", str(tmp_path), "--executor", where])
    assert time.monotonic() - started < 10  # not retried until the connect timeout
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{unused_port}: [Errno 111] Connection refused"
    ]


@pytest.fixture
def unused_port() -> int:
    """Return a loopback port nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


BIN = Path(sys.executable).parent
# A logo of 100,000 one-pixel squares: it parses at once and takes WeasyPrint seconds to draw.
SLOW_LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    + b"".join(b'<rect x="%d" y="%d" width="1" height="1"/>' % (i % 100, i // 100 % 100) for i in range(100_000))
    + b"</svg>"
)


def answer() -> int:
    """A task for run_limited in a daemonic process."""
    return 6 * 7


def render_in_a_daemon(results: multiprocessing.Queue[object]) -> None:
    """Run a limited task where a Dask nanny runs its worker: in a daemonic process."""
    try:
        results.put(run_limited(answer, 30))
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_a_daemonic_process_renders_in_a_forked_child() -> None:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[object] = context.Queue()
    daemon = context.Process(target=render_in_a_daemon, args=(results,), daemon=True)
    daemon.start()
    try:
        assert results.get(timeout=60) == 42
    finally:
        daemon.join(10)
        if daemon.is_alive():
            daemon.kill()


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """Start a real scheduler and two real workers, each under its nanny, on loopback; yield address and nannies."""
    import distributed

    folder = tmp_path / "cluster"
    folder.mkdir()
    scheduler_file = folder / "scheduler.json"
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, log: str) -> subprocess.Popen[bytes]:
        # Each in its own session: one killpg ends it with its nanny's worker and every render child.
        with (folder / log).open("wb") as output:
            process = subprocess.Popen(
                [str(BIN / "dask"), *args], cwd=folder, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        started.append(process)
        return process

    try:
        start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
            log="scheduler.log",
        )
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        options = ["--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(folder)]
        nannies = [start("worker", address, *options, log=f"worker-{i}.log").pid for i in (1, 2)]
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address.removeprefix("tcp://"), nannies
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def pdf_text(path: Path) -> str:
    """Return a PDF's text with its line breaks and spacing made single spaces."""
    import pypdf

    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(path).pages).split())


def workers_of(nannies: list[int]) -> list[psutil.Process]:
    """Return the worker processes the nannies run."""
    import psutil

    return [child for nanny in nannies for child in psutil.Process(nanny).children() if is_worker(child)]


def is_worker(process: psutil.Process) -> bool:
    """Tell a nanny's worker (spawned by multiprocessing) from its resource tracker."""
    return "spawn_main" in " ".join(process.cmdline())


def alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def use_slow_logo(project: Path) -> None:
    """Give the example clinic a logo that takes WeasyPrint seconds to draw."""
    brand = project / "brands/example-clinic"
    (brand / "slow.svg").write_bytes(SLOW_LOGO)
    toml = brand / "brand.toml"
    toml.write_text(toml.read_text().replace('logo = "logo.svg"', 'logo = "slow.svg"'))


def write_jobs(folder: Path, *sections: str) -> Path:
    """Write a job file of one letter handout per section."""
    jobs = folder / "jobs.toml"
    tables = [f'[[handout]]\nname = "{s}"\nsections = ["{s}"]\nlayouts = ["letter"]\n' for s in sections]
    jobs.write_text("\n".join(tables))
    return jobs


@pytest.mark.render
def test_real_dask_workers_render_a_batch_and_stop_a_slow_render(
    dask_cluster: tuple[str, list[int]], project: Path, tmp_path: Path
) -> None:
    address, nannies = dask_cluster
    workers = sorted(worker.pid for worker in workers_of(nannies))
    assert len(workers) == 2
    jobs = write_jobs(tmp_path, "detox", "mat")
    command = [str(BIN / "handouts"), "--root", str(project), "--today", TODAY.isoformat(), "batch", str(jobs)]
    out = tmp_path / "out"
    done = subprocess.run(
        [*command, "--out", str(out), "--executor", f"dask://{address}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^Built 3, unchanged 0, failed 0, in ", done.stdout, re.MULTILINE), done.stdout
    detox = pdf_text(out / "example-clinic/en/detox-letter.pdf")
    assert "Detox alone does not lower your risk of an overdose." in detox
    assert "Maple Street Example Clinic" in detox
    assert "Review record" in pdf_text(out / "review-record-example-clinic-en.pdf")
    assert "Medicines for opioid use disorder" in pdf_text(out / "example-clinic/en/mat-letter.pdf")

    # The time limit holds on a real worker: the render child is killed, the worker lives on.
    use_slow_logo(project)
    slow = subprocess.run(
        [*command, "--out", str(tmp_path / "slow"), "--executor", f"dask://{address}", "--time-limit", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "example-clinic/en/detox-letter.pdf: stopped: the render ran past its time limit of 1 seconds" in slow.stdout
    assert not (tmp_path / "slow/example-clinic/en/detox-letter.pdf").exists()
    assert sorted(worker.pid for worker in workers_of(nannies)) == workers
    assert [child.pid for worker in workers_of(nannies) for child in worker.children(recursive=True)] == []


@pytest.mark.render
def test_a_render_child_ends_with_its_killed_worker(
    dask_cluster: tuple[str, list[int]], project: Path, tmp_path: Path
) -> None:
    address, nannies = dask_cluster
    use_slow_logo(project)
    jobs = write_jobs(tmp_path, "detox")
    command = [str(BIN / "handouts"), "--root", str(project), "--today", TODAY.isoformat(), "batch", str(jobs)]
    batch = subprocess.Popen(
        [*command, "--out", str(tmp_path / "out"), "--executor", f"dask://{address}", "--time-limit", "120"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # The review record is quick; once it is written, the render still running is the slow handout.
        deadline = time.monotonic() + 60
        rendering: list[tuple[psutil.Process, psutil.Process]] = []
        while not rendering and time.monotonic() < deadline and batch.poll() is None:
            if (tmp_path / "out/review-record-example-clinic-en.pdf").exists():
                rendering = [(worker, child) for worker in workers_of(nannies) for child in worker.children()]
            time.sleep(0.05)
        assert len(rendering) == 1, rendering
        worker, child = rendering[0]
        worker.kill()
        deadline = time.monotonic() + 5
        while alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child.pid), "the render outlived its worker"
    finally:
        os.killpg(batch.pid, signal.SIGKILL)
        batch.wait(30)
