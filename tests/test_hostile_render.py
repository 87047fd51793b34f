"""Renders that finish or fail cleanly: time and memory limits, Ctrl-C, damaged pictures, private copies."""

from __future__ import annotations

import ctypes
import io
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from conftest import ROOT, TODAY, Invoke
from PIL import Image

from handouts.build import BuildRequest, build
from handouts.compose import HandoutSpec
from handouts.errors import HandoutError, Problem
from handouts.images import MAX_SVG_DEPTH, image_problem
from handouts.models import Tailoring
from handouts.output.pdf import RenderedPdf
from handouts.project import Project
from handouts.render_service import ProcessExecutor, RenderJob, RenderOutcome, run_limited

LOGO_DIR = Path("brands/example-clinic")


def png(width: int = 40, height: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny file whose header claims a huge picture: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


RECURSIVE_USE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">'
    b'<defs><g id="a"><use xlink:href="#b"/></g><g id="b"><use xlink:href="#a"/></g></defs>'
    b'<use xlink:href="#a"/><rect width="5" height="5"/></svg>'
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    + ']><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><text>&i;</text></svg>'
).encode()


@pytest.mark.parametrize(
    ("data", "kind", "reason"),
    [
        (png()[:60], "image/png", "cannot be read as an image"),
        (b"hello, not a picture\n" * 5, "image/png", "cannot be read as an image"),
        (png_claiming(30000, 30000), "image/png", "would unpack to too many pixels"),
        (png(6000, 5000), "image/png", "is 6000 x 5000 pixels; at most 4096 a side"),
        (LAUGHS, "image/svg+xml", "declares XML entities"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><rect", "image/svg+xml", "is not well-formed SVG"),
        (b"<html/>", "image/svg+xml", "is not an SVG image"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'>" + b"<g>" * 500 + b"</g>" * 500 + b"</svg>",
            "image/svg+xml",
            f"nests elements more than {MAX_SVG_DEPTH} deep",
        ),
        (b"\0" * (6 * 1024 * 1024), "image/png", "is 6,291,456 bytes; at most"),
    ],
)
def test_damaged_or_hostile_pictures_are_named_with_the_reason(data: bytes, kind: str, reason: str) -> None:
    problem = image_problem(data, kind)
    assert problem is not None and reason in problem


def test_sound_pictures_pass() -> None:
    assert image_problem(png(), "image/png") is None
    assert image_problem((ROOT / "content/en/naloxone-step-1.svg").read_bytes(), "image/svg+xml") is None
    assert image_problem((ROOT / LOGO_DIR / "logo.svg").read_bytes(), "image/svg+xml") is None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_render_stuck_inside_c_code_is_killed_at_its_time_limit(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def stuck() -> None:
        pid_file.write_text(str(os.getpid()))
        ctypes.CDLL(None).sleep(600)  # C code: no Python signal handler or thread can stop it

    started = time.monotonic()
    with pytest.raises(HandoutError, match="ran past its time limit of 1 seconds"):
        run_limited(stuck, 1)
    assert time.monotonic() - started < 300  # stopped, not waited out
    assert not _alive(int(pid_file.read_text()))


def test_a_render_that_wants_too_much_memory_fails_in_one_line() -> None:
    def greedy() -> bytes:
        return bytes(3 * 1024**3)

    with pytest.raises(HandoutError, match="needs more memory than a render may use"):
        run_limited(greedy, 60)


def test_a_crashed_render_and_a_library_error_come_back_as_one_line_errors() -> None:
    def crash() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(HandoutError, match=r"ended without an answer \(exit -9\)"):
        run_limited(crash, 60)

    def refused() -> None:
        raise HandoutError("cannot build: 1 problem(s)", [Problem("layout", "", "does not fit")])

    with pytest.raises(HandoutError) as caught:
        run_limited(refused, 60)
    assert caught.value.problems == (Problem("layout", "", "does not fit"),)

    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    with pytest.raises(HandoutError, match="cannot render: ZeroDivisionError: division by zero"):
        run_limited(broken, 60)


def spec(tailoring: Tailoring | None = None) -> HandoutSpec:
    return HandoutSpec(
        sections=("detox",), brand="example-clinic", language="en", layout="letter", tailoring=tailoring or Tailoring()
    )


@pytest.mark.render
def test_build_past_its_time_limit_writes_nothing(project: Path, tmp_path: Path) -> None:
    def stuck(*args: object, **kwargs: object) -> RenderedPdf:
        ctypes.CDLL(None).sleep(600)
        raise AssertionError("not reached")

    out = tmp_path / "out.pdf"
    with pytest.raises(HandoutError, match="time limit"):
        build(Project(project), BuildRequest(spec(), out), TODAY, render=stuck, time_limit=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


@pytest.mark.render
def test_a_tailored_copy_is_for_its_owner_only_whatever_the_umask(project: Path, tmp_path: Path) -> None:
    def fake(*args: object, **kwargs: object) -> RenderedPdf:
        return RenderedPdf(b"%PDF-1.7 fake", 1)

    old = os.umask(0)
    try:
        tailored = build(
            Project(project),
            BuildRequest(spec(Tailoring(prepared_for="Robin")), tmp_path / "t.pdf"),
            TODAY,
            render=fake,
        )
        plain = build(Project(project), BuildRequest(spec(), tmp_path / "p.pdf"), TODAY, render=fake)
    finally:
        os.umask(old)
    assert stat.S_IMODE(tailored.pdf_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(plain.pdf_path.stat().st_mode) == 0o644


def use_logo(project: Path, name: str, data: bytes) -> None:
    (project / LOGO_DIR / name).write_bytes(data)
    toml = project / LOGO_DIR / "brand.toml"
    toml.write_text(toml.read_text().replace('logo = "logo.svg"', f'logo = "{name}"'))


@pytest.mark.render
def test_a_logo_that_cannot_be_drawn_fails_the_build_naming_the_file(
    project: Path, run: Invoke, tmp_path: Path
) -> None:
    # It parses, so loading the brand accepts it; drawing it recurses forever.
    use_logo(project, "logo.svg", RECURSIVE_USE)
    out = tmp_path / "h.pdf"
    result = run("build", "--sections", "detox", "-o", str(out))
    assert result.exit_code == 1
    assert result.output == "Error: cannot render: Failed to render SVG image brands/example-clinic/logo.svg\n"
    assert not out.exists()


@pytest.mark.render
@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("cut.png", png()[:60], "content/en/cut.png cannot be read as an image"),
        ("bomb.png", png_claiming(30000, 30000), "content/en/bomb.png would unpack to too many pixels"),
        ("big.png", png(6000, 5000), "content/en/big.png is 6000 x 5000 pixels; at most 4096 a side"),
    ],
)
def test_a_content_picture_that_cannot_be_loaded_fails_the_build_naming_the_file(
    project: Path, run: Invoke, tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    (project / "content/en" / name).write_bytes(data)
    detox = project / "content/en/detox.md"
    detox.write_text(detox.read_text().replace("### What withdrawal", f"![A chart]({name})\n\n### What withdrawal", 1))
    out = tmp_path / "h.pdf"
    result = run("build", "--sections", "detox", "-o", str(out))
    assert result.exit_code == 1
    assert reason in result.output
    assert "Traceback" not in result.output
    assert str(project) not in result.output  # named inside the project, not by the machine's path
    assert not out.exists()


@pytest.mark.render
def test_a_content_picture_that_cannot_be_drawn_fails_the_build(project: Path, run: Invoke, tmp_path: Path) -> None:
    (project / "content/en/naloxone-step-4.svg").write_bytes(RECURSIVE_USE)
    result = run("build", "--sections", "overdose-safety", "-o", str(tmp_path / "h.pdf"))
    assert result.exit_code == 1
    assert "content/en/naloxone-step-4.svg" in result.output
    assert not (tmp_path / "h.pdf").exists()


SLOW_LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    + b"".join(b'<rect x="%d" y="%d" width="1" height="1"/>' % (i % 100, i // 100 % 100) for i in range(100_000))
    + b"</svg>"
)


def _children(pid: int) -> list[int]:
    """Return the forked children of a process (its render process), not a program it runs (ldconfig)."""
    import psutil  # a dependency of distributed; pgrep (procps) is not on every machine

    try:
        parent = psutil.Process(pid)
        # A fork keeps its parent's command line; a program the parent starts has its own.
        return [child.pid for child in parent.children() if child.cmdline() == parent.cmdline()]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.render
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_ctrl_c_sigterm_or_sigkill_stop_a_build_at_once_and_write_nothing(
    project: Path, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    use_logo(project, "slow.svg", SLOW_LOGO)
    out = tmp_path / "h.pdf"
    args = ["--root", str(project), "--today", TODAY.isoformat(), "build", "--sections", "detox", "-o", str(out)]
    process = subprocess.Popen([sys.executable, str(ROOT / "generate.py"), *args], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _children(process.pid) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    renderers = _children(process.pid)
    assert renderers, "the render process never started"
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code
    if sig != signal.SIGKILL:
        assert "Interrupted; nothing was written." in stderr
    assert "Traceback" not in stderr
    # Killed outright, the command cannot clean up: its render process notices and ends itself.
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in renderers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in renderers)
    assert [p.name for p in tmp_path.iterdir()] == ["project"]


@pytest.mark.render
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_that_comes_while_the_render_is_forked_is_not_lost(
    project: Path, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    # Python ignores an exception raised in a fork's own hooks: a handler that raised there lost the
    # stop, and the build went on to write its PDF. The signal is sent from inside such a hook.
    out = tmp_path / "h.pdf"
    args = ["--root", str(project), "--today", TODAY.isoformat(), "build", "--sections", "detox", "-o", str(out)]
    script = (
        "import os, sys\n"
        f"os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), {int(sig)}))\n"
        "from handouts.cli import cli\n"
        f"cli({args!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == code, done.stderr
    assert "Interrupted; nothing was written." in done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert not out.exists()


@pytest.mark.render
def test_build_time_limit_option_stops_a_slow_render(project: Path, run: Invoke, tmp_path: Path) -> None:
    use_logo(project, "slow.svg", SLOW_LOGO)
    result = run("build", "--sections", "detox", "--time-limit", "1", "-o", str(tmp_path / "h.pdf"))
    assert result.exit_code == 1
    assert "stopped: the render ran past its time limit of 1 seconds" in result.output
    assert not (tmp_path / "h.pdf").exists()


@pytest.mark.render
def test_the_picture_probe_check_uses_draws_like_a_build(project: Path) -> None:
    from handouts.output.pdf import picture_problem

    roots = Project(project).readable_dirs
    (project / LOGO_DIR / "loop.svg").write_bytes(RECURSIVE_USE)
    (project / LOGO_DIR / "cut.png").write_bytes(png()[:60])
    assert picture_problem(project / LOGO_DIR / "logo.svg", roots) is None
    assert picture_problem(project / LOGO_DIR / "loop.svg", roots) == "Failed to render SVG image loop.svg"
    assert "cut.png cannot be read as an image" in (picture_problem(project / LOGO_DIR / "cut.png", roots) or "")


def greedy_render(job: RenderJob) -> RenderOutcome:
    """Ask for far more memory than a render may use."""
    return RenderOutcome(job.key, bytes(3 * 1024**3), None, None)


@pytest.mark.render
def test_a_pool_worker_cannot_take_more_memory_than_a_render_may_use() -> None:
    executor = ProcessExecutor(1, str(ROOT), "test", time_limit=60, render=greedy_render)
    try:
        greedy = executor.submit(RenderJob("greedy", str(ROOT), "test", None))  # type: ignore[arg-type]
        with pytest.raises(MemoryError):
            greedy.result(timeout=60)
    finally:
        executor.close()


@pytest.mark.render
def test_a_slow_render_on_a_dask_worker_is_stopped_at_the_time_limit(
    project: Path, run: Invoke, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    use_logo(project, "slow.svg", SLOW_LOGO)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[handout]]\nname = "slow"\nsections = ["detox"]\nlayouts = ["letter"]\n')
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        args = ["--out", str(tmp_path / "out"), "--executor", f"dask://{address}", "--time-limit", "1"]
        result = run("batch", str(jobs), *args)
    assert result.exit_code == 1
    assert "example-clinic/en/slow-letter.pdf: stopped: the render ran past its time limit of 1 seconds" in (
        result.output
    )
    assert not (tmp_path / "out/example-clinic/en/slow-letter.pdf").exists()


@pytest.mark.render
def test_check_draws_svg_pictures_as_a_build_would(project: Path, run: Invoke) -> None:
    use_logo(project, "logo.svg", RECURSIVE_USE)
    (project / "content/es/naloxone-step-2.svg").write_bytes(RECURSIVE_USE)
    result = run("check")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert (
        "brands/example-clinic/brand.toml: logo: logo.svg cannot be drawn: Failed to render SVG image logo.svg" in lines
    )
    assert (
        "content/es/overdose-safety.md: brief: naloxone-step-2.svg cannot be drawn: "
        "Failed to render SVG image naloxone-step-2.svg"
    ) in lines


@pytest.mark.render
def test_check_draws_an_unchanged_self_contained_drawing_once_and_a_linking_one_every_time(
    project: Path, run: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    import handouts.render_service
    import handouts.validation

    drawn: list[int] = []

    def counting(task: object, limit: float) -> object:
        drawn.append(len(task.args[0]))  # type: ignore[attr-defined]
        return run_limited(task, limit)  # type: ignore[arg-type]

    monkeypatch.setattr(handouts.render_service, "run_limited", counting)
    monkeypatch.setattr(handouts.validation, "_DRAWN", set())
    assert run("check").exit_code == 0
    assert drawn == [7]  # six steps (the same in each language: drawn once) and the logo
    assert run("check").exit_code == 0
    assert drawn == [7]  # nothing changed: nothing drawn again
    # An edited drawing is drawn again; one that links another file is drawn every time.
    step = project / "content/en/naloxone-step-1.svg"
    step.write_bytes(step.read_bytes().replace(b"</svg>", b'<image href="naloxone-step-2.svg"/></svg>'))
    assert run("check").exit_code == 0
    assert run("check").exit_code == 0
    assert drawn == [7, 1, 1]
    # A drawing broken since it was drawn is named, whatever was drawn before.
    (project / "content/en/naloxone-step-3.svg").write_bytes(RECURSIVE_USE)
    result = run("check")
    assert result.exit_code == 1
    assert "naloxone-step-3.svg cannot be drawn" in result.output


@pytest.mark.render
def test_the_longest_footer_stays_on_the_large_print_page(project: Path, run: Invoke, tmp_path: Path) -> None:
    import pdfplumber
    from conftest import approve

    # A short name of the most characters allowed (40); approved sections, so no sample word.
    approve(run, "detox", "find-help")
    toml = project / LOGO_DIR / "brand.toml"
    longest = 'short_name = "Northeast Kingdom Recovery Services (ex)"'
    toml.write_text(toml.read_text().replace('short_name = "Maple Street (example)"', longest))
    out = tmp_path / "lp.pdf"
    assert run("build", "--layout", "large-print", "--sections", "detox", "-o", str(out)).exit_code == 0
    with pdfplumber.open(out) as pdf:
        for page in pdf.pages:
            footer = [c for c in page.chars if c["top"] > page.height - 2.5 * 72]
            # The code follows a no-break space, which draws no glyph of its own.
            assert re.search(r"Handout\W?[0-9A-Z]{4}-[0-9A-Z]{4}", "".join(c["text"] for c in footer))
            # A printer cannot print the outer quarter inch; nothing of the footer may fall there.
            assert max(c["bottom"] for c in footer) <= page.height - 18
