"""CDS Hooks 2.0 services: handout links when a chart shows opioid use disorder or an order names its medicine.

Two services answer an EHR (the spec's "CDS Client"): `handouts-patient-view` reads the active
Conditions the EHR prefetches when a chart opens, `handouts-order-select` the draft
MedicationRequests of an ordering session. A Condition or an order whose codes a section declares
(ICD-10-CM F11.*, SNOMED CT, RxNorm) brings back one `info` card: a link to each matching section's
untailored PDF in the patient's preferred language (English where that language has no offered
translation), and a SMART link to the counselor's page.

Every call carries a JWT the EHR signed with its own key (CDS Hooks 2.0, "Trusting CDS Clients").
It is checked here against an allow-list of (issuer, JWK Set URL) pairs: an asymmetric algorithm,
the key the issuer publishes, this service's URL as audience, a near expiry, and a `jti` never
seen before. Only then is the body read.

The request holds patient data. Nothing here logs it or keeps it: a log line names the service and
a fixed reason at most, and a card carries section ids and a language, never a patient's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, RSAKey
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..codes import declared_match, system_for_uri
from ..languages import language as language_row
from ..languages import match_language
from ..models import BASE_LANGUAGE, Section
from .state import Snapshot, offered_brands, section_choices

LOG = logging.getLogger("handouts.serve.cds")

PATIENT_VIEW = "handouts-patient-view"
ORDER_SELECT = "handouts-order-select"
PATIENT_KEY = "patient"
CONDITIONS_KEY = "conditions"


@dataclass(frozen=True)
class CdsService:
    """One service of the discovery document: its id, the hook it answers and what it asks the EHR to prefetch."""

    id: str
    hook: str
    title: str
    description: str
    prefetch: tuple[tuple[str, str], ...]
    usage: str = ""

    def document(self) -> dict[str, Any]:
        """Return the service as the discovery endpoint lists it."""
        entry: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(self.prefetch),
        }
        if self.usage:
            entry["usageRequirements"] = self.usage
        return entry


# The tokens are the spec's: {{context.patientId}} is the chart's patient. Active Conditions only:
# a resolved problem is no reason for a handout (and the answer checks clinicalStatus again, since
# an EHR may ignore a search parameter).
PATIENT_TEMPLATE = "Patient/{{context.patientId}}"
CONDITIONS_TEMPLATE = "Condition?patient={{context.patientId}}&clinical-status=active"
USAGE = (
    "Every call needs a JWT signed by an EHR this server is configured to trust (its iss and JWK Set URL). "
    "Without the conditions prefetch the patient-view service answers 412: it does not query the FHIR server."
)
SERVICES = (
    CdsService(
        PATIENT_VIEW,
        "patient-view",
        "Patient handouts for opioid use disorder",
        "When the chart has an active opioid use disorder problem, links to the clinic's reviewed patient "
        "handouts (PDF) in the patient's preferred language, and to the counselor's page to make one for this patient.",
        ((PATIENT_KEY, PATIENT_TEMPLATE), (CONDITIONS_KEY, CONDITIONS_TEMPLATE)),
        USAGE,
    ),
    CdsService(
        ORDER_SELECT,
        "order-select",
        "Patient handouts for the medicine being ordered",
        "When a draft medication order is for buprenorphine, methadone or naltrexone (RxNorm), links to the "
        "clinic's reviewed patient handouts on that medicine (PDF) in the patient's preferred language.",
        ((PATIENT_KEY, PATIENT_TEMPLATE),),
        "Every call needs a JWT signed by an EHR this server is configured to trust (its iss and JWK Set URL).",
    ),
)
SERVICES_BY_ID = {service.id: service for service in SERVICES}


def discovery_document() -> dict[str, Any]:
    """Return the body of GET /cds-services: both services with their prefetch templates."""
    return {"services": [service.document() for service in SERVICES]}


# --- Trusting the EHR: the JWT -----------------------------------------------------------------


@dataclass(frozen=True)
class CdsClient:
    """One EHR allowed to call: the `iss` its JWTs carry and the URL of the JWK Set with its public keys."""

    iss: str
    jwks_url: str


# Asymmetric only (the spec forbids `none` and every shared-secret algorithm); ES384 and RS384 are
# the spec's recommendation, and their 256-bit siblings are what many EHRs sign with.
ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
KEY_TYPES = {"RSA": RSAKey, "EC": ECKey}
MIN_RSA_BITS = 2048
# Clocks of two servers differ by a few seconds; more than this is a token out of its time.
LEEWAY_SECONDS = 30
# A CDS Hooks JWT is made for one call: an expiry further off than this is not one, and every jti
# must be remembered until its expiry, so this bounds how long the replay cache holds each.
MAX_TOKEN_SECONDS = 3600
MAX_TOKEN_CHARS = 16 * 1024
MAX_JTI_CHARS = 256
# Calls within one token lifetime the replay cache remembers; past this, calls wait (503) rather
# than forget a jti too early, which would let a captured token be replayed.
MAX_REPLAY_ENTRIES = 100_000
# A JWK Set is a few keys: anything larger is not one.
MAX_JWKS_BYTES = 64 * 1024
MAX_JWKS_KEYS = 50
JWKS_TIMEOUT_SECONDS = 5.0
# Keys are read again after this long (a removed key stops working), and at most this often: a
# token naming an unknown key may mean the EHR rotated its keys, or may be one of a flood.
JWKS_TTL_SECONDS = 600.0
JWKS_MIN_REFETCH_SECONDS = 60.0
# The members of a public JWK this service reads: a private part sent by mistake is never imported.
PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "n", "e", "crv", "x", "y")


@dataclass(frozen=True)
class Refusal:
    """Why a call is not answered: a short reason that names no secret, and the HTTP status."""

    reason: str
    status: int = 401


@dataclass(frozen=True)
class Verified:
    """A call whose JWT checked out: the EHR that signed it and the tenant it named, if any."""

    iss: str
    tenant: str = ""


class JwksError(Exception):
    """A JWK Set that could not be fetched or read."""


def fetch_jwks(url: str, *, timeout: float = JWKS_TIMEOUT_SECONDS, max_bytes: int = MAX_JWKS_BYTES) -> bytes:
    """Fetch a JWK Set's bytes over HTTP: a time-out on every step and on the whole, no redirects, a size cap."""
    deadline = time.monotonic() + 2 * timeout
    data = bytearray()
    try:
        # No redirect is followed: the allow-list names the URL, not wherever it points.
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers={"accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise JwksError(f"the key set answered {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise JwksError("the key set is too large")
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > max_bytes:
                    raise JwksError("the key set is too large")
                if time.monotonic() > deadline:
                    raise JwksError("the key set took too long")
    except httpx.HTTPError as exc:
        raise JwksError(f"the key set could not be fetched ({type(exc).__name__})") from exc
    return bytes(data)


def parse_jwks(data: bytes) -> dict[str, RSAKey | ECKey]:
    """Return the usable public signing keys of a JWK Set by kid; a key this service cannot use is left out."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise JwksError("the key set is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("the key set has no keys")
    keys: dict[str, RSAKey | ECKey] = {}
    for entry in document["keys"][:MAX_JWKS_KEYS]:
        if not isinstance(entry, dict) or entry.get("kty") not in KEY_TYPES:
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or kid in keys or entry.get("use", "sig") != "sig":
            continue
        public = {name: entry[name] for name in PUBLIC_MEMBERS if isinstance(entry.get(name), str)}
        try:
            key = JWKRegistry.import_key(public)
        except (JoseError, ValueError, TypeError):
            continue
        if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
            continue
        if isinstance(key, (RSAKey, ECKey)):
            keys[kid] = key
    return keys


@dataclass
class _KeySetEntry:
    keys: dict[str, RSAKey | ECKey]
    fetched: float  # when these keys were read (-inf: never)
    tried: float  # when a fetch last started, whether it worked or not


class JwksCache:
    """The public keys of each allow-listed EHR, fetched from its JWK Set URL, kept a while, refetched sparingly."""

    def __init__(
        self,
        fetch: Callable[[str], bytes] = fetch_jwks,
        clock: Callable[[], float] = time.time,
        *,
        ttl: float = JWKS_TTL_SECONDS,
        min_refetch: float = JWKS_MIN_REFETCH_SECONDS,
    ) -> None:
        self.fetch = fetch
        self.clock = clock
        self.ttl = ttl
        self.min_refetch = min_refetch
        self.entries: dict[str, _KeySetEntry] = {}
        self.lock = threading.Lock()
        self.url_locks: dict[str, threading.Lock] = {}

    def key(self, url: str, kid: str) -> RSAKey | ECKey | None:
        """Return the key a kid names in a JWK Set, fetching the set when stale or when the kid is new to it."""
        with self.lock:
            url_lock = self.url_locks.setdefault(url, threading.Lock())
        # One fetch per URL at a time: a burst of calls after the keys expire waits for one answer.
        with url_lock:
            entry = self.entries.get(url)
            now = self.clock()
            fetched = False
            if (entry is None or now - entry.fetched >= self.ttl) and self._may_fetch(entry, now):
                entry, fetched = self._refresh(url, entry, now), True
            if entry is not None and kid in entry.keys:
                return entry.keys[kid]
            # A kid the set does not hold: read the set again once, in case the EHR rotated its keys.
            if not fetched and self._may_fetch(entry, now):
                entry = self._refresh(url, entry, now)
            return entry.keys.get(kid) if entry is not None else None

    def _may_fetch(self, entry: _KeySetEntry | None, now: float) -> bool:
        return entry is None or now - entry.tried >= self.min_refetch

    def _refresh(self, url: str, entry: _KeySetEntry | None, now: float) -> _KeySetEntry:
        try:
            keys = parse_jwks(self.fetch(url))
        except (JwksError, OSError, ValueError) as exc:
            # The URL is the operator's own configuration, not a caller's: it may be logged.
            LOG.warning("CDS Hooks: the JWK Set at %s could not be read: %s", url, exc)
            # The keys read before stay in use while the EHR's key server is down.
            kept = entry or _KeySetEntry({}, float("-inf"), now)
            entry = dataclasses.replace(kept, tried=now)
        else:
            entry = _KeySetEntry(keys, now, now)
        self.entries[url] = entry
        return entry


class ReplayCache:
    """The jti of every accepted JWT, per issuer, kept until the token expires: a token is accepted once."""

    def __init__(self, limit: int = MAX_REPLAY_ENTRIES) -> None:
        self.limit = limit
        self.seen: dict[tuple[str, str], float] = {}
        self.expiries: list[tuple[float, tuple[str, str]]] = []
        self.lock = threading.Lock()

    def add(self, iss: str, jti: str, expires: float, now: float) -> Refusal | None:
        """Remember a jti until `expires`; say why not when it was seen before or the cache is full."""
        key = (iss, jti)
        with self.lock:
            while self.expiries and self.expiries[0][0] < now:
                _, old = heapq.heappop(self.expiries)
                self.seen.pop(old, None)
            if key in self.seen:
                return Refusal("this token was already used")
            if len(self.seen) >= self.limit:
                return Refusal("too many calls at once; try again shortly", 503)
            self.seen[key] = expires
            heapq.heappush(self.expiries, (expires, key))
        return None


def bearer_token(authorization: str) -> str | None:
    """Return the token of an `Authorization: Bearer …` header, or None."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    return token


def _number(value: Any) -> float | None:
    # JSON true is a Python int: a claim of true is no time. NaN compares false with every time, so
    # an expiry of NaN would never pass; a number past a float's range is none either.
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def header_problem(header: Mapping[str, Any], client: CdsClient) -> str | None:
    """Say what is wrong with a JWT header for this EHR: algorithm, kid, type, and a jku off the allow-list."""
    if header.get("alg") not in ALGORITHMS:
        return "the token's algorithm is not allowed (RS256, RS384, ES256 or ES384)"
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_JTI_CHARS:
        return "the token names no key (kid)"
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        return "the token is not a JWT"
    if "crit" in header:
        return "the token asks for extensions this service does not know"
    # The key set is only ever fetched from the allow-listed URL: a jku names it, or nothing.
    if "jku" in header and header["jku"] != client.jwks_url:
        return "the token's key set URL (jku) is not the one configured for its issuer"
    return None


def claims_problem(
    claims: Mapping[str, Any], *, audience: str, now: float, leeway: float = LEEWAY_SECONDS
) -> str | None:
    """Say what is wrong with a signed JWT's claims for a call to `audience` at `now`, or return None."""
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if audience not in audiences:
        return "the token is for another audience (aud)"
    exp = _number(claims.get("exp"))
    if exp is None:
        return "the token has no expiry (exp)"
    if exp < now - leeway:
        return "the token has expired"
    if exp > now + MAX_TOKEN_SECONDS:
        return "the token expires too far in the future"
    iat = _number(claims.get("iat"))
    if iat is None:
        return "the token has no issue time (iat)"
    if iat > now + leeway:
        return "the token was issued in the future"
    nbf = claims.get("nbf")
    if nbf is not None and ((value := _number(nbf)) is None or value > now + leeway):
        return "the token is not valid yet"
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
        return "the token has no usable id (jti)"
    return None


class JwtVerifier:
    """Checks the JWT of a call: a trusted issuer's key signed it, for this service, now, and only once."""

    def __init__(
        self,
        clients: Sequence[CdsClient],
        keys: JwksCache | None = None,
        replays: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
        leeway: float = LEEWAY_SECONDS,
    ) -> None:
        self.clients = {client.iss: client for client in clients}
        self.keys = keys or JwksCache(clock=clock)
        self.replays = replays or ReplayCache()
        self.clock = clock
        self.leeway = leeway

    def verify(self, authorization: str, audience: str) -> Verified | Refusal:
        """Check an Authorization header for a call to `audience`; never raises on what a caller sent."""
        token = bearer_token(authorization)
        if token is None:
            return Refusal("a signed JWT is required (Authorization: Bearer)")
        try:
            signed = jws.extract_compact(token.encode("ascii"))
            header = signed.headers()
            unverified = json.loads(signed.payload or b"")
        except (JoseError, ValueError, TypeError, RecursionError):
            return Refusal("the token is not a signed JWT")
        if not isinstance(header, dict) or not isinstance(unverified, dict):
            return Refusal("the token is not a signed JWT")
        # The issuer is read before the signature is checked only to choose whose key checks it.
        iss = unverified.get("iss")
        client = self.clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            return Refusal("the token's issuer is not trusted here")
        if (problem := header_problem(header, client)) is not None:
            return Refusal(problem)
        key = self.keys.key(client.jwks_url, header["kid"])
        if key is None:
            return Refusal("the token's key is not in its issuer's key set")
        try:
            valid = jws.validate_compact(signed, key, algorithms=[header["alg"]])
        except (JoseError, ValueError, TypeError):
            valid = False
        if not valid:
            return Refusal("the token's signature does not verify")
        now = self.clock()
        if (problem := claims_problem(unverified, audience=audience, now=now, leeway=self.leeway)) is not None:
            return Refusal(problem)
        # Remembered as long as the token could be accepted: its expiry and the leeway after it.
        expires = (_number(unverified["exp"]) or now) + self.leeway
        if (refused := self.replays.add(client.iss, unverified["jti"], expires, now)) is not None:
            return refused
        tenant = unverified.get("tenant")
        return Verified(client.iss, tenant if isinstance(tenant, str) else "")


# --- Reading a call ----------------------------------------------------------------------------

# A chart has a few dozen problems, an ordering session a few orders; more is read no further.
MAX_RESOURCES = 1000
MAX_CODINGS = 50
MAX_CODE_CHARS = 64
MAX_LANGUAGE_CHARS = 35  # a BCP 47 tag is rarely past 12; RFC 5646 asks support up to 35
ACTIVE_CLINICAL_STATUS = ("active", "recurrence", "relapse")
# A Condition recorded in error or ruled out is no problem of the patient's.
VOIDED_VERIFICATION_STATUS = ("entered-in-error", "refuted")


@dataclass(frozen=True)
class HookCall:
    """The parts of a CDS Hooks request this service reads (the rest, fhirAuthorization among it, is ignored)."""

    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    prefetch: Mapping[str, Any]


@dataclass(frozen=True)
class Unavailable:
    """Data the service needs did not come (HTTP 412, as the spec asks) and could not be fetched."""

    reason: str


def read_call(body: bytes) -> HookCall | str:
    """Read a CDS Hooks request body; return the call, or why it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return "the body is not JSON"
    if not isinstance(document, dict):
        return "the body is not a JSON object"
    hook, instance, context = document.get("hook"), document.get("hookInstance"), document.get("context")
    if not isinstance(hook, str) or not isinstance(instance, str) or not isinstance(context, dict):
        return "the request needs hook, hookInstance and context"
    prefetch = document.get("prefetch", {})
    if not isinstance(prefetch, dict):
        return "prefetch is not an object"
    return HookCall(hook, instance, context, prefetch)


def _list(value: Any) -> list[Any]:
    return value[:MAX_RESOURCES] if isinstance(value, list) else []


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def bundle_resources(value: Any, resource_type: str) -> Iterator[Mapping[str, Any]]:
    """Yield the resources of one type in a Bundle (or a lone resource of that type); anything else yields none."""
    value = _dict(value)
    if value.get("resourceType") == resource_type:
        yield value
        return
    if value.get("resourceType") != "Bundle":
        return
    for entry in _list(value.get("entry")):
        resource = _dict(_dict(entry).get("resource"))
        if resource.get("resourceType") == resource_type:
            yield resource


def codings(concept: Any) -> list[tuple[str, str]]:
    """Return the (code system name, code) pairs of a CodeableConcept in the systems sections declare codes of."""
    found = []
    for coding in _list(_dict(concept).get("coding"))[:MAX_CODINGS]:
        system, code = _dict(coding).get("system"), _dict(coding).get("code")
        if not (isinstance(system, str) and isinstance(code, str)) or len(code) > MAX_CODE_CHARS:
            continue
        if (known := system_for_uri(system)) is not None:
            found.append((known.name, code))
    return found


def _status_codes(concept: Any) -> set[str]:
    return {str(_dict(c).get("code")) for c in _list(_dict(concept).get("coding"))[:MAX_CODINGS]}


def _about_patient(reference: Any, patient_id: str) -> bool:
    # A resource of another patient in this patient's call is an EHR's mistake: it names no one's handout.
    ref = _dict(reference).get("reference")
    if not isinstance(ref, str):
        return True
    return ref == f"Patient/{patient_id}" or ref.endswith(f"/Patient/{patient_id}")


def active_condition_codes(conditions: Any, patient_id: str) -> list[tuple[str, str]]:
    """Return the codes of the patient's active Conditions in a prefetched Bundle: active, not voided, theirs."""
    found = []
    for condition in bundle_resources(conditions, "Condition"):
        if not _status_codes(condition.get("clinicalStatus")) & set(ACTIVE_CLINICAL_STATUS):
            continue
        if _status_codes(condition.get("verificationStatus")) & set(VOIDED_VERIFICATION_STATUS):
            continue
        if not _about_patient(condition.get("subject"), patient_id):
            continue
        found += codings(condition.get("code"))
    return found


def draft_medication_codes(context: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return the medicine codes of the newly selected draft MedicationRequests (of all, when none is marked)."""
    selections = {s for s in _list(context.get("selections")) if isinstance(s, str)}
    patient_id = context.get("patientId")
    found = []
    for order in bundle_resources(context.get("draftOrders"), "MedicationRequest"):
        # The spec's advice: decide on the orders just selected; the rest of the session is context.
        if selections and f"MedicationRequest/{order.get('id')}" not in selections:
            continue
        if isinstance(patient_id, str) and not _about_patient(order.get("subject"), patient_id):
            continue
        # A medicationReference names a Medication this service would have to fetch: not read.
        found += codings(order.get("medicationCodeableConcept"))
    return found


@dataclass(frozen=True)
class PatientLanguage:
    """The language a patient prefers, as the chart wrote it, and the content folder that holds it ("" if none)."""

    tag: str
    folder: str

    @property
    def name(self) -> str:
        """Return the language's English name (Spanish; French (Canada)), for the counselor's card."""
        try:
            return language_row(self.folder or self.tag).name
        except Exception:  # a chart's free text that no locale parses: shown as written
            return self.tag


def preferred_language(patient: Any, patient_id: str, languages: Sequence[str]) -> PatientLanguage:
    """Return the patient's preferred language from Patient.communication: the one marked preferred, else the first."""
    resource = _dict(patient)
    english = PatientLanguage(BASE_LANGUAGE, BASE_LANGUAGE if BASE_LANGUAGE in languages else "")
    if resource.get("resourceType") != "Patient" or resource.get("id", patient_id) != patient_id:
        return english
    spoken = [_dict(c) for c in _list(resource.get("communication"))]
    preferred = next((c for c in spoken if c.get("preferred") is True), spoken[0] if spoken else {})
    concept = _dict(preferred.get("language"))
    # The codes (urn:ietf:bcp:47: es, es-MX), then the text an EHR may hold alone ("Spanish").
    written = [_dict(c).get("code") for c in _list(concept.get("coding"))[:MAX_CODINGS]] + [concept.get("text")]
    tags = [tag.strip() for tag in written if isinstance(tag, str) and 0 < len(tag.strip()) <= MAX_LANGUAGE_CHARS]
    for tag in tags:
        if folder := match_language(tag, tuple(languages)):
            return PatientLanguage(tag, folder)
    # A language without content here: named on the card, the handouts come in English.
    return PatientLanguage(tags[0], "") if tags else english


def matching_sections(
    codes: Iterable[tuple[str, str]], english: Mapping[str, Section], order: Sequence[str]
) -> tuple[str, ...]:
    """Return the ids, in project order, of the sections whose declared codes match any of (system name, code)."""
    asked = list(dict.fromkeys(codes))
    found = []
    for section_id in dict.fromkeys(order):
        section = english.get(section_id)
        if section is not None and any(declared_match(section.codes, system, code) for system, code in asked):
            found.append(section_id)
    return tuple(found)


@dataclass(frozen=True)
class HandoutLink:
    """A link a card gives: one section's untailored PDF in one language."""

    section_id: str
    title: str
    language: str
    url: str
    label: str


def handout_links(
    snapshot: Snapshot,
    section_ids: Sequence[str],
    wanted: PatientLanguage,
    *,
    base: str,
    today: dt.date,
    release: bool,
) -> list[HandoutLink]:
    """Return a link per section: in the patient's language where it is offered, else in English, else none."""
    offered: dict[str, set[str]] = {}

    def is_offered(language: str, section_id: str) -> bool:
        if language not in offered:
            choices = section_choices(snapshot, language, today, release=release) if language else []
            offered[language] = {c.id for c in choices if c.offered}
        return section_id in offered[language]

    english = snapshot.inputs.sections.get(BASE_LANGUAGE, {})
    links = []
    for section_id in section_ids:
        title = english[section_id].title if section_id in english else section_id
        if wanted.folder and is_offered(wanted.folder, section_id):
            language, label = wanted.folder, f"{title} — {language_row(wanted.folder).name} (PDF)"
        elif is_offered(BASE_LANGUAGE, section_id):
            language = BASE_LANGUAGE
            missing = "" if wanted.folder == BASE_LANGUAGE else f"; no {wanted.name} translation offered"
            label = f"{title} — English (PDF{missing})"
        else:
            continue
        links.append(HandoutLink(section_id, title, language, f"{base}/handouts/{language}/{section_id}.pdf", label))
    return links


MAX_SUMMARY_CHARS = 139  # the spec: a summary of fewer than 140 characters
LAUNCH_LABEL = "Make a handout for this patient"
DEFAULT_SOURCE = "Patient handouts"
SUMMARIES = {
    "patient-view": "Patient handouts on opioid use disorder are ready to print",
    "order-select": "Patient handouts on this medicine are ready to print",
}
DETAIL = "Each link opens a reviewed, untailored handout (PDF) to print or give to the patient."
DETAIL_LAUNCH = (
    " To add the patient's first name, the counselor, the next visit and a note, make a handout for this patient."
)


def build_card(
    hook: str,
    links: Sequence[HandoutLink],
    *,
    source_label: str,
    launch_url: str,
    card_id: str,
    language: str = BASE_LANGUAGE,
    source_url: str = "",
) -> dict[str, Any]:
    """Return the one `info` card for a hook's matching handouts: their PDFs, and a SMART link to make one."""
    languages = list(dict.fromkeys(language_row(link.language).name for link in links))
    summary = f"{SUMMARIES.get(hook, SUMMARIES['patient-view'])} ({' and '.join(languages)})."
    if len(summary) > MAX_SUMMARY_CHARS:
        summary = summary[: MAX_SUMMARY_CHARS - 1].rstrip() + "…"
    source: dict[str, str] = {"label": source_label[:100] or DEFAULT_SOURCE}
    if source_url.startswith("https://"):
        source["url"] = source_url
    # appContext travels through the EHR to the launched page with its token: the sections and the
    # language to tick there, nothing about the patient (the launch itself names them).
    app_context = json.dumps(
        {"sections": [link.section_id for link in links], "language": language},
        separators=(",", ":"),
    )
    # Without a SMART launch on this server (no --smart-client-id), a smart link would lead nowhere.
    launch = (
        [{"label": LAUNCH_LABEL, "url": launch_url, "type": "smart", "appContext": app_context}] if launch_url else []
    )
    return {
        "uuid": card_id,
        "summary": summary,
        "indicator": "info",
        "detail": DETAIL + (DETAIL_LAUNCH if launch_url else ""),
        "source": source,
        "links": [*({"label": link.label, "url": link.url, "type": "absolute"} for link in links), *launch],
    }


def answer_call(
    service: CdsService,
    call: HookCall,
    snapshot: Snapshot,
    *,
    base: str,
    today: dt.date,
    release: bool,
    card_id: str,
    launch: bool = True,
) -> dict[str, Any] | Unavailable | str:
    """Return the response body for a call (a card or none), what it lacks (412), or why it is not one (400)."""
    if call.hook != service.hook:
        return f"this service answers the {service.hook} hook"
    patient_id = call.context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        return "context.patientId is required"
    if service.hook == "patient-view":
        if CONDITIONS_KEY not in call.prefetch:
            return Unavailable(f"the {CONDITIONS_KEY} prefetch did not come, and this service does not query the EHR")
        conditions = call.prefetch[CONDITIONS_KEY]
        if _dict(conditions).get("resourceType") == "OperationOutcome":
            return Unavailable(f"the EHR could not prefetch {CONDITIONS_KEY}")
        codes = active_condition_codes(conditions, patient_id)
    else:
        if not isinstance(call.context.get("draftOrders"), dict):
            return "context.draftOrders is required"
        codes = draft_medication_codes(call.context)
    english = snapshot.inputs.sections.get(BASE_LANGUAGE, {})
    found = matching_sections(codes, english, snapshot.project.sections.order)
    if not found:
        return {"cards": []}
    wanted = preferred_language(call.prefetch.get(PATIENT_KEY), patient_id, snapshot.languages)
    links = handout_links(snapshot, found, wanted, base=base, today=today, release=release)
    if not links:
        return {"cards": []}
    brands = offered_brands(snapshot, release=release)
    card = build_card(
        service.hook,
        links,
        source_label=brands[0].name if brands else DEFAULT_SOURCE,
        source_url=brands[0].website if brands else "",
        launch_url=f"{base}/launch" if launch else "",
        card_id=card_id,
        language=wanted.folder or BASE_LANGUAGE,
    )
    return {"cards": [card]}


def operation_outcome(text: str, code: str = "processing") -> dict[str, Any]:
    """Return a FHIR OperationOutcome saying what went wrong, as the spec suggests for an error answer."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "details": {"text": text}}],
    }


# --- The web side ------------------------------------------------------------------------------

# A call carries the Patient and every active Condition: a long problem list runs to hundreds of KiB.
MAX_CALL_BYTES = 1024 * 1024
JSON_TYPES = ("application/json", "application/fhir+json")
CORS_MAX_AGE = "600"


class CdsHooks:
    """The discovery and service endpoints, with the JWT check in front of every service call."""

    def __init__(
        self,
        clients: Sequence[CdsClient],
        snapshot: Callable[[], Snapshot | None],
        base_url: Callable[[Request], str],
        release: bool,
        today: Callable[[], dt.date],
        *,
        clock: Callable[[], float] = time.time,
        fetch: Callable[[str], bytes] = fetch_jwks,
        verifier: JwtVerifier | None = None,
        cors_origins: Sequence[str] = ("*",),
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        launch: bool = True,
    ) -> None:
        self.snapshot = snapshot
        self.launch = launch
        self.base_url = base_url
        self.release = release
        self.today = today
        self.verifier = verifier or JwtVerifier(clients, JwksCache(fetch, clock), ReplayCache(), clock)
        self.cors_origins = tuple(cors_origins)
        self.new_id = new_id

    def cors_headers(self, request: Request) -> dict[str, str]:
        """Return the CORS headers for a browser-based EHR's origin, or none for an origin not allowed."""
        origin = request.headers.get("origin", "")
        if not origin:
            return {}
        # No cookie is read here, so no credentials are allowed: the JWT is what a call must carry.
        if "*" in self.cors_origins:
            return {"access-control-allow-origin": "*"}
        if origin in self.cors_origins:
            return {"access-control-allow-origin": origin, "vary": "Origin"}
        return {}

    async def preflight(self, request: Request) -> Response:
        """Answer a browser's CORS preflight: GET and POST with an Authorization and a JSON body."""
        headers = self.cors_headers(request)
        if headers:
            headers |= {
                "access-control-allow-methods": "GET, POST, OPTIONS",
                "access-control-allow-headers": "authorization, content-type",
                "access-control-max-age": CORS_MAX_AGE,
            }
        return Response(status_code=204, headers=headers)

    async def discovery(self, request: Request) -> Response:
        """List the services (GET /cds-services): public, the same for every caller."""
        return JSONResponse(discovery_document(), headers=self.cors_headers(request))

    async def call(self, request: Request) -> Response:
        """Answer a service call (POST /cds-services/{id}): check the JWT, then read the hook and answer with cards."""
        cors = self.cors_headers(request)
        service = SERVICES_BY_ID.get(request.path_params.get("service_id", ""))
        if service is None:
            return JSONResponse(operation_outcome("no such CDS service", "not-found"), 404, headers=cors)
        audience = f"{self.base_url(request)}/cds-services/{service.id}"
        verdict = await run_in_threadpool(self.verifier.verify, request.headers.get("authorization", ""), audience)
        if isinstance(verdict, Refusal):
            # The reason is one of a fixed few: it names no token, key or patient.
            LOG.info("CDS Hooks %s refused: %s", service.id, verdict.reason)
            headers = {**cors, "www-authenticate": 'Bearer error="invalid_token"'} if verdict.status == 401 else cors
            return JSONResponse({"error": verdict.reason}, verdict.status, headers=headers)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in JSON_TYPES:
            return JSONResponse(operation_outcome("send the request as application/json"), 415, headers=cors)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_CALL_BYTES:
            return JSONResponse(operation_outcome("the request is too large", "too-costly"), 413, headers=cors)
        body = await request.body()
        if len(body) > MAX_CALL_BYTES:
            return JSONResponse(operation_outcome("the request is too large", "too-costly"), 413, headers=cors)
        status, answer = await run_in_threadpool(self._answer, service, body, self.base_url(request))
        return JSONResponse(answer, status, headers=cors)

    def _answer(self, service: CdsService, body: bytes, base: str) -> tuple[int, dict[str, Any]]:
        """Return the status and body for a verified call (in a worker thread: the content may be reloading)."""
        call = read_call(body)
        if isinstance(call, str):
            return 400, operation_outcome(call, "invalid")
        snapshot = self.snapshot()
        if snapshot is None:
            return 503, operation_outcome("the handouts are not ready", "transient")
        answer = answer_call(
            service,
            call,
            snapshot,
            base=base,
            today=self.today(),
            release=self.release,
            card_id=self.new_id(),
            launch=self.launch,
        )
        if isinstance(answer, Unavailable):
            return 412, operation_outcome(answer.reason, "not-found")
        if isinstance(answer, str):
            return 400, operation_outcome(answer, "invalid")
        return 200, answer


def cds_routes(hooks: CdsHooks) -> list[Route]:
    """Return the routes: GET /cds-services, POST /cds-services/{service_id}, and their CORS preflights."""
    return [
        Route("/cds-services", hooks.discovery, methods=["GET"]),
        Route("/cds-services", hooks.preflight, methods=["OPTIONS"]),
        Route("/cds-services/{service_id}", hooks.call, methods=["POST"]),
        Route("/cds-services/{service_id}", hooks.preflight, methods=["OPTIONS"]),
    ]
