"""Color contrast per WCAG 2.x, for checking brand colors, and the nearest color that has enough."""

from __future__ import annotations

import colorsys

WHITE = "#ffffff"
# WCAG 2.x AA: body-size text needs 4.5:1; large text (18pt, or 14pt bold) and
# non-text marks such as heading bars need 3:1.
BODY_TEXT_RATIO = 4.5
LARGE_TEXT_RATIO = 3.0
# Halvings of the lightness range: 2**-24 is far finer than one step of a #rrggbb channel.
SEARCH_STEPS = 24


def relative_luminance(hex_color: str) -> float:
    """Return the WCAG relative luminance of a #rrggbb color."""
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """Return the WCAG contrast ratio of two #rrggbb colors, from 1 to 21."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _hex(hue: float, lightness: float, saturation: float) -> str:
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#" + "".join(f"{round(c * 255):02x}" for c in (red, green, blue))


def nearest_passing(hex_color: str, background: str, ratio: float) -> str | None:
    """Return the color of the same hue and saturation, lightness moved least, with `ratio` contrast on `background`."""
    hue, lightness, saturation = colorsys.rgb_to_hls(*(int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)))

    def passes(value: float) -> bool:
        return contrast_ratio(_hex(hue, value, saturation), background) >= ratio

    found = []
    # With hue and saturation fixed, every channel grows with lightness, so contrast changes one way
    # on each side of the background: search each side between the color and its extreme (black,
    # white), keeping `good` at a lightness that passes so the answer always does.
    for extreme in (0.0, 1.0):
        if not passes(extreme):
            continue
        good, bad = extreme, lightness
        for _ in range(SEARCH_STEPS):
            middle = (good + bad) / 2
            good, bad = (middle, bad) if passes(middle) else (good, middle)
        found.append((abs(good - lightness), _hex(hue, good, saturation)))
    return min(found)[1] if found else None
