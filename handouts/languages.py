"""The languages the tool knows, one row each: script, direction, fonts, segmentation, reading measure, names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from babel import Locale
from babel.core import UnknownLocaleError, get_global

# A content folder's name: a BCP 47 tag of a language, an optional script and an optional region
# (en, es, vi, zh-Hans, pt-BR, es-419). Never a separator or '..', so always one folder.
LANGUAGE_CODE_RE = re.compile(r"[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?")
# A tag a person, a browser or an EHR writes: a language, then optional subtags (es-MX, es_419, zh-Hant-TW).
LANGUAGE_TAG_RE = re.compile(r"([a-zñ]{2,8})(?:[-_][a-z0-9]{1,8})*")

Direction = Literal["ltr", "rtl"]
# How text splits into the units sentences are measured in: words between spaces (Latin, Arabic,
# Vietnamese, whose spaces fall between syllables) or one unit per Han character (Chinese, which
# writes no spaces; a Latin word or number inside it counts as one).
Units = Literal["words", "characters"]
# The reading measure that fits a language. English and Spanish have formulas validated on their own
# language; for the rest none is validated for health text, so only sentence length is checked, never
# a formula borrowed from English (its syllable weights mean nothing in Chinese or Arabic).
Measure = Literal["flesch-kincaid-smog", "fernandez-huerta", "sentence-length"]

# The bundled families (styles/fonts.css), in the order a page falls back through them for a
# character its language's own fonts lack: a Latin drug name in Arabic text, a phone number in Chinese.
BUNDLED_FONTS = ("Atkinson Hyperlegible", "Noto Sans", "Noto Naskh Arabic", "Noto Sans SC")


@dataclass(frozen=True)
class Language:
    """What the tool needs to know to print, check and offer one language."""

    code: str  # the BCP 47 tag: the content folder's name, the catalog's, the PDF's /Lang
    babel: str  # the Babel locale for names, numbers and dates
    script: str  # ISO 15924
    direction: Direction
    fonts: tuple[str, ...]  # CSS font families, first choice first; each must draw the language's text
    units: Units
    measure: Measure
    # The longest average sentence, in units, where the measure is sentence length. A working
    # limit from plain-language practice, said to be one wherever it is reported.
    max_sentence: int
    aliases: tuple[str, ...] = ()  # other codes people and EHRs send, lowercase
    hyphenate: bool = False  # never: a word broken by a hyphen is harder for a weak reader

    @property
    def name(self) -> str:
        """Return the language's name in English (the counselor's page and the reports speak English)."""
        locale = _locale(self.babel)
        return (locale.get_display_name("en") if locale else None) or self.code

    @property
    def own_name(self) -> str:
        """Return the language's name in itself, as a patient would look for it."""
        locale = _locale(self.babel)
        return (locale.get_display_name() if locale else None) or self.code

    @property
    def font_stack(self) -> tuple[str, ...]:
        """Return the language's fonts, then every bundled family, so no character falls to a machine's fonts."""
        return self.stack_with(())

    def stack_with(self, own: tuple[str, ...]) -> tuple[str, ...]:
        """Return the font stack with a project's own families for the language first."""
        return tuple(dict.fromkeys((*own, *self.fonts, *BUNDLED_FONTS)))


LATIN = ("Atkinson Hyperlegible",)
TABLE: dict[str, Language] = {
    row.code: row
    for row in (
        Language("en", "en", "Latn", "ltr", LATIN, "words", "flesch-kincaid-smog", 20, ("english",)),
        Language(
            "es",
            "es",
            "Latn",
            "ltr",
            LATIN,
            "words",
            "fernandez-huerta",
            20,
            # MedlinePlus Connect (and so many EHRs' infobutton links) write Spanish as "sp".
            ("sp", "esp", "spanish", "espanol", "español"),
        ),
        # Atkinson Hyperlegible has no Vietnamese tone marks (ạ, ư, ơ and 40 more): Noto Sans has all.
        # Vietnamese spaces fall between syllables, so its sentences are counted in syllables.
        Language("vi", "vi", "Latn", "ltr", ("Noto Sans",), "words", "sentence-length", 20, ("vietnamese",)),
        # Naskh is the Arabic style taught in school and used in print; a Latin word in it
        # (Narcan, a web address) falls to Atkinson Hyperlegible.
        Language(
            "ar",
            "ar",
            "Arab",
            "rtl",
            ("Noto Naskh Arabic", "Atkinson Hyperlegible"),
            "words",
            "sentence-length",
            15,
            ("arabic",),
        ),
        # Latin text and numbers first from Atkinson Hyperlegible, like every other page; Han from Noto.
        Language(
            "zh-Hans",
            "zh_Hans",
            "Hans",
            "ltr",
            ("Atkinson Hyperlegible", "Noto Sans SC"),
            "characters",
            "sentence-length",
            25,
            ("chinese", "mandarin"),
        ),
    )
}
# Codes and names people type for a language beyond its ISO codes: "sp" -> "es", "chinese" -> "zh-Hans".
ALIASES = {alias: row.code for row in TABLE.values() for alias in row.aliases}


def _locale(babel: str) -> Locale | None:
    """Return Babel's locale for a tag, or None for one Babel does not know."""
    try:
        return Locale.parse(babel.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None


def is_language_code(value: str) -> bool:
    """Tell whether a text can name a folder under content/: a BCP 47 tag, so never a path."""
    return bool(LANGUAGE_CODE_RE.fullmatch(value))


def likely_script(tag: str) -> str | None:
    """Return the script a tag is written in, explicit or likely (zh-TW: Hant; zh-CN and zh: Hans)."""
    parts = [p for p in tag.replace("_", "-").split("-") if p]
    explicit = next((p.title() for p in parts[1:] if len(p) == 4 and p.isalpha()), None)
    if explicit or not parts:
        return explicit
    language, likely = parts[0].lower(), get_global("likely_subtags")
    region = next((p.upper() for p in parts[1:] if len(p) == 2 or p.isdigit()), None)
    found = (region and likely.get(f"{language}_{region}")) or likely.get(language) or ""
    return next((p for p in found.split("_")[1:] if len(p) == 4), None)


def language(code: str) -> Language:
    """Return a language's row; one the table does not hold is read from Babel: its direction, and no formula."""
    row = TABLE.get(code)
    if row is not None:
        return row
    locale = _locale(code)
    # A clinic's own language prints in the bundled fonts (and any its project adds before them);
    # check names every character none of them can draw.
    rtl = locale is not None and locale.character_order == "right-to-left"
    babel = str(locale) if locale is not None else code
    script = likely_script(code) or "Latn"
    return Language(code, babel, script, "rtl" if rtl else "ltr", (), "words", "sentence-length", 20)


def match_language(text: str, available: list[str] | tuple[str, ...]) -> str | None:
    """Return the content language a code names (es, ES, es-MX, spa, sp, zh-CN, chi), or None when none does."""
    tag = text.strip().replace("_", "-")
    lower = tag.lower()
    for code in available:
        if code.lower() == lower and is_language_code(code):
            return code
    if LANGUAGE_TAG_RE.fullmatch(lower) is None:
        return None
    primary = lower.split("-")[0]
    # Table aliases (sp, spanish), then ISO 639-2 codes through Babel (spa, chi, ara, vie).
    named = ALIASES.get(lower) or ALIASES.get(primary) or get_global("language_aliases").get(primary) or primary
    # Only a tag with subtags asks for a script (zh-TW); a code alone (zh, chi) takes its row's.
    script = likely_script(lower) if "-" in lower and lower not in ALIASES else None
    for code in available:
        if not is_language_code(code) or code.split("-")[0].lower() != named.split("-")[0].lower():
            continue
        # zh-TW asks for Traditional characters: a Simplified folder is not an answer to it.
        if script is not None and script != language(code).script:
            continue
        return code
    return None
