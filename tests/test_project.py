"""A clinic's own project: `handouts init`, finding the project, declared sections, overrides."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from clinic import OUR_SERVICES, add_own_section_and_brand
from conftest import ROOT, TODAY
from pdfcheck import text_of

from handouts.cli import cli

SAMPLE_IDS = ["mat", "overdose-safety", "behavioral-therapy", "self-help", "detox", "find-help"]
# The shipped content languages, each copied by init.
LANGUAGES = ("ar", "en", "es", "vi", "zh-Hans")


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run the CLI with today fixed and no HANDOUTS_ROOT unless the test sets one."""
    environment: dict[str, str | None] = {"HANDOUTS_ROOT": None, "HANDOUTS_TODAY": TODAY.isoformat()}
    return CliRunner().invoke(cli, list(args), env={**environment, **(env or {})}, catch_exceptions=False)


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    """Make a project with `handouts init`, its brand filled in enough to build."""
    root = tmp_path / "clinic"
    result = invoke("init", str(root), "--brand", "our-clinic")
    assert result.exit_code == 0, result.output
    return root


def test_init_makes_a_project_with_the_sample_sections_and_a_brand_to_fill_in(clinic: Path) -> None:
    made = sorted(p.relative_to(clinic).as_posix() for p in clinic.rglob("*"))
    assert made == sorted(
        [
            ".gitignore",
            "README.md",
            "handouts.toml",
            "brands",
            "brands/our-clinic",
            "brands/our-clinic/brand.toml",
            "brands/our-clinic/logo.svg",
            "jobs",
            "jobs/handouts.toml",
            "content",
            *(f"content/{lang}" for lang in LANGUAGES),
            *(f"content/{lang}/{name}" for lang in LANGUAGES for name in [*(f"{i}.md" for i in SAMPLE_IDS)]),
            *(f"content/{lang}/naloxone-step-{n}.svg" for lang in LANGUAGES for n in range(1, 7)),
        ]
    )
    # The sample sections are the shipped ones, still drafts; the settings name the new brand.
    assert (clinic / "content/en/mat.md").read_bytes() == (ROOT / "content/en/mat.md").read_bytes()
    assert 'default_brand = "our-clinic"' in (clinic / "handouts.toml").read_text()
    assert "brands/our-clinic/brand.toml" in (clinic / "README.md").read_text()
    # No templates or styles: the installed tool's are used until the clinic overrides one.
    assert not (clinic / "templates").exists() and not (clinic / "styles").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_inits_gitignore_keeps_built_handouts_out_of_git_wherever_a_build_ran(clinic: Path) -> None:
    # `handouts build` run in content/en writes content/en/out/: a tailored copy there names a patient.
    subprocess.run(["git", "init", "-q", str(clinic)], check=True)
    paths = ["out/a.pdf", "content/en/out/a-personal-1.pdf", "content/en/mat.md"]
    ignored = subprocess.run(["git", "check-ignore", *paths], cwd=clinic, capture_output=True, text=True).stdout
    assert ignored.splitlines() == paths[:2]


def test_init_never_writes_over_a_folder_that_has_what_it_would_make(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("ours\n")
    (tmp_path / ".git").mkdir()
    result = invoke("init", str(tmp_path))
    assert result.exit_code == 1
    assert result.output == (f"Error: {tmp_path}: already has README.md; init writes only into a new or empty folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git", "README.md"]
    assert (tmp_path / "README.md").read_text() == "ours\n"
    # A folder with other things (a fresh git repository) is fine.
    (tmp_path / "README.md").unlink()
    assert invoke("init", str(tmp_path)).exit_code == 0
    assert (tmp_path / "handouts.toml").is_file() and (tmp_path / ".git").is_dir()


def test_init_refuses_a_brand_id_that_is_not_a_folder_name(tmp_path: Path) -> None:
    result = invoke("init", str(tmp_path / "x"), "--brand", "../up")
    assert result.exit_code == 1
    assert result.output == "Error: --brand: '../up' is not a folder name of lowercase letters, digits and hyphens\n"
    assert not (tmp_path / "x").exists()


def test_init_names_the_brand_folder_it_made(tmp_path: Path) -> None:
    made = invoke("init", str(tmp_path / "up"), "--brand", " MyClinic ")
    assert made.exit_code == 0
    assert f"Next: put your clinic's details in {tmp_path / 'up/brands/myclinic/brand.toml'}, then run" in made.output
    assert (tmp_path / "up/brands/myclinic/brand.toml").is_file()


def test_init_refuses_what_it_cannot_make_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "up").mkdir()
    (tmp_path / "a-file").write_text("")
    under_a_file = invoke("init", str(tmp_path / "a-file/sub"))
    assert under_a_file.exit_code == 1
    assert under_a_file.output == f"Error: {tmp_path / 'a-file/sub'}: cannot make the project: Not a directory\n"
    too_long = invoke("init", str(tmp_path / ("x" * 300)))
    assert too_long.exit_code == 1
    assert too_long.output == f"Error: {tmp_path / ('x' * 300)}: cannot make the project: File name too long\n"
    (tmp_path / "linked").symlink_to(tmp_path / "up")
    linked = invoke("init", str(tmp_path / "linked"))
    assert linked.output == f"Error: {tmp_path / 'linked'}: a symbolic link; name the folder itself\n"


def test_init_interrupted_while_moving_in_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_rename = os.rename
    calls: list[str] = []

    def interrupted(source: str, target: str) -> None:
        calls.append(str(target))
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_rename(source, target)

    monkeypatch.setattr("handouts.starter.os.rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        from handouts.starter import make_project

        make_project(tmp_path, "our-clinic")
    assert list(tmp_path.iterdir()) == []


def test_the_project_is_found_from_the_nearest_handouts_toml_upward(
    clinic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(clinic / "content" / "es")
    result = invoke("sections", "--lang", "ES")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()[1:]] == SAMPLE_IDS


def test_root_and_handouts_root_come_before_the_current_folder(
    clinic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    assert invoke("init", str(other)).exit_code == 0
    (other / "content/en/detox.md").unlink()
    monkeypatch.chdir(clinic)
    missing = "content/en/detox.md: file not found; every section needs an English version"
    assert missing not in invoke("check").output
    assert missing in invoke("check", env={"HANDOUTS_ROOT": str(other)}).output
    assert missing in invoke("--root", str(other), "check").output
    assert missing not in invoke("--root", str(clinic), "check", env={"HANDOUTS_ROOT": str(other)}).output


def test_a_root_that_is_no_folder_is_named_by_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    for given, reason in ((tmp_path / "nowhere", "no such folder"), (tmp_path / "a-file", "not a folder")):
        by_option = invoke("--root", str(given), "check")
        assert by_option.exit_code == 2
        assert by_option.output.splitlines()[-1] == f"Error: Invalid value for --root: {given}: {reason}"
        by_env = invoke("check", env={"HANDOUTS_ROOT": str(given)})
        assert by_env.exit_code == 2
        assert by_env.output.splitlines()[-1] == f"Error: Invalid value for HANDOUTS_ROOT: {given}: {reason}"
    # Only a command that needs the project reads it: init does not.
    made = invoke("init", str(tmp_path / "new"), env={"HANDOUTS_ROOT": str(tmp_path / "nowhere")})
    assert made.exit_code == 0, made.output


def test_a_handouts_toml_of_another_user_found_upward_is_not_used(
    clinic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As git refuses a repository another user owns: a handouts.toml in /tmp would run its templates as you.
    inside = clinic / "content"
    monkeypatch.chdir(inside)
    owner = os.lstat(clinic).st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)
    result = invoke("sections")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {clinic}/handouts.toml: owned by another user, so not used as the project here (its templates "
        f"would run as you); pass --root {clinic} if you trust it\n"
    )
    # Named on purpose, it is used.
    assert invoke("--root", str(clinic), "sections").exit_code == 0
    assert invoke("sections", env={"HANDOUTS_ROOT": str(clinic)}).exit_code == 0


def test_no_project_says_where_it_looked_and_suggests_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("check")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: no handouts.toml in {tmp_path} or any folder above it, and neither --root nor HANDOUTS_ROOT is set; "
        "make a project with `handouts init DIR`, or pass --root DIR\n"
    )


def test_a_removed_current_folder_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    result = invoke("check")
    assert result.exit_code == 1
    assert result.output == (
        "Error: cannot find the project from the current folder: No such file or directory; pass --root DIR\n"
    )


def test_a_section_of_the_clinics_own_is_valid_once_declared(clinic: Path) -> None:
    (clinic / "content/en/our-services.md").write_text(OUR_SERVICES, encoding="utf-8")
    undeclared = invoke("--root", str(clinic), "check")
    assert undeclared.exit_code == 1
    assert (
        "content/en/our-services.md: id: 'our-services' is not a section of this project; declare it in sections "
        "in handouts.toml (declared: mat, overdose-safety, behavioral-therapy, self-help, detox, find-help)"
    ) in undeclared.output.splitlines()
    add_own_section_and_brand(clinic)
    declared = invoke("--root", str(clinic), "check")
    assert declared.exit_code == 0, declared.output
    assert declared.output.splitlines() == [
        *(
            f"content/{lang}/our-services.md: file not found; no translation of our-services 1.0.0 yet (warning)"
            for lang in LANGUAGES
            if lang != "en"
        ),
        "OK with 4 warnings in 4 files.",
    ]
    listed = invoke("--root", str(clinic), "sections").output.splitlines()
    assert [line.split()[0] for line in listed[1:]] == [*SAMPLE_IDS[:-1], "our-services", "find-help"]


def test_a_declared_section_without_a_file_is_reported(clinic: Path) -> None:
    settings = clinic / "handouts.toml"
    settings.write_text(settings.read_text().replace('"detox", "find-help"]', '"detox", "hours", "find-help"]'))
    result = invoke("--root", str(clinic), "check")
    assert result.exit_code == 1
    assert "content/en/hours.md: file not found; every section needs an English version" in result.output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ('sections = ["mat", "detox"]', "sections: must include find-help: every handout ends with where to get help"),
        ('always = ["mat"]', "always: must include find-help: every handout prints it"),
        ('always = ["find-help", "hours"]', "always: 'hours' is not in sections"),
        ('sections = ["mat", "mat", "find-help"]', "sections: 'mat' is listed twice"),
        ('sections = ["Our Services", "find-help"]', "sections: 'Our Services' is not an id: lowercase letters, "),
        ('sections = "mat"', "sections: expected a list of section ids, got 'mat'"),
        ("default_brand = 7", "default_brand: expected a brand folder name, got 7"),
        (f'sections = ["{"a" * 33}", "find-help"]', f"sections: '{'a' * 33}' is 33 characters; at most 32"),
    ],
)
def test_bad_section_settings_are_named_by_file_and_setting(tmp_path: Path, settings: str, message: str) -> None:
    (tmp_path / "handouts.toml").write_text(settings + "\n")
    result = invoke("--root", str(tmp_path), "check")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "Error: invalid settings: 1 problem(s)"
    assert lines[1].startswith(f"handouts.toml: {message}"), lines


def test_section_ids_and_languages_are_case_insensitive_and_a_typo_gets_a_suggestion(clinic: Path) -> None:
    result = invoke("--root", str(clinic), "build", "--sections", "mats,detox", "-o", str(clinic / "out"))
    assert result.exit_code == 2
    expected = "Invalid value for --sections: unknown section 'mats' (did you mean 'mat'?); valid ids: mat,"
    assert expected in result.output
    approve = invoke("--root", str(clinic), "approve", "Deetox", "--lang", "EN", "--reviewer", "A B, MD")
    assert approve.exit_code == 2
    assert "Invalid value for SECTION: unknown section 'deetox' (did you mean 'detox'?)" in approve.output
    listed = invoke("--root", str(clinic), "sections", "--lang", "Es")
    assert listed.exit_code == 0 and "Dónde encontrar ayuda" in listed.output


@pytest.mark.render
def test_a_clinic_project_builds_its_own_section_with_its_own_brand(clinic: Path) -> None:
    add_own_section_and_brand(clinic)
    out = clinic / "out"
    result = invoke(
        "--root",
        str(clinic),
        "build",
        "--brand",
        "North",
        "--sections",
        "OUR-SERVICES",
        "--layout",
        "Letter",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    pdf = Path(result.output.strip())
    assert pdf == out / "north-en-letter-our-services+find-help.pdf"
    text = text_of(pdf)
    assert "Care at our clinic" in text and "Northside Recovery Clinic" in text and "Where to get help" in text


@pytest.mark.render
def test_a_project_template_or_stylesheet_overrides_the_tools_own(clinic: Path) -> None:
    from handouts.project import tool_data_dir

    tool = tool_data_dir()
    about = clinic / "templates/partials/about.html.j2"
    about.parent.mkdir(parents=True)
    about.write_text((tool / "templates/partials/about.html.j2").read_text() + "<p>Printed by our clinic</p>\n")
    styles = clinic / "styles"
    styles.mkdir()
    # A stylesheet of the project's own still finds the tool's fonts by the same relative names.
    (styles / "letter.css").write_text((tool / "styles/letter.css").read_text() + "\n.about { color: #000000; }\n")
    check = invoke("--root", str(clinic), "check")
    assert "url(" not in check.output, check.output
    result = invoke("--root", str(clinic), "build", "--sections", "detox", "-o", str(clinic / "out"))
    assert result.exit_code == 0, result.output
    assert "Printed by our clinic" in text_of(Path(result.output.strip()))
    # The override is part of the handout's version: a batch rebuilds what it changes.
    os.remove(about)
    again = invoke("--root", str(clinic), "build", "--sections", "detox", "-o", str(clinic / "out" / "b.pdf"))
    assert "Printed by our clinic" not in text_of(clinic / "out" / "b.pdf"), again.output


def test_help_lists_the_projects_section_ids_kits_layouts_languages_and_brands(
    clinic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_own_section_and_brand(clinic)
    monkeypatch.chdir(clinic)
    # Compared without spaces: help wraps long lines, also at hyphens.
    text = "".join(invoke("build", "--help").output.split())
    assert f"Inthisproject:project{clinic}".replace(" ", "") in text
    expected = (
        "section ids mat, overdose-safety, behavioral-therapy, self-help, detox, "
        "our-services, find-help (always printed: find-help) "
        'kit "Starting buprenorphine" mat, overdose-safety kit "After an overdose" overdose-safety, mat, detox '
        "layouts letter, a4, large-print, trifold "
        "languages ar, en, es, vi, zh-Hans brands north, our-clinic (default)"
    )
    assert "".join(expected.split()) in text
    # Outside a project, help still works and says why it lists nothing.
    monkeypatch.chdir(tmp_path)
    outside = invoke("approve", "--help")
    assert outside.exit_code == 0
    assert "In this project: project no handouts.toml in" in " ".join(outside.output.split())


def test_a_section_every_handout_prints_must_be_translated(clinic: Path) -> None:
    add_own_section_and_brand(clinic)
    settings = clinic / "handouts.toml"
    settings.write_text(
        settings.read_text().replace('always = ["find-help"]', 'always = ["find-help", "our-services"]')
    )
    result = invoke("--root", str(clinic), "check")
    assert result.exit_code == 1
    assert (
        "content/es/our-services.md: file not found; every handout prints our-services, so none can be built in es"
    ) in result.output.splitlines()


def test_a_handout_of_many_long_ids_gets_a_short_file_name(tmp_path: Path) -> None:
    from handouts.build import BuildRequest, output_paths
    from handouts.compose import HandoutSpec
    from handouts.project import Sections

    ids = (*(f"section-with-a-long-name-{i:02}" for i in range(12)), "find-help")
    plan = Sections(order=(*ids, "extra"), always=("find-help",))
    spec = HandoutSpec(ids, "north", "en", "letter")
    pdf, _ = output_paths(BuildRequest(spec, tmp_path), ids, plan)
    digest = hashlib.sha256("+".join(ids).encode()).hexdigest()[:8]
    assert pdf == tmp_path / f"north-en-letter-13-sections-{digest}.pdf"
    # A short choice keeps its readable name.
    few = (ids[0], "find-help")
    assert output_paths(BuildRequest(spec, tmp_path), few, plan)[0].name == (
        "north-en-letter-section-with-a-long-name-00+find-help.pdf"
    )
