"""Where a project's inputs live, and the review and readability limits it uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    max_words: int = 700
    max_brief_words: int = 200


@dataclass(frozen=True)
class Project:
    """The folders of one handout project, all under one root."""

    root: Path
    limits: Limits = Limits()

    @property
    def content_dir(self) -> Path:
        """Return the folder of section files, one subfolder per language."""
        return self.root / "content"

    @property
    def templates_dir(self) -> Path:
        """Return the Jinja2 templates folder."""
        return self.root / "templates"

    @property
    def styles_dir(self) -> Path:
        """Return the CSS and fonts folder."""
        return self.root / "styles"

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
        return (self.templates_dir, self.styles_dir, self.brands_dir, self.content_dir)

    def relative(self, path: Path) -> str:
        """Return a path as shown in messages: relative to the root when inside it."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)
