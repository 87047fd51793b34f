"""A table that spans pages is one Table in the tag tree, its header row tagged once and repeated as an artifact.

Measured from real PDFs: the Spanish large-print handout (its medicines table runs over pages 2 and 3),
letter handouts whose table was made longer (over two pages, and over three), and a plain HTML table
with a caption, a footer and two bodies over four pages. page-validation and outloud judge each.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

import pdfplumber
import pikepdf
import pytest
from conftest import ROOT
from pdfcheck import cached
from test_outside_validators import HANDOUTS, build, marked_content, shared_builds, tree_elements

from handouts.output import pdf as pdf_module
from handouts.output.pdf import render_pdf

pytestmark = [pytest.mark.render, pytest.mark.xdist_group("table_tags")]

LAST_ROW = "| Lowers the risk of dying from overdose? | Yes | Yes | Not shown |\n"
# name: (extra rows in the English medicines table, build options, pages the table spans)
SPLIT: dict[str, tuple[int, tuple[str, ...], int]] = {
    "large-print-es": (0, HANDOUTS["large-print-es"][1] or (), 2),
    "letter-en-two-pages": (8, ("--layout", "letter", "--lang", "en"), 2),
    "letter-en-three-pages": (40, ("--layout", "letter", "--lang", "en"), 3),
}


def longer_table(root: Path, rows: int) -> None:
    """Add rows to the English medicines table of a project copy."""
    path = root / "content/en/mat.md"
    extra = "".join(
        f"| Question {n} for your care team? | Ask about {n} | Ask {n} again | Call about {n} |\n" for n in range(rows)
    )
    text = path.read_text(encoding="utf-8")
    assert LAST_ROW in text
    path.write_text(text.replace(LAST_ROW, LAST_ROW + extra), encoding="utf-8")


def build_split(out: Path, name: str, root: Path) -> Path:
    """Build one handout of SPLIT from a project copy whose table has the rows that name asks for."""
    rows, options, _ = SPLIT[name]
    project = root / name
    if not project.exists():
        for folder in ("content", "templates", "styles", "brands"):
            shutil.copytree(ROOT / folder, project / folder)
        shutil.copy(ROOT / "handouts.toml", project / "handouts.toml")
        longer_table(project, rows)
    return build(out, options, root=project)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build every handout of SPLIT; large print in Spanish is the one the validator tests build too."""
    shipped = shared_builds(
        tmp_path_factory,
        "outside-validators",
        {"large-print-es": functools.partial(build, options=SPLIT["large-print-es"][1])},
    )
    root = tmp_path_factory.mktemp("longer-table")
    jobs = {name: functools.partial(build_split, name=name, root=root) for name in SPLIT if name != "large-print-es"}
    return {**shipped, **shared_builds(tmp_path_factory, "table-tags", jobs)}


def expected_rows(name: str) -> tuple[list[str], list[str]]:
    """Return the header cells and every body row's first cell of the table a SPLIT handout prints."""
    language = SPLIT[name][1][SPLIT[name][1].index("--lang") + 1]
    rows = [line for line in (ROOT / f"content/{language}/mat.md").read_text(encoding="utf-8").splitlines()]
    rows = [line for line in rows if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    body = [row.split("|")[1].strip() for row in rows[2:]]
    body += [f"Question {n} for your care team?" for n in range(SPLIT[name][0])]
    return header, body


def squeeze(text: str) -> str:
    """Return text without whitespace: lines wrap differently, characters stay."""
    return "".join(text.split())


@cached
def mcid_texts(path: Path) -> dict[tuple[int, int | None], str]:
    """Return the text of each page's marked-content sequences by (page index, MCID); artifacts under None."""
    texts: dict[tuple[int, int | None], str] = {}
    with pdfplumber.open(path) as pdf:
        for number, page in enumerate(pdf.pages):
            for char in page.chars:
                key = (number, char["mcid"])
                texts[key] = texts.get(key, "") + char["text"]
    return texts


def element_text(element: Any, pages: dict[tuple[int, int], int], texts: dict[tuple[int, int | None], str]) -> str:
    """Return the text of a structure element: its MCIDs, on the page its /Pg names, and its children's."""
    kids = element.get("/K")
    kids = kids if isinstance(kids, pikepdf.Array) else [kids]
    parts = []
    for kid in kids:
        if isinstance(kid, int):
            parts.append(texts.get((pages[element.Pg.objgen], int(kid)), ""))
        elif isinstance(kid, pikepdf.Dictionary) and "/S" in kid:
            parts.append(element_text(kid, pages, texts))
    return "".join(parts)


def table_tags(path: Path) -> list[dict[str, Any]]:
    """Return each Table of the tag tree: its groups' rows as (cell tag, /Scope, text), and the pages of its rows."""
    texts = mcid_texts(path)
    found = []
    with pikepdf.open(path) as pdf:
        pages = {page.obj.objgen: number for number, page in enumerate(pdf.pages)}
        for element in tree_elements(pdf).values():
            if element.S != "/Table":
                continue
            table: dict[str, Any] = {"/Caption": [], "/THead": [], "/TBody": [], "/TFoot": [], "pages": set()}
            for kid in element.K:
                if kid.S == "/Caption":
                    table["/Caption"].append(squeeze(element_text(kid, pages, texts)))
                    continue
                for row in kid.K:
                    assert row.S == "/TR", row.S
                    table["pages"].add(pages[row.Pg.objgen])
                    cells = [
                        (str(cell.S), str(cell.A.get("/Scope", "")), squeeze(element_text(cell, pages, texts)))
                        for cell in row.K
                    ]
                    table[str(kid.S)].append(cells)
            found.append(table)
    return found


def assert_one_table(path: Path, header: list[str], body: list[str], pages: int) -> dict[str, Any]:
    """Check the PDF tags one table: one header row of column TH, every body row once and in order."""
    tables = table_tags(path)
    assert len(tables) == 1, [table["pages"] for table in tables]
    table = tables[0]
    assert len(table["pages"]) == pages, table["pages"]
    assert table["/THead"] == [[("/TH", "/Column", squeeze(cell)) for cell in header]]
    assert [row[0][2] for row in table["/TBody"]] == [squeeze(cell) for cell in body]
    # Each body row: a row header, then data cells; no header cell of the first row comes back.
    assert all(row[0][:2] == ("/TH", "/Row") and {cell[0] for cell in row[1:]} == {"/TD"} for row in table["/TBody"])
    return table


def assert_repeats_are_artifacts(path: Path, tagged_on: int, repeated_on: set[int], repeated: str) -> None:
    """Check a row prints tagged on one page and, on each page it repeats on, as an artifact tagged nowhere."""
    texts = mcid_texts(path)
    assert repeated in "".join(
        squeeze(text) for (at, mcid), text in texts.items() if at == tagged_on and mcid is not None
    )
    for page in repeated_on:
        assert repeated in squeeze(texts.get((page, None), "")), page
        assert repeated not in "".join(
            squeeze(text) for (at, mcid), text in texts.items() if at == page and mcid is not None
        )


def assert_tree_and_parent_tree_agree(path: Path) -> None:
    """Check every page's MCIDs run 0..n-1, each mapped by the ParentTree to an element of the tree that lists it."""
    with pikepdf.open(path) as pdf:
        reachable = tree_elements(pdf)
        nums = pdf.Root.StructTreeRoot.ParentTree.Nums
        parent_tree = {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}
        for page in pdf.pages:
            mcids = [mcid for _, mcid in marked_content(page) if mcid is not None]
            assert mcids == list(range(len(mcids)))
            elements = parent_tree[int(page.obj.StructParents)]
            assert len(elements) == len(mcids)
            for mcid, element in enumerate(elements):
                assert element.objgen in reachable
                assert element.Pg.objgen == page.obj.objgen
                assert mcid in [int(kid) for kid in element.K if isinstance(kid, int)]


def assert_headers_are_kept_cells(path: Path, columns: int) -> None:
    """Check each data cell names its row's header cell and one column header cell, both in the tag tree."""
    with pikepdf.open(path) as pdf:
        cells = [element for element in tree_elements(pdf).values() if element.S in ("/TH", "/TD")]
        ids = {str(cell.ID) for cell in cells if "/ID" in cell}
        column_ids = {str(cell.ID) for cell in cells if cell.A.get("/Scope") == "/Column"}
        assert len(column_ids) == columns
        data = [{str(name) for name in cell.A.Headers} for cell in cells if cell.S == "/TD"]
        assert data and all(len(named) == 2 and named <= ids and len(named & column_ids) == 1 for named in data)


def assert_validators_pass(path: Path) -> None:
    """Check page-validation finds the PDF compliant and outloud reports no error."""
    import outloud
    import page

    result = page.validate_pdf(str(path))
    assert result.is_compliant, str(result)
    found = outloud.check(str(path))
    assert found.error is None, found.error
    assert [f"{f.rule} p.{f.page}: {f.message}" for f in found.findings if f.severity == "error"] == []


@pytest.mark.parametrize("name", SPLIT)
def test_a_table_over_pages_is_one_table_with_one_header_row(split: dict[str, Path], name: str) -> None:
    header, body = expected_rows(name)
    table = assert_one_table(split[name], header, body, SPLIT[name][2])
    first, *later = sorted(table["pages"])
    assert_repeats_are_artifacts(split[name], first, set(later), squeeze("".join(header)))
    assert_headers_are_kept_cells(split[name], len(header))


@pytest.mark.parametrize("name", SPLIT)
def test_a_split_table_keeps_the_tag_tree_and_parent_tree_in_step(split: dict[str, Path], name: str) -> None:
    assert_tree_and_parent_tree_agree(split[name])


@pytest.mark.parametrize("name", SPLIT)
def test_validators_pass_a_split_table(split: dict[str, Path], name: str) -> None:
    assert_validators_pass(split[name])


CAPTIONED = """<html lang="en"><head><title>Doses</title><style>
@page {{ size: letter; margin: 1in }} th, td {{ border: 1px solid black; padding: 4pt }}
</style></head><body><h1>Doses</h1><p>Before the table.</p><table><caption>Doses by week</caption>
<thead><tr><th>Week</th><th>Morning</th><th>Evening</th></tr></thead>
<tfoot><tr><th scope="row">Total</th><td>All mornings</td><td>All evenings</td></tr></tfoot>
{bodies}</table><p>After the table.</p></body></html>"""


def captioned(rows: tuple[int, ...]) -> str:
    """Return a page whose table has a caption, a header, a footer and one body of rows per number."""
    bodies = "".join(
        "<tbody>"
        + "".join(
            f'<tr><th scope="row">Week {part}.{n}</th><td>Dose {part}.{n} a</td><td>Dose {part}.{n} b</td></tr>'
            for n in range(count)
        )
        + "</tbody>"
        for part, count in enumerate(rows)
    )
    return CAPTIONED.format(bodies=bodies)


def render(html: str, out: Path) -> Path:
    """Render a page of HTML as a handout would be, and write it."""
    out.write_bytes(render_pdf(html, base_url=ROOT.as_uri() + "/", roots=[ROOT]).data)
    return out


def test_a_table_with_a_caption_footer_and_two_bodies_over_four_pages_is_one_table(tmp_path: Path) -> None:
    path = render(captioned((40, 30)), tmp_path / "captioned.pdf")
    body = [f"Week {part}.{n}" for part, count in enumerate((40, 30)) for n in range(count)]
    tables = table_tags(path)
    assert len(tables) == 1
    table = tables[0]
    assert len(table["pages"]) == 4
    assert table["/Caption"] == [squeeze("Doses by week")]
    assert table["/THead"] == [[("/TH", "/Column", cell) for cell in ("Week", "Morning", "Evening")]]
    assert [row[0][2] for row in table["/TBody"]] == [squeeze(cell) for cell in body]
    # The footer once, after the last row; the data cells of every page name the first page's header cells.
    assert table["/TFoot"] == [[("/TH", "/Row", "Total"), ("/TD", "", "Allmornings"), ("/TD", "", "Allevenings")]]
    assert_repeats_are_artifacts(path, 0, {1, 2, 3}, "WeekMorningEvening")
    assert_repeats_are_artifacts(path, 3, {0, 1, 2}, "TotalAllmorningsAllevenings")
    assert_headers_are_kept_cells(path, 3)
    assert_tree_and_parent_tree_agree(path)
    assert_validators_pass(path)


def test_a_table_on_one_page_is_left_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    html = captioned((5,))
    merged = render(html, tmp_path / "merged.pdf").read_bytes()
    monkeypatch.setattr(pdf_module, "merge_split_tables", lambda document, pdf: None)
    untouched = render(html, tmp_path / "untouched.pdf").read_bytes()
    assert merged == untouched
    assert len(table_tags(tmp_path / "merged.pdf")) == 1


def test_without_the_merge_weasyprint_tags_two_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the tests above guard against: WeasyPrint's own tags of a table over two pages.
    monkeypatch.setattr(pdf_module, "merge_split_tables", lambda document, pdf: None)
    path = render(captioned((40,)), tmp_path / "unmerged.pdf")
    tables = table_tags(path)
    assert len(tables) == 2
    assert [len(table["/THead"]) for table in tables] == [1, 1]
