"""The counselor's web page and the Infobutton door, as a Starlette app over the warm render workers."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import dataclasses
import datetime as dt
import functools
import ipaddress
import logging
import math
import secrets
import socket
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..compose import MAX_TAILORING_CHARS, HandoutSpec, compose_spec
from ..errors import HandoutError, Problem
from ..languages import language as language_row
from ..languages import match_language
from ..layouts import LAYOUTS, PATIENT_LAYOUTS
from ..models import BASE_LANGUAGE, Brand, Handout
from ..output.html import strict_environment
from ..pool import HealingPool, WorkerStopped
from ..project import find_kit, tool_data_dir
from ..render_service import Executor, RenderJob, RenderOutcome
from .chart import TEACH_BACK, Education
from .form import LABELS, FormValues, check_form, problem_field, read_values
from .launch import NOT_LAUNCHED, SMART_COOKIE, LaunchDoor
from .security import Accounts, Csrf
from .smart import SmartSettings
from .state import DEFAULT_TITLE, ContentState, SectionChoice, Snapshot, offered_brands, section_choices

HERE = Path(__file__).resolve().parent
LOG = logging.getLogger("handouts.serve")
ACCESS_LOG = logging.getLogger("handouts.serve.access")

# A form with every field full is under 30 KiB; a body past this is refused before it is read.
MAX_BODY_BYTES = 64 * 1024
# A CDS Hooks call carries the patient and their active conditions (prefetch): more than a form, still bounded.
MAX_CDS_BODY_BYTES = 1024 * 1024
CDS_CALLS = ("/cds-services/handouts-patient-view", "/cds-services/handouts-order-select")
# Any of these says a proxy passed the request on (nginx, Apache, Caddy, Traefik, HAProxy set one or more).
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "via")
SERVER_ERROR = "Something went wrong on the server. Nothing was saved."
# A made PDF is held for the browser that asked, in memory only, this long: enough to view and print it.
PDF_SECONDS = 600.0
# At most this many made PDFs in memory (a few hundred KiB each), and this many for one browser: a
# browser making many evicts its own oldest, never another's before its ten minutes.
MAX_HELD_PDFS = 256
MAX_PDFS_PER_BROWSER = 16
MAX_GENERIC_PDFS = 64
CSRF_COOKIE = "handouts_browser"
SESSION_COOKIE = "handouts_session"
# No inline script or style anywhere; the PDF is framed by this page only.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; script-src 'self'; "
    "form-action 'self'; "
    "frame-src 'self'; frame-ancestors 'self'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
OTHER_CHART = (
    "This form was filled for another chart than the one now open in this browser, so nothing was made. "
    "Here is the chart opened last: check it and make the PDF again."
)
EXPIRED = "This form had expired, so nothing was made. Your entries are below; press Make PDF again."
SIGNED_OUT = "You were signed out (the server may have restarted), so nothing was made. Sign in to get your entries."
SIGNED_IN_AGAIN = "You are signed in again. Nothing was made yet: your entries are below; press Make PDF again."
# What the note's hint says for each layout: the limit is one, the room to print it is not.
NOTE_HINTS = {
    name: f"Up to {MAX_TAILORING_CHARS} characters."
    + (" The brochure's panels are small: a long note may mean fewer sections fit." if LAYOUTS[name].briefs else "")
    for name in PATIENT_LAYOUTS
}
LAYOUT_NAMES = {
    "letter": "Letter (US)",
    "a4": "A4",
    "large-print": "Large print",
    "trifold": "Tri-fold brochure",
}


@dataclass(frozen=True)
class ServeConfig:
    """How the server was started: which project, what it may offer, and who may use it."""

    root: Path
    release: bool = False
    accounts: Accounts | None = None
    # Host headers a browser may send: on loopback without passwords, only this computer's names,
    # so a web page that points its own domain at 127.0.0.1 (DNS rebinding) is refused.
    allowed_hosts: tuple[str, ...] = ()
    time_limit: float = 120.0
    # Also accept a Host that is one of this computer's own IP addresses (when listening on all of them).
    local_addresses: bool = False
    port: int = 8750
    # The name links are made with (the Infobutton feed), instead of the request's Host.
    public_name: str = ""
    # SMART EHR launch: how the EHRs registered this page; with launch_only, only people they signed in may use it.
    smart: SmartSettings | None = None
    launch_only: bool = False
    # CDS Hooks: the EHRs allowed to call, as (iss, JWKS address).
    cds_clients: tuple[tuple[str, str], ...] = ()


class Guard:
    """Every request: a capped body, security headers, a log line of method, path and status, and no traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        headers = dict(scope.get("headers") or [])
        try:
            length = int(headers.get(b"content-length", b"0"))
        except ValueError:
            length = -1
        # Only the two services' own addresses take the larger body; anything else is capped as a form is.
        limit = MAX_CDS_BODY_BYTES if str(scope.get("path", "")) in CDS_CALLS else MAX_BODY_BYTES
        if length < 0 or length > limit:
            await _plain(send, 413, "Too much data for one handout.")
            self._log(scope, 413)
            return
        # The whole body is read here, at most the cap, before any route sees it: a chunked body
        # with no Content-Length is stopped at the cap as well, with the same answer.
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the browser went away; nothing to answer
            body += message.get("body", b"")
            if len(body) > limit:
                await _plain(send, 413, "Too much data for one handout.")
                self._log(scope, 413)
                return
            more = message.get("more_body", False)
        read = False

        async def replay() -> Message:
            nonlocal read
            if read:
                return await receive()
            read = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        async def guarded_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in dict(SECURITY_HEADERS)]
                message = {**message, "headers": kept + SECURITY_HEADERS}
            await send(message)

        try:
            await self.app(scope, replay, guarded_send)
        except Exception as exc:
            # The type only: a message may quote what was sent, and that may be a patient's.
            LOG.error("internal error: %s", type(exc).__name__)
            if not status:
                status = 500
                await _plain(send, 500, SERVER_ERROR)
        self._log(scope, status)

    @staticmethod
    def _log(scope: Scope, status: int) -> None:
        # Method, path and status only: never the query, a header, or a PDF's token.
        path = str(scope.get("path", ""))
        if path.startswith("/pdf/"):
            path = "/pdf/…"
        # A decoded path may hold a line break: shown escaped, so no request can write a log line of its own.
        shown = "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in path[:200])
        ACCESS_LOG.info("%s %s %d", scope.get("method", ""), shown, status)


async def _plain(send: Send, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})


@dataclass
class HeldPdf:
    """A made PDF waiting for its browser to show it."""

    owner: str
    data: bytes
    name: str
    expires: float
    # What the page shows again after "Save to the chart", and what that saves: in memory, for the same minutes.
    values: FormValues | None = None
    result: dict[str, Any] | None = None
    chart: Education | None = None
    launch: str = ""  # the launched session it was made in: saved to that chart or none


class PdfShelf:
    """Made PDFs in memory, each readable only by the browser that made it, for a few minutes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.items: OrderedDict[str, HeldPdf] = OrderedDict()
        self.lock = threading.Lock()
        self.clock = clock

    def put(
        self,
        owner: str,
        data: bytes,
        name: str,
        *,
        values: FormValues | None = None,
        chart: Education | None = None,
        launch: str = "",
    ) -> str:
        """Hold a PDF for a browser and return its unguessable token."""
        token = secrets.token_urlsafe(32)
        with self.lock:
            self._drop_old()
            self.items[token] = HeldPdf(owner, data, name, self.clock() + PDF_SECONDS, values, None, chart, launch)
            while len(self.items) > MAX_HELD_PDFS or self._count(owner) > MAX_PDFS_PER_BROWSER:
                # The oldest PDF of the browser holding the most: this one's own while over its share.
                held = Counter(h.owner for h in self.items.values())
                greedy = owner if held[owner] > MAX_PDFS_PER_BROWSER else held.most_common(1)[0][0]
                del self.items[next(t for t, h in self.items.items() if h.owner == greedy)]
        return token

    def forget_launch(self, launch: str) -> None:
        """Unlink every PDF made in a launched session from its chart (the PDF itself stays its minutes)."""
        with self.lock:
            for held in self.items.values():
                if held.launch and secrets.compare_digest(held.launch, launch):
                    held.chart, held.launch = None, ""
                    if held.result is not None:
                        held.result = {**held.result, "chart": False}

    def keep_result(self, owner: str, token: str, result: dict[str, Any]) -> None:
        """Keep what the page said about a PDF, to say it again after "Save to the chart"."""
        with self.lock:
            held = self.items.get(token)
            if held is not None and secrets.compare_digest(held.owner, owner):
                held.result = result

    def _count(self, owner: str) -> int:
        return sum(1 for held in self.items.values() if held.owner == owner)

    def get(self, owner: str, token: str) -> HeldPdf | None:
        """Return a held PDF for its own browser, or None."""
        with self.lock:
            self._drop_old()
            held = self.items.get(token)
            if held is None or not secrets.compare_digest(held.owner, owner):
                return None
            return held

    def drop(self, owner: str) -> None:
        """Forget every PDF a browser made."""
        with self.lock:
            for token in [t for t, held in self.items.items() if secrets.compare_digest(held.owner, owner)]:
                del self.items[token]

    def _drop_old(self) -> None:
        now = self.clock()
        for token in [t for t, held in self.items.items() if held.expires < now]:
            del self.items[token]


def _environment() -> jinja2.Environment:
    env = strict_environment([HERE / "templates"])
    env.globals["labels"] = LABELS
    env.globals["layout_names"] = LAYOUT_NAMES
    return env


def first_brand(snapshot: Snapshot, brands: Sequence[Brand]) -> str:
    """Return the brand a handout takes unless one is chosen: the project's default if offered, else the first."""
    ids = [b.id for b in brands]
    return snapshot.project.default_brand if snapshot.project.default_brand in ids else (ids[0] if ids else "")


def carried_fields(values: FormValues | None) -> list[tuple[str, str]]:
    """Return a form's fields as hidden inputs for the sign-in form to send back, or none."""
    if values is None:
        return []
    pairs = [(name, getattr(values, name)) for name in LABELS if name != "sections"]
    return [("carried", "1"), *pairs, *(("sections", s) for s in values.sections)]


def kit_note(sections: Sequence[str], choices: Sequence[SectionChoice]) -> str:
    """Say which of a kit's sections the page cannot tick here, and why; "" when it ticked them all."""
    missing = [c for c in choices if c.id in sections and not c.offered]
    if not missing:
        return ""
    named = "; ".join(f"{c.title} ({c.reason})" for c in missing)
    return f"Not ticked, as it is not offered here: {named}."


def language_name(code: str) -> str:
    """Return a language's own name and its English one: Español (Spanish); 中文 (简体) – Chinese (Simplified)."""
    row = language_row(code)
    own, english = row.own_name, row.name
    if own.lower() == english.lower():
        return own[:1].upper() + own[1:]
    # A name already holding parentheses (a script) takes a dash: nested parentheses read badly.
    return own[:1].upper() + own[1:] + (f" – {english}" if "(" in own else f" ({english})")


def chart_note(handout: Handout, title: str, today: dt.date) -> str:
    """Return the one line a counselor copies into the patient's record; the server keeps no copy."""
    # Every section the PDF prints, the always-printed help among them, in the order printed.
    sections = "; ".join(s.title for s in handout.sections)
    language = language_row(handout.language).name
    who = f", by {handout.tailoring.counselor}" if handout.tailoring.counselor else ""
    sample = " (draft sample, not for patients)" if handout.is_sample else ""
    return (
        f'Gave patient handout "{title}"{sample}: {sections}. Version {handout.version}, {language}, '
        f"{LAYOUTS[handout.layout].description.split(',')[0]}, {today.isoformat()}{who}."
    )


class Handlers:
    """The routes, sharing the content state, the render workers and the security parts."""

    def __init__(self, config: ServeConfig, state: ContentState, executor: Executor, clock: Callable[[], dt.date]):
        self.config = config
        self.state = state
        self.executor = executor
        self.clock = clock
        self.csrf = Csrf()
        self.shelf = PdfShelf()
        self.generic: OrderedDict[str, bytes] = OrderedDict()
        self.generic_lock = threading.Lock()
        self.generic_renders: dict[str, threading.Lock] = {}
        self.env = _environment()
        self.door = LaunchDoor(self, config.smart) if config.smart is not None else None

    # -- who is asking ---------------------------------------------------------------------------

    def browser(self, request: Request) -> tuple[str, bool]:
        """Return this browser's id, and whether it is new (the response must set the cookie)."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if self.csrf.genuine(cookie):
            return cookie, False
        # Issued here, signed: a client that sends an id of its own choosing gets a new one.
        return self.csrf.new_cookie(), True

    def browser_id(self, request: Request) -> str:
        """Return this browser's id if this process issued it, else "" (which owns nothing)."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        return cookie if self.csrf.genuine(cookie) else ""

    def user(self, request: Request) -> str | None:
        """Return the signed-in counselor, or "" when no passwords are asked, or None when sign-in is needed."""
        if self.door is not None and (found := self.door.launched(request)) is not None:
            # Signed in by the EHR: that replaces a password for this browser.
            return found[1].user_name or found[1].user or "the EHR's user"
        if self.config.accounts is None:
            return None if self.config.launch_only else ""
        return self.config.accounts.user(request.cookies.get(SESSION_COOKIE))

    def refusal(self, request: Request) -> Response | None:
        """Return why this request may not be answered at all, or None."""
        host = request.headers.get("host", "").lower()
        if self.config.allowed_hosts and host not in self.config.allowed_hosts and not self._own_address(host):
            return PlainTextResponse("This page answers to this computer's own address only.", 421)
        if (
            self.config.accounts is None
            and not self.config.launch_only
            and any(h in request.headers for h in PROXY_HEADERS)
        ):
            # Behind a proxy, other computers reach a server that asks no password: refuse, do not guess.
            message = (
                "This page was reached through a proxy, so other computers can reach it. "
                "Start it with --auth-file so each counselor signs in."
            )
            return PlainTextResponse(message, 403)
        return None

    def _own_address(self, host: str) -> bool:
        """Tell whether a Host header is one of this computer's IP addresses with the server's port."""
        if not self.config.local_addresses:
            return False
        address, _, port = host.rpartition(":")
        if port != str(self.config.port) or not address:
            return False
        return is_local_address(address.strip("[]"))

    def gate(self, request: Request) -> Response | None:
        """Return the answer to a request for a counselor's route that may not go on: refused, or sign in first."""
        if (refused := self.refusal(request)) is not None:
            return refused
        return RedirectResponse("/login", 303) if self.user(request) is None else None

    def _cookies(self, response: Response, request: Request, browser: str, new: bool) -> Response:
        if new:
            secure = request.url.scheme == "https"
            response.set_cookie(CSRF_COOKIE, browser, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    # -- pages -----------------------------------------------------------------------------------

    def page(
        self,
        request: Request,
        snapshot: Snapshot | None,
        rejected: list[Problem],
        *,
        values: FormValues | None = None,
        errors: dict[str, list[str]] | None = None,
        result: dict[str, Any] | None = None,
        notice: str = "",
        status: int = 200,
        user: str | None = None,
        language_switched: bool = False,
        kit_note: str = "",
    ) -> Response:
        """Render the one page: the form, its errors, and after a PDF its chart note."""
        browser, new = self.browser(request)
        today = self.clock()
        context: dict[str, Any] = {
            "csrf": self.csrf.token(browser),
            "release": self.config.release,
            "rejected": [str(p) for p in rejected],
            "errors": errors or {},
            "result": result,
            "user": self.user(request) if user is None else user,
            "signing_in": self.config.accounts is not None,
            "layouts": list(PATIENT_LAYOUTS),
            "ready": snapshot is not None,
            "notice": notice,
            # After a change of language the page comes back with the focus where it was, on the language.
            "language_switched": language_switched,
            "kit_note": kit_note,
            "note_hints": NOTE_HINTS,
            "note_limit": MAX_TAILORING_CHARS,
            "launch": None,
            "titles": {},
            "teach_back": TEACH_BACK,
            "chart_tag": self.door.tag(request) if self.door is not None else "",
        }
        launched = self.door.launched(request) if self.door is not None else None
        if snapshot is not None and launched is not None and self.door is not None:
            # Opened from the chart: the form starts as the chart fills it, and says where each choice came from.
            fill = self.door.prefill(launched[1], snapshot, today)
            if values is None:
                first = first_brand(snapshot, offered_brands(snapshot, release=self.config.release))
                values = FormValues(
                    brand=first,
                    language=fill.language,
                    sections=fill.sections,
                    prepared_for=fill.first_name,
                    counselor=launched[1].user_name,
                )
            context["launch"] = {
                "first_name": fill.first_name,
                "language_reason": fill.language_reason,
                "reasons": {section: "; ".join(why) for section, why in fill.reasons.items()},
                "findings": fill.findings,
            }
        if snapshot is not None:
            brands = offered_brands(snapshot, release=self.config.release)
            asked = (values.language if values else "") or request.query_params.get("language", "")
            # A link from an EHR or a bookmark may say zh-CN or sp: the table names the folder.
            language = match_language(asked, snapshot.languages) or BASE_LANGUAGE
            values = values or FormValues(brand=first_brand(snapshot, brands), language=language)
            choices = section_choices(snapshot, language, today, release=self.config.release)
            context.update(
                brands=brands,
                languages=[(code, language_name(code)) for code in snapshot.languages],
                language=language,
                choices=choices,
                values=values,
                drafts=any(c.offered and c.state != "approved" for c in choices) or any(b.example for b in brands),
                not_offered=[c for c in choices if not c.offered],
                kits=snapshot.project.kits,
                titles={c.id: c.title for c in choices},
            )
        html = self.env.get_template("page.html.j2").render(**context)
        return self._cookies(HTMLResponse(html, status), request, browser, new)

    async def home(self, request: Request) -> Response:
        """Show the form."""
        if (refused := self.gate(request)) is not None:
            return refused
        snapshot, rejected = await _in_thread(self.state.current)
        return self.page(request, snapshot, rejected, status=200 if snapshot else 503)

    async def make(self, request: Request) -> Response:
        """Check the form, compose and render the handout, hold the PDF for this browser, show the chart note."""
        if (refused := self.refusal(request)) is not None:
            return refused
        form = await _form(request)
        if self.user(request) is None:
            # Signed out (a restart ends every session): the sign-in form carries what was typed, in this
            # response only, and gives it back once the counselor is in.
            carry = read_values(*form) if form is not None else None
            return self._login(request, SIGNED_OUT, 401, carry)
        if form is None:
            return PlainTextResponse("Send the form as the page does.", 415)
        fields, sections = form
        browser, _new = self.browser(request)
        genuine = self.csrf.valid(request.cookies.get(CSRF_COOKIE), fields.get("csrf"))
        snapshot, rejected = await _in_thread(self.state.current)
        if snapshot is None:
            return self.page(request, None, rejected, status=503)
        today = self.clock()
        values = read_values(fields, sections)
        if not genuine:
            # Sent back filled in, in this one response only; nothing is made and nothing is kept.
            return self.page(request, snapshot, rejected, values=values, notice=EXPIRED, status=403)
        if self.door is not None and not secrets.compare_digest(fields.get("chart", ""), self.door.tag(request)):
            # Filled for another chart than the one open in this browser now (an older tab): nothing of it is
            # made, and the page starts again from the chart open now.
            return self.page(request, snapshot, rejected, notice=OTHER_CHART, status=409)
        if fields.get("action") == "language":
            # Another language's sections, with everything typed and ticked still there.
            return self.page(request, snapshot, rejected, values=values, language_switched=True)
        if "kit" in fields:
            # A kit ticks its sections (without JavaScript, through this answer); the rest stays as typed.
            kit = find_kit(snapshot.project, fields["kit"][:200])
            if kit is None:
                return self.page(request, snapshot, rejected, values=values)
            values = dataclasses.replace(values, sections=kit.sections)
            choices = section_choices(snapshot, values.language, today, release=self.config.release)
            return self.page(request, snapshot, rejected, values=values, kit_note=kit_note(kit.sections, choices))
        language = values.language if values.language in snapshot.languages else BASE_LANGUAGE
        checked = check_form(
            values,
            brands=[b.id for b in offered_brands(snapshot, release=self.config.release)],
            languages=snapshot.languages,
            choices=section_choices(snapshot, language, today, release=self.config.release),
            today=today,
            release=self.config.release,
        )
        if checked.spec is None:
            return self.page(request, snapshot, rejected, values=values, errors=checked.errors, status=422)
        try:
            handout = compose_spec(checked.spec, snapshot.inputs, today)
        except HandoutError as exc:
            return self.page(request, snapshot, rejected, values=values, errors=_by_field(exc.problems), status=422)
        outcome = await _in_thread(self._render, handout, snapshot)
        if outcome.pdf is None:
            errors = _by_field(outcome.problems) if outcome.problems else {"": [_render_failure(outcome.error)]}
            if "layout" in errors:
                errors["layout"] = [_fit_message(handout.layout, errors["layout"], bool(values.note))]
            return self.page(request, snapshot, rejected, values=values, errors=errors, status=422)
        name = f"handout-{handout.language}-{handout.layout}.pdf"
        title = snapshot.titles.get(handout.language, DEFAULT_TITLE)
        note = chart_note(handout, title, today)
        launched = self.door.launched(request) if self.door is not None else None
        education = None
        if launched is not None and launched[1].user:
            made = dt.datetime.now(dt.UTC).replace(microsecond=0)
            education = Education(
                outcome.pdf, title, note, handout.language, handout.version, made, sample=handout.is_sample
            )
        session = launched[0] if launched is not None and education is not None else ""
        token = self.shelf.put(browser, outcome.pdf, name, values=values, chart=education, launch=session)
        result: dict[str, Any] = {
            "pdf_url": f"/pdf/{token}",
            "pdf_token": token,
            "chart_note": note,
            "pages": outcome.pages,
            "sample": handout.is_sample,
            "chart": education is not None,
            "replaces": launched is not None
            and self.door is not None
            and bool(self.door.store.last_saved(launched[0])),
            "chart_unavailable": (
                "The EHR did not say who you are, so this PDF cannot be saved to the chart from here."
                if launched is not None and education is None
                else ""
            ),
        }
        self.shelf.keep_result(browser, token, result)
        return self.page(request, snapshot, rejected, values=values, result=result)

    def _render(self, handout: Handout, snapshot: Snapshot) -> RenderOutcome:
        job = RenderJob("page", str(snapshot.project.root), snapshot.inputs.assets_digest, handout)
        try:
            return self.executor.submit(job).result(timeout=self.config.time_limit + 10)
        except (cf.TimeoutError, TimeoutError):
            return RenderOutcome("page", None, None, f"took longer than {self.config.time_limit:g} seconds")
        except WorkerStopped as exc:  # our own words: the worker died twice, or the pool is closing
            return RenderOutcome("page", None, None, str(exc))
        except Exception as exc:  # anything else: say so, in one line, with nothing of the request
            return RenderOutcome("page", None, None, f"the renderer stopped ({type(exc).__name__})")

    async def pdf(self, request: Request) -> Response:
        """Return a PDF this browser made, inline, for the browser's own viewer."""
        if (refused := self.gate(request)) is not None:
            return refused
        held = self.shelf.get(self.browser_id(request), request.path_params["token"])
        if held is None:
            return PlainTextResponse("This PDF is gone: it is kept for 10 minutes. Make it again.", 404)
        return Response(
            held.data,
            media_type="application/pdf",
            headers={"content-disposition": f'inline; filename="{held.name}"'},
        )

    def _expired(self, request: Request) -> Response:
        # A form from before a restart, or from another site: nothing was made.
        html = self.env.get_template("message.html.j2").render(
            title="Please try again",
            message="This form has expired or did not come from this page. Nothing was made.",
            link="/",
        )
        browser, new = self.browser(request)
        return self._cookies(HTMLResponse(html, 403), request, browser, new)

    # -- signing in ------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        """Show the sign-in form."""
        if (refused := self.refusal(request)) is not None:
            return refused
        if self.config.accounts is None and self.config.launch_only and self.door is not None:
            # No passwords here: the EHR signs people in, by opening the page from a chart.
            return self.door.message("Open this page from a chart", NOT_LAUNCHED, 401)
        return self._login(request, "")

    def _login(self, request: Request, error: str, status: int = 200, carry: FormValues | None = None) -> Response:
        browser, new = self.browser(request)
        html = self.env.get_template("login.html.j2").render(
            csrf=self.csrf.token(browser), error=error, carried=carried_fields(carry)
        )
        return self._cookies(HTMLResponse(html, status), request, browser, new)

    async def login(self, request: Request) -> Response:
        """Sign a counselor in."""
        if (refused := self.refusal(request)) is not None:
            return refused
        accounts = self.config.accounts
        form = await _form(request)
        if accounts is None:
            return RedirectResponse("/", 303)
        if form is None:
            return PlainTextResponse("Send the form as the page does.", 415)
        fields, sections = form
        carry = read_values(fields, sections) if fields.get("carried") else None
        if not self.csrf.valid(request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
            return self._login(request, "This sign-in form had expired. Please sign in again.", 403, carry)
        name = fields.get("username", "").strip()[:64]
        address = request.client.host if request.client else ""
        if (wait := accounts.name_wait(name)) > 0:
            # Many wrong passwords for this name from anywhere: slowed, never refused, so the counselor gets in.
            await asyncio.sleep(wait)
        answer = await _in_thread(accounts.sign_in, name, fields.get("password", ""), address)
        if answer.busy:
            busy = "Many people are signing in right now. Please try again in a minute."
            return self._login(request, busy, 429, carry)
        if answer.wait_seconds > 0:
            # Whole seconds first: a lock of 60 s reads back as 60.00000000001 after float sums, not 2 minutes.
            minutes = max(1, math.ceil(round(answer.wait_seconds) / 60))
            again = "in 1 minute" if minutes == 1 else f"in {minutes} minutes"
            message = f"Too many tries from this computer; try again {again}."
            return self._login(request, message, 429, carry)
        if answer.session is None:
            return self._login(request, "That name and password do not match.", 401, carry)
        response: Response = RedirectResponse("/", 303)
        if carry is not None:
            snapshot, rejected = await _in_thread(self.state.current)
            response = self.page(request, snapshot, rejected, values=carry, notice=SIGNED_IN_AGAIN, user=name)
        secure = request.url.scheme == "https"
        response.set_cookie(SESSION_COOKIE, answer.session, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        """Sign out."""
        if (refused := self.refusal(request)) is not None:
            return refused
        form = await _form(request)
        if form is None or not self.csrf.valid(request.cookies.get(CSRF_COOKIE), form[0].get("csrf")):
            return self._expired(request)
        if self.config.accounts is not None:
            self.config.accounts.sign_out(request.cookies.get(SESSION_COOKIE))
        if self.door is not None:
            self.door.sign_out(request)
        # A shared computer: the next counselor finds the PDFs' addresses in the history, so they go too,
        # and the browser gets a new id (and form token) at its next page.
        self.shelf.drop(self.browser_id(request))
        response = RedirectResponse("/login" if self.config.accounts or self.config.launch_only else "/", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(SMART_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    # -- Infobutton --------------------------------------------------------------------------------

    async def generic_pdf(self, request: Request) -> Response:
        """Return the untailored letter handout of one section in one language (the Infobutton links).

        Under /handouts/BRAND/ it carries that brand, else the default one.
        """
        if (refused := self.refusal(request)) is not None:
            return refused
        snapshot, _ = await _in_thread(self.state.current)
        if snapshot is None:
            return PlainTextResponse("The handouts are not ready.", 503)
        offered = offered_brands(snapshot, release=self.config.release)
        brand = first_brand(snapshot, offered)
        if "brand" in request.path_params:
            brand = request.path_params["brand"].lower()
            if brand not in {b.id for b in offered}:
                return PlainTextResponse("No such clinic here.", 404)
        section_id = request.path_params["section"].lower()
        # The links this server writes name the folder (zh-Hans); a hand-typed zh-hans or es-MX finds it too.
        language = match_language(request.path_params["language"], snapshot.languages) or ""
        choices = {c.id: c for c in section_choices(snapshot, language, self.clock(), release=self.config.release)}
        choice = choices.get(section_id)
        if language not in snapshot.languages or choice is None or not choice.offered or not brand:
            return PlainTextResponse("No such handout.", 404)
        spec = HandoutSpec((section_id,), brand, language, "letter", release=self.config.release)
        try:
            handout = compose_spec(spec, snapshot.inputs, self.clock())
        except HandoutError:
            return PlainTextResponse("This handout cannot be made now.", 409)
        data = await _in_thread(self._generic_pdf, handout, snapshot)
        if data is None:
            return PlainTextResponse("This handout cannot be made now.", 500)
        name = f"{section_id}-{language}.pdf"
        return Response(
            data, media_type="application/pdf", headers={"content-disposition": f'inline; filename="{name}"'}
        )

    def _generic_pdf(self, handout: Handout, snapshot: Snapshot) -> bytes | None:
        """Return an untailored PDF, rendering it once however many ask at the same time."""
        # The version hashes the brand folder's files but not its name, and the logo is drawn from
        # brands/ID/: two brands whose folders hold the same files must not share a PDF.
        key = f"{handout.brand.id}/{handout.version}"
        with self.generic_lock:
            if (data := self.generic.get(key)) is not None:
                return data
            # Anyone may ask for these: a crowd asking at once waits for one render, not one each.
            while len(self.generic_renders) >= MAX_GENERIC_PDFS:
                self.generic_renders.pop(next(iter(self.generic_renders)))
            once = self.generic_renders.setdefault(key, threading.Lock())
        with once:
            with self.generic_lock:
                if (data := self.generic.get(key)) is not None:
                    return data
            outcome = self._render(handout, snapshot)
            if outcome.pdf is None:
                return None
            with self.generic_lock:
                self.generic[key] = outcome.pdf
                while len(self.generic) > MAX_GENERIC_PDFS:
                    self.generic.popitem(last=False)
            return outcome.pdf

    async def infobutton(self, request: Request) -> Response:
        """Answer an HL7 Infobutton URL-based request with the matching handouts: Atom (default), JSON or HTML.

        Under /infobutton/BRAND the answer and its PDFs carry that brand; else the brand that declares
        the requesting organization's OID, else the default one.
        """
        from .infobutton import (
            FeedEntry,
            atom_feed,
            feed_entry,
            json_feed,
            organization_brand,
            parse_request,
            requested_sections,
            search_description,
        )

        if (refused := self.refusal(request)) is not None:
            return refused
        snapshot, _ = await _in_thread(self.state.current)
        if snapshot is None:
            return PlainTextResponse("The handouts are not ready.", 503)
        asked = parse_request(request.query_params.multi_items(), snapshot.languages)
        brands = offered_brands(snapshot, release=self.config.release)
        default = first_brand(snapshot, brands)
        # The default brand first: of two brands that claim one organization, it wins, then the first by id.
        by_preference = sorted(brands, key=lambda b: (b.id != default, b.id))
        if "brand" in request.path_params:
            brand = next((b for b in brands if b.id == request.path_params["brand"].lower()), None)
            if brand is None:
                return PlainTextResponse("No such clinic here.", 404)
        else:
            # An organization no brand declares still gets an answer: every EHR sends its own OID, and
            # refusing those would close the door to all but the clinics that declared theirs.
            brand = organization_brand(asked.organization, by_preference) or next(iter(by_preference), None)
        # Links name a brand only when one was chosen, so the links of a plain request stay as they were.
        named = brand is not None and ("brand" in request.path_params or brand.id != default)
        folder = f"/handouts/{brand.id}" if named and brand is not None else "/handouts"
        today = self.clock()
        # Codes and keywords are declared once, in English; each entry is in the asked language where it is offered.
        sections = snapshot.inputs.sections
        english = sections.get(BASE_LANGUAGE, {})
        found = requested_sections(asked, english, snapshot.project.sections.order, sections.get(asked.language))
        entries: list[FeedEntry] = []
        for language in dict.fromkeys((asked.language, BASE_LANGUAGE)):
            offered = {
                c.id for c in section_choices(snapshot, language, today, release=self.config.release) if c.offered
            }
            for section_id in found:
                if section_id in offered and section_id not in {e.section_id for e in entries}:
                    url = f"{self._base(request)}{folder}/{language}/{section_id}.pdf"
                    entries.append(feed_entry(sections[language][section_id], url))
        entries.sort(key=lambda e: found.index(e.section_id))
        author = brand.for_language(asked.language).name if brand is not None else "Patient handouts"
        title = snapshot.titles.get(asked.language, DEFAULT_TITLE)
        feed = {"feed_url": str(request.url), "title": title, "updated": snapshot.loaded, "author": author}
        # Public content, no patient data: an EHR's page on another origin may read the feed.
        headers = {"access-control-allow-origin": "*"}
        if asked.response_type == "json":
            return JSONResponse(json_feed(asked, entries, **feed), headers=headers)
        if asked.response_type == "html":
            html = self.env.get_template("infobutton.html.j2").render(
                title=title, entries=entries, asked=search_description(asked), language_name=language_name
            )
            return HTMLResponse(html, headers=headers)
        return Response(atom_feed(asked, entries, **feed), media_type=asked.media_type, headers=headers)

    def _base(self, request: Request) -> str:
        """Return the address links start with: the configured public name, else the (checked) Host."""
        if self.config.public_name:
            return f"{request.url.scheme}://{self.config.public_name}"
        return str(request.base_url).rstrip("/")

    async def static_check(self, request: Request) -> Response:
        """Say the server is up (for a reverse proxy's health check)."""
        return PlainTextResponse("ok")

    async def healthz(self, request: Request) -> Response:
        """Say whether a handout can be made now: ready render workers and loaded content (503 when not)."""
        answer: dict[str, Any] = {"content": "loaded" if self.state.snapshot is not None else "not loaded"}
        ok = self.state.snapshot is not None
        if isinstance(self.executor, HealingPool):
            health = self.executor.health()
            answer.update(workers=health.workers, ready=health.ready, replaced=health.replaced, queued=health.queued)
            ok = ok and health.ok
        answer["ok"] = ok
        return JSONResponse(answer, 200 if ok else 503)


@functools.lru_cache(maxsize=256)
def is_local_address(text: str) -> bool:
    """Tell whether an IP address is this computer's own: only those can be bound to."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False  # a name: only those listed are accepted
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


async def _form(request: Request) -> tuple[dict[str, str], list[str]] | None:
    """Read a urlencoded form with bounded fields; None for any other kind of body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    # The Guard caps the body; this caps the fields the parser keeps.
    data = await request.form(max_files=0, max_fields=120)
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    sections = [v for v in data.getlist("sections") if isinstance(v, str)]
    return fields, sections


async def _server_error(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(SERVER_ERROR, 500)


def _by_field(problems: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in problems:
        name = problem_field(problem)
        message = problem.message if name else str(problem)
        found.setdefault(name, []).append(message[:1].upper() + message[1:])
    return found


def _fit_message(layout: str, overruns: list[str], note: bool) -> str:
    name = LAYOUT_NAMES.get(layout, layout)
    # The note prints in the brochure's plan panel: when there is one, it is the first thing to shorten.
    fix = "Shorten the note, choose fewer sections" if note else "Choose fewer sections"
    return f"Does not fit the {name}: " + "; ".join(overruns) + f". {fix}, or the Letter layout."


def _render_failure(error: str | None) -> str:
    return f"The PDF could not be made: {error or 'no reason given'}. Nothing was saved."


def make_app(
    config: ServeConfig,
    executor: Executor,
    *,
    clock: Callable[[], dt.date] = dt.date.today,
    check: Callable[[Path, dt.date], list[Problem]] | None = None,
    loaded: tuple[tuple[object, ...], Snapshot] | None = None,
) -> ASGIApp:
    """Build the app: one page, its PDFs, sign-in, and the Infobutton door, all behind the Guard."""
    state = ContentState(config.root, clock, check=check, time_limit=config.time_limit)
    if loaded is not None:  # checked at start-up: the first request need not check it again
        state.seed(*loaded)
    handlers = Handlers(config, state, executor, clock)
    door = []
    if handlers.door is not None:
        door = [
            Route("/launch", handlers.door.launch, methods=["GET"]),
            Route("/callback", handlers.door.callback, methods=["GET"]),
            Route("/chart", handlers.door.save, methods=["POST"]),
        ]
    hooks = []
    if config.cds_clients:
        from .cds import CdsClient, CdsHooks, cds_routes

        clients = [CdsClient(iss, jwks) for iss, jwks in config.cds_clients]
        cds = CdsHooks(
            clients, lambda: state.current()[0], handlers._base, config.release, clock, launch=config.smart is not None
        )
        hooks = cds_routes(cds)
    routes = [
        *door,
        *hooks,
        Route("/", handlers.home, methods=["GET"]),
        Route("/handout", handlers.make, methods=["POST"]),
        Route("/pdf/{token}", handlers.pdf, methods=["GET"]),
        Route("/login", handlers.login_form, methods=["GET"]),
        Route("/login", handlers.login, methods=["POST"]),
        Route("/logout", handlers.logout, methods=["POST"]),
        Route("/infobutton", handlers.infobutton, methods=["GET"]),
        Route("/infobutton/{brand}", handlers.infobutton, methods=["GET"]),
        Route("/handouts/{language}/{section}.pdf", handlers.generic_pdf, methods=["GET"]),
        Route("/handouts/{brand}/{language}/{section}.pdf", handlers.generic_pdf, methods=["GET"]),
        Route("/health", handlers.static_check, methods=["GET"]),
        Route("/healthz", handlers.healthz, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        # The handouts' own fonts: a section title in Chinese or Arabic reads on a computer without
        # such fonts, as it prints (serve.css loads each only for the characters it draws).
        Mount("/fonts", app=StaticFiles(directory=tool_data_dir() / "styles" / "fonts"), name="fonts"),
    ]
    # Starlette answers an error before the Guard sees it: with the same plain words, not its own.
    app = Starlette(routes=routes, exception_handlers={500: _server_error})
    app.state.handlers = handlers
    return Guard(app)
