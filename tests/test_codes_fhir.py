"""FHIR codings matched against the codes sections declare: system URIs and the declared code each hits."""

from handouts.codes import ICD10CM, RXNORM, SNOMED, declared_match, system_for_uri

DECLARED = ((ICD10CM, ("F11.*",)), (RXNORM, ("1819", "6813")), (SNOMED, ("5602001",)))


def test_fhir_system_uris_name_the_three_code_systems_and_nothing_else() -> None:
    assert system_for_uri("http://hl7.org/fhir/sid/icd-10-cm").name == ICD10CM  # type: ignore[union-attr]
    assert system_for_uri(" http://snomed.info/sct ").name == SNOMED  # type: ignore[union-attr]
    assert system_for_uri("http://www.nlm.nih.gov/research/umls/rxnorm").name == RXNORM  # type: ignore[union-attr]
    # ICD-10 (the WHO's) is not ICD-10-CM, and an OID is not a FHIR system URI.
    assert system_for_uri("http://hl7.org/fhir/sid/icd-10") is None
    assert system_for_uri("2.16.840.1.113883.6.90") is None


def test_a_coding_finds_the_declared_code_it_falls_under() -> None:
    assert declared_match(DECLARED, ICD10CM, "F11.20") == "F11.*"
    assert declared_match(DECLARED, ICD10CM, "f1120") == "F11.*"
    assert declared_match(DECLARED, RXNORM, "6813") == "6813"
    # The same digits in another system are not a match.
    assert declared_match(DECLARED, SNOMED, "6813") is None
    assert declared_match(DECLARED, ICD10CM, "F10.20") is None
