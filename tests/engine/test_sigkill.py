"""The harness under its own chaos: `harness run` SIGKILLed at points spread over every phase.

After each kill, `harness cleanup` must leave no process of the run behind, no fault applied
(empty ledger, the testbed serving again), and a run folder that `harness score` reads: its
partial results scored, or the reason it cannot be scored said, never a traceback.

There are 24 points; each costs up to a minute of testbed time, so CI runs a rotating sample
(one point a day, in turn) and the rest are skipped, saying so. Run the full set with
HARNESS_SIGKILL_POINTS=all (or a comma-separated list of point names).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.testbed import faults
from tests.engine.test_interrupts import locust_running, markers, start_run, write_plan
from tests.testbed.conftest import serving, wait_for

pytestmark = pytest.mark.slow
SAMPLE = 1
"""Points per CI run (CI stays within its time); the day picks which, so each runs within 24 days."""


def plan_file(tmp: Path, node: str) -> Path:
    """Two scenarios, so a kill can land between them too: a replica kill, then a node freeze."""
    windows = {"warmup_s": 3, "baseline_s": 4, "observe_s": 20, "stability_s": 3}
    scenarios = [("first", "replica-kill.yaml", None), ("second", "long-freeze.yaml", {"node": node})]
    return write_plan(tmp, "sigkill", 6, windows, scenarios)


def phase(scenario: str, name: str) -> Callable[[Path, Path], bool]:
    return lambda reports, _root: any(
        m.get("kind") == "phase" and m.get("phase") == name for m in markers(reports, scenario)
    )


def activity(scenario: str, section: str, kind: str = "activity_start") -> Callable[[Path, Path], bool]:
    return lambda reports, _root: any(
        m.get("kind") == kind and m.get("section") == section for m in markers(reports, scenario)
    )


def exists(pattern: str) -> Callable[[Path, Path], bool]:
    return lambda reports, _root: any(reports.glob(pattern))


def fault_applied(scenario: str) -> Callable[[Path, Path], bool]:
    return lambda reports, root: activity(scenario, "method")(reports, root) and bool(faults.ledger(root))


def started(_reports: Path, _root: Path) -> bool:
    return True


@dataclass(frozen=True)
class Point:
    name: str
    reached: Callable[[Path, Path], bool]
    after_s: float = 0.0


POINTS = [
    Point("just-started", started, 0.3),
    Point("importing", started, 1.0),
    Point("plan-written", exists("*/plan.json")),
    Point("first-checkpoint", exists("*/result.json")),
    Point("warmup", phase("first", "warmup")),
    Point("warmup-load-running", phase("first", "warmup"), 2.0),
    Point("baseline", phase("first", "baseline")),
    Point("baseline-late", phase("first", "baseline"), 3.0),
    Point("experiment", phase("first", "experiment")),
    Point("steady-state-before", activity("first", "steady_state_before")),
    Point("method-started", activity("first", "method")),
    Point("method-ended", activity("first", "method", "activity_end")),
    Point("steady-state-after", activity("first", "steady_state_after")),
    Point("observe", phase("first", "observe")),
    Point("observe-late", phase("first", "observe"), 2.0),
    Point("stopped", phase("first", "stopped")),
    Point("verified", exists("*/scenarios/first-1/verify.json")),
    Point("between-scenarios", exists("*/scenarios/second-1")),
    Point("second-warmup", phase("second", "warmup")),
    Point("second-baseline", phase("second", "baseline")),
    Point("node-frozen", fault_applied("second")),
    Point("node-frozen-late", fault_applied("second"), 3.0),
    Point("second-rollback", activity("second", "rollbacks")),
    Point("second-observe", phase("second", "observe")),
]


def chosen(points: list[Point]) -> set[str]:
    """The points this run covers: all, a named list, or the day's rotating sample."""
    wanted = os.environ.get("HARNESS_SIGKILL_POINTS", "")
    if wanted == "all":
        return {p.name for p in points}
    if wanted:
        return set(wanted.split(","))
    first = dt.date.today().toordinal() * SAMPLE % len(points)
    return {points[(first + i) % len(points)].name for i in range(SAMPLE)}


RUN_NOW = chosen(POINTS)


def _leftovers(reports: Path) -> list[str]:
    """Processes still running whose command line names this run's folder."""
    out = subprocess.run(["pgrep", "-af", str(reports)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


@pytest.mark.parametrize("point", POINTS, ids=[p.name for p in POINTS])
def test_sigkill_then_cleanup_leaves_nothing_and_a_folder_score_reads(
    managed, tmp_path: Path, point: Point
) -> None:
    if point.name not in RUN_NOW:
        pytest.skip(
            f"rotating sample ({', '.join(sorted(RUN_NOW))} today); HARNESS_SIGKILL_POINTS=all runs every point"
        )
    wait_for(lambda: serving(managed), 60, "a healthy testbed")
    busy = next(
        n.name
        for n in managed.nodes
        if any(r["node"] == n.name for r in faults.controller_view(managed.root).get("replicas", {}).values())
    )
    reports = tmp_path / "reports"
    run = start_run(plan_file(tmp_path, busy), reports, managed.root)
    try:
        wait_for(lambda: point.reached(reports, managed.root), 150, f"the point {point.name}", step_s=0.05)
        time.sleep(point.after_s)
        assert run.poll() is None, "the run ended before the point"
        os.kill(run.pid, signal.SIGKILL)
    finally:
        if run.poll() is None:
            run.kill()
        output, _ = run.communicate(timeout=30)
    assert run.returncode == -signal.SIGKILL, output[-2000:]
    cleanup = subprocess.run(
        [sys.executable, "-m", "harness", "cleanup", "--dir", str(managed.root)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert faults.ledger(managed.root) == [], "no fault left applied"
    wait_for(lambda: not locust_running(reports), 15, "Locust to be gone")
    wait_for(lambda: not _leftovers(reports), 15, "every process of the run to be gone")
    wait_for(lambda: serving(managed), 90, "the testbed serving again")
    run_dirs = [p for p in reports.iterdir() if p.is_dir()] if reports.exists() else []
    if not run_dirs:
        assert point.name in ("just-started", "importing"), "only a kill before the run folder leaves none"
        return
    (run_dir,) = run_dirs
    if not (run_dir / "result.json").exists():
        assert point.name in ("just-started", "importing", "plan-written"), "a checkpoint is written first"
        return
    scored = subprocess.run(
        [sys.executable, "-m", "harness", "score", str(run_dir), "--history", f"sqlite:///{tmp_path / 'h.sqlite'}"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    output = scored.stdout + scored.stderr
    assert "Traceback" not in output
    assert scored.returncode in (0, 1, 3), output
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] != "completed", "a killed run is never shown as completed"
    if scored.returncode == 3 and "rescored" not in output:
        assert "error:" in output, "a score that cannot be done says why"
