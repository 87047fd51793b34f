"""The batch manifest: what each output was built from and its checksum, kept true through a journal."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import HandoutError
from ..inputs.fields import SEMVER_RE, shown
from ..languages import LANGUAGE_CODE_RE
from ..layouts import LAYOUTS
from ..models import handout_code
from .folder import NotOurs, aside_name, key_problem, read_capped, read_json

MANIFEST_NAME = "manifest.json"
# Changes since manifest.json was last written, one JSON object per line; folded in at the end of a
# run, or by the next run if this one was killed. Appending keeps a run linear in its outputs.
JOURNAL_NAME = "manifest.journal"
# Size and modification time of each output when it was last hashed: a no-op run hashes only files
# that look touched. Advisory: a missing or stale file only costs a re-hash.
STAT_NAME = ".manifest-stat.json"
FORMAT = 1
MAX_STATS = 16 * 1024 * 1024

HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
FORMATS = {
    "sha256": (HEX64_RE, "a SHA-256 in hex"),
    "fingerprint": (HEX64_RE, "a SHA-256 in hex"),
    "handout_version": (re.compile(r"^[0-9a-f]{12}$"), "12 hex digits"),
    "brand": (re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$"), "a brand id"),
    # The content folder's tag (en, zh-Hans, pt-BR): the language table's one rule.
    "language": (re.compile(rf"^{LANGUAGE_CODE_RE.pattern}$"), "a language code"),
    "tool_version": (re.compile(r"^[0-9A-Za-z.+-]{1,40}$"), "a version"),
}
SECTION_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_JOB = 4096


@dataclass(frozen=True)
class ManifestEntry:
    """One output as the manifest records it."""

    path: str
    sha256: str
    handout_version: str
    sections: dict[str, str]
    brand: str
    language: str
    layout: str
    fingerprint: str
    inputs: dict[str, Any]
    html: str | None
    tool_version: str
    # The job file that wrote it, in the project (or absolute); None in manifests from before jobs were told apart.
    job: str | None = None
    html_sha256: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestEntry:
        """Read an entry, raising ValueError naming the first field that is missing, of the wrong kind or malformed."""
        kinds: dict[str, type | tuple[type, ...]] = {
            "path": str,
            "sha256": str,
            "handout_version": str,
            "sections": dict,
            "brand": str,
            "language": str,
            "layout": str,
            "fingerprint": str,
            "inputs": dict,
            "html": (str, type(None)),
            "tool_version": str,
            "job": (str, type(None)),
            "html_sha256": (str, type(None)),
        }
        for name, kind in kinds.items():
            # Older manifests have no job and no html_sha256: absent reads as null.
            value = data.get(name) if name in ("job", "html_sha256") else data.get(name, ...)
            if not isinstance(value, kind):
                raise ValueError(f"{name}: expected {getattr(kind, '__name__', 'text or null')}")
        problem = entry_problem(data)
        if problem is not None:
            raise ValueError(problem)
        values: dict[str, Any] = {name: data.get(name) for name in kinds}
        return cls(**values)

    @property
    def handout_code(self) -> str:
        """Return the code the output's patient pages print, derived from its handout version."""
        return handout_code(self.handout_version)

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as JSON data, with the handout code staff read off a patient's page."""
        # Written for people to search (and checked when read), never trusted: the version decides it.
        return {**asdict(self), "handout_code": self.handout_code}


def entry_problem(data: Mapping[str, Any]) -> str | None:
    """Say which field of a well-typed entry is malformed, as `field: expected ..., got ...`; None if none is."""
    path = data["path"]
    problem = key_problem(path)
    if problem is not None:
        return f"path: {problem}"
    for name, (pattern, what) in FORMATS.items():
        if not pattern.fullmatch(data[name]):
            return f"{name}: expected {what}, got {shown(data[name])}"
    for section, version in data["sections"].items():
        if not SECTION_ID_RE.fullmatch(section) or not isinstance(version, str) or not SEMVER_RE.fullmatch(version):
            return f"sections: expected section ids with MAJOR.MINOR.PATCH versions, got {shown({section: version})}"
    if data["layout"] not in LAYOUTS:
        return f"layout: expected one of {', '.join(LAYOUTS)}, got {shown(data['layout'])}"
    code = data.get("handout_code")
    if code is not None and code != handout_code(data["handout_version"]):
        expected = handout_code(data["handout_version"])
        return f"handout_code: expected {expected} (from handout_version) or none, got {shown(code)}"
    html, html_sha = data["html"], data.get("html_sha256")
    if html is not None and html != path.removesuffix(".pdf") + ".html":
        return f"html: expected {shown(path.removesuffix('.pdf') + '.html')} or null, got {shown(html)}"
    if html_sha is not None and (html is None or not HEX64_RE.fullmatch(html_sha)):
        return f"html_sha256: expected a SHA-256 in hex beside an html path, got {shown(html_sha)}"
    job = data.get("job")
    if job is not None and (not job or "\x00" in job or len(job) > MAX_JOB):
        return f"job: expected a job file path, got {shown(job)}"
    return None


@dataclass
class Manifest:
    """The entries by output path, what could not be read, and the files to keep aside before writing."""

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    aside: list[Path] = field(default_factory=list)


def sha256_file(path: Path) -> str | None:
    """Return a file's SHA-256, or None when it does not exist; raise OSError for anything but a plain file."""
    digest = hashlib.sha256()
    try:
        # Never through a link, and never blocking on a pipe someone left in an output's place.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_entries(path: Path) -> dict[str, ManifestEntry]:
    data = read_json(path)
    if data is None:
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("outputs"), dict):
        raise NotOurs("unknown format")
    entries = {}
    for key, value in data["outputs"].items():
        if not isinstance(value, dict):
            raise NotOurs(f"outputs[{shown(key)}]: expected an object")
        try:
            entry = ManifestEntry.from_dict(value)
        except ValueError as exc:
            raise NotOurs(f"outputs[{shown(key)}]: {exc}") from None
        if entry.path != key:
            raise NotOurs(f"outputs[{shown(key)}]: path: differs from its key, got {shown(entry.path)}")
        entries[key] = entry
    return entries


def _change(line_number: int, change: Any, entries: dict[str, ManifestEntry]) -> None:
    where = f"line {line_number}"
    if not isinstance(change, dict) or len(change) != 1 or not ({"drop", "put"} & change.keys()):
        raise NotOurs(f"{where}: expected a drop or a put, got {shown(change)}")
    if "drop" in change:
        problem = key_problem(change["drop"])
        if problem is not None:
            raise NotOurs(f"{where}: drop: {problem}")
        entries.pop(change["drop"], None)
        return
    if not isinstance(change["put"], dict):
        raise NotOurs(f"{where}: put: expected an object")
    try:
        entry = ManifestEntry.from_dict(change["put"])
    except ValueError as exc:
        raise NotOurs(f"{where}: put: {exc}") from None
    entries[entry.path] = entry


def replay(journal: Path, entries: Mapping[str, ManifestEntry]) -> dict[str, ManifestEntry]:
    """Return the entries with a journal's changes applied, raising NotOurs if it is not a journal this tool wrote."""
    data = read_capped(journal, appended=True)
    if data is None:
        return dict(entries)
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise NotOurs(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    replayed = dict(entries)
    # The last line of a killed run may be cut short; one that a later run then ended with a
    # newline is not JSON either. A complete change is never a prefix of valid JSON, so a line that
    # does not parse but begins as a change does is such a cut and is skipped: what it described is
    # rebuilt. Any other line (plain text, JSON of another shape, nesting no change has) means
    # someone else wrote the file.
    for number, line in enumerate(lines, start=1):
        try:
            # The text after the last newline is being written, or was cut off: never a whole change.
            change = json.loads(line) if number < len(lines) else None
        except RecursionError:
            raise NotOurs(f"line {number}: not JSON (nested too deeply)") from None
        except ValueError:
            change = None
        if change is None:
            if line and not is_cut_change(line):
                raise NotOurs(f"line {number}: not JSON, nor the start of a change, got {shown(line)}")
            continue
        _change(number, change, replayed)
    return replayed


# How every line the journal writes begins: json.dumps of a drop or a put, keys sorted, ASCII only.
CHANGE_STARTS = ('{"drop": "', '{"put": {"')


def is_cut_change(line: str) -> bool:
    """Return whether a line could be the first part of a change the journal writes, cut off by a kill."""
    return bool(line) and line.isascii() and any(s.startswith(line) or line.startswith(s) for s in CHANGE_STARTS)


def load_manifest(out_dir: Path) -> Manifest:
    """Read the manifest with any journal a killed run left; a file the tool did not write is reported, kept aside."""
    manifest = Manifest()
    path = out_dir / MANIFEST_NAME
    try:
        manifest.entries = _read_entries(path)
    except NotOurs as exc:
        manifest.problems.append(
            f"{path}: not a manifest this tool wrote ({exc}); "
            f"kept aside as {aside_name(path).name}, every output rebuilt"
        )
        manifest.aside.append(path)
    journal = out_dir / JOURNAL_NAME
    try:
        manifest.entries = replay(journal, manifest.entries)
    except NotOurs as exc:
        manifest.problems.append(
            f"{journal}: not a journal this tool wrote ({exc}); kept aside as {aside_name(journal).name}, "
            "outputs it changed rebuilt"
        )
        manifest.aside.append(journal)
    return manifest


def save_manifest(out_dir: Path, entries: Mapping[str, ManifestEntry]) -> None:
    """Write the manifest atomically, sorted, so equal builds give equal files."""
    data = {"format": FORMAT, "outputs": {key: entries[key].to_dict() for key in sorted(entries)}}
    write_atomic(out_dir / MANIFEST_NAME, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def load_stats(out_dir: Path) -> tuple[dict[str, list[Any]], str | None]:
    """Read the size, mtime and hash each output had when last hashed, with why the file was ignored if it was."""
    path = out_dir / STAT_NAME
    try:
        data = read_json(path, MAX_STATS)
    except NotOurs as exc:
        reason = str(exc)
    else:
        if data is None or isinstance(data, dict):
            return data or {}, None
        reason = "not a JSON object"
    return {}, f"{path}: not a hash cache this tool wrote ({reason}); ignored and kept aside as {aside_name(path).name}"


def signature(path: Path) -> list[int] | None:
    """Return what tells a plain file changed without reading it: size, mtime, ctime and inode (as git does).

    None when there is no plain file: missing, a link, a folder, a pipe, or a name the system refuses.
    """
    try:
        info = os.lstat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def file_sha256(path: Path, stats: Mapping[str, list[Any]], key: str) -> tuple[str | None, list[Any] | None]:
    """Return an output's SHA-256, trusting the recorded one when the file's signature is unchanged.

    None when nothing is there; "" when something other than a plain file the tool could read is,
    which never matches a recorded hash. Also return what to remember for next time: the signature
    taken before hashing, with the hash, only if the file did not change while it was read.
    """
    before = signature(path)
    if before is None:
        return (None if not os.path.lexists(path) else ""), None
    known = stats.get(key)
    if isinstance(known, list) and len(known) == len(before) + 1 and known[:-1] == before:
        return str(known[-1]), known
    try:
        digest = sha256_file(path)
    except OSError:
        return "", None
    return digest, ([*before, digest] if digest is not None and signature(path) == before else None)


class Journal:
    """Append-only record of a run's changes to the manifest; folding writes manifest.json once."""

    def __init__(self, out_dir: Path, entries: Mapping[str, ManifestEntry]) -> None:
        self.out_dir = out_dir
        self.entries = dict(entries)
        self.fd: int | None = None

    @property
    def path(self) -> Path:
        """Where the journal is kept."""
        return self.out_dir / JOURNAL_NAME

    def _open(self) -> int:
        # Never through a link, never into something that is not a plain file.
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            os.close(fd)
            raise OSError(0, "not a regular file of its own")
        # A run killed mid-line leaves a line without its end; start on a fresh line, or the
        # first change of this run would be glued to it and lost on replay.
        if info.st_size and os.pread(fd, 1, info.st_size - 1) != b"\n":
            os.write(fd, b"\n")
        return fd

    def _append(self, change: dict[str, Any]) -> None:
        line = (json.dumps(change, sort_keys=True) + "\n").encode("utf-8")
        try:
            if self.fd is None:
                self.fd = self._open()
            # Written unbuffered, line by line: a killed run loses at most the line it was writing.
            view = memoryview(line)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            raise HandoutError(f"{self.path}: cannot write the journal: {exc.strerror or exc}") from None

    def drop(self, keys: Iterable[str]) -> None:
        """Forget outputs about to be replaced, so the manifest never vouches for a half-made file."""
        for key in keys:
            if key in self.entries:
                del self.entries[key]
                self._append({"drop": key})

    def put(self, entry: ManifestEntry) -> None:
        """Record an output just written."""
        self.entries[entry.path] = entry
        self._append({"put": entry.to_dict()})

    def fold(self, stats: Mapping[str, list[Any]] | None = None) -> str | None:
        """Write manifest.json with every change, then remove the journal; write the hash cache if given.

        Return why manifest.json could not be written, if it could not: the journal then keeps the changes.
        """
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if os.path.lexists(self.path):
            try:
                save_manifest(self.out_dir, self.entries)
            except OSError as exc:
                return f"cannot write: {exc.strerror or exc}; {JOURNAL_NAME} keeps this run's changes for the next run"
            os.unlink(self.path)
        if stats is not None:
            save_stats(self.out_dir, stats)
        return None


def save_stats(out_dir: Path, stats: Mapping[str, list[Any]]) -> None:
    """Write the hash cache if its name holds nothing but the tool's own file; it is only advisory."""
    path = out_dir / STAT_NAME
    try:
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            return
        write_atomic(path, json.dumps(stats, sort_keys=True).encode("utf-8"))
    except OSError:
        # A full disk or a read-only folder costs the next run some hashing, nothing else.
        return
