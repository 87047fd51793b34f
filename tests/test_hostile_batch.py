"""Hostile input and faults for `batch`: nothing lost, nothing touched outside the output folder, nothing hangs.

Most tests run the real command in-process with a fake renderer on threads (no WeasyPrint); the
ones that start worker processes and kill them are in the render tier.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from conftest import ROOT, TODAY, Invoke, fake_render

from handouts import batch as lib
from handouts.batch import manifest as manifest_lib
from handouts.batch.lock import LOCK_NAME, folder_lock
from handouts.batch.manifest import JOURNAL_NAME, MANIFEST_NAME, STAT_NAME, ManifestEntry, load_manifest
from handouts.inputs.fields import shown
from handouts.render_service import RenderJob, RenderOutcome, ThreadExecutor
from handouts.signals import Terminated, sigterm_as_interrupt

JOBS = """
[[handout]]
name = "overdose"
sections = ["overdose-safety"]
brands = ["example-clinic"]
layouts = ["letter", "a4"]

[[handout]]
name = "medicines"
sections = ["mat"]
brands = ["example-clinic"]
layouts = ["letter"]
"""
INSIDE = "path: expected a relative path inside the output folder,"
SECTIONS = "sections: expected section ids with MAJOR.MINOR.PATCH versions,"
# The package exports the function `run`, which hides the module of the same name.
run_lib = importlib.import_module("handouts.batch.run")
KEYS = [
    "example-clinic/en/medicines-letter.pdf",
    "example-clinic/en/overdose-a4.pdf",
    "example-clinic/en/overdose-letter.pdf",
    "review-record-example-clinic-en.pdf",
]


@pytest.fixture
def jobs(project: Path) -> Path:
    """A job file in the project."""
    path = project / "jobs.toml"
    path.write_text(JOBS)
    return path


def batch(run: Invoke, jobs: Path, out: Path, *options: str) -> Result:
    """Run the batch command into `out`; it never prints a traceback."""
    result = run("batch", str(jobs), "--out", str(out), *options)
    assert "Traceback" not in result.output
    return result


def built(run: Invoke, jobs: Path, out: Path) -> Path:
    """Build the job file once with the fake renderer and return the output folder."""
    result = batch(run, jobs, out)
    assert result.exit_code == 0, result.output
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entries(out: Path) -> dict[str, dict[str, object]]:
    return json.loads((out / MANIFEST_NAME).read_text())["outputs"]  # type: ignore[no-any-return]


def assert_manifest_true(out: Path) -> None:
    """Every entry the next run would read describes the file on disk."""
    for key, entry in load_manifest(out).entries.items():
        assert entry.sha256 == sha(out / key), key


def add_stale(out: Path, key: str, data: bytes = b"%PDF stale\n", **fields: object) -> Path:
    """Record a stale output the tool wrote (as a past job would have), with its file."""
    path = out / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    template = manifest["outputs"][KEYS[0]]
    manifest["outputs"][key] = {**template, "path": key, "sha256": sha(path), **fields}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_mtime_ns, p.lstat().st_size) for p in folder.rglob("*")}


# --- prune ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("{victim}", "{INSIDE} got {shown}"),
        (
            "../outside/victim.pdf",
            "path: expected a relative path inside the output folder, got '../outside/victim.pdf'",
        ),
        ("a/./b.pdf", "path: expected a relative path inside the output folder, got 'a/./b.pdf'"),
        ("a\x00b.pdf", "path: expected a relative path inside the output folder, got 'a\\x00b.pdf'"),
        ("a\\..\\b.pdf", "path: expected a relative path inside the output folder, got 'a\\\\..\\\\b.pdf'"),
        ("notes.txt", "path: expected a relative path ending in .pdf, got 'notes.txt'"),
    ],
)
@pytest.mark.usefixtures("fake_pool")
def test_a_manifest_path_that_leaves_the_folder_is_a_problem_not_a_deletion(
    run: Invoke, jobs: Path, tmp_path: Path, key: str, message: str
) -> None:
    out = built(run, jobs, tmp_path / "out")
    victim = tmp_path / "outside/victim.pdf"
    victim.parent.mkdir()
    victim.write_bytes(b"%PDF the user's own\n")
    key = key.format(victim=victim)
    message = message.format(INSIDE=INSIDE, shown=shown(key))  # a long value is cut short in messages
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["outputs"][key] = {**manifest["outputs"][KEYS[0]], "path": key, "sha256": sha(victim)}
    tampered = json.dumps(manifest).encode()
    (out / MANIFEST_NAME).write_bytes(tampered)
    result = batch(run, jobs, out, "--prune")
    assert result.exit_code == 1
    problem = (
        f"{out / MANIFEST_NAME}: not a manifest this tool wrote (outputs[{shown(key)}]: {message}); "
        "kept aside as manifest.json.unreadable-1, every output rebuilt"
    )
    assert f"problem: {problem}" in result.output.splitlines()
    assert victim.read_bytes() == b"%PDF the user's own\n"
    assert (out / "manifest.json.unreadable-1").read_bytes() == tampered
    assert sorted(entries(out)) == KEYS
    assert_manifest_true(out)


@pytest.mark.usefixtures("fake_pool")
def test_prune_deletes_only_unchanged_plain_files_inside_the_folder(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = built(run, jobs, tmp_path / "out")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.pdf").write_bytes(b"%PDF outside\n")
    gone = add_stale(out, "old/gone.pdf")
    edited = add_stale(out, "old/edited.pdf")
    edited.write_bytes(b"%PDF the user's own edit\n")
    add_stale(out, "linked/victim.pdf", b"%PDF outside\n")  # the same bytes as the file outside
    (out / "linked/victim.pdf").unlink()
    (out / "linked").rmdir()
    (out / "linked").symlink_to(outside)
    link = add_stale(out, "old/link.pdf", b"%PDF outside\n")
    link.unlink()
    link.symlink_to(outside / "victim.pdf")
    folder = add_stale(out, "old/folder.pdf")
    folder.unlink()
    folder.mkdir()
    result = batch(run, jobs, out, "--prune")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert f"pruned {gone}" in lines
    assert f"kept: {edited}: changed since it was built; not deleted" in lines
    assert f"problem: {out}/linked/victim.pdf: linked is a symbolic link, not a folder of outputs; not deleted" in lines
    assert f"problem: {link}: old/link.pdf is a symbolic link; not deleted" in lines
    assert f"problem: {folder}: old/folder.pdf is a folder; not deleted" in lines
    assert not gone.exists()
    assert edited.read_bytes() == b"%PDF the user's own edit\n"
    assert (outside / "victim.pdf").read_bytes() == b"%PDF outside\n" and link.is_symlink() and folder.is_dir()
    # Every stale entry is forgotten: the manifest vouches only for what the tool wrote and is still there.
    assert sorted(entries(out)) == KEYS
    again = batch(run, jobs, out, "--prune")
    assert again.exit_code == 0 and "pruned" not in again.output and "kept" not in again.output


@pytest.mark.usefixtures("fake_pool")
def test_prune_deletes_html_only_with_a_matching_checksum(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert batch(run, jobs, out, "--html").exit_code == 0
    entry = entries(out)[KEYS[0]]
    assert entry["html"] == KEYS[0].removesuffix(".pdf") + ".html"
    assert entry["html_sha256"] == sha(out / str(entry["html"]))
    jobs.write_text(JOBS.replace('layouts = ["letter", "a4"]', 'layouts = ["letter"]'))
    edited_html = out / "example-clinic/en/overdose-a4.html"
    edited_html.write_text("<p>edited by hand</p>")
    result = batch(run, jobs, out, "--prune", "--html")
    assert result.exit_code == 0, result.output
    assert f"pruned {out}/example-clinic/en/overdose-a4.pdf" in result.output.splitlines()
    assert f"kept: {edited_html}: changed since it was built; not deleted" in result.output.splitlines()
    assert not (out / "example-clinic/en/overdose-a4.pdf").exists() and edited_html.exists()


@pytest.mark.usefixtures("fake_pool")
def test_dry_run_with_prune_shows_exactly_what_would_be_deleted(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = built(run, jobs, tmp_path / "out")
    gone = add_stale(out, "old/gone.pdf")
    edited = add_stale(out, "old/edited.pdf")
    edited.write_bytes(b"%PDF edited\n")
    (out / STAT_NAME).unlink()
    before = snapshot(out)
    result = batch(run, jobs, out, "--prune", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-3:] == [
        f"keep       {edited}  (changed since it was built; not deleted)",
        f"prune      {gone}",
        "Plan: 0 to build, 4 unchanged, 0 failing, 2 stale (1 file(s) to delete). Nothing written (--dry-run).",
    ]
    assert snapshot(out) == before


# --- temporary files -----------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_pool")
def test_temporary_files_the_run_did_not_create_are_left_alone(
    run: Invoke, jobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    theirs = [out / ".notes.tmp", out / "example-clinic/en/.overdose-a4.pdf.abcd1234.tmp"]
    for path in theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("someone else's")
    real_replace = os.replace

    def full_disk_on_rename(src: str, dst: str) -> None:
        if str(dst).endswith("medicines-letter.pdf"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr("handouts.atomic.os.replace", full_disk_on_rename)
    result = batch(run, jobs, out)
    assert result.exit_code == 1
    assert f"failed: {out}/{KEYS[0]}: cannot write: No space left on device" in result.output.splitlines()
    # The failed write removed its own temporary file, and only that one.
    assert sorted(out.rglob("*.tmp")) == sorted(theirs)


# --- one batch per folder; several job files ------------------------------------------------------


@pytest.mark.usefixtures("fake_pool")
def test_a_second_run_on_a_folder_in_use_stops_and_names_the_first(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = built(run, jobs, tmp_path / "out")
    other_job = tmp_path / "other.toml"
    with folder_lock(out, other_job):
        lock = json.loads((out / LOCK_NAME).read_text())
        before = snapshot(out)
        result = batch(run, jobs, out, "--force")
        assert snapshot(out) == before
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {out}: another batch is writing here (pid {os.getpid()}, job file {other_job}, "
        f"started {lock['started']}); wait for it to end"
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", lock["started"])
    assert (out / LOCK_NAME).read_bytes() == b""  # emptied when the holder ended
    assert batch(run, jobs, out).exit_code == 0


@pytest.mark.parametrize("kind", ["symlink", "folder", "foreign", "hardlink"])
@pytest.mark.usefixtures("fake_pool")
def test_a_lock_file_the_tool_did_not_write_stops_the_run_cleanly(
    run: Invoke, jobs: Path, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    lock = out / LOCK_NAME
    target = tmp_path / "target.txt"
    target.write_text("precious")
    if kind == "symlink":
        lock.symlink_to(target)
    elif kind == "folder":
        lock.mkdir()
    elif kind == "hardlink":
        target.write_text("")  # empty: what the tool leaves in its lock file between runs
        os.link(target, lock)
    else:
        lock.write_text("precious notes")
    result = batch(run, jobs, out)
    assert result.exit_code == 1
    expected = {
        "symlink": f"Error: {lock}: cannot lock the output folder: it is a symbolic link",
        "folder": f"Error: {lock}: cannot lock the output folder: Is a directory",
        "foreign": f"Error: {lock}: not a lock file this tool wrote; move it away and run again",
        "hardlink": f"Error: {lock}: cannot lock the output folder: it is a file with other hard links",
    }
    assert result.output.splitlines() == [expected[kind]]
    assert target.read_text() == ("" if kind == "hardlink" else "precious")
    assert kind != "foreign" or lock.read_text() == "precious notes"
    assert not (out / MANIFEST_NAME).exists()


@pytest.mark.usefixtures("fake_pool")
def test_two_job_files_share_a_folder_and_each_prunes_only_its_own(run: Invoke, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, second = project / "first.toml", project / "second.toml"
    first.write_text(JOBS)
    second.write_text('[[handout]]\nname = "detox"\nsections = ["detox"]\nbrands = ["example-clinic"]\n')
    assert batch(run, first, out).exit_code == 0
    result = batch(run, second, out, "--prune")
    assert result.exit_code == 0, result.output
    assert "pruned" not in result.output
    recorded = {key: entry["job"] for key, entry in entries(out).items()}
    # The review record of a brand and language is asked for by both: the last run to build it owns it.
    assert recorded == {
        **{key: "first.toml" for key in KEYS[:3]},
        "example-clinic/en/detox-letter.pdf": "second.toml",
        "review-record-example-clinic-en.pdf": "second.toml",
    }
    assert (
        f"warning: {out}/review-record-example-clinic-en.pdf: written by job file first.toml, "
        "which asks for it too; now recorded as this job file's"
    ) in result.output.splitlines()
    first.write_text(JOBS.replace('layouts = ["letter", "a4"]', 'layouts = ["letter"]'))
    pruned = batch(run, first, out, "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert [line for line in pruned.output.splitlines() if line.startswith("pruned")] == [
        f"pruned {out}/example-clinic/en/overdose-a4.pdf"
    ]
    assert (out / "example-clinic/en/detox-letter.pdf").exists()
    assert_manifest_true(out)


@pytest.mark.usefixtures("fake_pool")
def test_an_output_folder_copied_elsewhere_still_belongs_to_its_job_file(
    run: Invoke, jobs: Path, tmp_path: Path
) -> None:
    out = built(run, jobs, tmp_path / "out")
    copy = tmp_path / "deeper/still/copy"
    shutil.copytree(out, copy, symlinks=True)
    stale = add_stale(copy, "old/gone.pdf")
    result = batch(run, jobs, copy, "--prune")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and f"pruned {stale}" in result.output.splitlines()
    assert {entry["job"] for entry in entries(copy).values()} == {"jobs.toml"}


@pytest.mark.usefixtures("fake_pool")
def test_a_manifest_from_before_jobs_were_told_apart_is_read_and_adopted(
    run: Invoke, jobs: Path, tmp_path: Path
) -> None:
    out = built(run, jobs, tmp_path / "out")
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    for entry in manifest["outputs"].values():
        del entry["job"], entry["html_sha256"]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    result = batch(run, jobs, out)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("Built 0, unchanged 4, failed 0")
    assert {entry["job"] for entry in entries(out).values()} == {"jobs.toml"}


# --- files at the tool's names that the tool did not write ----------------------------------------


def make_not_ours(path: Path, kind: str, outside: Path) -> None:
    """Put something at one of the tool's names that the tool cannot have written."""
    if path.exists():
        path.unlink()
    if kind == "list":
        path.write_text("[1, 2, 3]")
    elif kind == "folder":
        path.mkdir()
        (path / "keep").write_text("x")
    elif kind == "symlink":
        outside.write_text('{"format": 1, "outputs": {}}')
        path.symlink_to(outside)
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00junk" * 64)
    elif kind == "huge":
        with open(path, "wb") as handle:
            handle.truncate(65 * 1024 * 1024)  # sparse: larger than anything the tool writes
    elif kind == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "hardlink":
        outside.write_text("someone's log\n")
        os.link(outside, path)


NOT_OURS = {
    "list": "unknown format",
    "folder": "a folder",
    "symlink": "a symbolic link",
    "binary": "not UTF-8 text (invalid start byte at byte 0)",
    "huge": "larger than 64 MiB",
    "deep": "not JSON (nested too deeply)",
    "fifo": "not a regular file",
}


@pytest.mark.parametrize("kind", list(NOT_OURS))
@pytest.mark.usefixtures("fake_pool")
def test_a_manifest_the_tool_did_not_write_is_kept_aside_and_everything_rebuilt(
    run: Invoke, jobs: Path, tmp_path: Path, kind: str
) -> None:
    out = built(run, jobs, tmp_path / "out")
    manifest = out / MANIFEST_NAME
    make_not_ours(manifest, kind, tmp_path / "outside.json")
    outside_before = (tmp_path / "outside.json").read_bytes() if kind == "symlink" else None
    result = batch(run, jobs, out)
    assert result.exit_code == 1, result.output
    problem = (
        f"{manifest}: not a manifest this tool wrote ({NOT_OURS[kind]}); "
        "kept aside as manifest.json.unreadable-1, every output rebuilt"
    )
    assert f"warning: {problem}" in result.output.splitlines()
    assert f"problem: {problem}" in result.output.splitlines()
    assert "Built 4, unchanged 0, failed 0" in result.output
    aside = out / "manifest.json.unreadable-1"
    assert os.path.lexists(aside)
    if kind == "symlink":
        assert aside.is_symlink() and (tmp_path / "outside.json").read_bytes() == outside_before
    assert sorted(entries(out)) == KEYS
    assert_manifest_true(out)
    assert batch(run, jobs, out).exit_code == 0


@pytest.mark.usefixtures("fake_pool")
def test_a_kept_aside_name_is_never_reused(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = built(run, jobs, tmp_path / "out")
    (out / "manifest.json.unreadable-1").write_text("kept from before")
    (out / MANIFEST_NAME).write_text("[]")
    result = batch(run, jobs, out)
    assert "kept aside as manifest.json.unreadable-2" in result.output
    assert (out / "manifest.json.unreadable-1").read_text() == "kept from before"
    assert (out / "manifest.json.unreadable-2").read_text() == "[]"


@pytest.mark.parametrize(
    "kind",
    [
        "folder",
        "symlink",
        "hardlink",
        "binary",
        "bad-put",
        "bad-drop",
        "unknown-change",
        "text",
        "text-unended",
        "deep",
        "deep-unended",
    ],
)
@pytest.mark.usefixtures("fake_pool")
def test_a_journal_the_tool_did_not_write_is_kept_aside_and_never_followed(
    run: Invoke, jobs: Path, tmp_path: Path, kind: str
) -> None:
    out = built(run, jobs, tmp_path / "out")
    journal = out / JOURNAL_NAME
    outside = tmp_path / "outside.log"
    entry = {**entries(out)[KEYS[0]], "path": "../outside.pdf"}
    # Plain text and deep nesting were once taken for lines a killed run cut short, and deleted.
    lines = {
        "bad-put": (json.dumps({"put": entry}) + "\n", "line 1: put: path: expected a relative path inside the output"),
        "bad-drop": (
            json.dumps({"drop": "/etc/passwd"}) + "\n",
            "line 1: drop: expected a relative path ending in .pdf",
        ),
        "unknown-change": (json.dumps({"delete": KEYS[0]}) + "\n", "line 1: expected a drop or a put, got {'delete'"),
        "text": ("my notes\nsecond line\n", "line 1: not JSON, nor the start of a change, got 'my notes')"),
        "text-unended": ("my notes", "line 1: not JSON, nor the start of a change, got 'my notes')"),
        "deep": ("[" * 100_000 + "\n", "line 1: not JSON (nested too deeply))"),
        "deep-unended": ("[" * 100_000, "line 1: not JSON, nor the start of a change, got '[[[["),
    }
    if kind in lines:
        journal.write_text(lines[kind][0])
    else:
        make_not_ours(journal, kind, outside)
    outside_before = outside.read_bytes() if kind in ("symlink", "hardlink") else None
    result = batch(run, jobs, out, "--prune")
    assert result.exit_code == 1, result.output
    reason = lines[kind][1] if kind in lines else {**NOT_OURS, "hardlink": "a file with other hard links"}[kind]
    warning = next(line for line in result.output.splitlines() if line.startswith("warning:"))
    assert warning.startswith(f"warning: {journal}: not a journal this tool wrote ({reason}")
    assert warning.endswith("kept aside as manifest.journal.unreadable-1, outputs it changed rebuilt")
    assert os.path.lexists(out / "manifest.journal.unreadable-1") and not os.path.lexists(journal)
    if kind in ("symlink", "hardlink"):
        assert outside.read_bytes() == outside_before
    assert sorted(entries(out)) == KEYS
    assert_manifest_true(out)
    assert batch(run, jobs, out, "--force").exit_code == 0  # a journal of its own, appended and folded
    assert outside_before is None or outside.read_bytes() == outside_before


@pytest.mark.parametrize("kind", ["list", "folder", "binary", "symlink"])
@pytest.mark.usefixtures("fake_pool")
def test_an_odd_hash_cache_is_ignored(run: Invoke, jobs: Path, tmp_path: Path, kind: str) -> None:
    out = built(run, jobs, tmp_path / "out")
    make_not_ours(out / STAT_NAME, kind, tmp_path / "outside.json")
    result = batch(run, jobs, out)
    assert result.exit_code == 0, result.output
    assert f"warning: {out / STAT_NAME}: not a hash cache this tool wrote" in result.output
    assert "Built 0, unchanged 4" in result.output
    assert os.path.lexists(out / ".manifest-stat.json.unreadable-1")
    assert isinstance(json.loads((out / STAT_NAME).read_text()), dict)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"path": "/abs.pdf"}, "path: expected a relative path inside the output folder, got '/abs.pdf'"),
        ({"path": "a//b.pdf"}, "path: expected a relative path inside the output folder, got 'a//b.pdf'"),
        ({"path": "a\nb.pdf"}, "path: expected a relative path inside the output folder, got 'a\\nb.pdf'"),
        ({"sha256": "AB" * 32}, f"sha256: expected a SHA-256 in hex, got {shown('AB' * 32)}"),
        ({"sha256": "ab" * 32 + "\n"}, f"sha256: expected a SHA-256 in hex, got {shown('ab' * 32 + chr(10))}"),
        ({"fingerprint": "f"}, "fingerprint: expected a SHA-256 in hex, got 'f'"),
        # A long value is cut short in messages, as everywhere (inputs.fields.shown).
        (
            {"handout_version": "x" * 200},
            "handout_version: expected 12 hex digits, got '" + "x" * 27 + "..." + "x" * 28 + "'",
        ),
        ({"sections": {"mat": "2.0"}}, f"{SECTIONS} got {{'mat': '2.0'}}"),
        # Semver's digits are ASCII: `\d` let Arabic-Indic ones through (the content files' rule is the same).
        ({"sections": {"mat": "\u0662.\u0660.\u0660"}}, f"{SECTIONS} got {{'mat': '\u0662.\u0660.\u0660'}}"),
        ({"sections": {"mat": "02.0.0"}}, f"{SECTIONS} got {{'mat': '02.0.0'}}"),
        ({"sections": {"../x": "2.0.0"}}, f"{SECTIONS} got {{'../x': '2.0.0'}}"),
        ({"brand": "../b"}, "brand: expected a brand id, got '../b'"),
        ({"language": "EN"}, "language: expected a language code, got 'EN'"),
        ({"layout": "tabloid"}, "layout: expected one of letter, a4, large-print, trifold, record, got 'tabloid'"),
        ({"html": "other.html"}, "html: expected 'x.html' or null, got 'other.html'"),
        (
            {"html_sha256": "ab" * 32},
            f"html_sha256: expected a SHA-256 in hex beside an html path, got {shown('ab' * 32)}",
        ),
        ({"job": "a\x00b"}, "job: expected a job file path, got 'a\\x00b'"),
        ({"job": 3}, "job: expected text or null"),
        ({"tool_version": "0.1.0; rm -rf /"}, "tool_version: expected a version, got '0.1.0; rm -rf /'"),
    ],
)  # fmt: skip
def test_every_field_of_a_manifest_entry_is_checked(change: dict[str, object], message: str) -> None:
    good = ManifestEntry("x.pdf", "ab" * 32, "0" * 12, {"mat": "2.0.0"}, "b", "en", "letter", "cd" * 32, {}, None, "0")
    assert ManifestEntry.from_dict(good.to_dict()) == good
    with pytest.raises(ValueError) as caught:
        ManifestEntry.from_dict({**good.to_dict(), **change})
    assert str(caught.value) == message


# --- writing: one output refused, the others built -----------------------------------------------


@pytest.mark.parametrize("first", ["new", "rebuilt"])
@pytest.mark.parametrize("kind", ["folder", "symlink", "same-bytes-symlink", "fifo", "file-in-the-way"])
@pytest.mark.usefixtures("fake_pool")
def test_an_output_path_that_is_taken_fails_only_that_output(
    run: Invoke, jobs: Path, tmp_path: Path, kind: str, first: str
) -> None:
    out = tmp_path / "out"
    if first == "rebuilt":
        built(run, jobs, out)  # then a no-op run would trust the manifest, were the file not checked
    victim = tmp_path / "victim.pdf"
    target = out / KEYS[0]
    same = kind == "same-bytes-symlink" and target.exists()
    victim.write_bytes(target.read_bytes() if same else b"%PDF precious\n")
    kept = victim.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    reasons = {
        "folder": f"{KEYS[0]} is a folder",
        "symlink": f"{KEYS[0]} is a symbolic link",
        "same-bytes-symlink": f"{KEYS[0]} is a symbolic link",
        "fifo": f"{KEYS[0]} is not a regular file",
        "file-in-the-way": "example-clinic/en is a file, not a folder of outputs",
    }
    if kind == "folder":
        target.mkdir()
    elif kind.endswith("symlink"):
        target.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(target)  # reading it would wait for ever
    else:
        for path in target.parent.iterdir():
            path.unlink()
        target.parent.rmdir()
        target.parent.write_text("a file where a folder goes")
    result = batch(run, jobs, out)
    assert result.exit_code == 1
    failed = sorted(line for line in result.output.splitlines() if line.startswith("failed: "))
    refused = KEYS[:3] if kind == "file-in-the-way" else KEYS[:1]
    assert failed == [f"failed: {out}/{key}: cannot write: {reasons[kind]}" for key in refused]
    assert victim.read_bytes() == kept
    assert sorted(entries(out)) == [key for key in KEYS if key not in refused]
    assert_manifest_true(out)


@pytest.mark.usefixtures("fake_pool")
def test_a_symlinked_subfolder_is_never_written_through(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "example-clinic").symlink_to(elsewhere)
    result = batch(run, jobs, out)
    assert result.exit_code == 1
    assert sorted(line for line in result.output.splitlines() if line.startswith("failed: ")) == [
        f"failed: {out}/{key}: cannot write: example-clinic is a symbolic link, not a folder of outputs"
        for key in KEYS[:3]
    ]
    assert list(elsewhere.iterdir()) == []
    assert sorted(entries(out)) == [KEYS[3]]


@pytest.mark.usefixtures("fake_pool")
def test_a_name_too_long_for_the_file_system_fails_only_that_output(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    jobs.write_text(JOBS.replace('name = "medicines"', f'name = "{"n" * 260}"'))
    result = batch(run, jobs, out)
    assert result.exit_code == 1
    assert f"failed: {out}/example-clinic/en/{'n' * 260}-letter.pdf: cannot write: File name too long" in (
        result.output.splitlines()
    )
    assert "Built 3, unchanged 0, failed 1" in result.output
    assert_manifest_true(out)
    again = batch(run, jobs, out)  # now the folder exists, and looking up the name fails differently
    assert again.exit_code == 1 and "Built 0, unchanged 3, failed 1" in again.output


@pytest.mark.usefixtures("fake_pool")
def test_a_full_disk_fails_the_outputs_it_refuses_and_keeps_the_manifest_true(
    run: Invoke, jobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    real = run_lib.write_atomic

    def full(path: Path, data: bytes) -> None:
        if "overdose" in path.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(run_lib, "write_atomic", full)
    result = batch(run, jobs, out)
    assert result.exit_code == 1
    assert sorted(line for line in result.output.splitlines() if line.startswith("failed: ")) == [
        f"failed: {out}/{key}: cannot write: No space left on device" for key in (KEYS[1], KEYS[2])
    ]
    assert sorted(entries(out)) == [KEYS[0], KEYS[3]]
    monkeypatch.undo()
    again = batch(run, jobs, out)
    assert again.exit_code == 0 and "Built 2, unchanged 2" in again.output


@pytest.mark.usefixtures("fake_pool")
def test_a_manifest_that_cannot_be_written_leaves_the_journal_for_the_next_run(
    run: Invoke, jobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"

    def full(out_dir: Path, entries: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(manifest_lib, "save_manifest", full)
    result = batch(run, jobs, out)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"problem: {out / MANIFEST_NAME}: cannot write: No space left on device; "
        "manifest.journal keeps this run's changes for the next run"
    )
    assert (out / JOURNAL_NAME).exists()
    assert sorted(load_manifest(out).entries) == KEYS
    monkeypatch.undo()
    again = batch(run, jobs, out)
    assert again.exit_code == 0 and "Built 0, unchanged 4" in again.output
    assert not (out / JOURNAL_NAME).exists() and sorted(entries(out)) == KEYS


@pytest.mark.usefixtures("fake_pool")
def test_a_journal_that_cannot_be_written_stops_the_run_with_one_line(
    run: Invoke, jobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = built(run, jobs, tmp_path / "out")

    def refuse(self: object) -> int:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(manifest_lib.Journal, "_open", refuse)
    result = batch(run, jobs, out, "--force")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {out / JOURNAL_NAME}: cannot write the journal: Read-only file system"
    ]
    monkeypatch.undo()
    assert_manifest_true(out)


@pytest.mark.usefixtures("fake_pool")
def test_an_output_folder_that_is_a_file_is_one_clean_line(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("a file")
    jobs.write_text(f'output = "{out}"\n{JOBS}')
    result = run("batch", str(jobs))
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {out}: the output folder is a file"]
    under = run("batch", str(jobs), "--out", str(out / "sub"))
    assert under.output.splitlines() == [f"Error: {out / 'sub'}: cannot create the output folder: Not a directory"]
    assert out.read_text() == "a file"


@contextlib.contextmanager
def mounted(*command: str) -> Iterator[None]:
    """Run a mount command for the block and always unmount; skip the test where mounting is not allowed."""
    target = command[-1]
    if subprocess.run(["mount", *command], capture_output=True).returncode != 0:
        pytest.skip("cannot mount here")
    try:
        yield
    finally:
        subprocess.run(["umount", target], check=True)


@pytest.mark.usefixtures("fake_pool")
def test_a_really_full_disk(run: Invoke, jobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "small"
    out.mkdir()

    def big_render(job: RenderJob) -> RenderOutcome:
        return RenderOutcome(job.key, b"%PDF-fake " + job.key.encode() + b"x" * 120_000, None, None, pages=1)

    @contextlib.contextmanager
    def open_big(where: str, **options: object) -> Iterator[ThreadExecutor]:
        yield ThreadExecutor(1, render=big_render)

    monkeypatch.setattr(lib, "open_executor", open_big)
    with mounted("-t", "tmpfs", "-o", "size=300k", "tmpfs", str(out)):
        result = batch(run, jobs, out)
        assert result.exit_code == 1
        failed = [line for line in result.output.splitlines() if line.startswith("failed: ")]
        assert failed and all(line.endswith("cannot write: No space left on device") for line in failed), failed
        assert list(out.rglob("*.tmp")) == []
        assert_manifest_true(out)
        assert len(load_manifest(out).entries) == len(KEYS) - len(failed)


@pytest.mark.usefixtures("fake_pool")
def test_read_only_folders(run: Invoke, jobs: Path, tmp_path: Path) -> None:
    out = built(run, jobs, tmp_path / "out")
    brand = out / "example-clinic"
    with mounted("--bind", "-o", "ro", str(brand), str(brand)):
        if os.access(brand, os.W_OK) and subprocess.run(["touch", str(brand / "x")]).returncode == 0:
            pytest.skip("read-only bind mounts are not enforced here")
        result = batch(run, jobs, out, "--force")
        assert result.exit_code == 1
        failed = sorted(line for line in result.output.splitlines() if line.startswith("failed: "))
        assert failed == [f"failed: {out}/{key}: cannot write: Read-only file system" for key in KEYS[:3]]
        assert "Built 1, unchanged 0, failed 3" in result.output
        assert_manifest_true(out)
    with mounted("--bind", "-o", "ro", str(out), str(out)):
        result = batch(run, jobs, out, "--force")
        assert result.output.splitlines() == [
            f"Error: {out / LOCK_NAME}: cannot lock the output folder: Read-only file system"
        ]


# --- signals: nothing hangs, no worker outlives the batch ----------------------------------------


def test_sigterm_becomes_a_clean_interrupt_and_a_second_one_is_ignored() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set in the main thread only")
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # while stopping: ignored
            time.sleep(0.1)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_the_parent_watch_ends_an_orphaned_worker() -> None:
    code = "from handouts.render_service import watch_parent\nimport time\nwatch_parent(-1, 0.05)\ntime.sleep(30)\n"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=20)
    assert done.returncode == 1 and time.monotonic() - started < 10


def stuck_holding_the_gil(job: RenderJob) -> RenderOutcome:
    """Say it started (in the file its key names), then run C code that never releases the GIL."""
    Path(job.key).write_text("started")
    re.match(r"(a+)+$", "a" * 64 + "b")  # backtracks for ages inside the regex engine: no Python thread runs
    return RenderOutcome(job.key, b"%PDF", None, None)


def slow_after_two(job: RenderJob) -> RenderOutcome:
    """Render the two overdose handouts at once, and take ten minutes over each of the others."""
    if "overdose" not in job.key:
        time.sleep(600)
    return fake_render(job)


def alive(pids: list[int]) -> list[int]:
    """Return the pids that still run (a zombie has ended)."""
    found = []
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(pid)
    return found


def children(pid: int) -> list[int]:
    """Return the pids of a process's children, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def workers_of(pid: int) -> list[int]:
    """Return the pids of a process's pool workers (not multiprocessing's resource tracker)."""
    found = []
    for child in children(pid):
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def wait_for(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.render
def test_workers_stuck_in_c_die_with_a_killed_parent(tmp_path: Path) -> None:
    markers = [tmp_path / f"started-{i}" for i in range(2)]
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{str(ROOT)!r}, {str(Path(__file__).parent)!r}]
        from test_hostile_batch import stuck_holding_the_gil
        from handouts.render_service import ProcessExecutor, RenderJob
        if __name__ == "__main__":
            pool = ProcessExecutor(2, {str(ROOT)!r}, "test", 600, render=stuck_holding_the_gil)
            keys = {[str(m) for m in markers]!r}
            futures = [pool.submit(RenderJob(key, {str(ROOT)!r}, "test", None)) for key in keys]
            time.sleep(600)
        """)
    )
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT)
    try:
        assert wait_for(lambda: all(m.exists() for m in markers), 60)
        workers = workers_of(parent.pid)
        assert len(workers) == 2
    finally:
        parent.kill()  # SIGKILL: the parent runs no cleanup at all
        parent.wait()
    assert wait_for(lambda: not alive(workers), 10), alive(workers)


@pytest.mark.render
def test_sigterm_stops_a_batch_cleanly_and_leaves_no_worker(jobs: Path, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = tmp_path / "batch.py"
    script.write_text(
        textwrap.dedent(f"""
        import contextlib, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(Path(__file__).parent)!r}]
        from test_hostile_batch import slow_after_two
        from handouts import batch as lib
        from handouts.render_service import ProcessExecutor

        @contextlib.contextmanager
        def slow_pool(where, *, project, assets, workers, time_limit):
            pool = ProcessExecutor(workers, str(project.root), assets, time_limit, render=slow_after_two)
            try:
                yield pool
            finally:
                pool.close()

        if __name__ == "__main__":
            lib.open_executor = slow_pool
            from handouts.cli import cli
            cli(["--root", {str(project)!r}, "--today", {TODAY.isoformat()!r}, "batch", {str(jobs)!r},
                 "--out", {str(out)!r}, "-j", "2"])
        """)
    )
    process = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: set[int] = set()
    try:
        done = lambda: (out / KEYS[1]).exists() and (out / KEYS[2]).exists()  # noqa: E731
        assert wait_for(lambda: workers.update(workers_of(process.pid)) or done(), 60)
        time.sleep(0.5)  # the other two are rendering, slowly
        workers.update(workers_of(process.pid))
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert "Stopped by SIGTERM. Finished outputs are saved" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert wait_for(lambda: not alive(sorted(workers)), 10), alive(sorted(workers))
    assert not (out / JOURNAL_NAME).exists()
    assert len(workers) == 2
    assert sorted(entries(out)) == [KEYS[1], KEYS[2]]
    assert_manifest_true(out)
    assert list(out.rglob("*.tmp")) == []
    assert (out / LOCK_NAME).read_bytes() == b""
