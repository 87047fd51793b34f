"""Kits: named sets of sections in handouts.toml, validated at load, built by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, TODAY

from handouts.cli import cli
from handouts.inputs.settings import load_project, project_from_data
from handouts.project import Kit, find_kit

SECTIONS = 'sections = ["mat", "overdose-safety", "behavioral-therapy", "self-help", "detox", "find-help"]\n'


def invoke(*args: str) -> Result:
    """Run the CLI with today fixed and no HANDOUTS_ROOT from the environment."""
    env = {"HANDOUTS_ROOT": None, "HANDOUTS_TODAY": TODAY.isoformat()}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_kits_load_in_the_files_order_and_are_found_by_name_in_any_case() -> None:
    project, problems = load_project(ROOT)
    assert problems == []
    assert project.kits == (
        Kit("Starting buprenorphine", ("mat", "overdose-safety")),
        Kit("After an overdose", ("overdose-safety", "mat", "detox")),
    )
    assert find_kit(project, "  starting BUPRENORPHINE ") == project.kits[0]
    assert find_kit(project, "after an overdose") == project.kits[1]
    assert find_kit(project, "Starting") is None


def test_a_project_without_kits_has_none() -> None:
    project, problems = project_from_data(ROOT, "handouts.toml", {})
    assert problems == [] and project.kits == ()


@pytest.mark.parametrize(
    ("kits", "message"),
    [
        (
            '"Starting buprenorphine" = ["mat", "overdos-safety"]',
            "handouts.toml: kits.\"Starting buprenorphine\": unknown section 'overdos-safety' (did you mean "
            "'overdose-safety'?); sections are mat, overdose-safety, behavioral-therapy, self-help, detox, find-help",
        ),
        (
            '"Starting buprenorphine" = []',
            'handouts.toml: kits."Starting buprenorphine": empty; a kit names at least one section',
        ),
        (
            '"Starting buprenorphine" = "mat"',
            "handouts.toml: kits.\"Starting buprenorphine\": expected a list of section ids, got 'mat'",
        ),
        (
            '"Starting buprenorphine" = ["mat"]\n" starting Buprenorphine" = ["detox"]',
            "handouts.toml: kits.\" starting Buprenorphine\": the same name as kit 'Starting buprenorphine'",
        ),
        (
            '"After an overdose" = ["mat", "mat"]',
            "handouts.toml: kits.\"After an overdose\": 'mat' is listed twice",
        ),
    ],
)
def test_a_bad_kit_is_one_line_naming_file_field_and_reason_in_check(tmp_path: Path, kits: str, message: str) -> None:
    (tmp_path / "handouts.toml").write_text(f"{SECTIONS}\n[kits]\n{kits}\n", encoding="utf-8")
    result = invoke("--root", str(tmp_path), "check")
    assert result.exit_code == 1
    assert result.output.splitlines() == ["Error: invalid settings: 1 problem(s)", message]


def test_kits_that_are_not_a_table_are_refused(tmp_path: Path) -> None:
    (tmp_path / "handouts.toml").write_text('kits = ["mat"]\n', encoding="utf-8")
    result = invoke("--root", str(tmp_path), "sections")
    assert result.exit_code == 1
    assert "handouts.toml: kits: expected a table of kit names and section lists, got ['mat']" in result.output


def test_init_writes_two_kits_and_check_passes(tmp_path: Path) -> None:
    clinic = tmp_path / "clinic"
    assert invoke("init", str(clinic), "--brand", "our-clinic").exit_code == 0
    project, problems = load_project(clinic)
    assert problems == []
    assert [kit.name for kit in project.kits] == ["Starting buprenorphine", "After an overdose"]
    checked = invoke("--root", str(clinic), "check")
    assert checked.exit_code == 0, checked.output
