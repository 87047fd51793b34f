"""OpenEMR's "Local" patient education: the file names it asks for, and the handout each name holds; no I/O.

OpenEMR (interface/patient_file/education.php) answers a click on a coded problem, medication or
allergy with `sites/<site>/documents/education/` + strtolower("{codetype}_{code}_{lang}.pdf"), where
codetype is its code type key (ICD10, SNOMED-CT, RXCUI, ...), code is the code as the chart holds it
(ICD-10-CM with its dot: F11.20), and lang is `es` for a patient whose language is `es` or `spanish`
and `en` for every other patient. A name it cannot find shows "There is no local content for this topic."
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .codes import ICD10CM, ICD10CM_CODE_RE, ICD10CM_PREFIX_RE, RXNORM, SNOMED
from .models import Section

# The code type keys OpenEMR files a chart's codes under, by our code system. A SNOMED CT problem is
# SNOMED-CT (clinical terms) or, in older sites, SNOMED; a medication is RXCUI or RXNORM, whichever
# code set the site installed (OpenEMR's CodeTypesService::formatCodeType). The file is written
# under each, so the chart finds it whichever the site uses.
OPENEMR_CODE_TYPES: dict[str, tuple[str, ...]] = {
    ICD10CM: ("ICD10",),
    SNOMED: ("SNOMED-CT", "SNOMED"),
    RXNORM: ("RXCUI", "RXNORM"),
}
# education.php maps a patient's language to es (for es or spanish) or en (for every other one): a
# file in another language would never be asked for.
OPENEMR_LANGUAGES = ("en", "es")
# What OpenEMR's check_file_dir_name lets through (it dies on anything else), after lowercasing.
FILE_NAME_RE = re.compile(r"[a-z0-9_.-]+\.pdf")


@dataclass(frozen=True)
class EducationFile:
    """One file of the folder: its name, the code it answers, and the sections its handout prints."""

    name: str
    code_type: str
    code: str
    language: str
    sections: tuple[str, ...]


def file_name(code_type: str, code: str, language: str) -> str:
    """Return the name OpenEMR asks for: icd10_f11.20_es.pdf."""
    return f"{code_type}_{code}_{language}.pdf".lower()


def education_languages(available: Sequence[str]) -> tuple[str, ...]:
    """Return the languages of a project that OpenEMR can ask for, English first."""
    return tuple(language for language in OPENEMR_LANGUAGES if language in available)


@functools.lru_cache(maxsize=1)
def icd10cm_code_set() -> tuple[tuple[str, str, bool], ...]:
    """Return every ICD-10-CM code as (code without its dot, code, is a leaf), in the code set's order."""
    # Imported here: it reads the whole CMS tabular list (about 1.5 s), needed only to expand F11.*.
    # Its loader uses importlib.resources calls Python deprecates; that is the package's to change.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as icd  # type: ignore[import-untyped]

    codes = [code for code in icd.get_all_codes(with_dots=True) if ICD10CM_CODE_RE.fullmatch(code)]
    return tuple((code.replace(".", ""), code, bool(icd.is_leaf(code))) for code in codes)


def expand_code(system: str, declared: str) -> tuple[str, ...]:
    """Return the concrete codes a declared code stands for: F11.* is F11 and every leaf code under it.

    A chart holds a concrete code, and OpenEMR asks by it. The leaves are the codes a problem list
    can hold (billable); the code the prefix names (F11, T40.4) is kept too. Any other code is itself.
    """
    if system != ICD10CM or not ICD10CM_PREFIX_RE.fullmatch(declared):
        return (declared,)
    stem = declared.replace(".", "")[:-1]
    return tuple(
        code for compact, code, leaf in icd10cm_code_set() if compact.startswith(stem) and (leaf or compact == stem)
    )


def education_files(
    english: Mapping[str, Section], offered: Mapping[str, Sequence[str]]
) -> tuple[list[EducationFile], list[str]]:
    """Return every file of the folder, by name, and notes on declared codes that name no file.

    `offered` gives, per language, the ids of the sections to print in it, in print order. A code
    several sections declare (F11.20: every section declaring F11.*) gets one handout printing them
    all, as the Infobutton answer lists them all: OpenEMR shows one file per code.
    """
    files: dict[str, EducationFile] = {}
    notes: list[str] = []
    for language, section_ids in offered.items():
        for section_id in section_ids:
            section = english.get(section_id)
            for system, declared_codes in section.codes if section is not None else ():
                for declared in declared_codes:
                    codes = expand_code(system, declared)
                    if not codes:
                        notes.append(f"{section_id}: {declared} matches no code of the ICD-10-CM code set; no file")
                    for code in codes:
                        for code_type in OPENEMR_CODE_TYPES.get(system, ()):
                            name = file_name(code_type, code, language)
                            if not FILE_NAME_RE.fullmatch(name):
                                continue  # OpenEMR refuses such a name; codes.py lets none through
                            found = files.get(name)
                            ids = found.sections if found is not None else ()
                            if section_id not in ids:
                                ids = (*ids, section_id)
                            files[name] = EducationFile(name, code_type, code, language, ids)
    return [files[name] for name in sorted(files)], list(dict.fromkeys(notes))
