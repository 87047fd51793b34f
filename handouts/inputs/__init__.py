"""The input stage: read each kind of input (content, brands, catalogs, assets, settings, jobs) in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import Problem
from ..models import Brand, Section
from ..project import Project, Sections


@dataclass(frozen=True)
class Inputs:
    """Everything handouts are composed from, loaded from disk once."""

    sections: dict[str, dict[str, Section]]  # language -> section id -> section
    # language -> section id (or "" for the language itself) -> problems found loading it
    problems: dict[str, dict[str, list[Problem]]]
    paths: dict[str, dict[str, str]]  # language -> section id -> its file, as messages show it
    brands: dict[str, tuple[Brand | None, list[Problem]]]
    assets: dict[str, str]  # templates, styles, fonts -> digest
    plan: Sections = field(default_factory=Sections)  # the project's section ids, in print order
    # Language -> the font families the project adds for it, before the table's ([languages] in handouts.toml).
    fonts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def assets_digest(self) -> str:
        """Return one digest of all templates, styles and fonts."""
        from .assets import combine_digests

        return combine_digests(self.assets)


def load_inputs(
    project: Project, languages: Iterable[str], brands: Iterable[str], today: dt.date, *, markdown: bool = True
) -> Inputs:
    """Load the content of some languages and some brands, with every problem found."""
    from .assets import read_assets
    from .brands import load_brand
    from .catalogs import catalog_file_problems
    from .sections import load_sections

    assets, asset_problems = read_assets(project)
    # Each language once, however many outputs ask for it.
    loaded = {language: load_sections(project, language, today, markdown=markdown) for language in set(languages)}
    problems = {language: content.problems for language, content in loaded.items()}
    for language, found in problems.items():
        # A catalog or a font that cannot be used stops every handout in the language, before any render.
        # A catalog is a template file too: one that cannot be read is named once.
        extra = list(dict.fromkeys(catalog_file_problems(project, language) + asset_problems))
        if extra:
            found[""] = [*found.get("", []), *extra]
    return Inputs(
        sections={language: content.sections for language, content in loaded.items()},
        problems=problems,
        paths={language: content.paths for language, content in loaded.items()},
        brands={brand: load_brand(project, brand) for brand in dict.fromkeys(brands)},
        assets=assets,
        plan=project.sections,
        fonts=dict(project.language_fonts),
    )
