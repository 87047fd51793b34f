"""The batch manifest: what each output was built from, and its checksum."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .atomic import write_atomic

MANIFEST_NAME = "manifest.json"
FORMAT = 1


def sha256_file(path: Path) -> str | None:
    """Return a file's SHA-256, or None when it does not exist."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def load_manifest(out_dir: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Read the manifest's entries by output path; an unreadable one counts as empty, with a warning."""
    path = out_dir / MANIFEST_NAME
    if not path.is_file():
        return {}, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["outputs"]
        if data.get("format") != FORMAT or not isinstance(entries, dict):
            raise ValueError("unknown format")
        return {key: value for key, value in entries.items() if isinstance(value, dict)}, None
    except (ValueError, KeyError, TypeError) as exc:
        return {}, f"{path}: unreadable ({exc}); every output will be rebuilt"


def save_manifest(out_dir: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Write the manifest atomically, sorted, so equal builds give equal files."""
    data = {"format": FORMAT, "outputs": dict(sorted(entries.items()))}
    write_atomic(out_dir / MANIFEST_NAME, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
