"""The comparison page as a reader opens it: offline, without script errors, the dot plots drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import compare
from tests.browser import open_browser, read_png
from tests.compare import metrics, write_run

pytestmark = pytest.mark.slow


def test_comparison_page_draws_offline(tmp_path: Path) -> None:
    before = [metrics(recovery_time_s=v, resilience_score=90 - v) for v in (2.0, 2.2, 2.1, 2.4, 2.0)]
    after = [metrics(recovery_time_s=v, resilience_score=80 - (v or 30)) for v in (6.0, 5.5, 7.1, 6.4, None)]
    a = write_run(
        tmp_path / "a", {"node-crash": before}, target={"kind": "testbed", "profile": "managed"}, batch="b1"
    )
    b = write_run(
        tmp_path / "b",
        {"node-crash": after},
        target={"kind": "testbed", "profile": "self-managed"},
        batch="b1",
    )
    report = compare.compare_runs([a, b], None)
    html, _ = compare.write_comparison(report, tmp_path / "out")

    plotted: dict[str, int] = {}

    def check(page: object) -> None:
        plotted["dots"] = page.locator("svg circle").count()  # type: ignore[attr-defined]
        plotted["worse"] = page.locator('[data-verdict="worse"]').count()  # type: ignore[attr-defined]

    with open_browser() as browser:
        visit = browser.visit(html, screenshot=tmp_path / "compare.png", check=check)
    assert not visit.blocked and not visit.errors, (visit.blocked, visit.errors)
    assert plotted["dots"] >= 9  # every measured trial of both sides on the recovery plot
    assert plotted["worse"] >= 1  # the slower side is called worse, in words on the page
    pixels = read_png(tmp_path / "compare.png")
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20  # not a blank page
