"""Shared fixtures: a private copy of the project and a CLI runner bound to it."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from handouts import batch as lib
from handouts.cli import cli
from handouts.render_service import RenderJob, RenderOutcome, ThreadExecutor

ROOT = Path(__file__).resolve().parent.parent
# A fixed "today" keeps review-date rules independent of the day the suite runs.
TODAY = dt.date(2026, 11, 23)
PROJECT_DIRS = ("content", "templates", "styles", "brands")
# Module-scoped fixtures that render PDFs: a test using one belongs to the render tier.
RENDERING_FIXTURES = {"pdfs", "rendered", "default_pdf", "spanish_letter", "shipped", "built", "rebuilt"}


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Return the builder of shipped handouts, writing into one folder the whole run shares."""
    # The xdist workers of one run share their base folder's parent: each PDF is made once per run,
    # not once per worker (many modules read the same shipped builds).
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shipped"
    folder.mkdir(exist_ok=True)
    return lambda *options: shipped_pdf(folder, *options)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the one way golden files change: on purpose."""
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ from the current output.")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Start one worker more than there are cores for `-n auto`: many tests wait on servers and sockets."""
    # Measured on 2 cores: the whole suite in 7 m 25 s with 3 workers, 7 m 52 s with 2.
    return (os.cpu_count() or 1) + 1


def unit_tier(config: pytest.Config) -> bool:
    """Say whether this run is the unit tier: `-m "not render"`."""
    return " ".join(str(config.getoption("markexpr") or "").split()) == "not render"


def pytest_configure(config: pytest.Config) -> None:
    """In the unit tier, importing WeasyPrint fails: a test that needs it belongs to the render tier."""
    if unit_tier(config):
        # None in sys.modules makes `import weasyprint` raise ImportError at once, in every worker.
        sys.modules["weasyprint"] = None  # type: ignore[assignment]
        # `check` draws every SVG picture with WeasyPrint, as a build would; the unit tier checks all
        # the rest, and the render tier draws them (tests/test_hostile_render.py, test_hostile_inputs.py).
        import handouts.validation

        handouts.validation.drawing_problems = lambda *args, **kwargs: []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every test that uses a rendered PDF in the render tier, beside those marked by hand."""
    for item in items:
        if RENDERING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.render)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Copy the shipped content, templates, styles and brands into a temporary root."""
    root = tmp_path / "project"
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, root / name)
    return root


# A brand release builds accept: the example clinic's folder without `example = true`.
OWN_BRAND = "own-clinic"


@pytest.fixture
def own_brand(project: Path) -> str:
    """Add a brand that is not an example to the temporary project and return its id."""
    folder = project / "brands" / OWN_BRAND
    shutil.copytree(project / "brands/example-clinic", folder)
    replace_in(folder / "brand.toml", "\nexample = true\n", "\nexample = false\n")
    return OWN_BRAND


Invoke = Callable[..., Result]
# Handouts built from the shipped project, by their build options: modules of one worker share them.
_SHIPPED: dict[tuple[str, ...], Path] = {}


def fake_render(job: RenderJob) -> RenderOutcome:
    """Stand in for WeasyPrint: a small 'PDF' naming what it holds, the same bytes every time."""
    body = f"%PDF-fake {job.key} {job.handout.version}\n".encode() + b"x" * 2000
    return RenderOutcome(job.key, body, "<html>fake</html>" if job.html else None, None, pages=1)


@pytest.fixture
def fake_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the batch command render on threads with the fake renderer, in this process."""

    @contextlib.contextmanager
    def open_fake(where: str, **options: object) -> Iterator[ThreadExecutor]:
        yield ThreadExecutor(2, render=fake_render)

    monkeypatch.setattr(lib, "open_executor", open_fake)


# Options that name the default change nothing: a build asked for with them is the same build.
DEFAULT_OPTIONS = {("--lang", "en"), ("--layout", "letter")}


def canonical(options: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Return build options as sorted (option, value) pairs without the defaults, one key per build."""
    pairs, rest = [], list(options)
    while rest:
        flag = rest.pop(0)
        value = rest.pop(0) if rest and flag.startswith("--") and not rest[0].startswith("--") else ""
        pairs.append((flag, value))
    return tuple(sorted(pair for pair in pairs if pair not in DEFAULT_OPTIONS))


def shipped_pdf(folder: Path, *options: str) -> Path:
    """Build a handout from the shipped project with these build options once per test run."""
    if options not in _SHIPPED:
        name = hashlib.sha256(repr(canonical(options)).encode()).hexdigest()[:16]
        out = folder / f"shipped-{name}.pdf"
        # A worker that finds another building the same PDF waits for it instead of building it twice.
        with (folder / f"shipped-{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not out.exists():
                part = folder / f"shipped-{name}.part.pdf"
                args = ["--root", str(ROOT), "--today", TODAY.isoformat(), "build", *options, "-o", str(part)]
                result = CliRunner().invoke(cli, args)
                assert result.exit_code == 0, result.output
                part.rename(out)
        _SHIPPED[options] = out
    return _SHIPPED[options]


@pytest.fixture
def run(project: Path) -> Invoke:
    """Run the CLI against the temporary project with today fixed, or with the real today if `today=None`."""

    def invoke(*args: str, root: Path | None = None, today: dt.date | None = TODAY) -> Result:
        base = ["--root", str(root or project)] + (["--today", today.isoformat()] if today else [])
        # Without a fixed day the real one counts, as it does for a release: no override from the environment.
        env = {"HANDOUTS_TODAY": None} if today is None else {}
        return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False, env=env)

    return invoke


def days_ago(days: int) -> dt.date:
    """Return the real date some days back: release rules judge review dates by the real calendar."""
    return dt.date.today() - dt.timedelta(days=days)


def spelled(day: dt.date, language: str = "en") -> str:
    """Return a date as a handout prints it: November 2, 2026; 2 de noviembre de 2026."""
    from babel.dates import format_date

    return str(format_date(day, format="long", locale=language))


def in_months(day: dt.date, months: int) -> dt.date:
    """Return the same day some months later, clamped as approve clamps it (Jan 31 + 1 month: Feb 28)."""
    from handouts.dates import add_months

    return add_months(day, months)


def replace_in(path: Path, old: str, new: str) -> None:
    """Edit a fixture file in place, failing if the text to replace is absent."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


AVERY = "Avery Example, MD, Fictional example reviewer, addiction medicine"
SAM = "Sam Placeholder, PharmD, Fictional example reviewer, pharmacy"


def approve(
    run: Invoke,
    *section_ids: str,
    date: str = "2026-11-20",
    reviewers: tuple[str, ...] = (AVERY,),
    today: dt.date | None = TODAY,
) -> None:
    """Approve sections through the CLI, as a clinical reviewer would."""
    for section_id in section_ids:
        args = [arg for reviewer in reviewers for arg in ("--reviewer", reviewer)]
        result = run("approve", section_id, *args, "--date", date, today=today)
        assert result.exit_code == 0, result.output
