"""Problems found in inputs, and the one error type the library raises."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one input file, in the shape `path: field: message`."""

    path: str
    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return f"{where}: {self.message}"


class HandoutError(Exception):
    """An input or output problem that stops a command; the CLI prints it and exits 1."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """Return only the problems that are errors."""
    return [p for p in problems if p.severity == "error"]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary(problems: Iterable[Problem]) -> str:
    """Return the closing line of a check: how many problems in how many files."""
    found = list(problems)
    n_err = len(errors(found))
    n_warn = len(found) - n_err
    files = _count(len({p.path for p in found}), "file")
    if n_err:
        warned = f" and {_count(n_warn, 'warning')}" if n_warn else ""
        return f"Aborted: {_count(n_err, 'problem')}{warned} in {files}."
    if n_warn:
        return f"OK with {_count(n_warn, 'warning')} in {files}."
    return "OK: no problems."
