"""Clinical code systems a section may declare (ICD-10-CM, SNOMED CT, RxNorm): formats and matching; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A section's codes as its model keeps them: (system name, (code, ...)), both sorted.
Codes = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class CodeSystem:
    """A code system: its name in front matter, its printed name, its HL7 OID, an example code and its FHIR URI."""

    name: str
    label: str
    oid: str
    example: str
    fhir: str


ICD10CM = "icd10cm"
SNOMED = "snomed"
RXNORM = "rxnorm"
# The one table of code systems: front matter names them, an Infobutton request sends the OID.
CODE_SYSTEMS = {
    ICD10CM: CodeSystem(ICD10CM, "ICD-10-CM", "2.16.840.1.113883.6.90", "F11.*", "http://hl7.org/fhir/sid/icd-10-cm"),
    SNOMED: CodeSystem(SNOMED, "SNOMED CT", "2.16.840.1.113883.6.96", "75544000", "http://snomed.info/sct"),
    RXNORM: CodeSystem(
        RXNORM, "RxNorm", "2.16.840.1.113883.6.88", "1819", "http://www.nlm.nih.gov/research/umls/rxnorm"
    ),
}

# Patterns of whole values, used with fullmatch on ASCII text: str.upper() turns the Turkish
# dotless ı into I, which would let 'ı10' through as I10. U is a letter like the others: ICD-10-CM
# has used it since 2020 (U07.1, COVID-19).
ICD10CM_CODE_RE = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?")
# A category or subcategory and every code under it: F11*, F11.*, T40.4*.
ICD10CM_PREFIX_RE = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,3})?\*")
# An asked code with its dot left out, as some systems send it: F1120 is F11.20.
ICD10CM_COMPACT_RE = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")
SNOMED_RE = re.compile(r"[1-9][0-9]{5,17}")
RXCUI_RE = re.compile(r"[1-9][0-9]{0,7}")
# The two digits before a SNOMED CT id's check digit say what it names: 00 and 10 (an extension's)
# are concepts; 01, 02, 11 and 12 are descriptions and relationships, which no record codes with.
SNOMED_CONCEPT_PARTITIONS = ("00", "10")

# Verhoeff's tables: the dihedral group D5's multiplication and the position permutation.
_VERHOEFF_D = (
    "0123456789",
    "1234067895",
    "2340178956",
    "3401289567",
    "4012395678",
    "5987604321",
    "6598710432",
    "7659821043",
    "8765932104",
    "9876543210",
)
_VERHOEFF_P = (
    "0123456789",
    "1576283094",
    "5803796142",
    "8916043527",
    "9453126870",
    "4286573901",
    "2793806415",
    "7046913258",
)
_VERHOEFF_INV = "0432156789"


def _verhoeff(digits: str, shift: int) -> int:
    check = 0
    for i, digit in enumerate(reversed(digits)):
        check = int(_VERHOEFF_D[check][int(_VERHOEFF_P[(i + shift) % 8][int(digit)])])
    return check


def verhoeff_valid(digits: str) -> bool:
    """Tell whether a string of ASCII digits ends in a correct Verhoeff check digit."""
    return bool(digits) and digits.isascii() and digits.isdigit() and _verhoeff(digits, 0) == 0


def verhoeff_check_digit(digits: str) -> str:
    """Return the Verhoeff check digit that completes a string of ASCII digits."""
    return _VERHOEFF_INV[_verhoeff(digits, 1)]


def normalized_code(system: str, code: str) -> str:
    """Return a declared code as a section keeps it: ICD-10-CM in upper case, any code without outer spaces."""
    code = code.strip()
    return code.upper() if system == ICD10CM and code.isascii() else code


def code_problem(system: str, code: str) -> str | None:
    """Say why a normalized code is not one of its system, in words that follow the quoted code, or return None."""
    if system == ICD10CM:
        if code.isascii() and (ICD10CM_CODE_RE.fullmatch(code) or ICD10CM_PREFIX_RE.fullmatch(code)):
            return None
        return (
            "is not an ICD-10-CM code (3 characters like F11, then optionally a dot and up to 4 more, "
            "like F11.20; or a code's start then * for every code under it, like F11.*)"
        )
    if system == SNOMED:
        if not (code.isascii() and SNOMED_RE.fullmatch(code)):
            return "is not a SNOMED CT concept id (6 to 18 digits, not starting with 0)"
        if not verhoeff_valid(code):
            return "is not a SNOMED CT concept id: its last digit is not its check digit (a typo?)"
        if code[-3:-1] not in SNOMED_CONCEPT_PARTITIONS:
            return (
                f"is not a SNOMED CT concept id: the digits {code[-3:-1]} before its check digit "
                "mark a description or relationship id (a concept id has 00 or 10 there)"
            )
        return None
    if system == RXNORM:
        if code.isascii() and RXCUI_RE.fullmatch(code):
            return None
        return "is not an RxNorm code (an RxCUI: 1 to 8 digits, not starting with 0)"
    return f"is not a code of an unknown system {system!r}"


def system_for_oid(oid: str) -> CodeSystem | None:
    """Return the code system an HL7 OID names (with or without urn:oid:), or None."""
    oid = oid.strip()
    if oid[:8].lower() == "urn:oid:":
        oid = oid[8:]
    return next((system for system in CODE_SYSTEMS.values() if system.oid == oid), None)


def system_for_uri(uri: str) -> CodeSystem | None:
    """Return the code system a FHIR Coding.system names, or None (FHIR names ICD-10-CM, SNOMED CT, RxNorm by URI)."""
    uri = uri.strip()
    return next((system for system in CODE_SYSTEMS.values() if system.fhir == uri), None)


def declared_match(declared: Codes, system: str, code: str) -> str | None:
    """Return the declared code an asked one matches (F11.* for F11.20), or None."""
    for name, codes in declared:
        if name == system:
            for each in codes:
                if code_matches(system, each, code):
                    return each
    return None


def _compact_icd10cm(code: str) -> str | None:
    code = code.strip().upper() if code.isascii() else ""
    # With its dot only where ICD-10-CM puts it (F11.2.3 is no code), or with none.
    if ICD10CM_CODE_RE.fullmatch(code) or ICD10CM_COMPACT_RE.fullmatch(code):
        return code.replace(".", "")
    return None


def code_matches(system: str, declared: str, asked: str) -> bool:
    """Tell whether an asked code is a declared one: ICD-10-CM in any case, dot optional, F11.* covering F11.20."""
    if system != ICD10CM:
        return asked.strip() == declared
    compact = _compact_icd10cm(asked)
    if compact is None:
        return False
    stem = declared.replace(".", "")
    return compact.startswith(stem[:-1]) if stem.endswith("*") else compact == stem
