"""Turn text into dates: the one parser every input goes through."""

from __future__ import annotations

import datetime as dt
import re

# ASCII digits only: `\d` would take other scripts' digits, and fromisoformat alone takes
# week dates (2026-W48-1) and compact dates (20261125).
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(text: str) -> dt.date:
    """Parse exactly YYYY-MM-DD, or raise ValueError saying why not."""
    if not DATE_RE.fullmatch(text):
        raise ValueError(f"expected YYYY-MM-DD, got {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"no such date: {text!r}") from None
