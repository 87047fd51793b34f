"""Where build writes: names for office, print-shop and tailored copies; a patient's copy is never replaced."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pypdf
import pytest
from conftest import TODAY, Invoke

from handouts import atomic
from handouts.atomic import write_new
from handouts.build import BuildRequest, build, personal_names
from handouts.compose import HandoutSpec
from handouts.errors import HandoutError
from handouts.models import PrintOptions, Tailoring
from handouts.output.pdf import RenderedPdf
from handouts.project import Project

STEM = "example-clinic-en-letter-detox+find-help"


def spec(tailoring: Tailoring | None = None, print_options: PrintOptions | None = None) -> HandoutSpec:
    return HandoutSpec(
        sections=("detox",),
        brand="example-clinic",
        language="en",
        layout="letter",
        tailoring=tailoring or Tailoring(),
        print_options=print_options or PrintOptions(),
    )


def fake(*args: object, **kwargs: object) -> RenderedPdf:
    return RenderedPdf(b"%PDF-1.7 fake", 1)


def files(folder: Path) -> dict[str, int]:
    """Return each file in a folder, hidden ones too, with its permission bits."""
    return {p.name: stat.S_IMODE(p.lstat().st_mode) for p in sorted(folder.iterdir())}


@pytest.mark.render
def test_office_print_shop_and_tailored_copies_get_their_own_names(run: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "out"
    office = run("build", "--sections", "detox", "-o", str(out))
    assert office.output == f"{out}/{STEM}.pdf\n"
    generic = (out / f"{STEM}.pdf").read_bytes()
    first = run("build", "--sections", "detox", "--prepared-for", "Pat Example", "-o", str(out))
    second = run("build", "--sections", "detox", "--next-visit", "2026-12-07", "-o", str(out))
    shop = run("build", "--sections", "detox", "--bleed", "0.125in", "--crop-marks", "--html", "-o", str(out))
    assert [r.exit_code for r in (office, first, second, shop)] == [0, 0, 0, 0]
    assert first.output == f"{out}/{STEM}-personal-1.pdf\n"
    assert second.output == f"{out}/{STEM}-personal-2.pdf\n"
    assert shop.output == f"{out}/{STEM}-print-shop.html\n{out}/{STEM}-print-shop.pdf\n"
    assert files(out) == {
        f"{STEM}-personal-1.pdf": 0o600,
        f"{STEM}-personal-2.pdf": 0o600,
        f"{STEM}-print-shop.html": 0o644,
        f"{STEM}-print-shop.pdf": 0o644,
        f"{STEM}.pdf": 0o644,
    }
    # The generic copy is untouched, and each copy holds what was asked for it.
    assert (out / f"{STEM}.pdf").read_bytes() == generic
    text = {p.name: "".join(page.extract_text() for page in pypdf.PdfReader(p).pages) for p in out.glob("*.pdf")}
    assert "Pat Example" in text[f"{STEM}-personal-1.pdf"]
    assert "Pat Example" not in text[f"{STEM}-personal-2.pdf"] + text[f"{STEM}.pdf"]
    assert "December 7, 2026" in text[f"{STEM}-personal-2.pdf"]
    shop_box = pypdf.PdfReader(out / f"{STEM}-print-shop.pdf").pages[0].mediabox
    assert [float(v) for v in shop_box] == [-27, -27, 639, 819]
    assert "bleed: 27.0pt; marks: crop;" in (out / f"{STEM}-print-shop.html").read_text(encoding="utf-8")


def test_a_tailored_build_refuses_a_file_name_that_exists(run: Invoke, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "copy.pdf"
    target.write_bytes(b"someone's copy")
    target.chmod(0o644)
    result = run("build", "--sections", "detox", "--prepared-for", "Pat Example", "-o", str(target))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {target}: already exists; a tailored copy never replaces a file (name a new one, or a folder)\n"
    )
    assert target.read_bytes() == b"someone's copy"
    assert files(tmp_path / "out") == {"copy.pdf": 0o644}


def test_a_tailored_build_refuses_a_link_at_its_file_name(run: Invoke, tmp_path: Path) -> None:
    (tmp_path / "copy.pdf").symlink_to(tmp_path / "elsewhere.pdf")
    result = run("build", "--sections", "detox", "--note", "private", "-o", str(tmp_path / "copy.pdf"))
    assert result.exit_code == 1
    assert "copy.pdf: already exists; a tailored copy never replaces a file" in result.output
    assert not (tmp_path / "elsewhere.pdf").exists()


@pytest.mark.render
def test_a_file_that_appears_while_rendering_is_not_replaced(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "copy.pdf"

    def slow(*args: object, **kwargs: object) -> RenderedPdf:
        target.parent.mkdir()
        target.write_bytes(b"written by another build meanwhile")
        target.chmod(0o644)
        return fake()

    request = BuildRequest(spec(Tailoring(prepared_for="Robin")), target)
    with pytest.raises(HandoutError) as caught:
        build(Project(project), request, TODAY, render=slow, time_limit=None)
    assert (
        str(caught.value)
        == f"{target}: already exists; a tailored copy never replaces a file (name a new one, or a folder)"
    )
    assert target.read_bytes() == b"written by another build meanwhile"
    assert files(tmp_path / "out") == {"copy.pdf": 0o644}


@pytest.mark.render
def test_a_tailored_copy_takes_the_first_free_number_and_never_follows_a_link(project: Path, tmp_path: Path) -> None:
    (tmp_path / f"{STEM}-personal-1.pdf").symlink_to(tmp_path / "target.pdf")
    (tmp_path / f"{STEM}-personal-3.pdf").write_bytes(b"third")
    request = BuildRequest(spec(Tailoring(note="private")), tmp_path)
    result = build(Project(project), request, TODAY, render=fake, time_limit=None)
    assert result.pdf_path == tmp_path / f"{STEM}-personal-2.pdf"
    assert result.pdf_path.read_bytes() == b"%PDF-1.7 fake"
    assert not (tmp_path / "target.pdf").exists()
    again = build(Project(project), request, TODAY, render=fake, time_limit=None)
    assert again.pdf_path == tmp_path / f"{STEM}-personal-4.pdf"
    assert (tmp_path / f"{STEM}-personal-3.pdf").read_bytes() == b"third"


@pytest.mark.render
@pytest.mark.parametrize("out", ["gone", "a-file/copy.pdf"])
def test_a_tailored_copy_whose_folder_is_a_broken_link_or_a_file_says_it_cannot_write(
    project: Path, tmp_path: Path, out: str
) -> None:
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    (tmp_path / "a-file").write_text("keep me")
    request = BuildRequest(spec(Tailoring(note="private")), tmp_path / out)
    with pytest.raises(HandoutError) as caught:
        build(Project(project), request, TODAY, render=fake, time_limit=None)
    where = f"in {tmp_path / out}" if out == "gone" else str(tmp_path / out)
    assert str(caught.value) == f"cannot write {where}: File exists"
    assert (tmp_path / "a-file").read_text() == "keep me" and not (tmp_path / "nowhere").exists()


@pytest.mark.render
def test_a_tailored_print_shop_copy_is_numbered_after_its_print_shop_name(project: Path, tmp_path: Path) -> None:
    request = BuildRequest(spec(Tailoring(counselor="Sam"), PrintOptions(bleed_pt=9)), tmp_path)
    result = build(Project(project), request, TODAY, render=fake, time_limit=None)
    assert result.pdf_path.name == f"{STEM}-print-shop-personal-1.pdf"


def test_concurrent_tailored_copies_never_share_a_name(tmp_path: Path) -> None:
    taken: list[tuple[Path, bytes]] = []
    start = threading.Barrier(8)

    def writer(number: int) -> None:
        start.wait()
        for copy in range(5):
            data = f"writer {number} copy {copy}".encode()
            taken.append((write_new(personal_names(tmp_path / "h.pdf"), data, mode=0o600), data))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.name for p, _ in taken) == sorted(f"h-personal-{n}.pdf" for n in range(1, 41))
    assert all(path.read_bytes() == data for path, data in taken)
    assert set(files(tmp_path).values()) == {0o600}  # and no temporary file is left behind


def test_without_hard_links_a_name_is_still_taken_exclusively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "link", no_links)
    (tmp_path / "h-personal-1.pdf").write_bytes(b"first")
    (tmp_path / "h-personal-1.pdf").chmod(0o644)
    path = write_new(personal_names(tmp_path / "h.pdf"), b"second", mode=0o600)
    assert path.name == "h-personal-2.pdf"
    assert files(tmp_path) == {"h-personal-1.pdf": 0o644, "h-personal-2.pdf": 0o600}
    assert (tmp_path / "h-personal-1.pdf").read_bytes() == b"first"
    assert path.read_bytes() == b"second"
    with pytest.raises(FileExistsError):
        write_new([tmp_path / "h-personal-1.pdf"], b"third")
    assert (tmp_path / "h-personal-1.pdf").read_bytes() == b"first"


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("x.txt", None, "not a .pdf file name and no such folder; name a .pdf file or a folder"),
        ("notes", "file", "is a file but not a .pdf; name a .pdf file or a folder"),
        ("x.pdf", "folder", "is a folder; name a .pdf file, or a folder not ending in .pdf"),
    ],
)
def test_out_that_is_neither_a_pdf_nor_a_folder_is_a_usage_error(
    run: Invoke, tmp_path: Path, name: str, make: str | None, reason: str
) -> None:
    out = tmp_path / name
    if make == "file":
        out.write_text("keep me")
    elif make == "folder":
        out.mkdir()
    before = files(tmp_path)
    result = run("build", "--sections", "detox", "-o", str(out))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: Invalid value for -o/--out: {out}: {reason}"
    assert files(tmp_path) == before


@pytest.mark.render
def test_an_existing_folder_with_a_dot_is_still_a_folder(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "week.48"
    folder.mkdir()
    result = build(Project(project), BuildRequest(spec(), folder), TODAY, render=fake, time_limit=None)
    assert result.pdf_path == folder / f"{STEM}.pdf"
    assert os.listdir(folder) == [f"{STEM}.pdf"]
