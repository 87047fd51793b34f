"""HL7 Infobutton: read a URL-based request, find the sections it names, answer as an Atom feed or JSON.

No web framework and no I/O: the web app passes the query string's (name, value) pairs in and
sends the bytes or dict back. A request, with Release 4 parameter names:

    ?mainSearchCriteria.v.c=F11.20&mainSearchCriteria.v.cs=2.16.840.1.113883.6.90
     &informationRecipient.languageCode.c=es&knowledgeResponseType=application/json

The answer has the shape of the HL7 Infobutton knowledge response as MedlinePlus Connect gives it:
a feed with one entry per matching section, each linking to its PDF. The feed echoes the search
criteria it read as categories, as MedlinePlus Connect does: `scheme` names the request parameter
and `term` holds its value, a v.c and a v.cs category per code in the order read, then the
display name:

    <category scheme="mainSearchCriteria.v.c" term="F11.20"/>
    <category scheme="mainSearchCriteria.v.cs" term="2.16.840.1.113883.6.90"/>

A request without a code is answered by its display name alone: a section answers when its title
or one of its keywords is in the name, as whole words, whatever the case or accents
(`mainSearchCriteria.v.dn=Suboxone 8 mg-2 mg film` finds the medicines section).

The requesting organization (`representedOrganization.id.root`, an OID) picks the brand a clinic
declared it for (`organization_ids` in brand.toml); the web app falls back to its default brand.

Every value comes from an unauthenticated request or a content file: reading never raises,
codes are capped in number and length, and ElementTree and the JSON encoder do all escaping.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

from ..codes import Codes, code_matches, system_for_oid
from ..languages import match_language
from ..models import BASE_LANGUAGE, Brand, Section

if TYPE_CHECKING:
    from markdown_it.token import Token

CODE_PARAMETER = "mainSearchCriteria.v.c"
SYSTEM_PARAMETER = "mainSearchCriteria.v.cs"
DISPLAY_NAME_PARAMETER = "mainSearchCriteria.v.dn"
LANGUAGE_PARAMETER = "informationRecipient.languageCode.c"
RESPONSE_TYPE_PARAMETER = "knowledgeResponseType"
# The organization the request comes from, by its OID; Release 4's Appendix 1 also lists its name,
# assignedEntity.representedOrganization.n, which is free text and is not read: two clinics may share one.
ORGANIZATION_PARAMETER = "representedOrganization.id.root"

# An EHR sends a few dozen parameters and one or a few codes; anything far beyond is not a request.
MAX_PARAMETERS = 200
MAX_CODES = 20
MAX_CODE_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 200
MAX_SUMMARY_LENGTH = 300

ResponseType = Literal["atom", "json", "html"]
# knowledgeResponseType -> the answer's form; any other asks for the default, Atom.
RESPONSE_TYPES: dict[str, ResponseType] = {
    "text/xml": "atom",
    "application/atom+xml": "atom",
    "application/json": "json",
    "text/html": "html",
}
# What the web app sends as Content-Type for each form: Atom as text/xml, the type the request names.
MEDIA_TYPES: dict[ResponseType, str] = {
    "atom": "text/xml; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
}
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Characters XML 1.0 cannot hold (most controls, lone surrogates, U+FFFE/FFFF): a feed with one does
# not parse, and a lone surrogate cannot even be encoded as UTF-8.
NOT_XML_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# A sentence ends at ., ! or ? before a space: a long summary is cut after the last one that fits.
SENTENCE_END_RE = re.compile(r"[.!?](?= )")
# A word of a display name, a title or a keyword: letters and digits; anything else separates words.
WORD_RE = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class SearchCode:
    """One code of a request and the OID of its code system, as sent ("" when no system came with it)."""

    code: str
    system: str


@dataclass(frozen=True)
class InfobuttonRequest:
    """What an Infobutton request asks: codes, a display name, a content language and the answer's form."""

    codes: tuple[SearchCode, ...] = ()
    display_name: str = ""
    language: str = BASE_LANGUAGE
    response_type: ResponseType = "atom"
    # The OID of the requesting organization, without urn:oid: ("" when none came).
    organization: str = ""

    @property
    def media_type(self) -> str:
        """Return the Content-Type of the answer the request asks for."""
        return MEDIA_TYPES[self.response_type]


@dataclass(frozen=True)
class FeedEntry:
    """One section in an answer: its title, a plain-text summary and the absolute URL of its PDF."""

    section_id: str
    title: str
    summary: str
    url: str
    language: str
    updated: dt.date


def _code_value(value: str) -> str:
    value = value.strip()
    # Too long or unprintable: not a code; kept as "" so the codes and systems after it still pair up.
    return value if len(value) <= MAX_CODE_LENGTH and value.isprintable() else ""


def _free_text(value: str, limit: int) -> str:
    text = "".join(char if char.isprintable() else " " for char in value[: limit * 2])
    return " ".join(text.split())[:limit]


def _oid_value(value: str) -> str:
    value = _code_value(value)
    return value[8:].strip() if value[:8].lower() == "urn:oid:" else value


def content_language(value: str, languages: Collection[str]) -> str:
    """Return the content language a requested language names (es-MX, spa, sp: es; zh-CN: zh-Hans), else the base."""
    return match_language(value, tuple(languages)) or BASE_LANGUAGE


def response_type(value: str) -> ResponseType:
    """Return the answer's form a knowledgeResponseType asks for: Atom unless JSON or HTML is named."""
    return RESPONSE_TYPES.get(value.split(";")[0].strip().lower(), "atom")


def parse_request(pairs: Iterable[tuple[str, str]], languages: Collection[str] = (BASE_LANGUAGE,)) -> InfobuttonRequest:
    """Read an Infobutton request from its query's (name, value) pairs; unknown names are ignored, nothing raises."""
    codes: list[str] = []
    systems: list[str] = []
    display_name = ""
    language = ""
    organization = ""
    answer: ResponseType = "atom"
    seen: set[str] = set()
    for pair in islice(pairs, MAX_PARAMETERS):
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(part, str) for part in pair)):
            continue
        name, value = pair[0].strip().lower(), pair[1]
        # Repeated codes and systems pair up in order; of any other parameter the first counts.
        if name == CODE_PARAMETER.lower():
            codes += [_code_value(value)] if len(codes) < MAX_CODES else []
        elif name == SYSTEM_PARAMETER.lower():
            systems += [_code_value(value)] if len(systems) < MAX_CODES else []
        elif name in seen:
            continue
        elif name == DISPLAY_NAME_PARAMETER.lower():
            display_name = _free_text(value, MAX_DISPLAY_NAME_LENGTH)
        elif name == LANGUAGE_PARAMETER.lower():
            language = value[:MAX_CODE_LENGTH]
        elif name == RESPONSE_TYPE_PARAMETER.lower():
            answer = response_type(value[:MAX_CODE_LENGTH])
        elif name == ORGANIZATION_PARAMETER.lower():
            organization = _oid_value(value)
        seen.add(name)
    paired = (SearchCode(code, systems[i] if i < len(systems) else "") for i, code in enumerate(codes))
    return InfobuttonRequest(
        codes=tuple(search for search in paired if search.code),
        display_name=display_name,
        language=content_language(language, languages),
        response_type=answer,
        organization=organization,
    )


def matching_sections(
    request: InfobuttonRequest, codes_by_section: Mapping[str, Section | Codes], order: Sequence[str]
) -> tuple[str, ...]:
    """Return the ids, in project order, of the sections whose declared codes match a code of the request.

    ICD-10-CM codes match in any case with the dot optional, and a declared F11.* matches F11,
    F11.2 and F11.20; SNOMED CT and RxNorm codes match exactly. A code of an unknown code system,
    or with none, matches nothing. The display name is not read here: see `requested_sections`.
    """
    asked = [(system.name, search.code) for search in request.codes if (system := system_for_oid(search.system))]
    if not asked:
        return ()
    found = []
    for section_id in dict.fromkeys(order):
        entry = codes_by_section.get(section_id)
        if entry is None:
            continue
        declared = dict(entry.codes if isinstance(entry, Section) else entry)
        if any(code_matches(name, code, asked_code) for name, asked_code in asked for code in declared.get(name, ())):
            found.append(section_id)
    return tuple(found)


def words(text: str) -> tuple[str, ...]:
    """Return the words of a text as matching compares them: case-folded, without accents, letters and digits only."""
    # Only a letter or digit is unfolded (full-width Ｓ to S, ﬁ to fi): unfolded, a ™ would become TM
    # and glue itself to the word before it. NFKD then parts é into e and an accent, which is dropped.
    unfolded = "".join(
        unicodedata.normalize("NFKD", char) if char.isalnum() else " " if not unicodedata.combining(char) else char
        for char in unicodedata.normalize("NFC", text).casefold()
    )
    plain = "".join(char for char in unicodedata.normalize("NFKD", unfolded) if not unicodedata.combining(char))
    return tuple(WORD_RE.findall(plain))


def _holds(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """Tell whether the words of `needle` come one after another somewhere in `haystack`."""
    size = len(needle)
    return size > 0 and any(tuple(haystack[i : i + size]) == tuple(needle) for i in range(len(haystack) - size + 1))


def named_sections(display_name: str, sections: Iterable[Section], order: Sequence[str]) -> tuple[str, ...]:
    """Return the ids, in project order, of the sections whose title or a keyword is in a display name, as words.

    "Suboxone 8 mg-2 mg sublingual film" holds the keyword Suboxone; "Narcan" holds narcan, not
    naloxone. Only whole words count, so "MAT" is not found in "format", and a name is never
    matched by a part of a title: an EHR's "use" must not bring up "Medicines for opioid use disorder".
    """
    asked = words(display_name)
    if not asked:
        return ()
    found = {
        section.id
        for section in sections
        if any(_holds(asked, words(phrase)) for phrase in (section.title, *section.keywords))
    }
    return tuple(section_id for section_id in dict.fromkeys(order) if section_id in found)


def requested_sections(
    request: InfobuttonRequest,
    english: Mapping[str, Section],
    order: Sequence[str],
    translated: Mapping[str, Section] | None = None,
) -> tuple[str, ...]:
    """Return the ids of the sections a request asks for: by its codes when it sends any, else by its display name.

    A code, when one comes, is what the EHR means; its display name is then only echoed. Without
    one, the name is matched against the English titles and keywords and the titles of the
    `translated` sections (the request's language).
    """
    if request.codes:
        return matching_sections(request, english, order)
    return named_sections(request.display_name, [*english.values(), *(translated or {}).values()], order)


def organization_brand(organization: str, brands: Sequence[Brand]) -> Brand | None:
    """Return the first of `brands` that declares it answers for an organization's OID, or None."""
    if not organization:
        return None
    return next((brand for brand in brands if organization in brand.organization_ids), None)


def _inline_text(token: Token) -> str:
    parts = []
    for child in token.children or ():
        if child.type in ("text", "code_inline", "image"):  # an image's content is its alt text
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split())


def plain_blocks(markdown: str) -> list[str]:
    """Return the plain text of each paragraph and list item of section Markdown; headings and tables left out."""
    # Imported here: only a request that found sections needs the Markdown parser.
    from ..markdown import parsed

    blocks = []
    skipping = 0
    for token in parsed(markdown):
        if token.type in ("heading_open", "table_open"):
            skipping += 1
        elif token.type in ("heading_close", "table_close"):
            skipping -= 1
        elif token.type == "inline" and not skipping and (text := _inline_text(token)):
            blocks.append(text)
    return blocks


def shortened(text: str, limit: int = MAX_SUMMARY_LENGTH) -> str:
    """Return text of at most `limit` characters: whole sentences if one fits, else whole words and an ellipsis."""
    if len(text) <= limit:
        return text
    ends = [match.end() for match in SENTENCE_END_RE.finditer(text, 0, limit)]
    if ends:
        return text[: ends[-1]]
    words = text[: limit - 1].rsplit(" ", 1)[0]
    return words.rstrip(" ,;:") + "…"


def summary_text(section: Section, limit: int = MAX_SUMMARY_LENGTH) -> str:
    """Return a section's summary as plain text: the first paragraph of its brief (else of its body), shortened."""
    # The opening paragraph is written as the lead; the lists after it, cut short, would leave out
    # choices or steps.
    blocks = plain_blocks(section.brief)[:1] or plain_blocks(section.body)[:1]
    return shortened(blocks[0] if blocks else section.title, limit)


def feed_entry(section: Section, url: str) -> FeedEntry:
    """Return the feed entry of a section whose PDF is at an absolute URL."""
    return FeedEntry(section.id, section.title, summary_text(section), url, section.language, section.last_reviewed)


def _clean(text: str) -> str:
    return NOT_XML_RE.sub("", text)


def _timestamp(moment: dt.datetime | dt.date) -> str:
    # RFC 3339, as Atom requires: a date is its midnight in UTC, a naive time is taken as UTC.
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def search_criteria(request: InfobuttonRequest) -> list[tuple[str, str]]:
    """Return the (parameter, value) pairs a feed echoes as its categories: each code and its system, the name."""
    pairs = [
        pair for search in request.codes for pair in ((CODE_PARAMETER, search.code), (SYSTEM_PARAMETER, search.system))
    ]
    pairs.append((DISPLAY_NAME_PARAMETER, request.display_name))
    return [(name, value) for name, value in pairs if value]


def search_description(request: InfobuttonRequest) -> str:
    """Return a feed's subtitle: the display name sent, else the codes with their systems' names."""
    if request.display_name:
        return request.display_name
    named = []
    for search in request.codes:
        system = system_for_oid(search.system)
        named.append(f"{system.label if system else search.system or 'no code system'} {search.code}")
    return ", ".join(named)


def atom_feed(
    request: InfobuttonRequest,
    entries: Sequence[FeedEntry],
    *,
    feed_url: str,
    title: str,
    updated: dt.datetime,
    author: str,
) -> bytes:
    """Return the answer as an Atom 1.0 document in UTF-8; no entries is still a valid feed."""

    def add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attributes.items()})
        element.text = None if text is None else _clean(text)
        return element

    # Atom's namespace as the default one, declared by hand: ElementTree's default_namespace option
    # refuses attributes without a namespace, and register_namespace would change a global table.
    feed = ET.Element("feed", {"xmlns": ATOM_NS, XML_LANG: _clean(request.language)})
    add(feed, "title", title, type="text")
    if subtitle := search_description(request):
        add(feed, "subtitle", subtitle, type="text")
    add(add(feed, "author"), "name", author)
    add(feed, "updated", _timestamp(updated))
    add(feed, "id", feed_url)
    add(feed, "link", rel="self", href=feed_url)
    for scheme, term in search_criteria(request):
        add(feed, "category", scheme=scheme, term=term)
    for entry in entries:
        item = add(feed, "entry")
        item.set(XML_LANG, _clean(entry.language))
        add(item, "title", entry.title, type="text")
        pdf = {"rel": "alternate", "type": "application/pdf", "hreflang": entry.language, "title": entry.title}
        add(item, "link", href=entry.url, **pdf)
        add(item, "id", entry.url)
        add(item, "updated", _timestamp(entry.updated))
        add(item, "summary", entry.summary, type="text")
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


def json_feed(
    request: InfobuttonRequest,
    entries: Sequence[FeedEntry],
    *,
    feed_url: str,
    title: str,
    updated: dt.datetime,
    author: str,
) -> dict[str, Any]:
    """Return the answer as MedlinePlus Connect's JSON form of the Atom feed: an element's text is its "_value"."""
    feed: dict[str, Any] = {
        "lang": _clean(request.language),
        "title": {"_value": _clean(title), "type": "text"},
    }
    if subtitle := search_description(request):
        feed["subtitle"] = {"_value": _clean(subtitle), "type": "text"}
    feed |= {
        "author": {"name": {"_value": _clean(author)}},
        "updated": {"_value": _timestamp(updated)},
        "id": {"_value": _clean(feed_url)},
        "link": [{"rel": "self", "href": _clean(feed_url)}],
        "category": [{"scheme": scheme, "term": _clean(term)} for scheme, term in search_criteria(request)],
        "entry": [
            {
                "lang": _clean(entry.language),
                "title": {"_value": _clean(entry.title), "type": "text"},
                "link": [
                    {
                        "href": _clean(entry.url),
                        "rel": "alternate",
                        "type": "application/pdf",
                        "hreflang": _clean(entry.language),
                        "title": _clean(entry.title),
                    }
                ],
                "id": {"_value": _clean(entry.url)},
                "updated": {"_value": _timestamp(entry.updated)},
                "summary": {"_value": _clean(entry.summary), "type": "text"},
            }
            for entry in entries
        ],
    }
    return {"feed": feed}
