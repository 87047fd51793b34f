"""The EHR's doors into the page: the SMART launch, its return, and "Save to the chart" after a PDF is made."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..languages import match_language
from ..models import BASE_LANGUAGE
from .chart import TEACH_BACK, ChartContext, save_to_chart
from .smart import (
    DEFAULT_TOKEN_SECONDS,
    MAX_SESSION_SECONDS,
    PENDING_SECONDS,
    Endpoints,
    Launched,
    LaunchError,
    LaunchStore,
    Pending,
    SmartSettings,
    authorization_url,
    browser_binding,
    chart_language,
    chart_sections,
    discover,
    exchange_code,
    get_json,
    id_token_claims,
    read_chart,
    reference,
    resource_id,
)
from .state import Snapshot, section_choices

if TYPE_CHECKING:
    from .app import Handlers

# The launch's own cookie rides the EHR's redirect back (a cross-site navigation), so it is Lax; it holds a
# random value whose hash binds the authorization to this browser, and lives as long as the authorization may.
LAUNCH_COOKIE = "handouts_launch"
# The launched session. Lax, so the next launch from the EHR (a cross-site navigation) can end this one
# first; every POST still needs the page's Strict cookie and form token.
SMART_COOKIE = "handouts_smart"
# The EHR's SMART settings are read again after this long: a flood of launches does not become a flood of reads.
ENDPOINTS_SECONDS = 300.0
# All the EHR's answers in a launch together: one that trickles bytes cannot hold the request longer.
LAUNCH_SECONDS = 60.0
MAX_LAUNCH_CHARS = 1024
NOT_LAUNCHED = "This page was not opened from a patient's chart, or that visit has ended. Open it again from the chart."


@dataclass(frozen=True)
class Prefill:
    """The form as the chart fills it, and where each choice came from."""

    language: str
    language_reason: str
    sections: tuple[str, ...]
    # Section -> the chart's findings that ticked it, in words ("problem Opioid dependence (F11.20)").
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    first_name: str = ""

    @property
    def findings(self) -> tuple[str, ...]:
        """Return every finding that ticked a section, once each, in the order first met."""
        return tuple(dict.fromkeys(why for found in self.reasons.values() for why in found))

    def __repr__(self) -> str:
        return "Prefill(<redacted>)"


class LaunchDoor:
    """SMART EHR launch, the way back from the EHR, and the write-back of a made handout."""

    def __init__(
        self,
        handlers: Handlers,
        settings: SmartSettings,
        *,
        client: Callable[[], httpx.AsyncClient] = httpx.AsyncClient,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.handlers = handlers
        self.settings = settings
        self.store = LaunchStore()
        self.client = client
        self.now = now
        self.endpoints: dict[str, tuple[float, Endpoints]] = {}

    def launched(self, request: Request) -> tuple[str, Launched] | None:
        """Return this browser's launched session and its id, or None."""
        session = request.cookies.get(SMART_COOKIE, "")
        found = self.store.get(session)
        return (session, found) if found is not None else None

    def message(self, title: str, text: str, status: int, link: str = "/") -> Response:
        """Return a short page that says what happened, in words for the counselor."""
        html = self.handlers.env.get_template("message.html.j2").render(title=title, message=text, link=link)
        return HTMLResponse(html, status)

    async def launch(self, request: Request) -> Response:
        """Start an EHR launch: check the EHR is ours, read its settings, send the browser to authorize."""
        if (refused := self.handlers.refusal(request)) is not None:
            return refused
        iss = request.query_params.get("iss", "")[:MAX_LAUNCH_CHARS]
        launch = request.query_params.get("launch", "")
        server = self.settings.allowed(iss)
        if server is None:
            # The address an EHR sent is no secret; it tells IT which one to register.
            shown = "".join(c for c in iss[:200] if c.isprintable()) or "(none)"
            text = f"This page is not registered with the EHR at {shown}. Ask IT to add it with --smart-fhir."
            return self.message("Not opened from a known EHR", text, 403)
        if not launch or len(launch) > MAX_LAUNCH_CHARS:
            return self.message(
                "Not opened from a chart", "The EHR sent no launch context. Open the page from the chart.", 400
            )
        try:
            endpoints = await self._endpoints(server)
        except LaunchError as exc:
            return self.message("The EHR could not be reached", f"{exc}. Nothing was read from the chart.", 502)
        cookie = secrets.token_urlsafe(32)
        pending = Pending(
            server,
            endpoints,
            verifier=generate_token(64),
            browser=browser_binding(cookie),
            nonce=generate_token(32),
            expires=self.store.clock() + PENDING_SECONDS,
            address=request.client.host if request.client else "",
        )
        state = self.store.begin(pending)
        response = RedirectResponse(authorization_url(self.settings, pending, state, launch), 303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            LAUNCH_COOKIE, cookie, max_age=int(PENDING_SECONDS), httponly=True, samesite="lax", secure=secure, path="/"
        )
        return response

    async def _endpoints(self, server: str) -> Endpoints:
        """Return an EHR's SMART settings, read at most once in a few minutes."""
        cached = self.endpoints.get(server)
        if cached is not None and cached[0] > self.store.clock():
            return cached[1]
        try:
            async with asyncio.timeout(LAUNCH_SECONDS), self.client() as client:
                endpoints = await discover(client, server)
        except TimeoutError:
            raise LaunchError(
                f"Reading the EHR's SMART settings: no answer within {LAUNCH_SECONDS:g} seconds"
            ) from None
        # Only registered servers are read, so this holds a handful of entries at most.
        self.endpoints[server] = (self.store.clock() + ENDPOINTS_SECONDS, endpoints)
        return endpoints

    async def callback(self, request: Request) -> Response:
        """Take the EHR's answer: the code for a token, who is signed in, the patient's chart; then the form."""
        if (refused := self.handlers.refusal(request)) is not None:
            return refused
        params = request.query_params
        if "error" in params:
            error = "".join(c for c in params.get("error", "")[:64] if c.isalnum() or c == "_")
            return self.message("The EHR did not let the page open", f"The EHR answered: {error or 'refused'}.", 403)
        pending = self.store.take(
            params.get("state", "")[:128], browser_binding(request.cookies.get(LAUNCH_COOKIE, ""))
        )
        if pending is None:
            text = "This sign-in had expired or began in another browser. Open the page again from the chart."
            return self.message("Open the page from the chart again", text, 400)
        # A new chart in this browser ends the one open before, with its token and its PDFs' link to that chart.
        self.end(request.cookies.get(SMART_COOKIE))
        try:
            async with asyncio.timeout(LAUNCH_SECONDS):
                launched = await self._launched(pending, params.get("code", "")[:MAX_LAUNCH_CHARS])
        except LaunchError as exc:
            return self.message("The page could not open this chart", f"{exc}. Nothing was kept.", 502)
        except TimeoutError:
            text = f"The EHR took longer than {LAUNCH_SECONDS:g} seconds to answer. Nothing was kept."
            return self.message("The page could not open this chart", text, 504)
        session = self.store.start(launched)
        # Back on this site by the page's own navigation, so the Strict cookies go with it.
        html = self.handlers.env.get_template("launched.html.j2").render()
        response = HTMLResponse(html)
        secure = request.url.scheme == "https"
        response.set_cookie(SMART_COOKIE, session, httponly=True, samesite="lax", secure=secure, path="/")
        response.delete_cookie(LAUNCH_COOKIE, path="/")
        return response

    async def _launched(self, pending: Pending, code: str) -> Launched:
        settings = self.settings
        async with self.client() as client:
            answer = await exchange_code(client, settings, pending, code)
            token = answer["access_token"]
            patient = resource_id(answer.get("patient"))
            if not patient:
                raise LaunchError("Opening the chart: the EHR did not say which patient is open")
            user, name = "", ""
            id_token = answer.get("id_token")
            if isinstance(id_token, str) and pending.endpoints.jwks:
                keys = await get_json(client, pending.endpoints.jwks, what="Checking who you are")
                claims = id_token_claims(
                    id_token,
                    keys,
                    iss=pending.endpoints.issuer or pending.iss,
                    client_id=settings.client_id,
                    nonce=pending.nonce,
                    now=lambda: int(self.now()),
                )
                fhir_user = claims.get("fhirUser")
                user = reference(fhir_user, pending.iss) if isinstance(fhir_user, str) else ""
                name = await self._user_name(client, pending.iss, token, user)
            facts = await read_chart(client, pending.iss, token, patient)
        lifetime = answer.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else DEFAULT_TOKEN_SECONDS
        return Launched(
            iss=pending.iss,
            access_token=token,
            expires=self.store.clock() + min(seconds, MAX_SESSION_SECONDS),
            patient=patient,
            encounter=resource_id(answer.get("encounter")) or None,
            user=user,
            user_name=name,
            facts=facts,
        )

    async def _user_name(self, client: httpx.AsyncClient, iss: str, token: str, user: str) -> str:
        """Return the signed-in counselor's name from their FHIR record, or "" when it cannot be read."""
        kind, _, ident = user.partition("/")
        if kind not in ("Practitioner", "PractitionerRole", "Person", "RelatedPerson") or not resource_id(ident):
            return ""
        try:
            record = await get_json(client, f"{iss}/{kind}/{ident}", token=token, what="Reading your name")
        except LaunchError:
            return ""  # the scopes may not reach it: the page then says who by reference
        for name in record.get("name") or []:
            if isinstance(name, dict):
                if isinstance(name.get("text"), str) and name["text"].strip():
                    return str(name["text"]).strip()[:80]
                given = " ".join(g for g in name.get("given") or [] if isinstance(g, str))
                family = name.get("family") if isinstance(name.get("family"), str) else ""
                if (whole := f"{given} {family}".strip()) != "":
                    return whole[:80]
        return ""

    def prefill(self, launched: Launched, snapshot: Snapshot, today: dt.date) -> Prefill:
        """Return the form as this patient's chart fills it, with where each choice came from."""
        from .app import language_name

        language, reason = chart_language(
            launched.facts, snapshot.languages, lambda code, have: match_language(code, tuple(have)), language_name
        )
        choices = section_choices(snapshot, language, today, release=self.handlers.config.release)
        english = snapshot.inputs.sections.get(BASE_LANGUAGE, {})
        reasons = chart_sections(launched.facts, english, [c.id for c in choices if c.offered])
        return Prefill(language, reason, tuple(reasons), reasons, launched.facts.first_name)

    async def save(self, request: Request) -> Response:
        """Save a made PDF to the launched patient's chart: the document, and a Procedure that says it was taught."""
        handlers = self.handlers
        if (refused := handlers.refusal(request)) is not None:
            return refused
        from .app import CSRF_COOKIE, _form, _in_thread

        form = await _form(request)
        if form is None:
            return self.message("Not saved", "Send the form as the page does.", 415)
        fields, _sections = form
        if not handlers.csrf.valid(request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
            return self.message("Not saved", "This form had expired, so nothing was saved. Make the PDF again.", 403)
        found = self.launched(request)
        if found is None:
            return self.message("Not saved", NOT_LAUNCHED, 401)
        session, launched = found
        held = handlers.shelf.get(handlers.browser_id(request), fields.get("pdf", "")[:64])
        if held is None:
            return self.message(
                "Not saved", "That PDF is no longer held (ten minutes have passed). Make it again.", 410
            )
        if held.chart is None or not secrets.compare_digest(held.launch, session):
            # Made while another chart was open in this browser: it is that patient's, never this one's.
            text = "That PDF was made for the chart open before; the page now shows another chart. Make it again."
            return self.message("Not saved", text, 409)
        outcome = fields.get("outcome", "")
        education = dataclasses.replace(held.chart, outcome=outcome if outcome in TEACH_BACK else "")
        context = ChartContext(launched.iss, launched.access_token, launched.patient, launched.encounter, launched.user)
        replaces = self.store.last_saved(session)
        saved = await _in_thread(functools.partial(save_to_chart, context, education, replaces=replaces))
        if saved.document:
            self.store.remember_saved(session, saved.document)
        snapshot, rejected = await _in_thread(handlers.state.current)
        result = {**(held.result or {}), "saved": saved, "outcome": education.outcome}
        return handlers.page(
            request, snapshot, rejected, values=held.values, result=result, status=200 if saved.ok else 502
        )

    def sign_out(self, request: Request) -> None:
        """Forget this browser's launch: its token and everything read from the chart."""
        self.end(request.cookies.get(SMART_COOKIE))

    def end(self, session: str | None) -> None:
        """Forget a launched session, and unlink the PDFs made in it from any chart."""
        if session:
            self.store.end(session)
            self.handlers.shelf.forget_launch(session)

    def tag(self, request: Request) -> str:
        """Return what the page's form carries to say which chart it was filled for ("" for none)."""
        found = self.launched(request)
        return chart_tag(found[0]) if found is not None else ""


def chart_tag(session: str) -> str:
    """Return a form's mark of the launched session it belongs to; the session id itself stays in its cookie."""
    return hashlib.sha256(b"chart:" + session.encode()).hexdigest()[:32]
