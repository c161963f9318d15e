"""report.html in a real browser (Debian's chromium), offline: it draws, without errors or network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.store import runview
from tests.browser import open_browser, read_png
from tests.report.conftest import T0, Spec, build_run

pytestmark = pytest.mark.slow

CHART_PIXELS = """() => Array.from(document.querySelectorAll('.chart')).map(el => {
  const canvas = el.querySelector('canvas');
  const out = {chart: el.dataset.chart, points: Number(el.dataset.points), drawn: el.dataset.drawn || null,
               width: 0, line: 0};
  if (!canvas) return out;
  out.width = canvas.width;
  const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  // pixels of the first series' colour: requests/s #2b6cb0, error rate #b3261e, p50 #2f855a, ...
  const [r, g, b] = {throughput: [43, 108, 176], errors: [179, 38, 30], latency: [47, 133, 90],
                     controlplane: [47, 133, 90], trend: [43, 108, 176]}[el.dataset.chart];
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 200 && Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40) out.line++;
  }
  return out;
})"""


def drawn_charts(page: Any, into: list[dict]) -> None:
    into.extend(page.evaluate(CHART_PIXELS))


def assert_drew(visit: Any, found: list[dict], kinds: set[str]) -> None:
    assert not visit.blocked, f"the page tried to reach the network: {visit.blocked}"
    assert not visit.errors, visit.errors
    assert {c["chart"] for c in found} == kinds
    for c in found:
        assert c["points"] > 0 and c["drawn"] == "true", c
        assert c["width"] > 200 and c["line"] > 30, f"{c['chart']} has no line drawn: {c}"
    pixels = read_png(visit.screenshot)
    colours = np.unique(pixels.reshape(-1, pixels.shape[2])[::7], axis=0)
    non_white = (pixels.min(axis=2) < 235).mean()
    assert len(colours) > 100 and non_white > 0.05, (len(colours), non_white)


def test_control_plane_and_trend_charts_draw(tmp_path: Path) -> None:
    """The optional charts (control plane, trends) draw too, and the cursor readout follows the mouse."""
    run_dir, _ = build_run(tmp_path, [Spec("kill", controlplane=True)])
    trends = {"kill": [{"run_id": f"r{i}", "started": T0 - 1000 * (3 - i),
                        "metrics": {"recovery_time_s": 5.0 + i, "error_rate": 0.01 * i, "resilience_score": 90 - i,
                                    "latency_ms": {"fault": {"p99": 100.0 + i}}}} for i in range(3)]}  # fmt: skip
    path = runview.write_report(run_dir, trends=trends)
    found: list[dict] = []
    readout: list[str] = []

    def check(page: Any) -> None:
        drawn_charts(page, found)
        over = page.locator('.chart[data-chart="latency"] .u-over')
        over.scroll_into_view_if_needed()
        box = over.bounding_box()
        over.hover(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
        readout.append(page.locator('[data-readout="s-kill-1"]').inner_text())

    with open_browser() as browser:
        visit = browser.visit(path, screenshot=tmp_path / "report.png", check=check)
    assert_drew(visit, found, {"throughput", "errors", "latency", "controlplane", "trend"})
    assert readout[0].startswith("t = ") and "window" in readout[0]


def test_print_media_keeps_charts_on_the_page(tmp_path: Path) -> None:
    """In print media every chart fits the page width and cards do not overflow."""
    run_dir, _ = build_run(tmp_path, [Spec("kill")])
    path = runview.write_report(run_dir)
    widths: list[dict] = []

    def check(page: Any) -> None:
        widths.extend(
            page.evaluate("""() => Array.from(document.querySelectorAll('.chart canvas, .card')).map(
            el => ({right: el.getBoundingClientRect().right, page: document.documentElement.clientWidth}))""")
        )

    with open_browser() as browser:
        visit = browser.visit(
            path, screenshot=tmp_path / "print.png", viewport=(760, 1000), media="print", check=check
        )
    assert not visit.errors and not visit.blocked
    assert widths and all(w["right"] <= w["page"] + 1 for w in widths), widths
