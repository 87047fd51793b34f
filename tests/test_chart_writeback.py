"""A made handout written back to the chart: a US Core DocumentReference and a Procedure, once each, however it goes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ehr import fhirsnake_package, fhirsnake_python, free_port, need_fhirsnake
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.procedure import Procedure

from handouts.serve import chart
from handouts.serve.chart import (
    MAX_PDF_BYTES,
    TEACH_BACK,
    ChartContext,
    Education,
    document_identifier,
    document_reference,
    procedure,
    procedure_identifier,
    save_to_chart,
)

BASE = "https://ehr.test/fhir"
TOKEN = "secret-token-5f1c"  # noqa: S105 (a made-up token the logs must not hold)
PATIENT = "pt-8843"
CONTEXT = ChartContext(BASE, TOKEN, PATIENT, "enc-12", "Practitioner/counselor-1")
# A small PDF whose bytes are not all ASCII, so a base64 round trip that loses anything shows.
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
MADE = dt.datetime(2026, 11, 23, 10, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
EDUCATION = Education(
    pdf=PDF,
    title="Buprenorphine: what to expect",
    description="Gave the handout 'Buprenorphine: what to expect' (English), version 3.",
    language="en",
    version="3.0.1+a1b2c3",
    made=MADE,
    outcome="demonstrated",
)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry at once: the pauses are for real servers, not for the suite's time."""
    monkeypatch.setattr(chart, "RETRY_DELAYS", (0.0, 0.0))


class Store:
    """An in-memory FHIR server: search ignores every parameter (as fhirsnake does); create may honour If-None-Exist.

    `drop` lists resource types whose next create is stored and then answered with a dropped
    connection; `refuse` maps a type to the answer its creates get instead.
    """

    def __init__(self, *, honour_if_none_exist: bool) -> None:
        self.honour = honour_if_none_exist
        self.resources: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[httpx.Request] = []
        self.drop: list[str] = []
        self.refuse: dict[str, httpx.Response] = {}
        self.unreachable = False

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Return every stored resource of a type."""
        return list(self.resources.get(kind, {}).values())

    def posts(self, kind: str) -> list[httpx.Request]:
        """Return the creates of a type that reached the server."""
        return [each for each in self.requests if each.method == "POST" and each.url.path.endswith(f"/{kind}")]

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Store a resource under a fresh id and return it."""
        kind = resource["resourceType"]
        held = self.resources.setdefault(kind, {})
        resource = {**resource, "id": f"{kind.lower()}-{len(held) + 1}"}
        held[resource["id"]] = resource
        return resource

    def transport(self) -> httpx.MockTransport:
        """Return the transport a client talks to this store through."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request."""
        self.requests.append(request)
        if self.unreachable:
            raise httpx.ConnectError("connection refused", request=request)
        kind = request.url.path.rsplit("/", 1)[-1]
        if request.method == "GET":
            entries = [{"resource": each} for each in self.of(kind)]
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": entries})
        assert request.method == "POST"
        if kind in self.refuse:
            return self.refuse[kind]
        resource = json.loads(request.content)
        condition = request.headers.get("if-none-exist", "")
        if self.honour and condition.startswith("identifier="):
            system, value = condition.removeprefix("identifier=").split("|", 1)
            for each in self.of(kind):
                if {"system": system, "value": value} in each.get("identifier", []):
                    return httpx.Response(200, json=each)
        stored = self.add(resource)
        if kind in self.drop:
            self.drop.remove(kind)
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(201, json=stored, headers={"Location": f"{BASE}/{kind}/{stored['id']}/_history/1"})


def outcome(status: int, diagnostics: str) -> httpx.Response:
    """Return a refusal with an OperationOutcome body."""
    issue = {"severity": "error", "code": "processing", "diagnostics": diagnostics}
    return httpx.Response(status, json={"resourceType": "OperationOutcome", "issue": [issue]})


def save(store: Store, education: Education = EDUCATION, **options: Any) -> chart.Saved:
    """Save through a client bound to the store."""
    with httpx.Client(transport=store.transport()) as client:
        return save_to_chart(CONTEXT, education, client=client, **options)


def test_the_document_reference_is_us_core_and_holds_the_pdf_byte_for_byte() -> None:
    data = document_reference(CONTEXT, EDUCATION, replaces="DocumentReference/old-7")
    model = DocumentReference.model_validate(data)
    assert model.status == "current" and model.docStatus == "final"
    assert [(c.system, c.code) for c in model.type.coding] == [("http://loinc.org", "34895-3")]
    assert [(c.system, c.code) for c in model.category[0].coding] == [
        ("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note")
    ]
    assert data["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert data["author"] == [{"reference": "Practitioner/counselor-1"}]
    assert data["context"]["encounter"] == [{"reference": "Encounter/enc-12"}]
    assert data["meta"]["profile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"]
    # The moment made, as an instant in UTC (10:15:30 at UTC-5).
    assert data["date"] == "2026-11-23T15:15:30Z" and model.date.utcoffset() == dt.timedelta(0)
    attachment = data["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf" and attachment["language"] == "en"
    assert base64.b64decode(attachment["data"]) == PDF
    assert attachment["size"] == len(PDF)
    assert base64.b64decode(attachment["hash"]) == hashlib.sha1(PDF, usedforsecurity=False).digest()
    assert attachment["title"] == EDUCATION.title
    assert data["relatesTo"] == [{"code": "replaces", "target": {"reference": "DocumentReference/old-7"}}]
    assert data["identifier"] == [document_identifier(CONTEXT, EDUCATION)]


def test_the_procedure_is_patient_education_reporting_the_document() -> None:
    data = procedure(CONTEXT, EDUCATION, "DocumentReference/doc-1")
    model = Procedure.model_validate(data)
    assert model.status == "completed"
    assert [(c.system, c.code) for c in model.code.coding] == [("http://snomed.info/sct", "311401005")]
    assert data["report"] == [{"reference": "DocumentReference/doc-1"}]
    assert data["performer"] == [{"actor": {"reference": "Practitioner/counselor-1"}}]
    assert (
        data["encounter"] == {"reference": "Encounter/enc-12"} and data["performedDateTime"] == "2026-11-23T15:15:30Z"
    )
    assert data["outcome"] == {"text": TEACH_BACK["demonstrated"]}
    assert data["identifier"] == [procedure_identifier(CONTEXT, EDUCATION)]


def test_without_encounter_outcome_or_replacement_those_elements_are_left_out() -> None:
    context = ChartContext(BASE, TOKEN, PATIENT, None, "PractitionerRole/r-2")
    education = Education(PDF, "Título", "Se dio el folleto.", "es-419", "1", MADE, "")
    document = document_reference(context, education)
    DocumentReference.model_validate(document)
    assert "relatesTo" not in document and "encounter" not in document["context"]
    done = procedure(context, education, "DocumentReference/d")
    Procedure.model_validate(done)
    assert "outcome" not in done and "encounter" not in done
    for key in TEACH_BACK:
        Procedure.model_validate(
            procedure(context, Education(PDF, "t", "d", "en", "1", MADE, key), "DocumentReference/d")
        )


def test_identifiers_are_stable_for_one_made_pdf_and_differ_otherwise() -> None:
    again = Education(PDF, "other title", "other line", "en", EDUCATION.version, MADE.astimezone(dt.UTC))
    assert document_identifier(CONTEXT, again) == document_identifier(CONTEXT, EDUCATION)
    later = Education(PDF, EDUCATION.title, "", "en", EDUCATION.version, MADE + dt.timedelta(seconds=1))
    other_version = Education(PDF, EDUCATION.title, "", "en", "3.0.2", MADE)
    other_patient = ChartContext(BASE, TOKEN, "pt-1", None, CONTEXT.author)
    values = {
        document_identifier(CONTEXT, EDUCATION)["value"],
        document_identifier(CONTEXT, later)["value"],
        document_identifier(CONTEXT, other_version)["value"],
        document_identifier(other_patient, EDUCATION)["value"],
        procedure_identifier(CONTEXT, EDUCATION)["value"],
    }
    assert len(values) == 5 and all(value.startswith("urn:uuid:") for value in values)
    # The patient's id is hashed into the identifier, never spelled out in it.
    assert not any(PATIENT in value for value in values)


def test_one_save_creates_one_document_and_one_procedure_with_the_bearer_token() -> None:
    store = Store(honour_if_none_exist=True)
    saved = save(store)
    assert saved.ok, saved.message
    [document] = store.of("DocumentReference")
    [done] = store.of("Procedure")
    assert saved.document == f"DocumentReference/{document['id']}" and saved.procedure == f"Procedure/{done['id']}"
    assert done["report"] == [{"reference": saved.document}]
    assert saved.document in saved.message and saved.procedure in saved.message
    assert base64.b64decode(document["content"][0]["attachment"]["data"]) == PDF
    assert {each.headers["authorization"] for each in store.requests} == {f"Bearer {TOKEN}"}
    for kind, identifier in (("DocumentReference", document_identifier), ("Procedure", procedure_identifier)):
        [post] = store.posts(kind)
        mark = identifier(CONTEXT, EDUCATION)
        assert post.headers["if-none-exist"] == f"identifier={mark['system']}|{mark['value']}"
        assert post.headers["content-type"] == "application/fhir+json"
    # Each create was preceded by a search for its identifier.
    searches = [each for each in store.requests if each.method == "GET"]
    assert [each.url.params["identifier"].split("|")[0] for each in searches] == ["urn:ietf:rfc:3986"] * 2


def test_a_connection_dropped_after_the_create_makes_one_document_not_two() -> None:
    store = Store(honour_if_none_exist=False)
    store.drop = ["DocumentReference", "Procedure"]
    saved = save(store)
    assert saved.ok, saved.message
    assert len(store.of("DocumentReference")) == 1 and len(store.of("Procedure")) == 1
    # The retry searched, found what the dropped create stored, and created nothing more.
    assert len(store.posts("DocumentReference")) == 1 and len(store.posts("Procedure")) == 1
    assert saved.document == f"DocumentReference/{store.of('DocumentReference')[0]['id']}"


def test_a_server_ignoring_if_none_exist_gets_no_duplicate_on_a_second_save() -> None:
    store = Store(honour_if_none_exist=False)
    first = save(store)
    second = save(store)
    assert first.ok and second.ok
    assert (second.document, second.procedure) == (first.document, first.procedure)
    assert len(store.of("DocumentReference")) == 1 and len(store.of("Procedure")) == 1
    assert len(store.posts("DocumentReference")) == 1


def test_a_search_that_returns_everything_is_checked_resource_by_resource() -> None:
    store = Store(honour_if_none_exist=False)
    mine = document_reference(CONTEXT, EDUCATION)
    # Our identifier on another patient's document, and our patient's document under another identifier:
    # neither is the one we would write.
    store.add({**mine, "subject": {"reference": "Patient/someone-else"}})
    store.add({**mine, "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0"}]})
    saved = save(store)
    assert saved.ok
    assert saved.document == "DocumentReference/documentreference-3" and len(store.posts("DocumentReference")) == 1


def test_a_refused_document_says_which_step_and_what_the_server_said() -> None:
    store = Store(honour_if_none_exist=True)
    store.refuse["DocumentReference"] = outcome(422, "DocumentReference.type: code 34895-3 is not allowed here")
    saved = save(store)
    assert not saved.ok and not saved.document and not saved.procedure
    assert saved.message.startswith("Saving the handout to the chart failed")
    assert "422" in saved.message and "code 34895-3 is not allowed here" in saved.message
    assert not store.posts("Procedure")


def test_a_long_or_unprintable_diagnostic_is_trimmed_to_one_line() -> None:
    store = Store(honour_if_none_exist=True)
    store.refuse["DocumentReference"] = outcome(400, "bad\nrequest\x00 " + "x" * 5000)
    saved = save(store)
    assert not saved.ok and "bad request" in saved.message and "\n" not in saved.message
    assert len(saved.message) < 320


def test_a_refused_procedure_says_the_document_is_saved() -> None:
    store = Store(honour_if_none_exist=True)
    store.refuse["Procedure"] = outcome(403, "scope user/Procedure.c not granted")
    saved = save(store)
    assert not saved.ok and saved.document == f"DocumentReference/{store.of('DocumentReference')[0]['id']}"
    assert not saved.procedure
    assert "The handout is saved in the chart" in saved.message and saved.document in saved.message
    assert "403" in saved.message and "scope user/Procedure.c not granted" in saved.message


def test_a_pdf_over_5_mib_is_refused_without_a_request() -> None:
    store = Store(honour_if_none_exist=True)
    big = Education(b"%PDF-" + b"0" * MAX_PDF_BYTES, "t", "d", "en", "1", MADE)
    saved = save(store, big)
    assert not saved.ok and "5 MiB" in saved.message
    assert store.requests == []
    # Exactly 5 MiB still goes.
    assert save(store, Education(b"%PDF-" + b"0" * (MAX_PDF_BYTES - 5), "t", "d", "en", "1", MADE)).ok


@pytest.mark.parametrize(
    ("context", "education", "words"),
    [
        (CONTEXT, Education(PDF, "t", "d", "en", "1", MADE.replace(tzinfo=None)), "time zone"),
        (CONTEXT, Education(PDF, "t", "d", "en", "1", MADE, "nodded"), "teach-back"),
        (CONTEXT, Education(b"<html>", "t", "d", "en", "1", MADE), "not a PDF"),
        (ChartContext(BASE, TOKEN, "../Patient/x", None, CONTEXT.author), EDUCATION, "patient"),
        (ChartContext(BASE, TOKEN, PATIENT, None, "Bob"), EDUCATION, "FHIR user"),
        (ChartContext("ftp://ehr.test", TOKEN, PATIENT, None, CONTEXT.author), EDUCATION, "address"),
        (ChartContext(BASE, "a\r\nX-Evil: 1", PATIENT, None, CONTEXT.author), EDUCATION, "token"),
    ],
)
def test_input_that_cannot_be_sent_is_refused_before_any_request(
    context: ChartContext, education: Education, words: str
) -> None:
    store = Store(honour_if_none_exist=True)
    with httpx.Client(transport=store.transport()) as client:
        saved = save_to_chart(context, education, client=client)
    assert not saved.ok and words in saved.message and store.requests == []


def test_replaces_is_sent_as_relates_to() -> None:
    store = Store(honour_if_none_exist=True)
    assert save(store, replaces="old-7").ok
    [document] = store.of("DocumentReference")
    assert document["relatesTo"] == [{"code": "replaces", "target": {"reference": "DocumentReference/old-7"}}]
    assert not save(Store(honour_if_none_exist=True), replaces="Procedure/x").ok


def test_an_unreachable_server_is_tried_three_times_then_reported() -> None:
    store = Store(honour_if_none_exist=True)
    store.unreachable = True
    saved = save(store)
    assert not saved.ok and "connection" in saved.message and "3 tries" in saved.message
    assert len(store.requests) == 3


def test_a_gateway_error_is_retried_and_a_created_answer_without_an_id_is_looked_up() -> None:
    store = Store(honour_if_none_exist=False)
    answers = iter([httpx.Response(503), httpx.Response(201)])

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/DocumentReference"):
            answer = next(answers, None)
            if answer is not None:
                if answer.status_code == 201:
                    store.add(json.loads(request.content))
                return answer
        return store.handle(request)

    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        saved = save_to_chart(CONTEXT, EDUCATION, client=client)
    assert saved.ok, saved.message
    assert saved.document == "DocumentReference/documentreference-1" and len(store.of("DocumentReference")) == 1


def test_nothing_logged_holds_the_token_or_the_patient(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = Store(honour_if_none_exist=False)
    store.drop = ["DocumentReference"]
    store.refuse["Procedure"] = outcome(422, f"Patient/{PATIENT} unknown")
    save(store)
    assert caplog.records, "the write-back logs its statuses"
    assert TOKEN not in caplog.text and PATIENT not in caplog.text
    assert all(
        record.getMessage().startswith("chart write-back: ")
        for record in caplog.records
        if record.name.startswith("handouts")
    )


# The real FHIR server, fhirsnake, in its own venv: it ignores If-None-Exist and every search parameter.


@pytest.fixture
def fhirsnake(tmp_path: Path) -> Iterator[str]:
    """Start fhirsnake seeded with one Patient; return its base address."""
    need_fhirsnake()
    python, package = fhirsnake_python(), fhirsnake_package()
    assert python is not None and package is not None
    patients = tmp_path / "resources" / "Patient"
    patients.mkdir(parents=True)
    (patients / f"{PATIENT}.json").write_text(json.dumps({"resourceType": "Patient", "active": True}))
    port = free_port()
    server = subprocess.Popen(
        [str(python), "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(package)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/Patient/{PATIENT}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"fhirsnake did not start (exit {server.poll()})")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.render  # it starts fhirsnake: the slow tier
def test_fhirsnake_keeps_one_document_when_the_same_handout_is_saved_twice(fhirsnake: str) -> None:
    context = ChartContext(fhirsnake, TOKEN, PATIENT, "enc-12", "Practitioner/counselor-1")
    first = save_to_chart(context, EDUCATION)
    assert first.ok, first.message
    second = save_to_chart(context, EDUCATION)
    assert second.ok, second.message
    assert (second.document, second.procedure) == (first.document, first.procedure)
    documents = httpx.get(f"{fhirsnake}/DocumentReference", timeout=10).json()["entry"]
    procedures = httpx.get(f"{fhirsnake}/Procedure", timeout=10).json()["entry"]
    assert len(documents) == 1 and len(procedures) == 1
    stored = documents[0]["resource"]
    assert f"DocumentReference/{stored['id']}" == first.document
    assert base64.b64decode(stored["content"][0]["attachment"]["data"]) == PDF
    DocumentReference.model_validate(stored)
    Procedure.model_validate(procedures[0]["resource"])
    assert procedures[0]["resource"]["report"] == [{"reference": first.document}]
