"""What a patient holds: page 1, the safety facts, the table and picture, My plan, page budgets, the brochure.

Every check reads a real render: its extracted text, its tag tree, where its ink falls.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, TODAY, Invoke, replace_in
from pdfcheck import emptiness, lines, page_texts, structure, text_of

from handouts.cli import cli
from handouts.inputs.frontmatter import split_front_matter
from handouts.readability import fernandez_huerta, score

BODY = ("mat", "overdose-safety", "behavioral-therapy", "self-help", "detox")
# US Letter page budgets: English; Spanish may use one more page each. Medicines and overdose
# safety alone take 5: with the 2026 safety facts (CPR, tolerance, prescribed benzodiazepines,
# methadone's heart rhythm, pain care, travel, rights, reversal products, test strips) and the
# captioned picture, their text ends low on page 4, and My plan, the help box and About take
# three quarters of a page. The whole handout still fits 7.
BUDGETS = {"all": 7, "mat,overdose-safety": 5} | {section: 3 for section in (*BODY, "find-help")}
NOTE = ("Bring your pill bottle and this plan to your next visit. Call us if the start is hard. " * 3)[:200]

# Text each language's default handout must show, one phrase per new element.
EXPECTED = {
    "en": {
        "purpose": "Opioid use disorder means you keep using them even when they harm you.",
        "help line": "Emergency: call 911 · Crisis: call or text 988 · Treatment help: 1-800-662-4357",
        "key points": "Key points Methadone and buprenorphine can save your life.",
        "table": "The three medicines Methadone Buprenorphine Naltrexone",
        "table row": "Lowers the risk of dying from overdose? Yes Yes Not shown",
        "safety box": "Keep yourself and others safe Naltrexone. After a missed shot",
        "no mixing": "With methadone or buprenorphine, they can stop your breathing.",
        "prescribed benzos": "If a doctor prescribed a benzo (like Xanax), do not stop it on your own.",
        "oral naltrexone": "A daily pill exists too, but it works less well than the shot for most people.",
        "lock up": "Lock up doses you take home. One dose can kill a child.",
        "poison control": "Poison Control at 1-800-222-1222",
        "pregnancy": "Tell your care team if you are pregnant.",
        "starting buprenorphine": "This is called precipitated withdrawal.",
        "xylazine": "Naloxone does not reverse xylazine or medetomidine",
        "stopping point": "The goal is normal breathing, not waking up.",
        "cpr": "Start CPR: push hard and fast on the middle of their chest.",
        "test strips": "If a strip finds nothing, the drug may still not be safe.",
        "good samaritan": "Good Samaritan laws",
        "medetomidine": "Go to the emergency room.",
        "detox is not first": "Detox alone is not treatment. It is not a step you must take first, either.",
        "rights": "Ask us if someone turns you away.",
        "my plan": "My plan My clinic: Maple Street Example Clinic, (802) 555-0142",
        "plan lines": "Where I keep my naloxone:",
        "disclaimer": "This handout does not replace advice from your care team.",
    },
    "es": {
        "purpose": "Una persona con este trastorno sigue usándolos aunque le hagan daño.",
        "help line": "Emergencias: llame al 911 · Crisis: llame o envíe un texto al 988 · Tratamiento: 1-800-662-4357",
        "key points": "Puntos clave La metadona y la buprenorfina le pueden salvar la vida.",
        "table": "Las tres medicinas Metadona Buprenorfina Naltrexona",
        "safety box": "Cuídese y cuide a los demás",
        "lock up": "Guarde bajo llave las dosis que lleva a casa.",
        "poison control": "Control de Envenenamientos (Poison Control) al 1-800-222-1222",
        "prescribed benzos": "Si un médico le recetó una benzodiacepina (como Xanax), no la deje por su cuenta.",
        "oral naltrexone": "También hay una pastilla diaria, pero a la mayoría le sirve menos que la inyección.",
        "starting buprenorphine": "síndrome de abstinencia precipitado",
        "xylazine": "La naloxona no revierte la xilacina ni la medetomidina.",
        "stopping point": "La meta es que respire bien, no que despierte.",
        "cpr": "Empiece la RCP: empuje fuerte y rápido en el centro de su pecho.",
        "test strips": "Si la tira no encuentra nada, la droga puede no ser segura.",
        "detox is not first": "La desintoxicación sola no es un tratamiento.",
        "my plan": "Mi plan Mi clínica: Clínica de Ejemplo Maple Street, (802) 555-0142",
        "disclaimer": "Este folleto no ocupa el lugar de los consejos de su equipo de salud.",
        "988 in Spanish": "En español: al llamar, marque 2; por texto, envíe la palabra AYUDA al 988.",
        "rights": "Pregúntenos si alguien le rechaza.",
    },
}
WORDS = {
    "en": {"about": "About this handout", "key_points": "Key points", "my_plan": "My plan", "mat": "Medicines for"},
    "es": {"about": "Sobre este folleto", "key_points": "Puntos clave", "my_plan": "Mi plan", "mat": "Medicamentos"},
}


def build(*args: str) -> Path:
    """Build from the shipped project with the CLI; return the PDF it wrote."""
    result = CliRunner().invoke(cli, ["--root", str(ROOT), "--today", TODAY.isoformat(), *args])
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rendered(shipped: Callable[..., Path]) -> dict[tuple[str, str], Path]:
    """Render every selection the page budgets name, in both languages, once (shared with other modules)."""
    pdfs = {}
    for language in ("en", "es"):
        for selection in BUDGETS:
            chosen = () if selection == "all" else ("--sections", selection)
            # The English default is built without --lang, as other modules ask for it.
            options = ("--lang", language) if language != "en" else ()
            pdfs[(language, selection)] = shipped(*options, *chosen)
    return pdfs


def sources(language: str, *section_ids: str) -> list[str]:
    """Return the source URLs the given sections cite, from their files."""
    urls = []
    for section_id in section_ids:
        meta, _, _ = split_front_matter("", (ROOT / f"content/{language}/{section_id}.md").read_text())
        assert meta is not None
        urls += [source["url"] for source in meta["sources"]]
    return urls


def squeeze(text: str) -> str:
    """Remove all whitespace: a URL may break across lines at a slash."""
    return "".join(text.split())


@pytest.mark.render
@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("selection", list(BUDGETS))
def test_page_budget_and_no_page_but_the_last_is_half_empty(
    rendered: dict[tuple[str, str], Path], language: str, selection: str
) -> None:
    path = rendered[(language, selection)]
    blank = emptiness(path, "letter")
    budget = BUDGETS[selection] + (1 if language == "es" else 0)
    assert len(blank) <= budget, f"{len(blank)} pages, budget {budget}"
    assert all(share <= 0.40 for share in blank[:-1]), [f"{share:.0%}" for share in blank]


@pytest.mark.render
@pytest.mark.parametrize("language", ["en", "es"])
def test_the_new_elements_are_in_the_text(rendered: dict[tuple[str, str], Path], language: str) -> None:
    path = rendered[(language, "all")]
    text = text_of(path)
    for element, phrase in EXPECTED[language].items():
        assert phrase in text, element
    first = page_texts(path)[0]
    for element in ("purpose", "help line", "key points"):
        assert EXPECTED[language][element] in first, element  # page 1
    # 911, 988 and the Helpline in one printed line.
    assert [line for line in lines(path) if line.page == 0 and "911" in line.text and "1-800-662-4357" in line.text]


@pytest.mark.parametrize(
    ("language", "steps"),
    [
        (
            "en",
            (
                "Check.",
                "Give naloxone.",
                "Call 911.",
                "Help them breathe.",
                "Give another dose if needed.",
                "Stay with them.",
            ),
        ),
        (
            "es",
            (
                "Revise.",
                "Dele naloxona.",
                "Llame al 911.",
                "Ayúdele a respirar.",
                "Dele otra dosis si hace falta.",
                "Quédese",
            ),
        ),
    ],
)
@pytest.mark.render
def test_overdose_steps_are_numbered_in_the_label_order(
    rendered: dict[tuple[str, str], Path], language: str, steps: tuple[str, ...]
) -> None:
    found = [line.text for line in lines(rendered[(language, "overdose-safety")])]
    numbered = [text for text in found if re.match(r"[1-6]\. ", text)]
    assert [text[:2] for text in numbered] == ["1.", "2.", "3.", "4.", "5.", "6."]
    for text, step in zip(numbered, steps, strict=True):
        assert text[3:].startswith(step), text


@pytest.mark.render
@pytest.mark.parametrize("language", ["en", "es"])
def test_page_one_key_points_read_easily(rendered: dict[tuple[str, str], Path], language: str) -> None:
    for selection in ("all", "mat,overdose-safety", "detox"):
        found = [line for line in lines(rendered[(language, selection)]) if line.page == 0]
        start = next(i for i, line in enumerate(found) if line.text == WORDS[language]["key_points"])
        points: list[str] = []
        # Each point starts at its bullet; the box ends at the first line without one that is not indented.
        for line in found[start + 1 :]:
            if line.text.startswith("•"):
                points.append(line.text.lstrip("• "))
            elif points and line.x0 > found[start].x0 + 4:
                points[-1] += " " + line.text
            else:
                break
        assert 3 <= len(points) <= 5, points
        text = "\n".join(f"- {point}" for point in points)
        if language == "en":
            reading = score(text)
            assert reading.fk_grade <= 6 and reading.smog <= 8, (selection, reading.fk_grade, reading.smog)
        else:
            assert fernandez_huerta(text) >= 70, selection


@pytest.mark.render
@pytest.mark.parametrize("language", ["en", "es"])
def test_about_box_is_at_most_eight_plain_lines(rendered: dict[tuple[str, str], Path], language: str) -> None:
    path = rendered[(language, "all")]
    found = lines(path)
    last = max(line.page for line in found)
    start = next(i for i, line in enumerate(found) if line.page == last and line.text == WORDS[language]["about"])
    # Up to the footer line (the brand's short name starts it) of that page.
    box = [line for line in found[start:] if line.page == last and "Maple Street (" not in line.text]
    box = [line for line in box if not re.fullmatch(r"(Page|Página) \d+ (of|de) \d+", line.text)]
    assert len(box) <= 8, [line.text for line in box]
    text = re.sub(r"\b[0-9a-f]{12}\b", "", " ".join(line.text for line in box[1:]))  # the version is not a word
    if language == "en":
        assert score(text).fk_grade <= 6 and score(text).smog <= 8
    else:
        assert fernandez_huerta(text) >= 70


@pytest.mark.parametrize("language", ["en", "es"])
def test_medicine_table_is_tagged_with_header_cells_and_scopes(
    rendered: dict[tuple[str, str], Path], language: str
) -> None:
    nodes = list(structure(rendered[(language, "mat")]))
    tables = [node for node in nodes if node["/S"] == "/Table"]
    assert tables
    cells = [node for node in nodes if node["/S"] in ("/TH", "/TD")]
    headers = [cell for cell in cells if cell["/S"] == "/TH"]
    scopes = [str(cell["/A"]["/Scope"]) for cell in headers]
    # A header row of 4 column headers (repeated when the table goes on to a new page), then 4
    # rows each headed by a row header.
    assert scopes.count("/Column") in (4, 8) and scopes.count("/Row") == 4
    data = [cell for cell in cells if cell["/S"] == "/TD"]
    assert len(data) == 12
    assert all(len(cell["/A"]["/Headers"]) == 2 for cell in data)  # its row header and its column header


@pytest.mark.parametrize(("language", "step"), [("en", "Step"), ("es", "Paso")])
def test_overdose_picture_has_alt_text(rendered: dict[tuple[str, str], Path], language: str, step: str) -> None:
    figures = [node for node in structure(rendered[(language, "overdose-safety")]) if node["/S"] == "/Figure"]
    alts = [str(node.get("/Alt", "")) for node in figures]
    # Each of the six panels says its step and what it shows, in the order of the steps.
    panels = [alt for alt in alts if re.match(rf"{step} [1-6]: ", alt)]
    assert [alt.split(":")[0] for alt in panels] == [f"{step} {n}" for n in range(1, 7)], alts
    assert all(len(alt) > 20 for alt in panels)  # more than the step number


@pytest.mark.render
def test_patient_copy_has_no_source_links_the_record_has_every_one(run: Invoke, tmp_path: Path) -> None:
    chosen = "mat,overdose-safety"
    assert run("build", "--sections", chosen, "-o", str(tmp_path / "patient.pdf")).exit_code == 0
    result = run("record", "--sections", chosen, "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output == f"{tmp_path / 'example-clinic-en-review-record.pdf'}\n"
    patient = squeeze(text_of(tmp_path / "patient.pdf"))
    record = squeeze(text_of(tmp_path / "example-clinic-en-review-record.pdf"))
    urls = sources("en", "mat", "overdose-safety", "find-help")
    assert len(urls) > 20
    for url in urls:
        assert url in record, url
        assert url not in patient, url
    assert "Ask us for the list of sources." in text_of(tmp_path / "patient.pdf")
    # The record is document control: versions, reviewers with roles, fingerprints.
    record_text = text_of(tmp_path / "example-clinic-en-review-record.pdf")
    assert "Avery Example, MD (Fictional example reviewer, addiction medicine)" in record_text
    assert "Fingerprint of the reviewed text sha256:" in record_text
    assert "Withdrawal and detox" not in record_text  # only the chosen sections


@pytest.mark.render
def test_spanish_record_lists_every_spanish_section(run: Invoke, tmp_path: Path) -> None:
    result = run("record", "--lang", "es", "-o", str(tmp_path / "r.pdf"))
    assert result.exit_code == 0, result.output
    record = squeeze(text_of(tmp_path / "r.pdf"))
    for url in sources("es", *BODY, "find-help"):
        assert url in record, url
    assert "Lucía Ejemplo, MD (Revisora ficticia de ejemplo, medicina de adicciones)" in text_of(tmp_path / "r.pdf")


@pytest.mark.render
def test_appendix_adds_the_source_list_to_a_patient_copy(run: Invoke, tmp_path: Path) -> None:
    assert run("build", "--sections", "detox", "--appendix", "-o", str(tmp_path / "a.pdf")).exit_code == 0
    pages = page_texts(tmp_path / "a.pdf")
    assert "The sources are listed below." in " ".join(pages)
    assert pages[-1].startswith("Sources ")
    for url in sources("en", "detox", "find-help"):
        assert url in squeeze(pages[-1]), url
    refused = run("build", "--layout", "trifold", "--sections", "detox", "--appendix", "-o", str(tmp_path / "t.pdf"))
    assert refused.exit_code == 1
    assert "--appendix: a trifold has no room for the source list" in refused.output


@pytest.mark.render
def test_brand_sources_url_tells_where_the_sources_are(run: Invoke, project: Path, tmp_path: Path) -> None:
    replace_in(
        project / "brands/example-clinic/brand.toml",
        'logo = "logo.svg"',
        'sources_url = "https://example.org/maple-street/sources"\nlogo = "logo.svg"',
    )
    assert run("build", "--sections", "detox", "-o", str(tmp_path / "s.pdf")).exit_code == 0
    text = text_of(tmp_path / "s.pdf")
    assert "You can read the sources at https://example.org/maple-street/sources." in text
    assert "Ask us for the list of sources." not in text


@pytest.mark.render
@pytest.mark.parametrize(("language", "flap"), [("en", ("Key points", "My plan")), ("es", ("Puntos clave", "Mi plan"))])
def test_brochure_holds_the_treatment_routes_and_a_note(tmp_path: Path, language: str, flap: tuple[str, str]) -> None:
    path = build(
        "build",
        "--lang",
        language,
        "--layout",
        "trifold",
        "--sections",
        "mat,overdose-safety,detox",
        "--note",
        NOTE,
        "-o",
        str(tmp_path / "tri.pdf"),
    )
    found = lines(path, columns=3)
    assert max(line.page for line in found) == 1  # two sheets
    panel = 792 / 3
    flap_text = " ".join(line.text for line in found if line.page == 0 and line.x0 < panel)
    assert flap_text.startswith(flap[0]) and flap[1] in flap_text
    assert squeeze(NOTE) in squeeze(flap_text)
    small = [line for line in found if line.size < 8.9]
    assert 1 <= len(small) <= 4 and all(line.size > 7.99 and panel <= line.x0 < 2 * panel for line in small)


@pytest.mark.render
@pytest.mark.parametrize("layout", ["letter", "trifold"])
def test_spanish_breaks_lines_only_between_words(tmp_path: Path, layout: str) -> None:
    # Long Spanish words broken at line ends made readers stumble: nothing is hyphenated, in
    # the body, the brief, a name or a number.
    path = build(
        "build",
        "--lang",
        "es",
        "--layout",
        layout,
        *(("--sections", "mat,overdose-safety,detox") if layout == "trifold" else ()),
        "--prepared-for",
        "Maximiliana Bartolomé Echeverría",
        "--counselor",
        "Guadalupe Villanueva Santamaría",
        "-o",
        str(tmp_path / "es.pdf"),
    )
    found = [line.text for line in lines(path, columns=3 if layout == "trifold" else 1)]
    assert len(found) > 100
    # A web address may break after its own hyphen (how addresses wrap is its own rule).
    words = [text.split()[-1] for text in found if text.strip()]
    broken = [word for word in words if word.endswith(("\u2010", "\u00ad")) or re.fullmatch(r"[^/]*[a-záéíóúñ]-", word)]
    assert broken == []
    text = text_of(path)
    for phone in ("1-800-662-4357", "1-800-222-1222", "(802) 555-0142"):
        assert phone in text, phone
    assert "Maximiliana Bartolomé Echeverría" in text and "Guadalupe Villanueva Santamaría" in text


@pytest.mark.render
def test_a_section_without_a_brief_cannot_go_in_a_brochure(run: Invoke, project: Path, tmp_path: Path) -> None:
    text = (project / "content/en/detox.md").read_text()
    start, end = text.index("brief: |"), text.index("\n---\n", text.index("brief: |"))
    (project / "content/en/detox.md").write_text(text[:start] + text[end + 1 :])
    assert "content/en/detox.md: brief: missing; the tri-fold prints each section's brief (warning)" in (
        run("check").output
    )
    refused = run("build", "--layout", "trifold", "--sections", "detox", "-o", str(tmp_path / "t.pdf"))
    assert refused.exit_code == 1
    assert "content/en/detox.md: brief: missing; the trifold prints each section's brief" in refused.output
    assert run("build", "--sections", "detox", "-o", str(tmp_path / "l.pdf")).exit_code == 0


def test_the_record_is_not_a_patient_layout(run: Invoke, tmp_path: Path) -> None:
    result = run("build", "--layout", "record", "-o", str(tmp_path / "r.pdf"))
    assert result.exit_code == 2
    assert "'record' is not one of 'letter', 'a4', 'large-print', 'trifold'" in result.output


@pytest.mark.render
def test_catalog_placeholders_must_match_english(run: Invoke, project: Path, tmp_path: Path) -> None:
    replace_in(project / "templates/i18n/es.toml", "Revisores: {names}.", "Revisores: {nombres}.")
    assert (
        "templates/i18n/es.toml: summary_listed: placeholders differ from en.toml; expected {names}"
        in run("check").output
    )
    result = run("build", "--lang", "es", "--sections", "detox", "-o", str(tmp_path / "x.pdf"))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: templates/i18n/es.toml: summary_listed: no value for {nombres}; use the placeholders of en.toml"
    ]
