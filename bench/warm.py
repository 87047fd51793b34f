"""A long-running process: what one more handout costs through build(), the render service, and plain warm WeasyPrint.

Run: python bench/warm.py [rounds]. One handout (mat + overdose-safety, letter) is made `rounds` times
each way after a warm-up, in this one process; prints the median per handout and the ratios, from one run.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 23)


def timed(action: object, rounds: int) -> float:
    """Return the median seconds of `rounds` calls, after one warm-up call."""
    action()  # type: ignore[operator]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Measure the three ways and print them with their ratios to plain warm WeasyPrint."""
    from handouts.build import BuildRequest, build, prepare
    from handouts.compose import HandoutSpec
    from handouts.output.html import render_html
    from handouts.output.pdf import PDF_VARIANT, load_weasyprint
    from handouts.project import Project
    from handouts.render_service import render_handout, warm_tools

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    project = Project(ROOT)
    spec = HandoutSpec(("mat", "overdose-safety"), "example-clinic", "en", "letter")
    handout, assets = prepare(project, spec, TODAY)
    env, renderer = warm_tools(str(project.root), assets)
    html = render_html(handout, env)  # no stylesheet links: the parsed sheets are given to render()
    weasyprint = load_weasyprint()
    stylesheets = renderer.stylesheets["letter"]

    def plain() -> bytes:
        document = weasyprint.HTML(string=html, base_url=project.base_url).render(
            font_config=renderer.font_config, stylesheets=stylesheets, pdf_variant=PDF_VARIANT
        )
        return bytes(document.write_pdf(pdf_variant=PDF_VARIANT, custom_metadata=True))

    with tempfile.TemporaryDirectory() as out:
        request = BuildRequest(spec, Path(out) / "h.pdf")
        plain_s = timed(plain, rounds)
        service_s = timed(lambda: render_handout(handout, project, assets), rounds)
        build_s = timed(lambda: build(project, request, TODAY), rounds)
    print(f"plain warm WeasyPrint (HTML given):      {plain_s * 1000:6.0f} ms per handout (median of {rounds})")
    print(f"render service (HTML, PDF, fit check):   {service_s * 1000:6.0f} ms   ratio {service_s / plain_s:.2f}")
    print(f"build() (load, check, render, write):    {build_s * 1000:6.0f} ms   ratio {build_s / plain_s:.2f}")


if __name__ == "__main__":
    main()
