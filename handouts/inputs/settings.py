"""Read the project's review and readability policy from handouts.toml or pyproject.toml."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..project import Limits
from .fields import shown, unknown_fields
from .files import read_toml

CONFIG_FILE = "handouts.toml"
# Each setting: (type it must have, smallest sensible value, largest).
SETTINGS: dict[str, tuple[type, float, float]] = {
    "review_interval_months": (int, 1, 60),
    "warning_window_days": (int, 0, 730),
    "max_fk_grade": (float, 1, 16),
    "max_smog": (float, 1, 20),
    "min_fernandez_huerta": (float, 0, 120),
    "min_words": (int, 0, 5000),
    "max_words": (int, 1, 5000),
    "max_brief_words": (int, 1, 5000),
}


def limits_from_data(path: str, data: dict[str, Any]) -> tuple[Limits, list[Problem]]:
    """Build Limits from a settings table, returning every problem with it."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    problems += unknown_fields(path, data, list(SETTINGS), noun="setting")
    for key, (kind, low, high) in SETTINGS.items():
        if key not in data:
            continue
        value = data[key]
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or (kind is int and not isinstance(value, int)):
            expected = "a whole number" if kind is int else "a number"
            problems.append(Problem(path, key, f"expected {expected}, got {shown(value)}"))
        elif not low <= value <= high:
            problems.append(Problem(path, key, f"expected {low:g} to {high:g}, got {shown(value)}"))
        else:
            values[key] = kind(value)
    limits = dataclasses.replace(Limits(), **values) if not problems else Limits()
    if not problems and limits.min_words > limits.max_words:
        problems.append(Problem(path, "min_words", f"{limits.min_words} is more than max_words {limits.max_words}"))
    return limits, problems


def load_limits(root: Path) -> tuple[Limits, list[Problem]]:
    """Read the policy from handouts.toml, else [tool.handouts] in pyproject.toml, else defaults."""
    for name, table in ((CONFIG_FILE, None), ("pyproject.toml", ("tool", "handouts"))):
        path = root / name
        # lexists: a settings file that is a pipe, a folder or a broken link is refused, not skipped.
        if not os.path.lexists(path):
            continue
        data: Any
        data, problems = read_toml(path, name, root=root)
        if data is None:
            return Limits(), problems
        for key in table or ():
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if table and not data:
            continue  # a pyproject.toml without [tool.handouts] sets nothing
        where = name if table is None else f"{name} [tool.handouts]"
        if not isinstance(data, dict):
            return Limits(), [Problem(where, "", "expected a table of settings")]
        return limits_from_data(where, data)
    return Limits(), []
