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


def batch(project: Path, jobs: Path, out: Path, *extra: str) -> tuple[float, str]:
    """Run the batch command; return wall seconds (process start to exit) and its output."""
    command = [sys.executable, str(ROOT / "generate.py"), "--root", str(project), "batch", str(jobs), "--out", str(out)]
    started = time.perf_counter()
    result = subprocess.run([*command, *extra], capture_output=True, text=True, check=False)  # noqa: S603
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"batch failed:\n{result.stdout}\n{result.stderr}")
    return seconds, result.stdout.strip().splitlines()[-1]


def write_html_files(project: Path, jobs: Path, html_dir: Path) -> list[Path]:
    """Write the standalone HTML of every handout the batch builds (no PDF rendering)."""
    from handouts.batch.plan import spec_of
    from handouts.compose import compose_spec
    from handouts.inputs import load_inputs
    from handouts.inputs.brands import brand_ids
    from handouts.inputs.jobs import expand, parse_jobs
    from handouts.inputs.sections import languages
    from handouts.output.html import environment, render_html
    from handouts.project import Project

    p = Project(project)
    job_file, problems = parse_jobs(str(jobs), jobs.read_text(), brands=brand_ids(p), languages=languages(p))
    assert job_file is not None, problems
    outputs = expand(job_file)
    today = dt.date.today()
    inputs = load_inputs(p, ["en"], [o.brand for o in outputs], today)
    env = environment(p.templates_dir)
    paths = []
    for output in outputs:
        handout = compose_spec(spec_of(output), inputs, today)
        path = html_dir / output.key.replace("/", "_").replace(".pdf", ".html")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(handout, env, base_href=p.base_url))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, default=10, help="brands in the timed set (x 20 handouts)")
    parser.add_argument("--memory-brands", type=int, default=50, help="brands in the memory run (x 20 handouts)")
    parser.add_argument("--shell-files", type=int, default=20)
    args = parser.parse_args()
    n = args.brands * len(SECTIONS) * len(LAYOUTS)
    with tempfile.TemporaryDirectory(prefix="handouts-bench-") as tmp:
        where = Path(tmp)
        project = make_project(where, args.brands)
        jobs = write_jobs(project)
        out = where / "out"
        machine = f"{platform.platform()}; {os.cpu_count()} CPUs; Python {platform.python_version()}"
        print(f"# {n} handouts; {dt.date.today()}; {machine}")

        a, line_a = batch(project, jobs, out, "-j", "2", "--force")
        print(f"(a) batch -j 2, full rebuild: {a:.1f} s, {a / n * 1000:.0f} ms per handout  [{line_a}]")

        html_files = write_html_files(project, jobs, where / "html")
        b = plain_loop(html_files, where / "plain")
        print(f"(b) plain WeasyPrint loop, one process: {b:.1f} s, {b / n * 1000:.0f} ms per handout")

        files = html_files[:: max(1, len(html_files) // args.shell_files)][: args.shell_files]
        c = shell_loop(files, where / "shell")
        c_each = c / len(files)
        print(
            f"(c) weasyprint command in a shell loop, {len(files)} files: {c:.1f} s, {c_each * 1000:.0f} ms per handout"
        )

        d, line_d = batch(project, jobs, out, "-j", "2")
        print(f"(d) no-op rebuild: {d:.2f} s for {n} handouts  [{line_d}]")

        section = project / "content/en/self-help.md"
        section.write_text(section.read_text().replace("version: 1.0.0", "version: 1.0.1", 1))
        e, line_e = batch(project, jobs, out, "-j", "2")
        print(f"(e) rebuild after bumping self-help: {e:.1f} s  [{line_e}]")

        a_each = a / n
        print(f"ratio (a)/(b) per handout: {a_each / (b / n):.2f} (target <= 0.6)")
        print(f"ratio (c)/(a) per handout: {c_each / a_each:.1f} x faster (target >= 12)")
        print(f"(d) target < 1 s: {'met' if d < 1 else 'missed'}")

        memory_project = make_project(where / "memory", args.memory_brands)
        memory_jobs = write_jobs(memory_project)
        m = args.memory_brands * len(SECTIONS) * len(LAYOUTS)
        seconds, line_m = batch(memory_project, memory_jobs, where / "memory-out", "-j", "2", "--force")
        peak = re.search(r"peak worker memory (\d+) MiB", line_m)
        mib = peak[1] if peak else "?"
        print(f"memory run, {m} handouts in {seconds:.0f} s: peak worker memory {mib} MiB (target < 300)")


if __name__ == "__main__":
    main()
