"""Findings come first: at the top of report.html, with links to the charts they are about, and
near the top of summary.md, so a CI job summary shows them (a recorded game day)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.report import html as report
from harness.report import markdown
from harness.store import runview

RUN = Path(__file__).parents[1] / "fixtures" / "runs" / "20261202T174601Z-local-gameday-8afa"
LOST = {
    "id": "data-loss",
    "severity": "critical",
    "title": "Acknowledged writes were lost",
    "evidence": "2 acknowledged writes could not be read back after the scenario.",
    "t_from": 1796233624.634,
    "t_to": 1796233671.787,
    "recommendation": "Acknowledge a write only once it is durable.",
    "expected_effect": {"metric": "data_loss", "change": -2, "text": "no acknowledged write lost"},
}


@pytest.fixture
def result() -> dict[str, Any]:
    """The game day's result with a critical finding added to its node crash."""
    data = json.loads((RUN / "result.json").read_text())
    crash = next(s for s in data["scenarios"] if s["name"] == "node-crash")
    crash["findings"] = [LOST]
    return data


def page(result: dict[str, Any]) -> str:
    return report.render_report(runview.read(RUN, result))


def test_the_report_shows_findings_before_anything_else(result: dict[str, Any]) -> None:
    """The findings section opens the page, above the run's summary and every scenario's cards."""
    text = page(result)
    start = text.index('<section class="findings"')
    assert text.index("<main>") < start < text.index('<section class="summary"')
    assert start < text.index('<section class="scenario"')


def test_findings_are_most_severe_first_and_styled_by_severity(result: dict[str, Any]) -> None:
    """The critical finding comes first, marked critical; the infos after it."""
    text = page(result)
    items = re.findall(r'<li class="finding (\w+)" data-finding="([\w-]+)"', text)
    assert items[0] == ("critical", "data-loss")
    assert [s for s, _ in items] == sorted((s for s, _ in items), key=["critical", "warning", "info"].index)
    assert ("info", "latency-only-impact") in items and ("info", "too-few-trials") in items


def test_a_finding_links_to_its_scenarios_charts_at_its_time_range(result: dict[str, Any]) -> None:
    """The link goes to the scenario's charts (which exist) with the range in seconds on them."""
    text = page(result)
    item = text[text.index('data-finding="latency-only-impact"') :]
    link = re.search(r'<a class="where" href="#([^"]+)" data-scenario="([^"]+)" data-t-from="([\d.]+)" '
                     r'data-t-to="([\d.]+)">([^<]+)</a>', item)  # fmt: skip
    assert link, item[:600]
    anchor, scenario, t_from, t_to, label = link.groups()
    assert anchor == "s-zone-latency-1-charts" and scenario == "s-zone-latency-1"
    assert f'id="{anchor}"' in text
    assert 0 < float(t_from) < float(t_to) and label.startswith("zone-latency#1, ")
    assert "Impact 5.8 s after the fault from latency alone" in item
    assert "Change:</strong> Take slow backends out" in item


def test_an_older_result_has_no_findings_section(result: dict[str, Any]) -> None:
    """A result written before findings existed shows no section rather than an empty claim."""
    result.pop("findings")
    for s in result["scenarios"]:
        s.pop("findings", None)
    assert '<section class="findings"' not in page(result)


def test_summary_lists_findings_near_the_top(result: dict[str, Any]) -> None:
    """summary.md lists the findings, most severe first, before the scenario table."""
    text = markdown.summary(result)
    start = text.index("## Findings")
    assert start < text.index("| scenario |")
    lines = [line for line in text[start:].splitlines() if line.startswith("- **")]
    assert lines[0].startswith("- **critical** node-crash#1: Acknowledged writes were lost — 2 acknowledged")
    assert "*Expected:* no acknowledged write lost." in lines[0] and lines[0].endswith("`data-loss`")
    assert any("zone-latency#1: Latency-only impact" in line for line in lines)


def test_summary_of_an_older_result_has_no_findings_heading(result: dict[str, Any]) -> None:
    result.pop("findings")
    for s in result["scenarios"]:
        s.pop("findings", None)
    assert "## Findings" not in markdown.summary(result)
