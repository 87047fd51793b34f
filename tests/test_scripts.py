"""Chinese, Vietnamese and Arabic handouts on real renders: every word printed in the bundled fonts, Arabic
right to left with its numbers left to right, a mirrored Arabic brochure, the same bytes on any machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pikepdf
import pytest
from conftest import ROOT, TODAY, Invoke

from handouts.layouts import LAYOUTS
from handouts.readability import ANY_WORD_RE, sentences, text_blocks

LANGUAGES = ("zh-Hans", "vi", "ar")
# What WeasyPrint names the bundled families in a PDF: any other font came from the machine.
BUNDLED = ("Atkinson-Hyperlegible", "Noto-Sans", "Noto-Naskh-Arabic", "Noto-Sans-SC")
# Never printed as glyphs: spaces, the zero-width space and word joiner in addresses, bidi marks.
UNPRINTED = re.compile(r"[\s\u200b\u2060\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def content_text(pdf: Path, layout: str = "letter") -> str:
    """Return the text pdftotext reads inside the page margins: the body, without the marker and footer."""
    box = LAYOUTS[layout]
    top, bottom = (float(m.removesuffix("in")) * 72 for m in (box.margin[0], box.margin[2]))
    crop = [
        "-x",
        "0",
        "-y",
        str(int(top) + 1),
        "-W",
        str(int(box.width_pt)),
        "-H",
        str(int(box.height_pt - top - bottom) - 2),
    ]
    out = subprocess.run(["pdftotext", *crop, str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return unicodedata.normalize("NFC", out)


def source_sentences(language: str) -> list[tuple[str, str]]:
    """Return every sentence of every section body of a language, with its file's name."""
    found = []
    for path in sorted((ROOT / "content" / language).glob("*.md")):
        body = path.read_text(encoding="utf-8").split("\n---\n", 1)[1]
        found += [(path.name, s) for s in sentences(text_blocks(body), ANY_WORD_RE)]
    return found


def without_marks(text: str) -> str:
    """Drop combining marks: pdftotext gives an Arabic letter's marks in the order it drew them."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


@pytest.fixture(scope="module")
def letters(shipped: Callable[..., Path]) -> dict[str, Path]:
    return {language: shipped("--lang", language) for language in LANGUAGES}


@pytest.mark.render
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sentence_prints_in_the_bundled_fonts_with_the_pdf_in_its_language(
    letters: dict[str, Path], language: str
) -> None:
    pdf = letters[language]
    text = content_text(pdf)
    assert "\ufffd" not in text
    source = source_sentences(language)
    assert len(source) > 200
    if language == "ar":
        # pdftotext moves punctuation around a Latin run inside Arabic ("(CBT)." reads "( .)CBT"):
        # every word and number of every sentence, without its punctuation, is compared instead.
        printed = set(re.findall(r"\w+", without_marks(text)))
        missing = [(name, w) for name, s in source for w in re.findall(r"\w+", without_marks(s)) if w not in printed]
    else:
        printed_text = UNPRINTED.sub("", text)
        missing = [
            (name, s) for name, s in source if UNPRINTED.sub("", unicodedata.normalize("NFC", s)) not in printed_text
        ]
    assert missing == []
    with pikepdf.open(pdf) as document:
        assert document.Root.Lang == language
        fonts = {str(font.BaseFont): font for page in document.pages for font in page.Resources.Font.values()}
        for name, font in fonts.items():
            assert name.split("+", 1)[1].removesuffix("-Bold") in BUNDLED, name
            descriptor = font.DescendantFonts[0].FontDescriptor
            assert "/FontFile2" in descriptor or "/FontFile3" in descriptor, f"{name} is not embedded"
    expected = {"zh-Hans": "Noto-Sans-SC", "vi": "Noto-Sans", "ar": "Noto-Naskh-Arabic"}[language]
    assert any(name.split("+")[1] == expected for name in fonts), fonts


def word_boxes(pdf: Path, page_number: int) -> list[dict[str, object]]:
    """Return pdfplumber's words of a page: glyphs in drawing order, so an Arabic word reads backwards."""
    with pdfplumber.open(pdf) as document:
        return list(document.pages[page_number].extract_words(keep_blank_chars=False, use_text_flow=False))


def find_word(words: list[dict[str, object]], word: str) -> dict[str, object]:
    """Return the first box holding a word, drawn left to right or (Arabic) right to left."""
    for box in words:
        text = unicodedata.normalize("NFC", str(box["text"]))
        if word in (text, text[::-1]):
            return box
    raise AssertionError(f"{word!r} not on the page: {[w['text'] for w in words][:40]}")


def visual_lines(pdf: Path, page_number: int) -> list[tuple[str, list[float]]]:
    """Return each line of a page as its glyphs read left to right on paper, with where each starts."""
    with pdfplumber.open(pdf) as document:
        chars = document.pages[page_number].chars
    lines: dict[int, list[dict[str, object]]] = {}
    for char in chars:
        # By baseline: Arabic and Latin glyphs of one line have boxes of different heights.
        lines.setdefault(-round(float(char["matrix"][5])), []).append(char)  # type: ignore[index]
    found = []
    for _, line in sorted(lines.items()):
        line.sort(key=lambda c: float(c["x0"]))  # type: ignore[arg-type]
        found.append(("".join(str(c["text"]) for c in line), [float(c["x0"]) for c in line]))  # type: ignore[arg-type]
    return found


def x_of(lines: list[tuple[str, list[float]]], run: str) -> float:
    """Return where a run of glyphs starts on paper, read left to right."""
    for text, xs in lines:
        if run in text:
            return xs[text.index(run)]
    raise AssertionError(f"{run!r} is not on the page, left to right")


@pytest.mark.render
def test_arabic_runs_right_to_left_with_phone_numbers_and_addresses_left_to_right(letters: dict[str, Path]) -> None:
    words = word_boxes(letters["ar"], 0)
    # The title, in the order it is read: each word left of the one before it.
    title = [find_word(words, w) for w in ("العلاج", "والدعم")]
    assert float(title[0]["x0"]) > float(title[1]["x1"])  # type: ignore[arg-type]
    lines = visual_lines(letters["ar"], 0)
    # Numbers and addresses read left to right on paper: reversed, the help line would show 4357-662-800-1.
    for run in ("1-800-662-4357", "(802) 555-0142", "https://example.org/maple-street"):
        assert x_of(lines, run)
    assert not any("4357-662-800-1" in text for text, _ in lines)
    # The help line reads right to left: emergencies (911) first, at the right; treatment's number after it.
    assert x_of(lines, "911") > x_of(lines, "1-800-662-4357")
    # Arabic paragraphs are set flush right, to the right margin.
    right_edges = [xs[-1] for text, xs in lines if len(text) > 40]
    assert max(right_edges) > LAYOUTS["letter"].width_pt - 0.6 * 72 - 12


def title_x(pdf: Path, word: str) -> float:
    """Return where a word of the cover's title starts on the outside sheet."""
    return float(find_word(word_boxes(pdf, 0), word)["x0"])  # type: ignore[arg-type]


@pytest.mark.render
def test_the_arabic_brochure_opens_the_other_way(shipped: Callable[..., Path]) -> None:
    kit = ("--layout", "trifold", "--sections", "mat,overdose-safety")
    arabic, english = shipped("--lang", "ar", *kit), shipped(*kit)
    third = LAYOUTS["trifold"].width_pt / 3
    # English: flap | back | cover. Arabic: cover | back | flap.
    assert title_x(english, "Opioid") > 2 * third
    assert title_x(arabic, "والدعم") < third
    assert title_x(arabic, "النقاط") > 2 * third  # the flap's key points
    # The inside sheet reads from the right: the first brief's heading is in the right-hand panel.
    inside = word_boxes(arabic, 1)
    assert float(find_word(inside, "أدوية")["x0"]) > 2 * third  # type: ignore[arg-type]
    assert float(find_word(word_boxes(english, 1), "Medicines")["x0"]) < third  # type: ignore[arg-type]


@pytest.mark.render
def test_vietnamese_phone_numbers_and_web_addresses_are_never_broken(shipped: Callable[..., Path]) -> None:
    source = " ".join(path.read_text(encoding="utf-8") for path in (ROOT / "content/vi").glob("*.md"))
    phones = set(re.findall(r"\b1-\d{3}-\d{3}-\d{4}\b", source))
    addresses = {"FindTreatment.gov", "smartrecovery.org"} & set(re.findall(r"[\w.]+\.(?:gov|org)\b", source))
    assert len(phones) >= 2 and len(addresses) == 2
    # Every section on letter pages; on a tri-fold's narrow panels, the help brief on its back.
    brochure = ("--lang", "vi", "--layout", "trifold", "--sections", "mat,detox")
    for options, layout, wholes in (
        (("--lang", "vi"), "letter", phones | addresses),
        (brochure, "trifold", phones | {"FindTreatment.gov"}),
    ):
        pdf = shipped(*options)
        lines = [UNPRINTED.sub("", line) for line in content_text(pdf, layout).splitlines()]
        for whole in wholes:
            assert any(whole in line for line in lines), (options, whole)
        # No line ends part way through a number or an address.
        assert not [line for line in lines if re.search(r"\b1-\d{0,3}-?\d{0,3}-?$", line)], options


def build(project: Path, out: Path, *options: str, fonts_hidden: Path | None = None) -> bytes:
    """Build a handout in a fresh process, with the machine's fonts hidden from fontconfig when asked."""
    env = {**os.environ, "HANDOUTS_ROOT": str(project)}
    if fonts_hidden is not None:
        env["FONTCONFIG_FILE"] = str(fonts_hidden)
    args = [sys.executable, str(ROOT / "generate.py"), "--root", str(project), "--today", TODAY.isoformat()]
    subprocess.run([*args, "build", *options, "-o", str(out)], env=env, check=True, capture_output=True)
    return out.read_bytes()


@pytest.mark.render
def test_the_same_handout_is_the_same_bytes_with_the_machines_fonts_hidden(tmp_path: Path, project: Path) -> None:
    # A fontconfig with no font folder at all: a machine with no fonts installed. Only the bundled
    # ones, which the stylesheets load themselves, are left.
    config = tmp_path / "fonts.conf"
    config.write_text(f"<?xml version='1.0'?>\n<fontconfig><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>\n")
    for language in LANGUAGES:
        options = ("--lang", language, "--sections", "overdose-safety")
        seen = build(project, tmp_path / f"{language}-seen.pdf", *options)
        hidden = build(project, tmp_path / f"{language}-hidden.pdf", *options, fonts_hidden=config)
        assert seen == hidden, language
    # The comparison can tell: a character only a machine's font has prints differently without it.
    listed = subprocess.run(["fc-list", ":charset=2603", "family"], capture_output=True, text=True)
    if shutil.which("fc-list") and listed.stdout.strip():
        path = project / "content/vi/overdose-safety.md"
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"^title: (.*)$", r"title: \1 ☃", text, count=1, flags=re.M), encoding="utf-8")
        seen = build(project, tmp_path / "snow-seen.pdf", "--lang", "vi", "--sections", "overdose-safety")
        hidden = build(
            project, tmp_path / "snow-hidden.pdf", "--lang", "vi", "--sections", "overdose-safety", fonts_hidden=config
        )
        assert seen != hidden


DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@pytest.mark.render
@pytest.mark.skipif(
    not (DEJAVU.is_file() and DEJAVU.with_name("DejaVuSans-Bold.ttf").is_file()),
    reason="needs a font the bundled ones are not: DejaVu Sans, regular and bold",
)
def test_a_project_adds_a_font_for_a_script_the_bundled_ones_do_not_draw(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    # A character only the clinic's own font has (a stand-in for a script the tool does not ship).
    path = project / "content/vi/overdose-safety.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"^title: (.*)$", r"title: \1 ☃", text, count=1, flags=re.M), encoding="utf-8")
    result = run("check")
    assert result.exit_code == 1 and "'☃' (U+2603) cannot be drawn by the vi fonts" in result.output
    # The project's own font: the file, its @font-face in the project's base.css, and the setting.
    # Both weights: a heading in a font with no bold face of its own would take a machine's bold.
    (project / "styles/fonts").mkdir(parents=True, exist_ok=True)
    faces = ""
    for weight, font in ((400, DEJAVU), (700, DEJAVU.with_name("DejaVuSans-Bold.ttf"))):
        shutil.copy(font, project / "styles/fonts" / font.name)
        faces += f'@font-face {{ font-family: "Clinic Sans"; src: url("fonts/{font.name}"); font-weight: {weight}; }}\n'
    css = (ROOT / "styles/base.css").read_text(encoding="utf-8")
    (project / "styles/base.css").write_text(faces + css, encoding="utf-8")
    with (project / "handouts.toml").open("a", encoding="utf-8") as settings:
        settings.write('\n[languages."vi"]\nfonts = ["Noto Sans", "Clinic Sans"]\n')
    assert run("check").exit_code == 0, run("check").output
    config = tmp_path / "fonts.conf"
    config.write_text(f"<?xml version='1.0'?>\n<fontconfig><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>\n")
    options = ("--lang", "vi", "--sections", "overdose-safety")
    seen = build(project, tmp_path / "seen.pdf", *options)
    assert build(project, tmp_path / "hidden.pdf", *options, fonts_hidden=config) == seen
    with pikepdf.open(tmp_path / "seen.pdf") as document:
        names = {str(f.BaseFont).split("+")[1] for page in document.pages for f in page.Resources.Font.values()}
    assert any(name.startswith("Clinic-Sans") for name in names), names
