"""A malformed result.json stops `harness report`, `score` and `compare` with exit 2 and a message
naming the file and the field, never a traceback from deep inside a renderer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RUNS = sorted((Path(__file__).parents[1] / "fixtures" / "runs").iterdir())


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120
    )


def _copy(tmp_path: Path, index: int = 0) -> Path:
    run_dir = tmp_path / "reports" / RUNS[index].name
    shutil.copytree(RUNS[index], run_dir)
    return run_dir


def _edit(run_dir: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    path = run_dir / "result.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


BREAKS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("missing field", lambda d: d["scenarios"][0].pop("passed"), "field 'scenarios[0].passed' is missing"),
    (
        "wrong type",
        lambda d: d["scenarios"][0]["metrics"].update(recovery_time_s="fast"),
        "field 'scenarios[0].metrics.recovery_time_s': expected a number (got 'fast')",
    ),
    (
        "not a finite number",  # json.dumps writes NaN; a statistic of it would be NaN too
        lambda d: d["scenarios"][0]["metrics"].update(error_rate=float("nan")),
        "field 'scenarios[0].metrics.error_rate': expected a number (got nan)",
    ),
    (
        "wrong schema",
        lambda d: d.update(schema="harness.result/v0"),
        "field 'schema': expected 'harness.result/v1'",
    ),
]


def _assert_refused(outcome: subprocess.CompletedProcess[str], path: Path, message: str) -> None:
    output = outcome.stdout + outcome.stderr
    assert outcome.returncode == 2, output
    assert f"{path}: " in output and message in output, output
    assert "Traceback" not in output


@pytest.mark.parametrize(("what", "change", "message"), BREAKS, ids=[b[0] for b in BREAKS])
@pytest.mark.parametrize("command", ["report", "score"])
def test_report_and_score_refuse_a_malformed_result(
    tmp_path: Path, command: str, what: str, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    """`harness report` and `harness score` name the file and the field at fault and exit 2."""
    run_dir = _copy(tmp_path)
    _edit(run_dir, change)
    before = (run_dir / "report.html").read_text()
    outcome = harness(command, str(run_dir), "--history", f"sqlite:///{tmp_path / 'h.sqlite'}")
    _assert_refused(outcome, run_dir / "result.json", message)
    assert (run_dir / "report.html").read_text() == before, "nothing was rewritten"


@pytest.mark.parametrize("command", ["report", "score", "compare"])
def test_result_that_is_not_json_names_file_and_line(tmp_path: Path, command: str) -> None:
    """A result.json cut short is refused with its file and line."""
    run_dir = _copy(tmp_path)
    text = (run_dir / "result.json").read_text()
    (run_dir / "result.json").write_text(text[: len(text) // 2])
    args = [command, str(run_dir)]
    if command == "compare":
        args.append(str(_copy(tmp_path, 1)))
    else:
        args += ["--history", f"sqlite:///{tmp_path / 'h.sqlite'}"]
    outcome = harness(*args)
    output = outcome.stdout + outcome.stderr
    assert outcome.returncode == 2, output
    assert f"{run_dir / 'result.json'}:" in output and "not valid JSON" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(("what", "change", "message"), BREAKS, ids=[b[0] for b in BREAKS])
def test_compare_refuses_a_malformed_result(
    tmp_path: Path, what: str, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    """`harness compare` names the run's result.json and the field, and exits 2."""
    good, bad = _copy(tmp_path, 0), _copy(tmp_path, 2)
    _edit(bad, change)
    _assert_refused(harness("compare", str(good), str(bad)), bad / "result.json", message)
