"""Page layouts: a pure table of paper sizes, templates, stylesheets, margins and panels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

POINTS_PER = {"in": 72.0, "mm": 72 / 25.4, "pt": 1.0}
MAX_BLEED_PT = 36.0  # half an inch: more is a mistake, not a print-shop request
CROP_MARK_ZONE_PT = 18.0  # room outside the bleed for the marks, 0.25 in (more past a wide bleed)
MARK_CLEARANCE_PT = 3.0  # how far outside the bleed the marks stop
LENGTH_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(in|mm|pt)\s*")


def points(length: str) -> float:
    """Convert a CSS length in in, mm or pt (or a bare 0) to points."""
    if length.strip() == "0":
        return 0.0
    match = LENGTH_RE.fullmatch(length)
    if not match:
        raise ValueError(f"expected a length like 0.125in, 3mm or 9pt, got {length!r}")
    return float(match[1]) * POINTS_PER[match[2]]


@dataclass(frozen=True)
class Layout:
    """One page layout: paper, template, stylesheets, margins, body text, and what must fit where."""

    name: str
    width_pt: float
    height_pt: float
    description: str
    # The @page margin as CSS (top, sides, bottom); the template writes it, nothing else repeats it.
    margin: tuple[str, str, str]
    # Body text size in points and its line height, written by the template for the whole page.
    font_size_pt: float
    line_height: float
    pages: int | None = None
    # region (a data-region in the template) -> (how many panels it may fill, how to name it)
    regions: dict[str, tuple[int, str]] = field(default_factory=dict)
    panels: int = 0
    # A folded brochure prints each section's brief instead of its full text.
    briefs: bool = False
    # The review record is a layout for the clinic's files, never a patient handout.
    for_patients: bool = True
    # What a file of this layout is called in place of `{layout}-{sections}`, if anything.
    stem: str = ""

    @property
    def template(self) -> str:
        """Return the Jinja template that lays the handout out."""
        return f"layouts/{self.name}.html.j2"

    @property
    def stylesheets(self) -> tuple[str, ...]:
        """Return the stylesheets under styles/ the layout uses, in cascade order."""
        return ("base.css", f"{self.name}.css")

    @property
    def margin_css(self) -> str:
        """Return the margin as a CSS @page value."""
        return " ".join(self.margin)

    @property
    def line_height_pt(self) -> float:
        """Return the height of one line of body text."""
        return self.font_size_pt * self.line_height

    @property
    def panel_width_pt(self) -> float:
        """Return the width of one folded panel (0 for a flat page)."""
        return self.width_pt / self.panels if self.panels else 0.0

    @property
    def folds_pt(self) -> tuple[float, ...]:
        """Return where the sheet folds, in points from its left edge: between each two panels."""
        # Equal panels fold at the same places on both sides of the sheet; unequal ones would mirror.
        return tuple(self.panel_width_pt * n for n in range(1, self.panels))

    @property
    def panel_height_pt(self) -> float:
        """Return the height a panel's text may take: the sheet less its top and bottom margins."""
        return self.height_pt - points(self.margin[0]) - points(self.margin[2]) if self.panels else 0.0


LAYOUTS = {
    "letter": Layout("letter", 612, 792, "US Letter, portrait", ("0.55in", "0.6in", "0.7in"), 11.5, 1.28),
    "a4": Layout("a4", 595.28, 841.89, "ISO A4, portrait", ("15mm", "15mm", "18mm"), 11.5, 1.3),
    "large-print": Layout(
        "large-print", 612, 792, "US Letter, 18 pt text for low-vision readers", ("0.6in", "0.65in", "0.8in"), 18, 1.25
    ),
    "trifold": Layout(
        "trifold",
        792,
        612,
        "US Letter landscape brochure: two sheets of three panels",
        ("0.4in", "0", "0.4in"),
        10,
        1.35,
        pages=2,
        regions={
            "cover": (1, "the cover panel"),
            "flap": (1, "the inside flap (key points and 'My plan')"),
            "back": (1, "the back panel (contact details and 'Where to get help')"),
            "inside": (3, "the inside panels (your sections)"),
        },
        panels=3,
        briefs=True,
    ),
    "record": Layout(
        "record",
        612,
        792,
        "US Letter review record for document control",
        ("0.6in", "0.7in", "0.75in"),
        10,
        1.35,
        for_patients=False,
        stem="review-record",
    ),
}
# The layouts `build --layout` and job files offer.
PATIENT_LAYOUTS = tuple(name for name, layout in LAYOUTS.items() if layout.for_patients)


def parse_length(text: str) -> float:
    """Parse a print length such as 0.125in, 3mm or 9pt into points, at most half an inch."""
    length = points(text)
    if length > MAX_BLEED_PT:
        raise ValueError(f"{text} is more than the 0.5in this tool allows")
    return length


def page_bleed_pt(bleed_pt: float, marks: bool) -> float:
    """Return the CSS @page bleed: the asked-for bleed and, with marks, the zone outside it that holds them."""
    if not marks:
        return bleed_pt
    # WeasyPrint draws marks over the outer half of the whole @page bleed: that half must clear the bleed.
    return bleed_pt + max(CROP_MARK_ZONE_PT, bleed_pt + 2 * MARK_CLEARANCE_PT)
