"""A test EHR's front door: SMART App Launch 2 (EHR launch) on Authlib's OAuth 2 server, before a real FHIR server.

    python tests/ehr_server.py --port P --fhir http://127.0.0.1:Q --client-id ID --redirect-uri URI --seed-dir DIR

One Flask app on 127.0.0.1:P, for tests only (tests/ehr.py starts it beside fhirsnake; everything is in memory):

- GET  /fhir/.well-known/smart-configuration (and openid-configuration): SMART 2 discovery. iss is .../fhir.
- GET  /authorize: an EHR launch, auto-approved (the clinician is signed in to the EHR). Authlib's code grant
  with PKCE required (S256 only) and OpenID Connect; the `launch` must be one /_test/launch issued, unused.
- POST /token: the code for a token, for a public client. Patient, encounter, id_token (RS256, /jwks).
- GET  /jwks: the id tokens' public key.
- GET, POST, PUT /fhir/<Type>[/<id>]: a thin proxy to fhirsnake behind Authlib's ResourceProtector.
- /_test/launch, /_test/drop-next, /_test/requests: the tests' controls (no auth; loopback only).

What the proxy enforces, and no more: a bearer token this server issued, unexpired (401 otherwise); a SMART scope
that allows the interaction on the type (read r, search s, create c, update u; v1 read/write/* too; a scope's
?query restriction is not applied) (403 otherwise); and with patient/ scopes only, the launch's patient: a read
must return the patient or a resource whose `subject` or `patient` names them, a search must name them in
`patient=` or `subject=` (`_id=` for Patient), a write must name them in `subject` or `patient` (or be the Patient
itself). Types outside the patient compartment (Practitioner, Organization, ...) pass. Searches go to fhirsnake
as they came and it ignores every parameter: a search answers every resource of the type, other patients' too.
That is on purpose: the client must cope with a server that ignores parameters.

fhirUser in the id token is the launch's `user` exactly as given: relative to the FHIR base by default
(Practitioner/counselor-1), absolute if the test gave an absolute URL; SMART allows both. It is in the id token
only when the scope asked for fhirUser; patient and encounter are in the token response only with the `launch`
scope.

Logs go to stderr and hold a request's method, path (no query string) and status; never a token or a body.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    TokenMixin,
    grants,
    list_to_scope,
    scope_to_list,
)
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode
from flask import Flask, Response, g, jsonify, request
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import WSGIRequestHandler, make_server

LOG = logging.getLogger("ehr")

HOST = "127.0.0.1"
LOOPBACK = {"127.0.0.1", "::1"}
# A token lives an hour, a code five minutes, an unused launch ten (SMART and RFC 6749 suggest no more).
TOKEN_SECONDS = 3600
CODE_SECONDS = 300
LAUNCH_SECONDS = 600
UPSTREAM_TIMEOUT = httpx.Timeout(10.0)
# A written resource carries at most a PDF or two as base64; a request beyond this is refused (413) unread.
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_SCOPES = 50
MAX_SCOPE_LENGTH = 2000
MAX_RECORDS = 1000
TYPE_RE = re.compile(r"[A-Z][A-Za-z]{0,63}")
ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# A resource reference as the launch gives the user: Practitioner/counselor-1.
REFERENCE_RE = re.compile(r"([A-Z][A-Za-z]{0,63})/([A-Za-z0-9\-.]{1,64})")
# SMART resource scopes: v2 (patient/Condition.rs, with an optional ?query) and v1 (patient/*.read).
RESOURCE_SCOPE_RE = re.compile(r"(patient|user)/(\*|[A-Z][A-Za-z]{0,63})\.(read|write|\*|c?r?u?d?s?)(\?\S*)?")
V1_PERMISSIONS = {"read": "rs", "write": "cuds", "*": "cruds"}
OTHER_SCOPES = {"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter"}
# Resource types that are not in the patient compartment: a patient-scoped token may read or write them.
OUTSIDE_COMPARTMENT = {"Practitioner", "PractitionerRole", "Organization", "Location", "Medication", "Device"}
# The request headers a FHIR server acts on, and the answer's headers a client reads.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "If-None-Exist", "If-Match", "Prefer")
RETURNED_HEADERS = ("Content-Type", "Location", "ETag", "Last-Modified")
SUPPORTED_SCOPES = [
    "openid",
    "fhirUser",
    "launch",
    "patient/*.cruds",
    "patient/*.rs",
    "user/*.cruds",
    "user/*.rs",
]
CAPABILITIES = [
    "launch-ehr",
    "client-public",
    "context-ehr-patient",
    "context-ehr-encounter",
    "sso-openid-connect",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]


@dataclass(frozen=True)
class Settings:
    """What the server was started with."""

    port: int
    fhir: str
    client_id: str
    redirect_uri: str
    seed_dir: Path | None

    @property
    def origin(self) -> str:
        """Return the server's own root URL."""
        return f"http://{HOST}:{self.port}"

    @property
    def iss(self) -> str:
        """Return the FHIR base URL: SMART's iss and aud, and the id token's issuer."""
        return f"{self.origin}/fhir"


@dataclass(frozen=True)
class Launch:
    """An EHR launch's context, as the chart had it open: patient, encounter, signed-in user."""

    launch: str
    patient: str
    encounter: str | None
    user: str
    expires_at: float

    @property
    def sub(self) -> str:
        """Return the id token's subject: the user as a reference relative to the FHIR base."""
        return "/".join(self.user.split("/")[-2:])


@dataclass(frozen=True)
class PublicClient(ClientMixin):  # type: ignore[misc]
    """The one registered app: a public client (no secret), one redirect URI, the code grant only."""

    client_id: str
    redirect_uri: str

    def get_client_id(self) -> str:
        """Return the client id."""
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        """Return the registered redirect URI."""
        return self.redirect_uri

    def get_allowed_scope(self, scope: str | None) -> str:
        """Return the asked scopes this server knows, in the order asked."""
        return allowed_scope(scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Accept only the registered redirect URI, exactly."""
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        """Refuse every secret: a public client has none."""
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Accept only `none` at the token endpoint: a public client."""
        return method == "none" if endpoint == "token" else True

    def check_response_type(self, response_type: str) -> bool:
        """Accept only the code flow."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """Accept only the authorization code grant (no refresh tokens)."""
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    """An authorization code and what it was issued for."""

    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    user: Launch
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str | None:
        """Return the redirect URI the authorization request named."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """Return the granted scope."""
        return self.scope

    def get_nonce(self) -> str | None:
        """Return the OpenID nonce of the authorization request."""
        return self.nonce

    def get_auth_time(self) -> int:
        """Return when the user was authenticated (the launch's authorization)."""
        return self.auth_time


@dataclass(frozen=True)
class Token(TokenMixin):  # type: ignore[misc]
    """An issued access token's grant (the token string is only the key it is kept under)."""

    client_id: str
    scope: str
    user: Launch
    issued_at: float
    expires_in: int

    def check_client(self, client: PublicClient) -> bool:
        """Tell whether the token was issued to this client."""
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        """Return the granted scope."""
        return self.scope

    def get_expires_in(self) -> int:
        """Return the lifetime in seconds."""
        return self.expires_in

    def is_expired(self) -> bool:
        """Tell whether the token's lifetime is over."""
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        """Never: this server revokes nothing."""
        return False

    def get_user(self) -> Launch:
        """Return the launch the token was issued for."""
        return self.user

    def get_client(self) -> None:
        """Return no client object: the token keeps only the client id."""
        return None


@dataclass(frozen=True)
class Drop:
    """The next request to forward and then drop without an answer."""

    method: str
    resource_type: str


class EhrState:
    """The server's memory: launches, codes, tokens, used nonces, the armed drop and the requests seen."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = PublicClient(settings.client_id, settings.redirect_uri)
        # Made at start and never written anywhere: id tokens verify only while this process runs.
        self.key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        self.lock = threading.Lock()
        self.launches: dict[str, Launch] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.nonces: set[str] = set()
        self.drop: Drop | None = None
        self.records: list[dict[str, Any]] = []

    @property
    def iss(self) -> str:
        """Return the FHIR base URL."""
        return self.settings.iss

    def add_launch(self, patient: str, encounter: str | None, user: str) -> str:
        """Keep a launch context and return its opaque, single-use id."""
        launch = secrets.token_urlsafe(24)
        with self.lock:
            self.launches[launch] = Launch(launch, patient, encounter, user, time.time() + LAUNCH_SECONDS)
        return launch

    def peek_launch(self, launch: str) -> Launch | None:
        """Return a launch that is known, unused and unexpired, leaving it unused."""
        with self.lock:
            found = self.launches.get(launch)
        return found if found and found.expires_at > time.time() else None

    def take_launch(self, launch: str) -> Launch | None:
        """Use a launch up: return it if it was still good, else None (two takes: one wins)."""
        with self.lock:
            found = self.launches.pop(launch, None)
        return found if found and found.expires_at > time.time() else None

    def save_code(self, code: Code) -> None:
        """Keep an authorization code and its nonce (a nonce is good for one code)."""
        with self.lock:
            self.codes[code.code] = code
            if code.nonce:
                self.nonces.add(code.nonce)

    def take_code(self, code: str, client_id: str) -> Code | None:
        """Use a code up, whatever follows: a code is good for one token request, right or wrong."""
        with self.lock:
            found = self.codes.pop(code, None)
        if found is None or found.client_id != client_id or found.expires_at <= time.time():
            return None
        return found

    def nonce_used(self, nonce: str) -> bool:
        """Tell whether an OpenID nonce was already used."""
        with self.lock:
            return nonce in self.nonces

    def save_token(self, access_token: str, token: Token) -> None:
        """Keep an issued access token."""
        with self.lock:
            self.tokens[access_token] = token

    def find_token(self, access_token: str) -> Token | None:
        """Return the grant of an access token this server issued, or None."""
        with self.lock:
            return self.tokens.get(access_token)

    def arm_drop(self, drop: Drop) -> None:
        """Drop the next request that matches (one request; a second arm replaces the first)."""
        with self.lock:
            self.drop = drop

    def take_drop(self, method: str, resource_type: str) -> bool:
        """Tell whether this request is the one to drop, disarming the drop if so."""
        with self.lock:
            if self.drop == Drop(method, resource_type):
                self.drop = None
                return True
        return False

    def record(self, entry: dict[str, Any]) -> None:
        """Remember a request the proxy saw, the latest MAX_RECORDS."""
        with self.lock:
            self.records.append(entry)
            del self.records[:-MAX_RECORDS]

    def seen(self) -> list[dict[str, Any]]:
        """Return the requests the proxy saw, oldest first."""
        with self.lock:
            return list(self.records)


def allowed_scope(scope: str | None) -> str:
    """Return the scopes this server grants of those asked: SMART's, in the order asked, others left out."""
    if not scope or len(scope) > MAX_SCOPE_LENGTH:
        return ""
    kept = [s for s in scope_to_list(scope)[:MAX_SCOPES] if s in OTHER_SCOPES or resource_permissions(s)]
    return str(list_to_scope(list(dict.fromkeys(kept))))


def resource_permissions(scope: str) -> tuple[str, str, str] | None:
    """Return (level, type, interactions) of a SMART resource scope, like ('patient', 'Condition', 'rs'), or None."""
    match = RESOURCE_SCOPE_RE.fullmatch(scope)
    if not match or not match.group(3):
        return None
    level, kind, permissions = match.group(1), match.group(2), match.group(3)
    return level, kind, V1_PERMISSIONS.get(permissions, permissions)


def access(scope: str, resource_type: str, interaction: str) -> str | None:
    """Return how a token's scopes allow an interaction on a type: 'user', 'patient' (bound to its patient), None."""
    levels = set()
    for granted in scope_to_list(scope) or []:
        parsed = resource_permissions(granted)
        if parsed and parsed[1] in ("*", resource_type) and interaction in parsed[2]:
            levels.add(parsed[0])
    if "user" in levels:
        return "user"
    return "patient" if "patient" in levels else None


def refers_to(value: object, patient: str, iss: str) -> bool:
    """Tell whether a reference or search value names the patient: rosa, Patient/rosa or <iss>/Patient/rosa."""
    return isinstance(value, str) and value in (patient, f"Patient/{patient}", f"{iss}/Patient/{patient}")


def names_patient(resource: Mapping[str, Any], resource_type: str, patient: str, iss: str) -> bool:
    """Tell whether a resource is in the patient's compartment as this server judges it (module docstring)."""
    if resource_type in OUTSIDE_COMPARTMENT:
        return True
    if resource_type == "Patient":
        return resource.get("id") == patient
    references = [resource.get(name) for name in ("subject", "patient")]
    named = [r.get("reference") for r in references if isinstance(r, dict)]
    return bool(named) and all(refers_to(r, patient, iss) for r in named)


def search_names_patient(args: Any, resource_type: str, patient: str, iss: str) -> bool:
    """Tell whether a search's parameters restrict it to the patient (what a real server would answer)."""
    if resource_type in OUTSIDE_COMPARTMENT:
        return True
    names = ("_id",) if resource_type == "Patient" else ("patient", "subject", "subject:Patient")
    values = [v for name in names for value in args.getlist(name) for v in value.split(",")]
    return bool(values) and all(refers_to(v, patient, iss) for v in values)


def outcome(status: int, code: str, text: str) -> Response:
    """Return a FHIR OperationOutcome answer."""
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return Response(json.dumps(body), status=status, mimetype="application/fhir+json")


class S256Required(CodeChallenge):  # type: ignore[misc]
    """PKCE as SMART 2 asks it: a challenge on every authorization request, S256 only."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: grants.AuthorizationCodeGrant, redirect_uri: str | None) -> None:
        """Refuse an authorization request without an S256 challenge, then let Authlib check the challenge."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class SmartLaunchCheck:
    """An extension of the code grant: an EHR launch's launch, aud, scope and state, checked before a code is made."""

    def __init__(self, ehr: EhrState) -> None:
        self.ehr = ehr

    def __call__(self, grant: grants.AuthorizationCodeGrant) -> None:
        """Hook the check into Authlib's validation, whose errors go back to the redirect URI with the state."""
        grant.register_hook("after_validate_authorization_request_payload", self.check)

    def check(self, grant: grants.AuthorizationCodeGrant, _result: object) -> None:
        """Raise an OAuth error for a launch this EHR did not issue (or one used), a wrong aud, no scope or state."""
        data = grant.request.payload.data
        if not data.get("state"):
            raise InvalidRequestError("Missing 'state'.")
        if not grant.request.payload.scope:
            raise InvalidScopeError("Missing 'scope'.")
        if data.get("aud") != self.ehr.iss:
            raise InvalidRequestError("'aud' is not this EHR's FHIR base URL.")
        if self.ehr.peek_launch(str(data.get("launch") or "")) is None:
            raise InvalidRequestError("Unknown, expired or used 'launch'.")


class SmartOpenIDCode(OpenIDCode):  # type: ignore[misc]
    """OpenID Connect for the code grant: an id token signed with the key made at start, SMART's fhirUser in it."""

    def __init__(self, ehr: EhrState) -> None:
        super().__init__(require_nonce=False)
        self.ehr = ehr

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        """Tell whether a nonce was used (a replayed one is refused)."""
        return self.ehr.nonce_used(nonce)

    def resolve_client_private_key(self, client: PublicClient) -> RSAKey:
        """Return the signing key."""
        return self.ehr.key

    def get_client_claims(self, client: PublicClient) -> dict[str, Any]:
        """Return the issuer (the FHIR base, as SMART's sso-openid-connect says) and the audience (the client)."""
        return {"iss": self.ehr.iss, "aud": client.get_client_id()}

    def get_encode_header(self, client: PublicClient) -> dict[str, str]:
        """Return the JWS header, naming the key so a client picks it from /jwks."""
        return {"alg": "RS256", "kid": str(self.ehr.key.kid), "typ": "JWT"}

    def generate_user_info(self, user: Launch, scope: str) -> dict[str, str]:
        """Return the user's claims: sub always, fhirUser when the scope asked for it."""
        claims = {"sub": user.sub}
        if "fhirUser" in (scope_to_list(scope) or []):
            claims["fhirUser"] = user.user
        return claims


class SmartCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization code grant for a public client, with the launch context kept from code to token."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none"]

    @property
    def ehr(self) -> EhrState:
        """Return the server's memory."""
        ehr: EhrState = self.server.ehr
        return ehr

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Use the launch up and keep the code with its context; a launch used meanwhile is an error, not a code."""
        launch: Launch = request.user
        if self.ehr.take_launch(launch.launch) is None:
            raise InvalidRequestError("Unknown, expired or used 'launch'.", redirect_uri=self.redirect_uri)
        data = request.payload.data
        self.ehr.save_code(
            Code(
                code=code,
                client_id=request.client.get_client_id(),
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                user=launch,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                nonce=data.get("nonce"),
                auth_time=int(time.time()),
                expires_at=time.time() + CODE_SECONDS,
            )
        )

    def query_authorization_code(self, code: str, client: PublicClient) -> Code | None:
        """Return the code's grant, used up."""
        return self.ehr.take_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Nothing to do: query_authorization_code already used the code up."""

    def authenticate_user(self, authorization_code: Code) -> Launch:
        """Return the launch the code was issued for: its user is the one signed in."""
        return authorization_code.user

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Add SMART's launch context to Authlib's token response: patient, encounter, need_patient_banner."""
        status, body, headers = super().create_token_response()
        launch: Launch = self.request.user
        if "launch" in (scope_to_list(body.get("scope")) or []):
            body["patient"] = launch.patient
            if launch.encounter:
                body["encounter"] = launch.encounter
        body["need_patient_banner"] = False
        return status, body, headers


class EhrAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask authorization server, holding the EHR's memory for the grant and its extensions."""

    def __init__(self, app: Flask, ehr: EhrState) -> None:
        self.ehr = ehr
        super().__init__(app, query_client=self.find_client, save_token=self.keep_token)

    def find_client(self, client_id: str) -> PublicClient | None:
        """Return the registered client by id, or None."""
        return self.ehr.client if client_id == self.ehr.client.client_id else None

    def keep_token(self, token: Mapping[str, Any], oauth_request: Any) -> None:
        """Keep an issued token with its launch."""
        grant = Token(
            client_id=oauth_request.client.get_client_id(),
            scope=str(token.get("scope") or ""),
            user=oauth_request.user,
            issued_at=time.time(),
            expires_in=int(token["expires_in"]),
        )
        self.ehr.save_token(str(token["access_token"]), grant)


class IssuedTokens(BearerTokenValidator):  # type: ignore[misc]
    """Bearer tokens are those this server issued (Authlib checks expiry)."""

    def __init__(self, ehr: EhrState) -> None:
        super().__init__(realm="ehr")
        self.ehr = ehr

    def authenticate_token(self, token_string: str) -> Token | None:
        """Return the grant of a token string, or None."""
        return self.ehr.find_token(token_string)


class DropConnection(ConnectionResetError):
    """Raised past Flask to the server's handler: answer nothing and reset the connection."""


DROP_KEY = "ehr.drop"


def dropping(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap a WSGI app: a request the view marked is answered by a reset, after the view has done its work."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = app(environ, start_response)
        if environ.get(DROP_KEY):
            close = getattr(answer, "close", None)
            if close:
                close()
            # Nothing is written yet (werkzeug writes when the iterable is read): the handler gets this instead.
            raise DropConnection
        return answer

    return wsgi


class EhrRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, logging without query strings and turning DropConnection into a TCP reset."""

    # A client that stops sending mid-request frees its thread after this.
    timeout = 30

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method, path without query, status."""
        LOG.info("%s %s %s", self.command, printable(urlsplit(self.path).path), code)

    def connection_dropped(self, error: BaseException, environ: dict[str, Any] | None = None) -> None:
        """Reset the connection for a DropConnection (a client sees ECONNRESET, not an answer or a clean close)."""
        if not isinstance(error, DropConnection):
            return
        LOG.info("%s %s dropped", self.command, printable(urlsplit(self.path).path))
        # Linger 0 makes close send RST; the socket really closes when the handler lets go of its read file,
        # in finish(), before socketserver's shutdown would send a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


def bearer(protector: ResourceProtector) -> Token:
    """Return the grant of the request's bearer token, or abort with Authlib's 401 (and its WWW-Authenticate)."""
    try:
        granted: Token = protector.acquire_token()
    except OAuth2Error as error:
        protector.raise_error_response(error)
        raise  # raise_error_response always raises; this keeps the type checker informed
    return granted


def printable(text: str) -> str:
    """Return text safe for one log line, at most 200 characters."""
    return "".join(c if c.isprintable() else "?" for c in text[:200])


def parse_target(method: str, path: str) -> tuple[str, str | None, str] | str:
    """Return (type, id, interaction) of a proxied request, or the reason it is not one this proxy forwards."""
    parts = path.split("/")
    if len(parts) > 2 or not TYPE_RE.fullmatch(parts[0]) or (len(parts) == 2 and not ID_RE.fullmatch(parts[1])):
        return "Only [base]/<Type> and [base]/<Type>/<id> are served here."
    resource_id = parts[1] if len(parts) == 2 else None
    interaction = {("GET", False): "s", ("GET", True): "r", ("POST", False): "c", ("PUT", True): "u"}.get(
        (method, resource_id is not None)
    )
    if interaction is None:
        return f"{method} is not supported on this path."
    return parts[0], resource_id, interaction


def create_app(settings: Settings) -> Flask:
    """Return the EHR's front door as a Flask app (its memory at app.extensions['ehr'])."""
    app = Flask("ehr")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": TOKEN_SECONDS}
    ehr = EhrState(settings)
    app.extensions["ehr"] = ehr
    server = EhrAuthorizationServer(app, ehr)
    server.register_grant(SmartCodeGrant, [S256Required(required=True), SmartOpenIDCode(ehr), SmartLaunchCheck(ehr)])
    protector = ResourceProtector()
    protector.register_token_validator(IssuedTokens(ehr))
    upstream = httpx.Client(base_url=settings.fhir, timeout=UPSTREAM_TIMEOUT)
    app.wsgi_app = dropping(app.wsgi_app)  # type: ignore[method-assign]

    @app.get("/fhir/.well-known/smart-configuration")
    def smart_configuration() -> Response:
        return jsonify(
            issuer=settings.iss,
            jwks_uri=f"{settings.origin}/jwks",
            authorization_endpoint=f"{settings.origin}/authorize",
            token_endpoint=f"{settings.origin}/token",
            grant_types_supported=["authorization_code"],
            token_endpoint_auth_methods_supported=["none"],
            response_types_supported=["code"],
            scopes_supported=SUPPORTED_SCOPES,
            capabilities=CAPABILITIES,
            code_challenge_methods_supported=["S256"],
        )

    @app.get("/fhir/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        return jsonify(
            issuer=settings.iss,
            jwks_uri=f"{settings.origin}/jwks",
            authorization_endpoint=f"{settings.origin}/authorize",
            token_endpoint=f"{settings.origin}/token",
            response_types_supported=["code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            code_challenge_methods_supported=["S256"],
        )

    @app.get("/jwks")
    def jwks() -> Response:
        return jsonify(KeySet([ehr.key]).as_dict(private=False))

    @app.get("/authorize")
    def authorize() -> Response:
        user = ehr.peek_launch(request.args.get("launch", ""))
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            answer: Response = server.handle_error_response(None, error)
            return answer
        # The clinician is signed in to the EHR and launched the app from it: approved without a consent screen.
        approved: Response = server.create_authorization_response(grant=grant, grant_user=user)
        return approved

    @app.post("/token")
    def token() -> Response:
        answer: Response = server.create_token_response()
        return answer

    @app.route("/fhir/<path:path>", methods=["GET", "POST", "PUT"])
    def fhir(path: str) -> Response:
        granted = bearer(protector)
        target = parse_target(request.method, path)
        if isinstance(target, str):
            return outcome(400 if request.method == "GET" else 405, "not-supported", target)
        resource_type, _id, interaction = target
        level = access(granted.get_scope(), resource_type, interaction)
        if level is None:
            return outcome(403, "forbidden", f"No scope allows this on {resource_type}.")
        patient = granted.user.patient if level == "patient" else None
        body = request.get_data() if request.method in ("POST", "PUT") else None
        if body is not None:
            try:
                resource = json.loads(body)
            except ValueError:
                return outcome(400, "invalid", "The body is not JSON.")
            if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
                return outcome(400, "invalid", f"The body is not a {resource_type}.")
            if patient and not names_patient(resource, resource_type, patient, settings.iss):
                return outcome(403, "forbidden", "A patient-scoped token writes only its patient's resources.")
        if patient and interaction == "s" and not search_names_patient(request.args, resource_type, patient, ehr.iss):
            return outcome(403, "forbidden", "A patient-scoped search must name its patient.")
        drop = ehr.take_drop(request.method, resource_type)
        url = "/" + path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
        headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
        try:
            answer = upstream.request(request.method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return outcome(502, "transient", f"The FHIR server did not answer ({type(exc).__name__}).")
        if patient and interaction == "r" and answer.status_code == 200:
            try:
                read = answer.json()
            except ValueError:
                read = None
            if not isinstance(read, dict) or not names_patient(read, resource_type, patient, settings.iss):
                return outcome(403, "forbidden", "A patient-scoped token reads only its patient's resources.")
        returned = {name: answer.headers[name] for name in RETURNED_HEADERS if name in answer.headers}
        if drop:
            request.environ[DROP_KEY] = True
            g.dropped = True
        return Response(answer.content, status=answer.status_code, headers=returned)

    @app.after_request
    def record(answer: Response) -> Response:
        if request.path.startswith("/fhir/") and not request.path.startswith("/fhir/.well-known/"):
            ehr.record(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.query_string.decode("latin-1"),
                    "status": answer.status_code,
                    "dropped": bool(g.get("dropped")),
                    "authorization": "Authorization" in request.headers,
                    "if_none_exist": request.headers.get("If-None-Exist"),
                    "headers": sorted({name.lower() for name, _value in request.headers.items()}),
                }
            )
        return answer

    @app.before_request
    def loopback_controls() -> Response | None:
        if request.path.startswith("/_test/") and request.remote_addr not in LOOPBACK:
            return outcome(403, "forbidden", "Test controls answer loopback only.")
        return None

    @app.post("/_test/launch")
    def new_launch() -> Response:
        asked = request.get_json(silent=True)
        problem = launch_problem(asked, settings)
        if problem:
            return outcome(400, "invalid", problem)
        assert isinstance(asked, dict)
        return jsonify(launch=ehr.add_launch(asked["patient"], asked.get("encounter"), asked["user"]))

    @app.post("/_test/drop-next")
    def drop_next() -> Response:
        asked = request.get_json(silent=True)
        if (
            not isinstance(asked, dict)
            or asked.get("method") not in ("GET", "POST", "PUT")
            or not TYPE_RE.fullmatch(str(asked.get("type")))
        ):
            return outcome(400, "invalid", 'Send {"method": "POST", "type": "DocumentReference"}.')
        ehr.arm_drop(Drop(asked["method"], asked["type"]))
        return jsonify(armed={"method": asked["method"], "type": asked["type"]})

    @app.get("/_test/requests")
    def requests_seen() -> Response:
        return jsonify(ehr.seen())

    return app


def launch_problem(asked: object, settings: Settings) -> str | None:
    """Return what is wrong with a launch request's JSON, or None; names must be seeded (a typo fails here)."""
    if not isinstance(asked, dict):
        return 'Send {"patient": "rosa", "encounter": "visit-1", "user": "Practitioner/counselor-1"}.'
    patient, encounter, user = asked.get("patient"), asked.get("encounter"), asked.get("user")
    if not isinstance(patient, str) or not ID_RE.fullmatch(patient):
        return "'patient' must be a resource id."
    if encounter is not None and (not isinstance(encounter, str) or not ID_RE.fullmatch(encounter)):
        return "'encounter' must be a resource id or null."
    relative = user[len(settings.iss) + 1 :] if isinstance(user, str) and user.startswith(settings.iss + "/") else user
    reference = REFERENCE_RE.fullmatch(relative) if isinstance(relative, str) else None
    if reference is None:
        return "'user' must be a reference like Practitioner/counselor-1, relative or under the FHIR base."
    wanted = [("Patient", patient), (reference.group(1), reference.group(2))]
    wanted += [("Encounter", encounter)] if encounter else []
    if settings.seed_dir is not None:
        for kind, name in wanted:
            if not (settings.seed_dir / kind / f"{name}.json").is_file():
                return f"No seeded {kind} with that id."
    return None


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until terminated."""
    parser = argparse.ArgumentParser(description="A test EHR: SMART on Authlib before fhirsnake.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fhir", required=True, help="fhirsnake's base URL")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--seed-dir", type=Path, help="fhirsnake's resources folder (<Type>/<id>.json)")
    options = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="ehr %(levelname)s %(message)s")
    # Authlib logs grants and tokens at debug level, httpx every upstream URL with its query at info level:
    # only their warnings come through.
    for noisy in ("authlib", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = Settings(
        options.port, options.fhir.rstrip("/"), options.client_id, options.redirect_uri, options.seed_dir
    )
    server = make_server(HOST, settings.port, create_app(settings), threaded=True, request_handler=EhrRequestHandler)
    LOG.info("serving %s", settings.iss)
    server.serve_forever()


if __name__ == "__main__":
    main()
