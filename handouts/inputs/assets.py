"""Templates, styles and fonts: digests that say what changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..project import Project


def asset_digests(project: Project) -> dict[str, str]:
    """Hash the templates, the stylesheets and the fonts, each group apart, to say what changed."""
    fonts = project.styles_dir / "fonts"
    groups: dict[str, list[Path]] = {"templates": [], "styles": [], "fonts": []}
    for folder in (project.templates_dir, project.styles_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            group = "templates" if folder == project.templates_dir else "fonts" if fonts in path.parents else "styles"
            groups[group].append(path)
    digests = {}
    for group, paths in groups.items():
        digest = hashlib.sha256()
        for path in paths:
            digest.update(project.relative(path).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        digests[group] = digest.hexdigest()
    return digests


def combine_digests(digests: dict[str, str]) -> str:
    """Fold named digests into one, independent of their order."""
    return hashlib.sha256(repr(sorted(digests.items())).encode()).hexdigest()
