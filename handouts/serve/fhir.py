"""What every reader of a FHIR server's answers checks the same way: whose a resource is, and where the next page is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def names_patient(reference: object, patient: str, base: str) -> bool:
    """Tell whether a reference names this patient: relative, or absolute against this server's base."""
    if not isinstance(reference, str):
        return False
    # A server that ignores `patient=` answers with everyone's, so each resource is checked by the reader.
    return reference in (f"Patient/{patient}", f"{base.rstrip('/')}/Patient/{patient}")


def next_page(bundle: Mapping[str, Any], base: str) -> str | None:
    """Return a search Bundle's next page on the same server, or None (a link elsewhere would get the token)."""
    links = bundle.get("link")
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url.startswith(base.rstrip("/") + "/") else None
    return None
