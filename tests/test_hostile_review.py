"""A review record that cannot be forged: front matter read strictly, approve writing exactly what loads back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import AVERY, Invoke, replace_in

from handouts.inputs.frontmatter import split_front_matter

MAT = "content/en/mat.md"


def meta(path: Path) -> dict[str, Any]:
    """Load a section file's front matter as check and build read it."""
    found, _, problems = split_front_matter(str(path), path.read_text(encoding="utf-8"))
    assert found is not None, problems
    return found


# --- 1. Keys given twice are an error for check, build and approve -----------------------------------


FORGED = (
    (
        "last_reviewed: 2026-11-20",
        '"reviewers":\n  - name: Mallory Forger\n    credentials: MD\nlast_reviewed: 2026-11-20',
        "duplicate key 'reviewers' at line 14 (first at line 7)",
    ),
    (
        "next_review_due: 2027-11-20\n",
        'next_review_due: 2027-11-20\n"next_review_due": 2099-01-01\n',
        "duplicate key 'next_review_due' at line 16 (first at line 15)",
    ),
    (
        "    credentials: MD\n",
        "    credentials: MD\n    'name': Mallory Forger\n",
        "duplicate key 'name' at line 10 (first at line 8)",
    ),
    (
        "    url: https://www.fda.gov/drugs/information-drug-class/",
        "    url: https://evil.example/\n    url: https://www.fda.gov/drugs/information-drug-class/",
        "duplicate key 'url' at line 19 (first at line 18)",
    ),
    ("status: draft\n", "status: draft\n? status\n: approved\n", "duplicate key 'status' at line 7 (first at line 6)"),
)


@pytest.mark.parametrize(("old", "new", "message"), FORGED, ids=["reviewers", "due", "in-reviewer", "in-source", "?"])
def test_a_key_given_twice_at_any_level_fails_check_build_and_approve(
    run: Invoke, project: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = project / MAT
    replace_in(path, old, new)
    before = path.read_bytes()
    line = f"{MAT}: front matter: {message}"
    check = run("check")
    assert check.exit_code == 1 and line in check.output.splitlines()
    build = run("build", "--sections", "mat", "-o", str(tmp_path / "x.pdf"))
    assert build.exit_code == 1 and build.output.splitlines() == ["Error: cannot build: 1 problem(s)", line]
    refused = run("approve", "mat", "--reviewer", AVERY)
    assert refused.exit_code == 1 and refused.output.splitlines() == ["Error: cannot approve: 1 problem(s)", line]
    assert path.read_bytes() == before and not (tmp_path / "x.pdf").exists()
    assert "Traceback" not in check.output + build.output + refused.output


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (
            [("reviewers:\n", "reviewers: &r\n"), ("last_reviewed:", "key_points: *r\nlast_reviewed:")],
            "alias '*r' at line 14; write the value out",
        ),
        (
            [
                (
                    "  - name: Avery Example\n",
                    "  - <<: {name: Mallory Forger, credentials: MD}\n    name: Avery Example\n",
                )
            ],
            "merge key '<<' at line 8; write the fields out",
        ),
        (
            [("last_reviewed:", "key_points: " + "[" * 100_000 + "]" * 100_000 + "\nlast_reviewed:")],
            "nested more than 20 levels deep at line 14",
        ),
        (
            [("last_reviewed:", "key_points:\n" + "- " * 100_000 + "x\nlast_reviewed:")],
            "nested more than 20 levels deep at line 15",
        ),
    ],
    ids=["alias", "merge-key", "deep-flow", "deep-block"],
)
def test_aliases_merge_keys_and_deep_nesting_are_refused_quickly(
    run: Invoke, project: Path, edits: list[tuple[str, str]], message: str
) -> None:
    for old, new in edits:
        replace_in(project / MAT, old, new)
    started = time.monotonic()
    check = run("check")
    # libyaml took minutes on 300,000 nested '[' and PyYAML's composer crashed near 100,000 levels.
    assert time.monotonic() - started < 5
    assert check.exit_code == 1
    assert check.output.splitlines()[0] == f"{MAT}: front matter: {message}"
