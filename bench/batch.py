"""Benchmark batch builds against plain WeasyPrint; prints the figures bench/README.md records.

Run from the repository root: python bench/batch.py [--brands 10] [--memory-brands 50]
It copies the project to a temporary folder, adds example brands, and builds
brands x 5 single-section handouts x 4 layouts (200 with the default 10 brands).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECTIONS = ("detox", "mat", "behavioral-therapy", "self-help", "overdose-safety")
LAYOUTS = ("letter", "a4", "large-print", "trifold")
PDF_OPTIONS = {"pdf_variant": "pdf/ua-1", "custom_metadata": True}  # the options our renderer uses


def make_project(where: Path, brands: int) -> Path:
    """Copy the project and add brands until there are `brands` of them."""
    project = where / "project"
    for name in ("content", "templates", "styles", "brands"):
        shutil.copytree(ROOT / name, project / name)
    source = project / "brands/example-clinic"
    for i in range(1, brands):
        target = project / f"brands/bench-clinic-{i:02d}"
        shutil.copytree(source, target)
        toml = (target / "brand.toml").read_text()
        (target / "brand.toml").write_text(toml.replace("Maple Street Example Clinic", f"Bench Clinic {i:02d}"))
    return project


def write_jobs(project: Path) -> Path:
    """One job per section, every brand, every layout."""
    jobs = project / "bench.toml"
    tables = [
        f'[[handout]]\nname = "{section}"\nsections = ["{section}"]\nbrands = "*"\nlayouts = {list(LAYOUTS)!r}\n'
        for section in SECTIONS
    ]
    jobs.write_text("\n".join(tables).replace("'", '"'))
    return jobs


def snapshot_tool(where: Path) -> Path:
    """Copy the tool's code and its own templates and styles; return the copy's generate.py.

    Every batch of the run uses this one copy: an edit to the checkout during a run would change the
    code digest in every output's fingerprint and turn the no-op rebuild into a full one.
    """
    tool = where / "tool"
    shutil.copytree(ROOT / "handouts", tool / "handouts", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("templates", "styles", "content"):
        shutil.copytree(ROOT / name, tool / name)
    shutil.copy(ROOT / "generate.py", tool / "generate.py")
    return tool / "generate.py"


def batch(generate: Path, project: Path, jobs: Path, out: Path, *extra: str) -> tuple[float, str]:
    """Run the batch command; return wall seconds (process start to exit) and its output."""
    command = [sys.executable, str(generate), "--root", str(project), "batch", str(jobs), "--out", str(out)]
    started = time.perf_counter()
    result = subprocess.run([*command, *extra], capture_output=True, text=True, check=False)  # noqa: S603
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"batch failed:\n{result.stdout}\n{result.stderr}")
    return seconds, result.stdout.strip().splitlines()[-1]


def write_html_files(project: Path, jobs: Path, html_dir: Path) -> list[Path]:
    """Write the standalone HTML (stylesheets linked) of every output the batch builds; no PDF rendering."""
    from handouts.batch import plan_job_file, read_job_file
    from handouts.project import Project
    from handouts.render_service import standalone_html

    p = Project(project)
    # Planned as the batch plans it (with --force): the same handouts, review records included.
    plan = plan_job_file(p, read_job_file(p, jobs), html_dir / "unused", today=dt.date.today(), html=False, force=True)
    paths = []
    for item in plan.items:
        assert item.handout is not None, item.output.key
        path = html_dir / item.output.key.replace("/", "_").replace(".pdf", ".html")
        path.parent.mkdir(parents=True, exist_ok=True)
        html = standalone_html(item.handout, p, plan.assets)
        assert 'rel="stylesheet"' in html, "the plain loop would render unstyled HTML"
        path.write_text(html)
        paths.append(path)
    return paths


def plain_loop(html_files: list[Path], out: Path) -> float:
    """Render every HTML file with WeasyPrint in this one process, as a hand-rolled script would."""
    import weasyprint

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for path in html_files:
        weasyprint.HTML(filename=str(path)).write_pdf(str(out / (path.stem + ".pdf")), **PDF_OPTIONS)
    return time.perf_counter() - started


def shell_loop(html_files: list[Path], out: Path) -> float:
    """Run the weasyprint command once per file from a shell loop."""
    out.mkdir(parents=True, exist_ok=True)
    listing = out / "files.txt"
    listing.write_text("\n".join(str(p) for p in html_files) + "\n")
    script = (
        f'while read -r f; do "{sys.executable}" -m weasyprint --pdf-variant pdf/ua-1 --custom-metadata '
        f'"$f" "{out}/$(basename "$f" .html).pdf"; done < "{listing}"'
    )
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script], check=True)  # noqa: S603, S607 - our own script
    return time.perf_counter() - started


def built(summary: str) -> int:
    """Return how many outputs a batch's summary line says it built."""
    found = re.match(r"Built (\d+),", summary)
    if found is None:
        raise SystemExit(f"unexpected summary line: {summary}")
    return int(found[1])


def bump_version(text: str) -> tuple[str, str]:
    """Return a section's text with the patch number of its front-matter version raised, and the new version."""
    found = re.search(r"^version: (\d+)\.(\d+)\.(\d+)$", text, re.MULTILINE)
    if found is None:
        raise SystemExit("self-help.md has no version: X.Y.Z line to bump")
    major, minor, patch = found.groups()
    bumped = f"{major}.{minor}.{int(patch) + 1}"
    return text[: found.start()] + f"version: {bumped}" + text[found.end() :], bumped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, default=10, help="brands in the timed set (x 20 handouts)")
    parser.add_argument("--memory-brands", type=int, default=50, help="brands in the memory run (x 20 handouts)")
    parser.add_argument("--shell-files", type=int, default=20)
    args = parser.parse_args()
    handouts = args.brands * len(SECTIONS) * len(LAYOUTS)
    with tempfile.TemporaryDirectory(prefix="handouts-bench-") as tmp:
        where = Path(tmp)
        generate = snapshot_tool(where)
        project = make_project(where, args.brands)
        jobs = write_jobs(project)
        out = where / "out"
        machine = f"{platform.platform()}; {os.cpu_count()} CPUs; Python {platform.python_version()}"
        print(f"# {handouts} handouts and a review record per brand; {dt.date.today()}; {machine}")

        a, line_a = batch(generate, project, jobs, out, "-j", "2", "--force")
        # Per output: the batch also makes one review record per brand and language, and (b) renders them too.
        n = built(line_a)
        print(f"(a) batch -j 2, full rebuild of {n} outputs: {a:.1f} s, {a / n * 1000:.0f} ms per output  [{line_a}]")

        html_files = write_html_files(project, jobs, where / "html")
        b = plain_loop(html_files, where / "plain")
        assert len(html_files) == n, (len(html_files), n)
        print(f"(b) plain WeasyPrint loop, one process: {b:.1f} s, {b / n * 1000:.0f} ms per output")

        files = html_files[:: max(1, len(html_files) // args.shell_files)][: args.shell_files]
        c = shell_loop(files, where / "shell")
        c_each = c / len(files)
        print(f"(c) weasyprint command in a shell loop, {len(files)} files: {c:.1f} s, {c_each * 1000:.0f} ms per file")

        d, line_d = batch(generate, project, jobs, out, "-j", "2")
        print(f"(d) no-op rebuild: {d:.2f} s for {n} outputs  [{line_d}]")

        section = project / "content/en/self-help.md"
        text, bumped = bump_version(section.read_text())
        section.write_text(text)
        e, line_e = batch(generate, project, jobs, out, "-j", "2")
        print(f"(e) rebuild after bumping self-help to {bumped}: {e:.1f} s  [{line_e}]")

        a_each = a / n
        print(f"ratio (a)/(b) per output: {a_each / (b / n):.2f} (target <= 0.6)")
        print(f"ratio (c)/(a) per output: {c_each / a_each:.1f} x faster (target >= 12)")
        print(f"(d) target < 1 s: {'met' if d < 1 else 'missed'}")

        memory_project = make_project(where / "memory", args.memory_brands)
        memory_jobs = write_jobs(memory_project)
        seconds, line_m = batch(generate, memory_project, memory_jobs, where / "memory-out", "-j", "2", "--force")
        m = built(line_m)
        peak = re.search(r"peak worker memory (\d+) MiB", line_m)
        mib = peak[1] if peak else "?"
        print(f"memory run, {m} outputs in {seconds:.0f} s: peak worker memory {mib} MiB (target < 300)")


if __name__ == "__main__":
    main()
