"""Kits: named sets of sections in handouts.toml, validated at load, built by name."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, TODAY
from pdfcheck import text_of

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


KIT_TITLES = ["Medicines for opioid use disorder", "Overdose safety", "Where to get help"]
OTHER_TITLES = ["Withdrawal and detox", "Counseling and behavioral therapy", "Self-help and support groups"]


@pytest.mark.render
def test_build_kit_prints_the_kits_sections_and_no_others(shipped: Callable[..., Path]) -> None:
    text = text_of(shipped("--kit", "starting buprenorphine"))
    assert all(title in text for title in KIT_TITLES), text[:400]
    assert not [title for title in OTHER_TITLES if title in text]


def test_kit_and_sections_together_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(
        "--root", str(ROOT), "build", "--kit", "After an overdose", "--sections", "mat", "-o", str(tmp_path)
    )
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == "Error: --kit and --sections both name the sections; give one of them"
    assert not any(tmp_path.iterdir())


def test_an_unknown_kit_is_one_line_listing_the_kits(tmp_path: Path) -> None:
    result = invoke("--root", str(ROOT), "record", "--kit", "Starting buprenorfine", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for --kit: unknown kit 'Starting buprenorfine' (did you mean 'Starting buprenorphine'?); "
        'kits: "Starting buprenorphine", "After an overdose"'
    )


def test_build_help_lists_the_projects_kits() -> None:
    result = invoke("--root", str(ROOT), "build", "--help")
    assert result.exit_code == 0
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert 'kit "Starting buprenorphine" mat, overdose-safety' in lines
    assert 'kit "After an overdose" overdose-safety, mat, detox' in lines


KIT_JOBS = """
output = "{out}"

[[handout]]
name = "starting"
kit = "Starting buprenorphine"
languages = ["en", "sp"]
"""


@pytest.mark.usefixtures("fake_pool")
def test_a_job_naming_a_kit_builds_and_records_the_kits_sections(project: Path, tmp_path: Path) -> None:
    shutil.copyfile(ROOT / "handouts.toml", project / "handouts.toml")
    out = tmp_path / "out"
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(KIT_JOBS.format(out=out), encoding="utf-8")
    result = invoke("--root", str(project), "batch", str(jobs))
    assert result.exit_code == 0, result.output
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    assert {key: sorted(entry["sections"]) for key, entry in outputs.items()} == {
        "example-clinic/en/starting-letter.pdf": ["find-help", "mat", "overdose-safety"],
        "example-clinic/es/starting-letter.pdf": ["find-help", "mat", "overdose-safety"],
        # Document control lists what went out: the kit's sections, not every section.
        "review-record-example-clinic-en.pdf": ["find-help", "mat", "overdose-safety"],
        "review-record-example-clinic-es.pdf": ["find-help", "mat", "overdose-safety"],
    }
    again = invoke("--root", str(project), "batch", "--dry-run", str(jobs))
    assert again.exit_code == 0 and "Plan: 0 to build, 4 unchanged" in again.output, again.output


def test_an_unknown_kit_in_a_job_file_names_file_field_and_reason(project: Path, tmp_path: Path) -> None:
    shutil.copyfile(ROOT / "handouts.toml", project / "handouts.toml")
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(KIT_JOBS.format(out=tmp_path / "out").replace("Starting buprenorphine", "Starting"))
    result = invoke("--root", str(project), "batch", str(jobs))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: invalid job file: 1 problem(s)",
        f'{jobs}: handout[0].kit: unknown kit \'Starting\'; kits: "Starting buprenorphine", "After an overdose"',
    ]
    assert not (tmp_path / "out").exists()
