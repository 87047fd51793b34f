"""The overdose response a patient acts on, as printed: CPR, when to stop giving naloxone, one
tolerance message, the captioned picture and the key points, in both languages and in the letter
and the brochure.

Every check reads a real render: its extracted text, or where its words and frames fall.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pytest
from conftest import ROOT
from pdfcheck import lines, structure, text_of

BROCHURE = ("--layout", "trifold", "--sections", "mat,overdose-safety,detox")
LANGUAGES = {"en": (), "es": ("--lang", "es")}
# The words each language uses for CPR, for the stopping point, and for the old way of saying it.
RESPONSE = {
    "en": {
        "cpr": "Start CPR: push hard and fast on the middle of",
        "stop": "until they breathe normally or help arrives",
        "goal": "The goal is normal breathing, not waking up.",
        "old": ("until they wake", "until he wakes", "until she wakes"),
        "step 4": "Help them breathe.",
        "step 5": "Give another dose if needed.",
    },
    "es": {
        "cpr": "Empiece la RCP: empuje fuerte y rápido en el centro de",
        "stop": "hasta que respire bien o llegue la ayuda",
        "goal": "La meta es que respire bien, no que despierte.",
        "old": ("hasta que despierte", "hasta que se despierte"),
        "step 4": "Ayúdele a respirar.",
        "step 5": "Dele otra dosis si hace falta.",
    },
}
# One tolerance message: after a break, the old amount can kill. Never "start small", which
# reads as safe; "much less" only beside "your old amount".
TOLERANCE = {
    "en": {
        "banned": ("small amount", "a little can kill", "start small", "start low"),
        "less": "use much less",
        "old": "old amount",
    },
    "es": {
        "banned": ("poca cantidad", "cantidad pequeña", "un poco de droga", "un poco de opioides"),
        "less": "use mucho menos",
        "old": "cantidad de antes",
    },
}
OVERDOSE_KEY_POINT = {
    "en": "Is someone hard to wake, or breathing slowly? Give naloxone and call 911. Stay with them.",
    "es": "¿Alguien no despierta o respira lento? Dele naloxona y llame al 911. Quédese a su lado.",
}
KEY_POINTS = {"en": "Key points", "es": "Puntos clave"}
FRAME = (0.85098, 0.85098, 0.85098)  # the light grey every panel of the picture is drawn in


def flat(path: Path) -> str:
    """Return a PDF's text on one line with single spaces."""
    return " ".join(text_of(path).split())


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("form", ["letter", "brochure"])
def test_the_steps_say_cpr_and_stop_at_normal_breathing(shipped: Callable[..., Path], language: str, form: str) -> None:
    options = (*LANGUAGES[language], *(BROCHURE if form == "brochure" else ()))
    text = flat(shipped(*options))
    words = RESPONSE[language]
    # The letter holds the section's steps; the brochure only its brief: both say all of it.
    assert words["cpr"] in text
    assert words["stop"] in text
    assert not [old for old in words["old"] if old in text.lower()]
    if form == "letter":
        assert words["goal"] in text
        # Step 4 says CPR, step 5 the stopping point, in that order.
        step4 = text.index(words["step 4"])
        step5 = text.index(words["step 5"], step4)
        assert step4 < text.index(words["cpr"], step4) < step5 < text.index(words["stop"], step5)


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("form", ["letter", "brochure"])
def test_one_tolerance_message(shipped: Callable[..., Path], language: str, form: str) -> None:
    options = (*LANGUAGES[language], *(BROCHURE if form == "brochure" else ()))
    text = flat(shipped(*options))
    lowered = text.lower()
    words = TOLERANCE[language]
    assert [banned for banned in words["banned"] if banned in lowered] == []
    uses = [match.start() for match in re.finditer(re.escape(words["less"]), lowered)]
    assert uses, "the message is printed"
    for start in uses:
        # The sentence before (or the same one) names the old amount: the reason to use less.
        assert words["old"] in lowered[max(0, start - 140) : start], lowered[start - 140 : start + 40]


def captions(language: str, where: str) -> list[str]:
    """Return the six captions of the picture in a section's body or brief, from its file."""
    text = (ROOT / f"content/{language}/overdose-safety.md").read_text()
    head, body = text.split("\n---\n", 1)
    source = body if where == "body" else head
    found = re.findall(r"^ *- !\[[^\]]*\]\(naloxone-step-\d\.svg\) (.+)$", source, re.MULTILINE)
    assert len(found) == 6
    return found


def panels_and_captions(path: Path) -> list[tuple[str, str]]:
    """Return, per picture panel in reading order, the caption text printed just under it."""
    found = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            frames = [
                shape
                for shape in page.rects + page.curves
                if shape.get("stroking_color") == FRAME
                and shape["height"] > 20
                and 0.7 < shape["width"] / shape["height"] < 0.95
            ]
            words = page.extract_words(extra_attrs=["size"])
            centres = [(f["x0"] + f["x1"]) / 2 for f in frames]
            for frame in sorted(frames, key=lambda f: (round(f["top"]), f["x0"])):
                centre = (frame["x0"] + frame["x1"]) / 2
                # A caption word belongs to the nearest panel above it, no other panel's centre
                # closer; its lines follow each other from just under the frame.
                mine = [
                    word
                    for word in words
                    if word["top"] >= frame["bottom"]
                    and abs((word["x0"] + word["x1"]) / 2 - centre) < frame["x1"] - frame["x0"]
                    and min(centres, key=lambda c: abs(c - (word["x0"] + word["x1"]) / 2)) == centre
                ]
                mine.sort(key=lambda w: (round(w["top"]), w["x0"]))
                under, bottom = [], frame["bottom"]
                for word in mine:
                    height = word["bottom"] - word["top"]
                    # The first line starts within a line of the frame; the next ones follow closely.
                    gap = 0.5 * height if under else height
                    if word["top"] > bottom + gap or (under and abs(word["size"] - under[0]["size"]) > 0.05):
                        break
                    under.append(word)
                    bottom = max(bottom, word["bottom"])
                # Centred within the frame: the caption's middle is its panel's middle.
                if under:
                    middle = (min(w["x0"] for w in under) + max(w["x1"] for w in under)) / 2
                    assert abs(middle - centre) < 0.25 * (frame["x1"] - frame["x0"]), [w["text"] for w in under]
                found.append((page.page_number, " ".join(word["text"] for word in under)))
    return found


@pytest.mark.parametrize("language", ["en", "es"])
def test_large_print_draws_the_six_panels_in_one_row_named_by_the_steps(
    shipped: Callable[..., Path], language: str
) -> None:
    # At 18 pt the captions would push the steps overleaf: the drawings go in one row, each named
    # by its numbered step below (tests/test_keep_together.py); the alt text still names each one.
    path = shipped(*LANGUAGES[language], "--layout", "large-print")
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            frames = [s for s in page.rects + page.curves if s.get("stroking_color") == FRAME and s["height"] > 20]
            if frames:
                assert len({round(f["top"]) for f in frames}) == 1 and len(frames) >= 6
                assert all(f["width"] >= 60 for f in frames)  # each drawing still near an inch wide
                break
        else:
            pytest.fail("no picture drawn")
    alts = [str(node.get("/Alt", "")) for node in structure(path) if node["/S"] == "/Figure"]
    assert len([alt for alt in alts if re.match(r"(Step|Paso) \d", alt)]) == 6, alts


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize(
    ("layout", "rows"),
    [("letter", 1), ("trifold", 2)],
)
def test_each_caption_prints_under_its_own_panel(
    shipped: Callable[..., Path], language: str, layout: str, rows: int
) -> None:
    # The whole handout: where the picture falls is where a page could split it.
    chosen = BROCHURE if layout == "trifold" else ("--layout", layout)
    path = shipped(*LANGUAGES[language], *chosen)
    found = panels_and_captions(path)
    assert len(found) == 6, found
    assert len({page for page, _ in found}) == 1  # the picture is never split across pages
    expected = captions(language, "brief" if layout == "trifold" else "body")
    assert [caption for _, caption in found] == expected
    # Panels sit in rows of 6 / rows, all the same size.
    with pdfplumber.open(path) as pdf:
        page = pdf.pages[found[0][0] - 1]
        frames = [shape for shape in page.rects + page.curves if shape.get("stroking_color") == FRAME]
        tops = sorted({round(frame["top"]) for frame in frames if frame["height"] > 20})
        assert len(tops) == rows


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("selection", ["all", "mat,overdose-safety", "overdose-safety"])
def test_page_one_key_points_hold_the_overdose_action(
    shipped: Callable[..., Path], language: str, selection: str
) -> None:
    chosen = () if selection == "all" else ("--sections", selection)
    found = [line for line in lines(shipped(*LANGUAGES[language], *chosen)) if line.page == 0]
    start = next(i for i, line in enumerate(found) if line.text == KEY_POINTS[language])
    box = " ".join(line.text for line in found[start + 1 : start + 16])
    assert OVERDOSE_KEY_POINT[language] in box


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_brochure_flap_holds_the_overdose_action(shipped: Callable[..., Path], language: str) -> None:
    path = shipped(*LANGUAGES[language], *BROCHURE)
    found = lines(path, columns=3)
    flap = " ".join(line.text for line in found if line.page == 0 and line.x0 < 792 / 3)
    key_points = flap[flap.index(KEY_POINTS[language]) :]
    assert OVERDOSE_KEY_POINT[language] in " ".join(key_points.split())
