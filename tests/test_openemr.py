"""OpenEMR's patient-education folder: `handouts openemr-education DIR` and a job file's openemr_education."""

from __future__ import annotations

import os
from pathlib import Path

import pypdf
import pytest
import yaml
from conftest import Invoke, approve, days_ago

from handouts.openemr import expand_code


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix == ".pdf"}


def title(project: Path, language: str, section: str) -> str:
    text = (project / "content" / language / f"{section}.md").read_text(encoding="utf-8")
    return str(yaml.safe_load(text.split("---\n")[1])["title"])


def wrote(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("wrote ")]


def test_each_code_gets_openemr_names_in_en_and_es(run: Invoke, project: Path, fake_pool: None) -> None:
    edu = project.parent / "education"
    result = run("openemr-education", str(edu), "--sections", "mat,detox")
    assert result.exit_code == 0, result.output
    found = names(edu)
    # OpenEMR's name: strtolower("{codetype}_{code}_{lang}.pdf"), ICD-10-CM with its dot, es or en only.
    for name in ("icd10_f11.20_en.pdf", "icd10_f11.20_es.pdf", "icd10_f11_en.pdf", "icd10_f11.13_es.pdf"):
        assert name in found
    for name in ("rxcui_1819_en.pdf", "rxnorm_1819_es.pdf", "snomed-ct_75544000_en.pdf", "snomed_5602001_es.pdf"):
        assert name in found
    assert all(name == name.lower() and name.endswith(("_en.pdf", "_es.pdf")) for name in found)
    # F11.* stands for F11 and every leaf code under it, as the ICD-10-CM code set has them.
    f11 = {n.removeprefix("icd10_").removesuffix("_en.pdf") for n in found if n.startswith("icd10_f11") and "_en" in n}
    assert f11 == {code.lower() for code in expand_code("icd10cm", "F11.*")}
    assert {"f11", "f11.20", "f11.13", "f11.93"} <= f11 and "f11.2" not in f11  # F11.2 is no leaf
    # One line per file written, then the summary.
    assert len(wrote(result.output)) == len(found)
    assert result.output.splitlines()[-1].startswith(f"OpenEMR education folder {edu}: wrote {len(found)} file(s) from")


def test_one_render_per_handout_linked_under_each_name(run: Invoke, project: Path, fake_pool: None) -> None:
    edu = project.parent / "education"
    result = run("openemr-education", str(edu), "--sections", "mat,detox", "--lang", "en")
    assert result.exit_code == 0, result.output
    inode = {name: (edu / name).stat().st_ino for name in names(edu)}
    # F11.20 and RxNorm 1819 are only mat's: one handout, one file under both names.
    assert inode["icd10_f11.20_en.pdf"] == inode["rxcui_1819_en.pdf"] == inode["rxnorm_1819_en.pdf"]
    # F11.13 is mat's (F11.*) and detox's: the handout of both, another file.
    assert inode["icd10_f11.13_en.pdf"] != inode["icd10_f11.20_en.pdf"]
    assert (edu / "icd10_f11.13_en.pdf").read_bytes() != (edu / "icd10_f11.20_en.pdf").read_bytes()
    renders = int(result.output.splitlines()[-1].split(" from ")[1].split()[0])
    assert renders == len(set(inode.values()))
    assert not any(p.name.endswith(".tmp") for p in edu.iterdir())


def test_a_rerun_writes_nothing(run: Invoke, project: Path, fake_pool: None) -> None:
    edu = project.parent / "education"
    assert run("openemr-education", str(edu), "--sections", "mat").exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in edu.iterdir()}
    result = run("openemr-education", str(edu), "--sections", "mat")
    assert result.exit_code == 0, result.output
    assert wrote(result.output) == []
    assert f"wrote 0 file(s) from 0 handout(s), unchanged {len(names(edu))}," in result.output
    assert {p.name: p.stat().st_mtime_ns for p in edu.iterdir() if p.suffix == ".pdf"} == {
        k: v for k, v in before.items() if k.endswith(".pdf")
    }


def test_a_folder_holding_files_of_others_is_refused(run: Invoke, project: Path, fake_pool: None) -> None:
    edu = project.parent / "education"
    edu.mkdir()
    (edu / "icd10_f11.20_en.pdf").write_bytes(b"%PDF the clinic's own")
    result = run("openemr-education", str(edu), "--sections", "mat")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        f"Error: {edu / 'icd10_f11.20_en.pdf'}: a file that the tool did not write (not in manifest.json); "
        "the tool writes only into a folder of its own files (give a new or empty folder)"
    ]
    # Nothing written, not even the lock file.
    assert sorted(p.name for p in edu.iterdir()) == ["icd10_f11.20_en.pdf"]
    assert (edu / "icd10_f11.20_en.pdf").read_bytes() == b"%PDF the clinic's own"


def test_a_link_and_a_language_openemr_never_asks_for_are_refused(run: Invoke, project: Path) -> None:
    real = project.parent / "real"
    real.mkdir()
    link = project.parent / "education"
    link.symlink_to(real)
    result = run("openemr-education", str(link))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {link}: the education folder is a symbolic link; give the folder itself"
    assert list(real.iterdir()) == []
    result = run("openemr-education", str(real), "--lang", "vi")
    assert result.exit_code == 2
    assert "Invalid value for --lang: OpenEMR asks only for en and es files" in result.output
    assert "Traceback" not in result.output


def test_a_file_changed_on_disk_is_left_alone(run: Invoke, project: Path, fake_pool: None) -> None:
    edu = project.parent / "education"
    assert run("openemr-education", str(edu), "--sections", "mat", "--lang", "en").exit_code == 0
    edited = edu / "snomed_5602001_en.pdf"
    edited.unlink()  # a hard link of the others: replaced, not edited in place
    edited.write_bytes(b"%PDF edited by the clinic")
    result = run("openemr-education", str(edu), "--sections", "mat", "--lang", "en", "--force")
    assert result.exit_code == 1
    assert f"left alone: {edited}: changed on disk since it was written" in result.output
    assert edited.read_bytes() == b"%PDF edited by the clinic"
    assert len(wrote(result.output)) == len(names(edu)) - 1  # --force wrote every other one again


def test_prune_deletes_only_files_no_code_needs_now(run: Invoke, project: Path, fake_pool: None) -> None:
    edu = project.parent / "education"
    assert run("openemr-education", str(edu), "--sections", "mat,overdose-safety", "--lang", "en").exit_code == 0
    assert "icd10_t40.4_en.pdf" in names(edu)
    result = run("openemr-education", str(edu), "--sections", "mat", "--lang", "en")
    assert "stale: " in result.output and "icd10_t40.4_en.pdf" in names(edu)
    result = run("openemr-education", str(edu), "--sections", "mat", "--lang", "en", "--prune")
    assert result.exit_code == 0, result.output
    assert not any(n.startswith("icd10_t40") for n in names(edu))
    assert "icd10_f11.20_en.pdf" in names(edu)


def test_release_writes_only_approved_sections_and_refuses_an_example_brand(
    run: Invoke, project: Path, own_brand: str, fake_pool: None
) -> None:
    edu = project.parent / "education"
    approve(run, "mat", "find-help", date=days_ago(3).isoformat(), today=None)
    refused = run("openemr-education", str(edu), "--release", "--lang", "en", today=None)
    assert refused.exit_code == 1
    assert refused.output.splitlines()[0].startswith("Error: brands/example-clinic/brand.toml: example: true;")
    assert not edu.exists()
    args = ("openemr-education", str(edu), "--release", "--brand", own_brand, "--lang", "en", "--sections", "mat,detox")
    result = run(*args, today=None)
    assert result.exit_code == 0, result.output
    # detox is a draft: left out, and said so; F11.13 (detox's and mat's) is mat's handout alone.
    assert "warning: detox (en) left out of the release: content/en/detox.md" in result.output
    found = names(edu)
    assert "icd10_f11.13_en.pdf" in found
    assert (edu / "icd10_f11.13_en.pdf").stat().st_ino == (edu / "icd10_f11.20_en.pdf").stat().st_ino


JOBS = """
output = "{out}"
openemr_education = {education}

[[handout]]
name = "medicines"
sections = ["mat"]
brands = ["example-clinic"]
"""


def test_a_job_file_keeps_the_education_folder_too(run: Invoke, project: Path, fake_pool: None) -> None:
    out, edu = project.parent / "out", project.parent / "education"
    jobs = project / "jobs.toml"
    jobs.write_text(JOBS.format(out=out, education=f'"{edu}"'))
    result = run("batch", str(jobs), "-j", "2")
    assert result.exit_code == 0, result.output
    assert (out / "example-clinic/en/medicines-letter.pdf").is_file()
    # Every section's codes, in en and es: T40.4 is overdose-safety's, F11.13 detox's too.
    for name in ("icd10_f11.20_en.pdf", "icd10_f11.20_es.pdf", "icd10_t40.4_es.pdf", "rxnorm_7242_en.pdf"):
        assert name in names(edu)
    assert f"{edu.absolute() / 'icd10_f11.20_es.pdf'}" in result.output
    assert f"OpenEMR education folder {edu}: wrote {len(names(edu))} file(s)" in result.output
    again = run("batch", str(jobs), "-j", "2")
    assert again.exit_code == 0, again.output
    assert wrote(again.output) == []
    assert f"wrote 0 file(s) from 0 handout(s), unchanged {len(names(edu))}," in again.output


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "openemr_education: expected a folder path, got 3"),
        ('"{out}"', "openemr_education: is the output folder"),
    ],
)
def test_a_bad_education_folder_in_a_job_file_is_one_line(run: Invoke, project: Path, value: str, message: str) -> None:
    out = project.parent / "out"
    jobs = project / "jobs.toml"
    jobs.write_text(JOBS.format(out=out, education=value.format(out=out)))
    result = run("batch", str(jobs))
    assert result.exit_code == 1
    assert f"{jobs}: {message}" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.render
def test_real_pdfs_hold_the_section_in_the_asked_language(run: Invoke, project: Path) -> None:
    edu = project.parent / "education"
    result = run("openemr-education", str(edu), "--sections", "mat", "-j", "2")
    assert result.exit_code == 0, result.output
    assert {"icd10_f11.20_en.pdf", "icd10_f11.20_es.pdf", "rxnorm_1819_en.pdf", "rxcui_6813_es.pdf"} <= names(edu)
    for language, other in (("en", "es"), ("es", "en")):
        reader = pypdf.PdfReader(edu / f"icd10_f11.20_{language}.pdf")
        text = " ".join((page.extract_text() or "") for page in reader.pages)
        text = " ".join(text.split())
        assert title(project, language, "mat") in text
        assert title(project, other, "mat") not in text
    # The RxNorm and ICD-10-CM names of mat's handout are one file.
    assert (edu / "rxnorm_1819_es.pdf").read_bytes() == (edu / "icd10_f11.20_es.pdf").read_bytes()
    result = run("openemr-education", str(edu), "--sections", "mat")
    assert result.exit_code == 0, result.output
    assert wrote(result.output) == []
    assert os.path.isfile(edu / "manifest.json")
