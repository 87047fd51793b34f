"""The batch manifest: what each output was built from and its checksum, kept true through a journal."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_atomic

MANIFEST_NAME = "manifest.json"
# Changes since manifest.json was last written, one JSON object per line; folded in at the end of a
# run, or by the next run if this one was killed. Appending keeps a run linear in its outputs.
JOURNAL_NAME = "manifest.journal"
# Size and modification time of each output when it was last hashed: a no-op run hashes only files
# that look touched. Advisory: a missing or stale file only costs a re-hash.
STAT_NAME = ".manifest-stat.json"
FORMAT = 1


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestEntry:
        """Read an entry, raising ValueError when a field is missing or of the wrong kind."""
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
        }
        for name, kind in kinds.items():
            if not isinstance(data.get(name), kind):
                raise ValueError(f"{name}: expected {getattr(kind, '__name__', 'text or null')}")
        return cls(**{name: data[name] for name in kinds})

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as JSON data."""
        return asdict(self)


@dataclass
class Manifest:
    """The entries by output path, and what could not be read."""

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    warning: str | None = None


def sha256_file(path: Path) -> str | None:
    """Return a file's SHA-256, or None when it does not exist."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _read_entries(path: Path) -> dict[str, ManifestEntry]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("outputs"), dict):
        raise ValueError("unknown format")
    return {key: ManifestEntry.from_dict(value) for key, value in data["outputs"].items() if isinstance(value, dict)}


def _replay(journal: Path, entries: dict[str, ManifestEntry]) -> None:
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            change = json.loads(line)
            if "drop" in change:
                entries.pop(str(change["drop"]), None)
            else:
                entry = ManifestEntry.from_dict(change["put"])
                entries[entry.path] = entry
        except (ValueError, KeyError, TypeError):
            # Only the last line of a killed run can be cut short; what it described is rebuilt.
            continue


def load_manifest(out_dir: Path) -> Manifest:
    """Read the manifest with any journal a killed run left; an unreadable one counts as empty, with a warning."""
    path = out_dir / MANIFEST_NAME
    manifest = Manifest()
    if path.is_file():
        try:
            manifest.entries = _read_entries(path)
        except (ValueError, KeyError, TypeError) as exc:
            manifest.warning = f"{path}: unreadable ({exc}); every output will be rebuilt"
    if (out_dir / JOURNAL_NAME).is_file():
        _replay(out_dir / JOURNAL_NAME, manifest.entries)
    return manifest


def save_manifest(out_dir: Path, entries: Mapping[str, ManifestEntry]) -> None:
    """Write the manifest atomically, sorted, so equal builds give equal files."""
    data = {"format": FORMAT, "outputs": {key: entries[key].to_dict() for key in sorted(entries)}}
    write_atomic(out_dir / MANIFEST_NAME, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def load_stats(out_dir: Path) -> dict[str, list[Any]]:
    """Read the size, mtime and hash each output had when last hashed; anything odd counts as unknown."""
    try:
        data = json.loads((out_dir / STAT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def signature(path: Path) -> list[int] | None:
    """Return what tells a file changed without reading it: size, mtime, ctime and inode (as git does)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def file_sha256(path: Path, stats: Mapping[str, list[Any]], key: str) -> tuple[str | None, list[Any] | None]:
    """Return an output's SHA-256, trusting the recorded one when the file's signature is unchanged.

    Also return what to remember for next time: the signature taken before hashing, with the hash,
    only if the file did not change while it was read.
    """
    before = signature(path)
    if before is None:
        return None, None
    known = stats.get(key)
    if isinstance(known, list) and len(known) == len(before) + 1 and known[:-1] == before:
        return str(known[-1]), known
    digest = sha256_file(path)
    return digest, ([*before, digest] if digest is not None and signature(path) == before else None)


class Journal:
    """Append-only record of a run's changes to the manifest; folding writes manifest.json once."""

    def __init__(self, out_dir: Path, entries: Mapping[str, ManifestEntry]) -> None:
        self.out_dir = out_dir
        self.entries = dict(entries)
        self.handle: Any = None

    def _append(self, change: dict[str, Any]) -> None:
        if self.handle is None:
            path = self.out_dir / JOURNAL_NAME
            # A run killed mid-line leaves a line without its end; start on a fresh line, or the
            # first change of this run would be glued to it and lost on replay.
            torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
            self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in fold
            if torn:
                self.handle.write("\n")
        self.handle.write(json.dumps(change, sort_keys=True) + "\n")
        # Flushed line by line: a killed run loses at most the line it was writing.
        self.handle.flush()

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

    def fold(self, stats: Mapping[str, list[Any]] | None = None) -> None:
        """Write manifest.json with every change, then remove the journal; write the hash cache if given."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        journal = self.out_dir / JOURNAL_NAME
        if journal.exists():
            save_manifest(self.out_dir, self.entries)
            os.unlink(journal)
        if stats is not None:
            write_atomic(self.out_dir / STAT_NAME, json.dumps(stats, sort_keys=True).encode("utf-8"))
