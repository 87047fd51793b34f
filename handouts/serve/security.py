"""Who may use the page: CSRF tokens, counselors' hashed passwords, and login sessions, all in memory."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..errors import HandoutError, Problem
from ..inputs.files import read_bytes

USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_AUTH_FILE = 1024 * 1024
# A counselor stays signed in through a working day, not past it.
SESSION_SECONDS = 10 * 3600
MAX_SESSIONS = 1000
# Wrong passwords for one name before it is refused for a while: argon2 makes each guess slow, this makes them few.
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 600.0
# Names typed at the form are unbounded input: at most this many are remembered (counselors' own always are).
MAX_FAILURE_NAMES = 1000


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

    @staticmethod
    def new_cookie() -> str:
        """Return a fresh browser id for the cookie."""
        return secrets.token_urlsafe(32)

    def token(self, cookie: str) -> str:
        """Return the form token for a browser's cookie."""
        return hmac.new(self.secret, cookie.encode(), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        """Tell whether a form's token belongs to the browser that sent it."""
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.token(cookie), token)


def _hasher() -> object:
    from argon2 import PasswordHasher

    return PasswordHasher()


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


class Accounts:
    """Counselors' password hashes and their sessions; no password or session ever reaches a disk."""

    def __init__(self, users: dict[str, str], clock: object = time.monotonic) -> None:
        from argon2 import PasswordHasher

        self.users = users
        self.hasher = PasswordHasher()
        # Checked against for an unknown name too, so a wrong name takes as long as a wrong password.
        self.dummy = self.hasher.hash(secrets.token_urlsafe(16))
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.failures: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        self.clock = clock

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def locked_out(self, name: str) -> bool:
        """Tell whether a name has had too many wrong passwords lately."""
        now = self._now()
        with self.lock:
            recent = [t for t in self.failures.get(name, []) if now - t < FAILURE_WINDOW_SECONDS]
            self.failures[name] = recent
            return len(recent) >= MAX_FAILURES

    def sign_in(self, name: str, password: str) -> str | None:
        """Check a name and password; return a new session id, or None."""
        from argon2.exceptions import Argon2Error, InvalidHashError

        if self.locked_out(name):
            return None
        hashed = self.users.get(name, self.dummy)
        try:
            ok = self.hasher.verify(hashed, password[:MAX_PASSWORD]) and name in self.users
        except (Argon2Error, InvalidHashError):
            ok = False
        if not ok:
            with self.lock:
                self.failures.setdefault(name, []).append(self._now())
                # Keep the table small by forgetting made-up names only: were a counselor's record dropped
                # too, guesses under a thousand other names would unlock their name.
                strangers = (n for n in list(self.failures) if n not in self.users)
                while len(self.failures) > MAX_FAILURE_NAMES and (stranger := next(strangers, None)) is not None:
                    del self.failures[stranger]
            return None
        session_id = secrets.token_urlsafe(32)
        with self.lock:
            self.failures.pop(name, None)
            self.sessions[session_id] = Session(name, self._now() + SESSION_SECONDS)
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        return session_id

    def user(self, session_id: str | None) -> str | None:
        """Return who a session belongs to, or None when it is unknown or over."""
        if not session_id:
            return None
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                return None
            if session.expires < self._now():
                del self.sessions[session_id]
                return None
            return session.user

    def sign_out(self, session_id: str | None) -> None:
        """End a session."""
        with self.lock:
            self.sessions.pop(session_id or "", None)


def load_accounts(path: Path) -> Accounts:
    """Read an auth file into accounts, or raise with every problem in it."""
    users, problems = parse_auth_file(path)
    if not users and not problems:
        problems.append(Problem(str(path), "", "names no counselor (add one with: handouts add-counselor FILE NAME)"))
    if problems:
        raise HandoutError(f"{path}: cannot use it as --auth-file", problems)
    return Accounts(users)
