"""Judge a brand's logo at the size each layout prints it: text in a squeezed logo becomes unreadable."""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import tinycss2

from .errors import Problem
from .images import MAX_IMAGE_BYTES, parse_svg
from .inputs.files import find_file
from .layouts import LAYOUTS, PATIENT_LAYOUTS
from .models import Brand
from .project import Project

# Under this a printed word is hard to read even for good eyes; the layouts print nothing smaller.
MIN_LOGO_TEXT_PT = 8.0
# A logo wider (or taller) than this loses half its height in a square box, and any words with it.
MAX_LOGO_ASPECT = 2.0
# SVG's default font size (CSS "medium"), in user units: a <text> that names none prints at this.
SVG_DEFAULT_FONT_SIZE = 16.0
CSS_UNITS_PT = {"pt": 1.0, "px": 0.75, "in": 72.0, "mm": 72 / 25.4, "cm": 72 / 2.54}
# SVG lengths in user units (px): pt is 4/3 of a unit.
SVG_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
SVG_LENGTH_RE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in|em|%)?\s*")
TEXT_TAGS = ("text", "tspan", "textPath")

Slot = tuple[float, float]


def logo_slots(stylesheets: list[Path]) -> dict[str, Slot]:
    """Return each `... .logo` selector's width and height in points, as the stylesheets leave them in cascade order."""
    sizes: dict[str, dict[str, float]] = {}
    for path in stylesheets:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the asset checks name a stylesheet that cannot be read
        for rule in tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True):
            if rule.type != "qualified-rule":
                continue
            selectors = [" ".join(s.split()) for s in tinycss2.serialize(rule.prelude).split(",")]
            found = _sizes(rule.content)
            for selector in selectors:
                if selector.split(" ")[-1:] == [".logo"] and found:
                    sizes.setdefault(selector, {}).update(found)
    return {s: (size["width"], size["height"]) for s, size in sizes.items() if {"width", "height"} <= size.keys()}


def _sizes(content: list[object]) -> dict[str, float]:
    found = {}
    for item in tinycss2.parse_declaration_list(content, skip_comments=True, skip_whitespace=True):
        if getattr(item, "type", "") != "declaration" or item.lower_name not in ("width", "height"):
            continue
        tokens = [t for t in item.value if t.type != "whitespace"]
        if len(tokens) == 1 and tokens[0].type == "dimension" and tokens[0].lower_unit in CSS_UNITS_PT:
            found[item.lower_name] = float(tokens[0].value) * CSS_UNITS_PT[tokens[0].lower_unit]
    return found


def layout_slots(project: Project) -> dict[Slot, list[str]]:
    """Return each logo box size the patient layouts' stylesheets give, with the layouts that give it."""

    slots: dict[Slot, list[str]] = {}
    for name in PATIENT_LAYOUTS:
        sheets = [find_file(project.style_dirs, sheet) for sheet in LAYOUTS[name].stylesheets]
        sizes = logo_slots(sheets)
        # A layout's own stylesheet that sizes a logo sizes each one it prints (the tri-fold's cover
        # has no masthead); one that sizes none prints the base stylesheet's.
        own = logo_slots(sheets[-1:])
        for slot in dict.fromkeys(size for selector, size in sizes.items() if not own or selector in own):
            slots.setdefault(slot, []).append(name)
    return slots


def _svg_length(text: str | None, inherited: float) -> float | None:
    match = SVG_LENGTH_RE.fullmatch(text or "")
    if match is None:
        return None
    value, unit = float(match[1]), match[2] or ""
    if unit == "em":
        return value * inherited
    if unit == "%":
        return value * inherited / 100
    return value * SVG_UNITS[unit]


def _font_size(element: ET.Element, inherited: float) -> float:
    style = dict(
        (part.partition(":")[0].strip().lower(), part.partition(":")[2]) for part in element.get("style", "").split(";")
    )
    for text in (style.get("font-size"), element.get("font-size")):
        size = _svg_length(text, inherited)
        if size is not None:
            return size
    return inherited


def _text_sizes(element: ET.Element, inherited: float) -> Iterator[float]:
    # Transforms are not followed: logos rarely scale their words, and a check that guessed would mislead.
    size = _font_size(element, inherited)
    if element.tag.rpartition("}")[2] in TEXT_TAGS and (element.text or "").strip():
        yield size
    for child in element:
        yield from _text_sizes(child, size)


def svg_box(root: ET.Element) -> Slot | None:
    """Return an SVG's drawing size in user units: its viewBox, else its width and height; None if it has none."""
    box = re.split(r"[\s,]+", (root.get("viewBox") or "").strip())
    if len(box) == 4:
        try:
            width, height = float(box[2]), float(box[3])
        except ValueError:
            width = height = 0.0
    else:
        width = _svg_length(root.get("width"), SVG_DEFAULT_FONT_SIZE) or 0.0
        height = _svg_length(root.get("height"), SVG_DEFAULT_FONT_SIZE) or 0.0
    finite = math.isfinite(width) and math.isfinite(height)
    return (width, height) if finite and width > 0 and height > 0 else None


def logo_shape(data: bytes, suffix: str) -> tuple[Slot, float | None] | None:
    """Return a logo's width and height (user units or pixels) and its smallest SVG text size; None if unreadable."""
    if suffix == ".svg":
        root = parse_svg(data)[0]
        if root is None:
            return None  # the brand checks say why it cannot be printed
        box = svg_box(root)
        sizes = [size for size in _text_sizes(root, SVG_DEFAULT_FONT_SIZE) if size > 0]
        return (box, min(sizes, default=None)) if box else None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # Pillow's errors vary by format; the brand checks report an unreadable image
        return None
    return ((float(width), float(height)), None) if width and height else None


def _where(layouts: list[str], slot: Slot) -> str:
    return f"the {slot[0]:g} x {slot[1]:g} pt logo box of {', '.join(layouts)}"


def shape_problem(name: str, box: Slot, smallest: float | None, slots: dict[Slot, list[str]]) -> str | None:
    """Say how small a logo's text prints in the tightest layout box and the shape to aim for, or None."""
    width, height = box
    scales = {slot: min(slot[0] / width, slot[1] / height) for slot in slots}
    if not scales:
        return None
    slot = min(scales, key=lambda s: scales[s])
    scale = scales[slot]
    printed = f"{width * scale:.0f} x {height * scale:.0f} pt"
    if smallest is not None:
        if smallest * scale >= MIN_LOGO_TEXT_PT:
            return None
        # The text keeps its size against the logo's height: a narrower logo prints it larger.
        aspect = smallest * slot[0] / (MIN_LOGO_TEXT_PT * height)
        units = math.ceil(MIN_LOGO_TEXT_PT / scale)
        shape = f"make the logo about {aspect:.1f}:1 or narrower, or " if aspect >= 1 else ""
        return (
            f"{name} prints its smallest text (font-size {smallest:g} in a {width:g} x {height:g} drawing) at "
            f"{smallest * scale:.1f} pt in {_where(slots[slot], slot)} (it prints {printed}); text under "
            f"{MIN_LOGO_TEXT_PT:g} pt is hard to read: {shape}make that text at least {units} units"
        )
    ratio = max(width / height, height / width)
    if ratio <= MAX_LOGO_ASPECT:
        return None
    kind = "wide" if width > height else "tall"
    return (
        f"{name} is {ratio:.1f}:1 {kind}: {_where(slots[slot], slot)} prints it {printed}, so any words in it "
        f"shrink below a readable size; make the logo about {MAX_LOGO_ASPECT:g}:1 or less, with large text"
    )


def logo_problems(project: Project, brands: dict[str, Brand]) -> list[Problem]:
    """Warn for each brand logo whose text would print under 8 pt in a layout's logo box, with the shape to aim for."""
    slots = layout_slots(project)
    found = []
    for brand_id, brand in brands.items():
        # A translation may name a logo of its own.
        logos = dict.fromkeys([brand.logo, *(brand.for_language(lang).logo for lang, _ in brand.localized)])
        for logo in logos:
            path = project.brands_dir / brand_id / logo
            try:
                with path.open("rb") as handle:
                    data = handle.read(MAX_IMAGE_BYTES + 1)
            except OSError:
                continue  # the brand checks report a logo that cannot be read
            shape = logo_shape(data, path.suffix.lower()) if len(data) <= MAX_IMAGE_BYTES else None
            message = shape_problem(logo, *shape, slots) if shape is not None else None
            if message is not None:
                found.append(Problem(f"brands/{brand_id}/brand.toml", "logo", message, "warning"))
    return found
