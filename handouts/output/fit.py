"""Judge whether a rendered PDF fits its layout, in words a user can act on."""

from __future__ import annotations

import math

from ..errors import HandoutError, Problem
from ..layouts import Layout
from .pdf import RenderedPdf


def fit_problems(layout: Layout, rendered: RenderedPdf) -> list[str]:
    """Return how far each region of a folded layout runs past its sheet."""
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


def free_share(layout: Layout, rendered: RenderedPdf, region: str = "inside") -> float:
    """Return how many of a region's panels its text leaves free, as a share of one panel."""
    panels = layout.regions[region][0] if region in layout.regions else 0
    if not panels:
        return 0.0
    used = sum(e.height for e in rendered.regions if e.region == region)
    return max(panels * layout.panel_height_pt - used, 0.0) / layout.panel_height_pt


def require_fit(layout: Layout, rendered: RenderedPdf) -> RenderedPdf:
    """Return the rendered PDF, or refuse it with what is over when it does not fit its layout."""
    overflow = fit_problems(layout, rendered)
    if overflow:
        # Never cut or shrink text to make it fit: say what is over and what to do instead.
        raise HandoutError(
            f"{layout.name}: the chosen content does not fit on {layout.pages} sheets; "
            "choose fewer sections (--sections) or use --layout letter",
            [Problem("layout", "", line) for line in overflow],
        )
    return rendered
