"""Section front matter: one splitter for loading and approve, and edits that leave every other byte alone."""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import yaml

from ..errors import Problem
from .fields import shown

LINE_RE = re.compile(r"[^\n]*\n|[^\n]+")


# A one-line scalar with an optional trailing comment: `status: draft  # until review`.
# The lookbehind keeps it linear: without it, a long run of spaces is tried at every split.
SCALAR_COMMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*:\s*[^\s'\"#][^#'\"]*?(?<!\s)(\s+#.*)$")


# Where a field goes when the file does not have it yet: after the first of these that exists.
ANCHORS = {
    "status": ("language", "version"),
    "reviewers": ("status",),
    "last_reviewed": ("reviewers", "status"),
    "next_review_due": ("last_reviewed",),
    "approved_version": ("next_review_due", "last_reviewed"),
    "approved_fingerprint": ("approved_version",),
}


# The YAML starts on the file's second line, after the opening '---'.
FIRST_LINE = 2
# Front matter nests three deep (fields, reviewers, a reviewer); libyaml slows quadratically with
# depth and PyYAML's C composer overflows the stack near 100,000 levels, so stop long before.
MAX_DEPTH = 20
MERGE_TAG = "tag:yaml.org,2002:merge"
# Line breaks to YAML besides \n and \r\n; a line-by-line edit would not see them.
OTHER_BREAKS = {"\r": "U+000D", "\x85": "U+0085", "\u2028": "U+2028", "\u2029": "U+2029"}


# libyaml's parser when PyYAML has it (the same safe constructor, several times faster).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(yaml.YAMLError):
    """YAML that parses but that front matter does not take; the message says what and where."""


def _shown(value: Any) -> str:
    # A key may be any YAML value: null or true is named as YAML writes it, not as None or True.
    text = "null" if value is None else shown(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _FrontMatterLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe YAML loader that leaves dates as text and refuses keys given twice and merge keys."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping; a key given twice (`a:` and `"a":` alike) or a merge key `<<` is an error."""
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]
        mapping: dict[Any, Any] = {}
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + FIRST_LINE
            # Merged keys would override or hide what the file shows; and approve edits text, not merges.
            if key_node.tag == MERGE_TAG:
                raise _Refused(f"merge key '<<' at line {line}; write the fields out")
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
                )
            # YAML's last-one-wins would let a second, quoted `"reviewers":` replace what reviewers see.
            if key in first:
                raise _Refused(f"duplicate key {_shown(key)} at line {line} (first at line {first[key]})")
            first[key] = line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_FrontMatterLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check_events(text: str) -> None:
    """Refuse aliases and deep nesting from the parser's events, before anything is built."""
    loader = _FrontMatterLoader(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + FIRST_LINE
            # An alias shows one value in two places; editing one of them would change the other.
            if isinstance(event, yaml.AliasEvent):
                raise _Refused(f"alias {_shown('*' + str(event.anchor))} at line {line}; write the value out")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Refused(f"nested more than {MAX_DEPTH} levels deep at line {line}")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # PyYAML 6.0.4 and later stop a deep flow collection in the scanner, before its events reach us.
        if "maximum nesting depth" not in str(exc.problem) or exc.problem_mark is None:
            raise
        raise _Refused(
            f"nested more than {MAX_DEPTH} levels deep at line {exc.problem_mark.line + FIRST_LINE}"
        ) from None
    finally:
        loader.dispose()


def load_yaml(text: str) -> Any:
    """Load front matter YAML, or raise yaml.YAMLError: aliases, merge keys, duplicates and deep nesting refused."""
    _check_events(text)
    loader = _FrontMatterLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


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


def _other_break(lines: Sequence[str]) -> str | None:
    """Say where a line holds a line break YAML sees and a line-by-line reader does not, if one does."""
    for number, line in enumerate(lines, start=FIRST_LINE):
        inner = line.removesuffix("\n").removesuffix("\r")
        for char, name in OTHER_BREAKS.items():
            if char in inner:
                return f"line {number} breaks at {name}, which YAML reads as a new line; use a plain newline"
    return None


def split_front_matter(path: str, text: str) -> tuple[dict[str, Any] | None, str, list[Problem]]:
    """Split a section file into its front matter mapping and Markdown body, with the splitter approve uses."""
    try:
        _, lines, rest = split(text)
    except ValueError:
        return None, "", [Problem(path, "front matter", "expected a YAML block between '---' lines at the top")]
    # A field after such a break would be read by YAML, yet hidden in a line to most editors and to approve.
    reason = _other_break(lines)
    if reason:
        return None, "", [Problem(path, "front matter", reason)]
    try:
        meta = load_yaml("".join(lines))
    except _Refused as exc:
        return None, "", [Problem(path, "front matter", str(exc))]
    except ValueError:
        # PyYAML's int() refuses numbers of more than 4300 digits (Python's guard against slow parsing).
        return None, "", [Problem(path, "front matter", "invalid YAML: a number too long to read")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + FIRST_LINE}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, "", [Problem(path, "front matter", f"invalid YAML{where}: {reason}")]
    if not isinstance(meta, dict):
        return None, "", [Problem(path, "front matter", "expected a mapping of fields")]
    # The rest starts with the closing '---' line.
    return meta, rest[len(LINE_RE.findall(rest)[0]) :], []


def scalar(value: str) -> str:
    """Render text as a one-line YAML scalar, quoted only when YAML needs it."""
    dumped: str = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=1_000_000)
    dumped = dumped.removesuffix("\n...\n").strip()
    if any(char in dumped for char in ("\n", *OTHER_BREAKS)):
        # Single quotes fold a line break over two lines; double quotes write it as an escape.
        dumped = yaml.safe_dump(value, allow_unicode=True, default_style='"', width=1_000_000).strip()
    return dumped


def mapping_list(key: str, items: Sequence[Mapping[str, str]], newline: str = "\n") -> list[str]:
    """Render a list of flat mappings as block YAML lines, one key per line."""
    lines = [f"{key}:{newline}"]
    for item in items:
        for i, (name, value) in enumerate(item.items()):
            lines.append(f"{'  - ' if i == 0 else '    '}{name}: {scalar(value)}{newline}")
    return lines


def _content_end(node: yaml.Node) -> int:
    """Return where a value's own text ends: a block collection ends with its last item, not at the next key."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return int(node.end_mark.index)


def field_spans(lines: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Return, for each top-level key, the [start, end) range of its lines, as YAML itself reads them.

    Raise ValueError when the front matter cannot be edited line by line: flow style, a field
    not at the start of its line, two fields on one line, or a line break other than a newline.
    """
    reason = _other_break(lines)
    if reason:
        raise ValueError(reason)
    starts = list(itertools.accumulate((len(line) for line in lines), initial=0))
    loader = _FrontMatterLoader("".join(lines))
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise ValueError("expected one field per line, not a {...} mapping")
    spans: dict[str, tuple[int, int]] = {}
    previous_end = 0
    for key, value in root.value:
        index = key.start_mark.index
        start = bisect.bisect_right(starts, index) - 1
        where = f"line {start + FIRST_LINE}"
        if not isinstance(key, yaml.ScalarNode) or starts[start] != index or start < previous_end:
            raise ValueError(f"{where}: a field that does not start its own line")
        end = bisect.bisect_right(starts, max(_content_end(value), key.end_mark.index) - 1)
        spans[str(key.value)] = (start, end)
        previous_end = end
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
        # Without an anchor, after the last field: before trailing comments and a '...' end marker.
        at = spans[anchor][1] if anchor else max((end for _, end in spans.values()), default=len(lines))
        if at == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        lines[at:at] = new
    return opening + "".join(lines) + rest
