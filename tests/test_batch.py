"""Batch builds through the CLI: expansion, manifest, incremental runs, failures, resume, Dask."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pypdf
import pytest
from click.testing import CliRunner
from conftest import PROJECT_DIRS, ROOT, TODAY, Invoke, replace_in

from handouts import cli as cli_module
from handouts.batch import load_manifest
from handouts.batch.lock import LOCK_NAME
from handouts.cli import cli
from handouts.inputs.jobs import parse_jobs
from handouts.layouts import PATIENT_LAYOUTS
from handouts.models import SECTION_ORDER
from handouts.render_service import ProcessExecutor, RenderJob, RenderOutcome

JOBS = """
output = "{out}"

[[handout]]
name = "overdose"
sections = ["overdose-safety"]
brands = "*"
layouts = ["letter", "a4"]

[[handout]]
name = "medicines"
sections = ["mat"]
brands = ["example-clinic"]
languages = ["en"]
layouts = ["letter"]
"""
EXPECTED = [
    "example-clinic/en/medicines-letter.pdf",
    "example-clinic/en/overdose-a4.pdf",
    "example-clinic/en/overdose-letter.pdf",
    # One review record per brand and language, beside the manifest, for document control.
    "review-record-example-clinic-en.pdf",
    "review-record-second-clinic-en.pdf",
    "second-clinic/en/overdose-a4.pdf",
    "second-clinic/en/overdose-letter.pdf",
]


def make_batch_project(project: Path, out: Path) -> tuple[Path, Path, Path]:
    """Add a second brand and write a job file; return (project, job file, output folder)."""
    shutil.copytree(project / "brands/example-clinic", project / "brands/second-clinic")
    replace_in(
        project / "brands/second-clinic/brand.toml",
        'name = "Maple Street Example Clinic"',
        'name = "Second Example Clinic"',
    )
    jobs = project / "jobs.toml"
    jobs.write_text(JOBS.format(out=out))
    return project, jobs, out


@pytest.fixture
def batch_project(project: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A project with two brands and a job file, not built yet."""
    return make_batch_project(project, tmp_path / "out")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, str]:
    """A batch project and its first full run, built once for the module: (project, jobs, out, output)."""
    root = tmp_path_factory.mktemp("built")
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, root / "project" / name)
    project, jobs, out = make_batch_project(root / "project", root / "out")
    args = ["--root", str(project), "--today", TODAY.isoformat(), "batch", str(jobs), "-j", "2"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return project, jobs, out, result.output


@pytest.fixture
def rebuilt(built: tuple[Path, Path, Path, str], project: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A private copy of the built project and its outputs, where the `run` fixture runs, to change and run again."""
    shutil.rmtree(project)
    shutil.copytree(built[0], project)
    out = tmp_path / "out"
    shutil.copytree(built[2], out)
    jobs = project / "jobs.toml"
    jobs.write_text(JOBS.format(out=out))
    return project, jobs, out


def manifest(out: Path) -> dict[str, dict[str, object]]:
    return json.loads((out / "manifest.json").read_text())["outputs"]  # type: ignore[no-any-return]


def pdfs(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pdf"))


def assert_manifest_matches_disk(out: Path) -> None:
    # What the next run reads: manifest.json with any journal a killed run left.
    for key, entry in load_manifest(out).entries.items():
        assert entry.sha256 == hashlib.sha256((out / key).read_bytes()).hexdigest(), key


@pytest.mark.render
def test_expansion_and_manifest(built: tuple[Path, Path, Path, str]) -> None:
    _, _, out, output = built
    assert output.splitlines()[-1].startswith("Built 7, unchanged 0, failed 0, in ")
    assert pdfs(out) == EXPECTED
    entries = manifest(out)
    assert sorted(entries) == EXPECTED
    entry = entries["second-clinic/en/overdose-a4.pdf"]
    pdf = out / "second-clinic/en/overdose-a4.pdf"
    meta = pypdf.PdfReader(pdf).metadata
    assert entry["path"] == "second-clinic/en/overdose-a4.pdf"
    assert entry["sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert entry["handout_version"] == meta["/handoutversion"]
    assert entry["sections"] == {"overdose-safety": "3.0.0", "find-help": "2.1.0"}
    assert (entry["brand"], entry["language"], entry["layout"]) == ("second-clinic", "en", "a4")
    assert len(str(entry["fingerprint"])) == 64
    assert meta["/Author"] == "Second Example Clinic"
    assert round(float(pypdf.PdfReader(pdf).pages[0].mediabox.width)) == 595
    record = entries["review-record-second-clinic-en.pdf"]
    assert (record["layout"], record["sections"]) == ("record", {"overdose-safety": "3.0.0", "find-help": "2.1.0"})
    record_text = " ".join(page.extract_text() for page in pypdf.PdfReader(out / record["path"]).pages)  # type: ignore[operator]
    assert "Review record" in record_text and "Second Example Clinic" in record_text


@pytest.mark.render
def test_noop_run_renders_nothing_and_never_imports_weasyprint(run: Invoke, rebuilt: tuple[Path, Path, Path]) -> None:
    project, jobs, out = rebuilt
    # A copied folder has new inodes: the first run re-hashes every output once and remembers them.
    assert "Built 0, unchanged 7, failed 0" in run("batch", str(jobs)).output
    code = (
        "import sys\n"
        "from handouts.cli import cli\n"
        f"args = ['--root', {str(project)!r}, '--today', {TODAY.isoformat()!r}, 'batch', {str(jobs)!r}, '-j', '2']\n"
        "try:\n"
        "    cli(args)\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('imported:', sorted(m for m in ('weasyprint', 'jinja2', 'markdown_it') if m in sys.modules))\n"
    )
    # Only the folder's lock file is written: it names the run holding it while the run lasts.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != LOCK_NAME}
    second = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "Built 0, unchanged 7, failed 0" in second.stdout
    assert "imported: []" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != LOCK_NAME} == before
    assert (out / LOCK_NAME).read_bytes() == b""


@pytest.mark.render
def test_only_handouts_with_a_changed_section_are_rebuilt_with_reasons(
    run: Invoke, rebuilt: tuple[Path, Path, Path]
) -> None:
    project, jobs, out = rebuilt
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.1.0")
    result = run("batch", str(jobs), "-j", "2")
    assert result.exit_code == 0, result.output
    assert sorted(result.output.splitlines()[:-1]) == [
        f"built {out}/example-clinic/en/medicines-letter.pdf (mat 3.0.0 -> 3.1.0)",
        f"built {out}/review-record-example-clinic-en.pdf (mat 3.0.0 -> 3.1.0)",
    ]
    assert result.output.splitlines()[-1].startswith("Built 2, unchanged 5, failed 0, in ")
    assert_manifest_matches_disk(out)


def test_dry_run_prints_the_plan_and_writes_nothing(run: Invoke, batch_project: tuple[Path, Path, Path]) -> None:
    _, jobs, out = batch_project
    result = run("batch", str(jobs), "--dry-run")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert sorted(lines[:-1]) == sorted(f"build      {out}/{key}  (new)" for key in EXPECTED)
    assert lines[-1] == "Plan: 7 to build, 0 unchanged, 0 failing, 0 stale. Nothing written (--dry-run)."
    assert not out.exists()


@pytest.mark.render
def test_stale_outputs_are_listed_and_pruned(run: Invoke, rebuilt: tuple[Path, Path, Path]) -> None:
    _, jobs, out = rebuilt
    jobs.write_text(jobs.read_text().replace('layouts = ["letter", "a4"]', 'layouts = ["letter"]'))
    listed = run("batch", str(jobs))
    assert listed.exit_code == 0
    assert "stale 2 (--prune deletes them)" in listed.output
    assert f"stale: {out}/example-clinic/en/overdose-a4.pdf" in listed.output
    assert (out / "example-clinic/en/overdose-a4.pdf").exists()
    pruned = run("batch", str(jobs), "--prune")
    assert pruned.exit_code == 0
    assert f"pruned {out}/second-clinic/en/overdose-a4.pdf" in pruned.output
    assert pdfs(out) == [k for k in EXPECTED if not k.endswith("a4.pdf")]
    assert sorted(manifest(out)) == pdfs(out)


@pytest.mark.render
def test_failing_jobs_do_not_stop_the_others(run: Invoke, rebuilt: tuple[Path, Path, Path]) -> None:
    project, jobs, out = rebuilt
    longer = "Lock up doses you take home. Keep them out of sight. " * 40
    replace_in(project / "content/en/mat.md", "  - Pregnant? Keep taking", f"  - {longer}\n  - Pregnant? Keep taking")
    jobs.write_text(
        jobs.read_text()
        + '\n[[handout]]\nname = "for-release"\nsections = ["detox"]\nbrands = ["example-clinic"]\nrelease = true\n'
        + '\n[[handout]]\nname = "too-long"\nsections = "*"\nbrands = ["example-clinic"]\nlayouts = ["trifold"]\n'
    )
    result = run("batch", str(jobs), "-j", "2")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    summary = next(line for line in lines if line.startswith("Built "))
    assert summary.startswith("Built 2, unchanged 5, failed 2, in ")
    # Release rules use the real date too: once the shipped review dates pass, overdue reasons join these.
    release = next(line for line in lines if line.startswith(f"failed: {out}/example-clinic/en/for-release-letter.pdf"))
    assert release.startswith(f"failed: {out}/example-clinic/en/for-release-letter.pdf: release refused: ")
    assert "; content/en/detox.md: status: draft; a release needs approved content" in release
    assert "; content/en/find-help.md: status: draft; a release needs approved content" in release
    too_long = next(line for line in lines if line.startswith(f"failed: {out}/example-clinic/en/too-long-trifold.pdf"))
    assert "the inside panels (your sections): " in too_long and " in too long" in too_long
    assert pdfs(out) == EXPECTED
    assert_manifest_matches_disk(out)


@pytest.mark.render
def test_html_is_standalone_enough_for_the_weasyprint_command(
    run: Invoke, rebuilt: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, jobs, out = rebuilt
    # Only the medicines handout (and its review record) are rebuilt with their HTML.
    jobs.write_text(JOBS.format(out=out).split('[[handout]]\nname = "overdose"')[0] + JOBS.split("\n\n")[-1])
    assert run("batch", str(jobs), "--html", "-j", "2").exit_code == 0
    html = out / "example-clinic/en/medicines-letter.html"
    assert manifest(out)["example-clinic/en/medicines-letter.pdf"]["html"] == "example-clinic/en/medicines-letter.html"
    target = tmp_path / "from-html.pdf"
    subprocess.run([sys.executable, "-m", "weasyprint", str(html), str(target)], check=True, capture_output=True)
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(target).pages)
    assert "Medicines for opioid use disorder" in text and "Maple Street Example Clinic" in text
    assert len(pypdf.PdfReader(target).pages) == len(
        pypdf.PdfReader(out / "example-clinic/en/medicines-letter.pdf").pages
    )


def test_bad_job_file_names_file_and_field(run: Invoke, batch_project: tuple[Path, Path, Path]) -> None:
    _, jobs, _ = batch_project
    jobs.write_text(jobs.read_text().replace('layouts = ["letter"]', 'layouts = ["tabloid"]'))
    result = run("batch", str(jobs))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: invalid job file: 1 problem(s)",
        f"{jobs}: handout[1].layouts: unknown 'tabloid'; choose from letter, a4, large-print, trifold",
    ]


def stuck_in_c(job: RenderJob) -> RenderOutcome:
    """Block inside a C call, where no Python signal handler can run, unless the job says not to."""
    import ctypes

    if job.key == "stuck":
        ctypes.CDLL(None).sleep(30)
    return RenderOutcome(job.key, b"%PDF", None, None, pid=os.getpid())


@pytest.mark.render
def test_a_job_stuck_in_c_code_is_stopped_and_its_worker_replaced() -> None:
    executor = ProcessExecutor(1, str(ROOT), "test", time_limit=1.0, render=stuck_in_c)
    try:
        stuck = executor.submit(RenderJob("stuck", str(ROOT), "test", None))  # type: ignore[arg-type]
        with pytest.raises(TimeoutError):
            stuck.result(timeout=60)
        after = executor.submit(RenderJob("fine", str(ROOT), "test", None)).result(timeout=60)  # type: ignore[arg-type]
    finally:
        executor.close()
    assert after.error is None and after.pdf == b"%PDF"


def test_job_file_that_is_not_utf8_is_one_clean_error(run: Invoke, batch_project: tuple[Path, Path, Path]) -> None:
    _, jobs, out = batch_project
    jobs.write_bytes(b"\xff\xfe" + jobs.read_text().encode("utf-16-le"))
    result = run("batch", str(jobs))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: invalid job file: 1 problem(s)",
        f"{jobs}: not UTF-8 text (invalid start byte at byte 0)",
    ]
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("field", ["sections", "brands", "languages", "layouts"])
@pytest.mark.parametrize("star", ['"*"', '["*"]'])
def test_star_bare_or_in_a_list_means_every_name(field: str, star: str) -> None:
    text = f'[[handout]]\nname = "all"\n{field} = {star}\n'
    jobs, problems = parse_jobs("jobs.toml", text, brands=["a-clinic", "b-clinic"], languages=["en", "es"])
    assert problems == []
    assert jobs is not None
    (spec,) = jobs.handouts
    every = {
        "sections": SECTION_ORDER,
        "brands": ("a-clinic", "b-clinic"),
        "languages": ("en", "es"),
        "layouts": tuple(PATIENT_LAYOUTS),
    }
    assert getattr(spec, field) == every[field]


@pytest.mark.render
def test_killed_run_leaves_no_partial_pdf_and_the_next_run_finishes(batch_project: tuple[Path, Path, Path]) -> None:
    project, jobs, out = batch_project
    command = [sys.executable, str(ROOT / "generate.py"), "--root", str(project), "--today", TODAY.isoformat()]
    process = subprocess.Popen(
        [*command, "batch", str(jobs), "-j", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(pdfs(out)) < 2 and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # A run killed by SIGKILL cannot remove the temporary file it was writing; the next run never
    # deletes files it did not create itself, so such a file stays, but it adds none of its own.
    killed_temp = set(out.rglob("*.tmp"))
    written = pdfs(out)
    assert 2 <= len(written) < 7, written
    for key in written:
        assert len(pypdf.PdfReader(out / key).pages) >= 1  # complete PDFs only
    assert_manifest_matches_disk(out)
    rerun = subprocess.run([*command, "batch", str(jobs), "-j", "2"], capture_output=True, text=True, check=True)
    assert "failed 0" in rerun.stdout
    assert pdfs(out) == EXPECTED
    assert sorted(manifest(out)) == pdfs(out)
    assert_manifest_matches_disk(out)
    assert set(out.rglob("*.tmp")) <= killed_temp


@pytest.mark.render
def test_dask_cluster_gives_the_same_outputs_and_manifest(
    run: Invoke, rebuilt: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    _, jobs, out = rebuilt
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        result = run("batch", str(jobs), "--out", str(tmp_path / "dask"), "--executor", f"dask://{address}")
    assert result.exit_code == 0, result.output
    assert pdfs(tmp_path / "dask") == EXPECTED
    for key in EXPECTED:
        assert (tmp_path / "dask" / key).read_bytes() == (out / key).read_bytes(), key
    assert (tmp_path / "dask/manifest.json").read_bytes() == (out / "manifest.json").read_bytes()


@pytest.mark.render
def test_recycling_pool_replaces_its_workers() -> None:
    executor = ProcessExecutor(1, str(ROOT), "test", time_limit=60, recycle_after=2, render=stuck_in_c)
    try:
        jobs = [RenderJob(str(i), str(ROOT), "test", None) for i in range(6)]  # type: ignore[arg-type]
        pids = [executor.submit(job).result(timeout=60).pid for job in jobs]
    finally:
        executor.close()
    # The worker takes 2 jobs, then a fresh one takes its place: 3 processes for 6 jobs.
    assert len(set(pids)) == 3


@pytest.mark.render
def test_a_single_build_and_a_batch_render_give_identical_bytes(
    built: tuple[Path, Path, Path, str], tmp_path: Path
) -> None:
    project, _, out, _ = built
    single = tmp_path / "single.pdf"
    args = ["--root", str(project), "--today", TODAY.isoformat(), "build", "--brand", "second-clinic"]
    result = CliRunner().invoke(cli, [*args, "--sections", "overdose-safety", "--layout", "a4", "-o", str(single)])
    assert result.exit_code == 0, result.output
    assert single.read_bytes() == (out / "second-clinic/en/overdose-a4.pdf").read_bytes()


@pytest.mark.render
def test_workers_that_cannot_load_the_fonts_fail_each_output_cleanly(
    run: Invoke, batch_project: tuple[Path, Path, Path]
) -> None:
    project, jobs, _ = batch_project
    # A font named by the project's stylesheet that neither it nor the tool has.
    css = project / "styles/base.css"
    css.write_text(css.read_text().replace("AtkinsonHyperlegible-Italic.ttf", "Atkinson-Missing.ttf"))
    result = run("batch", str(jobs), "-j", "1")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed: ")]
    assert len(failed) == len(EXPECTED) and all("cannot load stylesheets" in line for line in failed), failed


@pytest.mark.render
def test_two_copies_of_a_project_render_each_from_its_own_folder(tmp_path: Path) -> None:
    from handouts.build import BuildRequest, build
    from handouts.compose import HandoutSpec
    from handouts.project import Project

    spec = HandoutSpec(("detox",), "example-clinic", "en", "letter")
    for name in ("first", "second"):
        root = tmp_path / name
        for folder in PROJECT_DIRS:
            shutil.copytree(ROOT / folder, root / folder)
        # The same bytes in both copies: one assets digest, two folders of files.
        shutil.copy(ROOT / "docs/handout-page1.png", root / "styles/dot.png")
        with (root / "styles/base.css").open("a") as css:
            css.write('\n.edge-band { background-image: url("dot.png"); }\n')
        result = build(Project(root), BuildRequest(spec, tmp_path / f"{name}.pdf"), TODAY)
        assert result.pages >= 1
        shutil.rmtree(root / "styles")  # a later render must never reach into this folder


SMALL_JOBS = """
output = "{out}"

[[handout]]
name = "overdose"
sections = ["overdose-safety"]
layouts = ["letter", "a4"]

[[handout]]
name = "medicines"
sections = ["mat"]
"""


@pytest.fixture
def small_jobs(project: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A job file of three English handouts (and their review record) in the project: (job file, output folder)."""
    jobs, out = project / "jobs.toml", tmp_path / "out"
    jobs.write_text(SMALL_JOBS.format(out=out))
    return jobs, out


@pytest.mark.usefixtures("fake_pool")
def test_verbose_batch_on_a_terminal_lists_each_rebuild_and_why_before_the_bar(
    run: Invoke, project: Path, small_jobs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs, out = small_jobs
    assert run("batch", str(jobs)).exit_code == 0
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.1.0")
    monkeypatch.setattr(cli_module, "_on_terminal", lambda: True)
    quiet = run("batch", str(jobs), "--dry-run")  # the plan, to compare with: nothing is written
    verbose = run("-v", "batch", str(jobs))
    assert verbose.exit_code == 0
    lines = verbose.stdout.splitlines()
    assert lines[:-1] == [
        f"build      {out}/example-clinic/en/medicines-letter.pdf  (mat 3.0.0 -> 3.1.0)",
        f"build      {out}/review-record-example-clinic-en.pdf  (mat 3.0.0 -> 3.1.0)",
    ]
    assert lines[:-1] == [line for line in quiet.stdout.splitlines() if line.startswith("build")]
    assert lines[-1].startswith("Built 2, unchanged 2, failed 0, in ")
    # Without -v the bar alone; --force says so as its reason.
    plain = run("batch", str(jobs), "--force")
    assert plain.stdout.splitlines()[0].startswith("Built 4, unchanged 0, failed 0, in ")
    forced = run("-v", "batch", str(jobs), "--force")
    assert forced.stdout.splitlines()[0] == f"build      {out}/example-clinic/en/overdose-letter.pdf  (forced)"


@pytest.mark.usefixtures("fake_pool")
def test_batch_off_a_terminal_gives_each_output_its_reason_with_or_without_verbose(
    run: Invoke, project: Path, small_jobs: tuple[Path, Path]
) -> None:
    jobs, out = small_jobs
    assert run("batch", str(jobs)).exit_code == 0
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.1.0")
    result = run("-v", "batch", str(jobs))
    assert result.exit_code == 0
    assert sorted(result.stdout.splitlines()[:-1]) == [
        f"built {out}/example-clinic/en/medicines-letter.pdf (mat 3.0.0 -> 3.1.0)",
        f"built {out}/review-record-example-clinic-en.pdf (mat 3.0.0 -> 3.1.0)",
    ]


@pytest.mark.usefixtures("fake_pool")
def test_batch_warns_once_per_stale_translation_that_non_release_handouts_print(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    jobs = project / "jobs.toml"
    # Spanish overdose handouts print find-help; only a release handout prints mat.
    text = SMALL_JOBS.format(out=out).replace(
        'layouts = ["letter", "a4"]', 'layouts = ["letter", "a4"]\nlanguages = ["es"]'
    )
    jobs.write_text(text.replace('sections = ["mat"]', 'sections = ["mat"]\nlanguages = ["es"]\nrelease = true'))
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.1.0")
    replace_in(project / "content/en/find-help.md", "version: 2.1.0", "version: 2.1.1")
    warning = (
        "warning: content/es/find-help.md: translates find-help 2.1.0, English is now 2.1.1; "
        "the Spanish handouts print the older text"
    )
    for options in (("--dry-run",), ()):
        result = run("batch", str(jobs), *options)
        # Two Spanish handouts print it: one warning. The release handout refuses its stale mat instead.
        assert result.stderr.splitlines() == [
            "warning: --today is for tests; release rules use the later of it and today's real date",
            warning,
        ]
        assert "content/es/mat.md: translates mat 3.0.0, English is now 3.1.0" in result.stdout
    assert result.exit_code == 1
    failed = next(line for line in result.stdout.splitlines() if line.startswith("failed: "))
    assert failed.startswith(f"failed: {out}/example-clinic/es/medicines-letter.pdf: release refused: ")
    assert "; content/es/mat.md: translates mat 3.0.0, English is now 3.1.0;" in failed
    # Translated again: no warning.
    replace_in(project / "content/es/find-help.md", "translation_of: 2.1.0", "translation_of: 2.1.1")
    assert run("batch", str(jobs)).stderr.splitlines() == [
        "warning: --today is for tests; release rules use the later of it and today's real date"
    ]


@pytest.mark.usefixtures("fake_pool")
def test_pruned_outputs_are_not_counted_stale(run: Invoke, small_jobs: tuple[Path, Path]) -> None:
    jobs, out = small_jobs
    assert run("batch", str(jobs)).exit_code == 0
    jobs.write_text(jobs.read_text().replace('layouts = ["letter", "a4"]', 'layouts = ["letter"]'))
    listed = run("batch", str(jobs)).stdout.splitlines()
    assert listed[0].startswith("Built 0, unchanged 3, failed 0, stale 1 (--prune deletes them), in ")
    assert listed[1:] == [f"stale: {out}/example-clinic/en/overdose-a4.pdf"]
    pruned = run("batch", str(jobs), "--prune").stdout.splitlines()
    assert pruned[0] == f"pruned {out}/example-clinic/en/overdose-a4.pdf"
    assert pruned[1].startswith("Built 0, unchanged 3, failed 0, 1 file(s) pruned, in ")
    assert pruned[2:] == []
    assert run("batch", str(jobs)).stdout.startswith("Built 0, unchanged 3, failed 0, in ")
