"""`harness findings RUN_DIR`: a recorded run's findings as text or JSON; a bad folder exits 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli.test_cli import harness

RUN = Path(__file__).parents[1] / "fixtures" / "runs" / "20261202T174601Z-local-gameday-8afa"


def test_lists_a_recorded_runs_findings() -> None:
    """The game day's findings, most severe first, each with its scenario trial, evidence and change."""
    result = harness("findings", str(RUN))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"run {RUN.name}: ")
    assert "zone-latency#1: Latency-only impact" in out and "[latency-only-impact]" in out
    assert "evidence: Impact 5.8 s after the fault" in out and "change: Take slow backends out" in out


def test_json_gives_every_field() -> None:
    """--json prints a list a script can read: scenario, trial and the finding's own fields."""
    result = harness("findings", str(RUN), "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    latency = next(r for r in rows if r["id"] == "latency-only-impact")
    assert (latency["scenario"], latency["trial"], latency["severity"]) == ("zone-latency", 1, "info")
    assert latency["t_from"] < latency["t_to"]
    assert any(r["id"] == "too-few-trials" and r["trial"] is None for r in rows)


def test_a_run_written_before_findings_gets_them_worked_out(tmp_path: Path) -> None:
    """A result.json without findings: they are worked out from it and plan.json, the same ones."""
    old = tmp_path / "old"
    shutil.copytree(RUN, old)
    content = json.loads((old / "result.json").read_text())
    content.pop("findings")
    for s in content["scenarios"]:
        s.pop("findings")
    (old / "result.json").write_text(json.dumps(content))
    assert json.loads(harness("findings", str(old), "--json").stdout) == json.loads(
        harness("findings", str(RUN), "--json").stdout
    )


def test_a_folder_that_is_not_a_run_exits_2_without_a_traceback(tmp_path: Path) -> None:
    """A missing folder, one without plan.json and one without result.json are named, exit 2."""
    (tmp_path / "plan-only").mkdir()
    (tmp_path / "plan-only" / "plan.json").write_text("{}")
    for folder, needle in [
        (tmp_path / "missing", "is not a directory"),
        (tmp_path, "has no plan.json"),
        (tmp_path / "plan-only", "has no result.json"),
    ]:
        result = harness("findings", str(folder))
        assert result.returncode == 2, (folder, result.stdout, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr + result.stdout
