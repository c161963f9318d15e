"""The engine checks the baseline before the first fault: a load generator far behind its schedule
stops the scenario before anything is injected (exit 3), unless the plan says to go on, and then
every page says so.

No cluster and no Locust: the target is a stand-in (tests/engine/test_not_applicable.py), the load
is a timeline written ahead of time with 30 % of its requests sent late by the generator, and the
experiment is a stand-in that marks its one action. Each run lasts its 1.5 s baseline (plus 1 s of
observation when it goes on).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.chaos import experiment as chaos_experiment
from harness.chaos.control import write_marker
from harness.engine import commands, runner
from harness.load import process
from harness.plan import Plan
from harness.result import files as result_files
from harness.store import rundir
from tests.engine.test_not_applicable import ROOT, RecordingEngine, StandInTarget
from tests.scoring import timelines

BUCKET_S = 0.1


def plan(**baseline: Any) -> Plan:
    return Plan.model_validate(
        {
            "name": "overloaded",
            "target": {"kind": "kubernetes", "allowed_contexts": ["in-cluster"], "selector": "app=subs"},
            "load": {
                "locustfile": str(ROOT / "loadtests/subscriptions.py"),
                "host": "http://subs.example",
                "bucket_s": BUCKET_S,
            },
            "windows": {"warmup_s": 0, "baseline_s": 1.5, "observe_s": 1, "stability_s": 1},
            "baseline": baseline,
            "scenarios": [
                {"name": "pod-kill", "experiment": str(ROOT / "experiments/kubernetes/pod-kill.yaml")}
            ],
        }
    )


class _Locust:
    returncode = None

    def poll(self) -> None:
        return None


@contextlib.contextmanager
def late_load(spec: process.LoadSpec, out_dir: Path) -> Iterator[tuple[Any, process.LoadResult]]:
    """The timeline of the next 30 s, written at once: 10 requests a bucket, 3 of them sent late."""
    result = process.LoadResult(out_dir)
    now = time.time()
    spec_ = {**timelines.CATALOG, "requests": 10, "gen_late": 3, "gen_lag_max_ms": 900.0}
    lines = [{**timelines.HEADER, "bucket_s": BUCKET_S}]
    lines += [
        timelines.bucket(round(now - 1 + i * BUCKET_S, 6), spec_, dt=BUCKET_S).to_line() for i in range(310)
    ]
    timelines.write_lines(result.timeline, lines)
    yield _Locust(), result


class Engine(RecordingEngine):
    """The real `run_scenario` (RecordingEngine's stand-in replaced back), on the stand-in target."""

    run_scenario = runner.Engine.run_scenario


@pytest.fixture
def injected(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stand-ins for Locust and Chaos Toolkit; the list records each experiment that ran."""
    ran: list[str] = []

    def run(experiment: dict[str, Any], markers: Path, variables: dict[str, Any]) -> dict[str, Any]:
        ran.append(experiment["title"])
        write_marker(str(markers), kind="activity_start", name="kill", type="action", section="method")
        write_marker(str(markers), kind="activity_end", name="kill", type="action", section="method",
                     status="succeeded")  # fmt: skip
        return {"status": "completed", "deviated": False, "steady_states": {}}

    monkeypatch.setattr(process, "open_load", late_load)
    monkeypatch.setattr(chaos_experiment, "run", run)
    return ran


def run(the_plan: Plan, tmp_path: Path) -> tuple[Engine, Any, str]:
    stream = io.StringIO()
    engine = Engine(the_plan, tmp_path, {"kind": "kubernetes", "context": "in-cluster"}, stream)
    engine.target = StandInTarget({"kind": "kubernetes", "context": "in-cluster"})
    result = engine.run()
    return engine, result, stream.getvalue()


def test_a_generator_behind_its_schedule_stops_the_scenario_before_the_fault(
    tmp_path: Path, injected: list[str]
) -> None:
    """Nothing is injected; status baseline-not-steady, exit 3; the failed check with its evidence in
    scenario.json, result.json, the console, summary.md, junit.xml, report.html and `harness gate`'s lines;
    `harness score` agrees."""
    engine, result, console = run(plan(), tmp_path)
    assert injected == []
    (scenario,) = result.scenarios
    assert scenario.status == "baseline-not-steady" and not scenario.passed and scenario.metrics is None
    assert runner.exit_code(result) == 3
    check = scenario.baseline_check
    assert check is not None and not check.steady and not check.went_on
    assert [c.name for c in check.failed] == ["generator_late_share"]
    assert check.failed[0].value == 0.3 and check.failed[0].threshold == 0.05
    sdir = rundir.scenario_dir(engine.run_dir, "pod-kill", 1)
    assert rundir.read_json(sdir / "scenario.json")["baseline_check"] == check.model_dump()
    assert not [m for m in rundir.read_markers(sdir / "markers.jsonl") if m.get("phase") == "experiment"]
    assert "BASELINE NOT STEADY" in console and "30.0 %" in console and "no fault injected" in console
    summary = (engine.run_dir / "summary.md").read_text()
    assert "**Baseline not steady**" in summary and "no fault was injected" in summary and "30.0 %" in summary
    assert (
        "baseline not steady, no fault injected: generator_late_share"
        in (engine.run_dir / "junit.xml").read_text()
    )
    assert "Baseline not steady" in (engine.run_dir / "report.html").read_text()
    (line,) = commands.unsteady_lines(result)  # what `harness gate`, which prints no summary, says
    assert line.startswith("pod-kill#1: baseline not steady (generator_late_share: ") and line.endswith(
        "no fault injected"
    )
    again = runner.rescore(engine.run_dir, warn=lambda _: None)
    assert again.scenarios[0].baseline_check == check


def test_a_plan_that_says_go_on_injects_and_every_page_says_the_baseline_was_not_steady(
    tmp_path: Path, injected: list[str]
) -> None:
    """`baseline.require_steady: false`: the fault runs and is scored, went_on is true, and summary.md and
    report.html put the finding first."""
    engine, result, console = run(plan(require_steady=False), tmp_path)
    assert len(injected) == 1
    (scenario,) = result.scenarios
    assert scenario.status == "completed" and scenario.metrics is not None
    check = scenario.baseline_check
    assert check is not None and not check.steady and check.went_on
    assert "injecting anyway" in console
    summary = (engine.run_dir / "summary.md").read_text()
    assert summary.index("**Baseline not steady**") < summary.index("| scenario |")
    assert "injected anyway" in summary and "completed (baseline not steady)" in summary
    assert "injected anyway" in (engine.run_dir / "report.html").read_text()
    parsed = result_files.read(engine.run_dir / "result.json").scenarios[0].baseline_check
    assert parsed == check
