"""Build one handout: load, check, compose, render, and write it atomically."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .atomic import write_atomic
from .compose import compose, selection
from .errors import HandoutError, Problem, errors
from .layouts import LAYOUTS
from .loader import asset_digests, combine_digests, load_brand, load_sections
from .models import BASE_LANGUAGE, Brand, Handout, PrintOptions, Section, Tailoring
from .output.fit import require_fit
from .output.html import environment, render_html
from .output.pdf import RenderedPdf, Renderer, render_pdf
from .project import Project
from .review import release_problems

MAX_TAILORING_CHARS = 600


@dataclass(frozen=True)
class BuildRequest:
    """What to build and where; `sections=None` means every section."""

    sections: tuple[str, ...] | None
    brand: str
    language: str
    layout: str
    out: Path
    today: dt.date
    html: bool = False
    release: bool = False
    tailoring: Tailoring = field(default_factory=Tailoring)
    print_options: PrintOptions = field(default_factory=PrintOptions)
    appendix: bool = False


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote."""

    pdf_path: Path
    html_path: Path | None
    handout: Handout
    pages: int


def tailoring_problems(tailoring: Tailoring) -> list[Problem]:
    """Return problems with tailoring text without ever quoting it."""
    found = []
    for option, value in (
        ("tailoring.prepared_for", tailoring.prepared_for),
        ("tailoring.counselor", tailoring.counselor),
        ("tailoring.note", tailoring.note),
    ):
        if len(value) > MAX_TAILORING_CHARS:
            found.append(Problem(option, "", f"{len(value)} characters; at most {MAX_TAILORING_CHARS} fit the box"))
    return found


def output_paths(request: BuildRequest, ids: Sequence[str], all_ids: Sequence[str]) -> tuple[Path, Path | None]:
    """Return the PDF path (and HTML path) from `--out`: a .pdf file, or a folder to name it in."""
    out = request.out
    if out.suffix.lower() == ".pdf":
        if out.is_dir():
            raise HandoutError(f"{out}: is a folder; give a .pdf file name or a folder")
        pdf_path = out
    else:
        if out.exists() and not out.is_dir():
            raise HandoutError(f"{out}: not a folder and not a .pdf file name")
        chosen = "all" if list(ids) == list(all_ids) else "+".join(ids)
        # The name says what is in the file, never who it is for.
        what = LAYOUTS[request.layout].stem or f"{request.layout}-{chosen}"
        pdf_path = out / f"{request.brand}-{request.language}-{what}.pdf"
    return pdf_path, (pdf_path.with_suffix(".html") if request.html else None)


@dataclass(frozen=True)
class Inputs:
    """Everything handouts are composed from, loaded from disk once."""

    sections: dict[str, dict[str, Section]]  # language -> section id -> section
    problems: dict[str, list[Problem]]  # language -> problems loading it
    brands: dict[str, tuple[Brand | None, list[Problem]]]
    assets: dict[str, str]  # templates, styles, fonts -> digest

    @property
    def assets_digest(self) -> str:
        """Return one digest of all templates, styles and fonts."""
        return combine_digests(self.assets)


def load_inputs(project: Project, languages: Iterable[str], brands: Iterable[str], today: dt.date) -> Inputs:
    """Load the content of some languages and some brands, with every problem found."""
    sections, problems = {}, {}
    for language in dict.fromkeys(languages):
        sections[language], problems[language] = load_sections(project, language, today)
    return Inputs(
        sections=sections,
        problems=problems,
        brands={brand: load_brand(project, brand) for brand in dict.fromkeys(brands)},
        assets=asset_digests(project),
    )


def compose_request(inputs: Inputs, request: BuildRequest) -> Handout:
    """Check and compose the handout a request asks for from loaded inputs."""
    ids = selection(request.sections)
    if request.layout not in LAYOUTS:
        raise HandoutError(f"unknown layout {request.layout!r}; choose one of {', '.join(LAYOUTS)}")
    layout = LAYOUTS[request.layout]
    if request.html and request.tailoring:
        raise HandoutError("--html cannot be combined with tailoring options: patient text goes into the PDF only")
    if request.appendix and layout.briefs:
        raise HandoutError(
            f"--appendix: a {layout.name} has no room for the source list; use letter, a4 or large-print"
        )
    problems = tailoring_problems(request.tailoring)
    sections = inputs.sections[request.language]
    found = inputs.problems[request.language]
    reported = {p.path for p in found}
    if not layout.for_patients and request.sections is None:
        # The record covers every section the language has; a missing translation is not a hole in it.
        ids = tuple(i for i in ids if i in sections or f"content/{request.language}/{i}.md" in reported)
    wanted = {f"content/{request.language}/{i}.md" for i in ids}
    # A broken section the handout does not include must not block it.
    problems += [p for p in errors(found) if p.path in wanted or not p.path.endswith(".md")]
    problems += [
        Problem(path, "", "file not found")
        for i in ids
        if i not in sections and (path := f"content/{request.language}/{i}.md") not in reported
    ]
    if layout.briefs:
        problems += [
            Problem(s.path, "brief", f"missing; the {layout.name} prints each section's brief")
            for i in ids
            if (s := sections.get(i)) is not None and not s.brief
        ]
    brand, brand_found = inputs.brands[request.brand]
    problems += errors(brand_found)
    if problems or brand is None:
        raise HandoutError(f"cannot build: {len(problems)} problem(s)", problems)
    if request.release:
        refused = release_problems([sections[i] for i in ids], request.today, inputs.sections.get(BASE_LANGUAGE))
        if refused:
            raise HandoutError(f"--release refused {len(refused)} problem(s)", refused)
    return compose(
        ids,
        sections,
        brand,
        language=request.language,
        layout=request.layout,
        tailoring=request.tailoring,
        assets=inputs.assets_digest,
        tool_version=__version__,
        print_options=request.print_options,
        today=request.today,
        appendix=request.appendix,
    )


def prepare(project: Project, request: BuildRequest) -> Handout:
    """Load, check and compose the handout a request asks for, without rendering it."""
    # English is loaded too: a release of a translation checks it against the current original.
    languages = [request.language, BASE_LANGUAGE]
    return compose_request(load_inputs(project, languages, [request.brand], request.today), request)


def render_handout(
    handout: Handout,
    html: str,
    project: Project,
    *,
    render: Callable[..., RenderedPdf] = render_pdf,
    renderer: Renderer | None = None,
) -> RenderedPdf:
    """Render a handout's HTML to PDF and refuse it if it does not fit its layout."""
    layout = LAYOUTS[handout.layout]
    rendered = render(
        html,
        base_url=project.base_url,
        roots=project.readable_dirs,
        bleed_pt=handout.print_options.bleed_pt,
        column_width_pt=layout.panel_width_pt or None,
        **({"renderer": renderer, "stylesheet_set": handout.layout} if renderer else {}),
    )
    return require_fit(layout, rendered)


def build(
    project: Project,
    request: BuildRequest,
    *,
    render: Callable[..., RenderedPdf] = render_pdf,
) -> BuildResult:
    """Build one handout PDF (and optionally its HTML) from the project's inputs."""
    handout = prepare(project, request)
    pdf_path, html_path = output_paths(request, handout.section_ids, selection(None))
    env = environment(project.templates_dir)
    rendered = render_handout(handout, render_html(handout, env), project, render=render)
    html = render_html(handout, env, base_href=project.base_url) if html_path is not None else None
    # Everything is rendered in memory first, so a failed render writes nothing.
    write_atomic(pdf_path, rendered.data)
    if html_path is not None and html is not None:
        write_atomic(html_path, html.encode("utf-8"))
    return BuildResult(pdf_path=pdf_path, html_path=html_path, handout=handout, pages=rendered.pages)
