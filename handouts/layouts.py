"""Page layouts: their sizes and the rules that say whether the content fits."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .pdf import RenderedPdf

POINTS_PER = {"in": 72.0, "mm": 72 / 25.4, "pt": 1.0}
MAX_BLEED_PT = 36.0  # half an inch: more is a mistake, not a print-shop request
CROP_MARK_ZONE_PT = 18.0  # room outside the bleed for the marks, 0.25 in


@dataclass(frozen=True)
class Layout:
    """One page layout: paper size, and for folded layouts what must fit on which sheet."""

    name: str
    width_pt: float
    height_pt: float
    description: str
    pages: int | None = None
    # region (a data-region in the template) -> (how many panels it may fill, how to name it)
    regions: dict[str, tuple[int, str]] = field(default_factory=dict)
    panel_width_pt: float = 0.0
    panel_height_pt: float = 0.0
    line_height_pt: float = 0.0
    # A folded brochure prints each section's brief instead of its full text.
    briefs: bool = False
    # The review record is a layout for the clinic's files, never a patient handout.
    for_patients: bool = True
    # What a file of this layout is called in place of `{layout}-{sections}`, if anything.
    stem: str = ""


TRIFOLD_MARGIN_PT = 0.4 * 72  # styles/trifold.css @page margin
LAYOUTS = {
    "letter": Layout("letter", 612, 792, "US Letter, portrait"),
    "a4": Layout("a4", 595.28, 841.89, "ISO A4, portrait"),
    "large-print": Layout("large-print", 612, 792, "US Letter, 18 pt text for low-vision readers"),
    "trifold": Layout(
        "trifold",
        792,
        612,
        "US Letter landscape brochure: two sheets of three panels",
        pages=2,
        regions={
            "cover": (1, "the cover panel"),
            "flap": (1, "the inside flap (key points and 'My plan')"),
            "back": (1, "the back panel (contact details and 'Where to get help')"),
            "inside": (3, "the inside panels (your sections)"),
        },
        panel_width_pt=792 / 3,
        panel_height_pt=612 - 2 * TRIFOLD_MARGIN_PT,
        line_height_pt=10 * 1.35,  # body text in styles/trifold.css
        briefs=True,
    ),
    "record": Layout(
        "record", 612, 792, "US Letter review record for document control", for_patients=False, stem="review-record"
    ),
}
# The layouts `build --layout` and job files offer.
PATIENT_LAYOUTS = tuple(name for name, layout in LAYOUTS.items() if layout.for_patients)


def parse_length(text: str) -> float:
    """Parse a print length such as 0.125in, 3mm or 9pt into points."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(in|mm|pt)\s*", text)
    if not match:
        raise ValueError(f"expected a length like 0.125in, 3mm or 9pt, got {text!r}")
    points = float(match[1]) * POINTS_PER[match[2]]
    if points > MAX_BLEED_PT:
        raise ValueError(f"{text} is more than the 0.5in this tool allows")
    return points


def fit_problems(layout: Layout, rendered: RenderedPdf) -> list[str]:
    """Return how far each region of a folded layout runs past its sheet, in words a user can act on."""
    if layout.pages is None or rendered.pages == layout.pages:
        return []
    found = []
    for region, (panels, label) in layout.regions.items():
        # A region that does not fit pushes the others around, so judge each by the height
        # its own text needs, wherever it landed, against the panels it is given.
        extents = [e for e in rendered.regions if e.region == region]
        if not extents:
            continue
        needed = sum(e.height for e in extents)
        # Flowing text also loses room to headings kept with their paragraphs; what spilled
        # past the region's own sheet counts too.
        first_page = min(e.page for e in extents)
        spilled = sum(e.height for e in extents if e.page > first_page) if panels > 1 else 0.0
        over = max(needed - panels * layout.panel_height_pt, spilled)
        if over > 0:
            lines = math.ceil(over / layout.line_height_pt)
            share = over / layout.panel_height_pt
            panels_note = f", {share:.1f} of a panel" if share >= 0.1 else ""
            found.append(f"{label}: {over / 72:.1f} in too long (about {lines} lines of text{panels_note})")
        elif len({e.page for e in extents}) > 1:
            # Its text alone fits, but with the space between its blocks it does not.
            found.append(f"{label}: a line or two too long")
    if not found:
        found.append(f"the content needs {rendered.pages} sheets instead of {layout.pages}")
    return found
