"""Pictures a handout prints: load each the way the renderer will, and say why one cannot be printed."""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
import xml.etree.ElementTree as ET

# A logo or picture never needs more (5000 x 5000); a "bomb" image claims far more to exhaust memory.
MAX_IMAGE_PIXELS = 25_000_000
# Bytes of one picture file: a full-page photo at print resolution is well under this.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Element nesting of an SVG: drawings are a few groups deep; thousands overflow the drawing code.
MAX_SVG_DEPTH = 64
RASTER_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def image_problem(data: bytes, content_type: str) -> str | None:
    """Return why these image bytes cannot be printed whole, or None; decodes every pixel of a raster."""
    if len(data) > MAX_IMAGE_BYTES:
        return f"{len(data)} bytes is more than the {MAX_IMAGE_BYTES} a picture may have"
    return _cached_problem(hashlib.sha256(data).hexdigest(), data, content_type)


@functools.lru_cache(maxsize=64)
def _cached_problem(digest: str, data: bytes, content_type: str) -> str | None:
    # Keyed by content: a warm worker checks the same logo once, and an edited file again.
    if content_type == "image/svg+xml":
        return svg_problem(data)
    if content_type in RASTER_TYPES:
        return raster_problem(data)
    return None


def raster_problem(data: bytes) -> str | None:
    """Return why Pillow cannot decode every pixel of a raster image, or None."""
    from PIL import Image, ImageFile

    # WeasyPrint tells Pillow to draw what it can of a cut-off file; here a cut-off file is refused.
    tolerant, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    return f"{width} x {height} pixels is more than the {MAX_IMAGE_PIXELS:,} a picture may have"
                # Opening reads only the header; a damaged or cut-off file fails when decoded.
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"more pixels than the {MAX_IMAGE_PIXELS:,} a picture may have"
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return f"not a readable image ({exc or type(exc).__name__})"
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant
    return None


def svg_problem(data: bytes) -> str | None:
    """Return why an SVG cannot be parsed, or is nested too deeply to draw, or None."""
    # The parser WeasyPrint uses; expat refuses entity-expansion bombs on its own.
    try:
        root = ET.fromstring(data)  # noqa: S314 - expat limits entity amplification; no external entities
    except ET.ParseError as exc:
        return f"not a readable SVG image ({exc})"
    if not root.tag.endswith("svg"):
        return "not an SVG image (its root element is not <svg>)"
    depth, stack = 0, [(root, 1)]
    while stack:
        element, level = stack.pop()
        depth = max(depth, level)
        if depth > MAX_SVG_DEPTH:
            return f"elements nested more than {MAX_SVG_DEPTH} deep"
        stack.extend((child, level + 1) for child in element)
    return None
