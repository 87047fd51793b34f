"""Take the README's picture of the counselor's page: the real server, filled in, in Debian's chromium.

python docs/page_screenshot.py URL OUT.png
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys

from playwright.sync_api import sync_playwright


def main(url: str, out: str) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs chromium: sudo apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 1000})
        page.goto(url)
        page.get_by_label("Medicines for opioid use disorder").check()
        page.get_by_label("Overdose safety").check()
        page.get_by_label("Patient's first name").fill("Alex")
        page.get_by_label("Counselor").fill("Jamie Example, LADC")
        # A visit in the past is refused, so the picture always books one a week ahead.
        page.get_by_label("Next visit date").fill((dt.date.today() + dt.timedelta(days=7)).isoformat())
        page.get_by_label("Next visit time").fill("14:30")
        page.get_by_role("button", name="Make PDF").click()
        page.wait_for_selector("#result-title")
        # Headless chromium has no PDF viewer: the frame would be an empty box, so the picture leaves it out.
        page.locator("iframe.preview").evaluate("frame => frame.remove()")
        page.screenshot(path=out, full_page=True)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
