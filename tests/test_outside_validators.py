"""Validators we did not write judge every layout: page-validation (PDF/UA-1) must pass, outloud must find no error.

Also measured from the PDFs: page furniture is an artifact, every printed web address is a link, and
an address breaks only after a / or a . (never mid-word, never at its hyphen).
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pdfplumber
import pikepdf
import pytest
from click.testing import CliRunner
from conftest import ROOT, TODAY, replace_in
from pdfcheck import cached, margins

from handouts.cli import cli
from handouts.markdown import address_html

# One worker renders and judges them all, once.
pytestmark = [pytest.mark.render, pytest.mark.xdist_group("outside_validators")]

TRIFOLD_SECTIONS = "mat,overdose-safety,detox"
# Every shipped language: Arabic runs right to left, Chinese in a font of its own.
LANGUAGES = ("en", "es", "zh-Hans", "vi", "ar")
# name: (layout, options after `build`, or None for the review record)
HANDOUTS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    **{
        f"{layout}-{language}": (layout, ("--layout", layout, "--lang", language))
        for layout in ("letter", "a4", "large-print")
        for language in LANGUAGES
    },
    **{
        f"trifold-{language}": ("trifold", ("--layout", "trifold", "--lang", language, "--sections", TRIFOLD_SECTIONS))
        for language in LANGUAGES
    },
    "tailored": ("letter", ("--prepared-for", "Ana", "--counselor", "Dana", "--note", "Call me")),
    "record": ("record", None),
}
# What a printed web address looks like in the text (outloud's LNK-010 looks for the same).
ADDRESS_RE = re.compile(r"(?:https?://)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:org|gov|com|net|edu)\b(?:/\S*)?")


def build(out: Path, options: tuple[str, ...] | None, root: Path = ROOT) -> Path:
    """Build one handout (or, without options, the review record) with the CLI and return its path."""
    command = ["build", *options] if options is not None else ["record"]
    result = CliRunner().invoke(cli, ["--root", str(root), "--today", TODAY.isoformat(), *command, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def shared_builds(
    tmp_path_factory: pytest.TempPathFactory, key: str, jobs: dict[str, Callable[[Path], Path]]
) -> dict[str, Path]:
    """Make each PDF once per test run, however many xdist workers need it; the workers split the work."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    # The workers of one run share their base folder's parent; a run without workers shares nothing.
    folder = (tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()) / key
    folder.mkdir(exist_ok=True)
    names = list(jobs)
    # One worker starts from the end, so two render different PDFs at once.
    if worker and int(worker.removeprefix("gw") or 0) % 2:
        names.reverse()
    for name in names:
        out = folder / f"{name}.pdf"
        with (folder / f"{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not out.exists():
                jobs[name](folder / f"{name}.part.pdf").rename(out)
    return {name: folder / f"{name}.pdf" for name in jobs}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, shipped: Callable[..., Path]) -> dict[str, Path]:
    """Build every patient layout in both languages, a tailored handout and the review record."""
    # The handouts are the shipped builds other modules read too (conftest's shared `shipped`).
    found = {name: shipped(*options) for name, (_, options) in HANDOUTS.items() if options is not None}
    jobs = {name: functools.partial(build, options=None) for name, (_, options) in HANDOUTS.items() if options is None}
    return found | shared_builds(tmp_path_factory, "outside-validators", jobs)


@pytest.mark.parametrize("name", HANDOUTS)
def test_page_validation_passes(rendered: dict[str, Path], name: str) -> None:
    import page

    result = page.validate_pdf(str(rendered[name]))
    assert result.profile is None or "UA" in str(result.profile).upper()
    assert result.is_compliant, str(result)


@pytest.mark.parametrize("name", HANDOUTS)
def test_outloud_reports_no_error(rendered: dict[str, Path], name: str) -> None:
    import outloud

    result = outloud.check(str(rendered[name]))
    assert result.error is None, result.error
    # Warnings are a second opinion to read, not a gate: they print with -rA.
    for finding in result.sorted_findings():
        if finding.severity == "warning":
            print(f"{name}: WARNING {finding.rule} p.{finding.page}: {finding.message}")
    errors = [f"{f.rule} p.{f.page}: {f.message}" for f in result.findings if f.severity == "error"]
    assert errors == []
    assert result.stats.get("tagged") is True


def marked_content(page: Any) -> Iterator[tuple[str, int | None]]:
    """Yield each marked-content sequence a page opens: its tag, and its MCID if it has one."""
    for instruction in pikepdf.parse_content_stream(page):
        if isinstance(instruction, pikepdf.ContentStreamInstruction) and str(instruction.operator) == "BDC":
            tag, properties = instruction.operands
            mcid = properties.get("/MCID") if isinstance(properties, pikepdf.Dictionary) else None
            yield str(tag), None if mcid is None else int(mcid)


def tree_elements(pdf: pikepdf.Pdf) -> dict[tuple[int, int], Any]:
    """Return every structure element the tag tree reaches from its root, by object id."""
    found: dict[tuple[int, int], Any] = {}
    stack = [pdf.Root.StructTreeRoot.K]
    while stack:
        node = stack.pop()
        if isinstance(node, pikepdf.Array):
            stack.extend(node)
        elif isinstance(node, pikepdf.Dictionary) and "/S" in node and node.objgen not in found:
            found[node.objgen] = node
            stack.append(node.get("/K"))
    return found


@pytest.mark.parametrize("name", [name for name, (layout, _) in HANDOUTS.items() if layout != "trifold"])
def test_header_footer_and_page_number_are_artifacts_out_of_the_tag_tree(rendered: dict[str, Path], name: str) -> None:
    layout = HANDOUTS[name][0]
    top, bottom = margins(layout)
    pages = plumbed(rendered[name])
    for number, page in enumerate(pages, 1):
        furniture = [c for c in page["chars"] if c["bottom"] <= top or c["top"] >= page["height"] - bottom]
        text = "".join(c["text"] for c in furniture)
        # Each page's footer says which page it is (an Arabic one reads "6 of 1" left to right on paper).
        rtl = name.endswith("-ar")
        assert re.search(rf"{len(pages)}\D+{number}" if rtl else rf"{number}\D+{len(pages)}", text), (number, text)
        untagged_wrongly = [c["text"] for c in furniture if c["tag"] != "Artifact" or c["mcid"] is not None]
        assert untagged_wrongly == [], (number, "".join(untagged_wrongly))
    with pikepdf.open(rendered[name]) as pdf:
        reachable = tree_elements(pdf)
        nums = pdf.Root.StructTreeRoot.ParentTree.Nums
        parent_tree = {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}
        for page in pdf.pages:
            sequences = list(marked_content(page))
            assert ("/Artifact", None) in sequences
            mcids = [mcid for _, mcid in sequences if mcid is not None]
            # Renumbered consistently: the content's MCIDs are 0..n-1, each mapped to an element of the
            # tree that lists it, and no element outside the tree is left in the ParentTree.
            assert mcids == list(range(len(mcids)))
            elements = parent_tree[int(page.obj.StructParents)]
            assert len(elements) == len(mcids)
            for mcid, element in enumerate(elements):
                assert element.objgen in reachable
                assert mcid in [int(kid) for kid in element.K if isinstance(kid, int)]


@cached
def plumbed(path: Path) -> list[dict[str, Any]]:
    """Read each page once for the tests below: its height, characters, words (with their characters), links."""
    with pdfplumber.open(path) as pdf:
        return [
            {
                "height": page.height,
                "chars": page.chars,
                "words": page.extract_words(return_chars=True),
                "links": page.hyperlinks,
            }
            for page in pdf.pages
        ]


def address_words(page: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the words of a page that are (or hold) a web address, with the address alone as text."""
    found = []
    for word in page["words"]:
        for match in ADDRESS_RE.finditer(word["text"]):
            chars = word["chars"][match.start() : match.end()]
            found.append({"text": match[0], "x0": chars[0]["x0"], "x1": chars[-1]["x1"], "top": word["top"]})
    return found


def covered(word: dict[str, Any], link: dict[str, Any]) -> bool:
    """Tell whether a link annotation's rectangle lies over the word's middle."""
    x, y = (word["x0"] + word["x1"]) / 2, word["top"] + 2
    return link["x0"] <= x <= link["x1"] and link["top"] <= y <= link["bottom"]


@pytest.mark.parametrize("name", HANDOUTS)
def test_every_printed_web_address_is_a_link_with_alt_text(rendered: dict[str, Path], name: str) -> None:
    addresses = 0
    for number, page in enumerate(plumbed(rendered[name]), 1):
        links = [link for link in page["links"] if link.get("contents")]
        for word in address_words(page):
            addresses += 1
            over = [link for link in links if covered(word, link)]
            assert over, (number, word["text"])
            # The link opens the address printed (the QR caption leaves out its https://).
            piece = word["text"].lower().removeprefix("https://").rstrip("/.")
            assert piece in over[0]["uri"].lower(), (word["text"], over[0]["uri"])
    assert addresses > 0


def address_pieces(path: Path, uri: str) -> list[str]:
    """Return the printed pieces of one address, line by line: the text under each of its link's rectangles."""
    pieces = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            for link in page.hyperlinks:
                if link["uri"] == uri:
                    words = page.crop((link["x0"], link["top"], link["x1"], link["bottom"])).extract_words()
                    pieces.append("".join(w["text"] for w in words))
    return pieces


LONG_ADDRESS = "https://riverbend-recovery.example.org/maple-street/first-visit"
# One filter prints every address; a narrow flat page, large print and a brochure panel, in both languages.
WRAPPED = ["letter-en", "large-print-es", "trifold-es"]


@pytest.fixture(scope="module")
def long_address(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build, for a clinic with a long web address, every patient layout that prints it in a narrow place."""
    import shutil

    root = tmp_path_factory.mktemp("long-address-project")
    for folder in ("content", "templates", "styles", "brands"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, root / folder)
    shutil.copy(ROOT / "handouts.toml", root / "handouts.toml")
    replace_in(
        root / "brands/example-clinic/brand.toml",
        'website = "https://example.org/maple-street"',
        f'website = "{LONG_ADDRESS}"',
    )
    jobs = {name: functools.partial(build, options=HANDOUTS[name][1], root=root) for name in WRAPPED}
    return shared_builds(tmp_path_factory, "long-address", jobs)


# Its own group: a second worker renders these while the first judges the others.
@pytest.mark.xdist_group("long_address")
@pytest.mark.parametrize("name", WRAPPED)
def test_an_address_breaks_only_after_a_slash_or_a_dot_never_mid_word(long_address: dict[str, Path], name: str) -> None:
    pieces = address_pieces(long_address[name], LONG_ADDRESS)
    # The QR caption (and the masthead) print it; at least one of them must wrap for this to test anything.
    assert len(pieces) >= 2, pieces
    printed = "".join(pieces)
    assert LONG_ADDRESS.removeprefix("https://") in printed
    lines_of_address = [piece for piece in pieces if piece]
    for piece, following in zip(lines_of_address, [*lines_of_address[1:], ""], strict=True):
        # A piece ends the address, or ends after a / or a . and the next line goes on with the rest.
        ends_address = piece.endswith(LONG_ADDRESS[-10:])
        assert ends_address or piece.endswith(("/", ".")), (piece, following, pieces)
        assert not piece.endswith("-")


def test_address_html_breaks_after_slashes_and_dots_and_joins_hyphens() -> None:
    html = address_html("riverbend-recovery.example.org/maple-street", "https://riverbend-recovery.example.org/x")
    assert html == (
        '<a class="address" dir="ltr" href="https://riverbend-recovery.example.org/x">'
        "riverbend-\u2060recovery.\u200bexample.\u200borg/\u200bmaple-\u2060street</a>"
    )
    # One that fits any column never breaks: "FindTreatment." and "gov" on two lines read as two things.
    assert address_html("https://a.org/", link=False) == '<span class="address" dir="ltr">https://a.org/</span>'
    assert "\u200b" not in address_html("FindTreatment.gov") and "\u200b" in address_html(
        "https://example.org/" + "x" * 20
    )
    assert 'href="https://na.org"' in address_html("na.org")
    # Text from a content file is escaped, in the link and in its text.
    assert address_html('x.org/"><b>', link=True).count("<b>") == 0
