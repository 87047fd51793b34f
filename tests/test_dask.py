"""`handouts batch --executor dask://...`: the address, an unreachable scheduler, real worker processes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import ROOT

from handouts.cli import cli
from handouts.render_service import dask_address


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
