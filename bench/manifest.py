"""Main-process cost of keeping the manifest true, at 200 and 2000 outputs: it should grow linearly.

Run: python bench/manifest.py. A fake renderer (no WeasyPrint) returns a small PDF at once, so what is
measured is the batch's own work per output: writing the file, its journal line, and folding the
manifest at the end. Prints CPU seconds for each size and the per-output ratio, from one run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 23)


def main() -> None:
    """Run a plan of N outputs through the real run loop with a fake renderer, for two N."""
    from handouts.batch import plan, run
    from handouts.batch.plan import PlanItem
    from handouts.inputs.jobs import Output
    from handouts.project import Project
    from handouts.render_service import InlineExecutor, RenderJob, RenderOutcome

    project = Project(ROOT)
    identity = {"code": "bench", "renderer": {"weasyprint": "-", "pydyf": "-", "pango": "-"}}
    one = Output("x.pdf", "x", ("detox",), "example-clinic", "en", "letter", False)

    def fake(job: RenderJob) -> RenderOutcome:
        return RenderOutcome(job.key, b"%PDF-1.7 " + job.key.encode() * 40, None, None, pages=1)

    results = {}
    for count in (200, 2000):
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            base = plan(project, [one], out / "unused", today=TODAY, identity=identity)
            item = base.items[0]
            items = tuple(
                PlanItem(dataclasses.replace(item.output, key=f"b{i % 50}/h{i}.pdf"), "build", ("new",),
                         item.handout, item.inputs, item.fingerprint)
                for i in range(count)
            )  # fmt: skip
            started = time.process_time()
            summary = run(project, dataclasses.replace(base, items=items), out, InlineExecutor(fake))
            results[count] = time.process_time() - started
            assert len(summary.built) == count
    for count, seconds in results.items():
        print(f"{count:5d} outputs: {seconds:6.2f} s main-process CPU, {seconds / count * 1000:5.2f} ms per output")
    print(f"per-output cost at 2000 / at 200: {results[2000] / 2000 / (results[200] / 200):.2f} (1.0 is linear)")


if __name__ == "__main__":
    main()
