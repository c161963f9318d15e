"""`harness compare` lists the findings that fired in a different share of trials on each side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.compare import compare_runs, differences, render_html, render_markdown, runs

FIXTURES = Path(__file__).parents[1] / "fixtures" / "runs"
GAMEDAY = FIXTURES / "20261202T174601Z-local-gameday-8afa"
GATE = FIXTURES / "20261202T174501Z-release-gate-8bf8"
BLOCKED = {
    "id": "repair-blocked-by-control-plane",
    "severity": "critical",
    "title": "Repair blocked by the control plane",
    "evidence": "Repairs were blocked for 20.8 s.",
    "recommendation": "Three etcd members in three zones.",
}


def _copy(source: Path, to: Path, change=None) -> Path:
    shutil.copytree(source, to)
    if change is not None:
        content = json.loads((to / "result.json").read_text())
        change(content)
        (to / "result.json").write_text(json.dumps(content))
    return to


def _scenario(content: dict, name: str) -> dict:
    return next(s for s in content["scenarios"] if s["name"] == name)


def test_only_findings_that_differ_are_listed(tmp_path: Path) -> None:
    """A finding on one side only is listed with its share per side; one both sides share is not."""

    def other(content: dict) -> None:
        _scenario(content, "node-crash")["findings"] = [BLOCKED]
        _scenario(content, "zone-latency")["findings"] = []

    a = runs.read_run(_copy(GAMEDAY, tmp_path / "a"))
    b = runs.read_run(_copy(GAMEDAY, tmp_path / "b", other))
    names = a.scenario_names
    found = differences.differing([runs.Side("managed", (a,)), runs.Side("self-managed", (b,))], names)
    assert [(d.scenario, d.id) for d in found] == [
        ("node-crash", "repair-blocked-by-control-plane"),  # critical first
        ("node-crash", "client-timeouts-dominate-recovery"),  # then warnings, on side a only
        ("node-crash", "detection-dominates-recovery"),
        ("node-crash", "capacity-reduced-until-eviction"),
        ("zone-latency", "latency-only-impact"),
    ]
    blocked = found[0]
    assert (blocked.share_text("managed"), blocked.share_text("self-managed")) == (
        "0 of 1 trial",
        "1 of 1 trial",
    )
    assert "errors-a-retry-would-absorb" not in {d.id for d in found}  # replica-kill: on both sides


def test_the_comparison_pages_show_them(tmp_path: Path) -> None:
    """compare.md and compare.html have a table of the differing findings; none when they agree."""

    def gated(content: dict) -> None:
        content["scenarios"][0]["findings"] = [BLOCKED]

    a, b = _copy(GATE, tmp_path / "a"), _copy(GATE, tmp_path / "b", gated)
    report = compare_runs([], {"before": [a], "after": [b]})
    md = render_markdown(report)
    assert "**Findings that differ between the sides**" in md
    row = next(line for line in md.splitlines() if "`repair-blocked-by-control-plane`" in line)
    assert (
        row.startswith("| zone-latency-light | Repair blocked by the control plane")
        and "0 of 1 trial | 1 of 1 trial |" in row
    )
    html = render_html(report)
    assert '<tr data-finding="repair-blocked-by-control-plane">' in html
    same = compare_runs([], {"before": [a], "after": [_copy(GATE, tmp_path / "c")]})
    assert not same.findings and "Findings that differ" not in render_markdown(same)
