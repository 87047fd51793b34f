"""What one handout costs to render in each layout and language, warm, with the lists in a grid or in CSS columns.

Run: python bench/layouts.py [rounds]. Copies the project twice: as it is, and with the two-column
lists (`::: columns` and Where to get help) set in CSS columns as before issue 23. Each handout is
rendered `rounds` times after a warm-up in this one process; prints the median seconds and the ratio.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 23)
# The stylesheet rules issue 23 replaced: WeasyPrint balances CSS columns by laying them out again and again.
COLUMNS = """
.box-columns ul, .section-find-help ul { display: block; }
.box-columns { columns: 2; column-gap: 18pt; }
.section-find-help ul { columns: 2; column-gap: 18pt; }
"""
COLUMNS_ONE = {"large-print.css": ".box-columns, .section-find-help ul { columns: 1; }",
               "trifold.css": ".back .section-find-help ul { columns: 1; }"}  # fmt: skip
HANDOUTS = (("letter", None), ("a4", None), ("large-print", None), ("trifold", ("mat", "overdose-safety", "detox")))


def copy_project(folder: Path, columns: bool) -> Path:
    """Copy the project's content, templates, styles and brands; with `columns`, put the old rules back."""
    for name in ("content", "templates", "styles", "brands", "handouts.toml"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, folder / name)
    if columns:
        with (folder / "styles/base.css").open("a") as sheet:
            sheet.write(COLUMNS)
        for name, rule in COLUMNS_ONE.items():
            with (folder / "styles" / name).open("a") as sheet:
                sheet.write("\n" + rule + "\n")
    return folder


def median_render(root: Path, layout: str, sections: tuple[str, ...] | None, language: str, rounds: int) -> float:
    """Return the median seconds of one warm render of that handout."""
    from handouts.build import prepare
    from handouts.compose import HandoutSpec
    from handouts.project import Project
    from handouts.render_service import render_handout

    project = Project(root)
    spec = HandoutSpec(sections=sections, brand="example-clinic", language=language, layout=layout)
    handout, assets = prepare(project, spec, TODAY)
    render_handout(handout, project, assets)  # warm-up: fonts and stylesheets
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        render_handout(handout, project, assets)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


LANGUAGES = ("en", "es", "zh-Hans", "vi", "ar")


def main() -> None:
    """Print, per layout and language, the render time with a grid and with CSS columns, and their ratio."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as grid_dir, tempfile.TemporaryDirectory() as columns_dir:
        grid, columns = copy_project(Path(grid_dir), False), copy_project(Path(columns_dir), True)
        print(f"{'handout':<16} {'grid s':>7} {'columns s':>9} {'columns/grid':>12}")
        for layout, sections in HANDOUTS:
            for language in ("en", "es"):
                now = median_render(grid, layout, sections, language, rounds)
                before = median_render(columns, layout, sections, language, rounds)
                print(f"{layout + '-' + language:<16} {now:7.2f} {before:9.2f} {before / now:12.2f}")
        # What a script costs: the same handout in each language, against English (Chinese and Arabic
        # shape with fonts of their own, and Arabic runs right to left).
        print(f"\n{'handout':<20} {'s':>6} {'/English':>9}")
        for layout, sections in HANDOUTS:
            english = median_render(grid, layout, sections, "en", rounds)
            for language in LANGUAGES:
                took = english if language == "en" else median_render(grid, layout, sections, language, rounds)
                print(f"{layout + '-' + language:<20} {took:6.2f} {took / english:9.2f}")


if __name__ == "__main__":
    main()
