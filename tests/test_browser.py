"""The real server in a real browser: Debian's chromium through Playwright, axe-core, and 20 patients at once."""

from __future__ import annotations

import concurrent.futures as cf
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import ROOT, TODAY

# One server for the module's tests, on one worker; each test makes what it checks itself.
pytestmark = [pytest.mark.render, pytest.mark.xdist_group("browser")]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs chromium and sets this, so a missing browser fails there instead of skipping.
REQUIRED = os.environ.get("HANDOUTS_REQUIRE_BROWSER") == "1"


def free_port() -> int:
    """Return a port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(root: Path, port: int = 0, extra: Sequence[str] = ()) -> tuple[str, subprocess.Popen[str]]:
    """Start `handouts serve` on a copy of the shipped project, as a counselor would; return its address."""
    for name in ("content", "templates", "styles", "brands"):
        if not (root / name).exists():  # started again on the same project: a restart
            shutil.copytree(ROOT / name, root / name)
    port = port or free_port()
    command = [sys.executable, str(ROOT / "generate.py"), "--root", str(root), "--today", TODAY.isoformat()]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", "2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert f"http://127.0.0.1:{port}/" in line, line
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"http://127.0.0.1:{port}", process
        except OSError:
            assert time.monotonic() < deadline, "the server did not start listening"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run one server for the module's tests (a module fixture may still be made again between them)."""
    url, process = start_server(tmp_path_factory.mktemp("served"))
    yield url, process
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Launch Debian's chromium through Playwright (Playwright's own download does not work offline)."""
    if CHROMIUM is None:
        if REQUIRED:
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_a_counselor_fills_the_form_and_gets_the_pdf(server: tuple[str, object], browser: object) -> None:
    from axe_playwright_python.sync_playwright import Axe

    url, _ = server
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(url + "/")
    report = Axe().run(page)
    assert report.violations_count == 0, report.generate_report()
    # Keyboard first: the skip link, then the form's fields in reading order.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the main content"
    page.get_by_label("Medicines for opioid use disorder").check()
    page.get_by_label("Overdose safety").check()
    page.get_by_label("Large print").check()
    page.get_by_label("Patient's first name").fill("Wilhelmina")
    page.get_by_label("Counselor").fill("Dana Reyes")
    page.get_by_label("Note").fill("Bring your pill bottle.")
    page.get_by_label("Next visit date").fill("2026-12-02")
    page.get_by_label("Next visit time").fill("14:30")
    page.get_by_role("button", name="Make PDF").click()
    page.wait_for_selector("#result-title")
    note = page.get_by_label("Chart note to copy into the patient's record (this page keeps no copy)").input_value()
    assert "Medicines for opioid use disorder; Overdose safety" in note and "by Dana Reyes." in note
    assert "Wilhelmina" not in note
    report = Axe().run(page)
    assert report.violations_count == 0, report.generate_report()
    href = page.get_by_role("link", name="Open the PDF to print").get_attribute("href")
    response = page.request.get(url + href)
    assert response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.body())
    assert "My plan for Wilhelmina" in text
    assert "December 2, 2026, 2:30\u00a0PM" in text  # a no-break space: the font has no narrow one
    # An error comes back next to its field, and axe finds nothing wrong with the page that shows it.
    page.goto(url + "/")
    page.get_by_role("button", name="Make PDF").click()
    assert "Choose at least one section." in page.locator("#error-sections").inner_text()
    report = Axe().run(page)
    assert report.violations_count == 0, report.generate_report()
    page.close()


def test_twenty_patients_at_once_each_get_only_their_own_name(server: tuple[str, object]) -> None:
    url, _ = server
    names = [f"Patient{chr(65 + i)}{os.urandom(3).hex()}" for i in range(20)]
    with cf.ThreadPoolExecutor(20) as pool:
        texts = list(pool.map(lambda name: make_handout(url, name), names))
    for name, text in zip(names, texts, strict=True):
        assert f"My plan for {name}" in text
        assert [other for other in names if other != name and other in text] == []


def make_handout(url: str, name: str) -> str:
    """Make one tailored handout through the page, as a browser posts it; return its PDF's text."""
    import httpx

    with httpx.Client(base_url=url, timeout=120) as client:
        page = client.get("/").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        form = {
            "csrf": csrf[1],
            "language": "en",
            "brand": "example-clinic",
            "layout": "letter",
            "sections": ["mat", "overdose-safety"],
            "prepared_for": name,
        }
        result = client.post("/handout", data=form)
        assert result.status_code == 200, result.text[:500]
        link = re.search(r'href="(/pdf/[^"]+)"', result.text)
        assert link
        return pdf_text(client.get(link[1]).content)


def test_the_server_process_never_loads_weasyprint(server: tuple[str, subprocess.Popen[str]]) -> None:
    import psutil

    url, process = server
    assert "My plan for Ottoline" in make_handout(url, "Ottoline")
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    # It rendered, in the warm workers: their maps hold Pango, the server's own do not.
    assert "libpango" not in maps
    workers = psutil.Process(process.pid).children(recursive=True)
    assert any("libpango" in Path(f"/proc/{w.pid}/maps").read_text() for w in workers if w.is_running())


def test_the_access_log_has_method_path_and_status_only(tmp_path: Path) -> None:
    url, process = start_server(tmp_path)
    try:
        assert "My plan for Ermengarde" in make_handout(url, "Ermengarde")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert re.search(r"\d\d:\d\d:\d\d GET / 200", output)
    assert re.search(r"\d\d:\d\d:\d\d POST /handout 200", output)
    assert re.search(r"\d\d:\d\d:\d\d GET /pdf/… 200", output)
    assert "Ermengarde" not in output and "csrf" not in output


def test_spanish_from_the_one_form_and_nothing_typed_is_lost_across_a_restart(browser: object, tmp_path: Path) -> None:
    from axe_playwright_python.sync_playwright import Axe

    url, process = start_server(tmp_path)
    port = int(url.rsplit(":", 1)[1])
    shots = Path(os.environ.get("HANDOUTS_SCREENSHOTS", tmp_path))
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(url + "/")
        page.get_by_label("Patient's first name").fill("Wilhelmina")
        page.get_by_label("Counselor").fill("Dana Reyes")
        page.get_by_label("Note").fill("Traiga su frasco de pastillas.")
        page.get_by_label("Medicines for opioid use disorder").check()
        page.get_by_label("Overdose safety").check()
        # Mid-way, Español: the script sends the form back for that language's sections; nothing typed is lost.
        with page.expect_navigation():
            page.get_by_label("Language of the handout").select_option("es")
        page.screenshot(path=str(shots / "spanish-switched.png"), full_page=True)
        assert page.evaluate("document.activeElement.id") == "language"  # the focus stays where it was
        report = Axe().run(page)
        assert report.violations_count == 0, report.generate_report()
        assert page.get_by_label("Medicamentos para el trastorno por consumo de opioides").is_checked()
        assert page.get_by_label("Seguridad ante una sobredosis").is_checked()
        assert page.get_by_label("Patient's first name").input_value() == "Wilhelmina"
        assert page.get_by_label("Counselor").input_value() == "Dana Reyes"
        assert page.get_by_label("Note").input_value() == "Traiga su frasco de pastillas."
        assert not page.get_by_role("button", name="Show sections in this language").is_visible()
        page.get_by_role("button", name="Make PDF").click()
        page.wait_for_selector("#result-title")
        page.screenshot(path=str(shots / "spanish-made.png"), full_page=True)
        note = page.get_by_label("Chart note to copy into the patient's record (this page keeps no copy)")
        assert ", Spanish, US Letter," in note.input_value()
        href = page.get_by_role("link", name="Open the PDF to print").get_attribute("href")
        text = pdf_text(page.request.get(url + href).body())
        assert "Mi plan para Wilhelmina" in text and "Seguridad ante una sobredosis" in text
        assert page.get_by_role("button", name="Copy chart note").is_visible()
        # The server restarts while the form is open; the counselor changes the name and presses Make PDF.
        page.get_by_label("Patient's first name").fill("Ottoline")
        process.terminate()
        process.wait(timeout=30)
        _, process = start_server(tmp_path, port)
        page.get_by_role("button", name="Make PDF").click()
        page.wait_for_selector("#form-notice")
        page.screenshot(path=str(shots / "expired-refilled.png"), full_page=True)
        notice = page.locator("#form-notice").inner_text()
        report = Axe().run(page)
        assert report.violations_count == 0, report.generate_report()
        assert "This form had expired, so nothing was made. Your entries are below; press Make PDF again." in notice
        assert page.get_by_label("Patient's first name").input_value() == "Ottoline"
        assert page.get_by_label("Note").input_value() == "Traiga su frasco de pastillas."
        assert page.get_by_label("Language of the handout").input_value() == "es"
        assert page.get_by_label("Medicamentos para el trastorno por consumo de opioides").is_checked()
        assert page.locator("#result-title").count() == 0
        page.get_by_role("button", name="Make PDF").click()
        page.wait_for_selector("#result-title")
        href = page.get_by_role("link", name="Open the PDF to print").get_attribute("href")
        assert "Mi plan para Ottoline" in pdf_text(page.request.get(url + href).body())
    finally:
        page.close()
        process.terminate()
        process.wait(timeout=30)


def test_the_chart_note_copies_and_prints_alone(server: tuple[str, object], browser: object) -> None:
    url, _ = server
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(url + "/")
        page.get_by_label("Overdose safety").check()
        page.get_by_label("Counselor").fill("Dana Reyes-Montgomery de la Cruz Villanueva, LCSW")
        page.get_by_role("button", name="Make PDF").click()
        page.wait_for_selector("#result-title")
        note = page.locator("#chart-note").input_value()
        assert ": Overdose safety; Where to get help. Version " in note
        assert note.endswith(", by Dana Reyes-Montgomery de la Cruz Villanueva, LCSW.")
        page.get_by_role("button", name="Copy chart note").click()
        # The copy is asynchronous (the clipboard answers a promise): wait for its word, up to 5 s. A
        # locator waits without eval, which the page's CSP forbids.
        from playwright.sync_api import expect

        expect(page.locator("#note-status")).to_have_text("Copied.", timeout=5000)
        assert page.evaluate("navigator.clipboard.readText()") == note
        # Printing the note prints it alone: the print style hides the form while the button's class is on.
        page.evaluate("document.documentElement.classList.add('print-note')")
        page.emulate_media(media="print")
        assert page.locator("#chart-note").is_visible()
        assert not page.get_by_role("button", name="Make PDF").is_visible()
    finally:
        context.close()
