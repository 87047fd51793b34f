"""One rule for language codes and next-visit dates: the CLI, job files and (through the same functions) the page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, TODAY
from pdfcheck import text_of

from handouts.cli import cli
from handouts.inputs.fields import parse_language, parse_next_visit

AVAILABLE = ["en", "es"]


def invoke(*args: str) -> Result:
    """Run the CLI on the shipped project with today fixed."""
    env = {"HANDOUTS_ROOT": None, "HANDOUTS_TODAY": TODAY.isoformat()}
    return CliRunner().invoke(cli, ["--root", str(ROOT), *args], env=env, catch_exceptions=False)


@pytest.mark.parametrize(
    ("code", "language"),
    [("sp", "es"), ("SPA", "es"), ("es-US", "es"), ("es_MX", "es"), (" Es ", "es"), ("eng", "en"), ("en-US", "en")],
)
def test_aliases_and_regions_name_the_language_itself(code: str, language: str) -> None:
    assert parse_language(code, AVAILABLE) == language


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ess", "no content in language 'ess' (did you mean 'es'?); languages with content: en, es"),
        ("fr", "no content in language 'fr'; languages with content: en, es"),
        ("../../victim", "expected a language code like en, got '../../victim'"),
        ("", "expected a language code like en, got ''"),
    ],
)
def test_a_language_without_content_says_why_and_the_closest(code: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_language(code, AVAILABLE)
    assert str(caught.value) == message


def test_an_alias_never_hides_a_folder_of_that_name() -> None:
    assert parse_language("sp", ["en", "es", "sp"]) == "sp"


def test_lang_sp_lists_the_spanish_sections() -> None:
    result = invoke("sections", "--lang", "sp")
    assert result.exit_code == 0, result.output
    assert "Dónde encontrar ayuda" in result.output


def test_an_unknown_lang_is_one_error_line_with_a_suggestion(tmp_path: Path) -> None:
    result = invoke("build", "--lang", "ess", "-o", str(tmp_path))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == [
        "Error: Invalid value for --lang: no content in language 'ess' (did you mean 'es'?); "
        "languages with content: ar, en, es, vi, zh-Hans"
    ]
    assert "content/" not in result.output  # no line per missing file, as before
    assert not any(tmp_path.iterdir())


@pytest.mark.render
def test_build_lang_sp_builds_the_spanish_handout(tmp_path: Path) -> None:
    result = invoke("build", "--lang", "sp", "--kit", "Starting buprenorphine", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    pdf = Path(result.output.strip())
    assert pdf.name == "example-clinic-es-letter-mat+overdose-safety+find-help.pdf"
    assert "Dónde encontrar ayuda" in text_of(pdf)


def test_a_past_next_visit_is_refused_in_one_line_without_the_date(tmp_path: Path) -> None:
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    result = invoke("build", "--next-visit", yesterday, "-o", str(tmp_path))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: Invalid value for --next-visit: that day has passed; today is {TODAY.isoformat()}"]
    assert yesterday not in result.output  # a patient's appointment is never echoed
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-22", "that day has passed; today is 2026-11-23"),
        ("2026-02-30", "no such date"),
        ("23/11/2026", "expected a date as YYYY-MM-DD"),
    ],
)
def test_next_visit_rule(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_next_visit(text, TODAY)
    assert str(caught.value) == message
    assert parse_next_visit(" 2026-11-23 ", TODAY) == TODAY  # today itself is a visit still to come


def test_build_help_says_release_refuses_an_example_brand() -> None:
    result = invoke("build", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "refuses draft sections, sections past their review date or behind English, and an example brand" in text
    assert "needs approved, current content and your own brand" in text
