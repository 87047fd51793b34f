"""A translation behind its English, and a brand's translated fields behind theirs, shown where reviewers look."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from conftest import Invoke, approve, days_ago, replace_in, spelled
from pdfcheck import text_of

from handouts.project import Project
from handouts.report import sections_report

# An edit of the approved English detox: a wording fix, so 3.0.0 becomes 3.0.1.
DETOX_EDIT = ("### What withdrawal feels like", "### What withdrawal can feel like")
BEHIND = "translation behind English 3.0.1: translates 3.0.0"
FIX_ES = 'handouts approve detox --lang es --reviewer "Name, Credentials"'
STALE_ES = "content/es/detox.md: translates detox 3.0.0, English is now 3.0.1"
# How a release refusal ends: the approve command for a section, or the brand to make and pass.
FIXES = re.compile(r'(run: handouts approve [a-z-]+( --lang [a-z]+)? --reviewer "Name, Credentials"|--brand <id>)$')


@pytest.fixture
def reviewed(run: Invoke) -> dt.date:
    """Approve detox and find-help in English and Spanish ten days ago (by the real calendar), and return the day."""
    day = days_ago(10)
    for language in ("en", "es"):
        for section in ("detox", "find-help"):
            result = run("approve", section, "--lang", language, "--reviewer", "Avery Example, MD", "--date",
                         day.isoformat(), today=None)  # fmt: skip
            assert result.exit_code == 0, result.output
    return day


@pytest.fixture
def edited(project: Path, reviewed: dt.date) -> dt.date:
    """Edit the approved English detox and bump its version, leaving the Spanish translating 3.0.0."""
    replace_in(project / "content/en/detox.md", *DETOX_EDIT)
    replace_in(project / "content/en/detox.md", "version: 3.0.0", "version: 3.0.1")
    return reviewed


def test_sections_due_lists_the_translation_behind_english_first(run: Invoke, project: Path, edited: dt.date) -> None:
    listed = run("sections", "--due", "--lang", "es", today=None)
    assert listed.exit_code == 0, listed.output
    rows = listed.output.splitlines()
    assert rows[0].split() == ["id", "title", "version", "status", "next", "review", "due", "why"]
    # First, before the drafts (mat, the others) and whatever falls due.
    assert rows[1].startswith("detox ") and rows[1].endswith(BEHIND)
    assert " approved " in rows[1]  # its own review state is unchanged
    assert sum(BEHIND in row for row in rows) == 1
    # Without the edit nothing of detox is due: the listing says why it is now.
    replace_in(project / "content/en/detox.md", "version: 3.0.1", "version: 3.0.0")
    before, _ = sections_report(Project(project), "es", dt.date.today(), due=True)
    assert "detox" not in before and "translation behind" not in before


def test_sections_says_behind_and_when_the_english_was_approved(run: Invoke, project: Path, edited: dt.date) -> None:
    listed = run("sections", "--lang", "es", today=None).output
    detox = next(row for row in listed.splitlines() if row.startswith("detox "))
    assert "translation behind English 3.0.1 (translates 3.0.0); approved " in detox
    # The English edit approved: its approval is the day the English changed, and the table says it.
    approve(run, "detox", date=days_ago(2).isoformat(), today=None)
    text, _ = sections_report(Project(project), "es", dt.date.today(), due=False)
    detox = next(row for row in text.splitlines() if row.startswith("detox "))
    assert f"translation behind English 3.0.1 (translates 3.0.0; English 3.0.1 approved {days_ago(2)})" in detox
    due, _ = sections_report(Project(project), "es", dt.date.today(), due=True)
    assert due.splitlines()[1].endswith(f"{BEHIND}; English 3.0.1 approved {days_ago(2)}")
    # English itself is never "behind".
    english, _ = sections_report(Project(project), "en", dt.date.today(), due=False)
    assert "behind" not in english


@pytest.mark.render
def test_a_build_after_the_edit_says_it_changed_since_approval(run: Invoke, edited: dt.date, tmp_path: Path) -> None:
    built = run("build", "--sections", "detox", "-o", str(tmp_path / "x.pdf"), today=None)
    assert built.exit_code == 0, built.output
    note = "warning: content/en/detox.md: changed since approval (3.0.0 approved; now 3.0.1); printed as a sample"
    assert note in built.output.splitlines()
    assert "changed since approval (3.0.0 approved; now 3.0.1)" in " ".join(text_of(tmp_path / "x.pdf").split())


def test_check_warns_in_the_same_words(run: Invoke, edited: dt.date) -> None:
    result = run("check", today=None)
    assert f"{STALE_ES} (warning)" in result.output.splitlines()


def test_release_refusal_of_a_stale_translation_ends_with_the_approve_command(
    run: Invoke, own_brand: str, edited: dt.date, tmp_path: Path
) -> None:
    out = tmp_path / "r.pdf"
    result = run("build", "--release", "--lang", "es", "--brand", own_brand, "--sections", "detox", "-o", str(out),
                 today=None)  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("Error: release refused: ")
    fix = f"update the translation, set translation_of: 3.0.1, then run: {FIX_ES}"  # noqa: S608 - words, not SQL
    assert f"{STALE_ES}; {fix}" in lines
    assert all(FIXES.search(line) for line in lines[1:]), lines
    assert not out.exists()


@pytest.mark.render
def test_a_new_version_of_approved_text_needs_its_own_approval_to_be_released(
    project: Path, run: Invoke, own_brand: str, reviewed: dt.date, tmp_path: Path
) -> None:
    # The Spanish text unchanged, only its version moved on: nobody approved 3.0.1.
    replace_in(project / "content/es/detox.md", "version: 3.0.0", "version: 3.0.1")
    out = tmp_path / "r.pdf"
    release = ("build", "--release", "--lang", "es", "--brand", own_brand, "--sections", "detox", "-o", str(out))
    refused = run(*release, today=None)
    assert refused.exit_code == 1, refused.output
    message = "content/es/detox.md: version: version 3.0.1, but 3.0.0 was approved; a release needs it approved"
    assert f"{message}; run: {FIX_ES}" in refused.output.splitlines()
    assert not out.exists()
    approved = run("approve", "detox", "--lang", "es", "--reviewer", "Avery Example, MD", today=None)
    assert approved.exit_code == 0, approved.output
    assert run(*release, today=None).exit_code == 0
    assert out.exists()


def test_every_release_refusal_ends_with_its_fix(run: Invoke, project: Path, tmp_path: Path) -> None:
    # The shipped content: drafts, under the example brand; the English mat edited after its approval.
    approve(run, "mat", date=days_ago(5).isoformat(), today=None)
    replace_in(project / "content/en/mat.md", "You do not need detox before", "You do not need to detox before")
    result = run("build", "--release", "--sections", "mat,detox", "-o", str(tmp_path / "r.pdf"), today=None)
    assert result.exit_code == 1
    lines = result.output.splitlines()[1:]
    assert lines[0] == (
        "brands/example-clinic/brand.toml: example: true; an example brand's name and phone number are made up; "
        "a release needs your own brand: make one with `handouts init` or a brands/<id>/ folder with "
        "example = false, then pass --brand <id>"
    )
    assert (
        "content/en/detox.md: status: draft; a release needs approved content; "
        'run: handouts approve detox --reviewer "Name, Credentials"'
    ) in lines
    # Not bumped yet: approve would refuse it, so the fix says to bump first.
    assert any(
        line.startswith("content/en/mat.md: body changed after approval")
        and line.endswith('bump the version, then run: handouts approve mat --reviewer "Name, Credentials"')
        for line in lines
    ), lines
    assert all(FIXES.search(line) for line in lines), lines


@pytest.mark.render
def test_the_spanish_review_record_says_the_translation_is_behind(
    run: Invoke, project: Path, edited: dt.date, tmp_path: Path
) -> None:
    out = tmp_path / "rec.pdf"
    result = run("record", "--lang", "es", "--sections", "detox", "-o", str(out), today=None)
    assert result.exit_code == 0, result.output
    text = text_of(out)
    assert (
        "Estado de revisión Traducción atrasada respecto al inglés 3.0.1: traduce la versión 3.0.0. "
        "Su propia revisión: Aprobado."
    ) in text
    # find-help is current: its state is plain.
    assert "Estado de revisión Aprobado" in text
    # Once the English edit is approved, the record gives the day the English changed.
    approve(run, "detox", date=days_ago(2).isoformat(), today=None)
    assert run("record", "--lang", "es", "--sections", "detox", "-o", str(out), today=None).exit_code == 0
    assert f"atrasada respecto al inglés 3.0.1 (aprobada el {spelled(days_ago(2), 'es')})" in text_of(out)


@pytest.mark.render
def test_a_build_after_an_edit_of_approved_spanish_says_what_changed(
    run: Invoke, project: Path, reviewed: dt.date, tmp_path: Path
) -> None:
    spanish = project / "content/es/detox.md"
    replace_in(spanish, "### Cuándo hay peligro", "### Cuándo hay un peligro")
    replace_in(spanish, "version: 3.0.0", "version: 3.0.1")
    result = run("build", "--lang", "es", "--sections", "detox", "--html", "-o", str(tmp_path / "d.pdf"), today=None)
    assert result.exit_code == 0, result.output
    html = (tmp_path / "d.html").read_text(encoding="utf-8")
    banner = html.split('<p class="sample-banner">', 1)[1].split("</p>", 1)[0]
    assert (
        "Síntomas de abstinencia y desintoxicación: cambiado desde la aprobación (versión 3.0.0 aprobada; ahora 3.0.1)."
        in banner
    )
    assert "Ninguna clínica ha revisado este borrador." not in banner


def test_check_warns_when_a_brand_s_english_hours_changed(run: Invoke, project: Path) -> None:
    brand = project / "brands/example-clinic/brand.toml"
    assert run("check", "--strict").exit_code == 0
    replace_in(brand, 'hours = "Monday to Friday, 8 a.m. to 6 p.m."', 'hours = "Monday to Saturday, 8 a.m. to 6 p.m."')
    result = run("check")
    assert result.exit_code == 0
    assert (
        "brands/example-clinic/brand.toml: es.hours: translates an older English hours "
        "('Monday to Friday, 8 a.m. to 6 p.m.'); English is now 'Monday to Saturday, 8 a.m. to 6 p.m.'; "
        "translate the new English into es.hours, then set es.translates.hours to it (warning)"
    ) in result.output.splitlines()
    assert run("check", "--strict").exit_code == 1
    # The brand still builds (a warning, as for a stale section), and brands says it has a warning.
    assert "example-clinic  Maple Street Example Clinic  yes      4 warnings" in run("brands").output
    # Translated again and recorded: no warning.
    replace_in(brand, 'translates.hours = "Monday to Friday', 'translates.hours = "Monday to Saturday')
    replace_in(brand, 'hours = "Lunes a viernes', 'hours = "Lunes a sábado')
    assert "brands/example-clinic/brand.toml: es.hours" not in run("check").output


def test_a_translated_brand_field_without_a_record_is_named(run: Invoke, project: Path) -> None:
    brand = project / "brands/example-clinic/brand.toml"
    replace_in(brand, 'translates.note = "This clinic is fictional.', '# translates.note = "This clinic is fictional.')
    assert (
        "brands/example-clinic/brand.toml: es.note: no record of which English note it translates; under [es], "
        "add translates.note with the English note it translates (warning)"
    ) in run("check").output.splitlines()
