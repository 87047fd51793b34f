"""The test EHR is real: SMART discovery, Authlib's own client through the code flow with PKCE, what it refuses,
a connection it drops after acting, and a seed the FHIR R4B models accept."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import ehr as harness
import httpx
import pytest
from authlib.common.security import generate_token
from ehr import SEED, Ehr, need_fhirsnake, running_ehr
from joserfc import jwt
from joserfc.jwk import KeySet

# One EHR for the module: the tests share a worker so it starts once (about half a second).
# It starts the EHR's two processes: the slow tier.
pytestmark = [pytest.mark.render, pytest.mark.xdist_group("ehr_harness")]

CLIENT_ID = "handouts-harness"
# Never visited: the tests read the redirect's Location.
REDIRECT_URI = "http://127.0.0.1:9/callback"
SCOPE = "launch openid fhirUser patient/Patient.r patient/Condition.rs patient/DocumentReference.cs"
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture(scope="module")
def ehr_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the folder the module's EHR runs in (its seed copy and logs)."""
    return tmp_path_factory.mktemp("ehr")


@pytest.fixture(scope="module")
def ehr(ehr_home: Path) -> Iterator[Ehr]:
    with running_ehr(ehr_home, CLIENT_ID, REDIRECT_URI) as running:
        yield running


def smart_configuration(ehr: Ehr) -> dict[str, Any]:
    answer = httpx.get(f"{ehr.iss}/.well-known/smart-configuration", timeout=TIMEOUT)
    answer.raise_for_status()
    config: dict[str, Any] = answer.json()
    return config


def oauth_client(**options: Any) -> Any:
    """Return Authlib's own httpx OAuth 2 client for the registered public client, PKCE S256."""
    # Authlib 1.9 warns, once at import, that its httpx integration will move to the httpx2 package. Its
    # deprecate module turns its warnings on when imported: imported first, the filter below comes after.
    import authlib.deprecate  # noqa: F401

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The httpx module is deprecated")
        from authlib.integrations.httpx_client import OAuth2Client
    settings = {"scope": SCOPE, "redirect_uri": REDIRECT_URI, "code_challenge_method": "S256", "timeout": TIMEOUT}
    return OAuth2Client(CLIENT_ID, **{**settings, **options})


def authorize(ehr: Ehr, client: Any, verifier: str, launch: str, nonce: str) -> str:
    """Run the authorization request of an EHR launch and return the redirect's URL (code and state in it)."""
    url, _state = client.create_authorization_url(
        smart_configuration(ehr)["authorization_endpoint"],
        code_verifier=verifier,
        aud=ehr.iss,
        launch=launch,
        nonce=nonce,
    )
    answer = client.request("GET", url, withhold_token=True, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = str(answer.headers["Location"])
    assert location.startswith(REDIRECT_URI + "?")
    return location


def access_token(ehr: Ehr, patient: str = "rosa", scope: str = SCOPE) -> str:
    """Launch for a patient and return a bearer token, the way an app gets one."""
    client, verifier = oauth_client(scope=scope), generate_token(64)
    location = authorize(ehr, client, verifier, ehr.launch(patient=patient), generate_token(16))
    token = client.fetch_token(
        smart_configuration(ehr)["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    return str(token["access_token"])


def refused_authorization(ehr: Ehr, **changes: str | None) -> dict[str, str]:
    """Send an authorization request with some parameters changed (None: left out); return the error's query."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "st4te",
        "aud": ehr.iss,
        "launch": ehr.launch(),
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **changes,
    }
    sent = {name: value for name, value in params.items() if value is not None}
    answer = httpx.get(f"{ehr.origin}/authorize?{urlencode(sent)}", timeout=TIMEOUT, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert "code" not in query
    return query


def document(patient: str) -> dict[str, Any]:
    """Return a small DocumentReference for a patient, with an identifier to find it by."""
    return {
        "resourceType": "DocumentReference",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}],
        "status": "current",
        "subject": {"reference": f"Patient/{patient}"},
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"test").decode()}}],
    }


def test_smart_configuration_is_smart_2_for_an_ehr_launch_by_a_public_client(ehr: Ehr) -> None:
    config = smart_configuration(ehr)
    assert config["issuer"] == ehr.iss and ehr.iss.endswith("/fhir")
    wanted = {"launch-ehr", "client-public", "context-ehr-patient", "context-ehr-encounter", "sso-openid-connect"}
    assert wanted | {"permission-v2"} <= set(config["capabilities"])
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "openid" in config["scopes_supported"] and "launch" in config["scopes_supported"]
    keys = httpx.get(config["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    assert [key["kty"] for key in keys] == ["RSA"] and all("d" not in key for key in keys)


def test_authlib_client_runs_the_launch_with_pkce_and_gets_the_context_and_a_verified_id_token(ehr: Ehr) -> None:
    config = smart_configuration(ehr)
    client, verifier, nonce = oauth_client(), generate_token(64), generate_token(16)
    location = authorize(ehr, client, verifier, ehr.launch(patient="rosa", encounter="visit-1"), nonce)
    token = client.fetch_token(config["token_endpoint"], authorization_response=location, code_verifier=verifier)
    assert token["token_type"].lower() == "bearer" and token["expires_in"] > 0
    assert token["patient"] == "rosa" and token["encounter"] == "visit-1" and token["need_patient_banner"] is False
    assert set(token["scope"].split()) == set(SCOPE.split())
    keys = KeySet.import_key_set(httpx.get(config["jwks_uri"], timeout=TIMEOUT).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ehr.iss},
        aud={"essential": True, "value": CLIENT_ID},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    ).validate(id_token.claims)
    assert id_token.header["alg"] == "RS256"
    assert id_token.claims["fhirUser"] == "Practitioner/counselor-1" and id_token.claims["sub"]
    # The token reads its patient through the EHR, and not another patient.
    assert client.get(f"{ehr.iss}/Patient/rosa").json()["name"][0]["given"] == ["Rosa"]
    assert client.get(f"{ehr.iss}/Patient/sam").status_code == 403
    seen = ehr.requests()
    assert [r["status"] for r in seen if r["path"] == "/fhir/Patient/rosa" and r["authorization"]][-1] == 200
    assert token["access_token"] not in json.dumps(seen)


def test_a_wrong_code_verifier_is_refused(ehr: Ehr) -> None:
    from authlib.integrations.base_client import OAuthError

    client, verifier = oauth_client(), generate_token(64)
    location = authorize(ehr, client, verifier, ehr.launch(), generate_token(16))
    with pytest.raises(OAuthError) as refused:
        client.fetch_token(
            smart_configuration(ehr)["token_endpoint"],
            authorization_response=location,
            code_verifier=generate_token(64),
        )
    assert refused.value.error == "invalid_grant"


def test_a_code_is_good_for_one_token(ehr: Ehr) -> None:
    from authlib.integrations.base_client import OAuthError

    endpoint = smart_configuration(ehr)["token_endpoint"]
    client, verifier = oauth_client(), generate_token(64)
    location = authorize(ehr, client, verifier, ehr.launch(), generate_token(16))
    assert client.fetch_token(endpoint, authorization_response=location, code_verifier=verifier)["access_token"]
    with pytest.raises(OAuthError) as refused:
        oauth_client().fetch_token(endpoint, authorization_response=location, code_verifier=verifier)
    assert refused.value.error == "invalid_grant"


def test_an_unknown_or_used_launch_is_refused_back_to_the_app_with_its_state(ehr: Ehr) -> None:
    assert refused_authorization(ehr, launch="not-a-launch") == {
        "error": "invalid_request",
        "error_description": "Unknown, expired or used 'launch'.",
        "state": "st4te",
    }
    used = ehr.launch()
    client, verifier = oauth_client(), generate_token(64)
    authorize(ehr, client, verifier, used, generate_token(16))
    assert refused_authorization(ehr, launch=used)["error"] == "invalid_request"


@pytest.mark.parametrize(
    "changes",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"aud": "http://127.0.0.1:9/fhir"},
        {"launch": None},
    ],
)
def test_an_authorization_request_without_pkce_s256_the_right_aud_or_a_launch_is_refused(
    ehr: Ehr, changes: dict[str, str | None]
) -> None:
    query = refused_authorization(ehr, **changes)
    assert query["error"] == "invalid_request" and query["state"] == "st4te"


@pytest.mark.parametrize(
    ("changes", "error"),
    [({"redirect_uri": "http://127.0.0.1:9/elsewhere"}, "invalid_request"), ({"client_id": "other"}, "invalid_client")],
)
def test_an_unregistered_client_or_redirect_uri_is_refused_without_a_redirect(
    ehr: Ehr, changes: dict[str, str], error: str
) -> None:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": SCOPE}
    params |= {"state": "st4te", "aud": ehr.iss, "launch": ehr.launch(), **changes}
    answer = httpx.get(f"{ehr.origin}/authorize", params=params, timeout=TIMEOUT, follow_redirects=False)
    assert answer.status_code in (400, 401) and "Location" not in answer.headers
    assert answer.json()["error"] == error


def test_fhir_without_a_valid_token_is_401(ehr: Ehr) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = httpx.get(f"{ehr.iss}/Patient/rosa", headers=headers, timeout=TIMEOUT)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_a_patient_token_searches_and_writes_only_its_patient(ehr: Ehr) -> None:
    bearer = {"Authorization": f"Bearer {access_token(ehr, patient='rosa')}"}
    search = httpx.get(f"{ehr.iss}/Condition", params={"patient": "rosa"}, headers=bearer, timeout=TIMEOUT)
    assert search.status_code == 200
    # fhirsnake ignores the parameter, and the proxy leaves it so: the answer holds Sam's conditions too.
    subjects = {entry["resource"]["subject"]["reference"] for entry in search.json()["entry"]}
    assert subjects == {"Patient/rosa", "Patient/sam"}
    assert httpx.get(f"{ehr.iss}/Condition", headers=bearer, timeout=TIMEOUT).status_code == 403
    assert httpx.get(f"{ehr.iss}/Condition?patient=sam", headers=bearer, timeout=TIMEOUT).status_code == 403
    other = httpx.post(f"{ehr.iss}/DocumentReference", json=document("sam"), headers=bearer, timeout=TIMEOUT)
    assert other.status_code == 403
    # Procedure is not in this token's scopes.
    procedure = {"resourceType": "Procedure", "status": "completed", "subject": {"reference": "Patient/rosa"}}
    assert httpx.post(f"{ehr.iss}/Procedure", json=procedure, headers=bearer, timeout=TIMEOUT).status_code == 403


def test_drop_next_creates_the_resource_then_resets_the_connection(ehr: Ehr) -> None:
    bearer = {"Authorization": f"Bearer {access_token(ehr)}", "If-None-Exist": "identifier=x"}
    sent = document("rosa")
    identifier = sent["identifier"][0]["value"]
    ehr.drop_next("POST", "DocumentReference")
    with httpx.Client(timeout=TIMEOUT) as client, pytest.raises(httpx.TransportError) as dropped:
        client.post(f"{ehr.iss}/DocumentReference", json=sent, headers=bearer)
    # A reset (ECONNRESET), not a clean close or an answer.
    assert isinstance(dropped.value, httpx.ReadError), repr(dropped.value)
    held = [d for d in ehr.resources("DocumentReference") if d["identifier"][0]["value"] == identifier]
    assert len(held) == 1 and held[0]["subject"] == {"reference": "Patient/rosa"}
    last = ehr.requests()[-1]
    assert last["method"] == "POST" and last["path"] == "/fhir/DocumentReference" and last["dropped"] is True
    assert last["authorization"] is True and last["if_none_exist"] == "identifier=x"
    # The drop was for one request: the next is answered.
    again = httpx.post(f"{ehr.iss}/DocumentReference", json=document("rosa"), headers=bearer, timeout=TIMEOUT)
    assert again.status_code == 200 and again.json()["resourceType"] == "DocumentReference"


def test_the_ehr_logs_method_path_and_status_only(ehr: Ehr, ehr_home: Path) -> None:
    token = access_token(ehr)
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{ehr.iss}/Condition?patient=rosa", headers=bearer, timeout=TIMEOUT).status_code == 200
    lines = (ehr_home / "ehr_server.log").read_text(encoding="utf-8").splitlines()
    assert "ehr INFO GET /fhir/Condition 200" in lines and "ehr INFO GET /authorize 302" in lines
    for line in lines:
        assert "?" not in line and "patient=" not in line and "code=" not in line, line
        assert token not in line and "Rosa" not in line, line


def test_a_missing_fhirsnake_skips_or_with_require_ehr_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(harness, "FHIR_VENV", tmp_path / "no-venv")
    assert harness.fhirsnake_python() is None
    monkeypatch.delenv(harness.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception):
        need_fhirsnake()
    monkeypatch.setenv(harness.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception):
        need_fhirsnake()


def seed_files() -> list[Path]:
    return sorted(SEED.glob("*/*.json"))


def r4b_model(resource_type: str) -> Any:
    from importlib import import_module

    return getattr(import_module(f"fhir.resources.R4B.{resource_type.lower()}"), resource_type)


@pytest.mark.parametrize("path", seed_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_seed_resource_is_valid_fhir_r4b(path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    # fhirsnake files a resource by its folder and name: they must agree with the resource.
    assert (resource["resourceType"], resource["id"]) == (path.parent.name, path.stem)
    r4b_model(resource["resourceType"]).model_validate(resource)


def test_the_seed_validation_catches_a_broken_resource() -> None:
    from pydantic import ValidationError

    rosa = json.loads((SEED / "Patient/rosa.json").read_text(encoding="utf-8"))
    with pytest.raises(ValidationError):
        r4b_model("Patient").model_validate({**rosa, "communication": [{"preferred": "very"}]})
