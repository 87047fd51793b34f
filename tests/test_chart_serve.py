"""The chart's doors through the real app and a real EHR (tests/ehr.py): launch refusals, a retried write-back,
the memory a sign-out leaves, a launch-only server, and CDS Hooks behind the app's own guard."""

from __future__ import annotations

import dataclasses
import gc
import re
import shutil
import time
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import ROOT, TODAY, fake_render
from ehr import Ehr, need_fhirsnake, running_ehr

from handouts.render_service import ThreadExecutor
from handouts.serve.app import ServeConfig, make_app
from handouts.serve.chart import Education
from handouts.serve.smart import Launched, SmartSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

# Each test talks to the EHR's two processes: the slow tier.
pytestmark = [pytest.mark.render, pytest.mark.xdist_group("chart_serve")]

BASE = "http://127.0.0.1:8750"
CLIENT_ID = "handouts-test"


@pytest.fixture(scope="module")
def ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ehr]:
    need_fhirsnake()
    with running_ehr(tmp_path_factory.mktemp("ehr"), CLIENT_ID, f"{BASE}/callback") as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("content", "templates", "styles", "brands"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "handouts.toml", tmp_path / "handouts.toml")
    return tmp_path


def app_for(project: Path, ehr: Ehr, **options: Any) -> Any:
    smart = SmartSettings(CLIENT_ID, (ehr.iss,), f"{BASE}/callback")
    config = ServeConfig(root=project, allowed_hosts=("127.0.0.1:8750",), smart=smart, **options)
    return make_app(config, ThreadExecutor(2, fake_render), clock=lambda: TODAY)


def launch(client: TestClient, ehr: Ehr, patient: str = "rosa") -> Any:
    """Open the page from the EHR as a browser does: our /launch, the EHR's /authorize, our /callback."""
    started = client.get("/launch", params={"iss": ehr.iss, "launch": ehr.launch(patient=patient)})
    assert started.status_code == 303, started.text
    authorized = httpx.get(started.headers["location"], follow_redirects=False, timeout=10)
    assert authorized.status_code == 302
    back = urlsplit(authorized.headers["location"])
    assert back.path == "/callback"
    return client.get(f"/callback?{back.query}")


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match[1]


def chart_field(page: str) -> str:
    """Return the mark of the chart a page's form was filled for."""
    match = re.search(r'name="chart" value="([^"]*)"', page)
    assert match, page
    return match[1]


def make_pdf(client: TestClient) -> str:
    """Make the PDF from the form as the chart filled it; return the page's answer."""
    page = client.get("/").text
    form = {"csrf": csrf(page), "chart": chart_field(page), "language": "es", "brand": "example-clinic"}
    form |= {"layout": "letter", "action": "make"}
    answer = client.post("/handout", data={**form, "sections": ["mat"], "prepared_for": "Rosa"})
    assert answer.status_code == 200 and 'id="save-chart"' in answer.text, answer.text
    return answer.text


def save(client: TestClient, page: str, outcome: str = "") -> Any:
    token = re.search(r'name="pdf" value="([^"]+)"', page)
    assert token
    return client.post("/chart", data={"csrf": csrf(page), "pdf": token[1], "outcome": outcome})


def of_patient(resources: list[dict[str, Any]], patient: str) -> list[dict[str, Any]]:
    return [r for r in resources if r.get("subject", {}).get("reference") == f"Patient/{patient}"]


def test_a_save_retried_after_a_dropped_connection_makes_one_document(project: Path, ehr: Ehr) -> None:
    with TestClient(app_for(project, ehr), base_url=BASE, follow_redirects=False) as client:
        assert launch(client, ehr, "sam").status_code == 200
        page = make_pdf(client)
        before = len(ehr.requests())
        # The EHR stores the document, then the connection drops before its answer arrives.
        ehr.drop_next("POST", "DocumentReference")
        answer = save(client, page, "needs-review")
        assert answer.status_code == 200 and "Saved to the chart." in answer.text, answer.text
    seen = ehr.requests()[before:]
    posts = [r for r in seen if r["method"] == "POST" and r["path"].endswith("/DocumentReference")]
    assert len(posts) == 1 and posts[0]["dropped"] and posts[0]["if_none_exist"]
    # After the drop the client looked again and found it, instead of sending it twice.
    assert [r for r in seen if r["method"] == "GET" and r["path"].endswith("/DocumentReference")][1:]
    assert len(of_patient(ehr.resources("DocumentReference"), "sam")) == 1
    assert len(of_patient(ehr.resources("Procedure"), "sam")) == 1


def test_a_failed_save_says_what_failed_and_keeps_the_pdf(project: Path, ehr: Ehr) -> None:
    with TestClient(app_for(project, ehr), base_url=BASE, follow_redirects=False) as client:
        assert launch(client, ehr).status_code == 200
        page = make_pdf(client)
        pdf = re.search(r'href="(/pdf/[^"]+)"', page)
        assert pdf
        # The EHR ends the permission (a token revoked or timed out there): the write-back says so.
        store = client.app.app.state.handlers.door.store  # type: ignore[attr-defined]
        for session, launched in list(store.sessions.items()):
            store.sessions[session] = dataclasses.replace(launched, access_token="revoked-at-the-ehr")  # noqa: S106
        answer = save(client, page)
        assert answer.status_code == 502 and "Not saved to the chart." in answer.text
        assert "Saving the handout to the chart" in answer.text and "401" in answer.text and "try again" in answer.text
        assert client.get(pdf[1]).content.startswith(b"%PDF")


def holders(needle: str) -> list[str]:
    """Return the type of every object the collector tracks that holds `needle` as a string, or a string with it."""
    found = []
    for thing in gc.get_objects():
        values: Any = ()
        try:
            if isinstance(thing, dict):
                if "__builtins__" in thing:
                    continue  # a module's globals: the tests' own constants
                values = list(thing.values())
            elif isinstance(thing, list | tuple | set):
                values = list(thing)
            elif not isinstance(thing, type | types.ModuleType) and hasattr(thing, "__dict__"):
                values = list(vars(thing).values())
        except Exception:  # noqa: S112 - a proxy or a half-made object the collector still tracks
            continue
        if any(isinstance(v, str) and needle in v for v in values):
            found.append(type(thing).__name__)
    return found


def test_nothing_of_the_patient_is_held_after_sign_out(project: Path, ehr: Ehr) -> None:
    app = app_for(project, ehr)
    handlers = app.app.state.handlers
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        assert launch(client, ehr).status_code == 200
        ((_session, launched),) = handlers.door.store.sessions.items()
        token = launched.access_token
        assert holders(token)  # the search can tell: while launched, the token is in memory
        page = make_pdf(client)
        assert save(client, page, "voiced-understanding").status_code == 200
        client.post("/logout", data={"csrf": csrf(client.get("/").text)})
        assert client.get("/").status_code == 200
        del launched, page
    gc.collect()
    assert handlers.door.store.sessions == {} and handlers.door.store.saved == {}
    assert [o for o in gc.get_objects() if isinstance(o, Launched)] == []
    # This server's made PDFs are the fake renderer's (other tests' Education examples may live on).
    assert [o for o in gc.get_objects() if isinstance(o, Education) and o.pdf.startswith(b"%PDF-fake")] == []
    assert holders(token) == []
    # Her family name came in the Patient record the launch read; her first name went into the form and the PDF.
    assert holders("Quillabamba") == [] and holders("Rosa") == []
    assert all(held.chart is None for held in handlers.shelf.items.values())


def test_a_launch_from_an_ehr_not_registered_is_refused_before_any_call(project: Path, ehr: Ehr) -> None:
    with TestClient(app_for(project, ehr), base_url=BASE, follow_redirects=False) as client:
        before = len(ehr.requests())
        answer = client.get("/launch", params={"iss": "https://evil.example/fhir", "launch": "x"})
        assert answer.status_code == 403 and "https://evil.example/fhir" in answer.text
        assert len(ehr.requests()) == before


def test_the_ehrs_answer_is_taken_only_by_the_browser_that_started(project: Path, ehr: Ehr) -> None:
    app = app_for(project, ehr)
    with (
        TestClient(app, base_url=BASE, follow_redirects=False) as mine,
        TestClient(app, base_url=BASE, follow_redirects=False) as theirs,
    ):
        started = mine.get("/launch", params={"iss": ehr.iss, "launch": ehr.launch()})
        authorized = httpx.get(started.headers["location"], follow_redirects=False, timeout=10)
        query = urlsplit(authorized.headers["location"]).query
        # A code sent to another browser (a link in an email) opens nothing there.
        refused = theirs.get(f"/callback?{query}")
        assert refused.status_code == 400 and "began in another browser" in refused.text
        assert "Opened from the chart" not in theirs.get("/").text


def test_a_launch_only_server_sends_everyone_else_to_the_chart(project: Path, ehr: Ehr) -> None:
    with TestClient(app_for(project, ehr, launch_only=True), base_url=BASE, follow_redirects=False) as client:
        assert client.get("/").headers["location"] == "/login"
        login = client.get("/login")
        assert login.status_code == 401 and "Open this page from a chart" in login.text
        assert launch(client, ehr).status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "Opened from the chart for Rosa" in page.text
        assert "Signed in by the EHR as Jordan Placeholder" in page.text


def test_cds_hooks_answer_through_the_app_with_a_large_prefetch(project: Path) -> None:
    from joserfc.jwk import ECKey
    from test_cds_hooks import EHR, KeyServer, example, sign

    keys = KeyServer()
    try:
        key = ECKey.generate_key("P-384", parameters={"kid": "ehr-1"})
        config = ServeConfig(
            root=project, allowed_hosts=("127.0.0.1:8750",), cds_clients=((EHR, keys.serve("/jwks", key)),)
        )
        app = make_app(config, ThreadExecutor(2, fake_render), clock=lambda: TODAY)
        with TestClient(app, base_url=BASE, follow_redirects=False) as client:
            services = client.get("/cds-services").json()["services"]
            assert {s["hook"] for s in services} == {"patient-view", "order-select"}
            body = example("patient-view.json")
            # A long problem list: past the 64 KiB a form may be, as a real chart's prefetch can be.
            filler = {
                "resourceType": "Condition",
                "subject": {"reference": "Patient/1288992"},
                "note": [{"text": "x" * 400}],
            }
            body["prefetch"]["conditions"]["entry"] += [{"resource": filler}] * 200
            audience = f"{BASE}/cds-services/handouts-patient-view"
            authorization = sign(key, audience, time.time())
            answer = client.post(
                "/cds-services/handouts-patient-view", json=body, headers={"authorization": authorization}
            )
            assert len(answer.request.content) > 64 * 1024
            assert answer.status_code == 200, answer.text
            (card,) = answer.json()["cards"]
            assert any(link["url"] == f"{BASE}/handouts/es/mat.pdf" for link in card["links"])
            # This server has no SMART launch (no --smart-client-id): no smart link that would lead nowhere.
            assert [link["type"] for link in card["links"]] == ["absolute"] * (len(card["links"]))
            assert "make a handout for this patient" not in card["detail"]
            # The same token again is a replay.
            again = client.post(
                "/cds-services/handouts-patient-view", json=body, headers={"authorization": authorization}
            )
            assert again.status_code == 401
    finally:
        keys.close()


def test_a_pdf_made_for_one_chart_is_never_saved_to_the_next(project: Path, ehr: Ehr) -> None:
    app = app_for(project, ehr)
    handlers = app.app.state.handlers
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        assert launch(client, ehr, "rosa").status_code == 200
        rosa_page = make_pdf(client)
        sam_before = len(of_patient(ehr.resources("DocumentReference"), "sam"))
        # The EHR opens Sam's chart in the same browser: Rosa's launch ends, and so does her PDF's link to a chart.
        assert launch(client, ehr, "sam").status_code == 200
        assert len(handlers.door.store.sessions) == 1
        refused = save(client, rosa_page)
        assert refused.status_code == 409 and "made for the chart open before" in refused.text
        # Rosa's form, still open in an older tab, makes nothing for Sam either.
        form = {"csrf": csrf(rosa_page), "chart": chart_field(rosa_page)}
        old = client.post(
            "/handout",
            data={**form, "language": "es", "brand": "example-clinic", "sections": ["mat"], "prepared_for": "Rosa"},
        )
        assert old.status_code == 409 and "filled for another chart" in old.text
        assert 'value="Rosa"' not in old.text and "Opened from the chart for Sam" in old.text
    assert len(of_patient(ehr.resources("DocumentReference"), "sam")) == sam_before


def test_a_flood_of_launches_from_elsewhere_does_not_push_out_a_counselors(project: Path, ehr: Ehr) -> None:
    app = app_for(project, ehr)
    with (
        TestClient(app, base_url=BASE, follow_redirects=False) as counselor,
        TestClient(app, base_url=BASE, follow_redirects=False, client=("203.0.113.9", 5000)) as stranger,
    ):
        started = counselor.get("/launch", params={"iss": ehr.iss, "launch": ehr.launch()})
        before = len(ehr.requests())
        for _ in range(600):
            assert stranger.get("/launch", params={"iss": ehr.iss, "launch": "x"}).status_code == 303
        # The EHR's settings were read once for the lot, not once each.
        assert len(ehr.requests()) == before
        authorized = httpx.get(started.headers["location"], follow_redirects=False, timeout=10)
        back = counselor.get(f"/callback?{urlsplit(authorized.headers['location']).query}")
        assert back.status_code == 200 and "Opened from the chart" in back.text


def test_a_launch_only_server_behind_its_proxy_answers_launched_people(project: Path, ehr: Ehr) -> None:
    app = app_for(project, ehr, launch_only=True)
    proxied = {"x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https"}
    with TestClient(app, base_url=BASE, follow_redirects=False, headers=proxied) as client:
        assert client.get("/").headers["location"] == "/login"
        assert launch(client, ehr).status_code == 200
        assert "Opened from the chart for Rosa" in client.get("/").text
