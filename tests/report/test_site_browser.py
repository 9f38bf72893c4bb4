"""The report's web site in a real browser: Debian's Chromium, headless, driven by playwright,
opens the pages generated from a small real store (random search and random architectures on
the smoke protocol, two seeds) from disk. Its tables sort and filter, its charts draw a point per
run with a tooltip, its method pages open with their drawings, no page logs an error or asks
the network for anything; screenshots go to test-artifacts/site/.

Skipped, saying what to install, only where there is no browser: /usr/bin/chromium (Debian's
``chromium`` package, which .ci/run installs) or the playwright package (the dev extra)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from helpers import REPO_ROOT, run_cli, smoke_args

from nasbench.report import generate

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "site"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def missing_browser() -> str:
    if not CHROMIUM.is_file():
        return f"no browser: {CHROMIUM} is missing (apt-get install -y --no-install-recommends chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "no browser driver: the playwright package is missing (pip install -e '.[dev]')"
    return ""


REQUIRED = os.environ.get("NASBENCH_REQUIRE_BROWSER") == "1"
"""Set by .ci/run, which installs the browser: there a missing one fails instead of skipping."""


def test_the_browser_is_there_where_it_is_required():
    if not REQUIRED:
        pytest.skip("NASBENCH_REQUIRE_BROWSER is not set (only .ci/run requires the browser)")
    assert missing_browser() == ""


browser_test = pytest.mark.skipif(bool(missing_browser()), reason=missing_browser() or "a browser is installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_path) -> Path:
    store = tmp_path_factory.mktemp("browser") / "results.sqlite"
    result = run_cli(*smoke_args(store, data_path, "--method", "random-arch,random", "--seeds", "0,1"))
    assert result.code == 0, result.err
    generate(store, store.parent / "report")
    return store.parent / "report" / "site"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that records every console error, page error and request off the disk."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.problems = []
    page.on("console", lambda message: page.problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("request", lambda request: page.problems.append(f"request off the disk: {request.url}")
            if not request.url.startswith(("file:", "data:")) else None)
    yield page
    assert page.problems == []
    page.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    print(f"screenshot: {ARTIFACTS / name}")


def column(page, table: str, header: str) -> list[str]:
    """The sort keys of ``header``'s column, top to bottom, as the page shows the rows."""
    return page.eval_on_selector(table, """(t, header) => {
        const i = Array.from(t.tHead.rows[0].cells).findIndex((th) => th.textContent === header);
        return Array.from(t.tBodies[0].rows, (row) => row.cells[i].dataset.sort ?? "");
    }""", header)


@browser_test
def test_tables_sort_by_a_click_on_a_header(site, page):
    page.goto((site / "index.html").as_uri())
    screenshot(page, "index.png")
    search = [float(v) for v in column(page, "#results-0", "Search cost (h)")]
    assert len(search) == 2 and len(set(search)) == 2  # random-arch searches nothing, random does
    page.click("#results-0 th:has-text('Search cost (h)') button")
    assert [float(v) for v in column(page, "#results-0", "Search cost (h)")] == sorted(search)
    assert column(page, "#results-0", "Method") == ["random-arch", "random"]
    assert page.get_attribute("#results-0 th:has-text('Search cost (h)')", "aria-sort") == "ascending"
    page.click("#results-0 th:has-text('Search cost (h)') button")
    assert [float(v) for v in column(page, "#results-0", "Search cost (h)")] == sorted(search, reverse=True)
    assert column(page, "#results-0", "Method") == ["random", "random-arch"]
    page.click("#results-0 th:has-text('Method') button")
    page.click("#results-0 th:has-text('Method') button")
    assert column(page, "#results-0", "Method") == ["random-arch", "random"]
    assert page.get_attribute("#results-0 th:has-text('Method')", "aria-sort") == "descending"
    assert page.get_attribute("#results-0 th:has-text('Search cost (h)')", "aria-sort") is None


@browser_test
def test_the_filter_hides_rows(site, page):
    page.goto((site / "index.html").as_uri())
    page.fill("input.filter[data-table='results-0']", "arch")
    assert page.locator("#results-0 tbody tr:visible").count() == 1
    assert page.locator("#results-0 tbody tr:visible").inner_text().startswith("random-arch")
    page.fill("input.filter[data-table='results-0']", "")
    assert page.locator("#results-0 tbody tr:visible").count() == 2


@browser_test
def test_charts_draw_a_point_per_run_with_a_tooltip(site, page):
    page.goto((site / "index.html").as_uri())
    charts = page.locator("figure.chart")
    assert charts.count() == 3  # params, FLOPs, search cost: the smoke store has no latency table
    for i in range(charts.count()):
        assert charts.nth(i).locator("circle.point").count() == 4  # two methods, two seeds
        assert charts.nth(i).locator("polyline.front").count() == 1
    tooltip = charts.nth(0).locator(".tooltip")
    assert not tooltip.is_visible()
    charts.nth(0).locator("circle.point").first.hover()
    assert tooltip.is_visible() and "seed" in tooltip.inner_text() and "test error" in tooltip.inner_text()
    screenshot(page, "index-tooltip.png")
    page.mouse.move(0, 0)
    assert not tooltip.is_visible()


@browser_test
def test_a_method_page_opens_with_its_drawings(site, page):
    page.goto((site / "index.html").as_uri())
    page.click("#results-0 a:text-is('random')")
    page.wait_for_load_state("load")
    assert page.url.endswith("/methods/random.html")
    assert page.locator("h1").inner_text() == "Method random"
    drawings = page.locator("svg.architecture")
    assert drawings.count() == 4  # two seeds, normal and reduction cells
    assert drawings.first.is_visible() and drawings.first.bounding_box()["width"] > 100
    assert page.locator("svg.architecture text:text-is('c_{k}')").count() == 4
    screenshot(page, "method-random.png")
    page.click("header a.home")
    page.wait_for_load_state("load")
    assert page.url.endswith("/index.html")
