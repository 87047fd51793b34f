"""Pictures a handout prints: load each the way the renderer will, and say why one cannot be printed."""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

# A logo prints about an inch wide and a picture at most a page: 4096 pixels a side is more than
# any printer resolves, and keeps a small PNG from unpacking into gigabytes (a decompression bomb).
MAX_SIDE = 4096
# Bytes of one picture file: a full-page drawing or photo is well under this.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Element nesting of an SVG: drawings are a few groups deep; thousands overflow the drawing code.
MAX_SVG_DEPTH = 64
RASTER_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
ENTITIES_REFUSED = "declares XML entities; save it as plain SVG"


def image_problem(data: bytes, content_type: str) -> str | None:
    """Return why these image bytes cannot be printed whole ("is ...", "cannot ..."), or None."""
    if len(data) > MAX_IMAGE_BYTES:
        return f"is {len(data):,} bytes; at most {MAX_IMAGE_BYTES:,}"
    return _cached_problem(hashlib.sha256(data).hexdigest(), data, content_type)


@functools.lru_cache(maxsize=64)
def _cached_problem(digest: str, data: bytes, content_type: str) -> str | None:
    # Keyed by content: a warm worker checks the same logo once, and an edited file again.
    if content_type == "image/svg+xml":
        return svg_problem(data)
    if content_type in RASTER_TYPES:
        return raster_problem(data)
    return None


def raster_problem(data: bytes, noun: str = "an image") -> str | None:
    """Say why Pillow, which WeasyPrint reads raster images with, cannot decode every pixel of this one."""
    from PIL import Image, ImageFile

    # WeasyPrint tells Pillow to draw what it can of a cut-off file; here a cut-off file is refused.
    tolerant, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with warnings.catch_warnings():
            # Pillow only warns of a picture of 89 to 179 million pixels; it is as much a bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if max(image.size) > MAX_SIDE:
                    return f"is {image.size[0]} x {image.size[1]} pixels; at most {MAX_SIDE} a side"
                # Opening reads only the header; a damaged or cut-off file fails when decoded.
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"would unpack to too many pixels; at most {MAX_SIDE} a side"
    # Pillow reports damage with whatever its decoder hit (SyntaxError, OSError, ValueError, ...).
    except Exception as exc:
        return f"cannot be read as {noun} ({str(exc)[:80] or type(exc).__name__})"
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant
    return None


def svg_problem(data: bytes) -> str | None:
    """Say why WeasyPrint's XML parser would not load this SVG, or it nests too deep to draw, or None."""
    return parse_svg(data)[1]


def parse_svg(data: bytes) -> tuple[ET.Element | None, str | None]:
    """Return an SVG's root element and None, or None and why it cannot be printed (as `svg_problem`)."""
    try:
        # Entities are how XML reads other files and blows up in memory; a drawing needs none. defusedxml
        # refuses their declaration as the parser meets it, in any encoding (a byte search misses UTF-16).
        root = fromstring(data)
    except DefusedXmlException:
        return None, ENTITIES_REFUSED
    except ParseError as exc:
        return None, f"is not well-formed SVG ({exc})"
    if root.tag.rpartition("}")[2] != "svg":
        return None, "is not an SVG image"
    stack = [(root, 1)]
    while stack:
        element, level = stack.pop()
        if level > MAX_SVG_DEPTH:
            return None, f"nests elements more than {MAX_SVG_DEPTH} deep"
        stack.extend((child, level + 1) for child in element)
    return root, None
