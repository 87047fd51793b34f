"""CDS Hooks: discovery, the JWT an EHR signs (checked against a JWK Set served over loopback HTTP), and the card."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, TODAY
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from starlette.applications import Starlette

from handouts.codes import declared_match
from handouts.models import BASE_LANGUAGE
from handouts.serve.cds import (
    MAX_SUMMARY_CHARS,
    ORDER_SELECT,
    PATIENT_VIEW,
    CdsClient,
    CdsHooks,
    HandoutLink,
    JwksCache,
    JwksError,
    JwtVerifier,
    ReplayCache,
    Verified,
    active_condition_codes,
    build_card,
    cds_routes,
    claims_problem,
    fetch_jwks,
    preferred_language,
)
from handouts.serve.state import Snapshot, load_snapshot, offered_brands

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parent / "cds_examples"
BASE = "https://handouts.example.org"
EHR = "https://ehr.example.org/fhir"
OTHER_EHR = "https://other-ehr.example.org/fhir"
START = 1_900_000_000.0  # the fake clock's epoch seconds (2030)


def example(name: str) -> dict[str, Any]:
    """Return a copy of one of the spec's example requests (tests/cds_examples)."""
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


# --- A JWK Set server on loopback --------------------------------------------------------------


class QuietServer(ThreadingHTTPServer):
    """An HTTP server that does not print a traceback when a client hangs up (the size and time caps do)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class KeyServer:
    """A real HTTP server on 127.0.0.1 serving JWK Sets by path, counting the requests for each."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self.delay = 0.0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner.lock:
                    owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                    body = owner.bodies.get(self.path)
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("location", owner.url("/jwks"))
                    self.end_headers()
                    return
                if self.path == "/slow":
                    time.sleep(1.0)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()  # no Content-Length: the size cap must hold on the stream itself
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """Return the absolute URL of a path on this server."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def serve(self, path: str, *keys: RSAKey | ECKey) -> str:
        """Publish the public halves of keys as a JWK Set at a path; return its URL."""
        with self.lock:
            self.bodies[path] = json.dumps({"keys": [key.as_dict(private=False) for key in keys]}).encode()
        return self.url(path)

    def count(self, path: str) -> int:
        """Return how many requests a path has had."""
        with self.lock:
            return self.hits.get(path, 0)

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def keys() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def rsa() -> RSAKey:
    return RSAKey.generate_key(2048, {"kid": "ehr-rsa-1"})


@pytest.fixture(scope="module")
def ec() -> ECKey:
    return ECKey.generate_key("P-384", {"kid": "ehr-ec-1"})


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    loaded, problems = load_snapshot(ROOT, TODAY)
    assert loaded is not None, problems
    return loaded


class Clock:
    """A settable clock of epoch seconds, shared by the JWT checks and the key cache."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def sign(
    key: RSAKey | ECKey | OctKey,
    aud: str | list[str],
    now: float,
    *,
    alg: str = "ES384",
    header: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """Return an Authorization header with a JWT shaped like the spec's example (tests/cds_examples/jwt.json)."""
    spec = example("jwt.json")
    payload = {
        **spec["payload"],
        "iss": EHR,
        "aud": aud,
        "iat": int(now),
        "exp": int(now) + 300,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    for name in drop:
        payload.pop(name)
    top = {"alg": alg, "typ": "JWT", "kid": key.kid, **(header or {})}
    return "Bearer " + jwt.encode(top, payload, key, algorithms=[alg])


def unsigned(aud: str, now: float, kid: str) -> str:
    """Return an Authorization header with an `alg: none` JWT: no signature at all."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"iss": EHR, "aud": aud, "iat": int(now), "exp": int(now) + 300, "jti": str(uuid.uuid4())}
    return f"Bearer {part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(claims)}."


def audience(service: str) -> str:
    return f"{BASE}/cds-services/{service}"


def client_for(
    snapshot: Snapshot, clock: Clock, clients: list[CdsClient], *, origins: tuple[str, ...] = ("*",), **options: Any
) -> TestClient:
    """Mount the CDS routes in a small app over a real snapshot, as app.py will."""
    hooks = CdsHooks(
        clients,
        lambda: snapshot,
        lambda request: str(request.base_url).rstrip("/"),
        False,
        lambda: TODAY,
        clock=clock,
        cors_origins=origins,
        **options,
    )
    return TestClient(Starlette(routes=cds_routes(hooks)), base_url=BASE)


@pytest.fixture
def ehr(keys: KeyServer, rsa: RSAKey, ec: ECKey) -> CdsClient:
    """The one EHR allowed to call, publishing both its keys at its JWK Set URL."""
    return CdsClient(EHR, keys.serve("/jwks", rsa, ec))


@pytest.fixture
def service(snapshot: Snapshot, clock: Clock, ehr: CdsClient) -> TestClient:
    return client_for(snapshot, clock, [ehr])


def post(client: TestClient, service_id: str, body: dict[str, Any], authorization: str) -> Any:
    return client.post(f"/cds-services/{service_id}", json=body, headers={"authorization": authorization})


# --- Discovery ---------------------------------------------------------------------------------


def test_discovery_lists_both_services_with_their_prefetch(service: TestClient) -> None:
    answer = service.get("/cds-services")
    assert answer.status_code == 200
    services = {s["id"]: s for s in answer.json()["services"]}
    assert set(services) == {PATIENT_VIEW, ORDER_SELECT}
    view, order = services[PATIENT_VIEW], services[ORDER_SELECT]
    assert (view["hook"], order["hook"]) == ("patient-view", "order-select")
    for each in (view, order):
        assert each["title"] and each["description"]
        assert each["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert view["prefetch"]["conditions"] == "Condition?patient={{context.patientId}}&clinical-status=active"
    # The draft orders come in context: nothing to prefetch for them.
    assert set(order["prefetch"]) == {"patient"}


# --- The cards ---------------------------------------------------------------------------------


def expected_sections(snapshot: Snapshot, system: str, code: str) -> list[str]:
    english = snapshot.inputs.sections[BASE_LANGUAGE]
    order = snapshot.project.sections.order
    return [s for s in order if s in english and declared_match(english[s].codes, system, code)]


def test_a_spanish_patient_with_oud_gets_one_card_of_spanish_links(
    service: TestClient, snapshot: Snapshot, clock: Clock, ec: ECKey
) -> None:
    answer = post(service, PATIENT_VIEW, example("patient-view.json"), sign(ec, audience(PATIENT_VIEW), clock.now))
    assert answer.status_code == 200, answer.text
    cards = answer.json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "info"
    assert len(card["summary"]) < 140
    assert "(Spanish)" in card["summary"]
    assert uuid.UUID(card["uuid"])
    assert card["source"]["label"] == offered_brands(snapshot, release=False)[0].name
    wanted = expected_sections(snapshot, "icd10cm", "F11.20")
    # F11.* sections, not detox, which declares only the withdrawal codes (F11.13, F11.23, F11.93).
    assert "mat" in wanted and "detox" not in wanted
    pdfs = [link for link in card["links"] if link["type"] == "absolute"]
    assert [link["url"] for link in pdfs] == [f"{BASE}/handouts/es/{s}.pdf" for s in wanted]
    assert all("Spanish" in link["label"] and "appContext" not in link for link in pdfs)
    english_titles = [snapshot.inputs.sections["en"][s].title for s in wanted]
    assert [link["label"].split(" — ")[0] for link in pdfs] == english_titles
    (launch,) = [link for link in card["links"] if link["type"] == "smart"]
    assert launch["url"] == f"{BASE}/launch"
    assert launch["label"] == "Make a handout for this patient"
    assert json.loads(launch["appContext"]) == {"sections": wanted, "language": "es"}


def test_order_select_for_buprenorphine_gets_the_medicine_handout_in_english(
    service: TestClient, snapshot: Snapshot, clock: Clock, rsa: RSAKey
) -> None:
    authorization = sign(rsa, audience(ORDER_SELECT), clock.now, alg="RS384")
    answer = post(service, ORDER_SELECT, example("order-select.json"), authorization)
    assert answer.status_code == 200, answer.text
    (card,) = answer.json()["cards"]
    wanted = expected_sections(snapshot, "rxnorm", "1819")
    assert wanted == ["mat"]
    pdfs = [link for link in card["links"] if link["type"] == "absolute"]
    assert [link["url"] for link in pdfs] == [f"{BASE}/handouts/en/mat.pdf"]
    # The patient names no language: English, and no note of a missing translation.
    assert pdfs[0]["label"].endswith("— English (PDF)")
    assert "medicine" in card["summary"] and len(card["summary"]) < 140


def test_an_order_for_another_medicine_gets_no_card(service: TestClient, clock: Clock, ec: ECKey) -> None:
    body = example("order-select.json")
    order = body["context"]["draftOrders"]["entry"][1]["resource"]
    order["medicationCodeableConcept"]["coding"][0]["code"] = "617993"  # the spec's amoxicillin/clavulanate
    answer = post(service, ORDER_SELECT, body, sign(ec, audience(ORDER_SELECT), clock.now))
    assert answer.status_code == 200
    assert answer.json() == {"cards": []}


def test_only_the_selected_orders_count(service: TestClient, clock: Clock, ec: ECKey) -> None:
    body = example("order-select.json")
    body["context"]["selections"] = ["NutritionOrder/pureeddiet-simple"]
    answer = post(service, ORDER_SELECT, body, sign(ec, audience(ORDER_SELECT), clock.now))
    assert answer.json() == {"cards": []}


def with_condition(code: str, system: str = "http://hl7.org/fhir/sid/icd-10-cm", **changes: Any) -> dict[str, Any]:
    body = example("patient-view.json")
    condition = body["prefetch"]["conditions"]["entry"][0]["resource"]
    condition["code"]["coding"][0].update(system=system, code=code)
    condition.update(changes)
    return body


@pytest.mark.parametrize(
    "body",
    [
        with_condition("E11.9"),  # type 2 diabetes: no section declares it
        with_condition("F11.20", system="http://example.org/local-codes"),  # the code, but not ICD-10-CM
        with_condition("F11.20", clinicalStatus={"coding": [{"code": "resolved"}]}),
        with_condition("F11.20", verificationStatus={"coding": [{"code": "entered-in-error"}]}),
        with_condition("F11.20", subject={"reference": "Patient/someone-else"}),
        {**example("patient-view.json"), "prefetch": {**example("patient-view.json")["prefetch"], "conditions": None}},
    ],
    ids=["no-oud", "unknown-system", "resolved", "entered-in-error", "other-patient", "no-conditions"],
)
def test_no_active_oud_problem_gets_no_card(service: TestClient, clock: Clock, ec: ECKey, body: dict[str, Any]) -> None:
    answer = post(service, PATIENT_VIEW, body, sign(ec, audience(PATIENT_VIEW), clock.now))
    assert answer.status_code == 200
    assert answer.json() == {"cards": []}


def test_a_snomed_oud_problem_gets_a_card(service: TestClient, clock: Clock, ec: ECKey) -> None:
    body = with_condition("5602001", system="http://snomed.info/sct")  # opioid abuse
    answer = post(service, PATIENT_VIEW, body, sign(ec, audience(PATIENT_VIEW), clock.now))
    (card,) = answer.json()["cards"]
    assert [link["url"] for link in card["links"] if link["type"] == "absolute"] == [f"{BASE}/handouts/es/mat.pdf"]


def test_without_the_conditions_prefetch_the_answer_is_412(service: TestClient, clock: Clock, ec: ECKey) -> None:
    body = example("patient-view.json")
    del body["prefetch"]["conditions"]
    answer = post(service, PATIENT_VIEW, body, sign(ec, audience(PATIENT_VIEW), clock.now))
    assert answer.status_code == 412
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_a_language_without_handouts_falls_back_to_english_and_says_so(
    service: TestClient, clock: Clock, ec: ECKey
) -> None:
    body = example("patient-view.json")
    body["prefetch"]["patient"]["communication"][0]["language"] = {
        "coding": [{"system": "urn:ietf:bcp:47", "code": "fr-CA"}]
    }
    answer = post(service, PATIENT_VIEW, body, sign(ec, audience(PATIENT_VIEW), clock.now))
    (card,) = answer.json()["cards"]
    pdfs = [link for link in card["links"] if link["type"] == "absolute"]
    assert pdfs and all("/handouts/en/" in link["url"] for link in pdfs)
    assert all(link["label"].endswith("— English (PDF; no French (Canada) translation offered)") for link in pdfs)


def test_a_section_not_offered_in_spanish_comes_in_english(project: Path, clock: Clock, keys: KeyServer) -> None:
    (project / "content/es/self-help.md").unlink()
    loaded, problems = load_snapshot(project, TODAY)
    assert loaded is not None, problems
    key = ECKey.generate_key("P-256", {"kid": "ehr-ec-2"})
    client = client_for(loaded, clock, [CdsClient(EHR, keys.serve("/jwks-2", key))])
    authorization = sign(key, audience(PATIENT_VIEW), clock.now, alg="ES256")
    (card,) = post(client, PATIENT_VIEW, example("patient-view.json"), authorization).json()["cards"]
    urls = [link["url"] for link in card["links"] if link["type"] == "absolute"]
    assert f"{BASE}/handouts/en/self-help.pdf" in urls
    assert f"{BASE}/handouts/es/mat.pdf" in urls
    assert "(Spanish and English)" in card["summary"]


def test_a_call_for_another_hook_or_service_is_refused(service: TestClient, clock: Clock, ec: ECKey) -> None:
    body = example("patient-view.json")
    assert post(service, ORDER_SELECT, body, sign(ec, audience(ORDER_SELECT), clock.now)).status_code == 400
    assert post(service, "no-such-service", body, sign(ec, audience("no-such-service"), clock.now)).status_code == 404
    headers = {"authorization": sign(ec, audience(PATIENT_VIEW), clock.now), "content-type": "text/plain"}
    sent = service.post(f"/cds-services/{PATIENT_VIEW}", content=json.dumps(body), headers=headers)
    assert sent.status_code == 415


# --- The JWT -----------------------------------------------------------------------------------


def refusals(rsa: RSAKey, ec: ECKey, keys: KeyServer, now: float) -> dict[str, str]:
    """Return, by name, an Authorization header the service must refuse."""
    aud = audience(PATIENT_VIEW)
    stranger = ECKey.generate_key("P-384", {"kid": str(ec.kid)})  # the EHR's kid, someone else's key
    return {
        "no token": "",
        "not bearer": "Basic dXNlcjpwYXNz",
        "garbage": "Bearer not.a.jwt",
        "bad signature": sign(stranger, aud, now),
        "unknown issuer": sign(ec, aud, now, iss=OTHER_EHR),
        "jku not allow-listed": sign(ec, aud, now, header={"jku": keys.url("/attacker-jwks")}),
        "wrong audience": sign(ec, audience(ORDER_SELECT), now),
        "another server's audience": sign(ec, f"https://elsewhere.example.org/cds-services/{PATIENT_VIEW}", now),
        "expired": sign(ec, aud, now, exp=int(now) - 120, iat=int(now) - 420),
        "no exp": sign(ec, aud, now, drop=("exp",)),
        "exp too far": sign(ec, aud, now, exp=int(now) + 86400),
        "no iat": sign(ec, aud, now, drop=("iat",)),
        "no jti": sign(ec, aud, now, drop=("jti",)),
        "alg none": unsigned(aud, now, ec.kid or ""),
        "HS256": sign(OctKey.import_key(b"k" * 32, {"kid": str(ec.kid)}), aud, now, alg="HS256"),
        "RS key, ES alg claimed": sign(rsa, aud, now, alg="RS256", header={"kid": ec.kid}),
        "unknown kid": sign(ec, aud, now, header={"kid": "no-such-key"}),
    }


REFUSED = [
    "no token",
    "not bearer",
    "garbage",
    "bad signature",
    "unknown issuer",
    "jku not allow-listed",
    "wrong audience",
    "another server's audience",
    "expired",
    "no exp",
    "exp too far",
    "no iat",
    "no jti",
    "alg none",
    "HS256",
    "RS key, ES alg claimed",
    "unknown kid",
]


@pytest.mark.parametrize("case", REFUSED)
def test_a_bad_token_is_refused_with_401(
    service: TestClient, clock: Clock, rsa: RSAKey, ec: ECKey, keys: KeyServer, case: str
) -> None:
    authorization = refusals(rsa, ec, keys, clock.now)[case]
    answer = post(service, PATIENT_VIEW, example("patient-view.json"), authorization)
    assert answer.status_code == 401, (case, answer.text)
    assert "cards" not in answer.json()
    assert answer.headers["www-authenticate"].startswith("Bearer")
    reason = answer.json()["error"]
    assert reason and len(reason) < 100
    # The reason is one of the service's own sentences: nothing of what was sent comes back.
    sent = authorization.partition(" ")[2][:12]
    assert not sent or sent not in reason
    assert keys.count("/attacker-jwks") == 0


def test_a_replayed_token_is_refused(service: TestClient, clock: Clock, ec: ECKey) -> None:
    authorization = sign(ec, audience(PATIENT_VIEW), clock.now)
    body = example("patient-view.json")
    assert post(service, PATIENT_VIEW, body, authorization).status_code == 200
    clock.now += 10
    again = post(service, PATIENT_VIEW, body, authorization)
    assert again.status_code == 401
    assert "already used" in again.json()["error"]


def test_a_token_within_the_leeway_and_an_audience_list_are_accepted(
    service: TestClient, clock: Clock, ec: ECKey
) -> None:
    aud = audience(PATIENT_VIEW)
    late = sign(ec, aud, clock.now, exp=int(clock.now) - 20, iat=int(clock.now) - 320)
    listed = sign(ec, ["https://other.example.org", aud], clock.now)
    for authorization in (late, listed):
        assert post(service, PATIENT_VIEW, example("patient-view.json"), authorization).status_code == 200


def test_the_specs_own_example_token_verifies_with_its_key() -> None:
    spec = example("jwt.json")
    payload = spec["payload"]
    now = payload["exp"] - 60.0  # the token's own time
    key_set = json.dumps(spec["jwks"]).encode()
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return key_set

    client = CdsClient(payload["iss"], spec["header"]["jku"])
    verifier = JwtVerifier([client], JwksCache(fetch, lambda: now), ReplayCache(), lambda: now)
    assert verifier.verify(spec["authorization"], payload["aud"]) == Verified(payload["iss"], payload["tenant"])
    assert fetched == [spec["header"]["jku"]]
    assert verifier.verify(spec["authorization"], payload["aud"]) != Verified(payload["iss"], payload["tenant"])
    # Years later, the same token is long expired.
    fresh = JwtVerifier([client], JwksCache(fetch, time.time), ReplayCache(), time.time)
    assert fresh.verify(spec["authorization"], payload["aud"]) != Verified(payload["iss"], payload["tenant"])


def test_claims_problem_reads_aud_exp_iat_and_jti() -> None:
    aud, now = audience(PATIENT_VIEW), START
    good = {"aud": aud, "exp": now + 60, "iat": now, "jti": "a"}
    assert claims_problem(good, audience=aud, now=now) is None
    assert claims_problem({**good, "aud": [aud]}, audience=aud, now=now) is None
    assert claims_problem({**good, "exp": True}, audience=aud, now=now) == "the token has no expiry (exp)"
    assert claims_problem({**good, "exp": float("nan")}, audience=aud, now=now) == "the token has no expiry (exp)"
    assert claims_problem({**good, "exp": 10**400}, audience=aud, now=now) == "the token has no expiry (exp)"
    assert claims_problem({**good, "iat": now + 600}, audience=aud, now=now) == "the token was issued in the future"
    assert claims_problem({**good, "nbf": now + 600}, audience=aud, now=now) == "the token is not valid yet"
    assert claims_problem({**good, "jti": ""}, audience=aud, now=now) == "the token has no usable id (jti)"


def test_the_replay_cache_is_bounded_and_forgets_only_expired_tokens() -> None:
    cache = ReplayCache(limit=2)
    assert cache.add(EHR, "a", START + 10, START) is None
    assert cache.add(EHR, "b", START + 100, START) is None
    refused = cache.add(EHR, "c", START + 100, START)
    assert refused is not None and refused.status == 503
    assert cache.add(EHR, "a", START + 10, START + 5) is not None  # still remembered: a replay
    assert cache.add(EHR, "c", START + 100, START + 11) is None  # a expired and made room
    assert cache.add(OTHER_EHR, "b", START + 100, START + 11) is not None  # full again: b and c are live


# --- The JWK Set -------------------------------------------------------------------------------


def test_a_rotated_key_is_fetched_once_and_a_flood_of_unknown_kids_does_not_hammer_the_ehr(
    snapshot: Snapshot, clock: Clock, keys: KeyServer, ec: ECKey
) -> None:
    url = keys.serve("/rotating", ec)
    client = client_for(snapshot, clock, [CdsClient(EHR, url)])
    body, aud = example("patient-view.json"), audience(PATIENT_VIEW)
    assert post(client, PATIENT_VIEW, body, sign(ec, aud, clock.now)).status_code == 200
    assert keys.count("/rotating") == 1
    # The EHR rotates: a new key, published, signs the next call.
    clock.now += 120
    rotated = ECKey.generate_key("P-384", {"kid": "ehr-ec-rotated"})
    keys.serve("/rotating", ec, rotated)
    assert post(client, PATIENT_VIEW, body, sign(rotated, aud, clock.now)).status_code == 200
    assert keys.count("/rotating") == 2
    # A flood of tokens naming keys nobody published: one more fetch at most per minute.
    clock.now += 120
    for n in range(20):
        bogus = ECKey.generate_key("P-256", {"kid": f"bogus-{n}"})
        assert post(client, PATIENT_VIEW, body, sign(bogus, aud, clock.now, alg="ES256")).status_code == 401
    assert keys.count("/rotating") == 3
    clock.now += 61
    assert post(client, PATIENT_VIEW, body, sign(bogus, aud, clock.now, alg="ES256")).status_code == 401
    assert keys.count("/rotating") == 4


def test_keys_are_read_again_after_their_ttl_so_a_removed_key_stops_working(
    keys: KeyServer, ec: ECKey, rsa: RSAKey
) -> None:
    clock = Clock()
    url = keys.serve("/expiring", ec, rsa)
    cache = JwksCache(fetch_jwks, clock, ttl=600, min_refetch=60)
    assert cache.key(url, str(ec.kid)) is not None
    keys.serve("/expiring", rsa)  # the EHR withdraws its EC key
    clock.now += 300
    assert cache.key(url, str(ec.kid)) is not None  # within the TTL the cached set still answers
    clock.now += 301
    assert cache.key(url, str(ec.kid)) is None
    assert cache.key(url, str(rsa.kid)) is not None
    assert keys.count("/expiring") == 2


def test_the_key_set_fetch_is_capped_in_size_and_time_and_follows_no_redirect(keys: KeyServer, ec: ECKey) -> None:
    keys.bodies["/huge"] = b'{"keys": [' + b" " * 100_000 + b"]}"
    with pytest.raises(JwksError, match="too large"):
        fetch_jwks(keys.url("/huge"), max_bytes=64 * 1024)
    keys.serve("/slow", ec)
    started = time.monotonic()
    with pytest.raises(JwksError):
        fetch_jwks(keys.url("/slow"), timeout=0.2)
    assert time.monotonic() - started < 0.9
    with pytest.raises(JwksError, match="302"):
        fetch_jwks(keys.url("/moved"))
    assert json.loads(fetch_jwks(keys.serve("/small", ec)))["keys"][0]["kid"] == ec.kid


def test_an_unreachable_key_set_refuses_the_call_and_is_not_retried_at_once(
    snapshot: Snapshot, clock: Clock, keys: KeyServer, ec: ECKey
) -> None:
    client = client_for(snapshot, clock, [CdsClient(EHR, keys.url("/missing"))])
    body, aud = example("patient-view.json"), audience(PATIENT_VIEW)
    for _ in range(5):
        assert post(client, PATIENT_VIEW, body, sign(ec, aud, clock.now)).status_code == 401
    assert keys.count("/missing") == 1


# --- Reading the chart -------------------------------------------------------------------------


def test_preferred_language_reads_the_preferred_communication() -> None:
    languages = ("ar", "en", "es", "vi", "zh-Hans")

    def patient(*spoken: tuple[str, bool]) -> dict[str, Any]:
        communication = [{"language": {"coding": [{"code": code}]}, "preferred": flag} for code, flag in spoken]
        return {"resourceType": "Patient", "id": "p", "communication": communication}

    assert preferred_language(patient(("en", False), ("vi", True)), "p", languages).folder == "vi"
    assert preferred_language(patient(("zh-CN", False)), "p", languages).folder == "zh-Hans"
    assert preferred_language(patient(), "p", languages).folder == "en"
    assert preferred_language({"resourceType": "Patient", "id": "q"}, "p", languages).folder == "en"
    french = preferred_language(patient(("fr", True), ("es", False)), "p", languages)
    assert (french.folder, french.name) == ("", "French")
    text_only = {"resourceType": "Patient", "communication": [{"language": {"text": "Spanish"}}]}
    assert preferred_language(text_only, "p", languages).folder == "es"
    assert preferred_language(["not", "a", "patient"], "p", languages).folder == "en"


def test_active_condition_codes_skip_what_is_not_the_patients_current_problem() -> None:
    conditions = example("patient-view.json")["prefetch"]["conditions"]
    assert active_condition_codes(conditions, "1288992") == [("icd10cm", "F11.20")]
    assert active_condition_codes(conditions, "someone-else") == []
    assert active_condition_codes({"resourceType": "OperationOutcome"}, "1288992") == []
    entries: list[Any] = [None, 3, {"resource": []}, {"resource": {"code": "x"}}]
    hostile = {"resourceType": "Bundle", "entry": entries}
    assert active_condition_codes(hostile, "1288992") == []


def test_a_card_summary_stays_under_140_characters() -> None:
    links = [
        HandoutLink(f"s{n}", "T", language, f"{BASE}/handouts/{language}/s{n}.pdf", "T")
        for n, language in enumerate(("zh-Hans", "ar", "vi", "es", "en"))
    ]
    card = build_card("patient-view", links, source_label="", launch_url=f"{BASE}/launch", card_id="c")
    assert len(card["summary"]) <= MAX_SUMMARY_CHARS
    assert card["source"] == {"label": "Patient handouts"}


# --- Browsers and logs -------------------------------------------------------------------------


def test_cors_preflight_and_answers_for_a_browser_based_ehr(snapshot: Snapshot, clock: Clock, ehr: CdsClient) -> None:
    anyone = client_for(snapshot, clock, [ehr])
    preflight = {"origin": "https://ehr-ui.example.org", "access-control-request-method": "POST"}
    answer = anyone.options(f"/cds-services/{PATIENT_VIEW}", headers=preflight)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "authorization" in answer.headers["access-control-allow-headers"]
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert anyone.get("/cds-services", headers={"origin": "https://x.example"}).headers["access-control-allow-origin"]
    listed = client_for(snapshot, clock, [ehr], origins=("https://ehr-ui.example.org",))
    allowed = listed.options("/cds-services", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://ehr-ui.example.org"
    other = listed.options("/cds-services", headers={**preflight, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_no_patient_data_or_token_reaches_a_log(
    service: TestClient, clock: Clock, ec: ECKey, caplog: pytest.LogCaptureFixture
) -> None:
    body = example("patient-view.json")
    secrets = ["1288992", body["hookInstance"], "some-opaque-fhir-access-token", "F11.20", "es-MX"]
    with caplog.at_level(logging.DEBUG):
        good = sign(ec, audience(PATIENT_VIEW), clock.now)
        assert post(service, PATIENT_VIEW, body, good).status_code == 200
        assert post(service, PATIENT_VIEW, body, good).status_code == 401  # replayed: a refusal is logged
        assert post(service, PATIENT_VIEW, body, sign(ec, audience(ORDER_SELECT), clock.now)).status_code == 401
    logged = caplog.text
    assert "refused" in logged
    for secret in [*secrets, good[7:40]]:
        assert secret not in logged
