"""Who may use the page: CSRF tokens, counselors' hashed passwords, and login sessions, all in memory."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..errors import HandoutError, Problem
from ..inputs.files import read_bytes

LOG = logging.getLogger("handouts.serve")
USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_AUTH_FILE = 1024 * 1024
# A counselor stays signed in through a working day, not past it.
SESSION_SECONDS = 10 * 3600
MAX_SESSIONS = 1000
# Wrong passwords from one address before it is locked for a minute, doubling with each further wrong
# try up to a quarter of an hour: a stranger locks out only their own address, never the counselor at
# another computer. Whole minutes, as common practice: a lock of a second or two reads as a wrong password.
FREE_TRIES_PER_ADDRESS = 5
FIRST_ADDRESS_LOCK_SECONDS = 60.0
MAX_ADDRESS_WAIT_SECONDS = 900.0
# Wrong passwords for one name, from anywhere, before each check of that name waits (not refuses):
# guesses spread over many addresses slow down, and the real counselor still gets in.
FREE_TRIES_PER_NAME = 10
MAX_NAME_WAIT_SECONDS = 10.0
# Quiet this long and an address's or a name's wrong passwords are forgotten.
FAILURE_WINDOW_SECONDS = 600.0
# Addresses and names are unbounded input: at most this many are remembered (counselors' own always are).
MAX_FAILURE_NAMES = 1000
# argon2 takes 64 MiB for each check: at most this many at once, and this many more waiting, else "busy".
MAX_HASHING = 2
MAX_HASHING_WAITING = 16
HASHING_WAIT_SECONDS = 10.0


def is_loopback(host: str) -> bool:
    """Tell whether a --host value only listens on this computer."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Csrf:
    """Tokens tied to a random per-browser cookie by a secret only this process knows (signed double submit)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret or secrets.token_bytes(32)

    def new_cookie(self) -> str:
        """Return a fresh browser id for the cookie, signed: only ids this process issued are taken."""
        browser = secrets.token_urlsafe(32)
        return f"{browser}.{self._sign(b'browser:' + browser.encode())}"

    def genuine(self, cookie: str | None) -> bool:
        """Tell whether a browser id is one this process issued (a client cannot choose its own)."""
        browser, dot, signature = (cookie or "").partition(".")
        if not dot or len(browser) != 43 or len(signature) != 43:
            return False
        return hmac.compare_digest(self._sign(b"browser:" + browser.encode()), signature)

    def token(self, cookie: str) -> str:
        """Return the form token for a browser's cookie."""
        return hmac.new(self.secret, b"form:" + cookie.encode(), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        """Tell whether a form's token belongs to the browser that sent it, and that browser's id is ours."""
        if not cookie or not token or not self.genuine(cookie):
            return False
        return hmac.compare_digest(self.token(cookie), token)

    def _sign(self, data: bytes) -> str:
        digest = hmac.new(self.secret, data, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def parse_auth_file(path: Path) -> tuple[dict[str, str], list[Problem]]:
    """Read `name:argon2-hash` lines; return the hashes by name and every problem, each with its line."""
    where = str(path)
    # As content files are read: a named pipe or device is refused, never waited on.
    data, problems = read_bytes(path, where, cap=MAX_AUTH_FILE, root=None)
    if data is None:
        return {}, problems
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {}, [Problem(where, "", "not UTF-8 text")]
    users: dict[str, str] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, hashed = line.strip().partition(":")
        if not USER_RE.fullmatch(name) or not hashed.startswith("$argon2"):
            message = "expected NAME:$argon2id$... (make lines with: handouts add-counselor FILE NAME)"
            problems.append(Problem(f"{where}:{number}", "", message))
        elif name in users:
            problems.append(Problem(f"{where}:{number}", "", f"{name!r} is named twice"))
        else:
            users[name] = hashed
    return users, problems


def password_problem(password: str) -> str | None:
    """Return why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"at most {MAX_PASSWORD} characters"
    return None


def add_counselor(path: Path, name: str, password: str) -> bool:
    """Add a counselor to an auth file, or replace their password; return whether they were new."""
    from argon2 import PasswordHasher

    if not USER_RE.fullmatch(name):
        raise HandoutError(f"{name!r}: a name is letters, digits and . _ @ -, at most 64 characters")
    if (reason := password_problem(password)) is not None:
        raise HandoutError(f"password: {reason}")
    users: dict[str, str] = {}
    if os.path.lexists(path):
        users, problems = parse_auth_file(path)
        if problems:
            # Never rewrite a file that is not a clean password file: it may be something else entirely.
            raise HandoutError(f"{path}: cannot update it", problems)
    lines = [f"{user}:{hashed}" for user, hashed in users.items() if user != name]
    lines.append(f"{name}:{PasswordHasher().hash(password)}")
    # Hashes only, but still nobody else's business: readable by its owner alone.
    write_atomic(path, ("\n".join(lines) + "\n").encode(), mode=0o600)
    return name not in users


@dataclass
class Session:
    """A signed-in counselor's browser."""

    user: str
    expires: float


@dataclass(frozen=True)
class SignIn:
    """The answer to a sign-in: a session id, or why not and for how long."""

    session: str | None = None
    wait_seconds: float = 0.0  # over 0: this address is locked after too many tries; try again after this
    busy: bool = False  # too many sign-ins at once: try again in a few seconds


class Throttle:
    """Wrong tries per key, forgotten after a quiet window; past the free ones each try waits twice as long."""

    def __init__(self, free: int, longest: float, first: float = 1.0) -> None:
        self.free, self.longest, self.first = free, longest, first
        self.failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (count, last failure)

    def wait(self, key: str, now: float) -> float:
        """Return how many seconds a try for this key must wait from now (0: go ahead)."""
        count, last = self.failures.get(key, (0, 0.0))
        if now - last > FAILURE_WINDOW_SECONDS:
            self.failures.pop(key, None)
            return 0.0
        if count < self.free:
            return 0.0
        return max(0.0, last + min(self.first * 2.0 ** (count - self.free), self.longest) - now)

    def failed(self, key: str, now: float, keep: Callable[[str], bool] = lambda key: False) -> None:
        """Count a wrong try; forget the oldest keys past the cap, except those `keep` holds on to."""
        count, last = self.failures.pop(key, (0, 0.0))
        self.failures[key] = (1 if now - last > FAILURE_WINDOW_SECONDS else count + 1, now)
        for old in [k for k in self.failures if not keep(k)][: max(0, len(self.failures) - MAX_FAILURE_NAMES)]:
            del self.failures[old]

    def forget(self, key: str) -> None:
        """Forget a key's wrong tries (after a right one)."""
        self.failures.pop(key, None)


class Accounts:
    """Counselors' password hashes and their sessions; no password or session ever reaches a disk."""

    def __init__(self, users: dict[str, str], clock: Callable[[], float] = time.monotonic, path: Path | None = None):
        from argon2 import PasswordHasher

        self.users = users
        self.path = path
        self.seen = _file_identity(path) if path is not None else None
        self.hasher = PasswordHasher()
        # Checked against for an unknown name too, so a wrong name takes as long as a wrong password.
        self.dummy = self.hasher.hash(secrets.token_urlsafe(16))
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.addresses = Throttle(FREE_TRIES_PER_ADDRESS, MAX_ADDRESS_WAIT_SECONDS, FIRST_ADDRESS_LOCK_SECONDS)
        self.names = Throttle(FREE_TRIES_PER_NAME, MAX_NAME_WAIT_SECONDS)
        self.lock = threading.Lock()
        self.hashing = threading.BoundedSemaphore(MAX_HASHING)
        self.waiting = 0
        self.clock = clock

    def refresh(self) -> None:
        """Read the password file again if it changed: a removed counselor can no longer sign in, nor stay in."""
        if self.path is None or _file_identity(self.path) == self.seen:
            return
        with self.lock:
            identity = _file_identity(self.path)
            if identity == self.seen:
                return
            self.seen = identity
            users, problems = read_accounts_file(self.path)
            if problems:
                # A half-edited or loosened file: keep the last good one rather than lock everyone out.
                LOG.warning("%s: not used, the last good password file stays: %s", self.path, problems[0].message)
                return
            self.users = users
            for session_id in [s for s, session in self.sessions.items() if session.user not in users]:
                del self.sessions[session_id]

    def name_wait(self, name: str) -> float:
        """Return how long a check of this name waits first: long only after many wrong passwords for it."""
        with self.lock:
            return self.names.wait(name, self.clock())

    def sign_in(self, name: str, password: str, address: str = "") -> SignIn:
        """Check a name and password from an address; return a session, or why not."""
        from argon2.exceptions import Argon2Error, InvalidHashError

        self.refresh()
        with self.lock:
            if (wait := self.addresses.wait(address, self.clock())) > 0:
                return SignIn(wait_seconds=wait)
            if self.waiting >= MAX_HASHING + MAX_HASHING_WAITING:
                return SignIn(busy=True)
            self.waiting += 1
        try:
            if not self.hashing.acquire(timeout=HASHING_WAIT_SECONDS):
                return SignIn(busy=True)
            try:
                hashed = self.users.get(name, self.dummy)
                try:
                    ok = self.hasher.verify(hashed, password[:MAX_PASSWORD]) and name in self.users
                except (Argon2Error, InvalidHashError):
                    ok = False
            finally:
                self.hashing.release()
        finally:
            with self.lock:
                self.waiting -= 1
        now = self.clock()
        with self.lock:
            if not ok:
                self.addresses.failed(address, now)
                # Made-up names are forgotten first: were a counselor's record dropped, guesses under a
                # thousand other names would clear it.
                self.names.failed(name, now, keep=lambda key: key in self.users)
                # The try that locks the address says so at once, the same for any name, known or not.
                return SignIn(wait_seconds=self.addresses.wait(address, now))
            self.addresses.forget(address)
            session_id = secrets.token_urlsafe(32)
            self.sessions[session_id] = Session(name, now + SESSION_SECONDS)
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        return SignIn(session=session_id)

    def user(self, session_id: str | None) -> str | None:
        """Return who a session belongs to, or None when it is unknown, over, or its counselor was removed."""
        if not session_id:
            return None
        self.refresh()
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                return None
            if session.expires < self.clock() or session.user not in self.users:
                del self.sessions[session_id]
                return None
            return session.user

    def sign_out(self, session_id: str | None) -> None:
        """End a session."""
        with self.lock:
            self.sessions.pop(session_id or "", None)


def _file_identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)


def others_can_write(path: Path) -> Problem | None:
    """Return a problem when people other than its owner can change a password file, or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # said by the reading
    if mode & 0o022:
        # Anyone who can write it can add a counselor of their own and read every patient's handout.
        return Problem(str(path), "", f"others can change it (mode {mode & 0o777:o}); run: chmod 600 {path}")
    return None


def read_accounts_file(path: Path) -> tuple[dict[str, str], list[Problem]]:
    """Read a password file to sign in against: its lines, and refused when others can change it."""
    found = others_can_write(path)
    return ({}, [found]) if found is not None else parse_auth_file(path)


def load_accounts(path: Path) -> Accounts:
    """Read an auth file into accounts, or raise with every problem in it."""
    users, problems = read_accounts_file(path)
    path = path.resolve()
    if not users and not problems:
        problems.append(Problem(str(path), "", "names no counselor (add one with: handouts add-counselor FILE NAME)"))
    if problems:
        raise HandoutError(f"{path}: cannot use it as --auth-file", problems)
    return Accounts(users, path=path)
