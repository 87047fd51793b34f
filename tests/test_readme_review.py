"""The README's review steps, run in the order it gives them, on a copy of the project: each one passes."""

from __future__ import annotations

import datetime as dt
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, days_ago, replace_in

from handouts.cli import cli
from handouts.dates import add_months

START, END = "<!-- review-steps -->", "<!-- /review-steps -->"
# The README's stand-in for a brand of the clinic's own, and the one this test makes.
YOUR_BRAND, OUR_BRAND = "<your-brand>", "our-clinic"
# The translations the README's steps do "the same way" as Spanish.
OTHER_TRANSLATIONS = ("vi", "zh-Hans", "ar")


def review_steps(readme: str) -> list[tuple[list[str], list[str]]]:
    """Return each command of the README's review steps with the output the README says it prints."""
    assert readme.count(START) == 1 and readme.count(END) == 1, "the review-steps markers are missing"
    block = readme.split(START, 1)[1].split(END, 1)[0]
    steps: list[tuple[list[str], list[str]]] = []
    for line in (raw.strip() for raw in block.splitlines()):
        if line.startswith("handouts "):
            steps.append((shlex.split(line)[1:], []))
        elif line.startswith("# → "):
            steps[-1][1].append(line.removeprefix("# → "))
    return steps


def make_current(root: Path, today: dt.date) -> None:
    """Date every section's last review a month before today, as a freshly shipped copy would be."""
    reviewed = today - dt.timedelta(days=30)
    for path in (root / "content").glob("*/*.md"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^last_reviewed: .*$", f"last_reviewed: {reviewed}", text)
        text = re.sub(r"(?m)^next_review_due: .*$", f"next_review_due: {add_months(reviewed, 12)}", text)
        path.write_text(text, encoding="utf-8")


def handouts(*args: str) -> tuple[int, str]:
    """Run the CLI as a user would in the project folder: the real date, no root or date from the environment."""
    result = CliRunner().invoke(cli, list(args), env={"HANDOUTS_TODAY": None, "HANDOUTS_ROOT": None})
    return result.exit_code, result.output


def test_the_readme_gives_commands_and_what_they_print() -> None:
    steps = review_steps((ROOT / "README.md").read_text(encoding="utf-8"))
    commands = [args[0] for args, _ in steps]
    assert commands == ["sections", "sections", "approve", "approve", "check", "record", "build"]
    # Approve first, then check: an approved text edited is an error for check until it is approved again.
    assert ["check", "--strict"] in [args for args, _ in steps]
    assert all(expected for _, expected in steps)


@pytest.mark.render
def test_the_readme_review_steps_pass_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "clinic"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(".git", ".venv", "*.pyc", "__pycache__", ".*cache"))
    today = dt.date.today()
    make_current(root, today)
    # A brand of the clinic's own (README: "Adding a brand"), which a release needs.
    shutil.copytree(root / "brands/example-clinic", root / "brands" / OUR_BRAND)
    replace_in(root / "brands" / OUR_BRAND / "brand.toml", "\nexample = true\n", "\nexample = false\n")
    monkeypatch.chdir(root)
    # An earlier review approved mat and find-help, in English and Spanish.
    earlier = days_ago(20).isoformat()
    for section in ("mat", "find-help"):
        for language in ("en", "es"):
            code, output = handouts("approve", section, "--lang", language, "--reviewer", "Avery Example, MD",
                                    "--date", earlier)  # fmt: skip
            assert code == 0, output
    # Steps 1 to 3, the edits: the English mat and its translation, each with its version bumped.
    replace_in(root / "content/en/mat.md", "version: 3.0.0", "version: 3.0.1")
    replace_in(root / "content/en/mat.md", "You do not need detox before", "You do not need to detox before")
    for language in ("es", *OTHER_TRANSLATIONS):
        replace_in(root / f"content/{language}/mat.md", "version: 3.0.0", "version: 3.0.1")
        replace_in(root / f"content/{language}/mat.md", "translation_of: 3.0.0", "translation_of: 3.0.1")
    replace_in(root / "content/es/mat.md", "\n### ", "\n### Más: ")
    # The order the README gives is needed: before approve, check fails on the edit.
    code, output = handouts("check", "--strict")
    assert code == 1 and "version 3.0.1 needs a review: approve again" in output
    for args, expected in review_steps((ROOT / "README.md").read_text(encoding="utf-8")):
        args = [OUR_BRAND if arg == YOUR_BRAND else arg for arg in args]
        code, output = handouts(*args)
        assert code == 0, f"handouts {shlex.join(args)}:\n{output}"
        for text in expected:
            assert text in output, f"handouts {shlex.join(args)}: {text!r} not in:\n{output}"
        if args[:2] == ["approve", "mat"] and "es" in args:
            # "Approve each other translation the same way": the README's command with its --lang.
            for language in OTHER_TRANSLATIONS:
                code, output = handouts(*[language if arg == "es" else arg for arg in args])
                assert code == 0 and f"content/{language}/mat.md: approved by" in output, output
    assert (root / "mat.pdf").is_file() and (root / "review-record.pdf").is_file()
