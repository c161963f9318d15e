"""The engine with load from Locust workers in processes of their own, on the real testbed.

The same replica-kill scenario runs twice on one testbed: load from one Locust process (the
accuracy tests' run, shared with them: tests/conftest.py), then from a master and two workers (`harness load worker`, separate processes on 127.0.0.1). The
distributed run must score like the single one: its timeline's totals equal Locust's exactly,
the acknowledged writes (shipped by the workers) are verified with no loss, and its recovery
time is as far from the testbed's ground truth as the single run's is, within one bucket.
A third run expects two workers and gets one: the scenario ends with exit 3, naming 1 of 2,
and no fault is injected.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import children, cli
from harness.engine import runner
from harness.engine.progress import Progress
from harness.load.process import read_locust_totals
from harness.plan import loading
from harness.store import rundir
from harness.testbed import faults
from harness.timeline import read_timeline
from tests.conftest import SharedRun
from tests.engine.test_accuracy import ground_truth_recovery
from tests.testbed.conftest import serving, wait_for

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
ROOT = HERE.parents[1]
LOCUSTFILE = ROOT / "loadtests/subscriptions.py"
BUCKET_S = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_plan(tmp: Path, name: str, workers: str = "", experiment: str = "replica-kill.yaml") -> Path:
    """The accuracy tests' replica-kill plan; `workers` is a load.workers mapping, or none."""
    workers_yaml = f", workers: {workers}" if workers else ""
    plan = tmp / f"{name}.yaml"
    plan.write_text(f"""name: distributed-{name}
target: {{kind: testbed, profile: managed}}
load: {{locustfile: {LOCUSTFILE}, host: auto, users: 12, spawn_rate: 12, pacing_s: 0.25, bucket_s: {BUCKET_S}, request_timeout_s: 1.0{workers_yaml}}}
windows: {{warmup_s: 3, baseline_s: 6, observe_s: 25, stability_s: 3}}
slo: {{error_rate: 0.01, p95_ms: 60000, kpi_drop: 1.0}}
scenarios:
  - {{name: {name}, experiment: {HERE / "experiments" / experiment}}}
gates: ["data_loss == 0"]
""")
    return plan


@contextmanager
def open_workers(count: int, port: int, folder: Path) -> Iterator[list[subprocess.Popen]]:
    """`count` `harness load worker` processes for the master on 127.0.0.1:port, one run each."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "harness", "load", "worker", "--master", f"127.0.0.1:{port}",
        "--locustfile", str(LOCUSTFILE), "--runs", "1",
    ]  # fmt: skip
    started = [
        subprocess.Popen(
            [*command, "--log", str(folder / f"worker-{i}.log")], cwd=folder, start_new_session=True
        )
        for i in range(count)
    ]
    try:
        yield started
    finally:
        for worker in started:
            children.stop_group(worker, grace_s=15)


def run_scored(managed, plan_path: Path, reports: Path) -> tuple[dict, Path]:
    wait_for(lambda: serving(managed), 60, "a healthy testbed before the scenario")
    engine = runner.Engine(loading.load_plan(plan_path), reports, managed.root, Progress(quiet=True))
    result = engine.run().to_json()
    (scenario,) = result["scenarios"]
    sdir = engine.run_dir / "scenarios" / f"{scenario['name']}-1"
    return scenario, sdir


def recovery_error_s(scenario: dict, sdir: Path) -> float:
    """Measured recovery time minus the ground truth's."""
    events = [json.loads(line) for line in (sdir / "events.jsonl").read_text().splitlines()]
    truth = ground_truth_recovery(events, scenario["phases"]["fault_start_t"])
    measured = scenario["metrics"]["recovery_time_s"]
    assert measured is not None
    assert abs(measured - truth) <= max(1.0, 0.1 * truth), (measured, truth)
    return measured - truth


def check_totals_and_data(scenario: dict, sdir: Path) -> None:
    """Completed, timeline totals equal to Locust's, acknowledged writes all read back."""
    assert scenario["status"] == "completed", scenario
    total = read_timeline(sdir / "timeline.jsonl").total()
    locust = read_locust_totals(sdir / "locust.json")
    assert locust.requests > 300
    assert (total.requests, total.failures) == (locust.requests, locust.failures)
    verified = rundir.read_json(sdir / "verify.json")
    assert verified["acknowledged"] > 0 and verified["missing"] == []
    assert scenario["metrics"]["data_loss"] == 0
    assert scenario["passed"], scenario["gates"]


def test_two_workers_score_like_one_process(managed, replica_kill_run: SharedRun, tmp_path: Path) -> None:
    """A replica kill under load from a master and two worker processes is scored as under one
    process: totals exact, data loss verified, recovery error within one bucket of the single run's."""
    # The single-process side: the shared run's plan is write_plan's, load.workers aside.
    single, single_dir = replica_kill_run.scenario, replica_kill_run.sdir
    check_totals_and_data(single, single_dir)
    assert single["load"] == {
        "processes": 1, "workers_expected": 0, "workers_joined": 0, "workers_took_part": None,
    }  # fmt: skip

    port = free_port()
    plan = write_plan(
        tmp_path, "workers", workers=f"{{expect: 2, bind: '127.0.0.1:{port}', join_timeout_s: 60}}"
    )
    with open_workers(2, port, tmp_path / "workers"):
        dist, dist_dir = run_scored(managed, plan, tmp_path / "reports")
    check_totals_and_data(dist, dist_dir)
    assert dist["load"] == {
        "processes": None,
        "workers_expected": 2,
        "workers_joined": 2,
        "workers_took_part": 2,
    }
    assert read_timeline(dist_dir / "timeline.jsonl").header["workers_expected"] == 2

    single_error, dist_error = recovery_error_s(single, single_dir), recovery_error_s(dist, dist_dir)
    print(f"recovery error: single process {single_error:+.3f} s, two workers {dist_error:+.3f} s")
    assert abs(dist_error - single_error) <= BUCKET_S
    assert faults.ledger(managed.root) == [], "the rollbacks undid the faults"


def test_missing_workers_end_the_scenario_with_exit_3_before_any_fault(managed, tmp_path: Path) -> None:
    """Two workers expected, one started: `harness run` exits 3 naming 1 of 2, and the experiment never ran."""
    wait_for(lambda: serving(managed), 60, "a healthy testbed before the scenario")
    port = free_port()
    plan = write_plan(
        tmp_path, "short", workers=f"{{expect: 2, bind: '127.0.0.1:{port}', join_timeout_s: 10}}"
    )
    reports = tmp_path / "reports"
    with open_workers(1, port, tmp_path / "workers"):
        outcome = CliRunner().invoke(
            cli.app, ["run", str(plan), "--reports", str(reports), "--dir", str(managed.root)]
        )
    assert outcome.exit_code == 3, outcome.output
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    result = rundir.read_json(run_dir / rundir.RESULT)
    (scenario,) = result["scenarios"]
    assert scenario["status"] == "error"
    assert f"1 of 2 Locust workers joined the master at 127.0.0.1:{port} within 10 s" in scenario["error"]
    assert scenario["load"]["workers_joined"] == 1
    sdir = run_dir / "scenarios" / "short-1"
    assert not (sdir / "journal.json").exists(), "the experiment did not run"
    markers = [json.loads(line) for line in (sdir / "markers.jsonl").read_text().splitlines()]
    assert all(m.get("kind") == "phase" for m in markers), "no activity was started"
    assert [m["phase"] for m in markers] == ["stopped"]
    events = [json.loads(line) for line in (sdir / "events.jsonl").read_text().splitlines()]
    assert not [e for e in events if e["event"] == "fault_applied"]
    assert faults.ledger(managed.root) == []
