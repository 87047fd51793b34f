"""Make a clinic's own handout project: settings, the sample sections, a brand to fill in."""

from __future__ import annotations

import os
import shutil
import string
import tempfile
from pathlib import Path

from . import __version__
from .errors import HandoutError
from .inputs.fields import is_valid_id
from .project import CONFIG_FILE, tool_data_dir

SKELETON = Path(__file__).resolve().parent / "skeleton"
# What init puts in the folder; it refuses a folder that already has any of them.
MADE = (CONFIG_FILE, "README.md", ".gitignore", "content", "brands", "jobs")
# The sample content: sections and their pictures, nothing else a checkout may hold.
SAMPLE_SUFFIXES = (".md", ".svg", ".png")


def _skeleton(name: str, **values: str) -> str:
    # string.Template: the starter files hold TOML tables and Markdown, whose braces str.format would take.
    return string.Template((SKELETON / name).read_text(encoding="utf-8")).substitute(values)


def make_project(target: Path, brand_id: str, *, tool: Path | None = None) -> list[str]:
    """Make a project in `target` (new or without any of the files init writes); return what it made."""
    if not is_valid_id(brand_id):
        raise HandoutError(f"--brand: {brand_id!r} is not a folder name of lowercase letters, digits and hyphens")
    try:
        if target.is_symlink():
            raise HandoutError(f"{target}: a symbolic link; name the folder itself")
        if target.exists() and not target.is_dir():
            raise HandoutError(f"{target}: not a folder")
        taken = [name for name in MADE if os.path.lexists(target / name)]
        if taken:
            # Never over anything that is not ours: a second init, or a folder with its own README.
            raise HandoutError(f"{target}: already has {', '.join(taken)}; init writes only into a new or empty folder")
        target.mkdir(parents=True, exist_ok=True)
        # Everything is made in a folder beside the others, then moved into place entry by entry: an
        # init that fails part way leaves no half-made project.
        staging = Path(tempfile.mkdtemp(prefix=".handouts-init-", dir=target))
    except OSError as exc:  # a parent that is a file, a read-only folder, a name too long
        raise HandoutError(f"{target}: cannot make the project: {exc.strerror or exc}") from None
    content = (tool or tool_data_dir()) / "content"
    try:
        values = {"brand_id": brand_id, "brand_name": brand_id, "version": __version__}
        (staging / CONFIG_FILE).write_text(_skeleton(CONFIG_FILE, **values), encoding="utf-8")
        (staging / "README.md").write_text(_skeleton("README.md", **values), encoding="utf-8")
        shutil.copyfile(SKELETON / "gitignore", staging / ".gitignore")
        for language in sorted(p.name for p in content.iterdir() if p.is_dir()):
            folder = staging / "content" / language
            folder.mkdir(parents=True)
            for path in sorted((content / language).iterdir()):
                if path.is_file() and path.suffix in SAMPLE_SUFFIXES:
                    shutil.copyfile(path, folder / path.name)
        brand = staging / "brands" / brand_id
        brand.mkdir(parents=True)
        shutil.copyfile(SKELETON / "brand.toml", brand / "brand.toml")
        shutil.copyfile(SKELETON / "logo.svg", brand / "logo.svg")
        (staging / "jobs").mkdir()
        shutil.copyfile(SKELETON / "jobs.toml", staging / "jobs" / "handouts.toml")
        moved: list[str] = []
        try:
            for name in MADE:
                os.rename(staging / name, target / name)
                moved.append(name)
        except BaseException:  # Ctrl-C too: a project is made whole or not at all
            for name in moved:  # ours, moved a moment ago: back into the staging folder, removed below
                os.rename(target / name, staging / name)
            raise
    except OSError as exc:
        raise HandoutError(f"{target}: cannot make the project: {exc.strerror or exc}") from None
    finally:
        # Only the staging folder, which this call made; what was moved out of it stays.
        shutil.rmtree(staging, ignore_errors=True)
    return [f"{name}/" if (target / name).is_dir() else name for name in MADE]
