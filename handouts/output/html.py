"""Fill the Jinja2 templates with a handout, giving the HTML that WeasyPrint prints."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from ..errors import HandoutError
from ..inputs.catalogs import fill, parse_catalog
from ..inputs.files import find_file
from ..languages import language as language_row
from ..layouts import LAYOUTS, page_bleed_pt
from ..markdown import (
    SCHEME_RE,
    add_table_scopes,
    address_html,
    image_target,
    images,
    is_outside,
    keep_open,
    keep_whole,
    kept_pieces,
    mark_captions,
    parser,
)
from ..models import Handout, handout_code
from ..project import Project


def markdown_to_html(text: str, source: str = "") -> Markup:
    """Render section Markdown from the file `source` (as loaded); raw HTML in it is shown as text."""
    image_base = source.rpartition("/")[0] + "/" if "/" in source else ""
    md = parser()
    tokens = md.parse(text)
    add_table_scopes(tokens)
    mark_captions(tokens)
    for image in images(tokens):
        # Images sit beside their section file; the HTML's base is the project root. Check
        # refuses the others, so only files it accepts are rewritten.
        target = image_target(image)
        if target and not is_outside(target):
            image.attrSet("src", image_base + str(image.attrGet("src")))
    for token in tokens:
        if token.children:
            token.children = keep_whole(token.children)
    return Markup(md.renderer.render(tokens, md.options, {}))  # noqa: S704 - html is off


def long_date(day: dt.date, language: str = "en", length: str = "long") -> str:
    """Format a date the way patients read it: November 20, 2026; 20 de noviembre de 2026."""
    from babel.dates import format_date

    return str(format_date(day, format=length, locale=language_row(language).babel))


def css_string(value: str) -> Markup:
    """Quote text as a CSS string that cannot end its <style> element."""
    text = value.striptags() if isinstance(value, Markup) else str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ").replace("<", "\\3c ")
    return Markup(f'"{escaped}"')  # noqa: S704 - escaped for CSS above


def load_catalog(env: jinja2.Environment, language: str) -> dict[str, str]:
    """Read a language's template strings from templates/i18n/<language>.toml, once per environment."""
    # A batch worker renders hundreds of handouts with one environment: parse each catalog once.
    cache: dict[str, dict[str, str]] = env.globals.setdefault("_catalogs", {})  # type: ignore[assignment]
    if language not in cache:
        assert env.loader is not None
        where = f"templates/i18n/{language}.toml"
        try:
            source = env.loader.get_source(env, f"i18n/{language}.toml")[0]
        except jinja2.TemplateNotFound:
            raise HandoutError(f"{where}: no template strings for language {language!r}") from None
        catalog, problems = parse_catalog(where, source.encode("utf-8"))
        if catalog is None:
            raise HandoutError(f"cannot build: {where} cannot be read", problems)
        cache[language] = {key: str(value) for key, value in catalog.items()}
    return cache[language]


def keep(value: object) -> Markup:
    """Escape text, keeping phone numbers whole and making web addresses links that break only at / and ."""
    text = value.unescape() if isinstance(value, Markup) else str(value)
    # The class is one of two fixed names, never text from the input.
    return Markup("").join(
        Markup(address_html(piece))  # noqa: S704 - address_html escapes the address
        if kind == "url"
        else Markup("{}{}</span>").format(Markup(keep_open(kind)), piece)  # noqa: S704 - a fixed tag
        if kind
        else escape(piece)
        for piece, kind in kept_pieces(text)
    )


class PrintedAddress(Markup):
    """A web address already made into its link: a template string takes it in as it is."""


def printed_address(url: str, *, bare: bool = False) -> PrintedAddress:
    """Return a web address as a link that breaks only at / and .; printed without https:// when bare."""
    url = str(url)
    shown = SCHEME_RE.sub("", url, count=1) if bare and url.lower().startswith("https://") else url
    return PrintedAddress(address_html(shown, url))


# A private-use character marks where an address goes while the rest of a template string is escaped.
ADDRESS_SLOT = "\ue000{}\ue001"


def _template_string(context: jinja2.runtime.Context, key: str, values: dict[str, object]) -> str:
    strings = context["strings"]
    if key not in strings:
        raise HandoutError(f"templates/i18n/{context['handout'].language}.toml: {key}: missing")
    plain = {name: v.unescape() if isinstance(v, Markup) else str(v) for name, v in values.items()}
    try:
        return fill(str(strings[key]), plain)
    except ValueError as exc:
        where = f"templates/i18n/{context['handout'].language}.toml: {key}"
        raise HandoutError(f"{where}: {exc}") from None


@jinja2.pass_context
def translate(context: jinja2.runtime.Context, key: str, **values: object) -> Markup:
    """Return a template string in the handout's language, escaping what fills it in."""
    # Fill in plain text first, then escape the whole, so numbers in either are kept whole. An
    # address made by the `address` filter keeps its own link: it goes in after the escaping.
    addresses = {
        ADDRESS_SLOT.format(n): v for n, v in enumerate(v for v in values.values() if isinstance(v, PrintedAddress))
    }
    slots = {id(v): slot for slot, v in addresses.items()}
    filled = keep(_template_string(context, key, {k: slots.get(id(v), v) for k, v in values.items()}))
    for slot, address in addresses.items():
        filled = Markup(filled.replace(slot, address))  # noqa: S704 - both sides are markup already
    return filled


@jinja2.pass_context
def translate_plain(context: jinja2.runtime.Context, key: str, **values: object) -> str:
    """Return a template string as plain text, for attributes; autoescaping escapes it."""
    return _template_string(context, key, values)


@jinja2.pass_context
def localized_date(context: jinja2.runtime.Context, day: dt.date) -> str:
    """Format a date in the handout's language."""
    return long_date(day, context["handout"].language)


@jinja2.pass_context
def localized_time(context: jinja2.runtime.Context, time: dt.time) -> str:
    """Format a time of day the way the handout's language writes it: 2:30 PM; 14:30."""
    from babel.dates import format_time

    # CLDR puts a narrow no-break space before AM/PM, which the bundled font lacks: a plain no-break space.
    return str(format_time(time, format="short", locale=language_row(context["handout"].language).babel)).replace(
        "\u202f", "\u00a0"
    )


@jinja2.pass_context
def localized_short_date(context: jinja2.runtime.Context, day: dt.date) -> str:
    """Format a date short, for the tri-fold's review line: Nov 20, 2026; 20 nov 2026."""
    return long_date(day, context["handout"].language, "medium")


def font_families(families: Sequence[str]) -> Markup:
    """Quote font family names as a CSS font-family list."""
    return Markup(", ".join(css_string(family) for family in families))  # noqa: S704 - each quoted for CSS


def text_direction(text: str) -> str:
    """Return the direction of a text by its first strong letter, as dir="auto" would (WeasyPrint ignores it)."""
    # An English source title in an Arabic record reads left to right; an Arabic one right to left.
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


def camel(section_id: str) -> str:
    """Turn a section id into a PDF metadata key part: behavioral-therapy -> BehavioralTherapy."""
    return "".join(part.capitalize() for part in re.split(r"[^a-z0-9]+", section_id) if part)


def qr_data_uri(url: str) -> str:
    """Return a vector QR code for a URL as an SVG data: URI, made locally with segno."""
    import segno

    # Black on white, a 4-module quiet zone and at least level M error correction scan best.
    return str(segno.make(url, error="m", micro=False).svg_data_uri(scale=1, border=4, omitsize=True, nl=False))


def strict_environment(template_dirs: Sequence[Path]) -> jinja2.Environment:
    """Return a Jinja2 environment over folders searched in order, autoescaping everything and failing on any typo."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(template_dirs)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def environment(template_dirs: Sequence[Path]) -> jinja2.Environment:
    """Return the handout templates' strict environment with their filters and globals."""
    env = strict_environment(template_dirs)
    env.filters["markdown"] = markdown_to_html
    env.filters["long_date"] = localized_date
    env.filters["short_date"] = localized_short_date
    env.filters["time_of_day"] = localized_time
    env.filters["css_string"] = css_string
    env.filters["font_families"] = font_families
    env.filters["text_direction"] = text_direction
    env.globals["t"] = translate
    env.globals["t_plain"] = translate_plain
    env.filters["camel"] = camel
    env.filters["qr_data_uri"] = qr_data_uri
    env.filters["keep"] = keep
    env.filters["address"] = printed_address
    env.filters["handout_code"] = handout_code
    env.globals["page_bleed"] = page_bleed_pt
    return env


def render_html(
    handout: Handout,
    env: jinja2.Environment,
    *,
    base_href: str | None = None,
    sheets: Sequence[str] = (),
    extras: bool = False,
) -> str:
    """Render the handout's layout template to HTML, linking `sheets`; without them the caller supplies the CSS.

    `extras` adds what a folded layout prints on panels its sections leave free.
    """
    layout = LAYOUTS[handout.layout]
    return env.get_template(layout.template).render(
        handout=handout,
        layout=layout,
        brand=handout.brand,
        base_href=base_href,
        sheets=sheets,
        extras=extras,
        strings=load_catalog(env, handout.language),
        lang=language_row(handout.language),
    )


def stylesheet_paths(project: Project, layout: str) -> list[Path]:
    """Return the stylesheets of a layout, in order: each the project's own if it has one, else the tool's."""
    return [find_file(project.style_dirs, name) for name in LAYOUTS[layout].stylesheets]
