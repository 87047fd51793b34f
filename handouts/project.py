"""Where a project's inputs live, and the review and readability limits it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .languages import language as language_row
from .models import HELP_SECTION, SECTION_ORDER

# Seconds one handout may take to render in `build` before its render process is killed: a normal
# handout takes a few seconds; only a stuck or hostile render gets near this.
BUILD_TIME_LIMIT = 120.0
# The same per handout in `batch`, where a stuck render also holds up a worker of the pool.
BATCH_TIME_LIMIT = 300.0


@dataclass(frozen=True)
class Limits:
    """Review and readability policy; set in handouts.toml or [tool.handouts], else these."""

    # At most a year between reviews: the facts (and the rules behind them) change that fast.
    review_interval_months: int = 12
    warning_window_days: int = 60
    max_fk_grade: float = 6.0
    max_smog: float = 8.0
    min_fernandez_huerta: float = 70.0
    min_words: int = 80
    # The medicines section carries the most safety facts a patient acts on: about 750 words in
    # English and 850 in Spanish. The page budgets, not this, keep a handout short.
    max_words: int = 850
    max_brief_words: int = 200


DEFAULT_BRAND = "example-clinic"
CONFIG_FILE = "handouts.toml"


def tool_data_dir() -> Path:
    """Return the folder holding the tool's own templates/, styles/ and sample project."""
    package = Path(__file__).resolve().parent
    # An installed wheel carries them in the package; a checkout keeps them beside it.
    installed = package / "_data"
    return installed if installed.is_dir() else package.parent


@dataclass(frozen=True)
class Sections:
    """The section ids a project declares, in print order, and those every handout prints."""

    order: tuple[str, ...] = SECTION_ORDER
    always: tuple[str, ...] = (HELP_SECTION,)


@dataclass(frozen=True)
class Kit:
    """A named set of sections a clinic hands out together, e.g. "Starting buprenorphine"."""

    name: str
    sections: tuple[str, ...]


def kit_key(name: str) -> str:
    """Return the form kit names are compared in: case and surrounding spaces do not count."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Project:
    """The folders of one handout project under one root, over the tool's own templates and styles."""

    root: Path
    limits: Limits = Limits()
    sections: Sections = Sections()
    default_brand: str = DEFAULT_BRAND
    # In handouts.toml's order: the page and `--help` list them as the clinic wrote them.
    kits: tuple[Kit, ...] = ()
    # Language tag -> the font families a project adds for it ([languages."th"] fonts = [...]), drawn
    # before the tool's: a script the bundled fonts do not reach.
    language_fonts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Where a template, stylesheet or font the project does not have comes from.
    tool: Path = field(default_factory=tool_data_dir)

    @property
    def content_dir(self) -> Path:
        """Return the folder of section files, one subfolder per language."""
        return self.root / "content"

    @property
    def template_dirs(self) -> tuple[Path, ...]:
        """Return the template folders to search, the project's first."""
        return self._layers("templates")

    @property
    def style_dirs(self) -> tuple[Path, ...]:
        """Return the stylesheet folders to search, the project's first."""
        return self._layers("styles")

    def _layers(self, name: str) -> tuple[Path, ...]:
        own, tools = self.root / name, self.tool / name
        # In the tool's own checkout the two are one folder.
        return (own,) if os.path.realpath(own) == os.path.realpath(tools) else (own, tools)

    @property
    def fallbacks(self) -> tuple[tuple[Path, Path], ...]:
        """Return (project folder, tool folder) pairs: a file the first lacks is read from the second."""
        pairs = (self._layers("templates"), self._layers("styles"))
        return tuple((own, tools) for own, tools in (p for p in pairs if len(p) == 2))

    def root_of(self, path: Path) -> Path:
        """Return the root a file of the project or of the tool must stay inside: links out of it are refused."""
        tool_folders = {*self.template_dirs[1:], *self.style_dirs[1:]}
        return self.tool if any(path.is_relative_to(folder) for folder in tool_folders) else self.root

    @property
    def brands_dir(self) -> Path:
        """Return the folder with one subfolder per brand."""
        return self.root / "brands"

    @property
    def base_url(self) -> str:
        """Return the URL relative links in the HTML resolve against: the root folder."""
        return self.root.resolve().as_uri() + "/"

    @property
    def readable_dirs(self) -> tuple[Path, ...]:
        """Return the only folders the PDF renderer may read from."""
        return (*self.template_dirs, *self.style_dirs, self.brands_dir, self.content_dir)

    def relative(self, path: Path) -> str:
        """Return a path as shown in messages: relative to the root, or to the tool for the tool's own files."""
        for base, prefix in ((self.root, ""), (self.tool, "(handouts) ")):
            try:
                return prefix + path.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                continue
        return str(path)


def find_kit(project: Project, name: str) -> Kit | None:
    """Return the project's kit of this name (case and surrounding spaces ignored), or None."""
    key = kit_key(name)
    return next((kit for kit in project.kits if kit_key(kit.name) == key), None)


def language_fonts(project: Project, language: str) -> tuple[str, ...]:
    """Return the font families a language prints in: the project's own for it first, then the table's."""
    return language_row(language).stack_with(dict(project.language_fonts).get(language, ()))
