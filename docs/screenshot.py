"""Make docs/report.png: the report of samples/ in Debian's headless Chromium (the browser tests' set-up).

Run from the repo root:  .venv/bin/python docs/screenshot.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        exe = Path(sys.executable).with_name("umtriage")
        subprocess.run([str(exe), "scan", str(REPO / "samples"), "-o", str(out), "-q"], check=True)
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(str(Path(tmp) / "profile"), executable_path="/usr/bin/chromium",
                                                       args=FLAGS, headless=True,
                                                       viewport={"width": 1100, "height": 1560})
            page = ctx.new_page()
            page.goto((out / "report.html").as_uri())
            page.wait_for_selector("body[data-ready='1']")
            page.locator("#host-table tbody tr", has_text="srv-wsus01").click()
            page.locator("#cards .card", has_text="0x80070005").first.locator(".card-head").click()
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(REPO / "docs" / "report.png"))  # the first screen: fleet, hosts, a timeline
            ctx.close()
    print("wrote docs/report.png")


if __name__ == "__main__":
    main()
