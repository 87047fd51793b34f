"""Hostile input files: pipes, devices, links out, huge or deep files, invisible characters, live links."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TODAY, Invoke, replace_in

from handouts.inputs.fields import shown
from handouts.inputs.files import MAX_ENTRIES, SECTION_CAP, TOML_CAP
from handouts.markdown import parser
from handouts.output.html import markdown_to_html

DETOX = "content/en/detox.md"
BRAND = "brands/example-clinic/brand.toml"
CATALOG = "templates/i18n/en.toml"
ANCHOR = "### What withdrawal"


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    """Fail a test that blocks (on a pipe, a device) instead of hanging the suite."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("blocked for 20 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def add_to_body(project: Path, text: str, path: str = DETOX) -> None:
    replace_in(project / path, ANCHOR, f"{text}\n\n{ANCHOR}")


def check_lines(run: Invoke) -> list[str]:
    """Return check's lines that are errors, and its summary; warnings about the shipped text left out."""
    result = run("check")
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if not line.endswith("(warning)")]


def build_fails(run: Invoke, tmp_path: Path, *options: str) -> list[str]:
    """Build detox, assert it fails cleanly and writes nothing, and return its lines."""
    out = tmp_path / "out.pdf"
    result = run("build", "--sections", "detox", "-o", str(out), *options)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    return result.output.splitlines()


def swap(path: Path, make: object) -> None:
    """Replace a file with something else: a pipe, a link, a folder."""
    path.unlink()
    if make == "fifo":
        os.mkfifo(path)
    elif make == "folder":
        path.mkdir()
    else:
        path.symlink_to(str(make))


# Files that are not regular files, or lead out of the project: each refused, never read.
REFUSED = [
    ("fifo", "not a regular file but a named pipe (FIFO)"),
    ("folder", "not a regular file but a folder"),
    ("/dev/zero", "a link to outside the project; every input must be a file inside it"),
    ("/etc/hostname", "a link to outside the project; every input must be a file inside it"),
]


@pytest.mark.parametrize(("make", "reason"), REFUSED)
def test_a_section_that_is_no_regular_file_in_the_project_is_refused(
    run: Invoke, project: Path, tmp_path: Path, make: str, reason: str
) -> None:
    swap(project / DETOX, make)
    assert f"{DETOX}: {reason}" in check_lines(run)
    assert build_fails(run, tmp_path) == ["Error: cannot build: 1 problem(s)", f"{DETOX}: {reason}"]


@pytest.mark.parametrize(("make", "reason"), REFUSED)
def test_a_brand_toml_that_is_no_regular_file_in_the_project_is_refused(
    run: Invoke, project: Path, tmp_path: Path, make: str, reason: str
) -> None:
    swap(project / BRAND, make)
    assert f"{BRAND}: {reason}" in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [f"{BRAND}: {reason}"]


@pytest.mark.parametrize(("make", "reason"), REFUSED)
def test_a_catalog_that_is_no_regular_file_in_the_project_is_refused(
    run: Invoke, project: Path, tmp_path: Path, make: str, reason: str
) -> None:
    swap(project / CATALOG, make)
    assert f"{CATALOG}: {reason}" in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [f"{CATALOG}: {reason}"]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("fifo", "brands/example-clinic/logo.svg: not a regular file but a named pipe (FIFO)"),
        (
            "/dev/zero",
            "brands/example-clinic/logo.svg: a link to outside the project; every input must be a file inside it",
        ),
        # A subfolder is no part of a brand: its name is no logo file.
        ("folder", f"{BRAND}: logo: file 'logo.svg' not found in the brand folder"),
    ],
)
def test_a_logo_that_is_no_regular_file_in_the_project_is_refused(
    run: Invoke, project: Path, tmp_path: Path, make: str, reason: str
) -> None:
    swap(project / "brands/example-clinic/logo.svg", make)
    assert reason in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [reason]


def test_a_stray_pipe_in_a_brand_folder_is_refused(run: Invoke, project: Path, tmp_path: Path) -> None:
    os.mkfifo(project / "brands/example-clinic/notes")
    reason = "brands/example-clinic/notes: not a regular file but a named pipe (FIFO)"
    assert reason in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [reason]


@pytest.mark.parametrize(("make", "reason"), REFUSED)
def test_a_settings_file_that_is_no_regular_file_is_refused_not_skipped(
    run: Invoke, project: Path, make: str, reason: str
) -> None:
    (project / "handouts.toml").write_text("")
    swap(project / "handouts.toml", make)
    result = run("check")
    assert result.exit_code == 1
    assert result.output == f"Error: invalid settings: 1 problem(s)\nhandouts.toml: {reason}\n"


@pytest.mark.parametrize(
    ("job", "reason"),
    [("fifo", "not a regular file but a named pipe (FIFO)"), ("/dev/zero", "not a regular file but a device")],
)
def test_a_job_file_that_is_no_regular_file_is_refused(run: Invoke, tmp_path: Path, job: str, reason: str) -> None:
    path = tmp_path / "jobs.toml"
    if job == "fifo":
        os.mkfifo(path)
    else:
        path = Path(job)
    result = run("batch", str(path), "--dry-run")
    assert result.exit_code == 1
    assert result.output == f"Error: invalid job file: 1 problem(s)\n{path}: {reason}\n"


def test_a_link_inside_the_project_is_followed(run: Invoke, project: Path) -> None:
    before = check_lines(run)
    (project / "content/detox-source.md").write_bytes((project / DETOX).read_bytes())
    swap(project / DETOX, project / "content/detox-source.md")
    assert check_lines(run) == before


@pytest.mark.parametrize("folder", ["content/en", "brands/example-clinic"])
def test_a_folder_linked_out_of_the_project_is_refused(run: Invoke, project: Path, tmp_path: Path, folder: str) -> None:
    outside = tmp_path / "outside"
    (project / folder).rename(outside)
    (project / folder).symlink_to(outside)
    reason = f"{folder}: a link to outside the project; every input must be a file inside it"
    assert reason in check_lines(run)
    assert reason in build_fails(run, tmp_path)


def test_a_section_over_the_cap_is_refused_without_reading_it(run: Invoke, project: Path, tmp_path: Path) -> None:
    add_to_body(project, "x" * 2_000_000)
    size = (project / DETOX).stat().st_size
    reason = f"{DETOX}: {size:,} bytes; at most 64 KiB"
    assert reason in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [reason]


def test_a_section_just_under_the_cap_of_one_repeated_token_is_checked(run: Invoke, project: Path) -> None:
    # bench/regex.py times this shape; here it must simply finish, and say what is wrong.
    room = SECTION_CAP - (project / DETOX).stat().st_size - 100
    add_to_body(project, "1-" * (room // 2))
    lines = check_lines(run)
    assert lines[-1].startswith("Aborted") or lines[-1].startswith("OK")


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (BRAND, "a = " + "[" * 100_000),
        (CATALOG, "a = " + "{b=" * 60_000),
        (BRAND, "phone2 = " + "9" * 5000),
    ],
    ids=["brand-deep-array", "catalog-deep-table", "brand-huge-number"],
)
def test_toml_nested_too_deep_or_with_a_huge_number_is_a_clean_error(
    run: Invoke, project: Path, tmp_path: Path, path: str, text: str
) -> None:
    (project / path).write_text(text)
    reason = "arrays or tables nested too deep" if "[" in text or "{" in text else "a number too long to read"
    line = f"{path}: invalid TOML: {reason}"
    assert line in check_lines(run)
    assert line in build_fails(run, tmp_path)


@pytest.mark.parametrize("key", ["a" + ".a" * 80_000 + " = 1", "[a" + ".a" * 65 + "]"])
def test_toml_keys_of_very_many_parts_are_refused_before_parsing(run: Invoke, project: Path, key: str) -> None:
    # tomllib's time and memory grow with the square of a key's parts: 80,000 exhaust the memory.
    (project / BRAND).write_text(key[:200_000])
    assert f"{BRAND}: a line with more than 64 dots; keys that deep are refused" in check_lines(run)


def test_deep_toml_settings_and_job_file_are_clean_errors(run: Invoke, project: Path, tmp_path: Path) -> None:
    job = tmp_path / "deep.toml"
    job.write_text("a = " + "[" * 100_000)
    result = run("batch", str(job), "--dry-run")
    assert (
        result.output
        == f"Error: invalid job file: 1 problem(s)\n{job}: invalid TOML: arrays or tables nested too deep\n"
    )
    (project / "handouts.toml").write_text("a = " + "[" * 100_000)
    result = run("check")
    assert (
        result.output
        == "Error: invalid settings: 1 problem(s)\nhandouts.toml: invalid TOML: arrays or tables nested too deep\n"
    )


def test_a_catalog_that_is_not_utf8_is_named_with_its_byte_for_check_and_build(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    path = project / CATALOG
    data = path.read_bytes()
    at = data.index(b"Handout")
    path.write_bytes(data[:at] + b"\xff" + data[at:])
    line = f"{CATALOG}: not UTF-8 text (invalid start byte at byte {at})"
    assert line in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [line]


def test_a_toml_file_over_the_cap_is_refused(run: Invoke, project: Path, tmp_path: Path) -> None:
    path = project / BRAND
    path.write_text(path.read_text() + "#" * TOML_CAP)
    line = f"{BRAND}: {path.stat().st_size:,} bytes; at most 256 KiB"
    assert line in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [line]


UNSAFE = [
    ("\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("\u2066", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
    ("\u200f", "U+200F (RIGHT-TO-LEFT MARK)"),
    ("\u061c", "U+061C (ARABIC LETTER MARK)"),
    ("\u2028", "U+2028 (LINE SEPARATOR)"),
    ("\u200b", "U+200B (ZERO WIDTH SPACE)"),
    ("\x07", "U+0007 (Cc)"),
    ("\x85", "U+0085 (Cc)"),
    ("\x00", "U+0000 (Cc)"),
]
HIDES = "a control or invisible character that can hide or reorder text"


@pytest.mark.parametrize(("char", "name"), UNSAFE)
def test_brand_fields_refuse_controls_and_invisible_characters(
    run: Invoke, project: Path, tmp_path: Path, char: str, name: str
) -> None:
    escaped = f"\\u{ord(char):04x}"
    # Inside the text: at either end, strip() would take white space such as U+2028 away anyway.
    replace_in(project / BRAND, 'short_name = "Maple', f'short_name = "Maple{escaped}')
    line = f"{BRAND}: short_name: contains {name}, {HIDES}"
    assert line in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [line]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("title: Withdrawal", "title: \u202eWithdrawal", "title"),
        ("  - name: Avery", "  - name: \u2067Avery", "reviewers[0].name"),
        ("    credentials: MD", '    credentials: "\\e[2JMD"', "reviewers[0].credentials"),
        ("    role: Fictional", "    role: \u200bFictional", "reviewers[0].role"),
        ('  - title: "Wakeman', '  - title: "W\\u2028akeman', "sources[0].title"),
        ("    url: https://doi.org/10.1001/", '    url: "https://doi.org/\\u202e10.1001/', "sources[0].url"),
    ],
)
def test_front_matter_text_refuses_controls_and_invisible_characters(
    run: Invoke, project: Path, old: str, new: str, field: str
) -> None:
    if new.startswith('    url: "'):
        replace_in(project / DETOX, "jamanetworkopen.2019.20622\n", 'jamanetworkopen.2019.20622"\n')
    replace_in(project / DETOX, old, new)
    lines = check_lines(run)
    assert any(line.startswith(f"{DETOX}: {field}: contains U+") and HIDES in line for line in lines), lines


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u202a", "\x01", "\x1b"])
def test_markdown_body_refuses_bidi_overrides_and_controls(run: Invoke, project: Path, char: str) -> None:
    add_to_body(project, f"Call {char}1-800 now.")
    name = shown(char)  # only to make a failing assertion readable
    assert any(line.startswith(f"{DETOX}: body: contains U+{ord(char):04X}") for line in check_lines(run)), name


@pytest.mark.parametrize("char", ["\u00ad", "\u200c", "\u200d", "\u200e", "\u200b"])
def test_markdown_body_keeps_soft_hyphens_joiners_and_marks(run: Invoke, project: Path, char: str) -> None:
    add_to_body(project, f"Medi{char}cation helps.")
    assert not any("contains U+" in line for line in check_lines(run))


@pytest.mark.parametrize(("option", "field"), [("--note", "note"), ("--prepared-for", "for"), ("--counselor", "c")])
@pytest.mark.parametrize(("char", "name"), [("\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"), ("\x01", "U+0001 (Cc)")])
def test_tailoring_refuses_controls_without_echoing_the_text(
    run: Invoke, tmp_path: Path, option: str, field: str, char: str, name: str
) -> None:
    secret = f"Jordan{char}Secret"
    lines = build_fails(run, tmp_path, option, secret)
    assert lines == ["Error: cannot build: 1 problem(s)", f"{option}: contains {name}, {HIDES}"]
    assert "Jordan" not in "\n".join(lines) and "Secret" not in "\n".join(lines)


@pytest.mark.render
def test_tailoring_name_refuses_a_line_separator_but_a_note_keeps_its_lines(run: Invoke, tmp_path: Path) -> None:
    lines = build_fails(run, tmp_path, "--prepared-for", "Ann\u2028Lee")
    assert lines[1] == f"--prepared-for: contains U+2028 (LINE SEPARATOR), {HIDES}"
    lines = build_fails(run, tmp_path, "--prepared-for", "Ann\nLee")
    assert lines[1] == f"--prepared-for: contains U+000A (Cc), {HIDES}"
    result = run("build", "--sections", "detox", "--note", "Line one\nLine two", "-o", str(tmp_path / "n.pdf"))
    assert result.exit_code == 0, result.output


# Markdown nested past markdown-it's maxNesting loses its innermost text: an error, never silence.
NESTINGS = {
    "quotes": lambda n: ">" * n + " MARKER text.",
    "lists": lambda n: "".join("  " * i + f"- item {i}\n" for i in range(n - 1)) + "  " * (n - 1) + "- MARKER\n",
    "numbered": lambda n: "".join("   " * i + "1. item\n" for i in range(n - 1)) + "   " * (n - 1) + "1. MARKER\n",
    "quoted lists": lambda n: "> " * n + "- MARKER\n",
    "boxes": lambda n: "::: box\n" * n + "MARKER\n" + ":::\n" * n,
    "emphasis": lambda n: "*" * n + "MARKER" + "*" * n,
    "links": lambda n: "[" * n + "MARKER" + "](https://example.org)" * n,
}


@pytest.mark.parametrize("kind", list(NESTINGS))
def test_text_lost_to_nesting_is_an_error_never_silence(kind: str) -> None:
    from handouts.inputs.sections import markdown_problems

    depths = {}
    for n in range(1, 31):
        text = NESTINGS[kind](n)
        problems = markdown_problems(DETOX, "body", text)
        lost = "MARKER" not in markdown_to_html(text)
        nested = [p for p in problems if "nested" in p.message]
        # Every loss is reported; a report comes only near the parser's limit.
        assert not lost or nested, (kind, n)
        depths[n] = bool(nested)
    assert not depths[1] and not depths[5]


def test_nesting_error_names_the_depth(run: Invoke, project: Path) -> None:
    add_to_body(project, ">" * 25 + " Hidden safety fact.")
    assert f"{DETOX}: body: quotes, lists and boxes nested 20 deep; the text inside would be lost" in check_lines(run)


LINKS = [
    ("[the file](file:///etc/passwd)", "the file"),
    ("[run](javascript:alert(1))", "run"),
    ("[data](data:text/html,hi)", "data"),
    ("[ftp](ftp://example.org/x)", "ftp"),
    ("[custom](custom:thing)", "custom"),
    ("[other](other.md)", "other"),
    ("[abs](/etc/x)", "abs"),
    ("[up](../x)", "up"),
    ("[frag](#frag)", "frag"),
    ("[home](//example.org/x)", "home"),
]


@pytest.mark.parametrize(("source", "text"), LINKS)
def test_links_that_are_not_web_mail_or_phone_print_as_their_text_only(source: str, text: str) -> None:
    html = markdown_to_html(f"See {source} now.")
    assert html == f"<p>See {text} now.</p>\n"


@pytest.mark.parametrize(
    "source",
    [
        "[web](https://example.org/a)",
        "[web](HTTP://example.org)",
        "[mail](mailto:a@example.org)",
        "[call](tel:+18025550142)",
    ],
)
def test_web_mail_and_phone_links_stay_live(source: str) -> None:
    assert "<a href=" in markdown_to_html(source)


def test_check_warns_of_links_printed_as_text_and_refuses_autolinks_to_paths(run: Invoke, project: Path) -> None:
    add_to_body(project, "See [other](other.md) and <file:///work/secret> and <https://example.org>.")
    result = run("check")
    assert (
        f"{DETOX}: body: link to 'other.md' prints as text only; only https:, http:, mailto: and tel: links are live "
        "(warning)" in result.output.splitlines()
    )
    assert (
        f"{DETOX}: body: link <file:///work/secret> is not a web, e-mail or phone link; only https:, http:, mailto: "
        "and tel: links" in result.output.splitlines()
    )


def test_the_parser_sees_every_link_as_the_renderer_does() -> None:
    tokens = parser().parse("[x](file:///etc/passwd) ![y](/etc/passwd)")
    children = tokens[1].children or []
    assert [c.type for c in children if c.type in ("link_open", "image")] == ["link_open", "image"]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("AtkinsonHyperlegible-Regular.ttf", b"", "not a usable font"),
        ("AtkinsonHyperlegible-Bold.ttf", bytes(range(256)) * 200, "not a usable font"),
        ("AtkinsonHyperlegible-Italic.ttf", None, "not a usable font"),
    ],
)
def test_a_damaged_font_is_caught_by_check_and_build(
    run: Invoke, project: Path, tmp_path: Path, name: str, data: bytes | None, reason: str
) -> None:
    path = project / "styles/fonts" / name
    path.write_bytes(path.read_bytes()[:30_000] if data is None else data)
    lines = [line for line in check_lines(run) if line.startswith(f"styles/fonts/{name}: ")]
    assert len(lines) == 1 and lines[0].startswith(f"styles/fonts/{name}: {reason}"), lines
    assert lines[0] in build_fails(run, tmp_path)


def test_brand_fields_of_the_wrong_type_are_each_named(run: Invoke, project: Path) -> None:
    (project / BRAND).write_text(
        'name = 5\nshort_name = ["x"]\nphone = 1.5\naddress = true\nwebsite = 1979-05-27\n'
        'logo_alt = {a = 1}\nlogo = 3\nnote = []\ncolors = "red"\nes = 5\n'
    )
    lines = check_lines(run)
    for field in ("name", "short_name", "phone", "address", "website", "logo_alt", "logo", "note", "colors", "es"):
        assert any(line.startswith(f"{BRAND}: {field}: ") for line in lines), field


def test_values_that_are_not_text_are_named_in_plain_words_never_as_python_objects(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    # TOML reads unquoted dates and times as such; check showed them as datetime.date(2026, 1, 1).
    replace_in(project / BRAND, 'name = "Maple Street Example Clinic"', "name = 2026-01-01")
    replace_in(project / BRAND, 'phone = "(802) 555-0142"', "phone = 1979-05-27T07:32:00Z")
    replace_in(project / BRAND, 'logo = "logo.svg"', "logo = 12:30:00")
    replace_in(project / BRAND, 'hours = "Monday to Friday, 8 a.m. to 6 p.m."', "hours = true")
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: {major: 3}")
    replace_in(project / "content/en/mat.md", "    credentials: MD\n", "    credentials:\n")
    assert check_lines(run) == [
        f"{BRAND}: hours: expected text, got true",
        f"{BRAND}: logo: expected a file name inside the brand folder, got the time 12:30:00",
        f"{BRAND}: name: expected non-empty text, got the date 2026-01-01",
        f"{BRAND}: phone: expected non-empty text, got the date and time 1979-05-27T07:32:00+00:00",
        "content/en/mat.md: reviewers[0].credentials: expected non-empty text, got nothing",
        "content/en/mat.md: version: expected MAJOR.MINOR.PATCH like 1.2.0, got {'major': 3}",
        "Aborted: 6 problems in 2 files.",
    ]
    job = tmp_path / "job.toml"
    job.write_text('output = 2026-01-01\n[[handout]]\nname = "x"\nsections = ["mat"]\n')
    result = run("batch", str(job), "--dry-run")
    assert result.exit_code == 1
    assert f"{job}: output: expected a folder path, got the date 2026-01-01" in result.output.splitlines()
    replace_in(project / DETOX, "---\nid: detox", "---\nnull: 1\n~: 2\nid: detox")
    assert f"{DETOX}: front matter: duplicate key null at line 3 (first at line 2)" in check_lines(run)


def test_a_yaml_alias_bomb_is_quoted_briefly(run: Invoke, project: Path) -> None:
    bomb = "a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9)
    )
    replace_in(project / DETOX, "title: ", bomb + "title: *a8\nold_title: ")
    lines = check_lines(run)
    # Refused at the first alias, before anything is expanded: a short line, at once.
    assert lines[0] == f"{DETOX}: front matter: alias '*a0' at line 4; write the value out"


def test_names_with_controls_or_invalid_utf8_are_escaped_in_messages(run: Invoke, project: Path) -> None:
    folder = project / "content/en"
    (folder / "evil\nname.md").write_text("x")
    (folder / "gpj.\u202edm.md").write_text("x")
    with open(os.fsencode(folder) + b"/bad\xff.md", "wb") as handle:
        handle.write(b"x")
    lines = check_lines(run)
    for name in ("'evil\\nname.md'", "'gpj.\\u202edm.md'", "'bad\\udcff.md'"):
        assert f"content/en: the name {name} holds control or invisible characters; rename it" in lines
    assert all(line.isprintable() for line in lines)


def test_a_folder_with_too_many_entries_is_one_problem(run: Invoke, project: Path, tmp_path: Path) -> None:
    for i in range(MAX_ENTRIES + 1):
        (project / f"content/en/x{i}.md").write_text("x")
    line = f"content/en: more than {MAX_ENTRIES:,} entries; is this the right folder?"
    assert line in check_lines(run)
    assert line in build_fails(run, tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("output", '"out\\u0000x"', "output: contains U+0000 (Cc), " + HIDES),
        (
            "name",
            '"treatment\\n"',
            "handout[0].name: expected a file stem of letters, digits, - and _, got 'treatment\\n'",
        ),
    ],
)
def test_job_file_values_that_would_garble_file_names_are_refused(
    run: Invoke, tmp_path: Path, field: str, value: str, message: str
) -> None:
    job = tmp_path / "jobs.toml"
    output = value if field == "output" else '"out"'
    name = value if field == "name" else '"treatment"'
    job.write_text(f'output = {output}\n[[handout]]\nname = {name}\nsections = ["detox"]\n')
    result = run("batch", str(job), "--dry-run")
    assert result.exit_code == 1
    assert f"{job}: {message}" in result.output.splitlines()


def long_word_chars(path: Path, letter: str) -> list[tuple[int, float, float, float, float]]:
    """Return (page, x0, x1, top, bottom) of every character of a word made of one repeated letter."""
    import pdfplumber

    found = []
    with pdfplumber.open(path) as pdf:
        for number, page in enumerate(pdf.pages):
            # Only words all of that letter: the footer's handout code (K7QP-3MX2) may hold it too.
            words = [w for w in page.extract_words(return_chars=True) if set(w["text"]) == {letter}]
            found += [(number, c["x0"], c["x1"], c["top"], c["bottom"]) for w in words for c in w["chars"]]
    return found


@pytest.mark.render
@pytest.mark.parametrize("where", ["body", "note"])
def test_a_300_character_word_breaks_inside_the_letter_page_margins(
    run: Invoke, project: Path, tmp_path: Path, where: str
) -> None:
    from handouts.layouts import LAYOUTS, points

    options = ["--note", "Q" * 300] if where == "note" else []
    if where == "body":
        add_to_body(
            project, "A word: " + "Q" * 300 + " and a table:\n\n| A | B |\n|---|---|\n| " + "Q" * 300 + " | x |"
        )
    out = tmp_path / "long.pdf"
    result = run("build", "--sections", "detox", *options, "-o", str(out))
    assert result.exit_code == 0, result.output
    chars = long_word_chars(out, "Q")
    assert len(chars) == 300 * (2 if where == "body" else 1)
    layout = LAYOUTS["letter"]
    top, side, bottom = (points(m) for m in layout.margin)
    assert all(side - 0.5 <= x0 and x1 <= layout.width_pt - side + 0.5 for _, x0, x1, _, _ in chars)
    assert all(top - 0.5 <= t and b <= layout.height_pt - bottom + 0.5 for _, _, _, t, b in chars)


@pytest.mark.render
@pytest.mark.parametrize("where", ["brief", "note"])
def test_a_300_character_word_stays_in_its_trifold_panel(
    run: Invoke, project: Path, tmp_path: Path, where: str
) -> None:
    # A note as long as the flap holds: a longer one is refused as not fitting, which is fine too.
    options = ["--note", "Q" * 200] if where == "note" else []
    if where == "brief":
        replace_in(project / DETOX, "brief: |\n", "brief: |\n  A word: " + "Q" * 300 + " here.\n\n")
    out = tmp_path / "long.pdf"
    result = run("build", "--sections", "detox", "--layout", "trifold", *options, "-o", str(out))
    assert result.exit_code == 0, result.output
    chars = long_word_chars(out, "Q")
    assert len(chars) == (200 if where == "note" else 300)
    panel = 792 / 3
    # Each character inside one panel, clear of the 0.3 in gutter each side of a fold.
    for _, x0, x1, _, _ in chars:
        assert int(x0 // panel) == int((x1 - 0.01) // panel)
        assert x0 % panel >= 0.3 * 72 - 0.5
        assert x1 % panel <= panel - 0.3 * 72 + 0.5


@pytest.mark.render
def test_refused_links_leave_no_annotation_and_no_path_in_the_pdf(run: Invoke, project: Path, tmp_path: Path) -> None:
    import pypdf

    add_to_body(project, " ".join(source for source, _ in LINKS) + " [live](https://example.org/live)")
    out = tmp_path / "links.pdf"
    result = run("build", "--sections", "detox", "-o", str(out))
    assert result.exit_code == 0, result.output
    reader = pypdf.PdfReader(out)
    uris = [
        annotation.get_object()["/A"].get("/URI")
        for page in reader.pages
        for annotation in page.get("/Annots", [])
        if "/A" in annotation.get_object()
    ]
    assert "https://example.org/live" in uris
    assert all(str(uri).startswith(("https:", "http:", "mailto:", "tel:")) for uri in uris), uris
    text = " ".join(page.extract_text() for page in reader.pages)
    for _, shown_text in LINKS:
        assert shown_text in text
    # No path of the machine that built it, in the text, the links or anywhere in the file.
    raw = out.read_bytes()
    for path in (str(project), str(tmp_path), "/etc/passwd", "file:", "javascript:"):
        assert path not in text and path.encode() not in raw


@pytest.mark.render
def test_right_to_left_names_cannot_move_the_footer_or_review_line(run: Invoke, project: Path, tmp_path: Path) -> None:
    from pdfcheck import page_texts

    replace_in(project / BRAND, 'short_name = "Maple Street (example)"', 'short_name = "מרפאה 12"')
    out = tmp_path / "rtl.pdf"
    result = run("build", "--sections", "detox", "--counselor", "כהן 3", "-o", str(out), "--html")
    assert result.exit_code == 1  # tailoring never goes into an HTML file
    result = run("build", "--sections", "detox", "--counselor", "כהן 3", "-o", str(out))
    assert result.exit_code == 0, result.output
    texts = page_texts(out)
    # Whatever the name does, the line after it reads in order.
    assert all("Sample · " in text and " · Handout " in text for text in texts)
    for number, text in enumerate(texts, start=1):
        assert text.index("Sample · ") < text.index(" · Handout ") < text.index(f"Page {number} of")


def test_a_short_name_longer_than_the_footer_holds_is_refused(run: Invoke, project: Path, tmp_path: Path) -> None:
    replace_in(project / BRAND, 'short_name = "Maple Street (example)"', f'short_name = "{"S" * 41}"')
    line = f"{BRAND}: short_name: 41 characters; at most 40 fit the footer of every page"
    assert line in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [line]


def test_a_link_that_prints_as_text_warns_but_keeps_the_section(project: Path) -> None:
    import datetime as dt

    from handouts.inputs.sections import section_from_text, section_markdown_problems
    from handouts.project import Limits

    text = (project / DETOX).read_text().replace(ANCHOR, f"See [other](other.md).\n\n{ANCHOR}", 1)
    section, problems = section_from_text(
        DETOX, text, expected_id="detox", expected_language="en", today=dt.date(2026, 11, 23), limits=Limits()
    )
    assert section is not None
    assert [(p.field, p.severity) for p in problems] == [("body", "warning")]
    assert section_markdown_problems(section) == []  # what a batch checks before it renders: errors only


def test_long_runs_without_spaces_may_break_anywhere_but_addresses_keep_their_class() -> None:
    html = markdown_to_html("Go to (https://example.org/" + "x" * 30 + ") or " + "W" * 30 + " now.")
    assert (
        '<a class="address" dir="ltr" href="https://example.org/'
        + "x" * 30
        + '">https://\u200bexample.\u200borg/\u200b'
        in html
    )
    assert f'<span class="long">{"W" * 30}</span>' in html
    assert '<span class="long">' not in markdown_to_html("cognitivo-conductual, the longest word we print.")


@pytest.mark.parametrize(
    ("front", "reason"),
    [
        ("x: " + "[" * 31_000, "nested more than 20 levels deep at line 2"),
        ("x:\n" + "- " * 31_000 + "y", "nested more than 20 levels deep at line 3"),
        ("version: " + "9" * 5000, "invalid YAML: a number too long to read"),
    ],
    ids=["flow-31000", "block-31000", "int-5000-digits"],
)
def test_front_matter_that_would_crash_the_yaml_loader_is_refused(
    run: Invoke, project: Path, tmp_path: Path, front: str, reason: str
) -> None:
    # Nested some 30,000 deep, libyaml's loader overflows the C stack: the process died without a word.
    (project / DETOX).write_text(f"---\n{front}\n---\nBody.\n")
    line = f"{DETOX}: front matter: {reason}"
    assert line in check_lines(run)
    assert build_fails(run, tmp_path)[1:] == [line]


def test_a_catalog_that_cannot_be_read_is_named_once_by_check(run: Invoke, project: Path) -> None:
    swap(project / CATALOG, "fifo")
    assert check_lines(run).count(f"{CATALOG}: not a regular file but a named pipe (FIFO)") == 1


def test_a_brands_folder_with_too_many_entries_is_named_by_check(run: Invoke, project: Path) -> None:
    for i in range(MAX_ENTRIES):
        (project / f"brands/x{i}").mkdir()
    assert f"brands: more than {MAX_ENTRIES:,} entries; is this the right folder?" in check_lines(run)


def png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("logo", "data", "reason"),
    [
        (
            "logo.svg",
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
            "'logo.svg' declares XML entities; save it as plain SVG",
        ),
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><g>',
            "'logo.svg' is not well-formed SVG (no element found",
        ),
        ("logo.png", png(5000, 5000), "'logo.png' is 5000 x 5000 pixels; at most 4096 a side"),
        ("logo.png", png(20_000, 20_000), "'logo.png' would unpack to too many pixels; at most 4096 a side"),
        ("logo.png", png(64, 64)[:40], "'logo.png' cannot be read as a PNG image"),
    ],
    ids=["svg-external-entity", "svg-cut-short", "png-too-large", "png-decompression-bomb", "png-cut-short"],
)
def test_a_logo_weasyprint_could_not_load_is_refused_by_check_and_build(
    run: Invoke, project: Path, tmp_path: Path, logo: str, data: bytes, reason: str
) -> None:
    # WeasyPrint logged such a logo as an error and printed the handout without it.
    (project / "brands/example-clinic" / logo).write_bytes(data)
    replace_in(project / BRAND, 'logo = "logo.svg"', f'logo = "{logo}"')
    prefix = f"{BRAND}: logo: {reason}"
    assert any(line.startswith(prefix) for line in check_lines(run))
    lines = build_fails(run, tmp_path)
    assert len(lines) == 2 and lines[1].startswith(prefix)


def laughing_svg(levels: int = 20, copies: int = 10) -> bytes:
    """Return a small SVG whose nested <use> elements draw `copies ** levels` squares: a billion laughs."""
    groups = "".join(
        f'<g id="l{level}">' + f'<use href="#l{level - 1}"/>' * copies + "</g>" for level in range(1, levels + 1)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        f'<defs><rect id="l0" width="1" height="1"/>{groups}</defs><use href="#l{levels}"/></svg>'
    ).encode()


@pytest.mark.render
def test_check_stops_drawing_a_picture_at_the_render_time_limit_and_draws_the_others(
    run: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `build` stopped at its time limit on such a logo; `check` drew it with no limit and never ended.
    import handouts.validation

    monkeypatch.setattr(handouts.validation, "DRAWING_TIME_LIMIT", 2.0)
    (project / "brands/example-clinic/logo.svg").write_bytes(laughing_svg())
    # A picture drawn after the one that hangs is still drawn, and its own problem named.
    (project / "content/en/chart.svg").write_bytes(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<image href="file:///etc/hostname" width="5" height="5"/></svg>'
    )
    add_to_body(project, "![A chart](chart.svg)")
    assert check_lines(run) == [
        f"{BRAND}: logo: logo.svg cannot be drawn within 2 seconds, the time a render may take",
        f"{DETOX}: body: chart.svg cannot be drawn: refused to load file:///etc/hostname: outside the templates,"
        " styles, brands and content folders",
        "Aborted: 2 problems in 2 files.",
    ]


@pytest.mark.render
def test_a_caller_of_check_may_give_the_drawings_its_own_time_limit(project: Path) -> None:
    # The server checks content with its --time-limit, not the build's.
    from handouts.project import Project
    from handouts.validation import check_project

    (project / "brands/example-clinic/logo.svg").write_bytes(laughing_svg())
    problems = check_project(Project(project), TODAY, time_limit=1.5)
    assert [str(p) for p in problems if p.severity == "error"] == [
        f"{BRAND}: logo: logo.svg cannot be drawn within 1.5 seconds, the time a render may take"
    ]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("missing", "file not found"),
        ("fifo", "not a regular file but a named pipe (FIFO)"),
        ("/etc/hostname", "a link to outside the project; every input must be a file inside it"),
        ("cut", "cannot be read as an image"),
        ("entity", "declares XML entities; save it as plain SVG"),
    ],
)
def test_check_names_an_image_beside_a_section_that_would_not_print(
    run: Invoke, project: Path, make: str, reason: str
) -> None:
    name = "chart.svg" if make == "entity" else "chart.png"
    path = project / "content/en" / name
    if make == "fifo":
        os.mkfifo(path)
    elif make == "cut":
        path.write_bytes(png(64, 64)[:40])
    elif make == "entity":
        path.write_bytes(b'<!DOCTYPE svg [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>')
    elif make != "missing":
        path.symlink_to(make)
    add_to_body(project, f"![A chart]({name})")
    lines = check_lines(run)
    assert any(line.startswith(f"{DETOX}: body: image '{name}': {reason}") for line in lines), lines


def utf16_laughs() -> bytes:
    """Return an SVG in UTF-16 whose entities expand to a billion 'lol's: no '<!ENTITY' among its bytes."""
    levels = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10))
    text = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        f'<!DOCTYPE svg [<!ENTITY l0 "lol">{levels}]>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text y="5">&l9;</text></svg>'
    )
    data = text.encode("utf-16")
    assert b"<!ENTITY" not in data
    return data


def test_check_refuses_entities_in_a_utf16_picture_and_logo_by_name_and_fast(run: Invoke, project: Path) -> None:
    # A byte search for '<!ENTITY' let a UTF-16 file through to a parser that expands its entities.
    (project / "content/en/chart.svg").write_bytes(utf16_laughs())
    add_to_body(project, "![A chart](chart.svg)")
    (project / "brands/example-clinic/logo.svg").write_bytes(utf16_laughs())
    started = time.monotonic()
    result = run("check")
    assert time.monotonic() - started < 30
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert f"{DETOX}: body: image 'chart.svg': declares XML entities; save it as plain SVG" in lines, lines
    assert f"{BRAND}: logo: 'logo.svg' declares XML entities; save it as plain SVG" in lines, lines


@pytest.mark.render
def test_a_font_the_stylesheet_names_but_the_project_lacks_is_caught_by_check(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    # The tool's own fonts stand in for a project's missing ones; a name neither has is caught.
    css = project / "styles/base.css"
    css.write_text(css.read_text().replace("AtkinsonHyperlegible-Italic.ttf", "Atkinson-Missing.ttf"))
    line = "styles/base.css: url(fonts/Atkinson-Missing.ttf) names no file of the project"
    assert line in check_lines(run)
    # A build fails on it as it did before, when the renderer loads the stylesheets.
    assert build_fails(run, tmp_path)[0].startswith("Error: cannot load stylesheets: ")


def test_the_reader_reads_at_most_one_byte_past_the_cap_whatever_the_size_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handouts.inputs import files

    path = tmp_path / "grows.md"
    path.write_bytes(b"x" * 5000)
    real_fstat, reads = os.fstat, []

    def fstat_saying_empty(fd: int) -> os.stat_result:
        # Like a file in /proc, or one growing while read: its size says 0.
        info = real_fstat(fd)
        return os.stat_result((info.st_mode, *info[1:6], 0, *info[7:]))

    real_read = os.read
    monkeypatch.setattr(files.os, "fstat", fstat_saying_empty)
    monkeypatch.setattr(files.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    data, problems = files.read_bytes(path, "grows.md", cap=1000, root=tmp_path)
    assert data is None
    assert [str(p) for p in problems] == ["grows.md: 1,001 bytes; at most 1,000 bytes"]
    assert sum(reads) == 1001  # never the whole file


def test_the_reader_names_a_file_it_may_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from handouts.inputs import files

    path = tmp_path / "secret.md"
    path.write_text("x")

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.os, "open", denied)
    assert files.read_bytes(path, "secret.md", cap=10, root=tmp_path) == (
        None,
        [files.Problem("secret.md", "", "cannot read: permission denied")],
    )


# --- found by the adversarial pass on the merged tool ---------------------------------------------


@pytest.mark.parametrize(
    "placeholder", ["{phone.__class__}", "{phone!r}", "{phone[0]}", "{phone:>99999999}", "{phone}}"]
)
def test_a_catalog_brace_that_is_not_a_plain_placeholder_is_refused(
    run: Invoke, project: Path, placeholder: str
) -> None:
    from handouts.inputs.catalogs import fill

    replace_in(project / "templates/i18n/es.toml", "Llame al {phone}", f"Llame al {placeholder}")
    line = (
        "templates/i18n/es.toml: call: a brace that is not part of a {name} placeholder; "
        "write placeholders exactly as en.toml does"
    )
    assert line in check_lines(run)
    # The renderer fills in with the same rule, never with str.format's attribute, index or padding.
    with pytest.raises(ValueError, match="a brace that is not part of a"):
        fill(f"Llame al {placeholder}", {"phone": "(802) 555-0142"})
    assert fill("Llame al {phone}", {"phone": "(802) 555-0142"}) == "Llame al (802) 555-0142"


def test_an_image_with_a_query_or_fragment_is_refused_by_check_and_build(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    replace_in(project / DETOX, ANCHOR, "![Steps](naloxone-step-1.svg?x=1#frag)\n\n" + ANCHOR)
    image = "image 'naloxone-step-1.svg?x=1#frag'"
    line = f"{DETOX}: body: {image} must be a file beside the section, not a URL or outside path"
    assert line in check_lines(run)
    assert line in build_fails(run, tmp_path)


def test_a_job_file_asking_for_too_many_outputs_is_refused_before_expanding() -> None:
    from handouts.inputs.jobs import MAX_OUTPUTS, parse_jobs

    brands = [f"clinic-{i}" for i in range(1000)]
    text = "".join(
        f'[[handout]]\nname = "h{i}"\nbrands = "*"\nlanguages = ["en", "es"]\nlayouts = "*"\n' for i in range(3)
    )
    job_file, problems = parse_jobs("jobs/big.toml", text, brands=brands, languages=["en", "es"])
    assert job_file is None
    assert [str(p) for p in problems] == [
        f"jobs/big.toml: handout: asks for 24,000 outputs; at most {MAX_OUTPUTS:,} per job file"
    ]


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "0.5", "90000"])
def test_a_time_limit_that_is_no_limit_is_refused(run: Invoke, tmp_path: Path, value: str) -> None:
    for command in (["build"], ["batch", str(Path(__file__).parent.parent / "jobs/example.toml"), "--dry-run"]):
        result = run(*command, "--time-limit", value, "--out" if command[0] == "batch" else "-o", str(tmp_path / "o"))
        assert result.exit_code == 2
        assert "Invalid value for '--time-limit'" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_an_output_name_too_long_for_the_file_system_is_one_line(run: Invoke, tmp_path: Path) -> None:
    folder = tmp_path / ("b" * 300)
    result = run("build", "--sections", "detox", "-o", f"{folder}/")
    assert result.exit_code == 1
    assert result.output == f"Error: {folder}: File name too long\n"


@pytest.mark.render
def test_an_output_folder_that_cannot_be_written_is_one_line(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--sections", "detox", "-o", "/proc/self/x.pdf")
    assert result.exit_code == 1
    assert result.output == "Error: cannot write /proc/self/x.pdf: No such file or directory\n"


def test_a_utf16_logo_that_loads_another_file_is_named_for_it(run: Invoke, project: Path) -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="file:///etc/hostname"/></svg>'
    (project / "brands/example-clinic/logo.svg").write_bytes(svg.encode("utf-16"))
    line = f"{BRAND}: logo: 'logo.svg' loads 'file:///etc/hostname'; a logo must be self-contained"
    assert line in check_lines(run)
