"""The command line through CliRunner: sections, check, and build errors (no rendering)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, Invoke, approve, days_ago, replace_in

from generate import cli
from handouts.models import SECTION_ORDER


@pytest.mark.render
def test_sections_table_lists_every_section_in_order(run: Invoke) -> None:
    result = run("sections")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "id",
        "title",
        "version",
        "status",
        "last",
        "reviewed",
        "next",
        "review",
        "due",
        "reading",
    ]
    assert [line.split()[0] for line in lines[1:]] == list(SECTION_ORDER)
    mat = next(line for line in lines if line.startswith("mat "))
    assert "Medicines for opioid use disorder" in mat
    assert " draft " in mat and "2026-11-20" in mat and "2027-05-20" in mat
    assert mat.split()[-2] == "FK" and 0 < float(mat.split()[-1]) <= 6


def test_shipped_content_passes_strict_check(run: Invoke) -> None:
    result = run("check", "--strict")
    assert result.exit_code == 0, result.output
    assert result.output == "OK: no problems.\n"


def test_check_reports_every_problem_in_every_file_then_a_summary(run: Invoke, project: Path) -> None:
    replace_in(project / "content/en/mat.md", "last_reviewed: 2026-11-20", "last_reviewed: 2026-13-01")
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 1.0")
    replace_in(project / "content/en/detox.md", "status: draft", "status: draft\nauthor: someone")
    replace_in(project / "brands/example-clinic/brand.toml", 'primary = "#1d4e89"', 'primary = "navy"')
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "brands/example-clinic/brand.toml: colors.primary: expected a hex color like #1d4e89, got 'navy'",
        "content/en/detox.md: author: unknown field; expected one of id, title, version, language, status, "
        "reviewers, last_reviewed, next_review_due, sources, brief, key_points, translation_of, approved_version, "
        "approved_fingerprint, codes, keywords",
        "content/en/mat.md: last_reviewed: no such date: '2026-13-01'",
        "content/en/mat.md: version: expected MAJOR.MINOR.PATCH like 1.2.0, got '1.0'",
        "Aborted: 4 problems in 3 files.",
    ]


@pytest.mark.render
def test_warnings_pass_check_but_fail_strict(run: Invoke, project: Path) -> None:
    replace_in(project / "content/en/detox.md", "next_review_due: 2027-11-20", "next_review_due: 2026-12-20")
    warning = "content/en/detox.md: next_review_due: review due in 27 days, on 2026-12-20"
    relaxed = run("check")
    assert relaxed.exit_code == 0
    assert relaxed.output.splitlines() == [f"{warning} (warning)", "OK with 1 warning in 1 file."]
    strict = run("check", "--strict")
    assert strict.exit_code == 1
    assert strict.output.splitlines() == [warning, "Aborted: 1 problem in 1 file."]


def test_check_flags_missing_section_and_approved_without_reviewers(run: Invoke, project: Path) -> None:
    (project / "content/en/self-help.md").unlink()
    text = (project / "content/en/detox.md").read_text()
    start, end = text.index("reviewers:"), text.index("last_reviewed:")
    (project / "content/en/detox.md").write_text(text[:start] + text[end:].replace("status: draft", ""))
    replace_in(project / "content/en/detox.md", "status: draft", "status: approved")
    result = run("check")
    assert result.exit_code == 1
    assert "content/en/detox.md: reviewers: an approved section needs at least one reviewer" in result.output
    assert "content/en/self-help.md: file not found; every section needs an English version" in result.output


def test_unknown_section_exits_2_naming_valid_ids(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--sections", "detox,methadone", "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "unknown section 'methadone'; valid ids: " + ", ".join(SECTION_ORDER) in result.output
    assert not (tmp_path / "out").exists()


def test_missing_brand_is_one_line_and_exit_1(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--brand", "nowhere", "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output == (
        "Error: cannot build: 1 problem(s)\nbrands/nowhere: brand not found; available: example-clinic\n"
    )
    assert "Traceback" not in result.output


def test_brand_id_cannot_walk_out_of_brands(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--brand", "../content", "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "brands/../content: brand not found" in result.output


def test_bad_yaml_is_a_clear_message_not_a_traceback(run: Invoke, project: Path, tmp_path: Path) -> None:
    replace_in(project / "content/en/mat.md", "status: draft", "status: [draft")
    result = run("build", "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "content/en/mat.md: front matter: invalid YAML at line " in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.render
def test_broken_unselected_section_does_not_block_a_build_without_it(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: one")
    assert "content/en/mat.md: version: expected MAJOR.MINOR.PATCH like 1.2.0, got 'one'" in run("check").output
    result = run("build", "--sections", "detox", "-o", str(tmp_path / "detox.pdf"))
    assert result.exit_code == 0, result.output
    assert result.output == f"{tmp_path / 'detox.pdf'}\n"
    failed = run("build", "--sections", "mat", "-o", str(tmp_path / "mat.pdf"))
    assert failed.exit_code == 1
    assert not (tmp_path / "mat.pdf").exists()


def test_release_refuses_draft_sections_listing_each(run: Invoke, own_brand: str, tmp_path: Path) -> None:
    # A release judges review dates by the real calendar: once the shipped ones pass, each is also overdue.
    args = ("--release", "--brand", own_brand, "--sections", "detox,mat", "-o", str(tmp_path / "out"))
    result = run("build", *args, today=None)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"Error: release refused: {len(lines) - 1} problem(s)"
    assert [line for line in lines if "status" in line] == [
        "content/en/mat.md: status: draft; a release needs approved content; "
        'run: handouts approve mat --reviewer "Name, Credentials"',
        "content/en/detox.md: status: draft; a release needs approved content; "
        'run: handouts approve detox --reviewer "Name, Credentials"',
        "content/en/find-help.md: status: draft; a release needs approved content; "
        'run: handouts approve find-help --reviewer "Name, Credentials"',
    ]
    overdue = re.compile(r"next_review_due: review overdue since 2027-\d\d-\d\d; a release needs a current review")
    assert all(overdue.search(line) for line in lines[1:] if "status" not in line)
    assert not (tmp_path / "out").exists()


def test_bad_next_visit_does_not_echo_the_value(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--next-visit", "Dec 7 at 3pm", "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "--next-visit" in result.output and "expected a date as YYYY-MM-DD" in result.output
    assert "3pm" not in result.output


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-W48-1", "expected a date as YYYY-MM-DD"),
        ("20261207", "expected a date as YYYY-MM-DD"),
        ("2026-02-30", "no such date"),
    ],
)
def test_next_visit_that_is_not_a_date_is_refused_without_echoing_it(
    run: Invoke, tmp_path: Path, value: str, reason: str
) -> None:
    result = run("build", "--next-visit", value, "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: Invalid value for --next-visit: {reason}"
    assert value not in result.output and value[5:] not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-W48-1", "expected YYYY-MM-DD, got '2026-W48-1'"),
        ("2026-02-30", "no such date: '2026-02-30'"),
    ],
)
def test_today_that_is_not_a_date_is_refused(project: Path, value: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["--root", str(project), "--today", value, "check"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: Invalid value for --today: {message}"


def test_html_with_tailoring_is_refused(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--html", "--prepared-for", "Pat Example", "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "--html: cannot be combined with tailoring" in result.output
    assert "Pat Example" not in result.output


@pytest.mark.render
def test_help_and_sections_do_not_import_weasyprint(project: Path) -> None:
    # check does: it draws each SVG picture with the renderer, as a build would.
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from handouts.cli import cli\n"
        f"root = {str(project)!r}\n"
        "for args in (['--help'], ['--root', root, 'sections']):\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "print('weasyprint' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.render
def test_console_script_is_the_same_group() -> None:
    # The script installed beside this Python: the one a user of this environment runs.
    script = Path(sys.executable).parent / "handouts"
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    direct = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), "--help"], capture_output=True, text=True, check=True
    )
    assert out.stdout.replace("Usage: handouts", "Usage: X") == direct.stdout.replace("Usage: generate.py", "Usage: X")


def test_overlong_tailoring_is_refused_without_quoting_it(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--note", "private " * 100, "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: cannot build: 1 problem(s)",
        "--note: 799 characters; at most 600 fit the box",
    ]
    assert not (tmp_path / "out").exists()


EXAMPLE_REFUSED = (
    "brands/example-clinic/brand.toml: example: true; an example brand's name and phone number are made up; "
    "a release needs your own brand: make one with `handouts init` or a brands/<id>/ folder with example = false, "
    "then pass --brand <id>"
)


def test_release_refuses_an_example_brand_in_build_and_batch(run: Invoke, project: Path, tmp_path: Path) -> None:
    # Approved and current by the real calendar: the example brand is the one reason left.
    approve(run, "mat", "find-help", date=days_ago(3).isoformat(), today=None)
    result = run("build", "--release", "--sections", "mat", "-o", str(tmp_path / "r.pdf"), today=None)
    assert result.exit_code == 1
    assert result.output.splitlines() == ["Error: release refused: 1 problem(s)", EXAMPLE_REFUSED]
    assert not (tmp_path / "r.pdf").exists()
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[handout]]\nname = "m"\nsections = ["mat"]\nbrands = ["example-clinic"]\nrelease = true\n')
    out = tmp_path / "batch"
    planned = run("batch", str(jobs), "--out", str(out), "--dry-run", today=None)
    assert planned.exit_code == 0, planned.output
    assert planned.output.splitlines() == [
        f"fail       {out}/example-clinic/en/m-letter.pdf  (release refused: 1 problem(s); {EXAMPLE_REFUSED})",
        f"build      {out}/review-record-example-clinic-en.pdf  (new)",
        "Plan: 1 to build, 0 unchanged, 1 failing, 0 stale. Nothing written (--dry-run).",
    ]


def test_release_accepts_the_same_clinic_without_example(run: Invoke, own_brand: str, tmp_path: Path) -> None:
    approve(run, "mat", "find-help", date=days_ago(3).isoformat(), today=None)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'[[handout]]\nname = "m"\nsections = ["mat"]\nbrands = ["{own_brand}"]\nrelease = true\n')
    out = tmp_path / "batch"
    planned = run("batch", str(jobs), "--out", str(out), "--dry-run", today=None)
    assert planned.output.splitlines() == [
        f"build      {out}/{own_brand}/en/m-letter.pdf  (new)",
        f"build      {out}/review-record-{own_brand}-en.pdf  (new)",
        "Plan: 2 to build, 0 unchanged, 0 failing, 0 stale. Nothing written (--dry-run).",
    ]


def test_brands_lists_every_brand_folder_with_its_state(run: Invoke, project: Path, own_brand: str) -> None:
    (project / "brands/empty").mkdir()
    broken = project / "brands/broken"
    broken.mkdir()
    (broken / "brand.toml").write_text((project / "brands/example-clinic/brand.toml").read_text())
    (broken / "logo.svg").write_text("<svg/>")
    replace_in(broken / "brand.toml", 'primary = "#1d4e89"', 'primary = "#7fb3d5"')
    replace_in(broken / "brand.toml", "[es]", "[sp]")
    result = run("brands")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "id              name                         example  state",
        "broken          Maple Street Example Clinic  yes      2 problems",
        "empty           -                            no       1 problem",
        "example-clinic  Maple Street Example Clinic  yes      ok",
        "own-clinic      Maple Street Example Clinic  no       ok",
        "brands/broken/brand.toml: sp: unknown field; a table is [colors] or a language with content: "
        "ar, en, es, vi, zh-Hans; did you mean es?",
        "brands/broken/brand.toml: colors.primary: contrast with white is 2.26:1; body-size text (white on it, "
        "and it on white) needs at least 4.5:1 (WCAG AA); nearest passing: #387caa",
        "brands/empty: no brand.toml; every folder under brands/ is a brand: add its brand.toml, "
        "or move the folder out",
    ]


def test_a_brand_folder_whose_name_is_not_an_id_is_named_as_such(run: Invoke, project: Path, tmp_path: Path) -> None:
    shutil.copytree(project / "brands/example-clinic", project / "brands/North")
    problem = "brands/North: not a brand id; rename the folder with lowercase letters, digits and hyphens"
    listed = run("brands")
    assert listed.exit_code == 1
    assert listed.output.splitlines()[-1] == problem
    assert problem in run("check").output.splitlines()
    # --brand is taken in lowercase: the folder cannot be built with, and is not offered as if it could.
    built = run("build", "--brand", "North", "-o", str(tmp_path / "out"))
    assert (
        built.output == "Error: cannot build: 1 problem(s)\nbrands/north: brand not found; available: example-clinic\n"
    )


def test_brands_of_a_valid_project_exit_0(run: Invoke) -> None:
    result = run("brands")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "id              name                         example  state",
        "example-clinic  Maple Street Example Clinic  yes      ok",
    ]


def test_a_brand_folder_without_brand_toml_fails_check_and_build(run: Invoke, project: Path, tmp_path: Path) -> None:
    (project / "brands/riverside").mkdir()
    (project / "brands/riverside/logo.svg").write_text("<svg/>")
    missing = (
        "brands/riverside: no brand.toml; every folder under brands/ is a brand: add its brand.toml, "
        "or move the folder out"
    )
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [missing, "Aborted: 1 problem in 1 file."]
    built = run("build", "--brand", "riverside", "-o", str(tmp_path / "out"))
    assert built.exit_code == 1
    assert built.output.splitlines() == ["Error: cannot build: 1 problem(s)", missing]


def png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("logo", "data", "reason"),
    [
        ("logo.svg", b"\x00\x9f garbage \xff", "'logo.svg' is not an SVG image"),
        ("logo.png", b"\x00\x9f garbage \xff", "'logo.png' is not a PNG image"),
        # A real PNG under an SVG name, and the SVG logo under a PNG name.
        ("logo.svg", png(), "'logo.svg' is not an SVG image"),
        ("logo.png", (ROOT / "brands/example-clinic/logo.svg").read_bytes(), "'logo.png' is not a PNG image"),
    ],
)
def test_check_names_a_logo_that_is_no_image(run: Invoke, project: Path, logo: str, data: bytes, reason: str) -> None:
    (project / "brands/example-clinic" / logo).write_bytes(data)
    replace_in(project / "brands/example-clinic/brand.toml", 'logo = "logo.svg"', f'logo = "{logo}"')
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"brands/example-clinic/brand.toml: logo: {reason}",
        "Aborted: 1 problem in 1 file.",
    ]


def test_check_names_a_misspelled_language_table(run: Invoke, project: Path) -> None:
    replace_in(project / "brands/example-clinic/brand.toml", "[es]", "[sp]")
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "brands/example-clinic/brand.toml: sp: unknown field; a table is [colors] or a language with content: "
        "ar, en, es, vi, zh-Hans; did you mean es?",
        "Aborted: 1 problem in 1 file.",
    ]
