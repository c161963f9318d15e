"""Screenshots of a report and a comparison for the docs (docs/images/*.png).

    .venv/bin/python docs/make_screenshots.py reports/<run-id>/report.html reports/compare-<time>/compare.html
    .venv/bin/python docs/make_screenshots.py --findings tests/fixtures/runs/20261202T174601Z-local-gameday-8afa/report.html

Opens each page in Debian's chromium (offline: any request that is not a local file is
refused) and saves the top of the page and one scenario's charts; with --findings, the
Findings section of a report (the docs use the recorded game day's).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

OUT = Path(__file__).parent / "images"
SCENARIO_CHARTS = '[data-scenario*="node-crash"][data-chart="latency"]'
"""Scrolled into view for the timeline shot: a node crash shows impact and recovery best."""
FINDINGS = "#findings"
"""The report's Findings section (harness.report.html)."""
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def shoot(page: Any, html: Path, out: Path, scroll_to: str | None = None, height: int = 1100) -> None:
    page.set_viewport_size({"width": 1280, "height": height})
    page.goto(html.resolve().as_uri(), wait_until="load")
    page.wait_for_timeout(500)
    if scroll_to:
        page.locator(scroll_to).first.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
    page.screenshot(path=str(out))
    print(out)


def shoot_findings(page: Any, html: Path, out: Path) -> None:
    """The report's Findings section alone."""
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.goto(html.resolve().as_uri(), wait_until="load")
    page.wait_for_timeout(500)
    page.locator(FINDINGS).screenshot(path=str(out))
    print(out)


def open_browser(p: Any) -> tuple[Any, Any]:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    page = browser.new_page()
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
    return browser, page


def findings(report: Path) -> None:
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser, page = open_browser(p)
        shoot_findings(page, report, OUT / "report-findings.png")
        browser.close()


def main(report: Path, comparison: Path) -> None:
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser, page = open_browser(p)
        shoot(page, report, OUT / "report-summary.png", height=900)
        shoot(page, report, OUT / "report-timeline.png", scroll_to=SCENARIO_CHARTS)
        shoot(page, comparison, OUT / "compare.png", height=1200)
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--findings":
        findings(Path(sys.argv[2]))
    elif len(sys.argv) != 3:
        sys.exit(__doc__)
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
