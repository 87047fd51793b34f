"""Turn text into dates: the one parser every input goes through."""

from __future__ import annotations

import datetime as dt
import re

# ASCII digits only: `\d` would take other scripts' digits, and fromisoformat alone takes
# week dates (2026-W48-1) and compact dates (20261125).
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A time of day as a browser's time field sends it and people write it: 24-hour HH:MM.
TIME_RE = re.compile(r"[0-9]{2}:[0-9]{2}")


def parse_date(text: str) -> dt.date:
    """Parse exactly YYYY-MM-DD, or raise ValueError saying why not."""
    if not DATE_RE.fullmatch(text):
        raise ValueError(f"expected YYYY-MM-DD, got {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"no such date: {text!r}") from None


def parse_time(text: str) -> dt.time:
    """Parse exactly HH:MM (24-hour), or raise ValueError saying why not."""
    if not TIME_RE.fullmatch(text):
        raise ValueError("expected a time as HH:MM, 24-hour")
    hour, minute = int(text[:2]), int(text[3:])
    if hour > 23 or minute > 59:
        raise ValueError("no such time of day")
    return dt.time(hour, minute)


def add_months(day: dt.date, months: int) -> dt.date:
    """Return the same day `months` later, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has at least 28 days")
