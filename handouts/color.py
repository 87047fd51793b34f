"""Color contrast per WCAG 2.x, for checking brand colors."""

from __future__ import annotations

WHITE = "#ffffff"
# WCAG 2.x AA: body-size text needs 4.5:1; large text (18pt, or 14pt bold) and
# non-text marks such as heading bars need 3:1.
BODY_TEXT_RATIO = 4.5
LARGE_TEXT_RATIO = 3.0


def relative_luminance(hex_color: str) -> float:
    """Return the WCAG relative luminance of a #rrggbb color."""
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """Return the WCAG contrast ratio of two #rrggbb colors, from 1 to 21."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
