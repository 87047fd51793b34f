"""Checks shared by every input kind: unknown fields, text, dates, versions, URLs, ids, UTF-8."""

from __future__ import annotations

import datetime as dt
import math
import re
import reprlib
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..dates import DATE_RE, parse_date
from ..errors import Problem
from ..languages import LANGUAGE_TAG_RE, is_language_code, match_language

# Patterns of whole values, used with fullmatch: `$` alone would let a trailing newline through,
# into a file name or a printed line. ASCII digits only, as in dates.
SEMVER_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")


ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


# The one way a bad value is quoted in a message: short, and safe for any value YAML or TOML can
# give. A plain repr of an alias-expanded YAML list takes exponential time, one of a deep list
# exceeds the recursion limit, and one of an int of more than 4300 digits raises. Values that are
# not text or numbers are named in the words of the file, never as Python objects: TOML reads an
# unquoted 2026-01-01 as a date, which Python would show as datetime.date(2026, 1, 1).
class _Shown(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            return f"a number of about {int(x.bit_length() * math.log10(2)) + 1} digits"
        return repr(x)

    def repr_bool(self, x: bool, level: int) -> str:
        return "true" if x else "false"

    def repr_NoneType(self, x: None, level: int) -> str:
        return "nothing"

    def repr_date(self, x: dt.date, level: int) -> str:
        return f"the date {x.isoformat()}"

    def repr_datetime(self, x: dt.datetime, level: int) -> str:
        return f"the date and time {x.isoformat()}"

    def repr_time(self, x: dt.time, level: int) -> str:
        return f"the time {x.isoformat()}"


_SHOWN = _Shown()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict = 2, 4, 4, 4
_SHOWN.maxstring, _SHOWN.maxother = 60, 60


def shown(value: Any) -> str:
    """Quote a value for a message: a short repr that is quick and cannot fail, whatever the value."""
    return _SHOWN.repr(value)


def shown_text(value: Any) -> str:
    """Quote a value as the text it was written as (a version 2 shows as '2'), short and safe."""
    # Only a number reads as the text it was written as; a date or a list is named as one.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return shown(shown(value) if number else value)


# Characters no printed one-line field may hold (a name, a title, a brand's phone): controls (Cc),
# invisible format characters (Cf: bidi embeddings, overrides, isolates and marks, zero-width
# spaces, the byte order mark), line and paragraph separators and lone surrogates. They can hide
# text or reorder a printed line, such as the review line. Soft hyphen and the zero-width joiner
# and non-joiner stay: they only break or shape a word (Persian and Indic names, emoji) and
# cannot move text.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
ALLOWED_FORMAT = frozenset("\u00ad\u200c\u200d")


# In Markdown text, only what can reorder a line: bidi embeddings, overrides and isolates, and
# controls other than tab and line endings. Marks (LRM, RLM, ALM) and zero-width spaces stay, since
# right-to-left and Thai text use them, and a mark cannot reach past its paragraph.
UNSAFE_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def char_name(char: str) -> str:
    """Name a character for a message: U+202E (RIGHT-TO-LEFT OVERRIDE)."""
    return f"U+{ord(char):04X} ({unicodedata.name(char, unicodedata.category(char))})"


def unsafe_char(text: str, *, newlines: bool = False) -> str | None:
    """Return the first character a printed field may not hold, or None; with `newlines`, line endings are allowed."""
    if text.isprintable():
        return None  # the quick answer for nearly every field
    for char in text:
        if newlines and char in "\r\n":
            continue
        if unicodedata.category(char) in UNSAFE_CATEGORIES and char not in ALLOWED_FORMAT:
            return char
    return None


def char_problem(text: str, *, newlines: bool = False) -> str | None:
    """Say why a field's text may not be printed, without quoting the text, or return None."""
    char = unsafe_char(text, newlines=newlines)
    if char is None:
        return None
    return f"contains {char_name(char)}, a control or invisible character that can hide or reorder text"


def markdown_char_problem(text: str) -> str | None:
    """Say why Markdown text may not be printed (a bidi override or a control), or return None."""
    match = UNSAFE_CHARS_RE.search(text)
    if match is None:
        return None
    return f"contains {char_name(match[0])}, a control or invisible character that can hide or reorder text"


# A reviewer's name and credentials print in the patient's "About this handout" box, which keeps to
# 8 lines; a name of 80 characters is a long one, and two such reviewers still fit.
MAX_PERSON_TEXT = 80
# Scripts that may share one name beside a single script, as in Unicode's "highly restrictive" level
# (UTS #39): Japanese, Chinese with Bopomofo, and Korean, each also with Latin.
MIXABLE_SCRIPTS = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
# Alphabets whose letters never join or ligate: a zero-width joiner or non-joiner in them only hides.
UNJOINED_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC"})
JOINERS = frozenset("\u200c\u200d")


def person_text(value: str) -> str:
    """Return a name or credentials as printed: NFKC, so a fullwidth or ligature letter is the plain one, stripped."""
    return unicodedata.normalize("NFKC", value).strip()


def letter_script(char: str) -> str | None:
    """Return the script of a letter as its Unicode name begins (LATIN, CYRILLIC, CJK), or None for other characters."""
    category = unicodedata.category(char)
    # Modifier letters (the Japanese iteration and length marks, the Hawaiian okina) go with any script.
    if not category.startswith("L") or category == "Lm":
        return None
    word = unicodedata.name(char, "").partition(" ")[0]
    return "CJK" if word == "IDEOGRAPHIC" else word or None


def person_text_problem(text: str) -> str | None:
    """Say why a reviewer's name or credentials (NFKC, stripped) may not print, without quoting it, or return None."""
    reason = char_problem(text)
    if reason is not None:
        return reason
    if len(text) > MAX_PERSON_TEXT:
        return f"{len(text)} characters; at most {MAX_PERSON_TEXT} fit the About this handout box"
    letters: dict[str, list[str]] = {}
    for char in text:
        script = letter_script(char)
        if script is not None:
            letters.setdefault(script, []).append(char)
    scripts = set(letters)
    if len(scripts) > 1 and not any(scripts <= allowed for allowed in MIXABLE_SCRIPTS):
        # The fewer letters are the odd ones out: a look-alike letter in a name of another script.
        first, odd = sorted(letters, key=lambda script: (-len(letters[script]), text.index(letters[script][0])))[:2]
        return (
            f"mixes {first.title()} and {odd.title()} letters; {char_name(letters[odd][0])} may pass for a "
            f"{first.title()} one; write it in one script"
        )
    hidden = next((char for char in text if char in JOINERS or char == "\u00ad"), None)
    if hidden is not None and (hidden == "\u00ad" or scripts <= UNJOINED_SCRIPTS):
        return f"contains {char_name(hidden)}, an invisible character this name has no use for"
    return None


def unknown_fields(
    path: str, data: Mapping[Any, Any], allowed: Sequence[str], prefix: str = "", noun: str = "field"
) -> list[Problem]:
    """Return one problem per key of `data` that is not an allowed field."""
    return [
        Problem(path, f"{prefix}{key_name(key)}", f"unknown {noun}; expected one of {', '.join(allowed)}")
        for key in sorted(set(data) - set(allowed), key=shown)
    ]


def closest(value: str, choices: Sequence[str], cutoff: float = 0.6) -> str | None:
    """Return the choice a mistyped value most likely means (difflib's ratio at least `cutoff`), or None."""
    import difflib

    close = difflib.get_close_matches(value, choices, n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(value: str, choices: Sequence[str]) -> str:
    """Return " (did you mean 'x'?)" naming the closest choice to a mistyped value, or nothing."""
    close = closest(value.lower(), choices)
    return f" (did you mean {close!r}?)" if close else ""


def key_name(key: Any) -> str:
    """Name a key in a message as written when it is short printable text, else quoted."""
    return key if isinstance(key, str) and key.isprintable() and len(key) <= 60 else shown(key)


def date_field(path: str, field: str, value: Any, problems: list[Problem]) -> dt.date | None:
    if not isinstance(value, str):
        problems.append(Problem(path, field, f"expected YYYY-MM-DD, got {shown_text(value)}"))
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        problems.append(Problem(path, field, str(exc)))
        return None


def text_field(path: str, field: str, value: Any, problems: list[Problem]) -> str:
    """Return a field's one-line text, stripped, or add why it is not printable text."""
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, field, f"expected non-empty text, got {shown(value)}"))
        return ""
    reason = char_problem(value.strip())
    if reason is not None:
        problems.append(Problem(path, field, reason))
        return ""
    return value.strip()


def parse_language(text: str, available: Sequence[str]) -> str:
    """Return the content language a code names (es, ES, es-MX, spa, sp, zh-CN), or raise ValueError saying why not."""
    found = match_language(text, tuple(available))
    if found is not None:
        return found
    if LANGUAGE_TAG_RE.fullmatch(text.strip().lower().replace("_", "-")) is None:
        raise ValueError(f"expected a language code like en, got {shown(text)}")
    have = sorted(a for a in available if is_language_code(a))
    if not have:
        raise ValueError(f"no content in language {shown(text)}: content/ has no language folder yet")
    hint = did_you_mean(text.strip(), have)
    raise ValueError(f"no content in language {shown(text)}{hint}; languages with content: {', '.join(have)}")


def next_visit_problem(visit: dt.date, today: dt.date) -> str | None:
    """Say why a next visit's date is not one to print on a handout (it has passed), or return None."""
    # The one rule for the CLI, job files and the counselor's page: a plan naming a day gone by
    # misleads the patient who reads it at home.
    if visit < today:
        return f"that day has passed; today is {today.isoformat()}"
    return None


def parse_next_visit(text: str, today: dt.date) -> dt.date:
    """Parse a next visit's YYYY-MM-DD and check it, or raise ValueError saying why without quoting it."""
    # The reason never quotes the text: a next visit is a patient's appointment.
    try:
        visit = parse_date(text.strip())
    except ValueError:
        raise ValueError(
            "no such date" if DATE_RE.fullmatch(text.strip()) else "expected a date as YYYY-MM-DD"
        ) from None
    reason = next_visit_problem(visit, today)
    if reason is not None:
        raise ValueError(reason)
    return visit


def is_valid_id(value: str) -> bool:
    """Tell whether a section or brand id is lowercase words joined by hyphens."""
    return bool(ID_RE.fullmatch(value))


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
