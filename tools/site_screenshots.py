"""Figures for #22's note: the web report's page sizes, load times in headless Chromium
(Debian's, driven by playwright, as the browser test does) and full-page screenshots.

Usage: python tools/site_screenshots.py SITE_DIR OUT_DIR [METHOD ...]
(SITE_DIR: a report's site/, e.g. reports/site; prints one line per page: bytes, DOMContentLoaded
and load in ms, best of 5 loads; writes OUT_DIR/<page>.png)."""
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
TIMING = "() => { const t = performance.getEntriesByType('navigation')[0]; return [t.domContentLoadedEventEnd, t.loadEventEnd]; }"

site, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
pages = [site / "index.html"] + [site / "methods" / f"{method}.html" for method in sys.argv[3:] or ["darts"]]
with sync_playwright() as driver:
    browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=LAUNCH_ARGS)
    for path in pages:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        timings = []
        for _ in range(5):
            page.goto(path.as_uri(), wait_until="load")
            timings.append(page.evaluate(TIMING))
        ready, loaded = min(t[0] for t in timings), min(t[1] for t in timings)
        shot = out / f"{path.parent.name}-{path.stem}.png" if path.parent != site else out / "index.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"{path.relative_to(site)}: {path.stat().st_size} bytes, DOMContentLoaded {ready:.0f} ms, "
              f"load {loaded:.0f} ms (best of 5), page errors {len(errors)}, screenshot {shot}")
        page.close()
    browser.close()
