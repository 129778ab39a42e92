"""The README's screenshots of the cinema: the bundled shop recorded, served by ``elixirscope
ui``, and photographed in Debian's chromium through Playwright.

    .venv/bin/python scripts/cinema_screenshots.py [--out docs/screenshots]

Two pictures: the actor lanes (messages, the crash and the restart, the supervision
tree) and the state inspector at the shop's first order (the diff highlighted, why
``tea`` holds its value).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def record_shop(where: Path) -> Path:
    data = where / "data"
    subprocess.run([sys.executable, "-m", "elixirscope", "run", "--data-dir", str(data), "--level",
                    "args", "-m", "elixirscope.examples.shop"], cwd=where, check=True,
                   capture_output=True)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots", help="where to write the PNGs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = record_shop(Path(tmp))
        ui = subprocess.Popen([sys.executable, "-m", "elixirscope", "ui", "--data-dir", str(data)],
                              stdout=subprocess.PIPE, text=True)
        try:
            printed = ui.stdout.readline() + ui.stdout.readline()  # type: ignore[union-attr]
            url = re.search(r"http://\S+", printed).group(0)  # type: ignore[union-attr]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 640})
                page.goto(url)
                page.locator("tr.run-row").first.click()
                page.wait_for_selector("#tl-main")
                page.click('#tabs a[data-view="actors"]')
                page.wait_for_selector("svg.seq")
                page.screenshot(path=out / "cinema-actors.png")
                page.click('#tabs a[data-view="state"]')
                page.wait_for_selector("#st-title")
                page.locator(".strip a", has_text="2").first.click()
                page.wait_for_function("document.querySelector('#st-title')?.textContent.includes('change 2 of')")
                page.click('#st-state .k[data-path="tea"]')
                page.wait_for_function("document.querySelector('#st-why')?.textContent.includes('why')")
                page.screenshot(path=out / "cinema-state.png")
                browser.close()
        finally:
            ui.terminate()
            ui.wait(10)
    print(f"wrote {out / 'cinema-actors.png'} and {out / 'cinema-state.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
