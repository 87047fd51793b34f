"""Real renders: text, order, footer, metadata, tagging, fonts and determinism of the PDFs."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pypdf
import pytest
from conftest import AVERY, ROOT, SAM, TODAY, Invoke, approve, days_ago, in_months, replace_in, spelled
from pdfcheck import page_texts, structure

from handouts.build import prepare
from handouts.compose import HandoutSpec
from handouts.models import SECTION_ORDER, handout_code
from handouts.project import Project

TITLES = {
    "mat": "Medicines for opioid use disorder",
    "detox": "Withdrawal and detox",
    "behavioral-therapy": "Counseling and behavioral therapy",
    "self-help": "Self-help and support groups",
    "overdose-safety": "Overdose safety",
    "find-help": "Where to get help",
}


VERSIONS = {
    "mat": "3.0.0",
    "overdose-safety": "3.0.0",
    "behavioral-therapy": "2.1.0",
    "self-help": "2.1.0",
    "detox": "3.0.0",
    "find-help": "2.1.0",
}


@pytest.fixture(scope="module")
def default_pdf(shipped: Callable[..., Path]) -> Path:
    """Build the default handout from the shipped project once (shared with other modules)."""
    return shipped()


def version_of(root: Path, **changes: Any) -> str:
    """Return the handout version the library derives for the shipped request."""
    today = changes.pop("today", TODAY)
    fields: dict[str, Any] = {
        "sections": None,
        "brand": "example-clinic",
        "language": "en",
        "layout": "letter",
        **changes,
    }
    return prepare(Project(root), HandoutSpec(**fields), today)[0].version


@pytest.mark.render
def test_default_handout_shows_brand_title_sections_in_order_and_about(default_pdf: Path) -> None:
    text = " ".join(page_texts(default_pdf))
    for expected in (
        "Maple Street Example Clinic",
        "(802) 555-0142",
        "https://example.org/maple-street",
        "Opioid use disorder: treatment and support",
        "About this handout",
        "1-800-662-4357",
        "988",
        "FindTreatment.gov",
        "911",
    ):
        assert expected in text, expected
    # Medicines first, withdrawal management late, the help block last.
    positions = [text.index(TITLES[s]) for s in SECTION_ORDER]
    assert positions == sorted(positions)
    about = text[text.index("About this handout") :]
    # Every reviewer once, with credentials; no roles, no per-section record, no source links.
    assert (
        "Reviewers named: Avery Example, MD; Sam Placeholder, PharmD; Jordan Sample, LCSW. "
        "Last review: November 20, 2026. Next review: May 20, 2027." in about
    )
    assert about.count("Avery Example") == 1
    assert "Fictional example reviewer" not in text
    assert "This handout does not replace advice from your care team. Ask us for the list of sources." in about
    assert "https://doi.org/" not in text


@pytest.mark.render
def test_every_page_has_footer_version_page_number_and_sample_marker(default_pdf: Path) -> None:
    pages = page_texts(default_pdf)
    meta = pypdf.PdfReader(default_pdf).metadata
    version, code = meta["/handoutversion"], meta["/handoutcode"]
    assert re.fullmatch(r"[0-9a-f]{12}", version) and code == handout_code(version)
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Sample · Maple Street (example) · Handout {code}" in text
        assert "Draft, not approved" not in text and "Reviewed" not in text
        assert f"Page {number} of {len(pages)}" in text
        assert "SAMPLE – NOT YET APPROVED FOR PATIENT USE" in text
    assert "Sample – not yet approved for patient use." in pages[0]


def test_metadata(default_pdf: Path) -> None:
    meta = pypdf.PdfReader(default_pdf).metadata
    assert meta["/Title"] == "Opioid use disorder: treatment and support"
    assert meta["/Author"] == "Maple Street Example Clinic"
    assert meta["/Subject"].startswith("Patient handout: Medicines for opioid use disorder; Overdose safety;")
    assert meta["/Keywords"] == ", ".join(SECTION_ORDER)
    assert meta["/handoutstatus"] == "sample"
    assert meta["/handoutsections"] == "; ".join(f"{s} {VERSIONS[s]}" for s in SECTION_ORDER)
    assert meta["/sectionmatversion"] == "3.0.0"
    assert meta["/sectionbehavioraltherapyversion"] == "2.1.0"
    assert meta["/handoutversion"] == version_of(ROOT)
    # No clock time anywhere.
    assert "/CreationDate" not in meta and "/ModDate" not in meta


def test_tagged_pdf_with_language_alt_text_and_embedded_font(default_pdf: Path) -> None:
    reader = pypdf.PdfReader(default_pdf)
    catalog: Any = reader.trailer["/Root"]
    assert catalog["/Lang"] == "en"
    assert catalog["/MarkInfo"]["/Marked"] == pypdf.generic.BooleanObject(True)
    assert "pdfuaid:part" in catalog["/Metadata"].get_object().get_data().decode()

    figures = [str(node.get("/Alt")) for node in structure(default_pdf) if node["/S"] == "/Figure"]
    assert figures[0] == "Maple Street Example Clinic logo: a maple leaf over a rising sun"
    # The overdose picture is six panels, each with its own alt text, in step order.
    assert figures[1] == "Step 1: a helper shouts and rubs the chest of a person lying on their back."
    assert [figure.split(":")[0] for figure in figures[1:7]] == [f"Step {n}" for n in range(1, 7)]
    assert figures[7] == "QR code that opens https://example.org/maple-street"
    assert len(figures) == 8

    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            assert "/FontFile2" in descriptor, "font not embedded"
            fonts.add(font["/BaseFont"].split("+", 1)[1])
    assert fonts == {"Atkinson-Hyperlegible", "Atkinson-Hyperlegible-Bold"}


@pytest.mark.render
def test_chosen_sections_only_in_fixed_order_with_find_help(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--sections", "detox,mat", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = tmp_path / "example-clinic-en-letter-mat+detox+find-help.pdf"
    assert result.output == f"{path}\n"
    text = " ".join(page_texts(path))
    assert text.index(TITLES["mat"]) < text.index(TITLES["detox"]) < text.index(TITLES["find-help"])
    for absent in ("behavioral-therapy", "self-help", "overdose-safety"):
        assert TITLES[absent] not in text
    assert pypdf.PdfReader(path).metadata["/Keywords"] == "mat, detox, find-help"


@pytest.mark.render
def test_a4_layout_page_size(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--layout", "a4", "--sections", "detox", "-o", str(tmp_path / "a4.pdf"))
    assert result.exit_code == 0, result.output
    box = pypdf.PdfReader(tmp_path / "a4.pdf").pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)


@pytest.mark.render
def test_building_twice_gives_identical_bytes(run: Invoke, project: Path, tmp_path: Path, default_pdf: Path) -> None:
    # Built again, from a copy of the same inputs in another folder: the same bytes.
    assert run("build", "-o", str(tmp_path / "a.pdf")).exit_code == 0
    assert (tmp_path / "a.pdf").read_bytes() == default_pdf.read_bytes()


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        (
            "content/en/mat.md",
            "You do not need detox before you start methadone or buprenorphine.",
            "You do not need detox before you start methadone or buprenorphine!",
        ),
        ("content/en/mat.md", "  - Lock up medicine you take home.", "  - Lock up the medicine you take home."),
        ("content/en/mat.md", "  - **Methadone:** you take it", "  - **Methadone:** you swallow it"),
        ("content/en/find-help.md", "version: 2.1.0", "version: 2.1.1"),
        ("templates/partials/section.html.j2", "</section>", "</section>\n"),
        ("styles/base.css", "font-size: 11.5pt", "font-size: 11.6pt"),
        ("brands/example-clinic/brand.toml", "(802) 555-0142", "(802) 555-0143"),
        ("brands/example-clinic/logo.svg", "#f2c14e", "#f2c14f"),
    ],
)
def test_version_changes_with_any_input(project: Path, path: str, old: str, new: str) -> None:
    before = version_of(project)
    assert version_of(project) == before
    replace_in(project / path, old, new)
    assert version_of(project) != before


def test_version_depends_on_font_layout_and_selection_but_not_tailoring(project: Path) -> None:
    from handouts.models import Tailoring

    before = version_of(project)
    assert version_of(project, tailoring=Tailoring(prepared_for="Pat Example")) == before
    assert version_of(project, layout="a4") != before
    assert version_of(project, sections=("detox",)) != before
    font = project / "styles/fonts/AtkinsonHyperlegible-Regular.ttf"
    font.write_bytes(font.read_bytes() + b"\0")
    assert version_of(project) != before


@pytest.mark.render
def test_tailoring_box_prints_text_literally_and_stays_out_of_names_and_logs(
    run: Invoke, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Capture everything, so a secret logged at any level by us or WeasyPrint fails the test.
    caplog.set_level(logging.DEBUG)
    for name in ("handouts", "weasyprint"):
        caplog.set_level(logging.DEBUG, logger=name)
    note = '<b>x</b><img src="file:///etc/hostname">'
    result = run(
        "-v",
        "build",
        "--sections",
        "detox",
        "--prepared-for",
        "Pat Q. Example",
        "--counselor",
        "Lee Counselor, LADC",
        "--note",
        note,
        "--next-visit",
        "2026-12-07",
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    # A tailored copy's name says it is personal, never whose.
    path = tmp_path / "example-clinic-en-letter-detox+find-help-personal-1.pdf"
    assert result.output == f"{path}\n"
    assert [p.name for p in tmp_path.iterdir() if p.name != "project"] == [path.name]
    text = " ".join(page_texts(path))
    assert "My plan for Pat Q. Example" in text
    assert "My next visit: December 7, 2026 My counselor: Lee Counselor, LADC" in text
    assert f"A note for you: {note}" in text
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    if hostname:
        assert hostname not in text
    # The log was captured: -v logs the handout's version through the "handouts" logger.
    logged = [r.getMessage() for r in caplog.records if r.name == "handouts"]
    logged_line = r"handout version [0-9a-f]{12}, code [0-9A-Z]{4}-[0-9A-Z]{4}, \d+ pages"
    assert [m for m in logged if re.fullmatch(logged_line, m)], logged
    for secret in ("Pat Q. Example", "Lee Counselor", "<b>x</b>", "2026-12-07", "December 7"):
        assert secret not in result.output
        assert secret not in caplog.text


@pytest.mark.render
def test_html_output_is_written_beside_the_pdf(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--html", "--sections", "detox", "-o", str(tmp_path / "h.pdf"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [str(tmp_path / "h.html"), str(tmp_path / "h.pdf")]
    html = (tmp_path / "h.html").read_text()
    assert '<html lang="en" dir="ltr">' in html and '<base href="file://' in html
    assert "<h2>Withdrawal and detox</h2>" in html


@pytest.mark.render
def test_approved_release_build_has_no_sample_marker_and_names_reviewers(
    run: Invoke, own_brand: str, tmp_path: Path
) -> None:
    # A release checks review dates against the real calendar: reviewed a few days ago, by the real date.
    day = days_ago(3)
    approve(run, "mat", reviewers=(AVERY, SAM), date=day.isoformat(), today=None)
    approve(run, "find-help", date=day.isoformat(), today=None)
    out = tmp_path / "release.pdf"
    result = run("build", "--release", "--brand", own_brand, "--sections", "mat", "-o", str(out), today=None)
    assert result.exit_code == 0, result.output
    pages = page_texts(out)
    reviewed, due = spelled(day), spelled(in_months(day, 12))
    assert all("not yet approved" not in text.lower() and "SAMPLE" not in text for text in pages)
    # The footer: the clinic and the code, no sample word and no review dates (the About box has them).
    assert all("Maple Street (example) · Handout " in text for text in pages)
    assert all(f"Reviewed {reviewed}" not in text and "Sample ·" not in text for text in pages)
    text = " ".join(pages)
    assert (
        "Reviewed and approved by Avery Example, MD; Sam Placeholder, PharmD. "
        f"Last review: {reviewed}. Next review: {due}." in text
    )
    assert pypdf.PdfReader(out).metadata["/handoutstatus"] == "approved"


@pytest.mark.render
def test_an_example_brand_marks_approved_content_as_a_sample(run: Invoke, tmp_path: Path) -> None:
    # Approved, current content: only the made-up clinic makes this handout a sample.
    approve(run, "mat", "find-help", reviewers=(AVERY,), date="2026-11-20")
    out = tmp_path / "example.pdf"
    result = run("build", "--sections", "mat", "-o", str(out))
    assert result.exit_code == 0, result.output
    pages = page_texts(out)
    assert all("SAMPLE – EXAMPLE CLINIC, NOT FOR PATIENT USE" in text for text in pages)
    banner = "Sample – not for patient use. The clinic on this handout is made up. Its name, phone number"
    assert banner in pages[0]
    # The review itself is told as it is: approved, not a draft.
    text = " ".join(pages)
    assert "Reviewed and approved by Avery Example, MD." in text and "draft" not in text.lower()
    assert all("Sample · Maple Street (example) · Handout " in p for p in pages)
    assert all("Reviewed November 20, 2026" not in p for p in pages)
    assert pypdf.PdfReader(out).metadata["/handoutstatus"] == "sample"
