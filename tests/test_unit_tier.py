"""The unit tier (`-m "not render"`) runs without WeasyPrint: nothing in it renders or draws."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT, unit_tier


def test_probe_weasyprint_is_blocked_in_the_unit_tier(pytestconfig: pytest.Config) -> None:
    """Run by the test below in a unit-tier session: WeasyPrint cannot be imported, check still runs."""
    if not unit_tier(pytestconfig):
        pytest.skip("only a unit-tier session blocks WeasyPrint; the next test starts one")
    with pytest.raises(ImportError):
        import weasyprint  # noqa: F401
    from click.testing import CliRunner

    from handouts.cli import cli

    result = CliRunner().invoke(cli, ["--root", str(ROOT), "check"])
    assert "weasyprint" not in result.output.lower(), result.output
    assert result.exit_code == 0, result.output


def test_the_unit_tier_imports_no_weasyprint() -> None:
    """A unit-tier session blocks WeasyPrint, so a test there that renders fails instead of slowing it."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-m", "not render"]
    probe = "tests/test_unit_tier.py::test_probe_weasyprint_is_blocked_in_the_unit_tier"
    done = subprocess.run([*command, probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout, done.stdout
