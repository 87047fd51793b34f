"""The SMART launch's parts without a network: the authorization request, the id token, the chart's facts, the store."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ROOT, TODAY
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from handouts.inputs.sections import load_sections
from handouts.languages import match_language
from handouts.project import Project
from handouts.serve.smart import (
    ChartFacts,
    Endpoints,
    Finding,
    LaunchError,
    LaunchStore,
    Pending,
    SmartSettings,
    authorization_url,
    browser_binding,
    chart_language,
    chart_sections,
    first_name,
    id_token_claims,
    order_findings,
    patient_languages,
    problem_findings,
    reference,
    resource_id,
)

ISS = "https://ehr.example.org/fhir"
SETTINGS = SmartSettings("handouts", (ISS + "/",), "https://handouts.example.org/callback")
ENDPOINTS = Endpoints(
    "https://ehr.example.org/authorize", "https://ehr.example.org/token", "https://ehr.example.org/jwks", ISS
)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def pending(browser: str = "b", expires: float = 1e12) -> Pending:
    return Pending(ISS, ENDPOINTS, "v" * 64, browser_binding(browser), "n0nce", expires)


def test_the_authorization_request_asks_for_the_launch_with_pkce_s256() -> None:
    item = pending()
    url = authorization_url(SETTINGS, item, "st4te", "launch-123")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert url.startswith(ENDPOINTS.authorize + "?")
    assert query["response_type"] == "code" and query["client_id"] == "handouts"
    assert query["redirect_uri"] == SETTINGS.redirect_uri and query["state"] == "st4te"
    assert query["aud"] == ISS and query["launch"] == "launch-123"
    assert set(query["scope"].split()) >= {"launch", "openid", "fhirUser", "patient/Patient.r", "patient/Procedure.cs"}
    # RFC 7636: the challenge is the unpadded base64url SHA-256 of the verifier, and the verifier never leaves.
    digest = hashlib.sha256(item.verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert query["code_challenge_method"] == "S256" and item.verifier not in url


def test_only_a_registered_fhir_server_may_launch() -> None:
    assert SETTINGS.allowed(ISS) == ISS and SETTINGS.allowed(ISS + "/") == ISS
    assert SETTINGS.allowed("https://ehr.example.org/fhir2") is None
    assert SETTINGS.allowed("https://evil.example/fhir") is None


def token(key: Any, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISS, "aud": "handouts", "sub": "u1", "exp": now + 300, "iat": now, "nonce": "n0nce"}
    body.update(claims)
    return jwt.encode({"alg": alg, "kid": getattr(key, "kid", None) or "k"}, body, key)


def test_an_id_token_is_taken_only_signed_by_the_ehr_for_this_app_and_this_sign_in() -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k"})
    keys = {"keys": [key.as_dict(private=False)]}
    check: dict[str, Any] = {"iss": ISS, "client_id": "handouts", "nonce": "n0nce", "now": lambda: int(time.time())}
    claims = id_token_claims(token(key, fhirUser=f"{ISS}/Practitioner/7"), keys, **check)
    assert reference(claims["fhirUser"], ISS) == "Practitioner/7"
    other = RSAKey.generate_key(2048, parameters={"kid": "k"})
    refused = [
        token(other),  # signed by someone else
        token(key, aud="another-app"),
        token(key, iss="https://evil.example/fhir"),
        token(key, exp=int(time.time()) - 3600),
        token(key, nonce="other"),
        token(OctKey.import_key(b"k" * 32), alg="HS256"),  # a shared secret anyone with the JWKS could forge
    ]
    for bad in refused:
        with pytest.raises(LaunchError, match="Checking who you are"):
            id_token_claims(bad, keys, **check)


def test_the_chart_facts_are_this_patients_active_ones_only() -> None:
    def condition(subject: str, code: str, **extra: Any) -> dict[str, Any]:
        coding = [{"system": ICD, "code": code, "display": "Opioid dependence"}]
        return {"resourceType": "Condition", "subject": {"reference": subject}, "code": {"coding": coding}, **extra}

    resolved = {"coding": [{"code": "resolved"}]}
    refuted = {"coding": [{"code": "refuted"}]}
    conditions = [
        condition("Patient/rosa", "F11.20"),
        condition("Patient/sam", "F11.21"),  # a server that ignores patient= answers with everyone's
        condition("Patient/rosa", "F11.10", clinicalStatus=resolved),
        condition("Patient/rosa", "F11.90", verificationStatus=refuted),
        condition(f"{ISS}/Patient/rosa", "F11.23"),
    ]
    assert [f.code for f in problem_findings(conditions, "rosa", ISS)] == ["F11.20", "F11.23"]
    orders = [
        {
            "subject": {"reference": "Patient/rosa"},
            "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1819"}]},
        },
        {
            "subject": {"reference": "Patient/rosa"},
            "status": "stopped",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "6813"}]},
        },
        {
            "subject": {"reference": "Patient/rosa"},
            "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": ICD, "code": "7243"}]},
        },
    ]
    assert [(f.kind, f.code) for f in order_findings(orders, "rosa", ISS)] == [("order", "1819")]


def test_first_name_and_languages_come_from_the_patient_record() -> None:
    record = {
        "name": [{"use": "official", "given": ["Rosalind", "M"]}, {"use": "usual", "given": ["Rosa"]}],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}},
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]}, "preferred": True},
        ],
    }
    assert first_name(record) == "Rosa"
    assert patient_languages(record) == (("es-MX", "en"), True)
    assert first_name({"name": [{"family": "X"}]}) == "" and patient_languages({}) == ((), False)


def test_the_chart_ticks_the_sections_whose_codes_it_names_and_picks_the_language() -> None:
    english = load_sections(Project(ROOT), "en", TODAY).sections
    languages = ("ar", "en", "es", "vi", "zh-Hans")
    facts = ChartFacts(
        "Rosa",
        ("es-MX",),
        True,
        (
            Finding("problem", "icd10cm", "F11.20", "Opioid dependence"),
            Finding("order", "rxnorm", "1819", "buprenorphine"),
        ),
    )
    language, why = chart_language(facts, languages, match_language, lambda code: code.upper())
    assert (language, why) == ("es", "ES: the chart's preferred language (es-MX)")
    reasons = chart_sections(facts, english, list(english))
    assert "mat" in reasons and "detox" not in reasons and "find-help" not in reasons
    assert reasons["mat"] == ("problem Opioid dependence (F11.20)", "order buprenorphine (1819)")
    assert reasons["self-help"] == ("problem Opioid dependence (F11.20)",)
    # A language we have no handout in is said, and English is used.
    language, why = chart_language(ChartFacts(languages=("tl",)), languages, match_language, str)
    assert language == "en" and "(tl)" in why


def test_a_pending_launch_is_taken_once_and_only_by_the_browser_that_started_it() -> None:
    clock = [100.0]
    store = LaunchStore(clock=lambda: clock[0])
    state = store.begin(pending("mine", expires=200.0))
    assert store.take(state, browser_binding("theirs")) is None
    assert store.take(state, browser_binding("mine")) is not None
    assert store.take(state, browser_binding("mine")) is None
    late = store.begin(pending("mine", expires=200.0))
    clock[0] = 300.0
    assert store.take(late, browser_binding("mine")) is None


def test_resource_ids_from_the_token_response_are_checked() -> None:
    assert resource_id("rosa-1.2") == "rosa-1.2"
    assert resource_id("../Patient/x") == "" and resource_id("a" * 65) == "" and resource_id(7) == ""


def test_serve_options_for_the_ehr_are_checked_in_words() -> None:
    from handouts.serve.run import ServeOptions, allowed_hosts, host_problem

    ehr = "https://ehr.example.org/fhir"
    # Launched people only: another computer may reach the page without a password file.
    launched_only = ServeOptions(
        host="0.0.0.0", smart_client_id="abc", smart_fhir=(ehr,), public_names=("handouts.clinic.example",)
    )
    assert host_problem(launched_only) is None
    assert any(
        name.endswith(":8750") and not name.startswith(("127.", "localhost", "["))
        for name in allowed_hosts(launched_only)
    )
    assert "--auth-file" in str(host_problem(ServeOptions(host="0.0.0.0")))
    # Over the network the EHR's redirect and the session cookie need https: a proxy's name is required.
    bare = host_problem(ServeOptions(host="0.0.0.0", smart_client_id="abc", smart_fhir=(ehr,)))
    assert "needs --public-name" in str(bare)
    assert "needs --smart-fhir" in str(host_problem(ServeOptions(smart_client_id="abc")))
    assert "needs --smart-client-id" in str(host_problem(ServeOptions(smart_fhir=(ehr,))))
    plain = host_problem(ServeOptions(smart_client_id="abc", smart_fhir=("http://ehr.example.org/fhir",)))
    assert (
        plain
        == "--smart-fhir 'http://ehr.example.org/fhir': use https (plain http is only for an EHR on this computer)"
    )
    assert host_problem(ServeOptions(smart_client_id="abc", smart_fhir=("http://127.0.0.1:9/fhir",))) is None
    assert "expected ISS=JWKS_URL" in str(host_problem(ServeOptions(cds_clients=(("nonsense", ""),))))
    assert host_problem(ServeOptions(cds_clients=((ehr, "https://ehr.example.org/jwks"),))) is None


def test_a_chart_of_another_shape_than_fhir_is_a_message_not_a_server_error() -> None:
    import asyncio

    import httpx

    from handouts.serve.smart import read_chart

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Patient/rosa"):
            return httpx.Response(200, json={"resourceType": "Patient", "id": "rosa", "name": 5})
        orders = [{"resource": {"resourceType": "MedicationRequest", "status": ["active"]}}]
        return httpx.Response(
            200, json={"resourceType": "Bundle", "entry": orders if "Medication" in str(request.url) else 7}
        )

    async def read() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            await read_chart(client, ISS, "t", "rosa")

    with pytest.raises(LaunchError, match="not shaped as FHIR says"):
        asyncio.run(read())
    # An order whose status is a list is no order of hers, and no error either.
    weird = [{"subject": {"reference": "Patient/rosa"}, "status": ["active"], "medicationCodeableConcept": {}}]
    assert order_findings(weird, "rosa", ISS) == []
