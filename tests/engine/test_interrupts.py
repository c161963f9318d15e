"""Ctrl-C or SIGTERM in any phase: rollbacks run, load stops, partial results are written, exit 3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store import rundir
from harness.testbed import faults
from tests.testbed.conftest import serving, wait_for

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def write_plan(
    tmp: Path, name: str, users: int, windows: dict[str, int], scenarios: list[tuple[str, str, dict | None]]
) -> Path:
    """A testbed plan under the subscriptions load; scenarios are (name, experiment file in
    tests/engine/experiments, vars or None). JSON, which the YAML plan reader takes as it is."""
    plan = {
        "name": name,
        "target": {"kind": "testbed", "profile": "managed"},
        "load": {
            "locustfile": str(ROOT / "loadtests/subscriptions.py"),
            "users": users,
            "spawn_rate": users,
            "pacing_s": 0.5,
        },
        "windows": windows,
        "scenarios": [
            {
                "name": scenario,
                "experiment": str(HERE / "experiments" / experiment),
                **({"vars": vars} if vars else {}),
            }
            for scenario, experiment, vars in scenarios
        ],
    }
    path = tmp / "plan.yaml"
    path.write_text(json.dumps(plan, indent=2))
    return path


def plan_file(tmp: Path, experiment: str, observe_s: int = 20, stability_s: int = 5) -> Path:
    windows = {"warmup_s": 4, "baseline_s": 4, "observe_s": observe_s, "stability_s": stability_s}
    return write_plan(tmp, "interrupt", 6, windows, [("victim", experiment, None)])


def start_run(plan: Path, reports: Path, testbed: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(plan), "--reports", str(reports), "--dir", str(testbed),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def markers(reports: Path, scenario: str = "victim") -> list[dict]:
    found = list(reports.glob(f"*/scenarios/{scenario}-1/markers.jsonl"))
    return rundir.read_markers(found[0]) if found else []


def locust_running(reports: Path) -> bool:
    out = subprocess.run(["pgrep", "-f", f"locust.*{reports}"], capture_output=True, text=True)
    return bool(out.stdout.strip())


def timeline_started(reports: Path) -> bool:
    return any(p.stat().st_size > 0 for p in reports.glob("*/scenarios/*/timeline.jsonl"))


def in_phase(reports: Path, phase: str) -> bool:
    return any(m.get("kind") == "phase" and m.get("phase") == phase for m in markers(reports))


def fault_applied(reports: Path, root: Path) -> bool:
    started = any(
        m.get("kind") == "activity_start" and m.get("section") == "method" for m in markers(reports)
    )
    return started and bool(faults.ledger(root))


@pytest.mark.parametrize(
    ("experiment", "moment", "sig"),
    [
        ("long-freeze.yaml", "warmup", signal.SIGTERM),
        ("long-freeze.yaml", "fault", signal.SIGTERM),
        ("long-freeze.yaml", "fault", signal.SIGINT),
        ("replica-kill.yaml", "observe", signal.SIGTERM),
    ],
)
def test_interrupted_run_rolls_back_stops_load_and_keeps_results(managed, tmp_path: Path, experiment: str,
                                                                 moment: str, sig: int) -> None:  # fmt: skip
    """Interrupted at any moment, the run undoes its fault, stops Locust, writes result.json and exits 3."""
    wait_for(lambda: serving(managed), 60, "a healthy testbed")
    busy = next(
        n
        for n in managed.nodes
        if any(r["node"] == n.name for r in faults.controller_view(managed.root).get("replicas", {}).values())
    )
    plan = plan_file(tmp_path, experiment, observe_s=60, stability_s=50)
    text = plan.read_text().replace("name: victim,", "name: victim, vars: {node: " + busy.name + "},")
    plan.write_text(text)
    reports = tmp_path / "reports"
    run = start_run(plan, reports, managed.root)
    try:
        if moment == "warmup":
            # The warm-up marker is written as Locust is spawned; its timeline exists once Locust has
            # started (1-2 s of imports): interrupt while load runs, not before Locust is up.
            wait_for(lambda: in_phase(reports, "warmup") and timeline_started(reports), 30, "the warm-up")
        elif moment == "fault":
            wait_for(lambda: fault_applied(reports, managed.root), 60, "the fault applied")
        else:
            wait_for(lambda: in_phase(reports, "observe"), 60, "the observation window")
        time.sleep(1.0)
        os.kill(run.pid, sig)
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 3, output[-3000:]
    assert "Traceback" not in output
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]  # beside it: the history store
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted"
    (scenario,) = result["scenarios"]
    assert scenario["status"] == "interrupted"
    assert (run_dir / "scenarios/victim-1/timeline.jsonl").stat().st_size > 0
    assert faults.ledger(managed.root) == [], "the fault was rolled back"
    if moment == "fault":
        sections = [m.get("section") for m in markers(reports) if m.get("kind") == "activity_start"]
        assert "rollbacks" in sections, "Chaos Toolkit ran the rollbacks"
    wait_for(lambda: not locust_running(reports), 10, "Locust to be gone")
    assert (run_dir / "summary.md").exists() and (run_dir / "junit.xml").exists()
