"""The one Markdown dialect of section text: CommonMark, tables and named boxes, raw HTML off."""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.container import container_plugin

from .errors import Severity

# Boxes a section may draw around a part of itself: `::: safety` ... `:::`; `columns` sets a
# list of short items in two columns, without a frame; `picture` sets a list of pictures side by
# side, each item an image and its caption, so every caption prints under its own panel.
BOXES = ("safety", "box", "columns", "picture")
BOX_LINE_RE = re.compile(r"^ {0,3}:::[ \t]*(\S*)", re.MULTILINE)
# Phone numbers, web addresses and domains: never hyphenated or split across lines. Any other
# run of 24 or more characters without a space (no word of the shipped text has more than 20)
# may break anywhere, rather than run out of its column or push a table off the page; it stops
# before a web address, which keeps its own class. Each repetition only grows forward and a
# domain starts only where no domain character precedes it, so a run like "a.a.a" or "1-1-1" is
# tried once, not from each of its characters: the time is linear in the text (bench/regex.py).
KEEP_WHOLE_RE = re.compile(
    r"https?://\S+[^\s.,;:!?)]"
    r"|(?<![A-Za-z0-9.-])[A-Za-z0-9][A-Za-z0-9-]*+(?:\.[A-Za-z0-9-]++)*\.(?:gov|org|com|net|edu)\b"
    r"(?:/[^\s.,;:!?)]*+)?"
    r"|(?:\b1-)?\b\d{3}-\d{3}-\d{4}\b|\(\d{3}\)\s\d{3}-\d{4}"
    r"|(?P<long>(?:(?!https?://)\S){24,}+)"
)
# The links that print as live links: web pages, e-mail and phone numbers. Any other scheme
# (file:, javascript:, data:) and every path prints as its text, so no link points into the
# machine that built the PDF (WeasyPrint resolves a path against the project folder).
URL_SCHEME_RE = re.compile(r"(?:https?|mailto|tel):", re.IGNORECASE)
LIVE_SCHEMES = "https:, http:, mailto: and tel:"
# Blocks that hold blocks (quotes, list items, boxes): past markdown-it's maxNesting it drops
# the rest of the text without a word, so such text is an error instead.
CONTAINER_OPENS = ("blockquote_open", "list_item_open")


def _render_box(self: Any, tokens: Sequence[Token], idx: int, _options: Any, env: Any) -> str:
    token = tokens[idx]
    if token.nesting == 1:
        return f'<aside class="box box-{token.info.strip()}">\n'
    return "</aside>\n"


def is_live_link(href: str) -> bool:
    """Tell whether a link target prints as a live link: https:, http:, mailto: or tel:."""
    return URL_SCHEME_RE.match(href) is not None


def _render_link(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    # Links never nest, so a link_close closes the last link opened.
    token, stack = tokens[idx], env.setdefault("live_links", [])
    if token.nesting == 1:
        stack.append(is_live_link(str(token.attrGet("href") or "")))
        live = stack[-1]
    else:
        live = stack.pop() if stack else False
    return str(self.renderToken(tokens, idx, options, env)) if live else ""


class _EveryLinkParser(MarkdownIt):
    """The dialect's parser, taking every link: the renderer prints those not live as their text."""

    def validateLink(self, url: str) -> bool:
        """Accept every link: the default refusal would print a file: link's whole source, path and all."""
        return True


def _dialect(md: MarkdownIt) -> MarkdownIt:
    md.enable("table")
    for name in BOXES:
        md.use(container_plugin, name, render=_render_box)
    md.add_render_rule("link_open", _render_link)
    md.add_render_rule("link_close", _render_link)
    return md


@functools.lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    """Return the parser every reader of section text shares, check and renderer alike."""
    return _dialect(_EveryLinkParser("commonmark", {"html": False}))


@functools.lru_cache(maxsize=32)
def parsed(text: str) -> tuple[Token, ...]:
    """Return a text's tokens, parsed once for all who only read them: check reads a body three ways."""
    # markdown-it-py needs up to 20 µs a character; its tokens are not to be changed (the renderer parses its own).
    return tuple(parser().parse(text))


def of_type(tokens: Sequence[Token], kind: str) -> Iterator[Token]:
    """Yield every token of a kind, also those in links, table cells and an image's alt text."""
    for token in tokens:
        if token.type == kind:
            yield token
        if token.children:
            yield from of_type(token.children, kind)


def links(tokens: Sequence[Token]) -> Iterator[Token]:
    """Yield every link_open token, also those in table cells."""
    return of_type(tokens, "link_open")


def link_problems(tokens: Sequence[Token]) -> list[tuple[Severity, str]]:
    """Return (severity, message) for each link that prints as text; an error when its text is its target."""
    found: list[tuple[Severity, str]] = []
    for link in links(tokens):
        href = str(link.attrGet("href") or "")
        if is_live_link(href):
            continue
        target = urllib.parse.unquote(href)
        if link.info == "auto":
            # An autolink's text is its target: printed, it would put a path or a script in the PDF.
            found.append(("error", f"link <{target}> is not a web, e-mail or phone link; only {LIVE_SCHEMES} links"))
        else:
            found.append(("warning", f"link to {target!r} prints as text only; only {LIVE_SCHEMES} links are live"))
    return found


def nesting_problem(tokens: Sequence[Token], max_nesting: int) -> str | None:
    """Say why text would be lost to nesting: a quote, list item or box the parser left empty."""
    for token in tokens:
        is_box = token.type.startswith("container_") and token.nesting == 1
        if (token.type in CONTAINER_OPENS or is_box) and token.level >= max_nesting - 1:
            return f"quotes, lists and boxes nested {token.level + 1} deep; the text inside would be lost"
    return None


def images(tokens: Sequence[Token]) -> Iterator[Token]:
    """Yield every image token, also those in links, table cells and another image's alt text."""
    return of_type(tokens, "image")


def image_target(image: Token) -> str:
    """Return an image's file as written: the parser has resolved references and percent-encoded it."""
    return urllib.parse.unquote(str(image.attrGet("src") or ""))


def is_outside(target: str) -> bool:
    """Tell whether an image target is a URL or a path that leaves the section's folder."""
    # A query or fragment makes it a URL: the renderer would drop it and check would not find the file.
    return (
        any(c in target for c in ":?#")
        or target.startswith(("/", "\\"))
        or ".." in target.replace("\\", "/").split("/")
    )


def box_problems(text: str) -> list[str]:
    """Return why the `:::` box lines of a text are wrong: an unknown name or an unclosed box."""
    found, depth = [], 0
    for name in BOX_LINE_RE.findall(text):
        if not name:
            depth -= 1
        elif name not in BOXES:
            found.append(f"unknown box '::: {name}'; expected one of {', '.join(BOXES)}")
        else:
            depth += 1
    if depth > 0:
        found.append("a '::: box' is not closed with a ':::' line")
    elif depth < 0:
        found.append("a ':::' line closes no box")
    return found


def picture_problems(tokens: Sequence[Token]) -> list[str]:
    """Return why a `::: picture` box is not a list of panels, each an image followed by its caption."""
    found, depth, in_picture = [], 0, False
    for index, token in enumerate(tokens):
        if token.type == "container_picture_open":
            in_picture, depth = True, token.level
        elif token.type == "container_picture_close":
            in_picture = False
        elif in_picture and token.level == depth + 1 and token.nesting == 1 and token.type != "bullet_list_open":
            found.append("a '::: picture' box holds only a list: one item per panel, its image then its caption")
        elif in_picture and token.type == "list_item_open":
            # A tight list item holds one paragraph: its inline token follows the paragraph_open.
            inline = tokens[index + 2] if index + 2 < len(tokens) else None
            children = [c for c in (inline.children or []) if c.type != "softbreak"] if inline else []
            has_image = bool(children) and children[0].type == "image"
            caption = "".join(c.content for c in children[1:] if c.type == "text").strip()
            if not (has_image and caption):
                found.append(
                    "each item of a '::: picture' box is an image then its caption: - ![what it shows](file) Caption"
                )
    return list(dict.fromkeys(found))


def add_table_scopes(tokens: list[Token]) -> None:
    """Give header cells a scope: the first row names columns, each body row's first cell names its row."""
    in_body, first_in_row = False, False
    for token in tokens:
        if token.type in ("tbody_open", "tbody_close"):
            in_body = token.type == "tbody_open"
        elif token.type == "tr_open":
            first_in_row = True
        elif token.type == "th_open":
            token.attrSet("scope", "col")
        elif token.type in ("td_open", "td_close") and in_body and first_in_row:
            token.tag = "th"
            if token.type == "td_open":
                token.attrSet("scope", "row")
            else:
                first_in_row = False


def keep_class(text: str) -> str:
    """Return the class for a kept-whole match: a phone number never breaks, an address only at its slashes."""
    return "url" if "." in text or "/" in text else "keep"


# An address may break after a `/` or `.` (a run of them stays together: `https://`), nowhere else.
ADDRESS_BREAK_RE = re.compile(r"(?<=[/.])(?![/.]|$)")
SCHEME_RE = re.compile(r"https?://", re.IGNORECASE)
ZERO_WIDTH_SPACE, WORD_JOINER = "\u200b", "\u2060"
SHORT_ADDRESS = 32


def address_href(text: str) -> str:
    """Return the link a printed address opens: itself, or https:// and itself when printed without a scheme."""
    return text if SCHEME_RE.match(text) else "https://" + text


def address_html(text: str, href: str | None = None, *, link: bool = True) -> str:
    """Return a printed web address as HTML: a link that may break after a / or a . and nowhere else."""
    # The link holds only text: WeasyPrint gives every box inside a link an annotation of its own.
    # So the breaks are characters, both invisible: a zero-width space after each / and . is the only
    # break, and a word joiner after each hyphen keeps it from being one (a reader would take a
    # hyphen at a line's end for part of the address, or the address's hyphen for a hyphenation).
    # An address that fits any column (a tri-fold panel holds about 40 characters) never breaks at
    # all: "FindTreatment." on one line and "gov" on the next reads as two things.
    breakable = ADDRESS_BREAK_RE.sub(ZERO_WIDTH_SPACE, text) if len(text) > SHORT_ADDRESS else text
    shown = escape(breakable.replace("-", "-" + WORD_JOINER))
    # dir="ltr": an address keeps its own direction on a right-to-left page.
    if not link:
        return f'<span class="address" dir="ltr">{shown}</span>'
    return f'<a class="address" dir="ltr" href="{escape(href or address_href(text), quote=True)}">{shown}</a>'


def kept_pieces(text: str) -> list[tuple[str, str | None]]:
    """Split text into pieces, each with the class that keeps it whole (or lets it break anywhere), or None."""
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for match in KEEP_WHOLE_RE.finditer(text):
        if match.start() > position:
            pieces.append((text[position : match.start()], None))
        pieces.append((match[0], "long" if match.lastgroup == "long" else keep_class(match[0])))
        position = match.end()
    if position < len(text):
        pieces.append((text[position:], None))
    return pieces


def keep_whole(children: list[Token]) -> list[Token]:
    """Wrap phone numbers in a span that never breaks, and make web addresses links that break only at / and ."""
    out: list[Token] = []
    in_link = False
    for child in children:
        if child.type in ("link_open", "link_close"):
            in_link = child.type == "link_open"
        if child.type != "text":
            out.append(child)
            continue
        for piece, kind in kept_pieces(child.content):
            if kind == "url":
                # Inside a link already: the same pieces, without a second link.
                out.append(_html(address_html(piece, link=not in_link)))
            else:
                out += [_html(keep_open(kind)), _text(piece), _html("</span>")] if kind else [_text(piece)]
    return out


def keep_open(kind: str) -> str:
    """Open the span that keeps a run whole; a phone number also keeps left to right on an Arabic page."""
    # WeasyPrint reorders 1-800-662-4357 as 4357-662-800-1 inside right-to-left text; an isolate does not.
    return f'<span class="{kind}" dir="ltr">' if kind == "keep" else f'<span class="{kind}">'


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)


def _html(content: str) -> Token:
    # Only our own fixed markup: the parser never makes html tokens, since raw HTML is off.
    return Token("html_inline", "", 0, content=content)


def mark_captions(tokens: Sequence[Token]) -> None:
    """Wrap each `::: picture` panel's caption (what follows its image) in a span of class caption."""
    # Large print hides the captions: the numbered steps under the picture name each drawing, and
    # six drawings without captions fit one row, so the picture and its steps share a page.
    in_picture = False
    for token in tokens:
        if token.type in ("container_picture_open", "container_picture_close"):
            in_picture = token.type == "container_picture_open"
        elif in_picture and token.type == "inline" and token.children:
            kinds = [child.type for child in token.children]
            if "image" in kinds:
                after = kinds.index("image") + 1
                if after < len(kinds):
                    token.children = [
                        *token.children[:after],
                        _html('<span class="caption">'),
                        *token.children[after:],
                        _html("</span>"),
                    ]
