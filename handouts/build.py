"""Build one handout: check its spec, render it warm, name it, and write it atomically."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .atomic import NamesTaken, write_atomic, write_new
from .compose import HandoutSpec, compose_spec, selection
from .errors import HandoutError, Problem
from .inputs import load_inputs
from .layouts import LAYOUTS
from .models import BASE_LANGUAGE, Handout
from .output.pdf import RenderedPdf, render_pdf
from .project import BUILD_TIME_LIMIT, Project, Sections
from .render_service import render_handout, run_limited, standalone_html, warm_tools


@dataclass(frozen=True)
class BuildRequest:
    """Where to write one handout, and whether to write its HTML beside it."""

    spec: HandoutSpec
    out: Path
    html: bool = False


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote."""

    pdf_path: Path
    html_path: Path | None
    handout: Handout
    pages: int


# A tailored copy in a folder is numbered; past this many, the folder wants tidying, not more copies.
MAX_PERSONAL_COPIES = 9999
# Room for the brand, language, layout and suffixes too within a file name's 255 bytes.
MAX_CHOSEN_NAME = 120
PRIVATE_MODE = 0o600


def out_problem(out: Path) -> Problem | None:
    """Return why `out` is neither a .pdf file name nor a folder to name the PDF in, or None."""
    if out.is_dir():
        if out.suffix.lower() == ".pdf":
            return Problem("out", "", f"{out}: is a folder; name a .pdf file, or a folder not ending in .pdf")
        return None
    if out.suffix.lower() == ".pdf":
        return None
    if out.exists():
        return Problem("out", "", f"{out}: is a file but not a .pdf; name a .pdf file or a folder")
    if out.suffix:
        # `-o notes.txt` is a slip, not a request for a folder called notes.txt.
        return Problem("out", "", f"{out}: not a .pdf file name and no such folder; name a .pdf file or a folder")
    return None


def output_paths(request: BuildRequest, ids: tuple[str, ...], plan: Sections) -> tuple[Path, Path | None]:
    """Return the PDF path (and HTML path) from `out`: a .pdf file, or a folder to name it in.

    A tailored copy in a folder gets the first free of `personal_names` of this path when written.
    """
    out, spec = request.out, request.spec
    if out.suffix.lower() == ".pdf":
        pdf_path = out
    else:
        chosen = "all" if ids == selection(None, plan) else "+".join(ids)
        if len(chosen) > MAX_CHOSEN_NAME:
            # Many long ids would pass a file name's 255 bytes: the count and a short hash of them instead.
            digest = hashlib.sha256("+".join(ids).encode()).hexdigest()[:8]
            chosen = f"{len(ids)}-sections-{digest}"
        # The name says what is in the file and what it is for, never who it is for.
        what = LAYOUTS[spec.layout].stem or f"{spec.layout}-{chosen}"
        options = spec.print_options
        shop = "-print-shop" if options.bleed_pt or options.crop_marks else ""
        pdf_path = out / f"{spec.brand}-{spec.language}-{what}{shop}.pdf"
    return pdf_path, (pdf_path.with_suffix(".html") if request.html else None)


def personal_names(path: Path) -> Iterator[Path]:
    """Yield the names a tailored copy of `path` may take: NAME-personal-1.pdf, NAME-personal-2.pdf, ..."""
    for number in range(1, MAX_PERSONAL_COPIES + 1):
        yield path.with_name(f"{path.stem}-personal-{number}{path.suffix}")


def prepare(project: Project, spec: HandoutSpec, today: dt.date) -> tuple[Handout, str]:
    """Load the inputs a spec needs, check it and compose its handout; return it with the assets digest."""
    # English is loaded too: a release of a translation checks it against the current original.
    inputs = load_inputs(project, [spec.language, BASE_LANGUAGE], [spec.brand], today)
    return compose_spec(spec, inputs, today), inputs.assets_digest


def build(
    project: Project,
    request: BuildRequest,
    today: dt.date,
    *,
    render: Callable[..., RenderedPdf] = render_pdf,
    time_limit: float | None = BUILD_TIME_LIMIT,
) -> BuildResult:
    """Build one handout PDF (and optionally its HTML); a render past `time_limit` seconds is killed."""
    if request.html and request.spec.tailoring:
        # Patient text goes into the PDF only, never into a file a browser or an indexer may keep.
        raise HandoutError("cannot build", [Problem("html", "", "cannot be combined with tailoring")])
    spec = request.spec
    try:
        problem = out_problem(request.out)
    except OSError as exc:  # a name too long, a folder that cannot be read
        raise HandoutError(f"{request.out}: {exc.strerror or exc}") from None
    if problem is not None:
        raise HandoutError("cannot build", [problem])
    handout, assets = prepare(project, spec, today)
    pdf_path, html_path = output_paths(request, handout.section_ids, project.sections)
    # A tailored copy given a file name takes that name only while it is free: said before the render,
    # and made sure of when the file is written.
    named = request.out.suffix.lower() == ".pdf"
    if spec.tailoring and named and os.path.lexists(pdf_path):
        raise HandoutError(_taken(pdf_path))

    def render_both() -> tuple[RenderedPdf, str | None]:
        rendered = render_handout(handout, project, assets, render=render)
        html = standalone_html(handout, project, assets, extras=rendered.extras) if html_path is not None else None
        return rendered, html

    if time_limit is None:
        rendered, html = render_both()
    else:
        # Warmed here, so the child that renders (and may be killed) starts with the tools loaded,
        # and this process keeps them for the next build.
        warm_tools(str(project.root), assets)
        rendered, html = run_limited(render_both, time_limit)
    # Everything is rendered in memory first, so a failed render writes nothing.
    if spec.tailoring:
        pdf_path = _write_personal(pdf_path, rendered.data, numbered=not named)
    else:
        _write(pdf_path, rendered.data)
    if html_path is not None and html is not None:
        _write(html_path, html.encode("utf-8"))
    return BuildResult(pdf_path=pdf_path, html_path=html_path, handout=handout, pages=rendered.pages)


def _taken(path: Path) -> str:
    return f"{path}: already exists; a tailored copy never replaces a file (name a new one, or a folder)"


def _write_personal(path: Path, data: bytes, *, numbered: bool) -> Path:
    # A tailored copy is the patient's: it never replaces a file, nor shares a name with a generic copy
    # or another patient's, and it is readable by its owner only, whatever the umask.
    try:
        return write_new(personal_names(path) if numbered else [path], data, mode=PRIVATE_MODE)
    # Only every name taken: the folder itself may fail with EEXIST too (a file or a broken link there).
    except NamesTaken:
        if numbered:
            raise HandoutError(f"{path.parent}: holds {MAX_PERSONAL_COPIES} personal copies of this handout") from None
        raise HandoutError(_taken(path)) from None
    except OSError as exc:  # a full disk, a read-only or missing folder, a name too long
        where = f"in {path.parent}" if numbered else str(path)
        raise HandoutError(f"cannot write {where}: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data)
    except OSError as exc:  # a full disk, a read-only or missing folder, a name too long
        raise HandoutError(f"cannot write {path}: {exc.strerror or exc}") from None
