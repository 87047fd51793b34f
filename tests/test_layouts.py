"""Print layouts: page sizes, the tri-fold's panels, large print, bleed and crop marks, QR codes."""

from __future__ import annotations

import collections
import itertools
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pdfplumber
import pypdf
import pytest
from conftest import ROOT, TODAY, Invoke, replace_in
from pdfcheck import lines
from PIL import Image

from handouts.layouts import LAYOUTS, page_bleed_pt, parse_length

PANEL = 792 / 3
WEBSITE = "https://example.org/maple-street"


def build(*args: str, root: Path = ROOT, out: Path) -> Path:
    """Build with the CLI and return the PDF path, failing loudly on an error."""
    from click.testing import CliRunner

    from handouts.cli import cli

    result = CliRunner().invoke(
        cli, ["--root", str(root), "--today", TODAY.isoformat(), "build", *args, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Render each layout once from the shipped project."""
    out = tmp_path_factory.mktemp("layouts")
    return {
        "letter": build("--sections", "detox", out=out / "letter.pdf"),
        "a4": build("--layout", "a4", "--sections", "detox", out=out / "a4.pdf"),
        "large-print": build("--layout", "large-print", "--sections", "mat,overdose-safety", out=out / "lp.pdf"),
        "trifold": build("--layout", "trifold", "--sections", "mat,overdose-safety,detox", out=out / "tri.pdf"),
    }


def panel_text(path: Path, page: int, panel: int) -> str:
    """Return the text poppler finds inside one third of a landscape page."""
    out = subprocess.run(
        [
            "pdftotext",
            "-f",
            str(page),
            "-l",
            str(page),
            "-r",
            "72",
            "-x",
            str(round(panel * PANEL)),
            "-y",
            "0",
            "-W",
            str(round(PANEL)),
            "-H",
            "612",
            str(path),
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return re.sub(r"\s+", " ", out)


def font_sizes(path: Path, pages: range | None = None) -> collections.Counter[float]:
    """Count characters by their effective font size in points."""
    sizes: collections.Counter[float] = collections.Counter()

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            sizes[round(size * math.hypot(tm[0], tm[1]) * math.hypot(cm[0], cm[1]), 1)] += len(text.strip())

    reader = pypdf.PdfReader(path)
    for number in pages or range(len(reader.pages)):
        reader.pages[number].extract_text(visitor_text=visit)
    return sizes


def render_png(path: Path, page: int, dpi: int, tmp_path: Path) -> Image.Image:
    """Rasterize one page with poppler, as a person would see it."""
    stem = tmp_path / f"page-{page}-{dpi}"
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", "-f", str(page), "-l", str(page), "-singlefile", str(path), str(stem)],
        check=True,
    )
    return Image.open(f"{stem}.png").convert("RGB")


@pytest.mark.parametrize(
    ("layout", "size", "pages"),
    [
        ("letter", (612, 792), None),
        ("a4", (595, 842), None),
        ("large-print", (612, 792), None),
        ("trifold", (792, 612), 2),
    ],
)
@pytest.mark.render
def test_page_size_count_and_tagging(
    pdfs: dict[str, Path], layout: str, size: tuple[int, int], pages: int | None
) -> None:
    reader = pypdf.PdfReader(pdfs[layout])
    for page in reader.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == size
    if pages is not None:
        assert len(reader.pages) == pages
    catalog: Any = reader.trailer["/Root"]
    assert catalog["/MarkInfo"]["/Marked"] == pypdf.generic.BooleanObject(True)
    assert "/StructTreeRoot" in catalog and catalog["/Lang"] == "en"
    assert "pdfuaid:part" in catalog["/Metadata"].get_object().get_data().decode()


def test_trifold_fold_order(pdfs: dict[str, Path]) -> None:
    path = pdfs["trifold"]
    flap, back, cover = (panel_text(path, 1, i) for i in range(3))
    # Outside sheet, left to right: inside flap, back panel, cover. The flap, the first panel a
    # reader sees on opening, is for the patient: key points and a plan to fill in.
    assert flap.strip().startswith("Key points • Methadone and buprenorphine can save your life.")
    assert "My plan My clinic: Maple Street Example Clinic, (802) 555-0142" in flap
    assert "Where I keep my naloxone:" in flap
    assert "Reviewers named" not in flap and "In this brochure" not in flap
    assert "Contact Maple Street (example)" in back
    assert "Where to get help" in back and "1-800-662-4357" in back and "988" in back
    # The caption prints the address without https:// (the link keeps it).
    assert f"Scan the code or visit {WEBSITE.removeprefix('https://')}" in back
    assert "This handout does not replace advice from your care team. Ask us for the list of sources." in back
    # The line every page's foot prints elsewhere; reviewers are document control, in the record.
    assert re.search(
        r"Sample · Maple Street \(example\) · Handout [2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}\s*$", back
    )
    assert "Avery Example" not in back
    assert "Opioid use disorder: treatment and support" in cover and "Maple Street Example Clinic" in cover
    assert (
        "IN THIS BROCHURE • Medicines for opioid use disorder • Overdose safety • Withdrawal and detox "
        "• Where to get help" in cover
    )
    # Inside sheet: the briefs flow left to right through the three panels, in order.
    inside = [panel_text(path, 2, i) for i in range(3)]
    assert inside[0].strip().startswith("Medicines for opioid use disorder You can choose from three medicines.")
    text = " ".join(inside)
    assert text.index("Overdose safety Naloxone") < text.index("Withdrawal and detox Withdrawal is the sick feeling")
    assert "Where to get help" not in text


@pytest.mark.render
def test_trifold_text_is_never_below_nine_points_but_the_review_line(pdfs: dict[str, Path]) -> None:
    sizes = font_sizes(pdfs["trifold"])
    assert sizes.most_common(1)[0][0] == 10.0  # body text
    small = [line for line in lines(pdfs["trifold"], columns=3) if line.size < 9]
    # The review line: on the back panel, at least 8 pt, at most four lines.
    assert small and all(line.size > 7.99 and line.page == 0 and PANEL <= line.x0 < 2 * PANEL for line in small)
    assert len(small) == 1
    assert re.fullmatch(
        r"Sample · Maple Street \(example\) · Handout\s[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}", small[0].text
    )


@pytest.mark.render
def test_large_print_body_size_headings_and_line_spacing(pdfs: dict[str, Path]) -> None:
    sizes = font_sizes(pdfs["large-print"])
    assert min(sizes) >= 18, sizes
    assert sizes.most_common(1)[0][0] == 18.0
    assert max(sizes) >= 24  # headings larger than the body
    # Line spacing: the most common gap between baselines of body lines is at least 1.25 x 18 pt,
    # the least large-print guidance allows (1.5 took 21 pages for what now takes 14).
    reader = pypdf.PdfReader(pdfs["large-print"])
    baselines: list[float] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip() and round(size * math.hypot(tm[0], tm[1]) * math.hypot(cm[0], cm[1])) == 18:
            baselines.append(round(tm[5] * cm[3] + cm[5], 1))

    reader.pages[1].extract_text(visitor_text=visit)
    ys = sorted(set(baselines), reverse=True)
    gaps = collections.Counter(round(a - b) for a, b in itertools.pairwise(ys))
    assert gaps.most_common(1)[0][0] >= 22.5


@pytest.mark.render
def test_qr_code_decodes_to_the_brand_website(pdfs: dict[str, Path], tmp_path: Path) -> None:
    import zxingcpp

    letter_pages = [re.sub(r"\s+", " ", p.extract_text()) for p in pypdf.PdfReader(pdfs["letter"]).pages]
    contact_page = next(n for n, text in enumerate(letter_pages, 1) if "My plan" in text)
    for path, page in ((pdfs["trifold"], 1), (pdfs["letter"], contact_page)):
        codes = zxingcpp.read_barcodes(render_png(path, page, 150, tmp_path))
        assert [(c.format.name, c.text) for c in codes] == [("QRCode", WEBSITE)]


@pytest.mark.render
def test_qr_url_field_overrides_the_website(project: Path, tmp_path: Path) -> None:
    import zxingcpp

    replace_in(
        project / "brands/example-clinic/brand.toml",
        'logo = "logo.svg"',
        'qr_url = "https://example.org/qr?src=flyer"\nlogo = "logo.svg"',
    )
    path = build("--layout", "trifold", "--sections", "detox", root=project, out=tmp_path / "t.pdf")
    codes = zxingcpp.read_barcodes(render_png(path, 1, 150, tmp_path))
    assert [c.text for c in codes] == ["https://example.org/qr?src=flyer"]


@pytest.mark.render
def test_trifold_overflow_fails_saying_how_much_and_writes_nothing(run: Invoke, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "tri.pdf"
    longer = "Lock up doses you take home. Keep them out of sight. " * 40
    replace_in(project / "content/en/mat.md", "  - Pregnant? Keep taking", f"  - {longer}\n  - Pregnant? Keep taking")
    result = run("build", "--layout", "trifold", "-o", str(out))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == (
        "Error: trifold: the chosen content does not fit on 2 sheets; "
        "choose fewer sections (--sections) or use --layout letter"
    )
    assert re.fullmatch(
        r"--layout: the inside panels \(your sections\): \d+\.\d in too long "
        r"\(about \d+ lines of text, \d+\.\d of a panel\)",
        lines[-1],
    ), lines
    assert not out.exists()


@pytest.mark.render
def test_trifold_overflow_of_the_flap_is_named(run: Invoke, tmp_path: Path) -> None:
    note = "Remember to bring your medicine list and your questions. " * 10
    result = run(
        "build", "--layout", "trifold", "--sections", "detox", "--note", note[:600], "-o", str(tmp_path / "t.pdf")
    )
    assert result.exit_code == 1
    assert "--layout: the inside flap (key points and 'My plan'): " in result.output
    assert "Remember to bring" not in result.output


def test_no_print_flags_means_no_bleed(pdfs: dict[str, Path]) -> None:
    page = pypdf.PdfReader(pdfs["letter"]).pages[0]
    assert list(page.mediabox) == list(page.trimbox) == list(page.bleedbox) == [0, 0, 612, 792]


@pytest.mark.parametrize(
    ("flags", "media", "bleed"),
    [
        (("--bleed", "0.125in", "--crop-marks"), [-27, -27, 639, 819], [-9, -9, 621, 801]),
        (("--bleed", "3mm"), [-8.5, -8.5, 620.5, 800.5], [-8.5, -8.5, 620.5, 800.5]),
        (("--crop-marks",), [-18, -18, 630, 810], [0, 0, 612, 792]),
    ],
)
@pytest.mark.render
def test_bleed_and_trim_boxes(tmp_path: Path, flags: tuple[str, ...], media: list[float], bleed: list[float]) -> None:
    page = pypdf.PdfReader(build("--sections", "detox", *flags, out=tmp_path / "b.pdf")).pages[0]
    assert [round(float(v), 2) for v in page.mediabox] == media
    assert [round(float(v), 2) for v in page.bleedbox] == bleed
    assert [float(v) for v in page.trimbox] == [0, 0, 612, 792]


@pytest.mark.render
def test_color_runs_into_the_bleed_and_crop_marks_sit_outside_it(tmp_path: Path) -> None:
    path = build(
        "--layout", "trifold", "--sections", "detox", "--bleed", "0.125in", "--crop-marks", out=tmp_path / "b.pdf"
    )
    image = render_png(path, 1, 72, tmp_path)  # 1 px = 1 pt; the media box starts 27 pt outside the trim
    assert image.size == (792 + 54, 612 + 54)
    trim = 27
    blue = (0x1D, 0x4E, 0x89)

    def near(pixel: tuple[int, int, int], color: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 12 for a, b in zip(pixel, color, strict=True))

    # The cover's color reaches 9 pt past the top, right and bottom trim edges, and stops there.
    assert near(image.getpixel((trim + 700, trim - 5)), blue)
    assert near(image.getpixel((trim + 792 + 5, trim + 300)), blue)
    assert near(image.getpixel((trim + 700, trim + 612 + 5)), blue)
    assert near(image.getpixel((trim + 700, trim - 12)), (255, 255, 255))

    # A crop mark on the right trim line runs from the sheet's edge and stops before the bleed.
    def dark(x: int, y: int) -> bool:
        return max(image.getpixel((x, y))) < 200

    assert all(any(dark(x, y) for x in range(trim + 790, trim + 794)) for y in range(0, 12))
    assert not any(dark(x, y) for x in range(trim + 790, trim + 794) for y in range(15, trim - 9))
    assert not any(dark(trim + 792 + 14, y) for y in range(0, 12))


BLUE_PDF = (0.113725, 0.305882, 0.537255)  # the example brand's primary color, #1D4E89, as pdfplumber reads it
Box = tuple[float, float, float, float]  # x0, top, x1, bottom, as pdfplumber gives them


@dataclass(frozen=True)
class SheetLines:
    """What one page draws around its folds, in pdfplumber's coordinates."""

    trim: Box
    bleed: Box
    outside: list[Box]  # lines that lie outside the trim box: crop and fold marks
    dashed: list[Box]  # the dashed ones among them
    at_folds: list[Box]  # vertical lines anywhere at a fold's x
    blue_left: list[float]  # left edges of brand-colored fills


def sheet_lines(path: Path) -> list[SheetLines]:
    """Read each page's lines, boxes and brand-colored fills with pdfplumber."""
    found = []
    folds = LAYOUTS["trifold"].folds_pt
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            left = page.trimbox[0]
            lines = [((o["x0"], o["top"], o["x1"], o["bottom"]), bool(o["dash"][0])) for o in page.lines]
            outside = [(box, dashed) for box, dashed in lines if not overlaps(box, page.trimbox)]
            found.append(
                SheetLines(
                    trim=page.trimbox,
                    bleed=page.bleedbox,
                    outside=[box for box, _ in outside],
                    dashed=[box for box, dashed in outside if dashed],
                    at_folds=[
                        box
                        for box, _ in lines
                        if box[0] == box[2] and any(abs(box[0] - left - fold) < 0.5 for fold in folds)
                    ],
                    blue_left=[o["x0"] - left for o in page.rects if o["non_stroking_color"] == BLUE_PDF],
                )
            )
    return found


def overlaps(box: Box, area: Box, margin: float = 0.0) -> bool:
    """Tell whether a line's box reaches into an area (grown by `margin` on every side)."""
    return not (
        box[2] <= area[0] - margin
        or box[0] >= area[2] + margin
        or box[3] <= area[1] - margin
        or box[1] >= area[3] + margin
    )


@pytest.mark.render
@pytest.mark.parametrize("flags", [("--bleed", "0.125in"), ("--bleed", "0.5in"), ()])
def test_print_shop_trifold_has_fold_marks_outside_the_trim_and_bleed(tmp_path: Path, flags: tuple[str, ...]) -> None:
    folds = LAYOUTS["trifold"].folds_pt
    assert folds == (PANEL, 2 * PANEL)  # equal thirds; the template sets the CSS --panel from the same table
    path = build("--layout", "trifold", "--sections", "detox", *flags, "--crop-marks", out=tmp_path / "shop.pdf")
    sheets = sheet_lines(path)
    assert len(sheets) == 2
    for sheet in sheets:
        left, top, _, bottom = sheet.trim
        # One short dashed line above and one below the trim at each fold, on both sides of the sheet.
        marks = sorted((x0 - left, "above" if low <= top else "below") for x0, _, _, low in sheet.dashed)
        assert marks == [(264.0, "above"), (264.0, "below"), (528.0, "above"), (528.0, "below")]
        assert all(x0 == x1 and 9 <= low - high <= 40 for x0, high, x1, low in sheet.dashed)
        # Every mark, fold or crop, stays at least 3 pt clear of the bleed, which is printed and cut off.
        assert len(sheet.outside) == 8 + 4 and not any(overlaps(box, sheet.bleed, 2.9) for box in sheet.outside)
        # Inside the trim nothing is drawn at the folds.
        assert all(high >= bottom or low <= top for _, high, _, low in sheet.at_folds)
    # The cover's color starts at the second fold: the marks and the panels come from one number.
    assert sheets[0].blue_left == [folds[1]]


@pytest.mark.render
@pytest.mark.parametrize("flags", [(), ("--bleed", "0.125in")])
def test_trifold_without_crop_marks_has_no_fold_marks(
    pdfs: dict[str, Path], tmp_path: Path, flags: tuple[str, ...]
) -> None:
    path = (
        build("--layout", "trifold", "--sections", "detox", *flags, out=tmp_path / "t.pdf")
        if flags
        else pdfs["trifold"]
    )
    sheets = sheet_lines(path)
    assert len(sheets) == 2
    assert [(s.outside, s.at_folds) for s in sheets] == [([], []), ([], [])]
    # The office copy has no bleed; the bleed-only copy has one, with no marks in or around it.
    assert [s.bleed != s.trim for s in sheets] == [bool(flags)] * 2
    assert sheets[0].blue_left == [LAYOUTS["trifold"].folds_pt[1]]


def test_marks_clear_a_wide_bleed() -> None:
    assert page_bleed_pt(0, marks=False) == 0
    assert page_bleed_pt(9, marks=False) == 9
    # WeasyPrint draws marks over the outer half of the @page bleed; the inner half covers the asked-for bleed.
    assert page_bleed_pt(0, marks=True) == 18
    assert page_bleed_pt(9, marks=True) == 27
    assert page_bleed_pt(36, marks=True) == 36 + 42
    assert all(page_bleed_pt(b, marks=True) / 2 >= b + 3 for b in (0, 9, 18, 30, 36))


def test_parse_length() -> None:
    assert parse_length("0.125in") == 9
    assert parse_length("3mm") == pytest.approx(8.504, abs=0.001)
    assert parse_length("9pt") == 9
    with pytest.raises(ValueError, match=re.escape("expected a length like 0.125in")):
        parse_length("1/8 inch")
    with pytest.raises(ValueError, match=re.escape("more than the 0.5in")):
        parse_length("2in")


def test_bad_bleed_is_a_usage_error(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--bleed", "lots", "-o", str(tmp_path / "x.pdf"))
    assert result.exit_code == 2
    assert "expected a length like 0.125in, 3mm or 9pt, got 'lots'" in result.output
