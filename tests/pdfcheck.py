"""Read what a person (or a screen reader) gets from a PDF: text, tags, ink on the page, type sizes."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pdfplumber
import pypdf

from handouts.layouts import LAYOUTS, points

T = TypeVar("T")


def margins(layout: str) -> tuple[float, float]:
    """Return a layout's top and bottom page margins in points, from the layout table the template uses."""
    top, _, bottom = LAYOUTS[layout].margin
    return points(top), points(bottom)


def cached(function: Callable[..., T]) -> Callable[..., T]:
    """Remember what a reading of a PDF gave, until the file changes: many tests read the same PDFs."""
    memory: dict[tuple[Any, ...], T] = {}

    @functools.wraps(function)
    def wrapper(path: Path, *args: Any, **kwargs: Any) -> T:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, *args, *sorted(kwargs.items()))
        if key not in memory:
            memory[key] = function(path, *args, **kwargs)
        return memory[key]

    return wrapper


@cached
def page_texts(path: Path) -> list[str]:
    """Return each page's text with runs of whitespace collapsed."""
    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in pypdf.PdfReader(path).pages]


def text_of(path: Path) -> str:
    """Return the whole document's text, whitespace collapsed."""
    return " ".join(page_texts(path))


def structure(path: Path) -> Iterator[Any]:
    """Yield every element of the PDF's tag tree, depth first, in reading order."""
    reader = pypdf.PdfReader(path)

    def walk(node: Any) -> Iterator[Any]:
        node = node.get_object()
        if isinstance(node, pypdf.generic.ArrayObject):
            for kid in node:
                yield from walk(kid)
        elif isinstance(node, pypdf.generic.DictionaryObject):
            if "/S" in node:
                yield node
            if "/K" in node:
                yield from walk(node["/K"])

    yield from walk(reader.trailer["/Root"]["/StructTreeRoot"])


def emptiness(path: Path, layout: str) -> list[float]:
    """Return, per page, the share of the text area left blank below the last ink (text or drawing)."""
    top, bottom = margins(layout)
    shares = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            low, high = top, page.height - bottom
            objects = page.chars + page.rects + page.lines + page.curves + page.images
            # Margin boxes (sample marker, footer) lie outside the text area and do not count.
            bottoms = [o["bottom"] for o in objects if o["top"] >= low - 1 and o["bottom"] <= high + 1]
            last = max(bottoms, default=low)
            shares.append(max(0.0, (high - last) / (high - low)))
    return shares


@dataclass(frozen=True)
class Line:
    """One line of text on a page: where it is, its smallest type size, and its words."""

    page: int
    top: float
    x0: float
    size: float
    text: str


@cached
def lines(path: Path, columns: int = 1) -> list[Line]:
    """Return every line of text, page by page (and column by column), top to bottom."""
    found = []
    with pdfplumber.open(path) as pdf:
        for number, page in enumerate(pdf.pages):
            words = page.extract_words(extra_attrs=["size"], keep_blank_chars=False, x_tolerance=2)
            rows: dict[tuple[int, int], list[Any]] = {}
            for word in words:
                # Words of one line share a baseline; columns of a tri-fold are told apart by x.
                column = int(word["x0"] // (page.width / columns))
                rows.setdefault((round(word["bottom"]), column), []).append(word)
            for (_, _), row in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0])):
                row.sort(key=lambda w: w["x0"])
                found.append(
                    Line(
                        page=number,
                        top=min(w["top"] for w in row),
                        x0=row[0]["x0"],
                        size=min(w["size"] for w in row),
                        text=" ".join(w["text"] for w in row),
                    )
                )
    return found
