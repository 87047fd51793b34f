"""The one date parser: exactly YYYY-MM-DD, with exact messages."""

from __future__ import annotations

import datetime as dt

import pytest

from handouts.dates import parse_date


def test_a_real_date_parses() -> None:
    assert parse_date("2026-11-25") == dt.date(2026, 11, 25)
    assert parse_date("2028-02-29") == dt.date(2028, 2, 29)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Both are 10-character-or-so strings that date.fromisoformat takes on Python 3.11.
        ("2026-W48-1", "expected YYYY-MM-DD, got '2026-W48-1'"),
        ("20261125", "expected YYYY-MM-DD, got '20261125'"),
        ("2026-11-25T00:00", "expected YYYY-MM-DD, got '2026-11-25T00:00'"),
        ("2026-11-25\n", "expected YYYY-MM-DD, got '2026-11-25\\n'"),
        ("2026-1-25", "expected YYYY-MM-DD, got '2026-1-25'"),
        ("２０２６-11-25", "expected YYYY-MM-DD, got '２０２６-11-25'"),
        ("", "expected YYYY-MM-DD, got ''"),
        ("2026-02-30", "no such date: '2026-02-30'"),
        ("2026-13-01", "no such date: '2026-13-01'"),
        ("2026-00-10", "no such date: '2026-00-10'"),
    ],
)
def test_anything_else_is_refused_saying_why(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_date(text)
    assert str(info.value) == message
