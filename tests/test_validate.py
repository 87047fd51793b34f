"""Validation of section front matter and brand data, with exact messages."""

from __future__ import annotations

import colorsys
import datetime as dt
import hashlib
from typing import Any

import pytest

from handouts.color import WHITE, contrast_ratio, nearest_passing
from handouts.dates import add_months
from handouts.errors import Problem, summary
from handouts.inputs.brands import brand_from_data
from handouts.inputs.sections import section_from_text
from handouts.models import Reviewer
from handouts.project import Limits
from handouts.quality import section_warnings
from handouts.review import review_problems

TODAY = dt.date(2026, 11, 23)
PATH = "content/en/mat.md"
GOOD = """---
id: mat
title: Medicines for opioid use disorder
version: 2.0.0
language: en
status: approved
reviewers:
  - name: Avery Example
    credentials: MD
    role: Fictional example reviewer
last_reviewed: 2026-10-01
approved_version: 2.0.0
approved_fingerprint: sha256:{FINGERPRINT}
sources:
  - title: "FDA: MOUD"
    url: https://www.fda.gov/moud
---
You can take medicine. It helps.
""".replace("{FINGERPRINT}", hashlib.sha256(b"You can take medicine. It helps.\n").hexdigest())


def parse(text: str) -> tuple[object, list[str]]:
    section, problems = section_from_text(
        PATH, text, expected_id="mat", expected_language="en", today=TODAY, limits=Limits()
    )
    return section, [str(p) for p in problems]


def test_good_section_builds_a_model() -> None:
    section, problems = parse(GOOD)
    assert problems == []
    assert section is not None
    assert section.version == "2.0.0"  # type: ignore[attr-defined]
    assert section.reviewers == (Reviewer("Avery Example", "MD", "Fictional example reviewer"),)  # type: ignore[attr-defined]
    assert section.next_review_due == dt.date(2027, 10, 1)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "last_reviewed: 2026-10-01",
            "last_reviewed: 2026-13-01",
            "content/en/mat.md: last_reviewed: no such date: '2026-13-01'",
        ),
        (
            "last_reviewed: 2026-10-01",
            "last_reviewed: 2026-02-30",
            "content/en/mat.md: last_reviewed: no such date: '2026-02-30'",
        ),
        (
            "last_reviewed: 2026-10-01",
            "last_reviewed: 2026-W40-4",
            "content/en/mat.md: last_reviewed: expected YYYY-MM-DD, got '2026-W40-4'",
        ),
        (
            "last_reviewed: 2026-10-01",
            "last_reviewed: '20261001'",
            "content/en/mat.md: last_reviewed: expected YYYY-MM-DD, got '20261001'",
        ),
        (
            "last_reviewed: 2026-10-01",
            "last_reviewed: 2026-10-01\nnext_review_due: 2027-W40-5",
            "content/en/mat.md: next_review_due: expected YYYY-MM-DD, got '2027-W40-5'",
        ),
        (
            "last_reviewed: 2026-10-01",
            "last_reviewed: 1 Oct 2026",
            "content/en/mat.md: last_reviewed: expected YYYY-MM-DD, got '1 Oct 2026'",
        ),
        (
            "last_reviewed: 2026-10-01",
            "last_reviewed: 2027-01-05",
            "content/en/mat.md: last_reviewed: 2027-01-05 is in the future",
        ),
        (
            "version: 2.0.0",
            "version: 2.0",
            "content/en/mat.md: version: expected MAJOR.MINOR.PATCH like 1.2.0, got '2.0'",
        ),
        (
            "version: 2.0.0",
            "version: v2",
            "content/en/mat.md: version: expected MAJOR.MINOR.PATCH like 1.2.0, got 'v2'",
        ),
        (
            # Semver's digits are ASCII (batch manifests take the same rule); no leading zeros.
            "version: 2.0.0",
            "version: \u0662.\u0660.\u0660",
            "content/en/mat.md: version: expected MAJOR.MINOR.PATCH like 1.2.0, got '\u0662.\u0660.\u0660'",
        ),
        (
            "version: 2.0.0",
            "version: 2.01.0",
            "content/en/mat.md: version: expected MAJOR.MINOR.PATCH like 1.2.0, got '2.01.0'",
        ),
        (
            "status: approved",
            "status: final",
            "content/en/mat.md: status: expected draft or approved, got 'final'",
        ),
        ("id: mat", "id: meds", "content/en/mat.md: id: expected 'mat' (the file name), got 'meds'"),
        ("language: en", "language: es", "content/en/mat.md: language: expected 'en' (the folder), got 'es'"),
        (
            "title: Medicines for opioid use disorder\n",
            "",
            "content/en/mat.md: title: required field missing",
        ),
        (
            "    url: https://www.fda.gov/moud",
            "    url: www.fda.gov",
            "content/en/mat.md: sources[0].url: expected an http(s) URL, got 'www.fda.gov'",
        ),
        (
            "    credentials: MD\n",
            "",
            "content/en/mat.md: reviewers[0].credentials: expected non-empty text, got nothing",
        ),
        (
            "You can take medicine.",
            "## Heading\n\nYou can take medicine.",
            "content/en/mat.md: body: use ### for headings inside a section, found '##' (the title is ##)",
        ),
        (
            "You can take medicine.",
            "![](pic.png) You can take medicine.",
            "content/en/mat.md: body: an image has no alt text; write ![what it shows](file)",
        ),
        (
            "You can take medicine.",
            "Big\n===\n\nYou can take medicine.",
            "content/en/mat.md: body: use ### for headings inside a section, found an underlined heading "
            "(the title is ##)",
        ),
        (
            "You can take medicine.",
            "Small\n---\n\nYou can take medicine.",
            "content/en/mat.md: body: use ### for headings inside a section, found an underlined heading "
            "(the title is ##)",
        ),
        (
            "You can take medicine. It helps.\n",
            "![ ][chart] You can take medicine. It helps.\n\n[chart]: pic.png\n",
            "content/en/mat.md: body: an image has no alt text; write ![what it shows](file)",
        ),
        (
            "You can take medicine. It helps.\n",
            "![A chart][c] You can take medicine. It helps.\n\n[c]: ../../../../etc/hostname\n",
            "content/en/mat.md: body: image '../../../../etc/hostname' must be a file beside the section, "
            "not a URL or outside path",
        ),
        (
            "You can take medicine.",
            "![A chart](%2E%2E/chart.png) You can take medicine.",
            "content/en/mat.md: body: image '../chart.png' must be a file beside the section, "
            "not a URL or outside path",
        ),
        (
            "You can take medicine.",
            "[![A chart](/etc/hostname)](https://example.org) You can take medicine.",
            "content/en/mat.md: body: image '/etc/hostname' must be a file beside the section, "
            "not a URL or outside path",
        ),
        (
            "You can take medicine.",
            "![A chart](..\\chart.png) You can take medicine.",
            "content/en/mat.md: body: image '..\\\\chart.png' must be a file beside the section, "
            "not a URL or outside path",
        ),
    ],
)
def test_one_bad_field_gives_one_exact_message(old: str, new: str, message: str) -> None:
    assert old in GOOD
    section, problems = parse(GOOD.replace(old, new, 1))
    assert section is None
    assert problems == [message]


def test_unknown_field_names_the_valid_ones() -> None:
    _, problems = parse(GOOD.replace("status: approved", "status: approved\nauthor: me"))
    assert problems == [
        "content/en/mat.md: author: unknown field; expected one of id, title, version, language, status, "
        "reviewers, last_reviewed, next_review_due, sources, brief, key_points, translation_of, approved_version, "
        "approved_fingerprint, codes, keywords"
    ]


def test_approved_section_needs_reviewers() -> None:
    text = GOOD.replace(
        "reviewers:\n  - name: Avery Example\n    credentials: MD\n    role: Fictional example reviewer\n", ""
    )
    _, problems = parse(text)
    assert problems == ["content/en/mat.md: reviewers: an approved section needs at least one reviewer"]


def test_draft_section_may_have_no_reviewers_yet() -> None:
    text = GOOD.replace("status: approved", "status: draft").replace(
        "reviewers:\n  - name: Avery Example\n    credentials: MD\n    role: Fictional example reviewer\n", ""
    )
    section, problems = parse(text)
    assert problems == [] and section is not None


def test_bad_yaml_is_one_line_with_the_line_number() -> None:
    _, problems = parse(GOOD.replace("status: approved", "status: [approved"))
    assert len(problems) == 1
    assert problems[0].startswith("content/en/mat.md: front matter: invalid YAML at line ")
    assert "\n" not in problems[0]


def test_missing_front_matter() -> None:
    _, problems = parse("Just text.\n")
    assert problems == ["content/en/mat.md: front matter: expected a YAML block between '---' lines at the top"]


def test_all_problems_of_a_file_are_reported_together() -> None:
    text = GOOD.replace("version: 2.0.0\nlanguage", "version: 2\nlanguage").replace("2026-10-01", "2026-02-30")
    _, problems = parse(text)
    assert problems == [
        "content/en/mat.md: version: expected MAJOR.MINOR.PATCH like 1.2.0, got '2'",
        "content/en/mat.md: last_reviewed: no such date: '2026-02-30'",
    ]


def test_headings_and_images_are_read_as_the_renderer_reads_them() -> None:
    # Inside code a # line is not a heading, and a line of dashes after a blank line is a rule.
    body = "```\n# not a heading\n![](x)\n```\n\nYou can take medicine.\n\n---\n\n### Fine\n\nIt helps.\n"
    text = GOOD.replace("status: approved", "status: draft").replace("You can take medicine. It helps.\n", body)
    assert parse(text)[1] == []


def test_warnings_for_review_due_soon_and_overdue() -> None:
    section, _ = parse(GOOD.replace("sources:", "next_review_due: 2027-01-10\nsources:"))
    assert section is not None
    due = [str(p) for p in review_problems(section, TODAY, Limits())]  # type: ignore[arg-type]
    assert due == ["content/en/mat.md: next_review_due: review due in 48 days, on 2027-01-10"]
    later = review_problems(section, dt.date(2027, 2, 1), Limits())  # type: ignore[arg-type]
    assert "content/en/mat.md: next_review_due: review overdue since 2027-01-10" in [str(p) for p in later]


def test_reading_level_and_length_warnings() -> None:
    hard = "Comprehensive pharmacological interventions substantially ameliorate longitudinal outcomes. " * 3
    section, _ = parse(GOOD.replace("You can take medicine. It helps.", hard))
    assert section is not None
    messages = [str(p) for p in section_warnings(section, Limits())]  # type: ignore[arg-type]
    assert messages[0] == "content/en/mat.md: body: 21 words; keep it 80-850"
    assert messages[1].startswith("content/en/mat.md: body: Flesch-Kincaid grade ")
    # The sentence is longer than 80 characters: cut at a word, marked with "...".
    assert messages[1].endswith(
        ' is over 6; hardest sentence: "Comprehensive pharmacological interventions substantially ameliorate ..."'
    )
    assert messages[2].startswith("content/en/mat.md: body: SMOG ")
    assert messages[3:] == [
        "content/en/mat.md: brief: missing; the tri-fold prints each section's brief",
        "content/en/mat.md: key_points: missing; page 1 shows the key points of each section",
    ]


WITH_BRIEF = GOOD.replace("status: approved", "status: draft").replace(
    "---\nYou can take",
    "key_points:\n  - Medicine helps. Ask about it.\nbrief: |\n  Take your medicine. It helps.\n---\nYou can take",
)


def test_brief_and_key_points_are_reviewed_text_covered_by_the_fingerprint() -> None:
    section, problems = parse(WITH_BRIEF)
    assert problems == []
    assert section is not None
    assert section.brief == "Take your medicine. It helps.\n"  # type: ignore[attr-defined]
    assert section.key_points == ("Medicine helps. Ask about it.",)  # type: ignore[attr-defined]
    # The approval recorded the body alone, so the added brief is text nobody approved.
    assert section.changed_since_approval  # type: ignore[attr-defined]
    edited_brief = parse(WITH_BRIEF.replace("It helps.\n---", "It works.\n---"))[0]
    edited_point = parse(WITH_BRIEF.replace("Ask about it.", "Ask us."))[0]
    assert len({s.fingerprint for s in (section, edited_brief, edited_point)}) == 3  # type: ignore[union-attr]


def test_a_section_without_brief_or_key_points_keeps_its_old_fingerprint() -> None:
    section, _ = parse(GOOD)
    assert section is not None
    expected = "sha256:" + hashlib.sha256(b"You can take medicine. It helps.\n").hexdigest()
    assert section.fingerprint == expected  # type: ignore[attr-defined]
    assert not section.changed_since_approval  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "---\nYou can take",
            "key_points: a point\n---\nYou can take",
            "content/en/mat.md: key_points: expected a list of 1 to 3 short sentences",
        ),
        (
            "---\nYou can take",
            "key_points: [a, b, c, d]\n---\nYou can take",
            "content/en/mat.md: key_points: expected a list of 1 to 3 short sentences",
        ),
        (
            "---\nYou can take",
            "key_points: [' ']\n---\nYou can take",
            "content/en/mat.md: key_points[0]: expected non-empty text, got ' '",
        ),
        (
            "---\nYou can take",
            "brief: 3\n---\nYou can take",
            "content/en/mat.md: brief: expected non-empty text, got 3",
        ),
        (
            "---\nYou can take",
            "brief: '## Big'\n---\nYou can take",
            "content/en/mat.md: brief: use ### for headings inside a section, found '##' (the title is ##)",
        ),
        (
            "You can take medicine.",
            "::: warning\nYou can take medicine.\n:::\n",
            "content/en/mat.md: body: unknown box '::: warning'; expected one of safety, box, columns, picture",
        ),
        (
            "You can take medicine.",
            "::: safety\nYou can take medicine.",
            "content/en/mat.md: body: a '::: box' is not closed with a ':::' line",
        ),
        (
            "You can take medicine.",
            "You can take medicine.\n:::\n",
            "content/en/mat.md: body: a ':::' line closes no box",
        ),
    ],
)
def test_brief_key_point_and_box_problems(old: str, new: str, message: str) -> None:
    assert message in parse(GOOD.replace(old, new, 1))[1]


PANEL = "- ![Step 1: a hand holds a spray.](step-1.svg) Give naloxone\n"
NOT_A_LIST = (
    "content/en/mat.md: body: a '::: picture' box holds only a list: one item per panel, its image then its caption"
)
NO_CAPTION = (
    "content/en/mat.md: body: each item of a '::: picture' box is an image then its caption: "
    "- ![what it shows](file) Caption"
)


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        (PANEL + PANEL.replace("1", "2"), []),
        ("Give naloxone.\n", [NOT_A_LIST]),
        (PANEL + "\nA paragraph under the panels.\n", [NOT_A_LIST]),
        ("- ![Step 1: a hand holds a spray.](step-1.svg)\n", [NO_CAPTION]),
        ("- Give naloxone ![Step 1: a hand holds a spray.](step-1.svg)\n", [NO_CAPTION]),
        ("- Give naloxone\n", [NO_CAPTION]),
    ],
)
def test_a_picture_box_is_a_list_of_images_each_with_its_caption(box: str, expected: list[str]) -> None:
    # Each caption must print under its own panel, so each item pairs one image with its words.
    text = GOOD.replace("You can take medicine.", f"::: picture\n{box}:::\n\nYou can take medicine.", 1)
    found = [message for message in parse(text)[1] if "picture" in message]
    assert found == expected


def test_review_date_past_the_interval_warns() -> None:
    text = GOOD.replace("last_reviewed: 2026-10-01", "last_reviewed: 2026-10-01\nnext_review_due: 2028-10-01")
    section, _ = parse(text)
    assert section is not None
    warning = (
        "content/en/mat.md: next_review_due: 2028-10-01 is more than the 12-month review interval after last_reviewed"
    )
    assert warning in [str(p) for p in section_warnings(section, Limits())]  # type: ignore[arg-type]
    relaxed = [str(p) for p in section_warnings(section, Limits(review_interval_months=24))]  # type: ignore[arg-type]
    assert not [m for m in relaxed if "interval" in m]


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 11, 20), 24) == dt.date(2028, 11, 20)
    assert add_months(dt.date(2027, 2, 28), 12) == dt.date(2028, 2, 28)


BRAND = {
    "name": "Test Clinic",
    "short_name": "Test",
    "phone": "(802) 555-0100",
    "address": "1 Main St",
    "website": "https://example.org",
    "logo_alt": "Test logo",
    "colors": {"primary": "#112233", "accent": "#445566"},
}
BRAND_PATH = "brands/test/brand.toml"
# The project's languages with content, as load_brand finds them under content/.
LANGUAGES = ("en", "es")


def brand_model(data: dict[str, Any], files: dict[str, bytes] | None = None) -> tuple[Any, list[Problem]]:
    files = {"logo.svg": b"<svg/>"} if files is None else files
    return brand_from_data(BRAND_PATH, data, brand_id="test", files=files, content_languages=LANGUAGES)


def brand(data: dict[str, Any]) -> list[str]:
    return [str(p) for p in brand_model(data)[1]]


def test_good_brand() -> None:
    model, problems = brand_model(BRAND)
    assert problems == [] and model is not None
    assert (model.primary_color, model.logo, model.example) == ("#112233", "logo.svg", False)


def test_example_is_a_boolean_field() -> None:
    model, problems = brand_model({**BRAND, "example": True})
    assert problems == [] and model.example is True
    assert brand({**BRAND, "example": "yes"}) == ["brands/test/brand.toml: example: expected true or false, got 'yes'"]
    assert brand({**BRAND, "example": 1}) == ["brands/test/brand.toml: example: expected true or false, got 1"]


def test_a_language_table_must_name_a_language_with_content() -> None:
    model, problems = brand_model({**BRAND, "es": {"name": "Clínica de prueba"}})
    assert problems == [] and model.for_language("es").name == "Clínica de prueba"
    table = "unknown field; a table is [colors] or a language with content: en, es"
    assert brand({**BRAND, "sp": {"name": "Clínica de prueba"}}) == [
        f"brands/test/brand.toml: sp: {table}; did you mean es?"
    ]
    assert brand({**BRAND, "ES": {"name": "Clínica de prueba"}}) == [
        f"brands/test/brand.toml: ES: {table}; did you mean es?"
    ]
    # No content in French: the table would never print. Nothing is close enough to suggest.
    assert brand({**BRAND, "fr": {"name": "Clinique"}}) == [f"brands/test/brand.toml: fr: {table}"]
    assert brand({**BRAND, "colours": {"primary": "#112233"}}) == [
        f"brands/test/brand.toml: colours: {table}; did you mean colors?"
    ]
    assert brand({**BRAND, "es": "Clínica"}) == [
        "brands/test/brand.toml: es: expected a table [es] of translated fields, got 'Clínica'"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"colors": {"primary": "blue", "accent": "#445566"}},
            "brands/test/brand.toml: colors.primary: expected a hex color like #1d4e89, got 'blue'",
        ),
        ({"colors": {"primary": "#123"}}, "brands/test/brand.toml: colors.accent: required field missing"),
        ({"phone": ""}, "brands/test/brand.toml: phone: expected non-empty text, got ''"),
        (
            {"website": "example.org"},
            "brands/test/brand.toml: website: expected an http(s) URL, got 'example.org'",
        ),
        (
            {"logo": "file:///etc/hostname"},
            "brands/test/brand.toml: logo: expected a file name inside the brand folder, got 'file:///etc/hostname'",
        ),
        (
            {"logo": "http://127.0.0.1:9/logo.svg"},
            "brands/test/brand.toml: logo: expected a file name inside the brand folder, "
            "got 'http://127.0.0.1:9/logo.svg'",
        ),
        ({"logo": "logo.gif"}, "brands/test/brand.toml: logo: expected an .svg or .png file, got 'logo.gif'"),
        (
            {"logo": "other.svg"},
            "brands/test/brand.toml: logo: file 'other.svg' not found in the brand folder",
        ),
        (
            {"slogan": "x"},
            "brands/test/brand.toml: slogan: unknown field; expected one of name, short_name, phone, address, "
            "website, qr_url, logo, logo_alt, note, hours, sources_url, colors, example, organization_ids, or a table "
            "for a language with content: en, es; did you mean logo?",
        ),
        (
            {"adress": "1 Main St"},
            "brands/test/brand.toml: adress: unknown field; expected one of name, short_name, phone, address, "
            "website, qr_url, logo, logo_alt, note, hours, sources_url, colors, example, organization_ids, or a table "
            "for a language with content: en, es; did you mean address?",
        ),
    ],
)
def test_brand_problems(change: dict[str, object], message: str) -> None:
    data = {**BRAND, **change}
    assert message in brand(data)


def test_brand_missing_required_fields_are_all_listed() -> None:
    data = {k: v for k, v in BRAND.items() if k not in ("name", "phone")}
    assert brand(data) == [
        "brands/test/brand.toml: name: required field missing",
        "brands/test/brand.toml: phone: required field missing",
    ]


def test_summary_line() -> None:
    problems = [
        Problem("a.md", "x", "bad"),
        Problem("a.md", "y", "bad"),
        Problem("b.md", "z", "bad"),
        Problem("b.md", "z", "soon", "warning"),
    ]
    assert summary(problems) == "Aborted: 3 problems and 1 warning in 2 files."
    assert summary(problems[3:]) == "OK with 1 warning in 1 file."
    assert summary([]) == "OK: no problems."


@pytest.mark.parametrize(
    ("colors", "message"),
    [
        # #777777 is the classic just-too-light gray (4.48:1); #767676 is the lightest that passes.
        (
            {"primary": "#777777", "accent": "#445566"},
            "brands/test/brand.toml: colors.primary: contrast with white is 4.48:1; body-size text (white on it, "
            "and it on white) needs at least 4.5:1 (WCAG AA); nearest passing: #767676",
        ),
        (
            {"primary": "#112233", "accent": "#aaaaaa"},
            "brands/test/brand.toml: colors.accent: contrast with white is 2.32:1; heading bars and large text "
            "needs at least 3:1 (WCAG AA); nearest passing: #949494",
        ),
        (
            {"primary": "#7fb3d5", "accent": "#445566"},
            "brands/test/brand.toml: colors.primary: contrast with white is 2.26:1; body-size text (white on it, "
            "and it on white) needs at least 4.5:1 (WCAG AA); nearest passing: #387caa",
        ),
    ],
)
def test_brand_colors_need_wcag_aa_contrast(colors: dict[str, str], message: str) -> None:
    assert brand({**BRAND, "colors": colors}) == [message]
    assert brand({**BRAND, "colors": {"primary": "#767676", "accent": "#949494"}}) == []


def hls(hex_color: str) -> tuple[float, float, float]:
    return colorsys.rgb_to_hls(*(int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)))


# Colors that fail both ratios on white: pale, saturated, gray and white itself.
@pytest.mark.parametrize("color", ["#7fb3d5", "#aaaaaa", "#ffff00", "#00bfff", "#e8a0c8", "#33cc66", "#ffffff"])
@pytest.mark.parametrize("ratio", [4.5, 3.0])
def test_nearest_passing_color_passes_and_keeps_the_hue(color: str, ratio: float) -> None:
    assert contrast_ratio(color, WHITE) < ratio
    nearest = nearest_passing(color, WHITE, ratio)
    assert nearest is not None and contrast_ratio(nearest, WHITE) >= ratio
    (hue, lightness, saturation), (new_hue, new_lightness, new_saturation) = hls(color), hls(nearest)
    # Only the lightness moves (hue and saturation shift by no more than rounding to #rrggbb does), and
    # only as far as needed: one #rrggbb step lighter along the same line fails.
    assert abs(new_hue - hue) < 0.01 and abs(new_saturation - saturation) < 0.02
    assert new_lightness < lightness
    lighter = colorsys.hls_to_rgb(hue, new_lightness + 1 / 255, saturation)
    assert contrast_ratio("#" + "".join(f"{round(c * 255):02x}" for c in lighter), WHITE) < ratio


def test_nearest_passing_color_goes_lighter_on_a_dark_background() -> None:
    assert contrast_ratio("#1d4e89", "#000000") < 4.5
    nearest = nearest_passing("#1d4e89", "#000000", 4.5)
    assert nearest is not None and contrast_ratio(nearest, "#000000") >= 4.5
    assert hls(nearest)[1] > hls("#1d4e89")[1]


@pytest.mark.parametrize(
    ("logo", "data", "message"),
    [
        ("logo.png", b"<svg/>", "brands/test/brand.toml: logo: 'logo.png' is not a PNG image"),
        ("logo.svg", b"GIF89a", "brands/test/brand.toml: logo: 'logo.svg' is not an SVG image"),
        (
            "logo.svg",
            b'<svg><image href="https://127.0.0.1:9/x.png"/></svg>',
            "brands/test/brand.toml: logo: 'logo.svg' loads 'https://127.0.0.1:9/x.png'; a logo must be self-contained",
        ),
        (
            "logo.svg",
            b'<svg><rect style="fill: url(file:///etc/hostname)"/></svg>',
            "brands/test/brand.toml: logo: 'logo.svg' loads 'file:///etc/hostname'; a logo must be self-contained",
        ),
    ],
)
def test_logo_must_be_a_real_self_contained_image(logo: str, data: bytes, message: str) -> None:
    _, problems = brand_model({**BRAND, "logo": logo}, files={logo: data})
    assert [str(p) for p in problems] == [message]


def test_logo_may_use_internal_references_and_png() -> None:
    import io

    from PIL import Image

    svg = b'<svg><defs><linearGradient id="g"/></defs><rect fill="url(#g)"/><use href="#g"/></svg>'
    # A real PNG: a PNG signature alone is no longer taken for one (Pillow must be able to read it).
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    for logo, data in (("logo.svg", svg), ("logo.png", png.getvalue())):
        _, problems = brand_model({**BRAND, "logo": logo}, files={logo: data})
        assert problems == []


def test_front_matter_lines_end_at_newlines_only() -> None:
    from handouts.inputs.frontmatter import split_front_matter

    # U+2028 is a line separator to str.splitlines, not to YAML or to this file's '---' lines.
    meta, body, problems = split_front_matter("p.md", "---\ntitle: x\u2028---\nid: mat\n---\nBody\n")
    assert meta is None and body == ""
    message = "line 2 breaks at U+2028, which YAML reads as a new line; use a plain newline"
    assert problems == [Problem("p.md", "front matter", message)]
