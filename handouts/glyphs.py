"""Characters a language's fonts cannot draw: each would print as an empty box, or in a machine's font."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple

from .errors import Problem
from .languages import language as language_row
from .models import Brand, Section

# Never drawn as glyphs: controls (a line break), format characters (the zero-width space that lets an
# address break, the isolates that keep a phone number left to right) and the ordinary space.
UNDRAWN_CATEGORIES = ("Cc", "Cf")
MAX_NAMED = 5


def glyph_problems(
    language: str,
    fields: Iterable[tuple[str, str, str]],
    fonts: Mapping[str, frozenset[int]],
    families: Sequence[str] | None = None,
) -> list[Problem]:
    """Return, for each (file, field, text), the characters none of the language's fonts can draw."""
    # `families`: the language's font stack with a project's own fonts first; the table's by default.
    stack = [family for family in (families or language_row(language).font_stack) if family in fonts]
    drawn = frozenset().union(*(fonts[family] for family in stack))
    found = []
    for path, field, text in fields:
        missing = sorted(
            {c for c in text if ord(c) not in drawn and c != " " and unicodedata.category(c) not in UNDRAWN_CATEGORIES}
        )
        if not missing:
            continue
        named = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:MAX_NAMED])
        more = f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
        fonts_named = ", ".join(stack) or "none declared"
        message = (
            f"{named}{more} cannot be drawn by the {language} fonts ({fonts_named}): it would print as an "
            "empty box or in whatever font a machine has; rewrite it, or add a font that has it"
        )
        found.append(Problem(path, field, message))
    return found


def section_texts(sections: Iterable[Section]) -> list[tuple[str, str, str]]:
    """Return the printed text of each section as (file, field, text)."""
    texts = []
    for s in sections:
        texts += [(s.path, "title", s.title), (s.path, "body", s.body), (s.path, "brief", s.brief)]
        texts += [(s.path, f"key_points[{i}]", point) for i, point in enumerate(s.key_points)]
        # The About box prints each reviewer's name, credentials and role.
        texts += [(s.path, f"reviewers[{i}]", " ".join(astuple(r))) for i, r in enumerate(s.reviewers)]
    return texts


def catalog_texts(language: str, catalog: Mapping[str, object] | None) -> list[tuple[str, str, str]]:
    """Return each template string of a language's catalog as (file, key, text)."""
    if catalog is None:
        return []
    path = f"templates/i18n/{language}.toml"
    return [(path, key, value) for key, value in sorted(catalog.items()) if isinstance(value, str)]


def brand_texts(brand: Brand, language: str) -> list[tuple[str, str, str]]:
    """Return the brand fields a handout in a language prints, named as brand.toml names them."""
    shown = brand.for_language(language)
    own = dict(dict(brand.localized).get(language, ()))
    path = f"brands/{brand.id}/brand.toml"
    fields = ("name", "short_name", "phone", "address", "hours", "note", "website")
    # A field the language does not translate prints the English one, and is named as the English.
    return [(path, f"{language}.{f}" if f in own else f, str(getattr(shown, f))) for f in fields]
