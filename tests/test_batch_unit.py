"""Batch planning, running, manifest and reports with a fake renderer on threads: no WeasyPrint, fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TODAY, replace_in

from handouts import batch as lib
from handouts.batch import manifest as manifest_lib
from handouts.batch.manifest import JOURNAL_NAME, MANIFEST_NAME, Journal, ManifestEntry, load_manifest
from handouts.errors import Problem
from handouts.inputs.jobs import Output, expand, parse_jobs
from handouts.output.pdf import ldconfig_finder
from handouts.project import Kit, Project
from handouts.render_service import RenderJob, RenderOutcome, ThreadExecutor, check_workers

IDENTITY = {"code": "c0de", "renderer": {"weasyprint": "70.0", "pydyf": "0.13.0", "pango": "1.50.12"}}
JOBS = """
[[handout]]
name = "overdose"
sections = ["overdose-safety"]
layouts = ["letter", "a4"]

[[handout]]
name = "medicines"
sections = ["mat"]
layouts = ["letter"]
"""
BRANDS = ["example-clinic"]


def fake_render(job: RenderJob) -> RenderOutcome:
    """Stand in for WeasyPrint: a small 'PDF' that names what it holds, or a failure when asked."""
    if "medicines" in job.key and job.handout.language == "es":
        return RenderOutcome(job.key, None, None, "cannot render: broken on purpose")
    body = f"%PDF-fake {job.key} {job.handout.version}".encode()
    return RenderOutcome(job.key, body, "<html></html>" if job.html else None, None, pages=1)


def outputs(text: str = JOBS) -> list[Output]:
    job_file, problems = parse_jobs("jobs.toml", text, brands=BRANDS, languages=["en", "es"])
    assert job_file is not None, problems
    return expand(job_file)


def plan_and_run(project: Path, out: Path, text: str = JOBS, **options: bool) -> tuple[lib.Plan, lib.Summary]:
    plan = lib.plan(Project(project), outputs(text), out, today=TODAY, identity=IDENTITY, **options)
    summary = lib.run(Project(project), plan, out, ThreadExecutor(2, render=fake_render), window=3)
    return plan, summary


def test_first_run_builds_everything_and_the_second_nothing(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan, summary = plan_and_run(project, out)
    assert [(i.output.key, i.action, i.reasons) for i in plan.items] == [
        ("example-clinic/en/overdose-letter.pdf", "build", ("new",)),
        ("example-clinic/en/overdose-a4.pdf", "build", ("new",)),
        ("example-clinic/en/medicines-letter.pdf", "build", ("new",)),
        ("review-record-example-clinic-en.pdf", "build", ("new",)),
    ]
    assert sorted(summary.built) == sorted(i.output.key for i in plan.items)
    entries = json.loads((out / MANIFEST_NAME).read_text())["outputs"]
    assert entries["example-clinic/en/overdose-a4.pdf"]["layout"] == "a4"
    assert entries["example-clinic/en/overdose-a4.pdf"]["inputs"]["code"] == "c0de"
    assert (out / "example-clinic/en/overdose-a4.pdf").read_bytes().startswith(b"%PDF-fake example-clinic/en/")
    assert not (out / JOURNAL_NAME).exists()
    again, summary = plan_and_run(project, out)
    assert {i.action for i in again.items} == {"unchanged"} and summary.built == []


def test_a_changed_section_rebuilds_only_its_outputs_and_says_why(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan_and_run(project, out)
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.1.0")
    plan, _ = plan_and_run(project, out)
    assert {i.output.key: i.reasons for i in plan.items if i.action == "build"} == {
        "example-clinic/en/medicines-letter.pdf": ("mat 3.0.0 -> 3.1.0",),
        "review-record-example-clinic-en.pdf": ("mat 3.0.0 -> 3.1.0",),
    }


def test_other_code_or_renderer_rebuilds_everything(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan_and_run(project, out)
    other = {"code": "other", "renderer": {**IDENTITY["renderer"], "pango": "1.52.0"}}  # type: ignore[dict-item]
    plan = lib.plan(Project(project), outputs(), out, today=TODAY, identity=other)
    assert {i.reasons for i in plan.items} == {("tool code changed", "pango 1.50.12 -> 1.52.0")}


def test_failures_are_reported_and_others_still_build(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    text = JOBS.replace('sections = ["mat"]', 'sections = ["mat"]\nlanguages = ["en", "es"]')
    _, summary = plan_and_run(project, out, text)
    assert summary.failed == [("example-clinic/es/medicines-letter.pdf", "cannot render: broken on purpose")]
    assert "example-clinic/es/medicines-letter.pdf" not in load_manifest(out).entries
    assert len(summary.built) == 5  # 3 English handouts and a review record per language


def test_noop_run_hashes_no_output_whose_size_and_mtime_match(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    plan_and_run(project, out)
    hashed: list[Path] = []
    real = manifest_lib.sha256_file

    def counting(path: Path) -> str | None:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(manifest_lib, "sha256_file", counting)
    plan_and_run(project, out)
    assert hashed == []
    # A file changed behind the tool's back is hashed again, and rebuilt.
    target = out / "example-clinic/en/overdose-a4.pdf"
    target.write_bytes(b"%PDF-tampered")
    plan, _ = plan_and_run(project, out)
    assert hashed == [target]
    assert [(i.output.key, i.reasons) for i in plan.items if i.action == "build"] == [
        ("example-clinic/en/overdose-a4.pdf", ("output changed on disk",))
    ]


def entry(path: str) -> ManifestEntry:
    return ManifestEntry(path, "ab" * 32, "0" * 12, {"mat": "2.0.0"}, "b", "en", "letter", "cd" * 32, {}, None, "0.1.0")


def test_journal_left_by_a_killed_run_is_replayed_and_a_cut_line_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path, {"old.pdf": entry("old.pdf"), "gone.pdf": entry("gone.pdf")})
    journal.drop(["gone.pdf"])
    journal.put(entry("new.pdf"))  # written line by line, unbuffered
    with open(tmp_path / JOURNAL_NAME, "a", encoding="utf-8") as handle:
        handle.write('{"put": {"path": "half')  # the run was killed mid-line
    manifest_lib.save_manifest(tmp_path, {"old.pdf": entry("old.pdf"), "gone.pdf": entry("gone.pdf")})
    assert sorted(load_manifest(tmp_path).entries) == ["new.pdf", "old.pdf"]
    journal.fold()
    assert not (tmp_path / JOURNAL_NAME).exists()
    assert sorted(json.loads((tmp_path / MANIFEST_NAME).read_text())["outputs"]) == ["new.pdf", "old.pdf"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": 5}, "sha256: expected str"),
        ({"html": 1}, "html: expected text or null"),
        ({"inputs": []}, "inputs: expected dict"),
    ],
)
def test_manifest_entry_of_the_wrong_shape_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        ManifestEntry.from_dict({**entry("x.pdf").to_dict(), **change})
    assert str(caught.value) == message


def test_unreadable_manifest_is_a_warning_and_everything_is_rebuilt(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).write_text('{"format": 1, "outputs": {"a.pdf": {"path": 3}}}')
    plan = lib.plan(Project(project), outputs(), out, today=TODAY, identity=IDENTITY)
    assert plan.warnings == (
        f"{out / MANIFEST_NAME}: not a manifest this tool wrote (outputs['a.pdf']: path: expected str); "
        "kept aside as manifest.json.unreadable-1, every output rebuilt",
    )
    assert plan.count("build") == 4


def test_dry_run_and_summary_lines(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = lib.plan(Project(project), outputs(), out, today=TODAY, identity=IDENTITY)
    assert lib.dry_run_lines(plan, Path("o")) == [
        "build      o/example-clinic/en/overdose-letter.pdf  (new)",
        "build      o/example-clinic/en/overdose-a4.pdf  (new)",
        "build      o/example-clinic/en/medicines-letter.pdf  (new)",
        "build      o/review-record-example-clinic-en.pdf  (new)",
        "Plan: 4 to build, 0 unchanged, 0 failing, 0 stale. Nothing written (--dry-run).",
    ]
    summary = lib.Summary(built=["a.pdf"], unchanged=2, failed=[("b.pdf", "why")], stale=["c.pdf"], seconds=1.25)
    assert lib.summary_lines(summary, Path("o")) == [
        "Built 1, unchanged 2, failed 1, stale 1 (--prune deletes them), in 1.2 s.",
        "stale: o/c.pdf",
        "failed: o/b.pdf: why",
    ]
    # After --prune nothing it handled is stale: it was deleted, or is named as kept.
    pruned = lib.Summary(unchanged=2, pruned=["c.pdf"], kept=[("d.pdf", "changed since it was built")], seconds=1)
    assert lib.summary_lines(pruned, Path("o")) == [
        "Built 0, unchanged 2, failed 0, 1 file(s) pruned, in 1.0 s.",
        "kept: o/d.pdf: changed since it was built",
    ]


def test_progress_bar_is_silent_off_a_terminal_and_events_become_lines() -> None:
    lines: list[tuple[str, bool]] = []
    with lib.progressbar(3, show=False) as bar:
        report = lib.event_reporter(Path("o"), bar, lambda text, err: lines.append((text, err)), with_bar=False)
        report("built", "a.pdf", "new")
        report("failed", "b.pdf", "why")
    assert lines == [("built o/a.pdf (new)", False), ("failed o/b.pdf (why)", False)]


UNKNOWN_FIELD = "unknown field; expected one of name, sections, kit, brands, languages, layouts, release, appendix"
JOB_FILE_ERRORS = [
    ("output = 3\n" + JOBS, "output", "expected a folder path, got 3"),
    ("[[handout]]\nname = 'a b'\n", "handout[0].name", "expected a file stem of letters, digits, - and _, got 'a b'"),
    ("[[handout]]\nname = 'a'\nrelease = 'yes'\n", "handout[0].release", "expected true or false, got 'yes'"),
    ("[[handout]]\nname = 'a'\ncolour = 1\n", "handout[0].colour", UNKNOWN_FIELD),
    ("[[handout]]\nname = 'a'\nbrands = ['nope']\n", "handout[0].brands", "unknown 'nope'; choose from example-clinic"),
    ("x = [", "", "invalid TOML: Invalid value (at end of document)"),
    ("", "handout", "expected at least one [[handout]] table"),
]


KITS = (Kit("Starting buprenorphine", ("mat", "overdose-safety")), Kit("After an overdose", ("overdose-safety",)))
KIT_ERRORS = [
    (
        "kit = 'Starting buprenorfine'",
        "handout[0].kit",
        "unknown kit 'Starting buprenorfine' (did you mean 'Starting buprenorphine'?); "
        'kits: "Starting buprenorphine", "After an overdose"',
    ),
    ("kit = ['mat']", "handout[0].kit", "expected the name of a kit in handouts.toml, got ['mat']"),
    (
        "kit = 'After an overdose'\nsections = ['mat']",
        "handout[0].kit",
        "a kit names the sections; give kit or sections, not both",
    ),
    (
        "languages = ['fr']",
        "handout[0].languages",
        "no content in language 'fr'; languages with content: en, es",
    ),
    (
        "languages = ['ess']",
        "handout[0].languages",
        "no content in language 'ess' (did you mean 'es'?); languages with content: en, es",
    ),
]


@pytest.mark.parametrize(("line", "field", "message"), KIT_ERRORS)
def test_a_bad_kit_or_language_in_a_job_is_named_by_file_field_and_reason(line: str, field: str, message: str) -> None:
    text = f"[[handout]]\nname = 'a'\n{line}\n"
    assert parse_jobs("jobs.toml", text, brands=BRANDS, languages=["en", "es"], kits=KITS) == (
        None,
        [Problem("jobs.toml", field, message)],
    )


def test_a_job_names_a_kit_in_any_case_and_languages_by_alias_and_builds_the_kits_sections() -> None:
    text = "[[handout]]\nname = 'a'\nkit = ' starting BUPRENORPHINE '\nlanguages = ['sp', 'en-US', 'ES']\n"
    job_file, problems = parse_jobs("jobs.toml", text, brands=BRANDS, languages=["en", "es"], kits=KITS)
    assert problems == [] and job_file is not None
    assert [(o.key, o.sections) for o in expand(job_file)] == [
        ("example-clinic/es/a-letter.pdf", ("mat", "overdose-safety")),
        ("example-clinic/en/a-letter.pdf", ("mat", "overdose-safety")),
    ]


@pytest.mark.parametrize(("text", "field", "message"), JOB_FILE_ERRORS)
def test_job_file_errors(text: str, field: str, message: str) -> None:
    assert parse_jobs("jobs.toml", text, brands=BRANDS, languages=["en"]) == (
        None,
        [Problem("jobs.toml", field, message)],
    )


def test_workers_with_other_code_or_renderer_are_named() -> None:
    theirs = {
        "tcp://a:1": IDENTITY,
        "tcp://b:2": {"code": "old", "renderer": {**IDENTITY["renderer"], "weasyprint": "69.0"}},  # type: ignore[dict-item]
    }
    assert check_workers(theirs, IDENTITY) == [
        "tcp://b:2: runs other handouts code than this client",
        "tcp://b:2: weasyprint 69.0, this client has 70.0",
    ]


def test_library_look_ups_answer_from_one_ldconfig_listing() -> None:
    listing = (
        "\tlibpango-1.0.so.0 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libpango-1.0.so.0\n"
        "\tlibpango-1.0.so.0 (libc6) => /usr/lib/i386-linux-gnu/libpango-1.0.so.0\n"
    )
    find = ldconfig_finder(listing, "x86_64-64")
    assert find("pango-1.0") == "libpango-1.0.so.0"
    assert find("libpango-1.0-0") is None
    assert ldconfig_finder(listing, "i686-32")("pango-1.0") == "libpango-1.0.so.0"


def test_markdown_is_checked_for_what_is_rebuilt(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    replace_in(project / "content/en/mat.md", "### ", "# ")
    plan, summary = plan_and_run(project, out)
    failed = {i.output.key: i.reasons for i in plan.items if i.action == "failed"}
    message = "content/en/mat.md: body: use ### for headings inside a section, found '#' (the title is ##)"
    assert failed == {
        "example-clinic/en/medicines-letter.pdf": (f"cannot build: 1 problem(s); {message}",),
        "review-record-example-clinic-en.pdf": (f"cannot build: 1 problem(s); {message}",),
    }
    assert sorted(summary.built) == ["example-clinic/en/overdose-a4.pdf", "example-clinic/en/overdose-letter.pdf"]


def test_a_template_change_rebuilds_every_output(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, _ = plan_and_run(project, out)
    replace_in(project / "templates/partials/section.html.j2", "</section>", "</section>\n")
    plan, summary = plan_and_run(project, out)
    assert {i.output.key: i.reasons for i in plan.items} == {i.output.key: ("template changed",) for i in first.items}
    assert len(summary.built) == len(first.items)


def test_a_torn_journal_line_does_not_swallow_the_next_change(tmp_path: Path) -> None:
    manifest_lib.save_manifest(tmp_path, {"a.pdf": entry("a.pdf"), "b.pdf": entry("b.pdf")})
    (tmp_path / JOURNAL_NAME).write_text('{"put": {"path": "half')  # a run killed mid-line, no newline
    journal = Journal(tmp_path, load_manifest(tmp_path).entries)
    journal.drop(["a.pdf"])  # and this run is killed too, before it folds
    assert sorted(load_manifest(tmp_path).entries) == ["b.pdf"]


def test_a_file_replaced_while_it_is_hashed_is_not_remembered(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    plan_and_run(project, out)
    (out / manifest_lib.STAT_NAME).unlink()
    target = out / "example-clinic/en/overdose-a4.pdf"
    real = manifest_lib.sha256_file

    def replaced_after_reading(path: Path) -> str | None:
        digest = real(path)
        if path == target:
            path.write_bytes(b"X" * path.stat().st_size)  # same size, new bytes, after the hash was taken
        return digest

    monkeypatch.setattr(manifest_lib, "sha256_file", replaced_after_reading)
    plan_and_run(project, out)
    monkeypatch.setattr(manifest_lib, "sha256_file", real)
    plan, _ = plan_and_run(project, out)
    assert [(i.output.key, i.reasons) for i in plan.items if i.action == "build"] == [
        ("example-clinic/en/overdose-a4.pdf", ("output changed on disk",))
    ]


def test_prune_forgets_an_output_before_deleting_it(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    plan_and_run(project, out)
    fewer = JOBS.replace('layouts = ["letter", "a4"]', 'layouts = ["letter"]')
    plan = lib.plan(Project(project), outputs(fewer), out, today=TODAY, identity=IDENTITY)
    assert plan.stale == ("example-clinic/en/overdose-a4.pdf",)

    def killed(self: Path, missing_ok: bool = False) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        lib.run(Project(project), plan, out, ThreadExecutor(1, render=fake_render), prune=True)
    monkeypatch.undo()
    assert "example-clinic/en/overdose-a4.pdf" not in load_manifest(out).entries
    assert (out / "example-clinic/en/overdose-a4.pdf").exists()


def test_a_stray_markdown_file_blocks_no_build(project: Path, tmp_path: Path) -> None:
    (project / "content/en/notes.md").write_text("---\nid: notes\n---\nJottings.\n")
    _, summary = plan_and_run(project, tmp_path / "out")
    assert summary.failed == [] and len(summary.built) == 4


def test_a_plan_loads_each_language_once(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from handouts.inputs import sections

    loaded: list[str] = []
    real = sections.load_sections

    def counting(project: Project, language: str, *args: object, **kwargs: object) -> sections.LoadedSections:
        loaded.append(language)
        return real(project, language, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sections, "load_sections", counting)
    lib.plan(Project(project), outputs(), tmp_path / "out", today=TODAY, identity=IDENTITY)
    assert sorted(loaded) == ["en"]
