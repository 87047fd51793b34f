"""What a patient acts on stays whole on the printed page, measured from the PDFs themselves.

The overdose steps share a page with their picture (a panel in the brochure); the medicines table
never splits a row or leaves one row alone; My plan keeps its QR code; the help box is whole;
large print stays short; and no page holds only the About box.

Where a block does not fit, the page before it ends short: these tests pin what stays together,
so the fill of such a page is allowed to fall below the 40 % the layout tests ask of other pages.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pytest
from conftest import ROOT, Invoke
from pdfcheck import Line, lines

from handouts.layouts import LAYOUTS, points

LANGUAGES = {"en": (), "es": ("--lang", "es")}
FLAT = ("letter", "a4", "large-print")
BROCHURE = ("--layout", "trifold", "--sections", "mat,overdose-safety,detox")
STEP_RE = re.compile(r"^( *)\d+\. (.+)$", re.M)
FRAME = (0.85098, 0.85098, 0.85098)  # the light grey every panel of the overdose picture is drawn in


def catalog(language: str) -> dict[str, str]:
    """Return a language's template strings."""
    return tomllib.loads((ROOT / f"templates/i18n/{language}.toml").read_text(encoding="utf-8"))


def plain(markdown: str) -> str:
    """Return Markdown inline text as it prints: no emphasis marks, one space between words."""
    return " ".join(markdown.replace("**", "").replace("*", "").split())


def steps(language: str, brief: bool) -> list[str]:
    """Return the overdose steps of a language's section (or of its brief, indented in the front matter)."""
    text = (ROOT / f"content/{language}/overdose-safety.md").read_text(encoding="utf-8")
    found = [plain(step) for indent, step in STEP_RE.findall(text) if bool(indent) == brief]
    assert len(found) == 6, found
    return found


def page_texts(path: Path, panels: int = 0) -> list[str]:
    """Return the text of each page (or, for a brochure, of each panel), words joined by one space."""
    out = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            parts = (
                [page]
                if not panels
                else [
                    page.crop((page.width * n / panels, 0, page.width * (n + 1) / panels, page.height))
                    for n in range(panels)
                ]
            )
            out.extend(" ".join((part.extract_text() or "").split()) for part in parts)
    return out


def picture_pages(path: Path, panels: int = 0) -> list[int]:
    """Return the index of every page (or panel) on which a frame of the overdose picture is drawn."""
    found = []
    with pdfplumber.open(path) as pdf:
        for number, page in enumerate(pdf.pages):
            for shape in page.rects + page.curves:
                if shape.get("stroking_color") == FRAME and shape["height"] > 20:
                    where = int(shape["x0"] * panels // page.width) if panels else 0
                    found.append(number * max(panels, 1) + where)
    return sorted(set(found))


def build(shipped: Callable[..., Path], language: str, layout: str) -> Path:
    """Build the whole shipped handout (the brochure: its three sections) in one language."""
    chosen = BROCHURE if layout == "trifold" else ("--layout", layout)
    return shipped(*LANGUAGES[language], *chosen)


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("layout", [*FLAT, "trifold"])
def test_the_overdose_steps_share_a_page_with_their_picture(
    shipped: Callable[..., Path], language: str, layout: str
) -> None:
    path = build(shipped, language, layout)
    panels = 3 if layout == "trifold" else 0
    texts = page_texts(path, panels)
    pictured = picture_pages(path, panels)
    assert len(pictured) == 1, f"the picture is drawn on pages/panels {pictured}"
    where = pictured[0]
    # The brochure prints the brief's steps, the pages the section's: each step's opening and
    # closing words are on the picture's page or panel, so no step is split off or left behind.
    for step in steps(language, brief=layout == "trifold"):
        words = step.split()
        assert " ".join(words[:3]) in texts[where], (step, where)
        assert " ".join(words[-3:]) in texts[where], (step, where)


def table_rows(language: str) -> list[str]:
    """Return the first cell of the medicines table's header row, then of every body row, as written."""
    text = (ROOT / f"content/{language}/mat.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [plain(row.split("|")[1]) for row in rows[:1] + rows[2:]]


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("layout", FLAT)
def test_no_table_row_is_split_or_left_alone(shipped: Callable[..., Path], language: str, layout: str) -> None:
    header, *expected = table_rows(language)
    seen: list[list[str]] = []
    with pdfplumber.open(build(shipped, language, layout)) as pdf:
        for page in pdf.pages:
            for table in page.find_tables():
                cells = [" ".join((row[0] or "").split()) for row in table.extract()]
                # A page that continues the table repeats its header row first.
                body = [cell for cell in cells if cell in expected]
                if not body and cells[:1] != [header]:
                    continue  # a ruled box, not the medicines table
                assert cells[0] == header and len(body) == len(cells) - 1, cells
                seen.append(body)
    # Every row once, whole (its first cell as written), in order; no page holds a lone row.
    assert [cell for part in seen for cell in part] == expected
    assert all(len(part) >= 2 for part in seen), seen


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("layout", FLAT)
def test_my_plan_keeps_its_qr_code_and_the_help_box_stays_whole(
    shipped: Callable[..., Path], language: str, layout: str
) -> None:
    words = catalog(language)
    texts = page_texts(build(shipped, language, layout))
    plan = [n for n, text in enumerate(texts) if words["my_plan"] in text]
    assert len(plan) == 1, plan
    assert words["plan_people"] in texts[plan[0]]
    # The QR code's caption sits in its own column, its lines between the plan's: its words, then.
    assert set(words["scan_or_visit"].split("{")[0].split()) <= set(texts[plan[0]].split())
    help_text = (ROOT / f"content/{language}/find-help.md").read_text(encoding="utf-8")
    title = re.search(r"^title: (.+)$", help_text, re.M)[1]  # type: ignore[index]
    last = plain(help_text.strip().splitlines()[-1])
    starts = [n for n, text in enumerate(texts) if title in text]
    assert len(starts) == 1 and last in texts[starts[0]], (title, starts)


@pytest.mark.parametrize(("language", "most"), [("en", 14), ("es", 16)])
def test_large_print_is_short_enough_to_read(shipped: Callable[..., Path], language: str, most: int) -> None:
    layout = LAYOUTS["large-print"]
    top, bottom = points(layout.margin[0]), layout.height_pt - points(layout.margin[2])
    with pdfplumber.open(build(shipped, language, "large-print")) as pdf:
        assert len(pdf.pages) <= most
        sizes = {round(char["size"], 1) for page in pdf.pages for char in page.chars if char["text"].strip()}
        first = [w["bottom"] for w in pdf.pages[0].extract_words() if top - 1 <= w["top"] and w["bottom"] <= bottom]
    assert min(sizes) >= 18, sorted(sizes)
    # Page 1 is filled: the key points begin on it rather than leave a third of it blank.
    assert (max(first) - top) / (bottom - top) >= 0.85


def body_words(path: Path, layout: str) -> list[list[str]]:
    """Return each page's words between its top and bottom margins: no running header or footer."""
    top, bottom = points(LAYOUTS[layout].margin[0]), points(LAYOUTS[layout].margin[2])
    with pdfplumber.open(path) as pdf:
        return [
            [w["text"] for w in page.extract_words() if top - 1 <= w["top"] and w["bottom"] <= page.height - bottom + 1]
            for page in pdf.pages
        ]


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("layout", FLAT)
def test_no_page_holds_only_the_about_box(shipped: Callable[..., Path], language: str, layout: str) -> None:
    path = build(shipped, language, layout)
    about = catalog(language)["about"].split()
    pages = body_words(path, layout)
    for words in pages:
        assert words[: len(about)] != about, "a page starts with the About box"
    # The About box starts on the last page, below something a patient acts on, and ends there.
    starts = [n for n, words in enumerate(pages) if " ".join(about) in " ".join(words)]
    assert starts == [len(pages) - 1], starts
    if layout == "letter" and language == "es":
        assert len(pages) <= 7


def panel_fill(path: Path, page_index: int) -> list[float]:
    """Return how far down each panel of a brochure sheet its words reach, as a share of the panel."""
    layout = LAYOUTS["trifold"]
    top = points(layout.margin[0])
    with pdfplumber.open(path) as pdf:
        page = pdf.pages[page_index]
        words = [w for w in page.extract_words() if top - 1 <= w["top"] and w["bottom"] <= page.height - top + 1]
        fills = []
        for n in range(layout.panels):
            mine = [w for w in words if n * layout.panel_width_pt <= w["x0"] < (n + 1) * layout.panel_width_pt]
            fills.append((max(w["bottom"] for w in mine) - top) / layout.panel_height_pt if mine else 0.0)
    return fills


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("sections", ["mat,overdose-safety,detox", "overdose-safety,detox"])
def test_no_brochure_panel_is_left_blank(shipped: Callable[..., Path], language: str, sections: str) -> None:
    path = shipped(*LANGUAGES[language], "--layout", "trifold", "--sections", sections)
    inside = panel_fill(path, 1)
    if len(sections.split(",")) >= 3:
        assert min(inside) >= 0.6, inside
    else:
        # Two sections fill two panels; the third carries questions for the next visit, not nothing.
        assert min(inside) >= 0.3, inside
        assert catalog(language)["questions_title"] in page_texts(path, 3)[3 + 2]
    # The outside sheet: flap, back and cover each used; the back panel at least half filled.
    flap, back, cover = panel_fill(path, 0)
    assert back >= 0.5 and flap >= 0.5 and cover >= 0.5, (flap, back, cover)


@pytest.mark.render
def test_the_html_beside_a_brochure_holds_the_questions_its_pdf_prints(run: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("build", "--layout", "trifold", "--sections", "overdose-safety,detox", "--html", "-o", str(out))
    assert result.exit_code == 0, result.output
    (pdf,) = out.glob("*.pdf")
    (html,) = out.glob("*.html")
    title = catalog("en")["questions_title"]
    assert title in " ".join(page_texts(pdf)) and title in html.read_text(encoding="utf-8")


MARKER = (0.541176, 0.109804, 0.109804)  # the sample marker's border, #8a1c1c


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("layout", FLAT)
def test_page_one_brand_band_stays_above_the_sample_marker(
    shipped: Callable[..., Path], language: str, layout: str
) -> None:
    with pdfplumber.open(build(shipped, language, layout)) as pdf:
        page = pdf.pages[0]
        # WeasyPrint draws the band and the marker's border as filled rectangles.
        band = [r for r in page.rects if r["top"] <= 0.5 and r["width"] >= page.width - 1]
        marker = [
            r
            for r in page.rects
            if r["top"] < 72 and tuple(round(c, 6) for c in r.get("non_stroking_color") or ()) == MARKER
        ]
    assert band and marker, (band, marker)
    assert min(r["top"] for r in marker) > max(r["bottom"] for r in band) + 1


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("layout", FLAT)
def test_a_heading_keeps_two_lines_of_what_follows(shipped: Callable[..., Path], language: str, layout: str) -> None:
    path = build(shipped, language, layout)
    body = LAYOUTS[layout].font_size_pt
    top, bottom = points(LAYOUTS[layout].margin[0]), points(LAYOUTS[layout].margin[2])
    pages: dict[int, list[Line]] = {}
    for line in lines(path):
        # Body lines only: not the running header or the footer in the margins.
        if top - 1 <= line.top <= LAYOUTS[layout].height_pt - bottom:
            pages.setdefault(line.page, []).append(line)
    for number, page in pages.items():
        # A heading is set larger than the body text. On a page that goes on overleaf (the last page
        # may end with anything) no heading is the last line, and one that is the last but one has
        # its whole paragraph under it: a one-line paragraph, ending its sentence. (In large print
        # the line that introduces the overdose picture stays with its heading, while the picture
        # and its steps, which need a page of their own, start the next page.)
        if number == max(pages):
            continue
        assert page[-1].size <= body + 0.5, (number + 1, page[-1].text)
        if page[-2].size > body + 0.5:
            assert page[-1].text.rstrip().endswith((".", "?", "!", ":")), (number + 1, page[-2].text, page[-1].text)
