"""The Infobutton door through Starlette's test client: a clinic's brand by path or organization, search by name."""

from __future__ import annotations

import io
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, TODAY, Invoke, replace_in

from handouts.inputs.brands import load_brand
from handouts.project import Project
from handouts.render_service import RenderJob, RenderOutcome, ThreadExecutor, render_job
from handouts.serve.app import ServeConfig, make_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "http://127.0.0.1:8750"
ATOM = "{http://www.w3.org/2005/Atom}"
ICD10CM, RXNORM = "2.16.840.1.113883.6.90", "2.16.840.1.113883.6.88"
# The shipped example clinic's organization, and a second made-up clinic's, both under HL7's example root.
MAPLE_OID, RIVER_OID = "2.16.840.1.113883.19.5", "2.16.840.1.113883.19.1001"
MAPLE, RIVER = "Maple Street Example Clinic", "Riverside Example Clinic"
ORGANIZATION = "representedOrganization.id.root"
Client = Callable[..., TestClient]


def branded_render(job: RenderJob) -> RenderOutcome:
    """Stand in for WeasyPrint: a small 'PDF' naming the brand it was made for, by id and name."""
    brand = job.handout.brand
    body = f"%PDF-fake {brand.id} {brand.name} {job.handout.version}\n".encode() + b"x" * 2000
    return RenderOutcome(job.key, body, None, None, pages=1)


@pytest.fixture
def riverside(project: Path) -> str:
    """Add a second made-up clinic that answers for RIVER_OID; the example clinic stays the default."""
    folder = project / "brands/riverside"
    shutil.copytree(project / "brands/example-clinic", folder)
    toml = folder / "brand.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("Maple Street", "Riverside"), encoding="utf-8")
    replace_in(toml, f'organization_ids = ["{MAPLE_OID}"]', f'organization_ids = ["{RIVER_OID}"]')
    return "riverside"


@pytest.fixture
def client(project: Path) -> Iterator[Client]:
    """Return a maker of test clients for an app over the temporary project."""
    made: list[TestClient] = []

    def make(render: Callable[[RenderJob], RenderOutcome] = branded_render, *, release: bool = False) -> TestClient:
        config = ServeConfig(root=project, release=release, allowed_hosts=("127.0.0.1:8750",))
        app = make_app(config, ThreadExecutor(2, render), clock=lambda: TODAY)
        made.append(TestClient(app, base_url=BASE, follow_redirects=False))
        return made[-1]

    yield make
    for test_client in made:
        test_client.close()


def feed(response: Any) -> tuple[str, list[str]]:
    """Return the author and the PDF links of an Atom answer."""
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)  # noqa: S314 - our own answer
    author = root.find(f"{ATOM}author/{ATOM}name")
    assert author is not None and author.text
    return author.text, [link.get("href", "") for link in root.iter(f"{ATOM}link") if link.get("rel") == "alternate"]


def coded(code: str = "F11.20", system: str = ICD10CM, **extra: str) -> dict[str, str]:
    return {"mainSearchCriteria.v.c": code, "mainSearchCriteria.v.cs": system, **extra}


# -- a brand by path --------------------------------------------------------------------------------


def test_a_brand_path_gives_links_and_an_author_of_that_brand(client: Client, riverside: str) -> None:
    author, links = feed(client().get(f"/infobutton/{riverside}", params=coded()))
    assert author == RIVER
    assert links[:2] == [f"{BASE}/handouts/riverside/en/mat.pdf", f"{BASE}/handouts/riverside/en/overdose-safety.pdf"]
    # The plain door keeps its links and the default brand.
    author, links = feed(client().get("/infobutton", params=coded()))
    assert author == MAPLE
    assert links[0] == f"{BASE}/handouts/en/mat.pdf"


def test_a_brand_path_answers_in_the_requests_language(client: Client, riverside: str) -> None:
    params = coded(
        "7242", RXNORM, **{"informationRecipient.languageCode.c": "es", "knowledgeResponseType": "application/json"}
    )
    answer = client().get(f"/infobutton/{riverside}", params=params).json()["feed"]
    assert answer["author"]["name"]["_value"] == "Clínica de Ejemplo Riverside"
    assert [entry["link"][0]["href"] for entry in answer["entry"]] == [
        f"{BASE}/handouts/riverside/es/overdose-safety.pdf"
    ]


def test_each_brand_gets_its_own_pdf(client: Client, riverside: str) -> None:
    test_client = client()
    default = test_client.get("/handouts/en/mat.pdf")
    river = test_client.get(f"/handouts/{riverside}/en/mat.pdf")
    maple = test_client.get("/handouts/example-clinic/en/mat.pdf")
    assert [r.status_code for r in (default, river, maple)] == [200, 200, 200]
    assert river.content.startswith(f"%PDF-fake riverside {RIVER} ".encode())
    assert maple.content.startswith(f"%PDF-fake example-clinic {MAPLE} ".encode())
    assert default.content == maple.content


def test_two_brands_with_the_same_files_do_not_share_a_cached_pdf(client: Client, project: Path) -> None:
    # Same files, same handout version: only the brand's id tells them apart, and the logo is read by it.
    shutil.copytree(project / "brands/example-clinic", project / "brands/twin")
    test_client = client()
    maple = test_client.get("/handouts/example-clinic/en/mat.pdf")
    twin = test_client.get("/handouts/twin/en/mat.pdf")
    assert maple.content.split()[1:2] == [b"example-clinic"]
    assert twin.content.split()[1:2] == [b"twin"]
    assert maple.content.split()[-2] == twin.content.split()[-2]  # the one version


@pytest.mark.parametrize(
    "path",
    [
        "/infobutton/nobody",
        "/infobutton/RIVERSIDE%00",
        "/handouts/nobody/en/mat.pdf",
        "/handouts/nobody/es/overdose-safety.pdf",
    ],
)
def test_an_unknown_brand_is_a_plain_404(client: Client, riverside: str, path: str) -> None:
    answer = client().get(path, params=coded())
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "No such clinic here."


def test_a_brand_path_is_read_in_any_case(client: Client, riverside: str) -> None:
    author, links = feed(client().get("/infobutton/Riverside", params=coded()))
    assert author == RIVER and links[0] == f"{BASE}/handouts/riverside/en/mat.pdf"


def test_in_a_release_an_example_brand_is_not_offered_by_path(client: Client, own_brand: str) -> None:
    test_client = client(release=True)
    assert test_client.get("/infobutton/example-clinic", params=coded()).status_code == 404
    assert test_client.get("/handouts/example-clinic/en/mat.pdf").status_code == 404
    assert test_client.get(f"/infobutton/{own_brand}", params=coded()).status_code == 200


# -- a brand by the requesting organization ---------------------------------------------------------


def test_an_organization_a_brand_declares_gets_that_brand(client: Client, riverside: str) -> None:
    for sent in (RIVER_OID, f"urn:oid:{RIVER_OID}"):
        author, links = feed(client().get("/infobutton", params=coded(**{ORGANIZATION: sent})))
        assert author == RIVER
        assert links and all(link.startswith(f"{BASE}/handouts/riverside/en/") for link in links)


def test_an_unknown_organization_gets_the_default_brand(client: Client, riverside: str) -> None:
    plain = feed(client().get("/infobutton", params=coded()))
    for sent in ("1.3.6.1.4.1.3768", "2.16.840.1.113883.19", "not an oid", "x" * 500):
        assert feed(client().get("/infobutton", params=coded(**{ORGANIZATION: sent}))) == plain
    assert plain[0] == MAPLE
    # The default brand's own organization names no brand in the links: they are the default's anyway.
    assert feed(client().get("/infobutton", params=coded(**{ORGANIZATION: MAPLE_OID}))) == plain


def test_the_path_wins_over_the_organization(client: Client, riverside: str) -> None:
    author, links = feed(client().get("/infobutton/example-clinic", params=coded(**{ORGANIZATION: RIVER_OID})))
    assert author == MAPLE
    assert links[0] == f"{BASE}/handouts/example-clinic/en/mat.pdf"


def test_in_a_release_an_example_brands_organization_gets_the_default(
    client: Client, project: Path, riverside: str
) -> None:
    replace_in(project / f"brands/{riverside}/brand.toml", "\nexample = true\n", "\nexample = false\n")
    # A release offers no example brand: the example clinic's organization gets the one brand offered.
    author, _ = feed(client(release=True).get("/infobutton", params=coded(**{ORGANIZATION: MAPLE_OID})))
    assert author == RIVER
    author, _ = feed(client().get("/infobutton", params=coded(**{ORGANIZATION: MAPLE_OID})))
    assert author == MAPLE


# -- search by display name -------------------------------------------------------------------------


def named(name: str, **extra: str) -> dict[str, str]:
    return {"mainSearchCriteria.v.dn": name, "knowledgeResponseType": "application/json", **extra}


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [entry["id"]["_value"].removeprefix(BASE) for entry in response.json()["feed"]["entry"]]


def test_a_display_name_without_a_code_finds_sections_by_keyword(client: Client) -> None:
    test_client = client()
    assert titles(test_client.get("/infobutton", params=named("Suboxone"))) == ["/handouts/en/mat.pdf"]
    assert titles(test_client.get("/infobutton", params=named("SUBOXONE 8 mg-2 mg sublingual film"))) == [
        "/handouts/en/mat.pdf"
    ]
    assert titles(test_client.get("/infobutton", params=named("Narcán nasal spray"))) == [
        "/handouts/en/overdose-safety.pdf"
    ]
    answer = test_client.get("/infobutton", params=named("Suboxone")).json()["feed"]
    assert answer["subtitle"]["_value"] == "Suboxone"
    assert answer["category"] == [{"scheme": "mainSearchCriteria.v.dn", "term": "Suboxone"}]


def test_a_display_name_finds_a_spanish_title_and_answers_in_spanish(client: Client) -> None:
    params = named("Seguridad ante una sobredosis", **{"informationRecipient.languageCode.c": "es"})
    assert titles(client().get("/infobutton", params=params)) == ["/handouts/es/overdose-safety.pdf"]


def test_an_unmatched_display_name_gives_an_empty_feed(client: Client) -> None:
    for name in ("Type 2 diabetes mellitus", "format", "", "\x00"):
        assert titles(client().get("/infobutton", params=named(name))) == []


def test_a_code_wins_over_the_display_name(client: Client) -> None:
    params = {**coded("7242", RXNORM), **named("Suboxone")}
    assert titles(client().get("/infobutton", params=params)) == ["/handouts/en/overdose-safety.pdf"]


def test_a_display_name_and_an_organization_together(client: Client, riverside: str) -> None:
    params = named("Vivitrol", **{ORGANIZATION: RIVER_OID})
    assert titles(client().get("/infobutton", params=params)) == ["/handouts/riverside/en/mat.pdf"]


# -- check ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            '"2.16.840.1.113883.19.5"',
            'organization_ids: expected a list of HL7 OIDs, like ["2.16.840.1.113883.19.5"], '
            "got '2.16.840.1.113883.19.5'",
        ),
        ("[]", "organization_ids: empty; list at least one OID, or leave organization_ids out"),
        (
            '["2.16.840.1.113883.19.5", 2.16]',
            'organization_ids: expected each OID as quoted text, like "2.16.840.1.113883.19.5", got 2.16',
        ),
        (
            '["2.16.840.01.113883"]',
            "organization_ids: '2.16.840.01.113883' is not an HL7 OID (numbers joined by dots, the first 0, 1 or 2, "
            "none starting with 0, like 2.16.840.1.113883.19.5)",
        ),
        (
            '["Maple Street"]',
            "organization_ids: 'Maple Street' is not an HL7 OID (numbers joined by dots, the first 0, 1 or 2, "
            "none starting with 0, like 2.16.840.1.113883.19.5)",
        ),
        (
            '["urn:oid:2.16.840.1.113883.19.5"]',
            "organization_ids: 'urn:oid:2.16.840.1.113883.19.5': write the OID without urn:oid:, "
            "like 2.16.840.1.113883.19.5",
        ),
        (
            f'["2.{".".join(["1234567"] * 9)}"]',
            "organization_ids: an OID of 73 characters; at most 64",
        ),
        (
            '["2.16.840.1.113883.19.5", "2.16.840.1.113883.19.5"]',
            "organization_ids: '2.16.840.1.113883.19.5' is listed twice",
        ),
    ],
)
def test_check_names_a_bad_organization_id_in_one_line(run: Invoke, project: Path, value: str, message: str) -> None:
    toml = project / "brands/example-clinic/brand.toml"
    replace_in(toml, f'organization_ids = ["{MAPLE_OID}"]', f"organization_ids = {value}")
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"brands/example-clinic/brand.toml: {message}",
        "Aborted: 1 problem in 1 file.",
    ]


def test_the_shipped_example_brand_declares_an_oid_under_hl7s_example_root() -> None:
    brand, problems = load_brand(Project(ROOT), "example-clinic")
    assert problems == [] and brand is not None
    assert brand.organization_ids == (MAPLE_OID,)
    assert all(oid.startswith("2.16.840.1.113883.19.") for oid in brand.organization_ids)


# -- the real PDF -----------------------------------------------------------------------------------


@pytest.mark.render
def test_the_pdf_of_a_brand_path_prints_that_brand(client: Client, riverside: str) -> None:
    from pypdf import PdfReader

    test_client = client(render_job)
    _, links = feed(test_client.get("/infobutton", params=coded("7242", RXNORM, **{ORGANIZATION: RIVER_OID})))
    assert links == [f"{BASE}/handouts/riverside/en/overdose-safety.pdf"]
    pdf = test_client.get(links[0].removeprefix(BASE))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert RIVER in " ".join(text.split())
    assert "Maple Street" not in text
