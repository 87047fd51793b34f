"""Command line for the handout generator: parse options, call the library, report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from . import __version__
from .dates import parse_date
from .errors import HandoutError, Problem
from .layouts import PATIENT_LAYOUTS
from .models import BASE_LANGUAGE
from .project import BATCH_TIME_LIMIT, BUILD_TIME_LIMIT, CONFIG_FILE, Kit, Project, find_kit
from .signals import Terminated, sigterm_as_interrupt

if TYPE_CHECKING:
    from .batch import Plan, Summary
    from .build import BuildRequest, BuildResult

F = TypeVar("F", bound=Callable[..., Any])
LOG = logging.getLogger("handouts")


def _project(ctx: click.Context) -> tuple[Project, dt.date]:
    obj = ctx.find_root().obj
    # Found on first use, not in the group: `init` needs none, and --help works outside a project.
    if "project" not in obj:
        root = obj["root"]
        if root is not None and not root.is_dir():
            reason = "not a folder" if root.exists() else "no such folder"
            raise click.BadParameter(f"{root}: {reason}", param_hint=obj["root_from"])
        obj["project"] = _find_project(root)
    return obj["project"], obj["today"]


# The library names a handout's fields; a user of this command knows them by its options.
FLAGS = {
    "sections": "--sections",
    "brand": "--brand",
    "language": "--lang",
    "layout": "--layout",
    "release": "--release",
    "appendix": "--appendix",
    "html": "--html",
    "tailoring": "--prepared-for/--counselor/--note",
    "tailoring.prepared_for": "--prepared-for",
    "tailoring.counselor": "--counselor",
    "tailoring.note": "--note",
    "print_options.bleed": "--bleed",
}


# Problems the library finds in these fields are usage errors (exit 2), as Click's own are.
USAGE = {"sections": "--sections", "out": "-o/--out"}


def _flag(problem: Problem) -> str:
    return str(dataclasses.replace(problem, path=FLAGS[problem.path])) if problem.path in FLAGS else str(problem)


def _fail(exc: HandoutError) -> click.ClickException:
    lines = [str(exc)] + [_flag(p) for p in exc.problems]
    return click.ClickException("\n".join(lines))


def _line(problem: Problem) -> str:
    return f"{problem} (warning)" if problem.severity == "warning" else str(problem)


def _language(ctx: click.Context, language: str) -> str:
    from .inputs.fields import parse_language
    from .inputs.sections import languages

    # The one rule job files and the page use too: any case, a region (es-MX) or an alias (sp, spa).
    try:
        return parse_language(language, languages(_project(ctx)[0]))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--lang") from None


def _brand(ctx: click.Context, brand: str | None) -> str:
    return brand.strip().lower() if brand is not None else _project(ctx)[0].default_brand


def _requested(ctx: click.Context, sections: str | None, kit: str | None = None) -> tuple[str, ...] | None:
    if kit is not None:
        if sections is not None:
            raise click.UsageError("--kit and --sections both name the sections; give one of them")
        return _kit(ctx, kit).sections
    # Ids are case-insensitive: MAT and mat name the same section.
    requested = None if sections is None else tuple(s.strip().lower() for s in sections.split(",") if s.strip())
    if requested == ():
        raise click.BadParameter("name at least one section id", param_hint="--sections")
    return requested


def _kit(ctx: click.Context, name: str) -> Kit:
    from .inputs.fields import closest

    project = _project(ctx)[0]
    kit = find_kit(project, name)
    if kit is not None:
        return kit
    if not project.kits:
        raise click.BadParameter(
            f"this project has no kits; name them under [kits] in {CONFIG_FILE}", param_hint="--kit"
        )
    names = [k.name for k in project.kits]
    close = closest(name.strip().lower(), [n.lower() for n in names])
    hint = "".join(f" (did you mean {n!r}?)" for n in names if n.lower() == close)
    listed = ", ".join(f'"{n}"' for n in names)
    raise click.BadParameter(f"unknown kit {name.strip()!r}{hint}; kits: {listed}", param_hint="--kit")


def _kit_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--kit",
        metavar="NAME",
        help=f"A kit of {CONFIG_FILE} (a named set of sections) to {what}, instead of --sections.",
    )


def _out_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "-o", "--out", type=click.Path(path_type=Path), default=Path("out"), show_default=True, help=help_text
    )


# A day: longer is no limit at all. NaN passes every comparison, so a range alone would let it through.
MAX_TIME_LIMIT = 86_400.0


def _finite_seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"expected a number of seconds from 1 to {MAX_TIME_LIMIT:g}")
    return value


def _time_limit_option(default: float, help_text: str = "Seconds a handout may take to render.") -> Callable[[F], F]:
    return click.option(
        "--time-limit",
        type=click.FloatRange(1, MAX_TIME_LIMIT),
        default=default,
        show_default=True,
        callback=_finite_seconds,
        help=help_text,
    )


def _build(ctx: click.Context, request: BuildRequest, time_limit: float) -> BuildResult:
    from .build import build

    project, today = _project(ctx)
    if request.spec.release:
        warn_today_override(ctx)
    try:
        with sigterm_as_interrupt():
            return build(project, request, today, time_limit=time_limit)
    except KeyboardInterrupt as exc:
        click.echo("\nInterrupted; nothing was written.", err=True)
        ctx.exit(143 if isinstance(exc, Terminated) else 130)
    except HandoutError as exc:
        # What was asked for on the command line cannot be built: a usage error, named by its option.
        options = {p.path for p in exc.problems}
        if len(options) == 1 and (option := options.pop()) in USAGE:
            raise click.BadParameter(exc.problems[0].message, param_hint=USAGE[option]) from None
        raise _fail(exc) from None


def _stopped(ctx: click.Context, exc: KeyboardInterrupt, saved: str) -> None:
    """Say a run was stopped (Ctrl-C or SIGTERM) and what of it is kept, and exit 130 or 143."""
    how, code = ("Stopped by SIGTERM", 143) if isinstance(exc, Terminated) else ("Interrupted", 130)
    click.echo(f"\n{how}. {saved}", err=True)
    ctx.exit(code)


def _executor(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .render_service import dask_address

    if value != "local" and not value.startswith("dask://"):
        raise click.BadParameter(f"expected local or dask://HOST:PORT, got {value!r}", param_hint="--executor")
    if value != "local":
        # Checked before anything starts: a bad address would otherwise surface deep inside Dask.
        try:
            dask_address(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--executor") from None
    return value


class Length(click.ParamType):  # type: ignore[type-arg]  # generic only from Click 8.2
    """A print length such as 0.125in, 3mm or 9pt, in points."""

    name = "length"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        """Parse the length or fail as a usage error."""
        from .layouts import parse_length

        if isinstance(value, float):
            return value
        try:
            return parse_length(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _parse_date(option: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _next_visit(ctx: click.Context, value: str | None) -> dt.date | None:
    from .inputs.fields import parse_next_visit

    try:
        # The page's rule too: a date (never echoed: it is a patient's appointment) not yet passed.
        return None if value is None else parse_next_visit(value, ctx.find_root().obj["today"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--next-visit") from None


def _parse_time(option: str, value: str | None) -> dt.time | None:
    from .dates import parse_time

    try:
        return None if value is None else parse_time(value.strip())
    except ValueError as exc:  # the reason only: the value may be a patient's appointment
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="handouts")
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    metavar="DIR",
    envvar="HANDOUTS_ROOT",
    show_default="the nearest folder upward holding a handouts.toml",
    help="Project folder: handouts.toml, content/, brands/, and any templates/ or styles/ of its own.",
)
@click.option("--today", envvar="HANDOUTS_TODAY", hidden=True, help="Pretend today is YYYY-MM-DD (for tests).")
@click.option("-v", "--verbose", is_flag=True, help="Log what is loaded and rendered.")
@click.pass_context
def cli(ctx: click.Context, root: Path | None, today: str | None, verbose: bool) -> None:
    """Make accessible, versioned patient handouts on opioid use disorder treatment."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    # WeasyPrint's CSS warnings are ours to fix in the repo, not the user's to read; the errors it
    # logs (an image it cannot load or draw) fail the render, which says so in one line.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("weasyprint").propagate = verbose
    # Which of the two test overrides set today, if one did: a release build warns about it.
    by_env = ctx.get_parameter_source("today") == ParameterSource.ENVIRONMENT
    ctx.obj = {
        "today": _parse_date("--today", today) or dt.date.today(),
        "today_override": None if today is None else "HANDOUTS_TODAY" if by_env else "--today",
        "root": root,
        # Named as it was given: a user who set HANDOUTS_ROOT long ago and never typed --root looks there.
        "root_from": "HANDOUTS_ROOT" if ctx.get_parameter_source("root") == ParameterSource.ENVIRONMENT else "--root",
    }


def _find_project(root: Path | None) -> Project:
    from .inputs.settings import find_root, load_project, owned_by_another

    if root is None:
        try:
            here = Path.cwd()
        except OSError as exc:  # the folder the shell is in was removed, or cannot be read
            raise click.ClickException(
                f"cannot find the project from the current folder: {exc.strerror or exc}; pass --root DIR"
            ) from None
        root = find_root(here)
        if root is None:
            raise click.ClickException(
                f"no handouts.toml in {here} or any folder above it, and neither --root nor HANDOUTS_ROOT is set; "
                "make a project with `handouts init DIR`, or pass --root DIR"
            )
        if owned_by_another(root):
            raise click.ClickException(
                f"{root / CONFIG_FILE}: owned by another user, so not used as the project here (its templates "
                f"would run as you); pass --root {root} if you trust it"
            )
    project, problems = load_project(root.resolve())
    if problems:
        raise _fail(HandoutError(f"invalid settings: {len(problems)} problem(s)", problems))
    return project


class ProjectCommand(click.Command):
    """A command whose --help ends with what the project offers: its section ids, layouts, languages, brands."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the epilog, then the project's choices (or why there is no project here)."""
        super().format_epilog(ctx, formatter)
        from .inputs.brands import brand_ids
        from .inputs.sections import languages

        try:
            project = _project(ctx)[0]
        except click.ClickException as exc:
            rows = [("project", exc.message)]
        else:
            always = ", ".join(project.sections.always)
            brands = [f"{b} (default)" if b == project.default_brand else b for b in brand_ids(project)]
            rows = [
                ("project", str(project.root)),
                ("section ids", f"{', '.join(project.sections.order)} (always printed: {always})"),
                *((f'kit "{k.name}"', ", ".join(k.sections)) for k in project.kits),
                ("layouts", ", ".join(PATIENT_LAYOUTS)),
                ("languages", ", ".join(languages(project)) or "none yet"),
                ("brands", ", ".join(brands) or "none yet"),
            ]
        with formatter.section("In this project"):
            formatter.write_dl(rows)


def warn_today_override(ctx: click.Context) -> None:
    """Warn on stderr, for a release, that the --today test override cannot make review dates pass."""
    override = ctx.find_root().obj.get("today_override")
    if override:
        click.echo(
            f"warning: {override} is for tests; release rules use the later of it and today's real date", err=True
        )


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--brand", "brand_id", default="my-clinic", show_default=True, metavar="ID", help="Id (folder name) of your brand."
)
def init(folder: Path, brand_id: str) -> None:
    """Make a clinic's handout project in FOLDER: settings, sample sections, a brand to fill in."""
    from .starter import make_project

    brand_id = brand_id.strip().lower()
    try:
        made = make_project(folder, brand_id)
    except HandoutError as exc:
        raise _fail(exc) from None
    click.echo(f"Made a handout project in {folder}: {', '.join(made)}")
    click.echo(f"Next: put your clinic's details in {folder / 'brands' / brand_id / 'brand.toml'}, then run")
    click.echo(f"  cd {folder} && handouts check && handouts build")


@cli.command(cls=ProjectCommand)
@click.option("--sections", "sections", metavar="IDS", help="Comma-separated section ids (default: all).")
@_kit_option("build")
@click.option("--brand", metavar="ID", help="Brand folder under brands/ (default: default_brand in handouts.toml).")
@click.option("--lang", "language", default=BASE_LANGUAGE, show_default=True, help="Content language folder.")
@click.option(
    "--layout", type=click.Choice(list(PATIENT_LAYOUTS), case_sensitive=False), default="letter", show_default=True
)
@_out_option("A .pdf file, or a folder to name the PDF in (a tailored copy: NAME-personal-N.pdf).")
@click.option("--html", is_flag=True, help="Also write the HTML beside the PDF.")
@click.option(
    "--bleed",
    type=Length(),
    default=0.0,
    metavar="LENGTH",
    help="Print-shop bleed around the trimmed page, e.g. 0.125in or 3mm.",
)
@click.option("--crop-marks", is_flag=True, help="Draw crop marks outside the trim (and the bleed).")
@click.option(
    "--release",
    is_flag=True,
    help="A handout for patients: refuses draft sections, sections past their review date or behind English, and "
    "an example brand (example = true, as example-clinic); needs approved, current content and your own brand.",
)
@click.option("--appendix", is_flag=True, help="Add the full list of sources, with links, after the patient pages.")
@click.option("--prepared-for", default="", metavar="NAME", help="Patient's name, printed in 'My plan'.")
@click.option("--counselor", default="", metavar="NAME", help="Counselor's name, printed in 'My plan'.")
@click.option("--note", default="", metavar="TEXT", help="A short note, printed in 'My plan'.")
@click.option("--next-visit", metavar="YYYY-MM-DD", help="Date of the next visit, printed in 'My plan'.")
@click.option("--next-visit-time", metavar="HH:MM", help="Time of the next visit (24-hour), printed in 'My plan'.")
@_time_limit_option(BUILD_TIME_LIMIT)
@click.pass_context
def build(
    ctx: click.Context,
    sections: str | None,
    kit: str | None,
    brand: str | None,
    language: str,
    layout: str,
    out: Path,
    html: bool,
    bleed: float,
    crop_marks: bool,
    release: bool,
    appendix: bool,
    prepared_for: str,
    counselor: str,
    note: str,
    next_visit: str | None,
    next_visit_time: str | None,
    time_limit: float,
) -> None:
    """Build one handout PDF and print its path."""
    from .build import BuildRequest
    from .compose import HandoutSpec
    from .models import PrintOptions, Tailoring

    tailoring = Tailoring(
        prepared_for=prepared_for.strip(),
        counselor=counselor.strip(),
        note=note.strip(),
        next_visit=_next_visit(ctx, next_visit),
        next_visit_time=_parse_time("--next-visit-time", next_visit_time),
    )
    spec = HandoutSpec(
        sections=_requested(ctx, sections, kit),
        brand=_brand(ctx, brand),
        language=_language(ctx, language),
        layout=layout,
        release=release,
        tailoring=tailoring,
        print_options=PrintOptions(bleed_pt=bleed, crop_marks=crop_marks),
        appendix=appendix,
    )
    result = _build(ctx, BuildRequest(spec, out, html), time_limit)
    LOG.info("handout version %s, code %s, %d pages", result.handout.version, result.handout.code, result.pages)
    from .review import changed_note

    # Approved text edited since: the page prints it as a sample, and the terminal says why.
    for note_text in filter(None, map(changed_note, result.handout.sections)):
        click.echo(f"warning: {note_text}", err=True)
    if result.html_path is not None:
        click.echo(str(result.html_path))
    click.echo(str(result.pdf_path))


@cli.command(cls=ProjectCommand)
@click.option("--brand", metavar="ID", help="Brand folder under brands/ (default: default_brand in handouts.toml).")
@click.option("--lang", "language", default=BASE_LANGUAGE, show_default=True, help="Content language folder.")
@click.option("--sections", "sections", metavar="IDS", help="Comma-separated section ids (default: every section).")
@_kit_option("record")
@_out_option("A .pdf file, or a folder to write {brand}-{lang}-review-record.pdf into.")
@_time_limit_option(BUILD_TIME_LIMIT)
@click.pass_context
def record(
    ctx: click.Context,
    brand: str | None,
    language: str,
    sections: str | None,
    kit: str | None,
    out: Path,
    time_limit: float,
) -> None:
    """Write the review record for document control: every section's review and sources, as a PDF."""
    from .build import BuildRequest
    from .compose import HandoutSpec

    spec = HandoutSpec(
        sections=_requested(ctx, sections, kit),
        brand=_brand(ctx, brand),
        language=_language(ctx, language),
        layout="record",
    )
    click.echo(str(_build(ctx, BuildRequest(spec, out), time_limit).pdf_path))


@cli.command("sections", cls=ProjectCommand)
@click.option("--lang", "language", default="en", show_default=True)
@click.option(
    "--due", is_flag=True, help="Only sections that need review (drafts, changed since approval, due soon), and why."
)
@click.pass_context
def sections_command(ctx: click.Context, language: str, due: bool) -> None:
    """List sections with version, review status and reading grade."""
    from .report import sections_report

    project, today = _project(ctx)
    text, problems = sections_report(project, _language(ctx, language), today, due=due)
    click.echo(text)
    for problem in problems:
        click.echo(_line(problem), err=True)
    if any(p.severity == "error" for p in problems):
        ctx.exit(1)


@cli.command("brands")
@click.pass_context
def brands_command(ctx: click.Context) -> None:
    """List the brand folders with name, whether each is an example, and its problems."""
    from .inputs.brands import brand_summaries
    from .report import brands_table

    project, _ = _project(ctx)
    brands = brand_summaries(project)
    problems = [p for b in brands for p in b.problems]
    if brands:
        click.echo(brands_table(brands))
    else:
        problems.append(Problem("brands", "", "no brand folder with a brand.toml"))
    for problem in problems:
        click.echo(_line(problem), err=True)
    # As `sections` does: the listing shows every brand, and exits 1 when one cannot be built with.
    if any(p.severity == "error" for p in problems):
        ctx.exit(1)


@cli.command(cls=ProjectCommand)
@click.argument("section")
@click.option("--lang", "language", default="en", show_default=True)
@click.option(
    "--reviewer",
    "reviewers",
    multiple=True,
    required=True,
    metavar='"Name, Credentials[, Role]"',
    help="A clinical reviewer; repeat for each.",
)
@click.option("--date", "date_text", metavar="YYYY-MM-DD", help="Date of the review (default: today).")
@click.option("--interval-months", type=click.IntRange(1, 60), help="Months until the next review (default: config).")
@click.pass_context
def approve(
    ctx: click.Context,
    section: str,
    language: str,
    reviewers: tuple[str, ...],
    date_text: str | None,
    interval_months: int | None,
) -> None:
    """Approve a section: record its reviewers, review dates and the approved text."""
    from .approve import Approval, latest_review_date, overdue_warning, parse_reviewer
    from .approve import approve as approve_section
    from .compose import unknown_section_message

    project, today = _project(ctx)
    language = _language(ctx, language)
    section = section.strip().lower()
    if section not in project.sections.order:
        raise click.BadParameter(unknown_section_message(project.sections.order, [section]), param_hint="SECTION")
    try:
        parsed = tuple(parse_reviewer(r) for r in reviewers)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--reviewer") from None
    # A later --today (a test override) cannot date a review after the real today.
    latest = latest_review_date(today)
    date = _parse_date("--date", date_text) or latest
    if date > latest:
        raise click.BadParameter(f"{date} is in the future", param_hint="--date")
    approval = Approval(
        section_id=section,
        language=language,
        reviewers=parsed,
        date=date,
        interval_months=interval_months or project.limits.review_interval_months,
    )
    try:
        path = approve_section(project, approval, today)
    except HandoutError as exc:
        raise _fail(exc) from None
    names = "; ".join(r.signature for r in parsed)
    click.echo(f"{path}: approved by {names} on {date}")
    # Approved all the same: the review took place; the warning says what check will say next.
    if (warning := overdue_warning(approval, today)) is not None:
        click.echo(f"warning: {warning}", err=True)


@cli.command(cls=ProjectCommand)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any but this computer's needs --auth-file.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8750, show_default=True, help="Port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Warm render processes (default: CPU count).")
@click.option(
    "--release", is_flag=True, help="Offer only approved sections within their review date; refuse example brands."
)
@click.option(
    "--auth-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Counselors' names and password hashes (handouts add-counselor); needed for any --host but loopback.",
)
@click.option(
    "--public-name",
    "public_names",
    multiple=True,
    metavar="NAME",
    help="A name browsers use for this server (a reverse proxy's site, handouts.clinic.example); "
    "the first is used in links. Repeatable.",
)
@click.option(
    "--smart-client-id",
    default="",
    metavar="ID",
    help="Let an EHR open the page from a patient's chart (SMART launch), with the client id it registered this "
    "page under. Launched users need no password.",
)
@click.option(
    "--smart-fhir",
    "smart_fhir",
    multiple=True,
    metavar="URL",
    help="An EHR's FHIR server (its iss) that may launch the page. Repeatable.",
)
@click.option(
    "--cds-client",
    "cds_clients",
    multiple=True,
    metavar="ISS=JWKS_URL",
    help="Answer CDS Hooks calls from an EHR: its JWT issuer and the address of its public keys. Repeatable.",
)
@_time_limit_option(BUILD_TIME_LIMIT)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int | None,
    release: bool,
    auth_file: Path | None,
    public_names: tuple[str, ...],
    smart_client_id: str,
    smart_fhir: tuple[str, ...],
    cds_clients: tuple[str, ...],
    time_limit: float,
) -> None:
    """Serve the counselor's web page: choose sections, fill in the patient's plan, get the PDF."""
    import os

    from .serve.run import ServeOptions
    from .serve.run import serve as run_server

    project, today = _project(ctx)
    override = ctx.find_root().obj.get("today_override")
    options = ServeOptions(
        host=host.strip(),
        port=port,
        workers=workers or max(1, min(os.cpu_count() or 1, 8)),
        release=release,
        auth_file=auth_file,
        time_limit=time_limit,
        public_names=tuple(name.strip() for name in public_names),
        smart_client_id=smart_client_id.strip(),
        smart_fhir=tuple(url.strip() for url in smart_fhir),
        # ISS=URL: the issuer may itself hold '=' only in a query, which an issuer has none of.
        cds_clients=tuple((iss.strip(), url.strip()) for iss, _eq, url in (c.partition("=") for c in cds_clients)),
    )
    if release:
        warn_today_override(ctx)
    # A test's --today stays fixed; otherwise the page's day moves at midnight with the real one.
    clock = (lambda: today) if override else dt.date.today
    try:
        run_server(project, options, clock=clock, announce=click.echo)
    except HandoutError as exc:
        raise _fail(exc) from None


@cli.command("add-counselor")
@click.argument("auth_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("name")
def add_counselor_command(auth_file: Path, name: str) -> None:
    """Add a counselor (or change their password) in an --auth-file for `serve`; asks for the password."""
    from .serve.security import add_counselor, password_problem

    def valid(password: str) -> str:
        if (reason := password_problem(password)) is not None:
            raise click.BadParameter(reason)
        return password

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True, value_proc=valid)
    try:
        new = add_counselor(auth_file, name.strip(), password)
    except HandoutError as exc:
        raise _fail(exc) from None
    click.echo(f"{'Added' if new else 'Changed the password of'} {name.strip()} in {auth_file}")


@cli.command()
@click.option("--strict", is_flag=True, help="Treat warnings (review due soon, reading grade) as errors.")
@click.pass_context
def check(ctx: click.Context, strict: bool) -> None:
    """Validate every content file and brand; report all problems, then a summary."""
    from .errors import summary
    from .validation import check_project

    project, today = _project(ctx)
    problems: list[Problem] = check_project(project, today, strict=strict)
    for problem in problems:
        click.echo(_line(problem))
    click.echo(summary(problems))
    if any(p.severity == "error" for p in problems):
        ctx.exit(1)


@cli.command(cls=ProjectCommand)
@click.argument("jobs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None, help="Worker processes (default: CPU count).")
@click.option("--force", is_flag=True, help="Rebuild every output, changed or not.")
@click.option("--dry-run", is_flag=True, help="Print what would be built and why; write nothing.")
@click.option("--html", is_flag=True, help="Also write each handout's standalone HTML beside its PDF.")
@click.option("--prune", is_flag=True, help="Delete outputs this job file wrote and no longer asks for, if unchanged.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder (overrides the job file).")
@click.option("--executor", default="local", show_default=True, metavar="local|dask://HOST:PORT", callback=_executor)
@_time_limit_option(BATCH_TIME_LIMIT, "Seconds per handout.")
@click.pass_context
def batch(
    ctx: click.Context,
    jobs_file: Path,
    jobs: int | None,
    force: bool,
    dry_run: bool,
    html: bool,
    prune: bool,
    out: Path | None,
    executor: str,
    time_limit: float,
) -> None:
    """Build every handout a job file lists, rebuilding only what changed.

    Each rebuild says why: on its own line, or, beside the progress bar on a terminal, listed
    first with -v (generate.py -v batch ...).
    """
    import os

    from . import batch as lib

    project, today = _project(ctx)
    try:
        # SIGTERM stops a run as Ctrl-C does: journal folded, workers stopped, finished outputs kept.
        with sigterm_as_interrupt():
            job_file = lib.read_job_file(project, jobs_file)
            out_dir = out or Path(job_file.output)
            make_plan = functools.partial(
                lib.plan_job_file, project, job_file, out_dir, today=today, html=html, force=force, job_path=jobs_file
            )
            if dry_run:
                plan = make_plan()
                _batch_warnings(ctx, plan)
                click.echo("\n".join(lib.dry_run_lines(plan, out_dir, prune=prune)))
                return
            # Planned under the lock: a plan read before another run finished would fold over its work.
            with lib.folder_lock(out_dir, jobs_file):
                plan = make_plan()
                _batch_warnings(ctx, plan)
                workers = jobs or os.cpu_count() or 1
                verbose = bool(ctx.find_root().params.get("verbose"))
                summary = _run_batch(
                    project, plan, out_dir, executor, workers, time_limit, html=html, prune=prune, verbose=verbose
                )
    except KeyboardInterrupt as exc:
        _stopped(ctx, exc, "Finished outputs are saved; run the same command again to build the rest.")
    except HandoutError as exc:
        raise _fail(exc) from None
    click.echo("\n".join(lib.summary_lines(summary, out_dir)))
    if summary.failed or summary.problems:
        ctx.exit(1)


@cli.command("openemr-education", cls=ProjectCommand)
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--brand", metavar="ID", help="Brand folder under brands/ (default: default_brand in handouts.toml).")
@click.option(
    "--lang",
    "langs",
    multiple=True,
    metavar="LANG",
    help="en or es, repeatable (default: both, as the project has them); OpenEMR asks for no other.",
)
@click.option("--sections", "sections", metavar="IDS", help="Only these sections' codes (default: every section's).")
@click.option("--release", is_flag=True, help="Only approved sections within their review date; refuse example brands.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None, help="Worker processes (default: CPU count).")
@click.option("--force", is_flag=True, help="Write every file again, changed or not (never one changed on disk).")
@click.option("--prune", is_flag=True, help="Delete files this folder no longer needs, if unchanged since written.")
@click.option("--dry-run", is_flag=True, help="Print what would be written and why; write nothing.")
@_time_limit_option(BATCH_TIME_LIMIT, "Seconds per handout.")
@click.pass_context
def openemr_education(
    ctx: click.Context,
    folder: Path,
    brand: str | None,
    langs: tuple[str, ...],
    sections: str | None,
    release: bool,
    jobs: int | None,
    force: bool,
    prune: bool,
    dry_run: bool,
    time_limit: float,
) -> None:
    """Write OpenEMR's patient-education folder: each code's untailored letter PDF, as {type}_{code}_{lang}.pdf.

    Point or copy DIR to OpenEMR's sites/default/documents/education. Only a new, empty or earlier
    DIR of this command is written; a rerun writes only what changed.
    """
    import os

    from . import batch as lib
    from .compose import unknown_section_message
    from .inputs.brands import brand_ids, load_brand
    from .inputs.sections import languages
    from .openemr import OPENEMR_LANGUAGES, education_languages

    project, today = _project(ctx)
    chosen = []
    for lang in langs:
        language = _language(ctx, lang)
        if language not in OPENEMR_LANGUAGES:
            raise click.BadParameter(
                f"OpenEMR asks only for en and es files (it gives any other patient the en file); "
                f"{language} files would never be read",
                param_hint="--lang",
            )
        chosen.append(language)
    request_languages = tuple(dict.fromkeys(chosen)) or education_languages(languages(project))
    if not request_languages:
        raise click.UsageError("this project has no en or es content, the only languages OpenEMR asks for")
    brand_id = _brand(ctx, brand)
    if brand_id not in brand_ids(project):
        raise click.BadParameter(
            f"no brand {brand_id!r}; brands: {', '.join(brand_ids(project))}", param_hint="--brand"
        )
    requested = _requested(ctx, sections)
    if requested is not None and (unknown := sorted(set(requested) - set(project.sections.order))):
        raise click.BadParameter(unknown_section_message(project.sections.order, unknown), param_hint="--sections")
    request = lib.EducationRequest(folder, brand_id, request_languages, requested, release, force, prune)
    if release:
        warn_today_override(ctx)
    try:
        with sigterm_as_interrupt():
            # Checked before the lock: taking it makes the folder and leaves a lock file in it.
            lib.check_folder(folder)
            lib.check_brand(brand_id, load_brand(project, brand_id), release=release)
            if dry_run:
                plan = lib.plan_education(project, request, today=today)
                for warning in plan.warnings:
                    click.echo(f"warning: {warning}", err=True)
                click.echo("\n".join(lib.education_plan_lines(plan)))
                writes = sum(len(unit.writes) for unit in plan.units)
                click.echo(
                    f"Plan: {writes} file(s) to write from {plan.renders} handout(s), {plan.unchanged} unchanged, "
                    f"{len(plan.changed)} changed on disk, {len(plan.stale)} stale. Nothing written (--dry-run)."
                )
                return
            with lib.folder_lock(folder, folder):
                plan = lib.plan_education(project, request, today=today)
                for warning in plan.warnings:
                    click.echo(f"warning: {warning}", err=True)
                workers = max(1, min(jobs or os.cpu_count() or 1, plan.renders))

                def report(kind: str, path: str, detail: str) -> None:
                    click.echo(f"{kind} {path}" + (f" ({detail})" if detail else ""), err=kind == "failed")

                with lib.renders_executor(
                    plan.renders, plan.assets, "local", project=project, workers=workers, time_limit=time_limit
                ) as runner:
                    window = lib.window_for("local", workers)
                    summary = lib.run_education(project, plan, runner, window=window, on_event=report)
    except KeyboardInterrupt as exc:
        _stopped(ctx, exc, "Finished files are saved; run the same command again to write the rest.")
    except HandoutError as exc:
        raise _fail(exc) from None
    click.echo("\n".join(lib.education_lines(summary)))
    if summary.failed or summary.changed or summary.problems:
        ctx.exit(1)


def _batch_warnings(ctx: click.Context, plan: Plan) -> None:
    if any(item.output.release for item in plan.items):
        warn_today_override(ctx)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)


def _on_terminal() -> bool:
    # Asked in one place, so that a test can stand in for a terminal.
    import sys

    return sys.stderr.isatty()


def _run_batch(
    project: Project,
    plan: Plan,
    out_dir: Path,
    where: str,
    workers: int,
    time_limit: float,
    *,
    html: bool,
    prune: bool,
    verbose: bool,
) -> Summary:
    import sys

    from . import batch as lib

    show = _on_terminal()
    # Beside a bar only failures are printed; -v lists first what will be built and why. Off a
    # terminal every output has its line with the same reasons, so -v adds nothing there.
    if show and verbose and plan.count("build"):
        click.echo("\n".join(lib.rebuild_lines(plan, out_dir)))
    bar_maker = functools.partial(click.progressbar, file=sys.stderr)
    with (
        lib.executor_for(plan, where, project=project, workers=workers, time_limit=time_limit) as runner,
        lib.progressbar(plan.count("build"), show=show, make=bar_maker) as bar,
    ):
        report = lib.event_reporter(out_dir, bar, lambda text, err: click.echo(text, err=err), with_bar=show)
        window = lib.window_for(where, workers)
        return lib.run(project, plan, out_dir, runner, html=html, prune=prune, window=window, on_event=report)
