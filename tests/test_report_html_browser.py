"""report.html in a real browser: headless Chromium (Debian's) driven by Playwright.

Pins what a person sees: the heatmap table renders with coloured cells, clicking a cell shows
that case's timeline as an SVG with session bars, it works with JavaScript off, nothing is
fetched from the network, and the screenshot is a picture, not a blank page.
"""

from __future__ import annotations

import shutil
from io import BytesIO
from pathlib import Path

import pytest

from harness.reports import write_reports
from tests.test_reports import build_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "no chromium binary on PATH (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is a test dependency: pip install -e '.[test]'"
)
Image = pytest.importorskip("PIL.Image", reason="pillow is a test dependency")

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def report(tmp_path) -> Path:
    paths = write_reports(build_results(), tmp_path / "run")
    return next(p for p in paths if p.name == "report.html")


def open_page(browser, report: Path, *, javascript: bool = True):
    context = browser.new_context(
        java_script_enabled=javascript, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())
    return page, requests, errors


def test_clicking_a_heatmap_cell_shows_that_cases_timeline(browser, report):
    page, requests, errors = open_page(browser, report)
    assert page.locator("table.heatmap td.cell").count() == 6
    # The first failing case (session-cap x naive) is preselected.
    assert page.locator("section.case:visible").count() == 1
    assert page.locator("#case-1").is_visible()

    page.click("table.heatmap a[href='#case-5']")  # flaky-eom x reconnect

    case = page.locator("#case-5")
    assert case.is_visible() and not page.locator("#case-1").is_visible()
    assert page.locator("td.cell.selected a").get_attribute("href") == "#case-5"
    svg = case.locator("svg.timeline")
    assert svg.is_visible()
    box = svg.bounding_box()
    assert box["width"] > 600 and box["height"] > 50
    assert case.locator("svg rect.bar").count() == 2
    bar = case.locator("svg rect.bar").first.bounding_box()
    assert bar["width"] > 100  # a real bar, drawn to scale, not a dot
    assert "451 4.7.1 Greylisted" in case.locator("svg path.fault.rule title").last.text_content()
    assert errors == []
    assert requests == [report.as_uri()]  # nothing fetched: no CDN, no fonts, no images


def test_without_javascript_the_heatmap_shows_and_a_click_still_opens_the_case(browser, report):
    page, _, _ = open_page(browser, report, javascript=False)
    assert page.locator("table.heatmap").is_visible()
    assert page.locator("section.case:visible").count() == 0

    page.click("table.heatmap a[href='#case-0']")

    assert page.locator("#case-0 svg.timeline").is_visible()
    assert page.locator("#case-0 svg rect.bar").count() == 3


def test_the_screenshot_shows_coloured_charts_not_a_blank_page(browser, report):
    page, _, _ = open_page(browser, report)
    page.click("table.heatmap a[href='#case-5']")
    shot = report.with_name("report.png")
    page.screenshot(path=str(shot), full_page=True)

    image = Image.open(BytesIO(shot.read_bytes())).convert("RGB")
    counts = {colour: n for n, colour in image.getcolors(maxcolors=1 << 24)}
    total = image.width * image.height
    non_white = sum(n for (r, g, b), n in counts.items() if r + g + b < 720)
    assert non_white / total > 0.05, f"{non_white} of {total} pixels are not white"
    assert (0x1A, 0x7F, 0x37) in counts  # a 100% heatmap cell (green band s5)
    assert (0xCF, 0x22, 0x2E) in counts  # the 37.5% cell (red band s0)
    assert (0xF4, 0xA2, 0x61) in counts  # a timeline bar of a session the server closed
