"""Checks shared by every input kind: unknown fields, text, dates, versions, URLs, ids, UTF-8."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..dates import parse_date
from ..errors import Problem

SEMVER_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")


ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def unknown_fields(
    path: str, data: Mapping[Any, Any], allowed: Sequence[str], prefix: str = "", noun: str = "field"
) -> list[Problem]:
    """Return one problem per key of `data` that is not an allowed field."""
    return [
        Problem(path, f"{prefix}{key}", f"unknown {noun}; expected one of {', '.join(allowed)}")
        for key in sorted(set(data) - set(allowed), key=str)
    ]


def date_field(path: str, field: str, value: Any, problems: list[Problem]) -> dt.date | None:
    if not isinstance(value, str):
        problems.append(Problem(path, field, f"expected YYYY-MM-DD, got {str(value)!r}"))
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        problems.append(Problem(path, field, str(exc)))
        return None


def text_field(path: str, field: str, value: Any, problems: list[Problem]) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, field, f"expected non-empty text, got {value!r}"))
        return ""
    return value.strip()


def is_valid_id(value: str) -> bool:
    """Tell whether a section or brand id is lowercase words joined by hyphens."""
    return bool(ID_RE.match(value))


def decode(path: str, data: bytes) -> tuple[str | None, list[Problem]]:
    """Decode a file's bytes as UTF-8, or say where it is not."""
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return None, [Problem(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]


def tables(
    path: str, field: str, items: Sequence[Any], allowed: Sequence[str], expected: str, problems: list[Problem]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield each table of a list with where it is (`sources[2]`); report items not tables or with unknown fields."""
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(path, where, expected))
            continue
        problems += unknown_fields(path, item, allowed, f"{where}.")
        yield where, item
