"""Decide what pruning a stale output may delete: only files the tool wrote, unchanged, inside the output folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .folder import target_problem
from .manifest import ManifestEntry, sha256_file

Action = Literal["delete", "keep", "refuse"]


@dataclass(frozen=True)
class PruneStep:
    """What pruning does with one file of a stale output, and why."""

    key: str  # the file, relative to the output folder
    action: Action
    reason: str = ""


def prune_steps(out_dir: Path, entry: ManifestEntry) -> list[PruneStep]:
    """Return a step for each file of a stale output: its PDF, and its HTML if it has one.

    A file is deleted only if it is a plain file inside the output folder, reached through no link,
    whose SHA-256 still matches what the manifest recorded. Anything else stays, with the reason.
    """
    steps = []
    for key, recorded in ((entry.path, entry.sha256), (entry.html, entry.html_sha256)):
        if key is None:
            continue
        problem = target_problem(out_dir, key)
        if problem is not None:
            steps.append(PruneStep(key, "refuse", f"{problem}; not deleted"))
            continue
        path = out_dir / key
        if not os.path.lexists(path):
            continue
        if recorded is None:
            steps.append(PruneStep(key, "keep", "no checksum recorded for it; not deleted"))
            continue
        try:
            actual = sha256_file(path)
        except OSError as exc:
            steps.append(PruneStep(key, "refuse", f"cannot read: {exc.strerror or exc}; not deleted"))
            continue
        if actual != recorded:
            steps.append(PruneStep(key, "keep", "changed since it was built; not deleted"))
        else:
            steps.append(PruneStep(key, "delete"))
    return steps
