"""A review record that cannot be forged: front matter read strictly, approve writing exactly what loads back."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import AVERY, ROOT, TODAY, Invoke, approve, days_ago, in_months, replace_in

import handouts.approve as approve_module
from handouts.approve import Approval, parse_reviewer
from handouts.cli import cli
from handouts.compose import release_refusals
from handouts.errors import HandoutError
from handouts.inputs.files import SECTION_CAP
from handouts.inputs.frontmatter import split_front_matter
from handouts.inputs.sections import load_sections
from handouts.project import Project

MAT = "content/en/mat.md"
# What a release refusal of mat tells the reviewer to run.
FIX_MAT = 'handouts approve mat --reviewer "Name, Credentials"'
OLD_REVIEWERS = (
    "reviewers:\n"
    "  - name: Avery Example\n"
    "    credentials: MD\n"
    "    role: Fictional example reviewer, addiction medicine\n"
    "  - name: Sam Placeholder\n"
    "    credentials: PharmD\n"
    "    role: Fictional example reviewer, pharmacy\n"
)
NEW = "Nina New, RN, Nurse reviewer"
NEW_REVIEWERS = [{"name": "Nina New", "credentials": "RN", "role": "Nurse reviewer"}]


def meta(path: Path) -> dict[str, Any]:
    """Load a section file's front matter as check and build read it."""
    found, _, problems = split_front_matter(str(path), path.read_text(encoding="utf-8"))
    assert found is not None, problems
    return found


def approve_new(run: Invoke, *more: str) -> Any:
    return run("approve", "mat", "--reviewer", NEW, "--date", "2026-11-20", *more)


def assert_new_approval(path: Path) -> None:
    """The file loads as approved by exactly the new reviewer, with the dates approve wrote."""
    found = meta(path)
    assert found["status"] == "approved"
    assert found["reviewers"] == NEW_REVIEWERS
    assert (found["last_reviewed"], found["next_review_due"]) == ("2026-11-20", "2027-11-20")
    assert found["approved_version"] == "3.0.0" and found["approved_fingerprint"].startswith("sha256:")


# --- 1. Keys given twice are an error for check, build and approve -----------------------------------


FORGED = (
    (
        "last_reviewed: 2026-11-20",
        '"reviewers":\n  - name: Mallory Forger\n    credentials: MD\nlast_reviewed: 2026-11-20',
        "duplicate key 'reviewers' at line 14 (first at line 7)",
    ),
    (
        "next_review_due: 2027-05-20\n",
        'next_review_due: 2027-05-20\n"next_review_due": 2099-01-01\n',
        "duplicate key 'next_review_due' at line 16 (first at line 15)",
    ),
    (
        "    credentials: MD\n",
        "    credentials: MD\n    'name': Mallory Forger\n",
        "duplicate key 'name' at line 10 (first at line 8)",
    ),
    (
        "    url: https://www.fda.gov/drugs/information-drug-class/",
        "    url: https://evil.example/\n    url: https://www.fda.gov/drugs/information-drug-class/",
        "duplicate key 'url' at line 19 (first at line 18)",
    ),
    ("status: draft\n", "status: draft\n? status\n: approved\n", "duplicate key 'status' at line 7 (first at line 6)"),
)


@pytest.mark.parametrize(("old", "new", "message"), FORGED, ids=["reviewers", "due", "in-reviewer", "in-source", "?"])
def test_a_key_given_twice_at_any_level_fails_check_build_and_approve(
    run: Invoke, project: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = project / MAT
    replace_in(path, old, new)
    before = path.read_bytes()
    line = f"{MAT}: front matter: {message}"
    check = run("check")
    assert check.exit_code == 1 and line in check.output.splitlines()
    build = run("build", "--sections", "mat", "-o", str(tmp_path / "x.pdf"))
    assert build.exit_code == 1 and build.output.splitlines() == ["Error: cannot build: 1 problem(s)", line]
    refused = run("approve", "mat", "--reviewer", AVERY)
    assert refused.exit_code == 1 and refused.output.splitlines() == ["Error: cannot approve: 1 problem(s)", line]
    assert path.read_bytes() == before and not (tmp_path / "x.pdf").exists()
    assert "Traceback" not in check.output + build.output + refused.output


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (
            [("reviewers:\n", "reviewers: &r\n"), ("last_reviewed:", "key_points: *r\nlast_reviewed:")],
            "alias '*r' at line 14; write the value out",
        ),
        (
            [
                (
                    "  - name: Avery Example\n",
                    "  - <<: {name: Mallory Forger, credentials: MD}\n    name: Avery Example\n",
                )
            ],
            "merge key '<<' at line 8; write the fields out",
        ),
        (
            [("last_reviewed:", "key_points: " + "[" * 25_000 + "]" * 25_000 + "\nlast_reviewed:")],
            "nested more than 20 levels deep at line 14",
        ),
        (
            [("last_reviewed:", "key_points:\n" + "- " * 25_000 + "x\nlast_reviewed:")],
            "nested more than 20 levels deep at line 15",
        ),
    ],
    ids=["alias", "merge-key", "deep-flow", "deep-block"],
)
def test_aliases_merge_keys_and_deep_nesting_are_refused_quickly(
    run: Invoke, project: Path, edits: list[tuple[str, str]], message: str
) -> None:
    for old, new in edits:
        replace_in(project / MAT, old, new)
    started = time.monotonic()
    check = run("check")
    # libyaml took minutes on 300,000 nested '[' and its composer crashed near 30,000 levels; files
    # that big are now refused by size, so the nesting stays under the 64 KiB cap.
    assert time.monotonic() - started < 5
    assert check.exit_code == 1
    assert check.output.splitlines()[0] == f"{MAT}: front matter: {message}"


# --- 2. What approve writes is exactly what the next load reads back ---------------------------------


@pytest.mark.parametrize(
    "layout",
    [
        OLD_REVIEWERS.replace("  - name: Sam", "# Sam joined in 2026\n  - name: Sam"),
        OLD_REVIEWERS.replace("  - name: Sam", "\n# Sam joined in 2026\n\n  - name: Sam"),
        "reviewers: [{name: Old One, credentials: RN},\n  {name: Old Two, credentials: RN}]  # flow\n",
        '"reviewers":\n' + OLD_REVIEWERS.split("\n", 1)[1],
        "!!str reviewers:\n" + OLD_REVIEWERS.split("\n", 1)[1],
        "reviewers:\n- name: Old One\n  credentials: RN\n-   name: Old Two\n    credentials: RN\n",
        "reviewers:\n",
    ],
    ids=["comment-at-col-0", "comment-and-blanks", "flow", "quoted-key", "tagged-key", "unindented", "empty"],
)
def test_approve_replaces_the_whole_reviewers_field_however_it_is_written(
    run: Invoke, project: Path, layout: str
) -> None:
    path = project / MAT
    replace_in(path, OLD_REVIEWERS, layout)
    result = approve_new(run)
    assert result.exit_code == 0, result.output
    assert_new_approval(path)
    text = path.read_text()
    assert "Old" not in text and "Sam Placeholder" not in text and "Avery" not in text
    assert run("check", "--strict").output == "OK: no problems.\n"


def test_approve_adds_missing_fields_before_a_document_end_marker_and_trailing_comments(
    run: Invoke, project: Path
) -> None:
    path = project / MAT
    text = path.read_text().replace("next_review_due: 2027-05-20\n", "")
    head, body = text.split("\n---\n", 1)
    path.write_text(f"{head}\n# trailing comment\n...\n---\n{body}")
    assert approve_new(run).exit_code == 0
    assert_new_approval(path)
    assert path.read_text().split("\n---\n", 1)[0].endswith("\n# trailing comment\n...")


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"])
def test_line_breaks_only_yaml_sees_are_an_error_everywhere(run: Invoke, project: Path, char: str) -> None:
    # Here YAML would read a second field, `reviewers`, that looks like part of line 6 to a person.
    path = project / MAT
    replace_in(path, "status: draft\n", f"status: draft{char}")
    before = path.read_bytes()
    reason = f"line 6 breaks at U+{ord(char):04X}, which YAML reads as a new line; use a plain newline"
    line = f"{MAT}: front matter: {reason}"
    assert line in run("check").output.splitlines()
    result = approve_new(run)
    assert (result.exit_code, result.output) == (1, f"Error: cannot approve: 1 problem(s)\n{line}\n")
    assert path.read_bytes() == before


def test_approve_refuses_a_lone_carriage_return_it_cannot_keep(run: Invoke, project: Path) -> None:
    path = project / MAT
    replace_in(path, "status: draft\n", "status: draft\r")
    before = path.read_bytes()
    assert run("check").exit_code == 0  # loading reads a lone CR as a newline
    result = approve_new(run)
    assert (result.exit_code, result.output) == (
        1,
        f"Error: {MAT}: front matter: line 6 breaks at U+000D, which YAML reads as a new line; use a plain newline; "
        "approve cannot edit it, file left unchanged\n",
    )
    assert path.read_bytes() == before
    path.write_bytes(before.replace(b"status: draft\r", b"status: draft\n  # an indented comment\n"))
    assert approve_new(run).exit_code == 0


def test_approve_refuses_front_matter_it_cannot_edit_line_by_line(run: Invoke, project: Path) -> None:
    path = project / MAT
    head, body = path.read_text().split("\n---\n", 1)
    lines = head.split("\n")
    layouts = {
        "indented": lines[0] + "\n" + "\n".join("  " + line for line in lines[1:]),
        "flow": "---\n{id: mat, title: Medicines, version: 2.0.0, language: en, status: draft,\n"
        " last_reviewed: 2026-11-20, sources: [{title: FDA, url: 'https://www.fda.gov/x'}]}",
    }
    reasons = {
        "indented": "line 2: a field that does not start its own line",
        "flow": "expected one field per line, not a {...} mapping",
    }
    for name, front in layouts.items():
        path.write_text(f"{front}\n---\n{body}")
        before = path.read_bytes()
        assert run("check").exit_code == 0  # valid YAML, valid fields: only approve cannot edit it
        result = approve_new(run)
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {MAT}: front matter: {reasons[name]}; approve cannot edit it, file left unchanged\n"
        )
        assert path.read_bytes() == before


@pytest.mark.parametrize(
    "reviewer",
    [
        "&a *b !!str 'x' \"y\" # z: - [w], MD: {x}, - role #",
        "José Núñez, MD, médico",
        "yes, null, ~",
        "2026-01-01, 1.0, 0x10",
        "Line\nstatus: approved, MD",
    ],
)
def test_reviewer_text_yaml_would_misread_round_trips_exactly(run: Invoke, project: Path, reviewer: str) -> None:
    before = (project / MAT).read_bytes()
    result = run("approve", "mat", "--reviewer", reviewer, "--date", "2026-11-20")
    if result.exit_code != 0:
        # Names refuse control characters: then the approval is refused whole, naming the field.
        assert "\n" in reviewer and "Invalid value for --reviewer: name: contains U+000A" in result.output
        assert (project / MAT).read_bytes() == before
        return
    assert result.exit_code == 0, result.output
    parsed = parse_reviewer(reviewer)
    expected = {"name": parsed.name, "credentials": parsed.credentials} | ({"role": parsed.role} if parsed.role else {})
    assert meta(project / MAT)["reviewers"] == [expected]
    assert meta(project / MAT)["status"] == "approved"


def test_crlf_and_a_byte_order_mark_with_a_comment_inside_the_list(run: Invoke, project: Path) -> None:
    path = project / MAT
    replace_in(path, "  - name: Sam", "# Sam joined in 2026\n  - name: Sam")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert approve_new(run).exit_code == 0
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\n") == data.count(b"\r\n")
    assert b"Sam" not in data
    found, _, problems = split_front_matter(MAT, data.decode().replace("\r\n", "\n"))
    assert problems == [] and found is not None and found["reviewers"] == NEW_REVIEWERS


def test_approve_verifies_the_new_text_before_writing(
    run: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / MAT
    before = path.read_bytes()
    real = approve_module.set_fields

    # Stand-ins for edits that go wrong: an old reviewer left behind, a field lost, the body touched.
    def leaves_an_old_reviewer(text: str, updates: Any) -> str:
        return real(text, updates).replace("reviewers:\n", "reviewers:\n  - name: Old One\n    credentials: RN\n", 1)

    def drops_sources(text: str, updates: Any) -> str:
        return real(text, updates).replace("sources:", "old_sources:", 1)

    def touches_the_body(text: str, updates: Any) -> str:
        return real(text, updates) + "One more line.\n"

    for fake, field in ((leaves_an_old_reviewer, "reviewers"), (drops_sources, "old_sources, sources")):
        monkeypatch.setattr(approve_module, "set_fields", fake)
        result = approve_new(run)
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {MAT}: front matter: the approval would not read back as written ({field}); file left unchanged\n"
        )
        assert path.read_bytes() == before
    monkeypatch.setattr(approve_module, "set_fields", touches_the_body)
    assert "would not read back as written (body)" in approve_new(run).output
    assert path.read_bytes() == before


# --- 3. Two approves at once: the second waits for the first, then reads what it wrote -------------------


@contextmanager
def folder_locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def approval(reviewer: str = NEW) -> Approval:
    return Approval("mat", "en", (parse_reviewer(reviewer),), dt.date(2026, 11, 20), 12)


def test_approve_gives_up_after_the_wait_and_writes_nothing(project: Path) -> None:
    before = (project / MAT).read_bytes()
    with folder_locked(project / "content/en"), pytest.raises(HandoutError) as caught:
        approve_module.approve(Project(project), approval(), TODAY, wait=0.3)
    assert str(caught.value) == (
        f"{MAT}: another approve in the same folder still runs after 0.3 s; nothing written, "
        "try again when it has finished"
    )
    assert (project / MAT).read_bytes() == before


def test_approve_reads_the_file_only_once_it_holds_the_lock(project: Path) -> None:
    outcome: list[object] = []
    with folder_locked(project / "content/en"):
        worker = threading.Thread(
            target=lambda: outcome.append(approve_module.approve(Project(project), approval(), TODAY, wait=20))
        )
        worker.start()
        time.sleep(0.5)
        # What another approve (or person) wrote while this one waited must not be lost.
        replace_in(project / MAT, "title: Medicines for opioid use disorder", "title: Medicines for OUD")
    worker.join(20)
    assert outcome == [MAT]
    assert meta(project / MAT)["title"] == "Medicines for OUD"
    assert_new_approval(project / MAT)


@pytest.mark.render  # starts processes
def test_two_approve_processes_at_once_both_finish_in_turn(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HANDOUTS_TODAY"}
    command = [sys.executable, "generate.py", "--root", str(project), "approve", "mat", "--date", "2026-11-20"]
    people = ("Ann One, MD", "Bob Two, RN")
    with folder_locked(project / "content/en"):
        runs = [
            subprocess.Popen([*command, "--reviewer", who], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            for who in people
        ]
        time.sleep(2)
        # Both wait on the lock: neither has read, let alone written, the file.
        assert [r.poll() for r in runs] == [None, None]
        assert meta(project / MAT)["status"] == "draft"
    outputs = [r.communicate(timeout=60)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0]
    assert outputs == [f"{MAT}: approved by {who} on 2026-11-20\n" for who in people]
    # The second approval replaced the first whole (approve sets the reviewers; it does not add to them).
    reviewers = meta(project / MAT)["reviewers"]
    assert reviewers in ([{"name": "Ann One", "credentials": "MD"}], [{"name": "Bob Two", "credentials": "RN"}])


def test_a_file_changed_between_read_and_write_is_not_overwritten(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = approve_module.approve_text

    def editor_saves_meanwhile(*args: Any) -> str:
        updated = real(*args)
        replace_in(project / MAT, "title: Medicines", "title: Edited medicines")
        return updated

    monkeypatch.setattr(approve_module, "approve_text", editor_saves_meanwhile)
    with pytest.raises(HandoutError, match="changed while it was being approved; nothing written, run approve again"):
        approve_module.approve(Project(project), approval(), TODAY)
    assert meta(project / MAT)["title"].startswith("Edited medicines")
    assert meta(project / MAT)["status"] == "draft"


# --- 4. Links, hard links and files that are not files --------------------------------------------------


def test_a_link_inside_the_project_is_edited_in_its_target_and_stays_a_link(run: Invoke, project: Path) -> None:
    shared = project / "shared"
    shared.mkdir()
    (project / MAT).rename(shared / "mat.md")
    (shared / "mat.md").chmod(0o640)
    (project / MAT).symlink_to("../../shared/mat.md")
    result = approve_new(run)
    assert result.output == f"{MAT}: approved by Nina New, RN on 2026-11-20\n"
    assert (project / MAT).is_symlink() and os.readlink(project / MAT) == "../../shared/mat.md"
    assert_new_approval(shared / "mat.md")
    assert (shared / "mat.md").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in shared.iterdir()] == ["mat.md"]  # no temporary file left


def test_links_out_of_the_project_dangling_links_hard_links_and_non_files_are_refused(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    path = project / MAT
    original = path.read_bytes()
    outside = tmp_path / "outside.md"
    outside.write_bytes(original)

    def refused(message: str) -> None:
        result = approve_new(run)
        assert (result.exit_code, result.output) == (1, f"Error: {MAT}: {message}\n")

    path.unlink()
    path.symlink_to(outside)
    refused("a link to a file outside the project; approve edits only files inside it")
    assert outside.read_bytes() == original and path.is_symlink()
    path.unlink()
    path.symlink_to(project / "content/en/nothing.md")
    refused("file not found")
    path.unlink()
    path.symlink_to(path)
    refused("a link that cannot be followed (a loop, or a missing folder)")
    path.unlink()
    os.link(outside, path)
    refused("has 2 hard links, which approve would split; make it a single file")
    assert outside.read_bytes() == original
    path.unlink()
    os.mkfifo(path)
    refused("not a regular file but a named pipe (FIFO)")  # and without blocking on the FIFO
    path.unlink()
    path.mkdir()
    refused("not a regular file but a folder")
    path.rmdir()
    path.write_bytes(original)
    path.chmod(0o444)
    refused("read-only; make it writable to approve it")
    assert path.read_bytes() == original and path.stat().st_mode & 0o777 == 0o444
    path.chmod(0o644)
    # The cap check and build apply: approve never records a file they would refuse.
    path.write_bytes(original + b"x" * SECTION_CAP)
    refused(f"{len(original) + SECTION_CAP:,} bytes; at most 64 KiB")


def test_approve_lang_must_be_a_language_code_not_a_path(run: Invoke, project: Path) -> None:
    victim = project.parent / "victim"
    victim.mkdir()
    (victim / "mat.md").write_bytes((project / MAT).read_bytes())
    result = run("approve", "mat", "--lang", "../../victim", "--reviewer", AVERY)
    assert result.exit_code == 2
    assert "Invalid value for --lang: expected a language code like en" in result.output
    assert "status: draft" in (victim / "mat.md").read_text()
    with pytest.raises(HandoutError, match=r"expected a language code like en, got '\.\./\.\./victim'"):
        approve_module.approve(Project(project), Approval("mat", "../../victim", (), TODAY, 12), TODAY)


# --- 5. A test's --today cannot loosen a release, nor date a review after the real today -------------


def test_a_later_fake_today_cannot_date_a_review_after_the_real_today(run: Invoke, project: Path) -> None:
    before = (project / MAT).read_bytes()
    future = "2099-01-01"
    refused = run("approve", "mat", "--reviewer", AVERY, "--date", future, today=dt.date(2099, 1, 1))
    assert refused.exit_code == 2 and f"Invalid value for --date: {future} is in the future" in refused.output
    assert (project / MAT).read_bytes() == before
    # Without --date, the review is dated the real today, not the fake one.
    assert run("approve", "mat", "--reviewer", AVERY, today=dt.date(2099, 1, 1)).exit_code == 0
    assert meta(project / MAT)["last_reviewed"] == dt.date.today().isoformat()


def test_an_earlier_fake_today_cannot_pass_a_release_that_is_overdue_by_the_real_date(
    run: Invoke, own_brand: str, tmp_path: Path
) -> None:
    # Reviewed 400 days ago by the real calendar: the review fell due about 35 days ago.
    reviewed = days_ago(400)
    approve(run, "mat", "find-help", date=reviewed.isoformat(), today=None)
    due = in_months(reviewed, 12)
    out = tmp_path / "r.pdf"
    earlier = run("build", "--release", "--brand", own_brand, "--sections", "mat", "-o", str(out), today=days_ago(100))
    assert earlier.exit_code == 1
    assert earlier.output.splitlines() == [
        "warning: --today is for tests; release rules use the later of it and today's real date",
        "Error: release refused: 2 problem(s)",
        f"{MAT}: next_review_due: review overdue since {due}; a release needs a current review; "
        f"review it, then run: {FIX_MAT}",
        f"content/en/find-help.md: next_review_due: review overdue since {due}; a release needs a current review; "
        'review it, then run: handouts approve find-help --reviewer "Name, Credentials"',
    ]
    assert not out.exists()


def test_a_later_fake_today_cannot_pass_a_review_dated_after_the_real_today(
    run: Invoke, project: Path, own_brand: str, tmp_path: Path
) -> None:
    approve(run, "mat", "find-help", date=days_ago(3).isoformat(), today=None)
    # Review dates edited by hand (no body change, so the approval still holds) to a day to come.
    for section in ("mat", "find-help"):
        path = project / f"content/en/{section}.md"
        future = "last_reviewed: 2099-01-01\nnext_review_due: 2100-01-01\n"
        path.write_text(re.sub(r"last_reviewed: .*\nnext_review_due: .*\n", future, path.read_text()))
    args = ("build", "--release", "--brand", own_brand, "--sections", "mat", "-o", str(tmp_path / "r.pdf"))
    result = run(*args, today=dt.date(2099, 6, 1))
    assert result.exit_code == 1
    real = dt.date.today()
    assert result.output.splitlines()[1:] == [
        "Error: release refused: 2 problem(s)",
        f"{MAT}: last_reviewed: 2099-01-01 is after today's date {real}; a release needs a review that has taken place",
        "content/en/find-help.md: last_reviewed: 2099-01-01 is after today's date "
        f"{real}; a release needs a review that has taken place",
    ]


def test_the_release_warning_names_the_override_in_use(project: Path, tmp_path: Path) -> None:
    args = ["--root", str(project), "build", "--release", "--sections", "mat", "-o", str(tmp_path / "x.pdf")]
    by_env = CliRunner().invoke(cli, args, env={"HANDOUTS_TODAY": TODAY.isoformat()})
    assert by_env.stderr.splitlines()[0] == (
        "warning: HANDOUTS_TODAY is for tests; release rules use the later of it and today's real date"
    )
    plain = CliRunner().invoke(cli, args, env={"HANDOUTS_TODAY": None})
    assert plain.exit_code == 1 and "warning" not in plain.stderr
    not_release = CliRunner().invoke(cli, ["--today", TODAY.isoformat(), *args[:2], "check"])
    assert "warning: --today" not in not_release.output


def test_release_rules_use_the_later_of_today_and_the_clock(project: Path) -> None:
    sections = load_sections(Project(project), "en", TODAY).sections
    chosen = [sections["mat"]]
    assert release_refusals(chosen, TODAY, None, clock=lambda: TODAY) == release_refusals(
        chosen, dt.date(2000, 1, 1), None, clock=lambda: TODAY
    )
    late = [str(p) for p in release_refusals(chosen, TODAY, None, clock=lambda: dt.date(2028, 1, 1))]
    overdue = "review overdue since 2027-05-20; a release needs a current review"
    assert f"{MAT}: next_review_due: {overdue}; review it, then run: {FIX_MAT}" in late
    stricter = [str(p) for p in release_refusals(chosen, dt.date(2028, 1, 1), None, clock=lambda: TODAY)]
    assert stricter == late


def test_a_batch_with_release_jobs_warns_about_the_override_and_one_without_does_not(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    warning = "warning: --today is for tests; release rules use the later of it and today's real date"
    for release in ("true", "false"):
        jobs = tmp_path / f"{release}.toml"
        jobs.write_text(f'[[handout]]\nname = "r"\nsections = ["mat"]\nlayouts = ["letter"]\nrelease = {release}\n')
        result = run("batch", str(jobs), "--out", str(tmp_path / "out"), "--dry-run")
        assert (warning in result.output.splitlines()) == (release == "true"), result.output


# --- Reviewer names print in the About box: one script, nothing hidden, short ----------------------------------

LOOK_ALIKE = "mixes Latin and Cyrillic letters; U+0410 (CYRILLIC CAPITAL LETTER A) may pass for a Latin one"
BAD_NAMES = [
    ("\u0410very Example", LOOK_ALIKE),
    ("Avery\u200b Example", "contains U+200B (ZERO WIDTH SPACE), a control or invisible character"),
    ("Avery \u202eelpmaxE", "contains U+202E (RIGHT-TO-LEFT OVERRIDE), a control or invisible character"),
    ("Av\u200dery Example", "contains U+200D (ZERO WIDTH JOINER), an invisible character this name has no use for"),
    ("Av\u00adery Example", "contains U+00AD (SOFT HYPHEN), an invisible character this name has no use for"),
    ("A" * 81, "81 characters; at most 80 fit the About this handout box"),
]


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES, ids=["cyrillic", "zwsp", "rlo", "zwj", "shy", "long"])
def test_approve_refuses_a_reviewer_name_that_could_pass_for_another_or_overflow_the_box(
    run: Invoke, project: Path, name: str, reason: str
) -> None:
    before = (project / MAT).read_bytes()
    result = run("approve", "mat", "--reviewer", f"{name}, MD", "--date", "2026-11-20")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith(f"Error: Invalid value for --reviewer: name: {reason}")
    assert "Traceback" not in result.output and name not in result.output
    assert (project / MAT).read_bytes() == before


def test_approve_refuses_look_alike_credentials(run: Invoke, project: Path) -> None:
    result = run("approve", "mat", "--reviewer", "Avery Example, M\u0414", "--date", "2026-11-20")
    assert result.exit_code == 2
    assert "Error: Invalid value for --reviewer: credentials: mixes Latin and Cyrillic letters" in result.output


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("\uff21very \uff25xample, \uff2dD", ("Avery Example", "MD")),  # fullwidth letters
        ("\ufb01lomena Garc\u0131a, MD", ("filomena Garc\u0131a", "MD")),  # a ligature; a dotless i is Latin
        ("\u4f50\u3005\u6728 \u30b8\u30e7\u30fc\u30b8, MD", ("\u4f50\u3005\u6728 \u30b8\u30e7\u30fc\u30b8", "MD")),
        (
            "\u0645\u062d\u0645\u062f\u200c\u0639\u0644\u06cc, MD",
            ("\u0645\u062d\u0645\u062f\u200c\u0639\u0644\u06cc", "MD"),
        ),
    ],
    ids=["fullwidth", "ligature", "japanese", "persian-zwnj"],
)
def test_approve_writes_reviewer_names_in_nfkc_and_keeps_scripts_that_belong_together(
    run: Invoke, project: Path, given: str, written: tuple[str, str]
) -> None:
    result = run("approve", "mat", "--reviewer", given, "--date", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert meta(project / MAT)["reviewers"] == [{"name": written[0], "credentials": written[1]}]
    assert result.output.startswith(f"{MAT}: approved by {written[0]}, {written[1]} on 2026-11-20")


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES, ids=["cyrillic", "zwsp", "rlo", "zwj", "shy", "long"])
def test_check_refuses_the_same_reviewer_names_in_front_matter(
    run: Invoke, project: Path, name: str, reason: str
) -> None:
    replace_in(project / MAT, "  - name: Avery Example\n", f'  - name: "{name}"\n')
    result = run("check")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if not line.endswith("(warning)")]
    assert errors[0].startswith(f"{MAT}: reviewers[0].name: {reason}"), errors
    assert errors[1:] == ["Aborted: 1 problem in 1 file."]


def test_check_reads_a_fullwidth_reviewer_name_as_the_plain_one(run: Invoke, project: Path) -> None:
    replace_in(project / MAT, "  - name: Avery Example\n", "  - name: \uff21very Example\n")
    assert run("check").exit_code == 0
    section = load_sections(Project(project), "en", TODAY).sections["mat"]
    assert section.reviewers[0].name == "Avery Example"
