"""History as a team uses it from the command line: runs recorded by `harness score`, listed by
`harness history`, drawn as a trend by `harness report`, and a release gate that compares with
the past failing on a made regression (and only then)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from harness.store import rundir
from tests.report.conftest import T0, Spec, build_run

HISTORY_GATE = "recovery_time_s <= 1.2 * median_last(3)"


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120
    )


def make_run(reports: Path, tmp: Path, index: int, broken_s: tuple[int, int]) -> Path:
    """A scored run folder whose fault breaks requests for `broken_s`, started `index` hours after T0."""
    run_dir, _ = build_run(tmp / f"build-{index}", [Spec("outage", broken_s=broken_s)])
    target = reports / f"20261127T{index:02d}0000Z-report-test-{index:04x}"
    shutil.move(run_dir, target)
    plan = rundir.read_json(target / rundir.PLAN)
    plan["gates"] = [*plan["gates"], HISTORY_GATE]
    rundir.write_json(target / rundir.PLAN, plan)
    result = rundir.read_json(target / rundir.RESULT)
    result.update(run_id=target.name, started=T0 + 3600 * index, ended=T0 + 3600 * index + 400)
    rundir.write_json(target / rundir.RESULT, result)
    return target


def history_gate(run_dir: Path) -> dict:
    result = json.loads((run_dir / rundir.RESULT).read_text())
    (gate,) = [g for g in result["scenarios"][0]["gates"] if g["expression"] == HISTORY_GATE]
    return gate


def test_history_records_lists_draws_and_gates_a_regression(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"

    steady = [make_run(reports, tmp_path, i, broken_s=(61, 64)) for i in range(3)]
    for number, run_dir in enumerate(steady):
        scored = harness("score", str(run_dir), "--history", url)
        assert scored.returncode == 0, scored.stdout + scored.stderr
        gate = history_gate(run_dir)
        assert gate["passed"]
        if number == 0:  # nothing earlier to compare with: skipped, and said so
            assert gate.get("skipped") and "no earlier runs" in gate["reason"]
        else:
            assert f"over {number} earlier run" in gate["reason"]
    baseline = [history_gate(r)["value"] for r in steady]

    regressed = make_run(reports, tmp_path, 3, broken_s=(61, 72))
    scored = harness("score", str(regressed), "--history", url)
    assert scored.returncode == 1, scored.stdout + scored.stderr
    gate = history_gate(regressed)
    assert not gate["passed"] and not gate.get("skipped")
    assert gate["value"] > 1.2 * sorted(baseline)[1]
    assert "median_last(3)" in gate["reason"] and "over 3 earlier runs" in gate["reason"]
    assert HISTORY_GATE in (regressed / "summary.md").read_text()

    listed = harness("history", "--history", url, "--reports", str(reports))
    assert listed.returncode == 0, listed.stderr
    ids = [r.name for r in [*steady, regressed]]
    positions = [listed.stdout.index(i) for i in ids]
    assert positions == sorted(positions, reverse=True)  # newest first
    assert listed.stdout.count("not passed") == 1

    drawn = harness("report", str(regressed), "--history", url)
    assert drawn.returncode == 0, drawn.stderr
    page = (regressed / "report.html").read_text()
    assert "Trend over the last 4 runs" in page
    assert 'data-chart="trend" data-metric="recovery_time_s"' in page
