"""Section front matter: one splitter for loading and approve, and edits that leave every other byte alone."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ..errors import Problem

LINE_RE = re.compile(r"[^\n]*\n|[^\n]+")
KEY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:")


# A one-line scalar with an optional trailing comment: `status: draft  # until review`.
SCALAR_COMMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*:\s*[^\s'\"#][^#'\"]*?(\s+#.*)$")


# Where a field goes when the file does not have it yet: after the first of these that exists.
ANCHORS = {
    "status": ("language", "version"),
    "reviewers": ("status",),
    "last_reviewed": ("reviewers", "status"),
    "next_review_due": ("last_reviewed",),
    "approved_version": ("next_review_due", "last_reviewed"),
    "approved_fingerprint": ("approved_version",),
}


# libyaml's parser when PyYAML has it (the same safe constructor, several times faster).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FrontMatterLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe YAML loader that leaves dates as text, so bad dates get our message."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def split(text: str) -> tuple[str, list[str], str]:
    """Split a section file into its opening '---' line, its front matter lines, and the rest."""
    # Lines end at \n only: str.splitlines would also break at U+2028 and other separators YAML keeps.
    lines = LINE_RE.findall(text)
    # A byte order mark stays in the opening line, so a rewrite keeps it.
    if not lines or lines[0].removeprefix("\ufeff").rstrip() != "---":
        raise ValueError("expected a YAML block between '---' lines at the top")
    for end in range(1, len(lines)):
        if lines[end].rstrip() == "---":
            return lines[0], lines[1:end], "".join(lines[end:])
    raise ValueError("the front matter has no closing '---' line")


def split_front_matter(path: str, text: str) -> tuple[dict[str, Any] | None, str, list[Problem]]:
    """Split a section file into its front matter mapping and Markdown body, with the splitter approve uses."""
    try:
        _, lines, rest = split(text)
    except ValueError:
        return None, "", [Problem(path, "front matter", "expected a YAML block between '---' lines at the top")]
    try:
        meta = yaml.load("".join(lines), Loader=_FrontMatterLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, "", [Problem(path, "front matter", f"invalid YAML{where}: {reason}")]
    if not isinstance(meta, dict):
        return None, "", [Problem(path, "front matter", "expected a mapping of fields")]
    # The rest starts with the closing '---' line.
    return meta, rest[len(LINE_RE.findall(rest)[0]) :], []


def scalar(value: str) -> str:
    """Render text as a YAML scalar, quoted only when YAML needs it."""
    dumped: str = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=1_000_000)
    return dumped.removesuffix("\n...\n").strip()


def mapping_list(key: str, items: Sequence[Mapping[str, str]], newline: str = "\n") -> list[str]:
    """Render a list of flat mappings as block YAML lines, one key per line."""
    lines = [f"{key}:{newline}"]
    for item in items:
        for i, (name, value) in enumerate(item.items()):
            lines.append(f"{'  - ' if i == 0 else '    '}{name}: {scalar(value)}{newline}")
    return lines


def field_spans(lines: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Return, for each top-level key, the [start, end) range of its lines."""
    spans: dict[str, tuple[int, int]] = {}
    i = 0
    while i < len(lines):
        match = KEY_RE.match(lines[i])
        if not match:
            i += 1
            continue
        end = i + 1
        last = end
        # The block goes on through indented lines and '- ' items; blank lines only count
        # when the block continues after them, and a comment at column 0 ends it.
        while end < len(lines):
            line = lines[end]
            if line.strip() == "":
                end += 1
                continue
            if line[0] in " \t" or line.startswith("- "):
                end += 1
                last = end
                continue
            break
        spans[match[1]] = (i, last)
        i = last
    return spans


def set_fields(text: str, updates: Mapping[str, list[str]]) -> str:
    """Replace or add the given top-level fields; each update is the field's full lines."""
    opening, lines, rest = split(text)
    newline = "\r\n" if opening.endswith("\r\n") else "\n"
    for key, new in updates.items():
        new = [line.replace("\n", newline) if newline != "\n" else line for line in new]
        spans = field_spans(lines)
        if key in spans:
            start, end = spans[key]
            comment = SCALAR_COMMENT_RE.match(lines[start].rstrip("\r\n"))
            if comment and end - start == 1 and len(new) == 1:
                new = [new[0].rstrip("\r\n") + comment[1] + newline]
            lines[start:end] = new
            continue
        anchor = next((a for a in ANCHORS.get(key, ()) if a in spans), None)
        at = spans[anchor][1] if anchor else len(lines)
        if at == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        lines[at:at] = new
    return opening + "".join(lines) + rest
