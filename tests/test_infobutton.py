"""Codes in section front matter, and the Infobutton library: requests, matching, Atom and JSON answers."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, TODAY, Invoke, approve, replace_in

from handouts.codes import CODE_SYSTEMS, Codes, code_matches, verhoeff_check_digit, verhoeff_valid
from handouts.inputs.sections import load_sections, section_from_text
from handouts.models import Brand, Section
from handouts.project import Limits, Project
from handouts.serve.infobutton import (
    MAX_CODES,
    FeedEntry,
    InfobuttonRequest,
    SearchCode,
    atom_feed,
    content_language,
    feed_entry,
    json_feed,
    matching_sections,
    named_sections,
    organization_brand,
    parse_request,
    requested_sections,
    shortened,
    summary_text,
    words,
)

ICD10CM = "2.16.840.1.113883.6.90"
SNOMED = "2.16.840.1.113883.6.96"
RXNORM = "2.16.840.1.113883.6.88"
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

SECTION = """---
id: mat
title: Medicines for opioid use disorder
version: 2.0.0
language: {language}
{translation}status: draft
last_reviewed: 2026-10-01
{codes}sources:
  - title: "FDA: MOUD"
    url: https://www.fda.gov/moud
---
You can take medicine. It helps.
"""


def parse(codes: str, language: str = "en") -> tuple[Section | None, list[str]]:
    translation = "translation_of: 2.0.0\n" if language != "en" else ""
    text = SECTION.format(language=language, translation=translation, codes=codes)
    section, problems = section_from_text(
        f"content/{language}/mat.md", text, expected_id="mat", expected_language=language, today=TODAY, limits=Limits()
    )
    return section, [str(p) for p in problems]


# --- Codes in front matter -------------------------------------------------------------------


def test_codes_load_normalized_and_sorted() -> None:
    codes = (
        "codes:\n"
        '  snomed: ["75544000", "5602001"]\n'
        '  icd10cm: ["f11.*", "T40.4*", " f11.20 "]\n'
        '  rxnorm: ["6813", "1819"]\n'
    )
    section, problems = parse(codes)
    assert problems == []
    assert section is not None
    assert section.codes == (
        ("icd10cm", ("F11.*", "F11.20", "T40.4*")),
        ("rxnorm", ("1819", "6813")),
        ("snomed", ("5602001", "75544000")),
    )
    hash(section)  # still a hashable, frozen model


def test_codes_are_optional_and_do_not_change_the_fingerprint() -> None:
    without, problems = parse("")
    assert problems == [] and without is not None and without.codes == ()
    with_codes, _ = parse('codes:\n  icd10cm: ["F11.*"]\n')
    assert with_codes is not None
    # Approval covers the printed text; codes are never printed.
    assert with_codes.fingerprint == without.fingerprint
    assert with_codes.digest != without.digest


BAD_ICD = (
    "is not an ICD-10-CM code (3 characters like F11, then optionally a dot and up to 4 more, like F11.20; "
    "or a code's start then * for every code under it, like F11.*)"
)


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (
            "codes: F11.*\n",
            "content/en/mat.md: codes: expected code systems with their codes, like icd10cm: [\"F11.*\"], got 'F11.*'",
        ),
        (
            "codes: {}\n",
            'content/en/mat.md: codes: expected code systems with their codes, like icd10cm: ["F11.*"], got {}',
        ),
        (
            'codes:\n  icd10: ["F11.*"]\n',
            "content/en/mat.md: codes.icd10: unknown code system (did you mean 'icd10cm'?); "
            "expected one of icd10cm, snomed, rxnorm",
        ),
        (
            'codes:\n  loinc: ["1234-5"]\n',
            "content/en/mat.md: codes.loinc: unknown code system; expected one of icd10cm, snomed, rxnorm",
        ),
        (
            'codes:\n  rxnorm: "1819"\n',
            "content/en/mat.md: codes.rxnorm: expected a list of codes, like [\"1819\"], got '1819'",
        ),
        (
            "codes:\n  snomed: [75544000]\n",
            'content/en/mat.md: codes.snomed: expected each code as quoted text, like "75544000", got 75544000',
        ),
        (
            "codes:\n  rxnorm: []\n",
            "content/en/mat.md: codes.rxnorm: empty; list at least one code, or leave rxnorm out",
        ),
        (
            'codes:\n  icd10cm: ["F11.*", "f11.*"]\n',
            "content/en/mat.md: codes.icd10cm: 'F11.*' is listed twice",
        ),
        ('codes:\n  icd10cm: ["F1.1"]\n', f"content/en/mat.md: codes.icd10cm: 'F1.1' {BAD_ICD}"),
        ('codes:\n  icd10cm: ["F1120"]\n', f"content/en/mat.md: codes.icd10cm: 'F1120' {BAD_ICD}"),
        ('codes:\n  icd10cm: ["F*"]\n', f"content/en/mat.md: codes.icd10cm: 'F*' {BAD_ICD}"),
        ('codes:\n  icd10cm: ["T40.2X5A*"]\n', f"content/en/mat.md: codes.icd10cm: 'T40.2X5A*' {BAD_ICD}"),
        # The Turkish dotless ı upper-cases to I: 'ı10' must not pass as I10.
        ('codes:\n  icd10cm: ["ı10"]\n', f"content/en/mat.md: codes.icd10cm: 'ı10' {BAD_ICD}"),
        (
            'codes:\n  snomed: ["075544000"]\n',
            "content/en/mat.md: codes.snomed: '075544000' is not a SNOMED CT concept id "
            "(6 to 18 digits, not starting with 0)",
        ),
        (
            'codes:\n  snomed: ["12345"]\n',
            "content/en/mat.md: codes.snomed: '12345' is not a SNOMED CT concept id "
            "(6 to 18 digits, not starting with 0)",
        ),
        (
            'codes:\n  snomed: ["75544001"]\n',
            "content/en/mat.md: codes.snomed: '75544001' is not a SNOMED CT concept id: "
            "its last digit is not its check digit (a typo?)",
        ),
        (
            'codes:\n  snomed: ["75544016"]\n',
            "content/en/mat.md: codes.snomed: '75544016' is not a SNOMED CT concept id: the digits 01 before its "
            "check digit mark a description or relationship id (a concept id has 00 or 10 there)",
        ),
        (
            'codes:\n  rxnorm: ["01819"]\n',
            "content/en/mat.md: codes.rxnorm: '01819' is not an RxNorm code "
            "(an RxCUI: 1 to 8 digits, not starting with 0)",
        ),
        (
            'codes:\n  rxnorm: ["123456789"]\n',
            "content/en/mat.md: codes.rxnorm: '123456789' is not an RxNorm code "
            "(an RxCUI: 1 to 8 digits, not starting with 0)",
        ),
    ],
)
def test_bad_codes_are_named_with_a_plain_reason(codes: str, message: str) -> None:
    section, problems = parse(codes)
    assert section is None
    assert problems == [message]


def test_every_bad_code_is_reported_in_one_run() -> None:
    codes = 'codes:\n  icd10cm: ["F1.1", "F11.*", "Q"]\n  rxnorm: ["x"]\n  snomd: ["75544000"]\n'
    section, problems = parse(codes)
    assert section is None
    assert [p.split(": ")[1] for p in problems] == ["codes.icd10cm", "codes.icd10cm", "codes.rxnorm", "codes.snomd"]


def test_a_translation_may_not_declare_codes() -> None:
    section, problems = parse('codes:\n  icd10cm: ["F11.*"]\n', language="es")
    assert section is None
    assert problems == [
        "content/es/mat.md: codes: codes are declared once, in content/en/mat.md, and apply to every language"
    ]
    translation, problems = parse("", language="es")
    assert problems == [] and translation is not None and translation.codes == ()


def test_check_reports_a_bad_code_in_the_project(run: Invoke, project: Path) -> None:
    replace_in(project / "content/en/mat.md", 'icd10cm: ["F11.*"]', 'icd10cm: ["F1.1"]')
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"content/en/mat.md: codes.icd10cm: 'F1.1' {BAD_ICD}",
        "Aborted: 1 problem in 1 file.",
    ]


def test_check_refuses_codes_in_a_translation(run: Invoke, project: Path) -> None:
    replace_in(project / "content/es/detox.md", "\nsources:\n", '\ncodes:\n  icd10cm: ["F11.23"]\nsources:\n')
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        "content/es/detox.md: codes: codes are declared once, in content/en/detox.md, and apply to every language"
    )


def test_approve_keeps_the_codes(run: Invoke, project: Path) -> None:
    approve(run, "mat")
    sections = load_sections(Project(project), "en", TODAY).sections
    assert sections["mat"].status == "approved"
    assert dict(sections["mat"].codes)["rxnorm"] == ("1819", "6813", "7243")
    assert run("check").exit_code == 0


# --- Keywords in front matter -----------------------------------------------------------------


def test_keywords_load_trimmed_in_the_order_written() -> None:
    section, problems = parse('keywords: ["Suboxone", " naloxone ", "opioid   use disorder", "988"]\n')
    assert problems == []
    assert section is not None
    assert section.keywords == ("Suboxone", "naloxone", "opioid use disorder", "988")
    without, _ = parse("")
    assert without is not None and without.keywords == ()
    # Never printed: approval covers the printed text, so keywords leave the fingerprint alone.
    assert section.fingerprint == without.fingerprint
    assert section.digest != without.digest


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        (
            "keywords: Suboxone\n",
            "content/en/mat.md: keywords: expected a list of words an EHR may send, "
            'like ["Suboxone", "naloxone"], got \'Suboxone\'',
        ),
        (
            "keywords: []\n",
            "content/en/mat.md: keywords: expected a list of words an EHR may send, "
            'like ["Suboxone", "naloxone"], got []',
        ),
        (
            'keywords: ["Suboxone", 988]\n',
            'content/en/mat.md: keywords[1]: expected a word or name as text, like "Suboxone", got 988',
        ),
        (
            'keywords: ["  "]\n',
            "content/en/mat.md: keywords[0]: expected a word or name as text, like \"Suboxone\", got '  '",
        ),
        ('keywords: ["Narcan", "NARCAN"]\n', "content/en/mat.md: keywords[1]: 'NARCAN' is listed twice"),
        ('keywords: ["--"]\n', "content/en/mat.md: keywords[0]: '--' has no letter or digit to match"),
        (
            f'keywords: ["{"x" * 61}"]\n',
            "content/en/mat.md: keywords[0]: 61 characters; at most 60 (a word or a name, not a sentence)",
        ),
        (
            'keywords: ["Sub\u202eoxone"]\n',
            "content/en/mat.md: keywords[0]: contains U+202E (RIGHT-TO-LEFT OVERRIDE), "
            "a control or invisible character that can hide or reorder text",
        ),
        (
            f"keywords: [{', '.join(f'w{i}' for i in range(31))}]\n",
            "content/en/mat.md: keywords: 31 keywords; at most 30",
        ),
    ],
)
def test_bad_keywords_are_named_with_a_plain_reason(keywords: str, message: str) -> None:
    section, problems = parse(keywords)
    assert section is None
    assert problems == [message]


def test_a_translation_may_not_declare_keywords() -> None:
    section, problems = parse('keywords: ["Suboxone"]\n', language="es")
    assert section is None
    assert problems == [
        "content/es/mat.md: keywords: keywords are declared once, in content/en/mat.md, and apply to every language"
    ]


def test_check_reports_a_bad_keyword_in_the_project(run: Invoke, project: Path) -> None:
    replace_in(project / "content/en/detox.md", 'keywords: ["detox",', 'keywords: ["detox", "Detox",')
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "content/en/detox.md: keywords[1]: 'Detox' is listed twice",
        "Aborted: 1 problem in 1 file.",
    ]


# --- Verhoeff ----------------------------------------------------------------------------------


@pytest.mark.parametrize("good", ["75544000", "5602001", "22298006", "38341003", "2363"])
def test_verhoeff_accepts_correct_check_digits(good: str) -> None:
    assert verhoeff_valid(good)


@pytest.mark.parametrize(
    "bad", ["75544001", "75545000", "5602011", "22298016", "2364", "", "7554400a", "７５５４４０００"]
)
def test_verhoeff_refuses_a_changed_digit(bad: str) -> None:
    assert not verhoeff_valid(bad)


def test_verhoeff_check_digit_completes_a_number() -> None:
    assert verhoeff_check_digit("236") == "3"
    assert verhoeff_check_digit("7554400") == "0"
    assert verhoeff_check_digit("560200") == "1"


# --- Requests ----------------------------------------------------------------------------------

LANGUAGES = ("en", "es")


def test_request_reads_release_4_names_and_ignores_the_rest() -> None:
    request = parse_request(
        [
            ("patientPerson.administrativeGenderCode.c", "F"),
            ("age.v.v", "45"),
            ("age.v.u", "a"),
            ("taskContext.c.c", "PROBLISTREV"),
            ("mainSearchCriteria.v.c", "F11.20"),
            ("mainSearchCriteria.v.cs", ICD10CM),
            ("mainSearchCriteria.v.dn", "Opioid dependence, uncomplicated"),
            ("informationRecipient.languageCode.c", "es"),
            ("knowledgeResponseType", "application/json"),
            ("performer", "PROV"),
        ],
        LANGUAGES,
    )
    assert request == InfobuttonRequest(
        codes=(SearchCode("F11.20", ICD10CM),),
        display_name="Opioid dependence, uncomplicated",
        language="es",
        response_type="json",
    )


def test_repeated_codes_pair_with_their_systems_in_order() -> None:
    request = parse_request(
        [
            ("mainSearchCriteria.v.c", "F11.20"),
            ("mainSearchCriteria.v.c", "7242"),
            ("mainSearchCriteria.v.cs", ICD10CM),
            ("mainSearchCriteria.v.cs", RXNORM),
            ("mainSearchCriteria.v.c", "75544000"),
        ]
    )
    assert request.codes == (SearchCode("F11.20", ICD10CM), SearchCode("7242", RXNORM), SearchCode("75544000", ""))


def test_a_request_without_parameters_asks_for_nothing_in_atom() -> None:
    assert parse_request([]) == InfobuttonRequest((), "", "en", "atom", "")


@pytest.mark.parametrize(
    ("sent", "organization"),
    [
        ("2.16.840.1.113883.19.5", "2.16.840.1.113883.19.5"),
        (" 2.16.840.1.113883.19.5 ", "2.16.840.1.113883.19.5"),
        ("urn:oid:2.16.840.1.113883.19.5", "2.16.840.1.113883.19.5"),
        ("URN:OID:1.3.6.1.4.1.3768", "1.3.6.1.4.1.3768"),
        ("1" * 65, ""),
        ("2.16\x00.840", ""),
        ("", ""),
    ],
)
def test_request_reads_the_organizations_oid(sent: str, organization: str) -> None:
    pairs = [("representedOrganization.id.root", sent), ("representedOrganization.id.root", "1.2.3")]
    # Of a repeated organization the first counts, as of every parameter but the codes.
    assert parse_request(pairs).organization == organization
    assert parse_request([("REPRESENTEDORGANIZATION.ID.ROOT", sent)]).organization == organization


@pytest.mark.parametrize(
    ("asked", "language"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("ES-us", "es"),
        ("es_MX", "es"),
        ("sp", "es"),
        ("spa", "es"),
        (" es ", "es"),
        ("fr", "en"),
        ("fra", "en"),
        ("en-US", "en"),
        ("eng", "en"),
        ("", "en"),
        ("../es", "en"),
    ],
)
def test_requested_language_maps_to_a_content_language(asked: str, language: str) -> None:
    assert content_language(asked, LANGUAGES) == language
    pairs = [("informationRecipient.languageCode.c", asked)]
    assert parse_request(pairs, LANGUAGES).language == language


def test_a_language_without_content_falls_back_to_english() -> None:
    assert parse_request([("informationRecipient.languageCode.c", "es")], ("en",)).language == "en"
    assert content_language("vie", ("en", "es", "vi")) == "vi"


@pytest.mark.parametrize(
    ("asked", "answer", "media_type"),
    [
        ("text/xml", "atom", "text/xml; charset=utf-8"),
        ("application/json", "json", "application/json"),
        ("APPLICATION/JSON; charset=utf-8", "json", "application/json"),
        ("text/html", "html", "text/html; charset=utf-8"),
        ("application/javascript", "atom", "text/xml; charset=utf-8"),
        ("", "atom", "text/xml; charset=utf-8"),
    ],
)
def test_response_type(asked: str, answer: str, media_type: str) -> None:
    request = parse_request([("knowledgeResponseType", asked)])
    assert request.response_type == answer
    assert request.media_type == media_type


def test_request_caps_how_many_codes_and_how_long() -> None:
    many = [("mainSearchCriteria.v.c", f"F11.{i}") for i in range(MAX_CODES + 5)]
    assert len(parse_request(many).codes) == MAX_CODES
    long_code = "F" * 65
    request = parse_request(
        [
            ("mainSearchCriteria.v.c", long_code),
            ("mainSearchCriteria.v.c", "7242"),
            ("mainSearchCriteria.v.cs", ICD10CM),
            ("mainSearchCriteria.v.cs", RXNORM),
            ("mainSearchCriteria.v.dn", "x" * 5000),
        ]
    )
    # The over-long code is dropped, and the code after it keeps its own system.
    assert request.codes == (SearchCode("7242", RXNORM),)
    assert request.display_name == "x" * 200
    # A request of thousands of parameters is read only so far.
    padded = [("x", "y")] * 10_000 + [("mainSearchCriteria.v.c", "F11.20")]
    assert parse_request(padded).codes == ()


def test_odd_input_never_raises() -> None:
    odd: list[Any] = [
        ("mainSearchCriteria.v.c", "\x00F11\u202e"),
        ("mainSearchCriteria.v.cs", "\ud800"),
        ("mainSearchCriteria.v.c", "F11.20"),
        ("mainSearchCriteria.v.cs", ICD10CM),
        ("mainSearchCriteria.v.dn", "Opioid\x00 use\u202e\ud800 disorder"),
        ("informationRecipient.languageCode.c", "\ud800"),
        ("knowledgeResponseType", "\x00"),
        ("", ""),
        (None, "x"),
        ("mainSearchCriteria.v.c",),
        "mainSearchCriteria.v.c=F11",
        ("MAINSEARCHCRITERIA.V.C", "7242"),
    ]
    request = parse_request(odd, LANGUAGES)
    # The unprintable first code and system still hold their places: F11.20 keeps its system.
    assert request.codes == (SearchCode("F11.20", ICD10CM), SearchCode("7242", ""))
    assert request.display_name == "Opioid use disorder"
    assert (request.language, request.response_type) == ("en", "atom")


# --- Matching ----------------------------------------------------------------------------------

ORDER = ("mat", "overdose-safety", "behavioral-therapy", "self-help", "detox", "find-help")
DECLARED: dict[str, Codes] = {
    "mat": (("icd10cm", ("F11.*",)), ("rxnorm", ("1819",)), ("snomed", ("75544000",))),
    "overdose-safety": (("icd10cm", ("T40.4*",)), ("rxnorm", ("7242",))),
    "detox": (("icd10cm", ("F11.23",)),),
    "find-help": (),
}


def asking(*codes: tuple[str, str]) -> InfobuttonRequest:
    return InfobuttonRequest(codes=tuple(SearchCode(code, system) for code, system in codes))


@pytest.mark.parametrize(
    ("code", "found"),
    [
        ("F11.20", ("mat",)),
        ("f11.20", ("mat",)),
        ("F1120", ("mat",)),
        (" F11.20 ", ("mat",)),
        ("F11", ("mat",)),
        ("F11.2", ("mat",)),
        ("F11.23", ("mat", "detox")),
        ("F1123", ("mat", "detox")),
        ("T40.411A", ("overdose-safety",)),
        ("T40.4", ("overdose-safety",)),
        ("T40", ()),
        ("F12.20", ()),
        ("F1", ()),
        ("F11.2.3", ()),
        ("F.1120", ()),
        ("F11X20000", ()),
        ("", ()),
    ],
)
def test_icd10cm_matches_without_case_or_dot_and_under_a_prefix(code: str, found: tuple[str, ...]) -> None:
    assert matching_sections(asking((code, ICD10CM)), DECLARED, ORDER) == found


@pytest.mark.parametrize(
    ("code", "system", "found"),
    [
        ("7242", RXNORM, ("overdose-safety",)),
        ("1819", RXNORM, ("mat",)),
        ("75544000", SNOMED, ("mat",)),
        ("1819", f"urn:oid:{RXNORM}", ("mat",)),
        ("07242", RXNORM, ()),
        ("7242", SNOMED, ()),
        ("F11.20", "2.16.840.1.113883.6.103", ()),  # ICD-9-CM: not a system sections declare
        ("F11.20", "", ()),
        ("99999", RXNORM, ()),
    ],
)
def test_snomed_and_rxnorm_match_exactly_and_unknown_systems_match_nothing(
    code: str, system: str, found: tuple[str, ...]
) -> None:
    assert matching_sections(asking((code, system)), DECLARED, ORDER) == found


def test_matches_come_in_project_order_once_each() -> None:
    request = asking(("7242", RXNORM), ("F11.23", ICD10CM), ("F11.20", ICD10CM))
    assert matching_sections(request, DECLARED, ORDER) == ("mat", "overdose-safety", "detox")
    assert matching_sections(request, DECLARED, tuple(reversed(ORDER))) == ("detox", "overdose-safety", "mat")
    # A section the project does not list is never an answer.
    assert matching_sections(request, DECLARED, ("detox",)) == ("detox",)


def test_matching_sections_reads_only_the_codes() -> None:
    request = InfobuttonRequest(display_name="Medicines for opioid use disorder")
    assert matching_sections(request, DECLARED, ORDER) == ()


# --- Display names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Suboxone 8 mg-2 mg sublingual film", ("suboxone", "8", "mg", "2", "mg", "sublingual", "film")),
        ("NARCAN® nasal spray", ("narcan", "nasal", "spray")),
        ("Suboxone™", ("suboxone",)),
        ("Narcán", ("narcan",)),
        ("Narca\u0301n", ("narcan",)),  # the accent as a separate mark
        ("ＳＵＢＯＸＯＮＥ", ("suboxone",)),
        ("DESINTOXICACIÓN", ("desintoxicacion",)),
        ("12-step_group", ("12", "step", "group")),
        ("", ()),
        ("— / —", ()),
    ],
)
def test_words_ignore_case_accents_and_punctuation(text: str, found: tuple[str, ...]) -> None:
    assert words(text) == found


def sections_with_keywords() -> list[Section]:
    base, problems = parse("")
    assert base is not None, problems
    return [
        dataclasses.replace(base, keywords=("methadone", "Suboxone", "MAT", "opioid use disorder")),
        dataclasses.replace(base, id="overdose-safety", title="Overdose safety", keywords=("naloxone", "Narcan")),
        dataclasses.replace(base, id="detox", title="Withdrawal and detox", keywords=("detox", "withdrawal")),
        dataclasses.replace(base, id="find-help", title="Where to get help"),
    ]


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("Suboxone", ("mat",)),
        ("suboxone 8 mg-2 mg sublingual film", ("mat",)),
        ("SUBOXONE", ("mat",)),
        ("Narcán 4 mg nasal spray", ("overdose-safety",)),
        ("Opioid use disorder, severe", ("mat",)),
        ("Opioid withdrawal after methadone", ("mat", "detox")),
        ("Where to get help", ("find-help",)),
        ("OVERDOSE SAFETY plan", ("overdose-safety",)),
        # Whole words only: no keyword inside a longer word, no title from a part of it.
        ("format", ()),
        ("Suboxones", ()),
        ("use disorder", ()),
        ("help", ()),
        ("opioid disorder use", ()),
        ("", ()),
        ("Asthma", ()),
    ],
)
def test_a_display_name_finds_sections_by_title_or_keyword(name: str, found: tuple[str, ...]) -> None:
    assert named_sections(name, sections_with_keywords(), ORDER) == found


def test_a_code_wins_over_the_display_name() -> None:
    english = {section.id: section for section in sections_with_keywords()}
    english["overdose-safety"] = dataclasses.replace(english["overdose-safety"], codes=(("rxnorm", ("7242",)),))
    named = InfobuttonRequest(display_name="Suboxone")
    assert requested_sections(named, english, ORDER) == ("mat",)
    coded = dataclasses.replace(named, codes=(SearchCode("7242", RXNORM),))
    assert requested_sections(coded, english, ORDER) == ("overdose-safety",)
    # A code that matches nothing still wins: the EHR said what it meant.
    unknown = dataclasses.replace(named, codes=(SearchCode("99999", RXNORM),))
    assert requested_sections(unknown, english, ORDER) == ()


def test_a_display_name_finds_a_title_in_the_requests_language() -> None:
    english = {section.id: section for section in sections_with_keywords()}
    spanish = {"detox": dataclasses.replace(english["detox"], title="Abstinencia y desintoxicación", keywords=())}
    request = InfobuttonRequest(display_name="ABSTINENCIA Y DESINTOXICACION", language="es")
    assert requested_sections(request, english, ORDER) == ()
    assert requested_sections(request, english, ORDER, spanish) == ("detox",)


def test_shipped_keywords_find_the_sections_a_clinician_would_expect(english: dict[str, Section]) -> None:
    order = Project(ROOT).sections.order
    sections = english.values()
    assert named_sections("Suboxone 8 mg-2 mg sublingual film", sections, order) == ("mat",)
    assert named_sections("Vivitrol 380 mg injection", sections, order) == ("mat",)
    assert named_sections("Narcan 4 mg/actuation nasal spray", sections, order) == ("overdose-safety",)
    assert named_sections("Opioid withdrawal", sections, order) == ("detox",)
    assert named_sections("Opioid use disorder, moderate", sections, order) == named_sections("OUD", sections, order)
    assert named_sections("OUD", sections, order) == ("mat", "overdose-safety", "behavioral-therapy", "self-help")
    assert named_sections("Type 2 diabetes mellitus", sections, order) == ()
    spanish = load_sections(Project(ROOT), "es", TODAY).sections
    assert all(section.keywords == () for section in spanish.values())
    assert all(section.keywords for section in english.values())


# --- Organizations -------------------------------------------------------------------------------


def brand(brand_id: str, *organization_ids: str) -> Brand:
    return Brand(
        id=brand_id,
        name=brand_id.title(),
        short_name=brand_id,
        phone="(802) 555-0142",
        address="1 Main St",
        website="https://example.org",
        primary_color="#1d4e89",
        accent_color="#b5451b",
        logo="logo.svg",
        logo_alt="logo",
        note="",
        qr_url="https://example.org",
        digest="",
        organization_ids=organization_ids,
    )


def test_an_organization_picks_the_first_brand_that_declares_it() -> None:
    maple = brand("maple", "2.16.840.1.113883.19.5")
    river = brand("river", "2.16.840.1.113883.19.7")
    twin = brand("twin", "2.16.840.1.113883.19.7", "2.16.840.1.113883.19.8")
    brands = [maple, river, twin]
    assert organization_brand("2.16.840.1.113883.19.7", brands) == river
    assert organization_brand("2.16.840.1.113883.19.7", [twin, river]) == twin
    assert organization_brand("2.16.840.1.113883.19.8", brands) == twin
    assert organization_brand("2.16.840.1.113883.19", brands) is None  # a prefix is another organization
    assert organization_brand("1.3.6.1.4.1.3768", brands) is None
    assert organization_brand("", [brand("empty")]) is None


@pytest.fixture(scope="module")
def english() -> dict[str, Section]:
    return load_sections(Project(ROOT), "en", TODAY).sections


@pytest.mark.parametrize(
    ("code", "system", "found"),
    [
        ("F11.20", ICD10CM, ("mat", "overdose-safety", "behavioral-therapy", "self-help")),
        ("F11.23", ICD10CM, ("mat", "overdose-safety", "behavioral-therapy", "self-help", "detox")),
        ("F11.93", ICD10CM, ("mat", "overdose-safety", "behavioral-therapy", "self-help", "detox")),
        ("T40.411A", ICD10CM, ("overdose-safety",)),  # fentanyl poisoning, accidental
        ("T40.1X1A", ICD10CM, ("overdose-safety",)),  # heroin poisoning, accidental
        ("T40.5X1A", ICD10CM, ()),  # cocaine: not an opioid
        ("75544000", SNOMED, ("mat", "behavioral-therapy", "self-help", "detox")),
        ("5602001", SNOMED, ("mat",)),
        ("1819", RXNORM, ("mat",)),
        ("6813", RXNORM, ("mat",)),
        ("7243", RXNORM, ("mat",)),
        ("7242", RXNORM, ("overdose-safety",)),
        ("E11.9", ICD10CM, ()),
    ],
)
def test_the_shipped_sections_match_as_declared(
    english: dict[str, Section], code: str, system: str, found: tuple[str, ...]
) -> None:
    order = Project(ROOT).sections.order
    assert matching_sections(asking((code, system)), english, order) == found


def test_shipped_codes_are_all_valid_and_only_in_english(english: dict[str, Section]) -> None:
    assert english["find-help"].codes == ()
    assert all(section.codes for section_id, section in english.items() if section_id != "find-help")
    spanish = load_sections(Project(ROOT), "es", TODAY)
    assert spanish.all_problems == []
    assert all(section.codes == () for section in spanish.sections.values())
    for section in english.values():
        for system, codes in section.codes:
            assert system in CODE_SYSTEMS
            assert all(code_matches(system, code, code.rstrip(".*")) for code in codes)


# --- Entries ------------------------------------------------------------------------------------


def section_with(body: str, brief: str = "") -> Section:
    section, problems = parse("")
    assert section is not None, problems
    return dataclasses.replace(section, body=body, brief=brief)


def test_summary_is_the_briefs_first_paragraph_without_markdown() -> None:
    brief = "**Methadone** and [buprenorphine](https://x.example) work.\nUse `them` daily.\n\n- A list item.\n"
    section = section_with("### Heading\n\nThe body.\n", brief)
    assert summary_text(section) == "Methadone and buprenorphine work. Use them daily."


def test_summary_without_a_brief_is_the_bodys_first_paragraph() -> None:
    section = section_with("### What it is\n\n| a | b |\n|---|---|\n| c | d |\n\nFirst *paragraph* here.\n\nSecond.\n")
    assert summary_text(section) == "First paragraph here."


def test_long_summaries_are_cut_at_a_sentence_or_a_word() -> None:
    sentences = "This is a sentence of some length. " * 20
    cut = shortened(sentences.strip(), 300)
    assert len(cut) <= 300 and cut.endswith("length.")
    words = "word " * 100
    cut = shortened(words.strip(), 300)
    assert len(cut) <= 300 and cut.endswith("word…")
    assert shortened("Short.", 300) == "Short."


def test_feed_entry_takes_the_section_and_its_pdf_url(english: dict[str, Section]) -> None:
    entry = feed_entry(english["mat"], "https://handouts.example/en/mat.pdf")
    assert entry == FeedEntry(
        section_id="mat",
        title="Medicines for opioid use disorder",
        summary=(
            "You can choose from three medicines. You do not need detox first for two of them. "
            "Detox is care that gets you through withdrawal, the sick feeling when you stop."
        ),
        url="https://handouts.example/en/mat.pdf",
        language="en",
        updated=dt.date(2026, 11, 20),
    )


# --- Atom and JSON ------------------------------------------------------------------------------

UPDATED = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)
FEED_URL = "https://handouts.example/infobutton?mainSearchCriteria.v.c=F11.20&mainSearchCriteria.v.cs=" + ICD10CM
ENTRIES = (
    FeedEntry("mat", "Medicamentos <y> & más", "Puede elegir.", "https://h.example/es/mat.pdf?a=1&b=2", "es", TODAY),
    FeedEntry("detox", "Withdrawal and detox", "Detox alone is not treatment.", "https://h.example/en/detox.pdf", "en",
              dt.date(2026, 11, 20)),
)  # fmt: skip
REQUEST = InfobuttonRequest(
    codes=(SearchCode("F11.20", ICD10CM), SearchCode("7242", RXNORM)),
    display_name="Opioid dependence",
    language="es",
)


def feed(request: InfobuttonRequest = REQUEST, entries: tuple[FeedEntry, ...] = ENTRIES) -> ET.Element:
    data = atom_feed(request, entries, feed_url=FEED_URL, title="Handouts", updated=UPDATED, author="Maple Street")
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\"")
    return ET.fromstring(data)  # noqa: S314 (the tool's own output)


def text(element: ET.Element, path: str) -> str | None:
    found = element.find(path.replace("a:", ATOM))
    assert found is not None, path
    return found.text


def test_atom_feed_has_the_required_elements_and_echoes_the_criteria() -> None:
    root = feed()
    assert root.tag == f"{ATOM}feed"
    assert root.get(XML_LANG) == "es"
    assert text(root, "a:title") == "Handouts"
    assert text(root, "a:subtitle") == "Opioid dependence"
    assert text(root, "a:author/a:name") == "Maple Street"
    assert text(root, "a:updated") == "2026-11-23T14:30:00Z"
    assert text(root, "a:id") == FEED_URL
    assert root.find(f"{ATOM}link").attrib == {"rel": "self", "href": FEED_URL}  # type: ignore[union-attr]
    assert [(c.get("scheme"), c.get("term")) for c in root.iter(f"{ATOM}category")] == [
        ("mainSearchCriteria.v.c", "F11.20"),
        ("mainSearchCriteria.v.cs", ICD10CM),
        ("mainSearchCriteria.v.c", "7242"),
        ("mainSearchCriteria.v.cs", RXNORM),
        ("mainSearchCriteria.v.dn", "Opioid dependence"),
    ]


def test_atom_entries_link_to_each_pdf() -> None:
    entries = feed().findall(f"{ATOM}entry")
    assert len(entries) == 2
    mat, detox = entries
    assert mat.get(XML_LANG) == "es"
    assert text(mat, "a:title") == "Medicamentos <y> & más"
    assert mat.find(f"{ATOM}title").get("type") == "text"  # type: ignore[union-attr]
    assert mat.find(f"{ATOM}link").attrib == {  # type: ignore[union-attr]
        "rel": "alternate",
        "type": "application/pdf",
        "hreflang": "es",
        "href": "https://h.example/es/mat.pdf?a=1&b=2",
        "title": "Medicamentos <y> & más",
    }
    assert text(mat, "a:id") == "https://h.example/es/mat.pdf?a=1&b=2"
    assert text(mat, "a:updated") == "2026-11-23T00:00:00Z"
    assert text(mat, "a:summary") == "Puede elegir."
    assert mat.find(f"{ATOM}summary").get("type") == "text"  # type: ignore[union-attr]
    assert detox.get(XML_LANG) == "en"
    assert detox.find(f"{ATOM}link").get("hreflang") == "en"  # type: ignore[union-attr]


def test_an_empty_feed_is_still_valid_atom() -> None:
    root = feed(InfobuttonRequest(), ())
    assert root.findall(f"{ATOM}entry") == []
    assert root.findall(f"{ATOM}category") == []
    assert root.find(f"{ATOM}subtitle") is None
    for required in ("a:id", "a:title", "a:updated", "a:author/a:name"):
        assert text(root, required)


def test_subtitle_names_the_codes_without_a_display_name() -> None:
    request = InfobuttonRequest(codes=(SearchCode("F11.20", ICD10CM), SearchCode("x", "1.2.3"), SearchCode("y", "")))
    assert text(feed(request), "a:subtitle") == "ICD-10-CM F11.20, 1.2.3 x, no code system y"


def test_text_xml_cannot_hold_is_dropped_and_the_feed_still_parses() -> None:
    entry = FeedEntry("mat", "Bad\x00 \ud800title\x1b", "Sum\ufffemary", "https://h.example/a\x07.pdf", "en", TODAY)
    root = feed(InfobuttonRequest(display_name="dn\x0b"), (entry,))
    assert text(root, "a:subtitle") == "dn"
    assert text(root, "a:entry/a:title") == "Bad title"
    assert text(root, "a:entry/a:summary") == "Summary"
    assert root.find(f"{ATOM}entry/{ATOM}link").get("href") == "https://h.example/a.pdf"  # type: ignore[union-attr]


def test_feed_times_are_rfc3339() -> None:
    naive = atom_feed(
        InfobuttonRequest(), (), feed_url="u", title="t", updated=dt.datetime(2026, 1, 2, 3, 4), author="a"
    )
    assert b"<updated>2026-01-02T03:04:00Z</updated>" in naive
    offset = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    aware = atom_feed(InfobuttonRequest(), (), feed_url="u", title="t", updated=offset, author="a")
    assert b"<updated>2026-01-02T03:04:00-05:00</updated>" in aware


def test_json_feed_has_medlineplus_connects_shape() -> None:
    answer = json_feed(REQUEST, ENTRIES[:1], feed_url=FEED_URL, title="Handouts", updated=UPDATED, author="Maple")
    assert answer == {
        "feed": {
            "lang": "es",
            "title": {"_value": "Handouts", "type": "text"},
            "subtitle": {"_value": "Opioid dependence", "type": "text"},
            "author": {"name": {"_value": "Maple"}},
            "updated": {"_value": "2026-11-23T14:30:00Z"},
            "id": {"_value": FEED_URL},
            "link": [{"rel": "self", "href": FEED_URL}],
            "category": [
                {"scheme": "mainSearchCriteria.v.c", "term": "F11.20"},
                {"scheme": "mainSearchCriteria.v.cs", "term": ICD10CM},
                {"scheme": "mainSearchCriteria.v.c", "term": "7242"},
                {"scheme": "mainSearchCriteria.v.cs", "term": RXNORM},
                {"scheme": "mainSearchCriteria.v.dn", "term": "Opioid dependence"},
            ],
            "entry": [
                {
                    "lang": "es",
                    "title": {"_value": "Medicamentos <y> & más", "type": "text"},
                    "link": [
                        {
                            "href": "https://h.example/es/mat.pdf?a=1&b=2",
                            "rel": "alternate",
                            "type": "application/pdf",
                            "hreflang": "es",
                            "title": "Medicamentos <y> & más",
                        }
                    ],
                    "id": {"_value": "https://h.example/es/mat.pdf?a=1&b=2"},
                    "updated": {"_value": "2026-11-23T00:00:00Z"},
                    "summary": {"_value": "Puede elegir.", "type": "text"},
                }
            ],
        }
    }


def test_empty_json_feed_encodes_as_utf8() -> None:
    entry = FeedEntry("mat", "T\ud800", "S", "u", "en", TODAY)
    answer = json_feed(InfobuttonRequest(), (entry,), feed_url="u", title="t", updated=UPDATED, author="a")
    json.dumps(answer, ensure_ascii=False).encode("utf-8")  # a lone surrogate would raise here
    empty = json_feed(InfobuttonRequest(), (), feed_url="u", title="t", updated=UPDATED, author="a")
    assert empty["feed"]["entry"] == [] and empty["feed"]["category"] == [] and "subtitle" not in empty["feed"]


# --- Layering -----------------------------------------------------------------------------------


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_infobutton_imports_no_web_framework_and_nothing_imports_it_back() -> None:
    package = ROOT / "handouts"
    allowed = {"__future__", "datetime", "re", "xml.etree.ElementTree", "collections.abc", "dataclasses"}
    allowed |= {"itertools", "typing", "unicodedata", "markdown_it.token", "..codes", "..languages", "..models"}
    allowed |= {"..markdown"}
    assert imported_modules(package / "serve/infobutton.py") <= allowed
    for path in [package / "models.py", package / "codes.py", *(package / "inputs").glob("*.py")]:
        assert not any("serve" in name for name in imported_modules(path)), path
    assert imported_modules(package / "codes.py") <= {"__future__", "re", "dataclasses"}
