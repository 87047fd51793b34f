"""The tool as a clinic installs it: a wheel in a fresh virtualenv, used in a project of the clinic's own."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from clinic import add_own_section_and_brand
from conftest import ROOT, TODAY
from pdfcheck import text_of

pytestmark = pytest.mark.render

JOBS = """\
output = "out/batch"

[[handout]]
name = "welcome"
sections = ["OUR-SERVICES", "overdose-safety"]
brands = ["north"]
languages = ["en"]
layouts = ["letter", "large-print"]
"""


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command as a user would in a terminal: no project in the environment, today fixed."""
    env = {k: v for k, v in os.environ.items() if k not in ("HANDOUTS_ROOT", "PYTHONPATH")}
    env["HANDOUTS_TODAY"] = TODAY.isoformat()
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from this checkout, offline, with the build backend the test extras install."""
    dist = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, ROOT, cwd=dist)
    assert built.returncode == 0, built.stderr
    return next(dist.glob("handouts-*.whl"))


def test_the_wheel_carries_templates_styles_fonts_catalogs_and_the_sample_sections(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "handouts/_data/templates/base.html.j2",
        "handouts/_data/templates/i18n/es.toml",
        "handouts/_data/styles/trifold.css",
        "handouts/_data/styles/fonts/AtkinsonHyperlegible-Regular.ttf",
        "handouts/_data/styles/fonts/OFL.txt",
        "handouts/_data/content/en/mat.md",
        "handouts/_data/content/es/naloxone-step-6.svg",
        "handouts/skeleton/brand.toml",
    ):
        assert name in names, name
    # Only the tool: no tests, no checkout-only files, no compiled leftovers.
    assert not [n for n in names if n.startswith(("tests/", "generate.py")) or "__pycache__" in n]


def test_a_clinic_installs_the_wheel_and_builds_checks_and_batches_its_own_project(wheel: Path, tmp_path: Path) -> None:
    # The packages the tool needs come from this environment (a path file, after the new environment's
    # own site-packages, so no .pth of this one runs); the tool itself comes only from the wheel.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python, handouts = env_dir / "bin/python", env_dir / "bin/handouts"
    own = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip()
    paths = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    Path(own, "dependencies.pth").write_text("".join(f"{path}\n" for path in paths))
    install = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", wheel, cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    where = run(python, "-c", "import handouts; print(handouts.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(env_dir)), where.stdout

    clinic = tmp_path / "clinic"
    made = run(handouts, "init", clinic, "--brand", "north-clinic", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    add_own_section_and_brand(clinic)
    (clinic / "jobs/welcome.toml").write_text(JOBS)

    # From a folder inside the project, as a clinic's staff would work: no --root.
    inside = clinic / "content" / "en"
    check = run(handouts, "check", cwd=inside)
    assert check.returncode == 0, check.stdout + check.stderr
    # Its own section has no translation yet in the four languages init copied.
    assert check.stdout.splitlines()[-1] == "OK with 4 warnings in 4 files."

    build = run(handouts, "build", "--brand", "north", "--sections", "our-services,mat", cwd=inside)
    assert build.returncode == 0, build.stderr
    pdf = inside / build.stdout.strip()
    assert pdf.parent == inside / "out"
    text = text_of(pdf)
    assert "Care at our clinic" in text and "Northside Recovery Clinic" in text and "Methadone" in text

    batch = run(handouts, "batch", clinic / "jobs/welcome.toml", "-j", "1", cwd=clinic)
    assert batch.returncode == 0, batch.stdout + batch.stderr
    built = sorted(p.relative_to(clinic / "out/batch").as_posix() for p in (clinic / "out/batch").rglob("*.pdf"))
    assert built == [
        "north/en/welcome-large-print.pdf",
        "north/en/welcome-letter.pdf",
        "review-record-north-en.pdf",
    ]
    assert "Care at our clinic" in text_of(clinic / "out/batch/north/en/welcome-letter.pdf")
    again = run(handouts, "batch", clinic / "jobs/welcome.toml", "-j", "1", cwd=clinic)
    assert again.stdout.startswith("Built 0, unchanged 3, failed 0"), again.stdout
