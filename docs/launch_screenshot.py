"""Take the README's picture of the page opened from a chart: the test EHR (fhirsnake behind an Authlib SMART
server, tests/ehr.py, with its fictional patient), the real server, a real EHR launch, in Debian's chromium.

python docs/launch_screenshot.py OUT.png   (needs .venv-fhir, as the README's test command makes it)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ehr import free_port, running_ehr  # noqa: E402 - the tests' EHR, found through the path above

CLIENT_ID = "handouts-readme"


def main(out: str) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs chromium: sudo apt-get install chromium")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp, running_ehr(Path(tmp), CLIENT_ID, f"{base}/callback") as ehr:
        command = [sys.executable, str(ROOT / "generate.py"), "serve", "--port", str(port), "--workers", "1"]
        command += ["--smart-client-id", CLIENT_ID, "--smart-fhir", ehr.iss]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        try:
            for _ in range(150):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 900, "height": 1000})
                page.goto(ehr.launch_url(f"{base}/launch", ehr.launch(patient="rosa", encounter="visit-1")))
                page.wait_for_selector("#from-the-chart")
                # The top of the page: what the chart filled in, and the sections it ticked.
                box = page.locator("#field-sections").bounding_box()
                height = int(box["y"] + box["height"]) + 16 if box else 1000
                page.screenshot(path=out, full_page=True, clip={"x": 0, "y": 0, "width": 900, "height": height})
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1])
