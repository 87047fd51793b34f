"""Build one handout: check its spec, render it warm, name it, and write it atomically."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_atomic
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


def output_paths(request: BuildRequest, ids: tuple[str, ...], plan: Sections) -> tuple[Path, Path | None]:
    """Return the PDF path (and HTML path) from `out`: a .pdf file, or a folder to name it in."""
    out, spec = request.out, request.spec
    if out.suffix.lower() == ".pdf":
        if out.is_dir():
            raise HandoutError(f"{out}: is a folder; give a .pdf file name or a folder")
        pdf_path = out
    else:
        if out.exists() and not out.is_dir():
            raise HandoutError(f"{out}: not a folder and not a .pdf file name")
        chosen = "all" if ids == selection(None, plan) else "+".join(ids)
        # The name says what is in the file, never who it is for.
        what = LAYOUTS[spec.layout].stem or f"{spec.layout}-{chosen}"
        pdf_path = out / f"{spec.brand}-{spec.language}-{what}.pdf"
    return pdf_path, (pdf_path.with_suffix(".html") if request.html else None)


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
    handout, assets = prepare(project, request.spec, today)
    try:
        pdf_path, html_path = output_paths(request, handout.section_ids, project.sections)
    except OSError as exc:  # a name too long, a folder that cannot be read
        raise HandoutError(f"{request.out}: {exc.strerror or exc}") from None

    def render_both() -> tuple[RenderedPdf, str | None]:
        rendered = render_handout(handout, project, assets, render=render)
        return rendered, standalone_html(handout, project, assets) if html_path is not None else None

    if time_limit is None:
        rendered, html = render_both()
    else:
        # Warmed here, so the child that renders (and may be killed) starts with the tools loaded,
        # and this process keeps them for the next build.
        warm_tools(str(project.root), assets)
        rendered, html = run_limited(render_both, time_limit)
    # Everything is rendered in memory first, so a failed render writes nothing. A tailored copy
    # is the patient's: readable by its owner only, whatever the umask.
    _write(pdf_path, rendered.data, mode=0o600 if request.spec.tailoring else None)
    if html_path is not None and html is not None:
        _write(html_path, html.encode("utf-8"))
    return BuildResult(pdf_path=pdf_path, html_path=html_path, handout=handout, pages=rendered.pages)


def _write(path: Path, data: bytes, mode: int | None = None) -> None:
    try:
        write_atomic(path, data, mode=mode)
    except OSError as exc:  # a full disk, a read-only or missing folder, a name too long
        raise HandoutError(f"cannot write {path}: {exc.strerror or exc}") from None
