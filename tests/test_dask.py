"""`handouts batch --executor dask://...`: the address, an unreachable scheduler, real worker processes."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from handouts.cli import cli
from handouts.errors import HandoutError
from handouts.render_service import DaskExecutor, dask_address

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


def test_a_silent_scheduler_address_fails_in_one_line_within_the_connect_timeout(
    silent_listener: tuple[int, list[socket.socket]], tmp_path: Path
) -> None:
    port, accepted = silent_listener
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
        f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: no Dask handshake within 15 seconds"
    ]
    assert 15 <= took < 20
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


def test_a_closed_port_fails_with_the_reason(unused_port: int) -> None:
    with pytest.raises(HandoutError) as caught:
        DaskExecutor(f"tcp://127.0.0.1:{unused_port}", connect_timeout=2)
    assert str(caught.value) == (
        f"cannot reach the Dask scheduler at tcp://127.0.0.1:{unused_port}: "
        "ConnectionRefusedError: [Errno 111] Connection refused (tried for 2 seconds)"
    )


@pytest.fixture
def unused_port() -> int:
    """Return a loopback port nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
