"""Golden HTML: the exact markup every layout gives in both languages; rewritten only with --update-golden."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, TODAY

from handouts.compose import HandoutSpec, compose_spec
from handouts.inputs import load_inputs
from handouts.layouts import LAYOUTS
from handouts.output.html import environment, render_html
from handouts.project import Project

GOLDEN = Path(__file__).parent / "golden"
# The tri-fold holds three sections; the other layouts take every one.
SECTIONS = {"trifold": ("mat", "overdose-safety", "detox")}


@pytest.fixture(scope="module")
def inputs() -> object:
    return load_inputs(Project(ROOT), ["en", "es"], ["example-clinic"], TODAY)


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_html_matches_the_golden_file(
    inputs: object, layout: str, language: str, request: pytest.FixtureRequest
) -> None:
    spec = HandoutSpec(SECTIONS.get(layout), "example-clinic", language, layout)
    handout = compose_spec(spec, inputs, TODAY)  # type: ignore[arg-type]
    html = render_html(handout, environment([ROOT / "templates"]))
    golden = GOLDEN / f"{layout}-{language}.html"
    if request.config.getoption("--update-golden"):
        golden.write_text(html, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing; run pytest --update-golden and review the diff"
    assert html == golden.read_text(encoding="utf-8"), f"{golden.name} differs; if on purpose: pytest --update-golden"
