"""Write a made handout back to the patient's chart: a US Core DocumentReference holding the PDF, and a Procedure.

The SMART launch code calls `save_to_chart` from a worker thread with the launch context (the FHIR
base, the access token, the patient, the encounter and the counselor) and the made PDF. Two creates:

    POST [base]/DocumentReference   the PDF inline, LOINC 34895-3 "Education note", category clinical-note
    POST [base]/Procedure           SNOMED CT 311401005 "Patient education", report -> the DocumentReference

Each create is idempotent: its identifier is a name-based UUID of the handout version, the patient and
the moment the PDF was made, so saving the same made PDF again finds what the first save wrote. The
create carries If-None-Exist, but some servers ignore it (and a server that ignores search parameters
answers a search with every resource of the type), so before each create, and again before a retry,
this module searches by identifier and checks each returned resource itself. A dropped connection
after the request went out means "maybe created": the retry searches first.

Everything the EHR answers is hostile: bodies are read up to a cap and within a deadline, ids are
checked against FHIR's id pattern, and the page gets one sentence with the server's own words trimmed.
Nothing here logs the token, the patient, or a response body: only "chart write-back: <status>".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from .fhir import names_patient, next_page

LOG = logging.getLogger("handouts.serve.chart")

LOINC = "http://loinc.org"
SNOMED_CT = "http://snomed.info/sct"
US_CORE_DOCUMENT_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
US_CORE_DOCUMENT_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"
US_CORE_PROCEDURE_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure"
# The IHE format code for a document whose MIME type says all a reader needs (a plain PDF).
IHE_FORMAT_CODES = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
MIME_TYPE_SUFFICIENT = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
# The namespace of this tool's identifiers: a fixed name, so every install derives the same UUIDs.
IDENTIFIER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:handouts:chart-write-back")

# US Core's "Writing Clinical Notes": a server SHALL accept inline attachments up to at least 5 MiB.
# Past that a server may refuse, so we refuse first, with a sentence the counselor can act on.
MAX_PDF_BYTES = 5 * 1024 * 1024
# The answer to a create may echo the whole resource (the PDF in base64 is 4/3 of it); a search that
# ignores its parameters may answer with every document on the server. Past these we stop reading.
MAX_CREATE_ANSWER_BYTES = 16 * 1024 * 1024
MAX_SEARCH_ANSWER_BYTES = 64 * 1024 * 1024
MAX_SEARCH_PAGES = 10
# Each call: 15 s to connect, and between any two reads or writes (a 5 MiB body on a slow link), and
# the whole answer within the deadline, so a server that trickles bytes cannot hold the worker.
TIMEOUT = httpx.Timeout(15.0)
CALL_DEADLINE_SECONDS = 60.0
# A dropped connection or a gateway's 502/503/504 is retried at most twice, after these pauses.
RETRY_DELAYS: tuple[float, ...] = (0.5, 1.5)
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_DIAGNOSTICS = 200

FHIR_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
REFERENCE_RE = re.compile(r"([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})")
# A BCP 47 tag as FHIR's code type holds it: letters and digits in hyphenated subtags, no spaces.
LANGUAGE_RE = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
# The id at the end of a Location header: [base]/Type/id or [base]/Type/id/_history/vid.
LOCATION_RE = re.compile(r"(?:^|/)([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$")
# What US Core takes as a note's author, and R4 as a Procedure performer's actor: the same six types.
AUTHOR_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "Device", "Patient", "RelatedPerson"})

# Teach-back: what the counselor saw when the patient explained the handout back. Text only:
# no SNOMED CT concept for these was checked against a release, so none is claimed.
TEACH_BACK: dict[str, str] = {
    "voiced-understanding": "Voiced understanding",
    "demonstrated": "Teach-back: explained it back correctly",
    "needs-review": "Needs review",
    "declined": "Declined education",
}

DOCUMENT_STEP = "Saving the handout to the chart"
PROCEDURE_STEP = "recording the education in the chart"


@dataclass(frozen=True)
class ChartContext:
    """The SMART launch's context: the FHIR base (the iss), the access token, the patient, encounter and counselor."""

    fhir_base: str
    access_token: str
    patient: str
    encounter: str | None
    author: str


@dataclass(frozen=True)
class Education:
    """A made handout to save: the PDF, its title and language, the chart note line, version and when it was made."""

    pdf: bytes
    title: str
    description: str
    language: str
    version: str
    made: dt.datetime
    outcome: str = ""
    # A draft sample (the PDF prints SAMPLE): the chart is told, as a preliminary document, not a final one.
    sample: bool = False


@dataclass(frozen=True)
class Saved:
    """What saving did, for the page: the references written, or one sentence saying which step failed and why."""

    ok: bool
    document: str = ""
    procedure: str = ""
    message: str = ""


@dataclass(frozen=True)
class _Answer:
    """One HTTP answer, its body read up to a cap (None when it ran past the cap)."""

    status: int
    reason: str
    location: str
    body: bytes | None


class _Failure(Exception):
    """A step that cannot go on: the one clause for the page saying why."""


def _instant(moment: dt.datetime) -> str:
    """Return an aware moment as a FHIR instant in UTC."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _identifier(prefix: str, education: Education, patient: str) -> dict[str, str]:
    name = f"{prefix}|{education.version}|{patient}|{_instant(education.made)}"
    return {"system": IDENTIFIER_SYSTEM, "value": f"urn:uuid:{uuid.uuid5(IDENTIFIER_NAMESPACE, name)}"}


def document_identifier(context: ChartContext, education: Education) -> dict[str, str]:
    """Return the DocumentReference's stable identifier: the same made PDF for the same patient gives the same one."""
    return _identifier("DocumentReference", education, context.patient)


def procedure_identifier(context: ChartContext, education: Education) -> dict[str, str]:
    """Return the Procedure's stable identifier, derived like the document's under another name."""
    return _identifier("Procedure", education, context.patient)


def _replaced(replaces: str) -> str:
    """Return the DocumentReference reference a `replaces` value names (an id or DocumentReference/id)."""
    return replaces if replaces.startswith("DocumentReference/") else f"DocumentReference/{replaces}"


def _require_aware(moment: dt.datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the moment the handout was made needs a time zone")


def document_reference(context: ChartContext, education: Education, *, replaces: str | None = None) -> dict[str, Any]:
    """Return the US Core DocumentReference holding the made PDF inline."""
    _require_aware(education.made)
    made = _instant(education.made)
    attachment: dict[str, Any] = {
        "contentType": "application/pdf",
        "language": education.language,
        "data": base64.b64encode(education.pdf).decode("ascii"),
        "size": len(education.pdf),
        # FHIR's Attachment.hash is the SHA-1 of the data, base64ed.
        "hash": base64.b64encode(hashlib.sha1(education.pdf, usedforsecurity=False).digest()).decode("ascii"),
        "creation": made,
    }
    if education.title.strip():
        attachment["title"] = education.title.strip()
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "meta": {"profile": [US_CORE_DOCUMENT_PROFILE]},
        "identifier": [document_identifier(context, education)],
        "status": "current",
        "docStatus": "preliminary" if education.sample else "final",
        "type": {
            "coding": [{"system": LOINC, "code": "34895-3", "display": "Education note"}],
            "text": "Education note",
        },
        "category": [
            {"coding": [{"system": US_CORE_DOCUMENT_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}]}
        ],
        "subject": {"reference": f"Patient/{context.patient}"},
        "date": made,
        "author": [{"reference": context.author}],
    }
    if education.description.strip():
        resource["description"] = education.description.strip()
    if replaces:
        resource["relatesTo"] = [{"code": "replaces", "target": {"reference": _replaced(replaces)}}]
    resource["content"] = [
        {
            "attachment": attachment,
            "format": {"system": IHE_FORMAT_CODES, "code": MIME_TYPE_SUFFICIENT, "display": "mimeType Sufficient"},
        }
    ]
    # US Core: the clinically relevant time goes in context.period; the education happened as it was made.
    document_context: dict[str, Any] = {"period": {"start": made, "end": made}}
    if context.encounter:
        document_context["encounter"] = [{"reference": f"Encounter/{context.encounter}"}]
    resource["context"] = document_context
    return resource


def procedure(context: ChartContext, education: Education, document: str) -> dict[str, Any]:
    """Return the completed patient-education Procedure whose report is the saved DocumentReference."""
    _require_aware(education.made)
    if education.outcome and education.outcome not in TEACH_BACK:
        raise ValueError(f"unknown teach-back outcome {education.outcome!r}")
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "meta": {"profile": [US_CORE_PROCEDURE_PROFILE]},
        "identifier": [procedure_identifier(context, education)],
        "status": "completed",
        "category": {
            "coding": [{"system": SNOMED_CT, "code": "409073007", "display": "Education"}],
            "text": "Education",
        },
        "code": {
            "coding": [{"system": SNOMED_CT, "code": "311401005", "display": "Patient education (procedure)"}],
            "text": "Patient education",
        },
        "subject": {"reference": f"Patient/{context.patient}"},
    }
    if context.encounter:
        resource["encounter"] = {"reference": f"Encounter/{context.encounter}"}
    resource["performedDateTime"] = _instant(education.made)
    resource["performer"] = [{"actor": {"reference": context.author}}]
    if education.outcome:
        resource["outcome"] = {"text": TEACH_BACK[education.outcome]}
    resource["report"] = [{"reference": document}]
    if education.description.strip():
        resource["note"] = [{"text": education.description.strip()}]
    return resource


def problems(context: ChartContext, education: Education, replaces: str | None = None) -> list[str]:
    """Return what keeps this save from being sent at all (each a sentence for the page); none when it can go."""
    found: list[str] = []
    if len(education.pdf) > MAX_PDF_BYTES:
        found.append(
            f"The handout PDF is {len(education.pdf) / (1024 * 1024):.1f} MiB; the chart takes at most "
            f"{MAX_PDF_BYTES // (1024 * 1024)} MiB inline, so it was not sent."
        )
    elif not education.pdf.startswith(b"%PDF-"):
        found.append("The handout to save is not a PDF.")
    if education.made.tzinfo is None or education.made.utcoffset() is None:
        found.append("The moment the handout was made has no time zone.")
    if education.outcome and education.outcome not in TEACH_BACK:
        found.append("The teach-back outcome is not one of the offered choices.")
    if not LANGUAGE_RE.fullmatch(education.language):
        found.append("The handout's language is not a language tag.")
    if not education.version.strip():
        found.append("The handout has no version.")
    base = httpx.URL(context.fhir_base) if _parses(context.fhir_base) else None
    if base is None or base.scheme not in ("http", "https") or not base.host or base.query or base.fragment:
        found.append("The EHR's FHIR address is not an http(s) address.")
    if not context.access_token or not context.access_token.isascii() or not context.access_token.isprintable():
        found.append("The EHR launch gave no usable access token.")
    if not FHIR_ID_RE.fullmatch(context.patient):
        found.append("The EHR launch gave no usable patient.")
    if context.encounter is not None and not FHIR_ID_RE.fullmatch(context.encounter):
        found.append("The EHR launch gave an encounter that is not a FHIR id.")
    author = REFERENCE_RE.fullmatch(context.author)
    if not author or author.group(1) not in AUTHOR_TYPES:
        found.append("The counselor's FHIR user is not a reference to a Practitioner or the like.")
    if replaces is not None and not (
        (match := REFERENCE_RE.fullmatch(_replaced(replaces))) and match.group(1) == "DocumentReference"
    ):
        found.append("The document to replace is not a DocumentReference id.")
    return found


def _parses(url: str) -> bool:
    try:
        httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    return True


def _headers(context: ChartContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {context.access_token}", "Accept": "application/fhir+json"}


def _call(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    limit: int,
    params: dict[str, str] | None = None,
    content: bytes | None = None,
) -> _Answer:
    """Send one request; read its answer up to `limit` bytes within the deadline. Transport errors pass through."""
    request = client.build_request(method, url, headers=headers, params=params, content=content, timeout=TIMEOUT)
    response = client.send(request, stream=True, follow_redirects=False)
    try:
        deadline = time.monotonic() + CALL_DEADLINE_SECONDS
        chunks: list[bytes] = []
        size = 0
        body: bytes | None = None
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                break
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the answer took longer than the deadline", request=request)
        else:
            body = b"".join(chunks)
    finally:
        response.close()
    LOG.info("chart write-back: %s %s", method, response.status_code)
    return _Answer(response.status_code, response.reason_phrase, response.headers.get("location", ""), body)


def _json(body: bytes | None) -> Any:
    if body is None:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _clean(text: str) -> str:
    text = " ".join("".join(char if char.isprintable() else " " for char in text[: MAX_DIAGNOSTICS * 4]).split())
    return text if len(text) <= MAX_DIAGNOSTICS else text[: MAX_DIAGNOSTICS - 1].rstrip() + "…"


def _outcome_text(body: bytes | None) -> str:
    """Return the first issue's diagnostics (or details) of an OperationOutcome body, trimmed; "" for anything else."""
    outcome = _json(body)
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return ""
    issues = outcome.get("issue")
    issue = issues[0] if isinstance(issues, list) and issues and isinstance(issues[0], dict) else {}
    text = issue.get("diagnostics")
    details = issue.get("details")
    if not isinstance(text, str) or not text.strip():
        text = details.get("text") if isinstance(details, dict) else None
    if (not isinstance(text, str) or not text.strip()) and isinstance(details, dict):
        codings = details.get("coding")
        first = codings[0] if isinstance(codings, list) and codings and isinstance(codings[0], dict) else {}
        text = first.get("display")
    return _clean(text) if isinstance(text, str) else ""


def _refused(answer: _Answer) -> str:
    said = f"the EHR answered {answer.status}" + (f" {_clean(answer.reason)}" if answer.reason else "")
    text = _outcome_text(answer.body)
    return f"{said} ({text})" if text else said


def _same_patient(reference: object, context: ChartContext) -> bool:
    return names_patient(reference, context.patient, context.fhir_base)


def _ours(resource: object, kind: str, identifier: dict[str, str], context: ChartContext) -> str | None:
    """Return the id of a searched resource that really is ours (type, identifier, patient), else None."""
    if not isinstance(resource, dict) or resource.get("resourceType") != kind:
        return None
    found = resource.get("id")
    if not isinstance(found, str) or not FHIR_ID_RE.fullmatch(found):
        return None
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list) or not any(
        isinstance(each, dict)
        and each.get("system") == identifier["system"]
        and each.get("value") == identifier["value"]
        for each in identifiers
    ):
        return None
    subject = resource.get("subject")
    return found if isinstance(subject, dict) and _same_patient(subject.get("reference"), context) else None


def _search(client: httpx.Client, context: ChartContext, kind: str, identifier: dict[str, str]) -> str | None:
    """Return the reference to our resource if the server holds it; None when it does not, or cannot be asked.

    A server that ignores the search parameter answers with every resource of the type, so each
    entry is checked here. A search the server refuses (a token that may create but not read) or an
    answer past the cap leaves the question open: the create's If-None-Exist is then all there is.
    """
    url = f"{context.fhir_base}/{kind}"
    # With the patient: a patient-scoped token may search only within its patient (EHRs refuse it otherwise).
    params: dict[str, str] | None = {
        "patient": context.patient,
        "identifier": f"{identifier['system']}|{identifier['value']}",
    }
    for _ in range(MAX_SEARCH_PAGES):
        answer = _call(client, "GET", url, headers=_headers(context), params=params, limit=MAX_SEARCH_ANSWER_BYTES)
        bundle = _json(answer.body)
        if answer.status != 200 or not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            return None
        entries = bundle.get("entry")
        for entry in entries if isinstance(entries, list) else ():
            found = _ours(entry.get("resource") if isinstance(entry, dict) else None, kind, identifier, context)
            if found:
                return f"{kind}/{found}"
        following = next_page(bundle, context.fhir_base)
        if following is None:
            return None
        url, params = following, None
    return None


def _created(answer: _Answer, kind: str) -> str | None:
    """Return the reference a successful create names, from its body or its Location header."""
    resource = _json(answer.body)
    if isinstance(resource, dict) and resource.get("resourceType") == kind:
        found = resource.get("id")
        if isinstance(found, str) and FHIR_ID_RE.fullmatch(found):
            return f"{kind}/{found}"
    location = LOCATION_RE.search(answer.location)
    if location and location.group(1) == kind:
        return f"{kind}/{location.group(2)}"
    return None


def _ensure(client: httpx.Client, context: ChartContext, resource: dict[str, Any]) -> str:
    """Create the resource unless the server already holds it; return its reference or raise _Failure."""
    kind = str(resource["resourceType"])
    identifier = resource["identifier"][0]
    body = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {
        **_headers(context),
        "Content-Type": "application/fhir+json",
        "If-None-Exist": f"identifier={identifier['system']}|{identifier['value']}",
        "Prefer": "return=representation",
    }
    last = "the EHR could not be reached"
    for attempt in range(len(RETRY_DELAYS) + 1):
        if attempt:
            time.sleep(RETRY_DELAYS[attempt - 1])
        try:
            found = _search(client, context, kind, identifier)
            if found:
                return found
            answer = _call(
                client,
                "POST",
                f"{context.fhir_base}/{kind}",
                headers=headers,
                content=body,
                limit=MAX_CREATE_ANSWER_BYTES,
            )
        except httpx.TransportError:
            # The request may have reached the server before the connection dropped: the next attempt
            # searches before it creates.
            last = "the connection to the EHR failed or timed out"
            continue
        if answer.status in (200, 201, 202):
            created = _created(answer, kind)
            if created:
                return created
            try:
                found = _search(client, context, kind, identifier)
            except httpx.TransportError:
                found = None
            if found:
                return found
            raise _Failure(f"the EHR answered {answer.status} but named no {kind}")
        if answer.status in RETRY_STATUSES:
            last = _refused(answer)
            continue
        raise _Failure(_refused(answer))
    raise _Failure(f"{last} ({len(RETRY_DELAYS) + 1} tries)")


def save_to_chart(
    context: ChartContext, education: Education, *, replaces: str | None = None, client: httpx.Client | None = None
) -> Saved:
    """Save the made handout to the patient's chart as a DocumentReference and a Procedure; say how it went."""
    found = problems(context, education, replaces)
    if found:
        LOG.info("chart write-back: refused before sending")
        return Saved(ok=False, message=" ".join(found))
    context = ChartContext(
        context.fhir_base.rstrip("/"), context.access_token, context.patient, context.encounter, context.author
    )
    if client is None:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as own:
            return _save(own, context, education, replaces)
    return _save(client, context, education, replaces)


def _save(client: httpx.Client, context: ChartContext, education: Education, replaces: str | None) -> Saved:
    try:
        document = _ensure(client, context, document_reference(context, education, replaces=replaces))
    except _Failure as failure:
        LOG.info("chart write-back: document failed")
        return Saved(ok=False, message=f"{DOCUMENT_STEP} failed: {failure}.")
    try:
        done = _ensure(client, context, procedure(context, education, document))
    except _Failure as failure:
        LOG.info("chart write-back: procedure failed")
        return Saved(
            ok=False,
            document=document,
            message=f"The handout is saved in the chart ({document}), but {PROCEDURE_STEP} failed: {failure}.",
        )
    LOG.info("chart write-back: saved")
    return Saved(
        ok=True,
        document=document,
        procedure=done,
        message=f"In the patient's record: the handout as {document}, the education as {done}.",
    )
