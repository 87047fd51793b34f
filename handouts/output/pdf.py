"""Render HTML to PDF bytes with WeasyPrint; the only module that imports it."""

from __future__ import annotations

import contextlib
import functools
import logging
import mimetypes
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from ..errors import HandoutError

PDF_VARIANT = "pdf/ua-1"


PX_TO_PT = 0.75  # WeasyPrint lays out in CSS px (1/96 in); PDF speaks points (1/72 in).


@dataclass(frozen=True)
class RegionExtent:
    """Where the text of one `data-region` element lies in one column of one page, in points."""

    region: str
    page: int
    column: int
    top: float
    bottom: float

    @property
    def height(self) -> float:
        """Return the height its text takes."""
        return self.bottom - self.top


@dataclass(frozen=True)
class RenderedPdf:
    """A finished PDF, how many pages it has, where its marked regions fell, and whether it printed extras."""

    data: bytes
    pages: int
    regions: tuple[RegionExtent, ...] = ()
    # A brochure with free inside panels prints questions there (render_service.render_handout).
    extras: bool = False


# How CPython's ctypes.util names the C library ABI in `ldconfig -p` output, by machine.
LDCONFIG_ABI = {
    "x86_64-64": "libc6,x86-64",
    "ppc64-64": "libc6,64bit",
    "sparc64-64": "libc6,64bit",
    "s390x-64": "libc6,64bit",
    "ia64-64": "libc6,IA-64",
    "aarch64-64": "libc6,AArch64",
}


def ldconfig_finder(listing: str, machine: str) -> Callable[[str], str | None]:
    """Return a find_library that answers from one `ldconfig -p` listing, as ctypes.util would from it."""
    abi = LDCONFIG_ABI.get(machine, "libc6")

    def find_library(name: str) -> str | None:
        match = re.search(rf"\s+(lib{re.escape(name)}\.[^\s]+)\s+\({re.escape(abi)}", listing)
        return match[1] if match else None

    return find_library


@functools.lru_cache(maxsize=1)
def load_weasyprint() -> Any:
    """Import WeasyPrint once, answering its library look-ups from one ldconfig read."""
    import ctypes.util
    import os
    import struct
    import subprocess

    # WeasyPrint tries several names per library through cffi, which asks ctypes.util.find_library;
    # each miss runs ldconfig, gcc and ld (22 look-ups, about 0.2 s). One ldconfig read answers them
    # all. A name not listed gets None, and cffi goes on to the plain soname, which dlopen loads.
    try:
        listing = subprocess.run(
            ["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True, env={"LC_ALL": "C", "LANG": "C"}
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        import weasyprint

        return weasyprint
    original = ctypes.util.find_library
    machine = os.uname().machine + ("-32" if struct.calcsize("P") == 4 else "-64")
    ctypes.util.find_library = ldconfig_finder(listing, machine)  # type: ignore[assignment]
    try:
        import weasyprint
    finally:
        ctypes.util.find_library = original
    return weasyprint


class _RenderErrors(logging.Handler):
    """Collect what WeasyPrint logs as an error on this thread: an image it could not load or draw."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep this thread's error messages."""
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def render_errors() -> Iterator[list[str]]:
    """Yield the list of errors WeasyPrint logs while the block runs; pixel bombs count as errors."""
    from PIL import Image

    # WeasyPrint logs an image it cannot load or draw and goes on: a silent hole, or a page whose
    # drawing stopped half-way (losing the footer and sample marker). Each of those is a failure here.
    logger = logging.getLogger("weasyprint")
    handler = _RenderErrors()
    logger.addHandler(handler)
    level = logger.level
    if logger.getEffectiveLevel() > logging.ERROR:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between the cap and twice the cap; here the cap is the cap.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def readable_url(message: str, base_url: str) -> str:
    """Return a WeasyPrint message with project file URLs shown as paths inside the project."""
    return message.replace(base_url, "")


class RefusedURL(ValueError):
    """A resource the handout asked for that lies outside what it may read."""


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """Tell whether a resolved path lies inside one of the resolved roots."""
    real = path.resolve()
    return any(real.is_relative_to(root.resolve()) for root in roots)


def fetcher_class() -> type[Any]:
    """Return the URLFetcher subclass that reads only project files and data: URIs."""
    load_weasyprint()
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class ProjectFetcher(URLFetcher):  # type: ignore[misc]
        """Serve files under the allowed folders and data: URIs; refuse everything else."""

        def __init__(self, roots: Sequence[Path], fallbacks: Sequence[tuple[Path, Path]] = ()) -> None:
            # fail_on_errors: a refused or missing file stops the render instead of
            # leaving a hole in a patient's handout.
            super().__init__(allowed_protocols={"data"}, fail_on_errors=True, allow_redirects=False)
            self.roots = tuple(roots)
            self.fallbacks = tuple(fallbacks)
            # WeasyPrint swallows some fetch errors (inside SVG images, for one); the
            # renderer checks this list afterwards so a refusal always fails the build.
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            try:
                return self._fetch(url, headers)
            except RefusedURL as exc:
                self.refused.append(str(exc))
                raise

        def _fetch(self, url: str, headers: Any) -> Any:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme != "file":
                raise RefusedURL(f"refused to load {url}: only project files and data: URIs are allowed")
            path = Path(url2pathname(urlsplit(url).path))
            if not is_inside(path, self.roots):
                raise RefusedURL(f"refused to load {url}: outside the templates, styles, brands and content folders")
            # A project's own stylesheet may name the tool's fonts as if they were beside it.
            for own, tools in self.fallbacks:
                if not path.is_file() and path.is_relative_to(own):
                    path = tools / path.relative_to(own)
                    # Checked again: the same `..` climbs further from the tool's folder when a link
                    # in the project made the first path deeper than it looks.
                    if not is_inside(path, (tools,)):
                        raise RefusedURL(
                            f"refused to load {url}: outside the templates, styles, brands and content folders"
                        )
            if not path.is_file():
                raise RefusedURL(f"cannot load {url}: no such file")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            from ..images import image_problem
            from ..inputs.files import FONT_CAP, read_bytes

            # The inputs' own reader, capped at the largest file a project holds (a font).
            body, problems = read_bytes(path, url, cap=FONT_CAP, root=None)
            if body is None:
                raise RefusedURL(f"cannot load {url}: {problems[0].message}")
            # A damaged picture is refused before WeasyPrint sees it: it would print a hole.
            problem = image_problem(body, content_type) if content_type.startswith("image/") else None
            if problem is not None:
                raise RefusedURL(f"{url} {problem}")
            return URLFetcherResponse(url, body=body, headers={"Content-Type": content_type})

    return ProjectFetcher


def region_extents(pages: Sequence[Any], column_width_pt: float) -> tuple[RegionExtent, ...]:
    """Measure, per page and column, the text and images inside each `data-region` element."""
    load_weasyprint()
    from weasyprint.formatting_structure import boxes

    if not pages:
        return ()
    root = pages[0]._page_box.children[0].element
    parents = {child: parent for parent in root.iter() for child in parent}
    region_of: dict[Any, str | None] = {}

    def find_region(element: Any) -> str | None:
        if element not in region_of:
            region = element.get("data-region")
            parent = parents.get(element)
            region_of[element] = region or (find_region(parent) if parent is not None else None)
        return region_of[element]

    spans: dict[tuple[str, int, int], tuple[float, float]] = {}
    for number, page in enumerate(pages):
        for box in page._page_box.descendants():
            if not isinstance(box, boxes.LineBox | boxes.ReplacedBox) or box.element is None:
                continue
            region = find_region(box.element)
            if region is None:
                continue
            key = (region, number, int(box.position_x * PX_TO_PT // column_width_pt))
            top, bottom = box.position_y * PX_TO_PT, (box.position_y + box.margin_height()) * PX_TO_PT
            old = spans.get(key, (top, bottom))
            spans[key] = (min(old[0], top), max(old[1], bottom))
    return tuple(
        RegionExtent(region, page, column, top, bottom)
        for (region, page, column), (top, bottom) in sorted(spans.items())
    )


# A last page that would hold only the About box is paper for a few lines of document notes: the
# handout is laid out again, tighter each time (never smaller type), until the box joins the page
# before it: first less space between blocks, then (not in large print, which keeps its 1.25) the
# lines 1.2 apart. If neither is enough, the last layout stands.
LONE_LAST_CLASS = "about"
TIGHTER_SPACING = """
p { margin-bottom: 0.25em; } li { margin-bottom: 0; }
h2 { margin-top: 8pt; } h3 { margin-top: 5pt; }
.my-plan, .section-find-help, .key-points { margin-top: 6pt; margin-bottom: 4pt; }
.about { margin-top: 6pt; }
"""
TIGHTER_LINES = "body:not(.layout-large-print) :is(p, li, dd) { line-height: 1.2; }"
TIGHTER_CSS = (TIGHTER_SPACING, TIGHTER_SPACING + TIGHTER_LINES)


def holds_only(page: Any, css_class: str) -> bool:
    """Tell whether everything laid out in a page's body lies inside elements of one class."""
    load_weasyprint()
    from weasyprint.formatting_structure import boxes

    found = False
    for child in page._page_box.children:
        if isinstance(child, boxes.MarginBox):
            continue
        # ElementTree elements do not know their parents.
        parents = {inner: outer for outer in child.element.iter() for inner in outer}
        for box in child.descendants():
            if not isinstance(box, boxes.LineBox | boxes.ReplacedBox) or box.element is None:
                continue
            element = box.element
            while element is not None and css_class not in (element.get("class") or "").split():
                element = parents.get(element)
            if element is None:
                return False
            found = True
    return found


def set_bleed_boxes(pdf: Any, bleed_pt: float) -> None:
    """Make each page's BleedBox exactly the trim box plus the asked-for bleed."""
    import pydyf

    for number in pdf.pages["Kids"][::3]:
        page = pdf.objects[number]
        if "TrimBox" not in page:
            continue
        left, right = sorted((page["TrimBox"][0], page["TrimBox"][2]))
        low, high = sorted((page["TrimBox"][1], page["TrimBox"][3]))
        page["BleedBox"] = pydyf.Array([left - bleed_pt, low - bleed_pt, right + bleed_pt, high + bleed_pt])
        # The art stays inside the trim; WeasyPrint would give the whole media box.
        page["ArtBox"] = pydyf.Array([left, low, right, high])


MARK_LINE_PT = 0.75  # the width of WeasyPrint's crop marks (1 CSS px)
FOLD_MARK_DASH = (3, 2)  # dashed, as print shops tell a fold from a cut


def draw_fold_marks(pdf: Any, folds_pt: Sequence[float]) -> None:
    """Draw a short dashed line above and below the trim at each fold, in the band the crop marks use."""
    import pydyf

    if not folds_pt:
        return
    for number in pdf.pages["Kids"][::3]:
        page = pdf.objects[number]
        if "TrimBox" not in page:
            continue
        left = min(page["TrimBox"][0], page["TrimBox"][2])
        low, high = sorted((page["TrimBox"][1], page["TrimBox"][3]))
        media_low, media_high = sorted((page["MediaBox"][1], page["MediaBox"][3]))
        # WeasyPrint's page stream leaves its flipped coordinates in force: a `q` before it and a `Q`
        # after it give the marks the PDF's own coordinates, in which the boxes are given.
        before, marks = pydyf.Stream(), pydyf.Stream()
        before.push_state()
        marks.pop_state()
        # Not content: PDF/UA wants everything outside the tag tree named an artifact.
        marks.begin_marked_content("Artifact")
        marks.set_line_width(MARK_LINE_PT)
        marks.set_dash(FOLD_MARK_DASH, 0)
        marks.set_color_rgb(0, 0, 0, stroke=True)
        for fold in folds_pt:
            # The outer half of what lies outside the trim, where WeasyPrint draws the crop marks:
            # clear of the bleed (layouts.page_bleed_pt makes it so), never on the trimmed page.
            marks.move_to(left + fold, media_high)
            marks.line_to(left + fold, media_high - (media_high - high) / 2)
            marks.move_to(left + fold, media_low)
            marks.line_to(left + fold, media_low + (low - media_low) / 2)
        marks.stroke()
        marks.end_marked_content()
        pdf.add_object(before)
        pdf.add_object(marks)
        page["Contents"] = pydyf.Array([before.reference, page["Contents"], marks.reference])


def set_header_scopes(document: Any) -> None:
    """Give every tagged header cell the /Scope its HTML scope says: /Column by default, or /Row."""
    import pydyf

    # WeasyPrint links data cells to their headers but leaves out /Scope, which PDF/UA
    # checkers and screen readers use to tell a row header from a column header.
    for page in document.pages:
        for box in page._page_box.descendants():
            mark = getattr(box, "mark", None)
            if box.element is not None and box.element_tag == "th" and isinstance(mark, pydyf.Dictionary):
                # pydyf writes a string that starts with a slash as a PDF name.
                mark["A"]["Scope"] = "/Row" if box.element.get("scope") == "row" else "/Column"


def _table_parts(table_box: Any, resolve: Callable[[bytes], Any]) -> tuple[Any, list[tuple[Any, Any]]] | None:
    """Return the Table element WeasyPrint made for one page's part of a table, and its row groups' boxes and elements.

    Only cells keep their element (`box.mark`); a row group's and the table's are found up the /P chain.
    None when the chain is not the Table > THead|TBody|TFoot > TR > TH|TD WeasyPrint writes.
    """
    import pydyf

    table = None
    groups = []
    for group in table_box.children:
        marks = (getattr(cell, "mark", None) for row in group.children for cell in row.children)
        mark = next((mark for mark in marks if isinstance(mark, pydyf.Dictionary)), None)
        if mark is None:
            continue
        row = resolve(mark["P"])
        element = resolve(row["P"])
        parent = resolve(element["P"])
        if row["S"] != "/TR" or element["S"] not in ("/THead", "/TBody", "/TFoot") or parent["S"] != "/Table":
            return None
        if table is not None and parent is not table:
            return None
        table = parent
        groups.append((group, element))
    return (table, groups) if table is not None else None


def _header_ids(groups: Sequence[tuple[Any, Any]]) -> dict[Any, str]:
    """Return the /ID of each header cell in these row groups, by the HTML element it was made from."""
    import pydyf

    return {
        cell.element: cell.mark["ID"].string
        for group, _ in groups
        for row in group.children
        for cell in row.children
        if isinstance(getattr(cell, "mark", None), pydyf.Dictionary) and "ID" in cell.mark
    }


def _merge_table_parts(parts: Sequence[tuple[Any, list[tuple[Any, Any]]]], resolve: Callable[[bytes], Any]) -> None:
    """Move the rows of a table's later parts into its first Table element; leave repeated header rows behind."""
    import pydyf

    tables = [table for table, _ in parts]
    first, last = tables[0], tables[-1]
    group_of = {id(element): group for _, groups in parts for group, element in groups}
    kept: list[bytes] = []  # the first Table's new kids
    into: Any = None  # the row group element the last kept group's rows are in
    into_box: Any = None
    staying: list[tuple[Any, Any]] = []  # every row group whose rows stay in the tree
    repeats: list[tuple[Any, Any]] = []
    for table in tables:
        for kid in table["K"]:
            element: Any = resolve(kid) if isinstance(kid, bytes) else None
            group = group_of.get(id(element))
            if group is None:  # a caption: it goes along
                kept.append(kid)
                if element is not None:
                    element["P"] = first.reference
                continue
            if (group.is_header and table is not first) or (group.is_footer and table is not last):
                repeats.append((group, element))
                continue
            staying.append((group, element))
            if into_box is not None and into_box.element is group.element:
                # One <tbody> split by the page: its rows go on in the first part's TBody.
                for row in element["K"]:
                    into["K"].append(row)
                    resolve(row)["P"] = into.reference
                element["K"] = pydyf.Array()
                continue
            kept.append(kid)
            element["P"] = first.reference
            into, into_box = element, group
    first["K"] = pydyf.Array(kept)
    for table in tables[1:]:
        # Emptied, it leaves its parent (the page's part of the section the table is in).
        parent = resolve(table["P"])
        parent["K"] = pydyf.Array(kid for kid in parent["K"] if not (isinstance(kid, bytes) and resolve(kid) is table))
        table["K"] = pydyf.Array()
    # A repeated header cell is the same HTML cell as the one kept: data cells name that one's /ID.
    originals = _header_ids(staying)
    renamed = {
        repeat_id: originals[cell]
        for repeat in repeats  # one at a time: the repeats of one cell share its HTML element
        for cell, repeat_id in _header_ids([repeat]).items()
        if cell in originals
    }
    for group, _ in staying:
        for row in group.children:
            for cell in row.children:
                mark = getattr(cell, "mark", None)
                if isinstance(mark, pydyf.Dictionary) and "Headers" in mark["A"]:
                    mark["A"]["Headers"] = pydyf.Array(
                        pydyf.String(renamed.get(name.string, name.string)) for name in mark["A"]["Headers"]
                    )


def merge_split_tables(document: Any, pdf: Any) -> None:
    """Make a table that spans pages one Table element, its header row repeated on later pages out of the tag tree.

    WeasyPrint tags each page's part of a table as a Table of its own, with the header row it repeats
    there tagged as content: a screen reader meets two tables and the same column names twice. The
    later parts' rows join the first part's Table (the same TBody when they come from one <tbody>); a
    header repeated after the first page, or a footer before the last, leaves the tree, and
    artifact_page_furniture turns its text into an artifact. A table on one page, or a tree not shaped
    as WeasyPrint writes it, is left alone.
    """
    import pydyf

    load_weasyprint()
    from weasyprint.formatting_structure import boxes

    def resolve(reference: bytes) -> Any:
        return pdf.objects[int(reference.split()[0])]

    # The parts of one table share its HTML element; pages and boxes come in reading order.
    parts_of: dict[Any, list[Any]] = {}
    for page in document.pages:
        for box in page._page_box.descendants():
            if isinstance(box, boxes.TableBox) and box.element is not None:
                parts_of.setdefault(box.element, []).append(box)
    for table_boxes in parts_of.values():
        if len(table_boxes) < 2:
            continue
        found = [_table_parts(box, resolve) for box in table_boxes]
        parts = [part for part in found if part is not None]
        if len(parts) < len(found) or len({id(table) for table, _ in parts}) < len(parts):
            continue
        # What moves must be elements: marked content belongs to the page its element's /Pg names.
        moving = [kid for table, _ in parts[1:] for kid in table["K"]]
        moving += [row for _, groups in parts for _, element in groups for row in element["K"]]
        if all(isinstance(kid, bytes) and isinstance(resolve(kid), pydyf.Dictionary) for kid in moving):
            _merge_table_parts(parts, resolve)


def finish_pdf(document: Any, pdf: Any, bleed_pt: float, folds_pt: Sequence[float] = ()) -> None:
    """Adjust the PDF WeasyPrint made: header-cell scopes, one Table per table, bleed boxes as asked, fold marks."""
    set_header_scopes(document)
    merge_split_tables(document, pdf)
    set_bleed_boxes(pdf, bleed_pt)
    draw_fold_marks(pdf, folds_pt)


def _reachable_elements(tree_root: Any) -> set[tuple[int, int]]:
    """Return the object ids of every structure element the tag tree reaches from its root."""
    import pikepdf

    seen: set[tuple[int, int]] = set()
    stack = [tree_root.get("/K")]
    while stack:
        node = stack.pop()
        if isinstance(node, pikepdf.Array):
            stack.extend(node)
        elif isinstance(node, pikepdf.Dictionary) and node.get("/Type", pikepdf.Name.StructElem) == "/StructElem":
            if node.objgen in seen:
                continue
            seen.add(node.objgen)
            stack.append(node.get("/K"))
    return seen


def artifact_page_furniture(pdf: Any) -> None:
    """Mark the running header, footer and page number as /Pagination artifacts, out of the tag tree.

    WeasyPrint 70 tags margin-box text as content and hangs its elements off no parent (only the
    ParentTree points at them; Kozea/WeasyPrint#1836); PDF/UA (ISO 14289-1 7.8) wants page furniture
    to be an artifact. Those unparented elements are the margin boxes, and the header rows a table
    repeats on later pages (merge_split_tables leaves them out): their marked content becomes
    `/Artifact <</Type /Pagination>>`, and each page's other MCIDs are renumbered from 0 in the
    content, the elements and the ParentTree alike.
    """
    import pikepdf

    BDC = pikepdf.Operator("BDC")
    tree = pdf.Root.get("/StructTreeRoot")
    if tree is None or "/ParentTree" not in tree:
        return
    reachable = _reachable_elements(tree)
    nums = tree.ParentTree.get("/Nums")
    if nums is None:  # WeasyPrint writes one flat number tree; anything else is left as it is
        return
    by_key = {int(nums[i]): nums[i + 1] for i in range(0, len(nums) - 1, 2)}
    changed = False
    for page in pdf.pages:
        key = page.obj.get("/StructParents")
        mapping = by_key.get(int(key)) if key is not None else None
        if not isinstance(mapping, pikepdf.Array):
            continue
        elements = list(mapping)
        kept = [mcid for mcid, element in enumerate(elements) if element.objgen in reachable]
        if len(kept) == len(elements):
            continue
        renumber = {old: new for new, old in enumerate(kept)}
        instructions: list[Any] = []
        for instruction in pikepdf.parse_content_stream(page):
            if isinstance(instruction, pikepdf.ContentStreamInstruction) and instruction.operator == BDC:
                operands = list(instruction.operands)
                properties = operands[-1] if len(operands) == 2 else None
                mcid = properties.get("/MCID") if isinstance(properties, pikepdf.Dictionary) else None
                if mcid is not None and int(mcid) in renumber:
                    operands[1] = pikepdf.Dictionary(MCID=renumber[int(mcid)])
                elif mcid is not None:
                    operands = [pikepdf.Name.Artifact, pikepdf.Dictionary(Type=pikepdf.Name.Pagination)]
                instruction = pikepdf.ContentStreamInstruction(operands, BDC)
            instructions.append(instruction)
        page.obj.Contents = pdf.make_stream(pikepdf.unparse_content_stream(instructions))
        # An element holds its MCIDs as plain integers (WeasyPrint writes no marked-content references).
        for element in {elements[old].objgen: elements[old] for old in kept}.values():
            element.K = pikepdf.Array(
                renumber.get(int(kid), int(kid)) if isinstance(kid, int) else kid for kid in element.K
            )
        by_key[int(key)] = pikepdf.Array([elements[old] for old in kept])
        changed = True
    if changed:
        tree.ParentTree.Nums = pikepdf.Array(item for key, value in sorted(by_key.items()) for item in (key, value))


def prune_empty_elements(pdf: Any) -> None:
    """Drop structure elements that hold nothing: no content, no children, no /Alt or /ActualText.

    WeasyPrint tags every element, so an empty one (the blank write-in lines of My plan are empty
    spans with a bottom border, drawn as an artifact) becomes an empty /Span a screen reader visits.
    """
    import pikepdf

    def is_empty(node: Any) -> bool:
        if not isinstance(node, pikepdf.Dictionary) or node.get("/Type", pikepdf.Name.StructElem) != "/StructElem":
            return False
        kids = node.get("/K")
        return (
            (kids is None or (isinstance(kids, pikepdf.Array) and len(kids) == 0))
            and "/Alt" not in node
            and "/ActualText" not in node
        )

    def prune(node: Any, seen: set[tuple[int, int]]) -> None:
        kids = node.get("/K")
        if not isinstance(kids, pikepdf.Array) or node.objgen in seen:
            return
        seen.add(node.objgen)
        for kid in kids:
            if isinstance(kid, pikepdf.Dictionary) and "/S" in kid:
                prune(kid, seen)
        if any(is_empty(kid) for kid in kids):
            node.K = pikepdf.Array(kid for kid in kids if not is_empty(kid))

    tree = pdf.Root.get("/StructTreeRoot")
    if tree is not None:
        prune(tree, set())


PRINT_FLAG = 4  # an annotation's /F bit 3: printed as well as shown


def print_links(pdf: Any) -> None:
    """Give every link annotation the Print flag, so print and screen agree (WeasyPrint sets no flags)."""
    for page in pdf.pages:
        for annotation in page.obj.get("/Annots", ()):
            if annotation.get("/Subtype") == "/Link":
                annotation.F = int(annotation.get("/F", 0)) | PRINT_FLAG


def retag_pdf(data: bytes) -> bytes:
    """Finish the tags of a PDF WeasyPrint wrote: page furniture as artifacts, no empty elements, links printed."""
    import io

    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        artifact_page_furniture(pdf)
        prune_empty_elements(pdf)
        print_links(pdf)
        out = io.BytesIO()
        # deterministic_id: the same handout gives the same bytes, as WeasyPrint's own output does.
        pdf.save(out, deterministic_id=True, compress_streams=True)
        return out.getvalue()


@dataclass(frozen=True)
class Renderer:
    """What one process reuses across renders: a font configuration and parsed stylesheets."""

    font_config: Any
    stylesheets: dict[str, tuple[Any, ...]]


def renderer_versions() -> dict[str, str]:
    """Return the versions of WeasyPrint, pydyf and Pango without importing WeasyPrint."""
    import ctypes
    import ctypes.util
    from importlib.metadata import version

    pango = "unknown"
    name = ctypes.util.find_library("pango-1.0")
    if name:
        library = ctypes.CDLL(name)
        library.pango_version_string.restype = ctypes.c_char_p
        pango = library.pango_version_string().decode()
    return {"weasyprint": version("weasyprint"), "pydyf": version("pydyf"), "pango": pango}


def make_renderer(
    stylesheet_paths: Mapping[str, Sequence[Path]], roots: Sequence[Path], fallbacks: Sequence[tuple[Path, Path]] = ()
) -> Renderer:
    """Parse each named set of stylesheets once, loading their fonts into one configuration."""
    load_weasyprint()
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import FatalURLFetchingError

    font_config = FontConfiguration()
    fetcher = fetcher_class()(roots, fallbacks)
    try:
        parsed = {
            name: tuple(CSS(filename=str(path), url_fetcher=fetcher, font_config=font_config) for path in paths)
            for name, paths in stylesheet_paths.items()
        }
    except FatalURLFetchingError as exc:  # a BaseException in WeasyPrint: it must not pass for a crash
        raise HandoutError(f"cannot load stylesheets: {fetcher.refused[0] if fetcher.refused else exc}") from None
    if fetcher.refused:
        raise HandoutError(f"cannot load stylesheets: {fetcher.refused[0]}")
    return Renderer(font_config=font_config, stylesheets=parsed)


def render_pdf(
    html: str,
    *,
    base_url: str,
    roots: Sequence[Path],
    fallbacks: Sequence[tuple[Path, Path]] = (),
    bleed_pt: float = 0.0,
    fold_marks_pt: Sequence[float] = (),
    column_width_pt: float | None = None,
    renderer: Renderer | None = None,
    stylesheet_set: str = "",
    html_class: Callable[..., Any] | None = None,
) -> RenderedPdf:
    """Render HTML to tagged PDF/UA-1 reading only under `roots`; mark folds and measure regions if asked.

    `fold_marks_pt` are the folds' distances from the trim's left edge; their marks go outside the trim.
    """
    weasyprint = load_weasyprint()
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import FatalURLFetchingError

    html_class = html_class or weasyprint.HTML
    fetcher = fetcher_class()(roots, fallbacks)
    font_config = renderer.font_config if renderer else FontConfiguration()
    stylesheets = renderer.stylesheets[stylesheet_set] if renderer else ()
    try:
        with render_errors() as failed:

            def lay_out(sheets: Sequence[Any]) -> Any:
                return html_class(string=html, base_url=base_url, url_fetcher=fetcher).render(
                    font_config=font_config, stylesheets=sheets, pdf_variant=PDF_VARIANT
                )

            document = lay_out(stylesheets)
            for tightening in TIGHTER_CSS:
                if len(document.pages) < 2 or not holds_only(document.pages[-1], LONE_LAST_CLASS):
                    break
                document = lay_out((*stylesheets, weasyprint.CSS(string=tightening)))
            # WeasyPrint puts the BleedBox at most 10 pt outside the trim, and the media box also
            # holds the crop marks, so the finisher sets the BleedBox to the bleed asked for.
            data = document.write_pdf(
                pdf_variant=PDF_VARIANT,
                custom_metadata=True,
                finisher=lambda document, pdf: finish_pdf(document, pdf, bleed_pt, fold_marks_pt),
            )
    except FatalURLFetchingError as exc:
        cause = exc.__cause__ or exc
        raise HandoutError(f"cannot render: {readable_url(str(cause), base_url)}") from None
    except RecursionError:
        raise HandoutError("cannot render: the handout or one of its images is nested too deeply") from None
    except (OSError, ValueError, SyntaxError, ArithmeticError, MemoryError) as exc:
        # Pillow and the PDF writer meet a damaged image only when they draw it.
        raise HandoutError(f"cannot render: {type(exc).__name__}: {readable_url(str(exc), base_url)}") from None
    if fetcher.refused:
        raise HandoutError(f"cannot render: {readable_url(fetcher.refused[0], base_url)}")
    if failed:
        raise HandoutError(f"cannot render: {readable_url(failed[0], base_url)}")
    data = retag_pdf(data)
    regions = region_extents(document.pages, column_width_pt) if column_width_pt else ()
    return RenderedPdf(data=data, pages=len(document.pages), regions=regions)


def picture_problem(path: Path, roots: Sequence[Path]) -> str | None:
    """Load and draw one picture the way a handout would, and return why it fails, or None."""
    weasyprint = load_weasyprint()

    # The renderer's own fetcher and drawing code: what check passes, a build can print.
    page = f'<html lang="en"><img src="{path.resolve().as_uri()}" alt="probe" style="width:2in"></html>'
    try:
        render_pdf(page, base_url=path.resolve().parent.as_uri() + "/", roots=roots, html_class=weasyprint.HTML)
    except HandoutError as exc:
        return str(exc).removeprefix("cannot render: ")
    return None
