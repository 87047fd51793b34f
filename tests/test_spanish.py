"""Spanish handouts: localized templates and dates, staleness, missing translations, readability."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pypdf
import pytest
from conftest import ROOT, Invoke, approve, days_ago, replace_in, spelled

from handouts import readability

LUCIA = "Lucía Ejemplo, MD, Revisora ficticia de ejemplo"


def texts(path: Path) -> list[str]:
    return [re.sub(r"\s+", " ", page.extract_text()) for page in pypdf.PdfReader(path).pages]


@pytest.fixture(scope="module")
def spanish_letter(shipped: Callable[..., Path]) -> Path:
    return shipped("--lang", "es")


@pytest.mark.render
def test_spanish_pdf_has_spanish_headings_footer_dates_and_language(spanish_letter: Path) -> None:
    pages = texts(spanish_letter)
    text = " ".join(pages)
    for heading in (
        "Trastorno por consumo de opioides: tratamiento y apoyo",
        "Medicamentos para el trastorno por consumo de opioides",
        "Síntomas de abstinencia y desintoxicación",
        "Dónde encontrar ayuda",
        "Mi plan",
        "Sobre este folleto",
        "Puntos clave",
    ):
        assert heading in text, heading
    for number, page in enumerate(pages, start=1):
        assert f"Página {number} de {len(pages)}" in page
        assert "Muestra · Maple Street (ejemplo) · Folleto " in page
        assert "Borrador, no aprobado para pacientes" not in page
        assert "MUESTRA – AÚN NO APROBADO PARA PACIENTES" in page
    assert "Última revisión: 21 de noviembre de 2026. Próxima revisión: 21 de mayo de 2027." in text
    assert "Revisores: Lucía Ejemplo, MD; Mateo Muestra, PharmD; Elena Borrador, LCSW." in text
    assert "Revisora ficticia" not in text  # roles are for the record, not the patient's copy
    reader = pypdf.PdfReader(spanish_letter)
    assert reader.trailer["/Root"]["/Lang"] == "es"
    assert reader.metadata["/Title"] == "Trastorno por consumo de opioides: tratamiento y apoyo"
    assert reader.metadata["/Author"] == "Clínica de Ejemplo Maple Street"  # the brand's [es] name


@pytest.mark.render
def test_spanish_pdf_has_no_english_template_strings(spanish_letter: Path) -> None:
    # The example brand's made-up address holds the English word "Sample": it is the clinic's, not a template's.
    text = " ".join(texts(spanish_letter)).replace("100 Sample Street", "")
    english = tomllib.loads((ROOT / "templates/i18n/en.toml").read_text())
    spanish = tomllib.loads((ROOT / "templates/i18n/es.toml").read_text())
    for key, value in english.items():
        for fragment in re.split(r"\{\w+\}", value):
            fragment = fragment.strip(" .,:;()–")
            if len(fragment) > 3 and fragment not in spanish[key]:
                assert fragment not in text, (key, fragment)
    for word in ("Page ", "About this", "Reviewed", "Sources", "Call ", "Monday", "My plan", "Key points"):
        assert word not in text


@pytest.mark.render
def test_brand_fields_fall_back_to_english_when_not_translated(spanish_letter: Path) -> None:
    text = " ".join(texts(spanish_letter))
    assert "Horario: Lunes a viernes, de 8 a. m. a 6 p. m." in text  # from [es]
    assert "Clínica de Ejemplo Maple Street, (802) 555-0142" in text  # phone: not translated, the base value


@pytest.mark.render
@pytest.mark.parametrize(("layout", "pages"), [("trifold", 2), ("large-print", None), ("a4", None)])
def test_every_layout_builds_in_spanish(run: Invoke, tmp_path: Path, layout: str, pages: int | None) -> None:
    out = tmp_path / f"{layout}.pdf"
    result = run("build", "--lang", "es", "--layout", layout, "--sections", "overdose-safety", "-o", str(out))
    assert result.exit_code == 0, result.output
    found = texts(out)
    if pages:
        assert len(found) == pages
    assert "Seguridad ante una sobredosis" in " ".join(found)
    assert pypdf.PdfReader(out).trailer["/Root"]["/Lang"] == "es"


@pytest.mark.render
def test_stale_translation_warns_then_fails_strict_and_release(
    run: Invoke, project: Path, own_brand: str, tmp_path: Path
) -> None:
    # Reviewed a few days ago by the real calendar, which is what a release checks; so every run here uses it.
    approve(run, "mat", "find-help", date=days_ago(3).isoformat(), today=None)
    es_day = days_ago(2)
    for section_id in ("mat", "find-help"):
        date = es_day.isoformat()
        result = run("approve", section_id, "--lang", "es", "--reviewer", LUCIA, "--date", date, today=None)
        assert result.exit_code == 0, result.output
    release = ("build", "--lang", "es", "--release", "--brand", own_brand, "--sections", "mat", "-o")
    ok = run(*release, str(tmp_path / "ok.pdf"), today=None)
    assert ok.exit_code == 0, ok.output
    reviewed = spelled(es_day, "es")
    assert f"Revisado y aprobado por Lucía Ejemplo, MD. Última revisión: {reviewed}." in " ".join(
        texts(tmp_path / "ok.pdf")
    )
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.1.0")
    message = "content/es/mat.md: translates mat 3.0.0, English is now 3.1.0"
    relaxed = run("check", today=None)
    assert f"{message} (warning)" in relaxed.output.splitlines()
    strict = run("check", "--strict", today=None)
    assert strict.exit_code == 1 and message in strict.output.splitlines()
    refused = run(*release, str(tmp_path / "r.pdf"), today=None)
    assert refused.exit_code == 1
    fix = "; update the translation, set translation_of: 3.1.0, then run: handouts approve mat --lang es --reviewer"
    assert refused.output.splitlines() == [
        "Error: release refused: 1 problem(s)",
        f'{message}{fix} "Name, Credentials"',
    ]


@pytest.mark.render
def test_missing_translation_fails_only_builds_that_need_it(run: Invoke, project: Path, tmp_path: Path) -> None:
    (project / "content/es/self-help.md").unlink()
    check = run("check")
    assert check.exit_code == 0
    assert "content/es/self-help.md: file not found; no translation of self-help 2.1.0 yet (warning)" in check.output
    needed = run("build", "--lang", "es", "--sections", "self-help", "-o", str(tmp_path / "a.pdf"))
    assert needed.exit_code == 1
    assert needed.output.splitlines() == [
        "Error: cannot build: 1 problem(s)",
        "content/es/self-help.md: file not found",
    ]
    assert run("build", "--lang", "es", "--sections", "detox", "-o", str(tmp_path / "b.pdf")).exit_code == 0


def test_translation_needs_translation_of(run: Invoke, project: Path) -> None:
    replace_in(project / "content/es/detox.md", "translation_of: 3.0.0\n", "")
    assert (
        "content/es/detox.md: translation_of: required: the English version this translates, like 1.0.0"
        in run("check").output
    )


def test_catalogs_must_have_every_key(run: Invoke, project: Path) -> None:
    replace_in(project / "templates/i18n/es.toml", 'sources = "Fuentes"\n', "")
    result = run("check")
    assert result.exit_code == 1
    assert "templates/i18n/es.toml: sources: missing; every language needs the keys of en.toml" in result.output


@pytest.mark.parametrize(
    ("word", "syllables"),
    [
        ("medicina", 4),
        ("tratamiento", 4),
        ("día", 2),
        ("guerra", 2),
        ("que", 1),
        ("hoy", 1),
        ("poeta", 3),
        ("ayuda", 3),
        ("recuperación", 5),
        ("país", 2),
        ("pingüino", 3),
    ],
)
def test_spanish_syllables(word: str, syllables: int) -> None:
    assert readability.spanish_syllables(word) == syllables


def test_fernandez_huerta_formula() -> None:
    # 9 words, 2 sentences; by hand: us-ted pue-de me-jo-rar | la me-di-ci-na a-yu-da a mu-chas per-so-nas = 21
    text = "Usted puede mejorar. La medicina ayuda a muchas personas."
    assert readability.fernandez_huerta(text) == pytest.approx(206.84 - 60 * 21 / 9 - 1.02 * 9 / 2)


def test_spanish_readability_uses_its_own_formula_and_limit(run: Invoke, project: Path) -> None:
    (project / "handouts.toml").write_text("min_fernandez_huerta = 90\n")
    output = run("check").output
    assert re.search(
        r"content/es/mat.md: body: Fernandez-Huerta reading ease \d+\.\d is under 90; "
        r'hardest sentence: "No tiene que desintoxicarse antes de empezar la metadona o la buprenorfina." \(warning\)',
        output,
    )
    assert "content/en/mat.md: body: Fernandez" not in output
    assert "content/es/mat.md: body: Flesch" not in output
    table = run("sections", "--lang", "es").output
    assert re.search(r"mat .* FH \d+\.\d", table)


@pytest.mark.render
def test_batch_builds_spanish(run: Invoke, project: Path, tmp_path: Path) -> None:
    jobs = project / "jobs.toml"
    jobs.write_text(
        f'output = "{tmp_path / "out"}"\n[[handout]]\nname = "sobredosis"\nsections = ["overdose-safety"]\n'
        'brands = ["example-clinic"]\nlanguages = ["en", "es"]\nlayouts = ["letter"]\n'
    )
    result = run("batch", str(jobs), "-j", "2")
    assert result.exit_code == 0, result.output
    spanish = tmp_path / "out/example-clinic/es/sobredosis-letter.pdf"
    assert "Seguridad ante una sobredosis" in " ".join(texts(spanish))
    assert (tmp_path / "out/example-clinic/en/sobredosis-letter.pdf").exists()
