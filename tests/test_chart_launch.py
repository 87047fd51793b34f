"""Into the chart for real: an EHR launch in Debian's chromium, the page filled from the chart, Save to the chart.

The EHR is two real processes (tests/ehr.py): fhirsnake as the FHIR server, and a SMART authorization server
built on Authlib in front of it. The counselor's server is `handouts serve` as IT starts it.
"""

from __future__ import annotations

import base64
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from ehr import running_ehr
from test_browser import browser, free_port, pdf_text, start_server  # noqa: F401 - browser is a fixture
from test_serve import files_holding

pytestmark = [pytest.mark.render, pytest.mark.xdist_group("browser")]

CLIENT_ID = "handouts-test"
# What the EHR's (fictional) record says and the counselor never types: it must reach only the PDF and the chart.
FAMILY_NAME = "Quillabamba"
FIRST_NAME = "Rosa"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GET|POST) \S+ \d{3}")


def of_patient(resources: list[dict[str, Any]], patient: str) -> list[dict[str, Any]]:
    return [r for r in resources if r.get("subject", {}).get("reference") == f"Patient/{patient}"]


def test_launched_from_the_chart_in_spanish_made_and_saved_to_the_chart(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe
    from fhir.resources.R4B.documentreference import DocumentReference
    from fhir.resources.R4B.procedure import Procedure
    from playwright.sync_api import expect

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_ehr(tmp_path / "ehr", CLIENT_ID, f"{base}/callback") as ehr:
        started = time.time()
        project = tmp_path / "project"
        project.mkdir()
        url, process = start_server(project, port, ["--smart-client-id", CLIENT_ID, "--smart-fhir", ehr.iss])
        try:
            page = browser.new_page()
            page.goto(ehr.launch_url(f"{url}/launch", ehr.launch(patient="rosa", encounter="visit-1")))
            # Filled from the chart: her first name, her preferred language, the sections her problem names.
            chart = page.locator("#from-the-chart")
            expect(chart).to_contain_text(f"Opened from the chart for {FIRST_NAME}")
            expect(chart).to_contain_text("Español (Spanish): the chart's preferred language (es)")
            expect(page.locator("#language")).to_have_value("es")
            expect(page.locator("#prepared_for")).to_have_value(FIRST_NAME)
            expect(page.locator("#section-mat")).to_be_checked()
            expect(page.locator("#about-mat")).to_contain_text("From the chart: problem")
            expect(page.locator("#about-mat")).to_contain_text("F11.20")
            expect(page.locator("#about-mat")).to_contain_text("order")
            # Detox declares the withdrawal codes only (F11.13, F11.23, F11.93): F11.20 does not tick it.
            expect(page.locator("#section-detox")).not_to_be_checked()
            expect(page.locator(".account")).to_contain_text("Signed in by the EHR as")
            page.screenshot(path=str(tmp_path / "launched.png"), full_page=True)
            assert Axe().run(page).violations_count == 0

            page.locator("#make-pdf").click()
            expect(page.locator("#save-chart")).to_be_visible()
            page.locator("#outcome").select_option("voiced-understanding")
            page.locator("#save-to-chart").click()
            expect(page.locator("#chart-answer")).to_contain_text("Saved to the chart")
            page.screenshot(path=str(tmp_path / "saved.png"), full_page=True)
            assert Axe().run(page).violations_count == 0

            documents = of_patient(ehr.resources("DocumentReference"), "rosa")
            procedures = of_patient(ehr.resources("Procedure"), "rosa")
            assert len(documents) == 1 and len(procedures) == 1
            document, procedure = documents[0], procedures[0]
            DocumentReference.model_validate(document)
            Procedure.model_validate(procedure)
            attachment = document["content"][0]["attachment"]
            assert attachment["contentType"] == "application/pdf" and attachment["language"] == "es"
            assert f"Mi plan para {FIRST_NAME}" in pdf_text(base64.b64decode(attachment["data"]))
            assert document["author"][0]["reference"] == "Practitioner/counselor-1"
            # The shipped drafts print SAMPLE: the chart is told it is a preliminary document, not for patients.
            assert document["docStatus"] == "preliminary" and "not for patients" in document["description"]
            assert document["context"]["encounter"][0]["reference"] == "Encounter/visit-1"
            assert procedure["code"]["coding"][0]["code"] == "311401005"
            assert procedure["report"][0]["reference"] == f"DocumentReference/{document['id']}"
            assert "Voiced understanding" in str(procedure.get("outcome"))

            # Made again in the same visit: a new document that says it replaces the first.
            page.locator("#make-pdf").click()
            page.locator("#save-to-chart").click()
            expect(page.locator("#chart-answer")).to_contain_text("Saved to the chart")
            documents = of_patient(ehr.resources("DocumentReference"), "rosa")
            assert len(documents) == 2
            newer = next(d for d in documents if d["id"] != document["id"])
            assert newer["relatesTo"] == [
                {"code": "replaces", "target": {"reference": f"DocumentReference/{document['id']}"}}
            ]

            # Signed out, the page forgets the chart: a fresh form with nothing of hers.
            page.locator(".account button").click()
            page.goto(f"{url}/")
            expect(page.locator("#prepared_for")).to_have_value("")
            expect(page.locator("#from-the-chart")).to_have_count(0)
            page.close()
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=30)
    lines = [line for line in output.splitlines() if LOG_LINE.search(line)]
    assert any(" GET /launch 303" in line for line in lines) and any(" POST /chart 200" in line for line in lines)
    for line in output.splitlines():
        assert LOG_LINE.search(line) or not line[:1].isdigit(), line
    for secret in (FIRST_NAME, FAMILY_NAME, "rosa", "visit-1", "counselor-1", "code=", "access_token"):
        assert secret not in output
    places = [project, Path(tempfile.gettempdir()), Path.home() / ".cache", Path.cwd()]

    def holding() -> list[str]:
        # The EHR's own copies of her record (this test's EHR, and another test's started meanwhile) aside.
        found = files_holding(FAMILY_NAME.encode(), since=started, places=places)
        return [p for p in found if "/fhirsnake/resources/" not in p]

    # Nothing this server wrote holds her; the search can tell, as a file holding her name is found.
    assert holding() == []
    planted = project / "planted.txt"
    planted.write_text(f"x {FAMILY_NAME}")
    assert holding() == [str(planted)]
