"""The input stage: read each kind of input (content, brands, catalogs, assets, settings, jobs) in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import Problem
from ..models import Brand, Section
from ..project import Project


@dataclass(frozen=True)
class Inputs:
    """Everything handouts are composed from, loaded from disk once."""

    sections: dict[str, dict[str, Section]]  # language -> section id -> section
    # language -> section id (or "" for the language itself) -> problems found loading it
    problems: dict[str, dict[str, list[Problem]]]
    brands: dict[str, tuple[Brand | None, list[Problem]]]
    assets: dict[str, str]  # templates, styles, fonts -> digest

    @property
    def assets_digest(self) -> str:
        """Return one digest of all templates, styles and fonts."""
        from ..loader import combine_digests

        return combine_digests(self.assets)


def load_inputs(project: Project, languages: Iterable[str], brands: Iterable[str], today: dt.date) -> Inputs:
    """Load the content of some languages and some brands, with every problem found."""
    from ..loader import asset_digests, load_brand, load_sections

    sections, problems = {}, {}
    for language in dict.fromkeys(languages):
        sections[language], found = load_sections(project, language, today)
        problems[language] = by_section(found)
    return Inputs(
        sections=sections,
        problems=problems,
        brands={brand: load_brand(project, brand) for brand in dict.fromkeys(brands)},
        assets=asset_digests(project),
    )


def by_section(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    """Group a language's problems by the section file they are about; "" for the language itself."""
    grouped: dict[str, list[Problem]] = {}
    for problem in problems:
        name = problem.path.rsplit("/", 1)[-1]
        grouped.setdefault(name.removesuffix(".md") if name.endswith(".md") else "", []).append(problem)
    return grouped
