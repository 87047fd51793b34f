"""Time every regular expression of the package, and the Markdown paths that run them, on long hostile input.

Run from the repository root: python bench/regex.py [chars]. For each pattern and each repeated
token (" ", "a", "a.", "-", "1-", "http://", ".com", "#", "\\t", "((", "a " and more), it times the
pattern on a quarter of `chars` (default 100,000) and on all of them: linear time gives a ratio
near 4; the script marks any ratio over 8 as SUPER-LINEAR, and a linear run over 0.5 s as slow. Then
it times `check` of the shipped project with one section's body replaced by each token repeated
up to just under the section cap, and with a body twice the cap. Timings come from a shared,
noisy machine; the suite has no timed assertions.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from handouts import dates, layouts, markdown, readability
from handouts.inputs import assets, brands, catalogs, fields, frontmatter, jobs, sections
from handouts.inputs.files import SECTION_CAP
from handouts.inputs.sections import markdown_problems
from handouts.project import Project
from handouts.validation import check_project

ROOT = Path(__file__).resolve().parent.parent

TOKENS = (
    " ",
    "a",
    "a.",
    "-",
    "1-",
    "http://",
    ".com",
    "#",
    "\t",
    "((",
    "a ",
    "9",
    ".",
    "!?",
    " \t",
    "::: ",
    "[",
    "*",
    "www.a",
    "a-",
)

# Patterns written inline in functions are listed by hand with the call that uses them. A pattern
# anchored at the start gets a prefix that it matches, so the repeated token meets its later parts.
PATTERNS: dict[str, tuple[re.Pattern[str] | re.Pattern[bytes], str]] = {
    "dates.DATE_RE": (dates.DATE_RE, "fullmatch"),
    "layouts.LENGTH_RE": (layouts.LENGTH_RE, "fullmatch"),
    "markdown.BOX_LINE_RE": (markdown.BOX_LINE_RE, "findall"),
    "markdown.KEEP_WHOLE_RE": (markdown.KEEP_WHOLE_RE, "findall"),
    "markdown.URL_SCHEME_RE": (markdown.URL_SCHEME_RE, "match"),
    "readability.WORD_RE": (readability.WORD_RE, "findall"),
    "readability.SPANISH_WORD_RE": (readability.SPANISH_WORD_RE, "findall"),
    "readability.SENTENCE_END_RE": (readability.SENTENCE_END_RE, "findall"),
    "readability.SPLIT_PAIR_RE": (readability.SPLIT_PAIR_RE, "findall"),
    "readability qu/gu (inline)": (re.compile(r"([qg])u([eéií])"), "findall"),
    "readability vowels (inline)": (re.compile(r"[aeiouy]+"), "findall"),
    "readability -es/-ed (inline)": (re.compile(r"([tdscxz]|[cs]h|g)e[sd]$"), "search"),
    "brands.LANGUAGE_RE": (brands.LANGUAGE_RE, "match"),
    "brands.HEX_COLOR_RE": (brands.HEX_COLOR_RE, "match"),
    "brands.SVG_REFERENCE_RE (bytes)": (brands.SVG_REFERENCE_RE, "findall"),
    "jobs.NAME_RE": (jobs.NAME_RE, "match"),
    "sections.FINGERPRINT_RE": (sections.FINGERPRINT_RE, "match"),
    "fields.SEMVER_RE": (fields.SEMVER_RE, "match"),
    "fields.URL_RE": (fields.URL_RE, "match"),
    "fields.ID_RE": (fields.ID_RE, "match"),
    "fields.UNSAFE_CHARS_RE": (fields.UNSAFE_CHARS_RE, "search"),
    "catalogs.PLACEHOLDER_RE": (catalogs.PLACEHOLDER_RE, "findall"),
    "frontmatter.LINE_RE": (frontmatter.LINE_RE, "findall"),
    "frontmatter.KEY_RE": (frontmatter.KEY_RE, "match"),
    "frontmatter.SCALAR_COMMENT_RE": (frontmatter.SCALAR_COMMENT_RE, "match"),
    "assets.CSS_URL_RE": (assets.CSS_URL_RE, "findall"),
}
PREFIXES = {
    "fields.URL_RE": "https://x",
    "fields.SEMVER_RE": "1.",
    "frontmatter.KEY_RE": "k",
    "frontmatter.SCALAR_COMMENT_RE": "k: v",
    "layouts.LENGTH_RE": "1",
    "sections.FINGERPRINT_RE": "sha256:",
}

# Whole paths over section text: what check and build run on a body.
PATHS: dict[str, Callable[[str], object]] = {
    "markdown_problems (check)": lambda text: markdown_problems("x.md", "body", text),
    "readability.score": readability.score,
    "readability.fernandez_huerta": readability.fernandez_huerta,
    "readability.word_count": readability.word_count,
    "markdown.kept_pieces": markdown.kept_pieces,
}


def seconds(run: Callable[[], object]) -> float:
    """Return the best of two runs' wall time."""
    best = float("inf")
    for _ in range(2):
        markdown.parsed.cache_clear()  # the Markdown paths would otherwise time a cached parse
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def probe(name: str, make: Callable[[str], Callable[[], object]], chars: int) -> list[str]:
    """Time one pattern or path on every token at a quarter and at all of `chars`; return the lines to print."""
    lines = []
    prefix = PREFIXES.get(name, "")
    for token in TOKENS:
        small = prefix + token * (chars // 4 // len(token))
        large = prefix + token * (chars // len(token))
        # A stop that cannot match at the end makes a greedy pattern try every shorter match.
        t_small, t_large = seconds(make(small + "\x01")), seconds(make(large + "\x01"))
        ratio = t_large / t_small if t_small > 1e-5 else 0.0
        flag = "SUPER-LINEAR" if ratio > 8 and t_large > 0.01 else "slow, linear" if t_large > 0.5 else ""
        lines.append(f"{name:34} {token!r:10} {t_small * 1000:9.2f} ms {t_large * 1000:9.2f} ms {ratio:6.1f} {flag}")
    return lines


def pattern_call(pattern: re.Pattern[str] | re.Pattern[bytes], method: str) -> Callable[[str], Callable[[], object]]:
    """Return a maker of the call a pattern is used with, on str or bytes as it expects."""
    call = getattr(pattern, method)
    if isinstance(pattern.pattern, bytes):
        return lambda text: lambda: call(text.encode())
    return lambda text: lambda: call(text)


def check_seconds(root: Path, body: str) -> tuple[float, int]:
    """Return how long check takes with detox's body replaced, and how many problems it finds."""
    path = root / "content/en/detox.md"
    text = (ROOT / "content/en/detox.md").read_text(encoding="utf-8")
    front = text[: text.index("\n---\n", 4) + 5]
    path.write_text(front + body, encoding="utf-8")
    start = time.perf_counter()
    problems = check_project(Project(root), dt.date(2026, 11, 23))
    return time.perf_counter() - start, len(problems)


def check_under_cap() -> list[str]:
    """Time check on a section of each token repeated to just under the cap, and on one twice the cap."""
    lines = []
    markdown.parsed.cache_clear()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in ("content", "templates", "styles", "brands"):
            shutil.copytree(ROOT / name, root / name)
        check_seconds(root, "Warm up.\n")  # the CMU dictionary and the parser load once
        room = SECTION_CAP - len((ROOT / "content/en/detox.md").read_text(encoding="utf-8").split("\n---\n")[0]) - 200
        for token in (*TOKENS, "!["):
            seconds_, found = check_seconds(root, token * (room // len(token)))
            lines.append(
                f"check, body of {token!r:8} x {room // len(token):>6} {seconds_ * 1000:8.0f} ms ({found} problems)"
            )
        seconds_, found = check_seconds(root, "x" * 2 * SECTION_CAP)
        lines.append(
            f"check, body of 'x' x {2 * SECTION_CAP} (over the cap) {seconds_ * 1000:8.0f} ms ({found} problems)"
        )
    return lines


def main() -> None:
    """Print one line per pattern and token, and a closing count of super-linear ones."""
    chars = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"{'pattern or path':34} {'token':10} {chars // 4:>9} ch {chars:>9} ch  ratio (linear ~4)")
    lines = []
    for name, (pattern, method) in PATTERNS.items():
        lines += probe(name, pattern_call(pattern, method), chars)
    for name, path in PATHS.items():
        lines += probe(name, lambda text, path=path: lambda: path(text), chars)  # type: ignore[misc]
    print("\n".join(lines))
    bad = [line for line in lines if line.endswith("SUPER-LINEAR")]
    print(f"\n{len(bad)} of {len(lines)} super-linear\n")
    print("\n".join(check_under_cap()))


if __name__ == "__main__":
    main()
