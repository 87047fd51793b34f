"""Render HTML to PDF bytes with WeasyPrint; the only module that imports it."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from .errors import HandoutError

PDF_VARIANT = "pdf/ua-1"


@dataclass(frozen=True)
class RenderedPdf:
    """A finished PDF and how many pages it has."""

    data: bytes
    pages: int


class RefusedURL(ValueError):
    """A resource the handout asked for that lies outside what it may read."""


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """Tell whether a resolved path lies inside one of the resolved roots."""
    real = path.resolve()
    return any(real.is_relative_to(root.resolve()) for root in roots)


def fetcher_class() -> type[Any]:
    """Return the URLFetcher subclass that reads only project files and data: URIs."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class ProjectFetcher(URLFetcher):  # type: ignore[misc]
        """Serve files under the allowed folders and data: URIs; refuse everything else."""

        def __init__(self, roots: Sequence[Path]) -> None:
            # fail_on_errors: a refused or missing file stops the render instead of
            # leaving a hole in a patient's handout.
            super().__init__(allowed_protocols={"data"}, fail_on_errors=True, allow_redirects=False)
            self.roots = tuple(roots)
            # WeasyPrint swallows some fetch errors (inside SVG images, for one); the
            # renderer checks this list afterwards so a refusal always fails the build.
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            try:
                return self._fetch(url, headers)
            except RefusedURL as exc:
                self.refused.append(str(exc))
                raise

        def _fetch(self, url: str, headers: Any) -> Any:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme != "file":
                raise RefusedURL(f"refused to load {url}: only project files and data: URIs are allowed")
            path = Path(url2pathname(urlsplit(url).path))
            if not is_inside(path, self.roots):
                raise RefusedURL(f"refused to load {url}: outside the templates, styles, brands and content folders")
            if not path.is_file():
                raise RefusedURL(f"cannot load {url}: no such file")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": content_type})

    return ProjectFetcher


def render_pdf(
    html: str,
    *,
    base_url: str,
    roots: Sequence[Path],
    html_class: Callable[..., Any] | None = None,
) -> RenderedPdf:
    """Render an HTML string to a tagged PDF/UA-1 document, reading only under `roots`."""
    import weasyprint
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import FatalURLFetchingError

    html_class = html_class or weasyprint.HTML
    fetcher = fetcher_class()(roots)
    try:
        document = html_class(string=html, base_url=base_url, url_fetcher=fetcher).render(
            font_config=FontConfiguration(), pdf_variant=PDF_VARIANT
        )
        data = document.write_pdf(pdf_variant=PDF_VARIANT, custom_metadata=True)
    except FatalURLFetchingError as exc:
        cause = exc.__cause__ or exc
        raise HandoutError(f"cannot render: {cause}") from None
    if fetcher.refused:
        raise HandoutError(f"cannot render: {fetcher.refused[0]}")
    return RenderedPdf(data=data, pages=len(document.pages))
