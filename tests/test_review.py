"""The review workflow through the CLI: approve, unreviewed edits, version bumps, due dates, config."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import stat
from pathlib import Path

import pypdf
import pytest
from conftest import AVERY, SAM, TODAY, Invoke, approve, days_ago, in_months, replace_in, spelled

MAT_EDIT = (
    "You do not need detox before you start methadone or buprenorphine.",
    "You do not need to detox before you start methadone or buprenorphine.",
)
BUMP = "content/en/mat.md: version: body changed since version 3.0.0 was approved; bump the version, then approve again"
# The shipped translations, in the order check reports files.
TRANSLATIONS = ("ar", "es", "vi", "zh-Hans")


def pdf_text(path: Path) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pypdf.PdfReader(path).pages))


CRAFTED = """---
# Reviewed yearly by the clinic's addiction team.
id: mat
title: Medicines for opioid use disorder
language: en
version: 2.1.0
status: draft   # waiting for Dr. Example
sources:
  - title: "FDA: MOUD"
    url: https://www.fda.gov/moud
reviewers:
- name: Old Reviewer
  credentials: RN

last_reviewed: 2026-01-15
# next_review_due is set by approve
---
You can take medicine. It helps.
Trailing spaces stay here.\x20\x20\x20

"""


def test_approve_rewrites_only_its_fields_byte_for_byte(run: Invoke, project: Path) -> None:
    path = project / "content/en/mat.md"
    path.write_bytes(CRAFTED.encode())
    result = run("approve", "mat", "--reviewer", AVERY, "--reviewer", "Sam Placeholder, PharmD", "--date", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert result.output == "content/en/mat.md: approved by Avery Example, MD; Sam Placeholder, PharmD on 2026-11-20\n"
    body = "You can take medicine. It helps.\nTrailing spaces stay here.\n"
    fingerprint = hashlib.sha256(body.encode()).hexdigest()
    assert path.read_text() == (
        "---\n"
        "# Reviewed yearly by the clinic's addiction team.\n"
        "id: mat\n"
        "title: Medicines for opioid use disorder\n"
        "language: en\n"
        "version: 2.1.0\n"
        "status: approved   # waiting for Dr. Example\n"
        "sources:\n"
        '  - title: "FDA: MOUD"\n'
        "    url: https://www.fda.gov/moud\n"
        "reviewers:\n"
        "  - name: Avery Example\n"
        "    credentials: MD\n"
        "    role: Fictional example reviewer, addiction medicine\n"
        "  - name: Sam Placeholder\n"
        "    credentials: PharmD\n"
        "\n"
        "last_reviewed: 2026-11-20\n"
        "next_review_due: 2027-11-20\n"
        "approved_version: 2.1.0\n"
        f"approved_fingerprint: sha256:{fingerprint}\n"
        "# next_review_due is set by approve\n"
        "---\n"
        "You can take medicine. It helps.\n"
        "Trailing spaces stay here.   \n"
        "\n"
    )


def test_approve_defaults_to_today_and_the_configured_interval(run: Invoke, project: Path) -> None:
    approve_result = run("approve", "detox", "--reviewer", AVERY)
    assert approve_result.exit_code == 0
    text = (project / "content/en/detox.md").read_text()
    assert f"last_reviewed: {TODAY}\nnext_review_due: 2027-11-23\n" in text
    (project / "handouts.toml").write_text("review_interval_months = 24\n")
    assert run("approve", "mat", "--reviewer", AVERY).exit_code == 0
    assert "next_review_due: 2028-11-23\n" in (project / "content/en/mat.md").read_text()
    assert run("approve", "self-help", "--reviewer", AVERY, "--interval-months", "6").exit_code == 0
    assert "next_review_due: 2027-05-23\n" in (project / "content/en/self-help.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("meds", "--reviewer", AVERY), "unknown section 'meds'; valid ids: mat, overdose-safety, behavioral-therapy"),
        (("mat", "--reviewer", AVERY, "--date", "2026-11-24"), "Invalid value for --date: 2026-11-24 is in the future"),
        (("mat", "--reviewer", ""), "Invalid value for --reviewer: expected 'Name, Credentials[, Role]', got ''"),
        (("mat", "--reviewer", " , "), "expected 'Name, Credentials[, Role]', got ' , '"),
        (("mat", "--reviewer", "Avery Example"), "expected 'Name, Credentials[, Role]', got 'Avery Example'"),
        (("mat",), "Missing option '--reviewer'"),
        (("mat", "--reviewer", AVERY, "--date", "2026-02-30"), "Invalid value for --date: no such date: '2026-02-30'"),
        (
            ("mat", "--reviewer", AVERY, "--date", "2026-W48-1"),
            "Invalid value for --date: expected YYYY-MM-DD, got '2026-W48-1'",
        ),
    ],
)
def test_approve_refuses_bad_requests_and_changes_nothing(
    run: Invoke, project: Path, args: tuple[str, ...], message: str
) -> None:
    before = (project / "content/en/mat.md").read_bytes()
    result = run("approve", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert (project / "content/en/mat.md").read_bytes() == before


def test_approve_refuses_a_file_with_errors(run: Invoke, project: Path) -> None:
    replace_in(project / "content/en/mat.md", "last_reviewed: 2026-11-20", "last_reviewed: 2026-13-01")
    result = run("approve", "mat", "--reviewer", AVERY)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: cannot approve: 1 problem(s)",
        "content/en/mat.md: last_reviewed: no such date: '2026-13-01'",
    ]


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("start", [b"", BOM])
def test_approve_keeps_crlf_and_a_byte_order_mark_byte_for_byte(run: Invoke, project: Path, start: bytes) -> None:
    path = project / "content/en/mat.md"
    original = path.read_bytes()
    assert b"\r" not in original and not original.startswith(BOM)
    approve(run, "mat")
    approved_lf = path.read_bytes()
    path.write_bytes(start + original.replace(b"\n", b"\r\n"))
    approve(run, "mat")
    approved = path.read_bytes()
    # The same approval as for the LF file, with the file's own line endings and its mark kept.
    assert approved == start + approved_lf.replace(b"\n", b"\r\n")
    assert all(line.endswith(b"\r\n") for line in approved.splitlines(keepends=True))
    body = original.split(b"\n---\n", 1)[1].replace(b"\n", b"\r\n")
    assert approved.split(b"\r\n---\r\n", 1)[1] == body
    assert run("check", "--strict").output == "OK: no problems.\n"


def test_a_section_file_with_a_byte_order_mark_loads(run: Invoke, project: Path) -> None:
    path = project / "content/en/mat.md"
    path.write_bytes(BOM + path.read_bytes())
    result = run("check", "--strict")
    assert result.exit_code == 0, result.output
    assert result.output == "OK: no problems.\n"
    assert run("sections").output.count("\nmat ") == 1


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_approve_keeps_the_file_mode(run: Invoke, project: Path, mode: int) -> None:
    path = project / "content/en/mat.md"
    path.chmod(mode)
    approve(run, "mat")
    assert "status: approved" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.render
def test_unreviewed_edit_is_a_check_error_refused_by_release_and_marked_in_the_pdf(
    run: Invoke, project: Path, own_brand: str, tmp_path: Path
) -> None:
    # The real calendar throughout: a release checks review dates against it (shipped sections
    # may be overdue by then, a warning that check reports without failing).
    day = days_ago(50)
    approve(run, "mat", "find-help", date=day.isoformat(), today=None)
    assert run("check", today=None).exit_code == 0
    replace_in(project / "content/en/mat.md", *MAT_EDIT)
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.1.0")
    check = run("check", today=None)
    assert check.exit_code == 1
    assert (
        f"content/en/mat.md: body changed since version 3.0.0 was approved on {day}; "
        "version 3.1.0 needs a review: approve again"
    ) in check.output.splitlines()
    release = run(
        "build", "--release", "--brand", own_brand, "--sections", "mat", "-o", str(tmp_path / "r.pdf"), today=None
    )
    assert release.exit_code == 1
    assert release.output.splitlines() == [
        "Error: release refused: 1 problem(s)",
        f"content/en/mat.md: body changed after approval on {day}; a release needs it approved again; "
        'run: handouts approve mat --reviewer "Name, Credentials"',
    ]
    assert not (tmp_path / "r.pdf").exists()
    draft = run("build", "--brand", own_brand, "--sections", "mat", "-o", str(tmp_path / "d.pdf"), today=None)
    assert draft.exit_code == 0, draft.output
    text = pdf_text(tmp_path / "d.pdf")
    assert "This is a draft. It is not yet approved for patients." in text
    assert "SAMPLE – NOT YET APPROVED FOR PATIENT USE" in text
    # Approved text, edited: the marker says so, not that no clinic ever reviewed it.
    assert "Medicines for opioid use disorder: changed since approval (3.0.0 approved; now 3.1.0)." in text
    assert "No clinic has reviewed this draft." not in text
    assert "Sample · Maple Street (example) · Handout " in text  # the footer
    assert run("record", "--sections", "mat", "-o", str(tmp_path / "rec.pdf"), today=None).exit_code == 0
    record = pdf_text(tmp_path / "rec.pdf")
    assert "Version 3.1.0 Review state Changed after approval, not approved" in record
    assert "Approved version 3.0.0" in record


@pytest.mark.render
def test_version_must_be_bumped_when_the_body_changes(run: Invoke, project: Path, tmp_path: Path) -> None:
    approve(run, "mat")
    replace_in(project / "content/en/mat.md", *MAT_EDIT)
    bump = BUMP
    assert bump in run("check").output.splitlines()
    refused = run("approve", "mat", "--reviewer", AVERY)
    assert refused.exit_code == 1
    assert refused.output.splitlines() == ["Error: cannot approve", bump]
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.0.1")
    assert bump not in run("check").output
    approve(run, "mat")
    assert "approved_version: 3.0.1\n" in (project / "content/en/mat.md").read_text()
    # English is clean again; the Spanish translation now lags behind it.
    assert run("check", "--strict").output.splitlines() == [
        *(f"content/{lang}/mat.md: translates mat 3.0.0, English is now 3.0.1" for lang in TRANSLATIONS),
        "Aborted: 4 problems in 4 files.",
    ]


def test_status_approved_by_hand_without_a_record_is_an_error(run: Invoke, project: Path) -> None:
    replace_in(project / "content/en/mat.md", "status: draft", "status: approved")
    result = run("check")
    assert result.exit_code == 1
    assert "content/en/mat.md: status: approved without an approval record; run: generate.py approve mat" in (
        result.output
    )


@pytest.mark.render
def test_review_due_policy_and_sections_due(run: Invoke, project: Path, own_brand: str, tmp_path: Path) -> None:
    approve(run, "mat", "find-help", date="2025-11-01")  # due 2026-11-01: overdue
    approve(run, "detox", date="2026-01-01")  # due 2027-01-01: within 60 days
    approve(run, "self-help", date="2026-11-20")  # due late 2027: fine
    approve(run, "overdose-safety", date="2026-11-20")
    replace_in(project / "content/en/overdose-safety.md", "Get naloxone today.", "Get naloxone this week.")
    check = run("check")
    assert "content/en/mat.md: next_review_due: review overdue since 2026-11-01 (warning)" in check.output
    assert "content/en/detox.md: next_review_due: review due in 39 days, on 2027-01-01 (warning)" in check.output
    assert "self-help" not in check.output
    due = run("sections", "--due")
    assert due.exit_code == 0
    # Unapproved text first (a changed section, then a draft), whatever its date; then soonest due.
    assert due.output.splitlines() == [
        "id                  title                              version  status                  next review due  why",
        "overdose-safety     Overdose safety                    3.0.0    changed after approval  2027-11-20       "
        "changed since approval",
        "behavioral-therapy  Counseling and behavioral therapy  2.1.0    draft                   2027-11-20       "
        "draft: never approved",
        "find-help           Where to get help                  2.1.0    overdue                 2026-11-01       "
        "overdue since 2026-11-01, 22 days ago",
        "mat                 Medicines for opioid use disorder  3.0.0    overdue                 2026-11-01       "
        "overdue since 2026-11-01, 22 days ago",
        "detox               Withdrawal and detox               3.0.0    approved                2027-01-01       "
        "due 2027-01-01, in 39 days",
    ]
    release = run("build", "--release", "--brand", own_brand, "--sections", "mat", "-o", str(tmp_path / "r.pdf"))
    assert release.exit_code == 1
    assert "content/en/mat.md: next_review_due: review overdue since 2026-11-01; a release needs a current review" in (
        release.output
    )
    # Due soon is no reason to refuse a release; overdue without --release still prints, marked.
    detox = ("build", "--release", "--brand", own_brand, "--sections", "detox", "-o", str(tmp_path / "d.pdf"))
    assert run(*detox).exit_code == 1  # find-help
    built = run("build", "--brand", own_brand, "--sections", "mat", "-o", str(tmp_path / "m.pdf"))
    assert built.exit_code == 0
    text = pdf_text(tmp_path / "m.pdf")
    assert "The next review was due on November 1, 2026." in text
    # The footer names no review state; the About box says the review is overdue.
    assert "Last review: November 1, 2025." in text and "review overdue" not in text
    assert "SAMPLE" not in text


@pytest.mark.render
def test_record_tells_draft_approved_changed_and_overdue_apart(run: Invoke, project: Path, tmp_path: Path) -> None:
    approve(run, "mat", date="2026-11-20")
    approve(run, "self-help", date="2026-11-20")
    replace_in(project / "content/en/self-help.md", "Groups are free.", "Groups cost nothing.")
    replace_in(project / "content/en/self-help.md", "version: 2.1.0", "version: 2.1.1")
    approve(run, "overdose-safety", date="2026-01-01", reviewers=(SAM,))
    replace_in(project / "content/en/overdose-safety.md", "next_review_due: 2027-01-01", "next_review_due: 2026-06-01")
    # Editing the due date by hand is not a body change: the approval still holds.
    out = tmp_path / "record.pdf"
    assert run("record", "-o", str(out)).exit_code == 0
    record = pdf_text(out)
    detox = record[record.index("Withdrawal and detox") :]
    assert "Review state Draft, not approved Reviewers Avery Example, MD (Fictional example reviewer" in detox
    mat = record[record.index("Medicines for opioid use disorder File") :]
    assert "Version 3.0.0 Review state Approved Reviewers Avery Example, MD" in mat
    self_help = record[record.index("Self-help and support groups") :]
    assert "Version 2.1.1 Review state Changed after approval, not approved" in self_help
    overdose = record[record.index("Overdose safety File") :]
    assert "Review state Approved, review overdue Reviewers Sam Placeholder, PharmD" in overdose
    assert "Next review due June 1, 2026 (2026-06-01)" in overdose
    # The patient's copy says it in one line: a sample, since one section is a draft.
    patient = tmp_path / "patient.pdf"
    assert run("build", "--sections", "detox,mat,self-help,overdose-safety", "-o", str(patient)).exit_code == 0
    about = pdf_text(patient).split("About this handout", 1)[1]
    assert about.startswith(" This is a draft. It is not yet approved for patients. Reviewers named: ")


@pytest.mark.render
def test_approve_then_release_build_prints_reviewers_and_date(run: Invoke, own_brand: str, tmp_path: Path) -> None:
    # Reviewed weeks ago by the real calendar, which is what a release checks.
    day = days_ago(23)
    approve(run, "overdose-safety", "find-help", reviewers=(AVERY, SAM), date=day.isoformat(), today=None)
    out = tmp_path / "release.pdf"
    result = run(
        "build", "--release", "--brand", own_brand, "--sections", "overdose-safety", "-o", str(out), today=None
    )
    assert result.exit_code == 0, result.output
    text = pdf_text(out)
    assert (
        "Reviewed and approved by Avery Example, MD; Sam Placeholder, PharmD. "
        f"Last review: {spelled(day)}. Next review: {spelled(in_months(day, 12))}." in text
    )
    assert f"Last review: {spelled(day)}." in text and "SAMPLE" not in text


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("handouts.toml", "warning_window_days = 730\nmax_fk_grade = 2.0\n"),
        ("pyproject.toml", '[project]\nname = "x"\n\n[tool.handouts]\nwarning_window_days = 730\nmax_fk_grade = 2.0\n'),
    ],
)
def test_config_sets_window_and_reading_limits(run: Invoke, project: Path, file: str, content: str) -> None:
    assert run("check").output == "OK: no problems.\n"
    (project / file).write_text(content)
    result = run("check")
    assert result.exit_code == 0
    assert "content/en/mat.md: next_review_due: review due in 178 days, on 2027-05-20 (warning)" in result.output
    assert re.search(
        r"content/en/mat.md: body: Flesch-Kincaid grade \d\.\d is over 2; "
        r'hardest sentence: "The law protects people in treatment or recovery who are not using '
        r'drugs \.\.\." \(warning\)',
        result.output,
    )


def test_bad_config_is_reported_with_file_and_setting(run: Invoke, project: Path) -> None:
    (project / "handouts.toml").write_text('review_interval_months = "two years"\nreview_window = 3\n')
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: invalid settings: 2 problem(s)",
        "handouts.toml: review_window: unknown setting; expected one of sections, always, default_brand, kits, "
        "languages, review_interval_months, "
        "warning_window_days, max_fk_grade, max_smog, min_fernandez_huerta, min_words, max_words, max_brief_words",
        "handouts.toml: review_interval_months: expected a whole number, got 'two years'",
    ]


@pytest.mark.render
def test_handout_version_changes_when_a_section_becomes_overdue(run: Invoke, tmp_path: Path) -> None:
    approve(run, "mat", "find-help", date="2026-01-01")
    versions = []
    for day in (dt.date(2026, 12, 31), dt.date(2027, 1, 2)):
        out = tmp_path / f"{day}.pdf"
        assert run("build", "--sections", "mat", "-o", str(out), today=day).exit_code == 0
        versions.append(pypdf.PdfReader(out).metadata["/handoutversion"])
    assert versions[0] != versions[1]


def test_sections_due_lists_every_draft_with_its_reason(run: Invoke, project: Path) -> None:
    # The shipped content is all draft: never approved, so all of it needs review, whatever its dates.
    header = "id                  title                              version  status  next review due  why"
    draft = "draft   {}       draft: never approved"
    assert run("sections", "--due").output.splitlines() == [
        header,
        # The soonest due first: the medicines section is due sooner, its telehealth rule is dated.
        "mat                 Medicines for opioid use disorder  3.0.0    " + draft.format("2027-05-20"),
        "behavioral-therapy  Counseling and behavioral therapy  2.1.0    " + draft.format("2027-11-20"),
        "detox               Withdrawal and detox               3.0.0    " + draft.format("2027-11-20"),
        "find-help           Where to get help                  2.1.0    " + draft.format("2027-11-20"),
        "overdose-safety     Overdose safety                    3.0.0    " + draft.format("2027-11-20"),
        "self-help           Self-help and support groups       2.1.0    " + draft.format("2027-11-20"),
    ]
    approve(run, "behavioral-therapy", "detox", "find-help", "mat", date="2026-11-20")
    approve(run, "self-help", date="2025-11-24")  # due tomorrow
    # Set back to draft by hand after its approval: a draft, but not one that was never approved.
    approve(run, "overdose-safety", date="2026-11-20")
    replace_in(project / "content/en/overdose-safety.md", "status: approved", "status: draft")
    assert run("sections", "--due").output.splitlines() == [
        "id               title                         version  status    next review due  why",
        "overdose-safety  Overdose safety               3.0.0    draft     2027-11-20       draft: not approved",
        "self-help        Self-help and support groups  2.1.0    approved  2026-11-24       due 2026-11-24, in 1 day",
    ]


def test_approve_with_a_date_long_past_warns_that_the_section_is_overdue_at_once(run: Invoke, project: Path) -> None:
    result = run("approve", "mat", "--reviewer", AVERY, "--date", "2025-03-01")
    assert result.exit_code == 0
    assert result.stdout == "content/en/mat.md: approved by Avery Example, MD on 2025-03-01\n"
    assert result.stderr == (
        "warning: next review due 2026-03-01 is already past; this section is overdue as soon as it is approved\n"
    )
    assert "status: approved\n" in (project / "content/en/mat.md").read_text()
    assert run("check").output.splitlines() == [
        "content/en/mat.md: next_review_due: review overdue since 2026-03-01 (warning)",
        "OK with 1 warning in 1 file.",
    ]
    # Due today is not past yet; a longer interval moves the date past today.
    for date, interval in (("2025-11-23", "12"), ("2025-03-01", "24")):
        quiet = run("approve", "detox", "--reviewer", AVERY, "--date", date, "--interval-months", interval)
        assert (quiet.exit_code, quiet.stderr) == (0, "")
        assert quiet.stdout == f"content/en/detox.md: approved by Avery Example, MD on {date}\n"


def test_check_says_bump_then_approve_again_each_problem_once(run: Invoke, project: Path) -> None:
    approve(run, "mat", date="2026-11-20")
    replace_in(project / "content/en/mat.md", *MAT_EDIT)
    assert run("check").output.splitlines() == [BUMP, "Aborted: 1 problem in 1 file."]
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.1.0")
    # Bumped: what is left is a review, not another bump; the translation lags behind the new version.
    lag = [f"content/{lang}/mat.md: translates mat 3.0.0, English is now 3.1.0 (warning)" for lang in TRANSLATIONS]
    assert run("check").output.splitlines() == [
        lag[0],
        "content/en/mat.md: body changed since version 3.0.0 was approved on 2026-11-20; "
        "version 3.1.0 needs a review: approve again",
        *lag[1:],
        "Aborted: 1 problem and 4 warnings in 5 files.",
    ]
    approve(run, "mat", date="2026-11-21")
    assert run("check").output.splitlines() == [*lag, "OK with 4 warnings in 4 files."]
