"""The footer a patient reads, the handout code it prints, where staff look it up, and logos that print too small."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pypdf
import pytest
from conftest import Invoke, replace_in

from handouts.batch.manifest import ManifestEntry
from handouts.layouts import LAYOUTS, points
from handouts.models import CODE_ALPHABET, handout_code

REVIEWERS = ("Avery Example", "Sam Placeholder", "Jordan Sample")
CODE_RE = re.compile(rf"[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}")


def footer_lines(path: Path, layout: str) -> list[list[str]]:
    """Return each page's lines of text below its bottom margin, top to bottom."""
    bottom = points(LAYOUTS[layout].margin[2])
    pages = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            lines: dict[int, list[str]] = {}
            for word in page.extract_words():
                if word["top"] > page.height - bottom:
                    lines.setdefault(round(word["top"]), []).append(word["text"])
            pages.append([" ".join(words) for _, words in sorted(lines.items())])
    return pages


def test_a_code_is_eight_unambiguous_characters_from_the_version() -> None:
    assert handout_code("653667415551") == handout_code("653667415551")
    assert handout_code("653667415551") != handout_code("653667415552")
    assert CODE_RE.fullmatch(handout_code("ffffffffffff")) and CODE_RE.fullmatch(handout_code("000000000000"))
    assert not set("01OIL") & set(CODE_ALPHABET)


@pytest.mark.parametrize(
    ("layout", "language", "sample", "page_word", "handout_word"),
    [
        ("large-print", "en", "", "Page", "Handout"),
        ("large-print", "es", "", "Página", "Folleto"),
        ("letter", "en", "Sample · ", "Page", "Handout"),
        ("letter", "es", "Muestra · ", "Página", "Folleto"),
    ],
)
def test_every_page_footer_is_one_line_with_the_code_and_page_number(
    shipped: Callable[..., Path], layout: str, language: str, sample: str, page_word: str, handout_word: str
) -> None:
    pdf = shipped("--layout", layout, "--lang", language)
    code = pypdf.PdfReader(pdf).metadata["/handoutcode"]
    assert code == handout_code(pypdf.PdfReader(pdf).metadata["/handoutversion"])
    pages = footer_lines(pdf, layout)
    assert len(pages) >= 2
    of = "of" if language == "en" else "de"
    short = "(example)" if language == "en" else "(ejemplo)"
    for number, lines in enumerate(pages, start=1):
        # One line: the clinic, the code, and the page number beside them; nothing of the review.
        assert lines == [f"{sample}Maple Street {short} · {handout_word} {code} {page_word} {number} {of} {len(pages)}"]
        assert not any(name in lines[0] for name in REVIEWERS)


def test_the_record_and_the_manifest_list_the_code_the_pages_print(
    run: Invoke, shipped: Callable[..., Path], tmp_path: Path
) -> None:
    from conftest import ROOT

    record = tmp_path / "record.pdf"
    assert run("record", "-o", str(record), root=ROOT).exit_code == 0
    text = " ".join(page.extract_text() or "" for page in pypdf.PdfReader(record).pages)
    for layout in ("letter", "large-print"):
        code = footer_lines(shipped("--layout", layout), layout)[0][0].split(" · Handout ")[1][:9]
        assert CODE_RE.fullmatch(code)
        assert re.search(rf"{code} {layout} ", text), (layout, code)
    version = pypdf.PdfReader(shipped("--layout", "letter")).metadata["/handoutversion"]
    entry = ManifestEntry.from_dict(
        {
            "path": "a/en/x-letter.pdf",
            "sha256": "0" * 64,
            "handout_version": version,
            "sections": {"mat": "3.0.0"},
            "brand": "a",
            "language": "en",
            "layout": "letter",
            "fingerprint": "0" * 64,
            "inputs": {},
            "html": None,
            "tool_version": "0.1.0",
        }
    )
    data = entry.to_dict()
    assert (
        data["handout_code"] == footer_lines(shipped("--layout", "letter"), "letter")[0][0].split(" · Handout ")[1][:9]
    )
    assert ManifestEntry.from_dict(data) == entry
    with pytest.raises(
        ValueError, match=r"handout_code: expected .* \(from handout_version\) or none, got 'K7QP-3MX2'"
    ):
        ManifestEntry.from_dict({**data, "handout_code": "K7QP-3MX2"})


WIDE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 100"><rect width="400" height="100" fill="#1d4e89"/>'
    '<g font-size="28"><text x="10" y="50">Riverbend Recovery</text>'
    '<text x="10" y="85" style="font-size: 12px">since 1990</text></g></svg>'
)


def test_check_warns_for_a_wide_logo_with_small_text_and_not_for_the_shipped_one(run: Invoke, project: Path) -> None:
    assert "logo:" not in run("check").output
    (project / "brands/example-clinic/logo.svg").write_text(WIDE_SVG)
    lines = [line for line in run("check").output.splitlines() if " logo: " in line]
    assert lines == [
        "brands/example-clinic/brand.toml: logo: logo.svg prints its smallest text (font-size 12 in a 400 x 100 "
        "drawing) at 1.7 pt in the 56 x 56 pt logo box of letter, a4 (it prints 56 x 14 pt); text under 8 pt is "
        "hard to read: make that text at least 58 units (warning)"
    ]


def test_check_warns_for_a_wide_raster_logo(run: Invoke, project: Path) -> None:
    from PIL import Image

    folder = project / "brands/example-clinic"
    Image.new("RGB", (600, 150), "white").save(folder / "wide.png")
    replace_in(folder / "brand.toml", 'logo = "logo.svg"', 'logo = "wide.png"')
    output = run("check").output
    assert (
        "brands/example-clinic/brand.toml: logo: wide.png is 4.0:1 wide: the 56 x 56 pt logo box of letter, a4 "
        "prints it 56 x 14 pt, so any words in it shrink below a readable size; make the logo about 2:1 or less, "
        "with large text (warning)"
    ) in output
