"""The language table: codes and aliases, script and direction, reading measures, fonts check; no rendering."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Invoke, replace_in

from handouts.errors import Problem
from handouts.glyphs import glyph_problems
from handouts.inputs.fields import parse_language
from handouts.languages import TABLE, is_language_code, language, likely_script, match_language
from handouts.project import Limits
from handouts.quality import reading_problems
from handouts.readability import HAN_UNIT_RE, SPANISH_WORD_RE, WORD_RE, sentence_lengths, unit_pattern
from handouts.report import width
from handouts.serve.infobutton import content_language

AVAILABLE = ("ar", "en", "es", "vi", "zh-Hans")


@pytest.mark.parametrize(
    ("code", "folder"),
    [
        ("zh", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh_cn", "zh-Hans"),
        ("ZH-HANS", "zh-Hans"),
        ("zh-Hans-CN", "zh-Hans"),
        ("chi", "zh-Hans"),  # ISO 639-2, through Babel
        ("zho", "zh-Hans"),
        ("Chinese", "zh-Hans"),
        ("vie", "vi"),
        ("vi-VN", "vi"),
        ("ara", "ar"),
        ("ar-EG", "ar"),
        ("sp", "es"),  # MedlinePlus Connect's Spanish
        ("es-419", "es"),
        ("eng", "en"),
    ],
)
def test_codes_people_and_ehrs_send_name_the_folder(code: str, folder: str) -> None:
    assert match_language(code, AVAILABLE) == folder
    assert parse_language(code, AVAILABLE) == folder
    assert content_language(code, AVAILABLE) == folder


@pytest.mark.parametrize("code", ["zh-TW", "zh-Hant", "zh-HK", "fr", "ko"])
def test_a_language_or_script_without_content_is_not_answered_by_another(code: str) -> None:
    # Traditional Chinese readers are not handed Simplified characters; the Infobutton door falls back to English.
    assert match_language(code, AVAILABLE) is None
    assert content_language(code, AVAILABLE) == "en"
    with pytest.raises(ValueError, match=f"no content in language '{code}'"):
        parse_language(code, AVAILABLE)


def test_a_folder_name_is_a_language_tag_and_never_a_path() -> None:
    assert all(is_language_code(code) for code in (*AVAILABLE, "pt-BR", "es-419", "sr-Latn"))
    assert not any(is_language_code(code) for code in ("..", "zh/Hans", "ZH", "zh-hans", "", "en_US", "e"))


def test_scripts_and_directions_come_from_the_table_or_babel() -> None:
    assert [(language(c).script, language(c).direction) for c in AVAILABLE] == [
        ("Arab", "rtl"),
        ("Latn", "ltr"),
        ("Latn", "ltr"),
        ("Latn", "ltr"),
        ("Hans", "ltr"),
    ]
    assert likely_script("zh-TW") == "Hant" and likely_script("zh") == "Hans"
    # A language a clinic adds without a row: Babel's direction, no borrowed formula.
    persian = language("fa")
    assert (persian.direction, persian.script, persian.measure) == ("rtl", "Arab", "sentence-length")
    assert language("zh-Hans").own_name == "中文 (简体)" and language("ar").name == "Arabic"
    # Every language prints in the bundled fonts after its own, so no character falls to a machine's.
    assert all(row.font_stack[-1] in ("Noto Sans SC", "Noto Naskh Arabic") for row in TABLE.values())


def test_words_are_split_the_way_each_language_writes_them() -> None:
    assert unit_pattern(language("vi")).findall("Rối loạn sử dụng") == ["Rối", "loạn", "sử", "dụng"]
    assert WORD_RE.findall("Rối loạn") == ["R", "i", "lo", "n"]  # why English's pattern is not used for it
    assert unit_pattern(language("ar")).findall("الدواء يساعد (Narcan).") == ["الدواء", "يساعد", "Narcan"]
    # Chinese: a unit per character; a Latin word or a number inside it is one.
    assert HAN_UNIT_RE.findall("请拨打911或Narcan。") == ["请", "拨", "打", "911", "或", "Narcan"]
    assert unit_pattern(language("es")) is SPANISH_WORD_RE


def test_chinese_sentences_end_at_full_width_stops_without_a_space() -> None:
    lengths = sentence_lengths("您好。请拨打911！不用担心？", HAN_UNIT_RE)
    assert lengths == [("您好。", 2), ("请拨打911！", 4), ("不用担心？", 4)]


def test_a_language_without_a_validated_formula_is_judged_by_sentence_length_only() -> None:
    short = "您好。请拨打911。"
    assert reading_problems("content/zh-Hans/x.md", "body", short, "zh-Hans", Limits()) == []
    long = "如果您或者您身边的任何一个人服用了过量的药物而且已经没有办法叫醒了的话请您马上拨打急救电话。" * 2
    [problem] = reading_problems("content/zh-Hans/x.md", "body", long.replace("。", "，", 1), "zh-Hans", Limits())
    assert problem.severity == "warning"
    assert re.fullmatch(
        r"sentences average \d+\.\d characters, over 25 \(no validated reading formula for Chinese \(Simplified\); "
        r"sentence length only\); longest sentence: \"如果.* \.\.\.\"",
        problem.message,
    ), problem.message
    assert "Flesch" not in problem.message


def test_glyph_problems_name_the_file_field_and_character() -> None:
    fonts = {"Atkinson Hyperlegible": frozenset(range(0x20, 0x7F)), "Noto Sans SC": frozenset(map(ord, "您好"))}
    texts = [("content/zh-Hans/x.md", "title", "您好 Narcan\u200b𠀋")]
    assert glyph_problems("zh-Hans", texts, fonts) == [
        Problem(
            "content/zh-Hans/x.md",
            "title",
            "'𠀋' (U+2000B) cannot be drawn by the zh-Hans fonts (Atkinson Hyperlegible, Noto Sans SC): it would "
            "print as an empty box or in whatever font a machine has; rewrite it, or add a font that has it",
        )
    ]


def test_check_names_a_character_the_fonts_lack(run: Invoke, project: Path) -> None:
    assert run("check").exit_code == 0
    replace_in(project / "content/zh-Hans/mat.md", "\ntitle: ", "\ntitle: 𠀋")
    replace_in(project / "templates/i18n/vi.toml", 'key_points = "', 'key_points = "한 ')
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "content/zh-Hans/mat.md: title: '𠀋' (U+2000B) cannot be drawn by the zh-Hans fonts (Atkinson Hyperlegible, "
        "Noto Sans SC, Noto Sans, Noto Naskh Arabic): it would print as an empty box or in whatever font a machine "
        "has; rewrite it, or add a font that has it",
        "templates/i18n/vi.toml: key_points: '한' (U+D55C) cannot be drawn by the vi fonts (Noto Sans, Atkinson "
        "Hyperlegible, Noto Naskh Arabic, Noto Sans SC): it would print as an empty box or in whatever font a "
        "machine has; rewrite it, or add a font that has it",
        "Aborted: 2 problems in 2 files.",
    ]


def test_sections_reports_each_language_by_its_own_measure(run: Invoke) -> None:
    chinese = run("sections", "--lang", "zh-Hans").output.splitlines()
    assert all(re.search(r"\d+\.\d chars/sentence$", line) for line in chinese[1:])
    # The columns line up under two-column Chinese characters.
    assert len({width(line[: line.index("3.0.0")]) for line in chinese if "3.0.0" in line}) == 1
    assert all(line.endswith("words/sentence") for line in run("sections", "--lang", "ar").output.splitlines()[1:])
    assert all(" FH " in f" {line}" for line in run("sections", "--lang", "es").output.splitlines()[1:])


def test_build_and_batch_accept_the_codes_people_type(run: Invoke, project: Path) -> None:
    wrong = run("build", "--lang", "zh-TW")
    assert wrong.exit_code == 2
    assert "no content in language 'zh-TW'; languages with content: ar, en, es, vi, zh-Hans" in wrong.output


def test_the_counselors_page_offers_every_language_with_content_and_makes_chinese(project: Path) -> None:
    import warnings

    from conftest import TODAY, fake_render

    from handouts.render_service import ThreadExecutor
    from handouts.serve.app import ServeConfig, make_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    config = ServeConfig(root=project, allowed_hosts=("127.0.0.1:8750",))
    app = make_app(config, ThreadExecutor(2, fake_render), clock=lambda: TODAY)
    with TestClient(app, base_url="http://127.0.0.1:8750", follow_redirects=False) as client:
        page = client.get("/").text
        options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', page)
        languages = [(value, name) for value, name in options if value in AVAILABLE]
        assert languages == [
            ("ar", "العربية (Arabic)"),
            ("en", "English"),
            ("es", "Español (Spanish)"),
            ("vi", "Tiếng Việt (Vietnamese)"),
            ("zh-Hans", "中文 (简体) – Chinese (Simplified)"),
        ]
        # The page draws Chinese, Arabic and Vietnamese section titles in the handouts' own fonts, on a
        # computer without them too: served from this server only, each fetched for its characters.
        assert "font-src 'self'" in client.get("/").headers["content-security-policy"]
        font = client.get("/fonts/NotoSansSC-Regular.ttf")
        assert font.status_code == 200 and font.content[:4] == b"\x00\x01\x00\x00"
        assert client.get("/fonts/../handouts.toml").status_code == 404
        # An EHR's link may say zh-CN: the page opens in the Simplified Chinese folder's sections.
        chinese = client.get("/?language=zh-CN").text
        assert '<option value="zh-Hans" selected' in chinese and "治疗阿片类药物使用障碍的药物" in chinese
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        form = {"csrf": csrf[1], "brand": "example-clinic", "layout": "letter", "action": "make"}
        made = client.post("/handout", data={**form, "language": "zh-Hans", "sections": ["mat"]})
        assert made.status_code == 200, made.text
        assert ", Chinese (Simplified), US Letter," in made.text
        # The untailored PDFs the Infobutton door links to, by the folder's name or a code an EHR sends.
        assert client.get("/handouts/zh-Hans/mat.pdf").status_code == 200
        assert client.get("/handouts/zh-CN/mat.pdf").status_code == 200
        assert client.get("/handouts/zh-TW/mat.pdf").status_code == 404
        query = {
            "mainSearchCriteria.v.c": "F11.20",
            "mainSearchCriteria.v.cs": "2.16.840.1.113883.6.90",  # ICD-10-CM
            "informationRecipient.languageCode.c": "zh-CN",
            "knowledgeResponseType": "application/json",
        }
        assert "/handouts/zh-Hans/mat.pdf" in client.get("/infobutton", params=query).text


def test_a_projects_language_fonts_are_checked_and_go_first(tmp_path: Path) -> None:
    from handouts.inputs.settings import project_from_data
    from handouts.project import language_fonts

    good = {"languages": {"th": {"fonts": ["Noto Sans Thai"]}}}
    project, problems = project_from_data(tmp_path, "handouts.toml", good)
    assert problems == []
    assert language_fonts(project, "th")[:2] == ("Noto Sans Thai", "Atkinson Hyperlegible")
    assert language_fonts(project, "vi")[0] == "Noto Sans"  # the table's, untouched
    bad = {"languages": {"../x": {"fonts": ["A"]}, "fa": {"fonts": []}, "ko": {"font": ["B"]}, "ru": ["C"]}}
    assert [str(p) for p in project_from_data(tmp_path, "handouts.toml", bad)[1]] == [
        "handouts.toml: languages.'../x': expected a language tag like th or pt-BR (the content folder's name)",
        "handouts.toml: languages.fa.fonts: expected a list of 1 to 4 font family names, got []",
        "handouts.toml: languages.ko.font: unknown field; expected one of fonts",
        "handouts.toml: languages.ko.fonts: expected a list of 1 to 4 font family names, got []",
        "handouts.toml: languages.ru: expected a table with fonts = [...], got ['C']",
    ]


@pytest.mark.usefixtures("fake_pool")
def test_a_batch_in_codes_people_type_builds_each_folder_once_and_a_rerun_nothing(
    project: Path, tmp_path: Path
) -> None:
    import json

    from click.testing import CliRunner

    from handouts.cli import cli

    out = tmp_path / "out"
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(
        f'output = "{out}"\n[[handout]]\nname = "overdose"\nsections = ["overdose-safety"]\n'
        'languages = ["zh-CN", "vie", "ar", "zh"]\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--root", str(project), "batch", str(jobs)])
    assert result.exit_code == 0, result.output
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    assert sorted(k for k in outputs if not k.startswith("review-record")) == [
        "example-clinic/ar/overdose-letter.pdf",
        "example-clinic/vi/overdose-letter.pdf",
        "example-clinic/zh-Hans/overdose-letter.pdf",
    ]
    # The manifest takes zh-Hans back as a language: nothing is rebuilt, nothing set aside.
    again = CliRunner().invoke(cli, ["--root", str(project), "batch", str(jobs)])
    assert again.exit_code == 0 and "Built 0, unchanged 6" in again.output, again.output
    assert not list(out.glob("manifest.json.unreadable-*"))


def test_font_faces_read_quoted_and_bare_family_names_and_urls() -> None:
    from handouts.inputs.fonts import _font_faces

    css = "@font-face { font-family: Noto Sans; src: url(fonts/a.ttf); }\n"
    css += '@font-face { font-family: "Clinic Sans"; src: url("fonts/b.ttf") format("truetype"); }\n'
    assert _font_faces(css) == [("Noto Sans", ["fonts/a.ttf"]), ("Clinic Sans", ["fonts/b.ttf"])]
