"""SMART App Launch 2 (EHR launch): discover the EHR, authorize with PKCE, take the token, read what the chart says.

Authlib builds the authorization request and the token request and makes the PKCE challenge; joserfc checks
the id token against the EHR's keys. Everything a launch learns (the token, the patient's id, first name and
language, the problems and orders that pre-tick sections) stays in this process's memory for the one browser
that launched, and is forgotten at sign-out or when the token ends. Nothing here logs or writes anything. Every
answer from the EHR is bounded in size and time, and only the FHIR servers the clinic named are ever called.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..codes import ICD10CM, RXNORM, SNOMED, declared_match, system_for_uri
from ..models import Section
from .fhir import names_patient, next_page

# What the page needs: the patient and their problems and orders to fill the form, the counselor's identity for
# the document's author, and leave to create (and find again, so a retry never duplicates) the document and the
# record that education was given.
SCOPES = (
    "launch openid fhirUser patient/Patient.r patient/Condition.rs patient/MedicationRequest.rs "
    "patient/DocumentReference.cs patient/Procedure.cs user/Practitioner.r"
)
# A launch not finished in this time (the counselor walked away at the EHR's consent screen) is forgotten.
PENDING_SECONDS = 600.0
# However long a token says it lasts, a launched page ends after a working day.
MAX_SESSION_SECONDS = 10 * 3600.0
DEFAULT_TOKEN_SECONDS = 3600.0
MAX_PENDING = 512
# Anyone may start a launch: one address's flood of them pushes out only its own.
MAX_PENDING_PER_ADDRESS = 16
MAX_SESSIONS = 256
# The EHR's answers: its configuration and token are small; a page of a patient's conditions may not be.
MAX_SMALL_BYTES = 256 * 1024
MAX_BUNDLE_BYTES = 4 * 1024 * 1024
MAX_PAGES = 5
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
FHIR_JSON = "application/fhir+json"
# Clinical status and verification status of a problem that is not the patient's now.
INACTIVE_STATUSES = {"inactive", "remission", "resolved"}
NOT_TRUE = {"refuted", "entered-in-error"}
ORDER_STATUSES = {"active", "draft", "on-hold"}
CONDITION_SYSTEMS = (ICD10CM, SNOMED)


class LaunchError(Exception):
    """A launch that cannot go on; its message is for the counselor's screen and names no patient."""


@dataclass(frozen=True)
class SmartSettings:
    """How this server is registered with the EHRs that may launch it."""

    client_id: str
    fhir_servers: tuple[str, ...]
    redirect_uri: str
    scope: str = SCOPES

    def allowed(self, iss: str) -> str | None:
        """Return the registered FHIR server an `iss` names (trailing slash aside), or None."""
        wanted = iss.strip().rstrip("/")
        return next((s.rstrip("/") for s in self.fhir_servers if s.rstrip("/") == wanted), None)


@dataclass(frozen=True)
class Endpoints:
    """Where an EHR authorizes and gives tokens, from its .well-known/smart-configuration."""

    authorize: str
    token: str
    jwks: str
    issuer: str


@dataclass(frozen=True)
class Pending:
    """An authorization on its way: the verifier PKCE needs and the browser it belongs to."""

    iss: str
    endpoints: Endpoints
    verifier: str
    browser: str  # a hash of the launch cookie: the code is taken only from the browser that started
    nonce: str
    expires: float
    address: str = ""  # who asked, for the per-address cap


@dataclass(frozen=True)
class Finding:
    """A coded fact from the chart that chose a section: an active problem or a medication order."""

    kind: str  # "problem" or "order"
    system: str  # our code system name
    code: str
    display: str


@dataclass(frozen=True)
class ChartFacts:
    """What the chart says that fills the form."""

    first_name: str = ""
    languages: tuple[str, ...] = ()  # BCP 47 codes, the preferred one first
    preferred: bool = False
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Launched:
    """One browser's launch from the chart, in memory only."""

    iss: str
    access_token: str
    expires: float
    patient: str
    encounter: str | None
    user: str  # the counselor's fhirUser, as a reference (Practitioner/123)
    user_name: str
    facts: ChartFacts

    def __repr__(self) -> str:
        # A token and a patient's name never reach a log or a traceback.
        return "Launched(<redacted>)"


class LaunchStore:
    """Pending authorizations and launched sessions, in this process's memory, bounded and timed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.pending: OrderedDict[str, Pending] = OrderedDict()
        self.sessions: OrderedDict[str, Launched] = OrderedDict()
        # The document saved for each session's visit: a new one for the same visit replaces it.
        self.saved: dict[str, str] = {}
        self.lock = threading.Lock()
        self.clock = clock

    def begin(self, pending: Pending) -> str:
        """Hold a pending authorization and return its `state`."""
        state: str = generate_token(43)
        with self.lock:
            self._expire()
            self.pending[state] = pending
            while len(self.pending) > MAX_PENDING or self._pending_from(pending.address) > MAX_PENDING_PER_ADDRESS:
                # The oldest of the address holding the most: this one's own while it is over its share.
                held = Counter(p.address for p in self.pending.values())
                crowd = (
                    pending.address if held[pending.address] > MAX_PENDING_PER_ADDRESS else held.most_common(1)[0][0]
                )
                del self.pending[next(s for s, p in self.pending.items() if p.address == crowd)]
        return state

    def _pending_from(self, address: str) -> int:
        return sum(1 for p in self.pending.values() if p.address == address)

    def take(self, state: str, browser: str) -> Pending | None:
        """Return and forget the pending authorization a `state` names, if this browser started it."""
        with self.lock:
            self._expire()
            pending = self.pending.get(state)
            if pending is None or not secrets.compare_digest(pending.browser, browser):
                return None
            del self.pending[state]
            return pending

    def start(self, launched: Launched) -> str:
        """Keep a launched session and return its cookie value."""
        session = secrets.token_urlsafe(32)
        with self.lock:
            self._expire()
            self.sessions[session] = launched
            while len(self.sessions) > MAX_SESSIONS:
                old, _ = self.sessions.popitem(last=False)
                self.saved.pop(old, None)
        return session

    def get(self, session: str | None) -> Launched | None:
        """Return a live launched session, or None."""
        if not session:
            return None
        with self.lock:
            self._expire()
            return self.sessions.get(session)

    def end(self, session: str | None) -> None:
        """Forget a launched session and everything it saved."""
        with self.lock:
            self.sessions.pop(session or "", None)
            self.saved.pop(session or "", None)

    def remember_saved(self, session: str, document: str) -> None:
        """Note the document saved in this session's visit, for the next one to replace."""
        with self.lock:
            if session in self.sessions:
                self.saved[session] = document

    def last_saved(self, session: str) -> str | None:
        """Return the document this session last saved, or None."""
        with self.lock:
            return self.saved.get(session)

    def _expire(self) -> None:
        now = self.clock()
        for state in [s for s, p in self.pending.items() if p.expires < now]:
            del self.pending[state]
        for session in [s for s, launched in self.sessions.items() if launched.expires < now]:
            del self.sessions[session]
            self.saved.pop(session, None)


def browser_binding(cookie: str) -> str:
    """Return what a pending launch keeps of its browser's cookie: a hash, so the store holds no cookie."""
    return hashlib.sha256(b"launch:" + cookie.encode()).hexdigest()


# -- the EHR's answers ---------------------------------------------------------------------------------


async def get_json(
    client: httpx.AsyncClient, url: str, *, token: str = "", cap: int = MAX_SMALL_BYTES, what: str
) -> dict[str, Any]:
    """GET a JSON object, at most `cap` bytes; a LaunchError says which step failed and why."""
    headers = {"accept": f"{FHIR_JSON}, application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    status, body = await _read(client, "GET", url, what=what, cap=cap, headers=headers)
    if status != 200:
        raise LaunchError(f"{what}: the EHR answered HTTP {status}")
    return _json_object(body, what)


async def _read(
    client: httpx.AsyncClient, method: str, url: str, *, what: str, cap: int, **options: Any
) -> tuple[int, bytes]:
    """Return an answer's status and body, read as it streams and refused past `cap` bytes."""
    try:
        async with client.stream(method, url, timeout=TIMEOUT, **options) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > cap:
                    raise LaunchError(f"{what}: the EHR's answer was larger than {cap // 1024} KiB")
            return response.status_code, bytes(body)
    except httpx.HTTPError as exc:
        raise LaunchError(f"{what}: the EHR could not be reached ({type(exc).__name__})") from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(data)
    except ValueError:
        raise LaunchError(f"{what}: the EHR's answer is not JSON") from None
    if not isinstance(value, dict):
        raise LaunchError(f"{what}: the EHR's answer is not a JSON object")
    return value


async def discover(client: httpx.AsyncClient, iss: str) -> Endpoints:
    """Read an EHR's SMART configuration."""
    config = await get_json(client, f"{iss}/.well-known/smart-configuration", what="Reading the EHR's SMART settings")
    found: dict[str, str] = {}
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = config.get(key)
        if key == "jwks_uri" and value is None:
            continue
        if not isinstance(value, str) or not secure_address(value):
            # The keys and the token travel these: plain http only to an EHR on this computer.
            raise LaunchError(f"Reading the EHR's SMART settings: {key} is missing or not an https address")
        found[key] = value
    methods = config.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        # SMART 2 requires S256; a server that does not say so would take a code without proof.
        raise LaunchError("Reading the EHR's SMART settings: it does not offer PKCE with S256")
    issuer = config.get("issuer")
    return Endpoints(
        found["authorization_endpoint"],
        found["token_endpoint"],
        found.get("jwks_uri", ""),
        issuer if isinstance(issuer, str) else "",
    )


def secure_address(url: str) -> bool:
    """Tell whether a web address is https, or plain http to this computer (a test EHR)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def authorization_url(settings: SmartSettings, pending: Pending, state: str, launch: str) -> str:
    """Return the EHR authorization address this browser is sent to (Authlib builds it; PKCE S256)."""
    challenge = create_s256_code_challenge(pending.verifier)
    url: str = prepare_grant_uri(
        pending.endpoints.authorize,
        settings.client_id,
        "code",
        redirect_uri=settings.redirect_uri,
        scope=settings.scope,
        state=state,
        aud=pending.iss,
        launch=launch,
        code_challenge=challenge,
        code_challenge_method="S256",
        nonce=pending.nonce,
    )
    return url


async def exchange_code(
    client: httpx.AsyncClient, settings: SmartSettings, pending: Pending, code: str
) -> dict[str, Any]:
    """Trade the authorization code and the PKCE verifier for the token response."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": settings.redirect_uri,
        "client_id": settings.client_id,
        "code_verifier": pending.verifier,
    }
    what = "Getting the EHR's permission"
    headers = {"accept": "application/json"}
    status, body = await _read(
        client, "POST", pending.endpoints.token, what=what, cap=MAX_SMALL_BYTES, data=form, headers=headers
    )
    answer = _json_object(body, what)
    if status != 200:
        # OAuth's error code is a fixed word (invalid_grant): safe to show.
        error = answer.get("error")
        reason = f" ({error})" if isinstance(error, str) and error.isascii() and len(error) < 64 else ""
        raise LaunchError(f"{what}: the EHR refused{reason}")
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise LaunchError(f"{what}: the EHR gave no access token")
    return answer


def id_token_claims(
    id_token: str, keys: Mapping[str, Any], *, iss: str, client_id: str, nonce: str, now: Callable[[], int]
) -> dict[str, Any]:
    """Check an id token's signature (the EHR's keys, asymmetric algorithms only), issuer, audience, time and nonce."""
    try:
        key_set = KeySet.import_key_set(dict(keys))  # type: ignore[arg-type]
        token = jwt.decode(id_token, key_set, algorithms=["RS256", "RS384", "ES256", "ES384"])
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=60,
            iss={"essential": True, "value": iss},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
        )
        registry.validate(token.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise LaunchError(f"Checking who you are: the EHR's id token was not valid ({type(exc).__name__})") from None
    claims = dict(token.claims)
    if claims.get("nonce") != nonce:
        raise LaunchError("Checking who you are: the EHR's id token was made for another sign-in")
    return claims


def reference(value: str, iss: str) -> str:
    """Return a FHIR reference relative to the server: Practitioner/1 from https://ehr/fhir/Practitioner/1."""
    value = value.strip()
    prefix = iss.rstrip("/") + "/"
    return value[len(prefix) :] if value.startswith(prefix) else value


def resource_id(value: Any) -> str:
    """Return a FHIR id from the token response (`patient`, `encounter`), or "" when it is not one."""
    if isinstance(value, str) and 0 < len(value) <= 64 and all(c.isalnum() or c in "-." for c in value):
        return value
    return ""


# -- what the chart says ---------------------------------------------------------------------------------


async def read_chart(client: httpx.AsyncClient, iss: str, token: str, patient: str) -> ChartFacts:
    """Read the patient's first name and languages, active problems and medication orders."""
    record = await get_json(client, f"{iss}/Patient/{patient}", token=token, what="Reading the patient")
    if record.get("resourceType") != "Patient" or record.get("id") != patient:
        raise LaunchError("Reading the patient: the EHR answered with another record")
    conditions = await search(client, iss, token, "Condition", patient)
    orders = await search(client, iss, token, "MedicationRequest", patient)
    try:
        first = first_name(record)
        languages, preferred = patient_languages(record)
        findings = [*problem_findings(conditions, patient, iss), *order_findings(orders, patient, iss)]
    except (TypeError, AttributeError, ValueError):
        # A field of another shape than FHIR's (a list where a string belongs): said, never a server error.
        raise LaunchError("Reading the chart: the EHR's answer is not shaped as FHIR says") from None
    return ChartFacts(first, languages, preferred, tuple(findings))


async def search(client: httpx.AsyncClient, iss: str, token: str, kind: str, patient: str) -> list[dict[str, Any]]:
    """Return the resources of one type a patient search answers, following at most a few pages on this server."""
    url = f"{iss}/{kind}?patient={patient}&_count=100"
    found: list[dict[str, Any]] = []
    for _page in range(MAX_PAGES):
        bundle = await get_json(client, url, token=token, cap=MAX_BUNDLE_BYTES, what=f"Reading the chart ({kind})")
        entries = bundle.get("entry")
        for entry in entries if isinstance(entries, list) else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") == kind:
                found.append(resource)
        following = next_page(bundle, iss)
        if following is None:
            break
        url = following
    return found


def first_name(patient: Mapping[str, Any]) -> str:
    """Return the name the patient goes by: the usual name's first given name, else the official one's."""
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    order = {"usual": 0, "official": 1}
    names.sort(key=lambda n: order.get(str(n.get("use")), 2))
    for name in names:
        given = name.get("given")
        if isinstance(given, list) and given and isinstance(given[0], str) and given[0].strip():
            return given[0].strip()[:60]
    return ""


def patient_languages(patient: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    """Return the patient's languages as BCP 47 codes, the preferred first, and whether one was marked preferred."""
    found: list[tuple[int, str]] = []
    for position, item in enumerate(patient.get("communication") or []):
        if not isinstance(item, dict):
            continue
        language = item.get("language")
        codings = language.get("coding") if isinstance(language, dict) else None
        for coding in codings or []:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and 0 < len(code) <= 35:
                found.append((0 if item.get("preferred") is True else 1 + position, code))
                break
    found.sort()
    return tuple(code for _rank, code in found), bool(found) and found[0][0] == 0


def _about_patient(resource: Mapping[str, Any], key: str, patient: str, iss: str) -> bool:
    target = resource.get(key)
    return names_patient(target.get("reference") if isinstance(target, dict) else None, patient, iss)


def _codes(concept: Any) -> str:
    return concept.get("text", "") if isinstance(concept, dict) and isinstance(concept.get("text"), str) else ""


def _status(concept: Any) -> set[str]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return {str(c["code"]) for c in codings or [] if isinstance(c, dict) and isinstance(c.get("code"), str)}


def _findings(concept: Any, kind: str, systems: Sequence[str]) -> list[Finding]:
    found = []
    for coding in (concept.get("coding") if isinstance(concept, dict) else None) or []:
        if not isinstance(coding, dict):
            continue
        system = system_for_uri(str(coding.get("system", "")))
        code = coding.get("code")
        if system is None or system.name not in systems or not isinstance(code, str) or len(code) > 32:
            continue
        display = coding.get("display") if isinstance(coding.get("display"), str) else _codes(concept)
        found.append(Finding(kind, system.name, code.strip(), str(display)[:120]))
    return found


def problem_findings(conditions: Sequence[Mapping[str, Any]], patient: str, iss: str) -> list[Finding]:
    """Return the coded findings of a patient's active, not refuted conditions."""
    found: list[Finding] = []
    for condition in conditions:
        if not _about_patient(condition, "subject", patient, iss):
            continue
        if _status(condition.get("clinicalStatus")) & INACTIVE_STATUSES or condition.get("abatementDateTime"):
            continue
        if _status(condition.get("verificationStatus")) & NOT_TRUE:
            continue
        found += _findings(condition.get("code"), "problem", CONDITION_SYSTEMS)
    return found


def order_findings(orders: Sequence[Mapping[str, Any]], patient: str, iss: str) -> list[Finding]:
    """Return the RxNorm codings of a patient's active medication orders."""
    found: list[Finding] = []
    for order in orders:
        status = order.get("status")
        if (
            not _about_patient(order, "subject", patient, iss)
            or not isinstance(status, str)
            or status not in ORDER_STATUSES
        ):
            continue
        found += _findings(order.get("medicationCodeableConcept"), "order", (RXNORM,))
    return found


def chart_language(
    facts: ChartFacts,
    languages: Sequence[str],
    match: Callable[[str, Sequence[str]], str | None],
    names: Callable[[str], str],
) -> tuple[str, str]:
    """Return the patient's language among those we have, and in words where the chart said it."""
    for position, code in enumerate(facts.languages):
        if (found := match(code, languages)) is not None:
            how = "preferred language" if position == 0 and facts.preferred else "a language the patient speaks"
            return found, f"{names(found)}: the chart's {how} ({code})"
    if facts.languages:
        return "en", f"English: we have no handout in the chart's language ({facts.languages[0]})"
    return "en", "English: the chart gives no language"


def chart_sections(
    facts: ChartFacts, english: Mapping[str, Section], offered: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """Return each offered section a problem or an order in the chart names, with those findings in words."""
    found: dict[str, tuple[str, ...]] = {}
    for section_id in offered:
        section = english.get(section_id)
        if section is None or not section.codes:
            continue
        why = [
            f"{f.kind} {f.display or f.code} ({f.code})"
            for f in facts.findings
            if declared_match(section.codes, f.system, f.code) is not None
        ]
        if why:
            found[section_id] = tuple(dict.fromkeys(why))
    return found
