"""Scenarios a target cannot run: a control-plane stop on a managed control plane is not run and
not failed, and says why in the console, result.json, summary.md, junit.xml, report.html and the
exit code `harness run` and `harness gate` return.

No cluster and no load: the target is a stand-in with the Kubernetes target's interface whose
facts say what `harness.kubernetes.facts` says of an EKS or a kubeadm cluster, and the engine's
load-and-fault step is replaced by one that records what it was asked to run.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engine import commands, runner
from harness.engine.progress import Progress
from harness.plan import Plan
from harness.result import model as result_model

ROOT = Path(__file__).parents[2]
EKS_FACTS = {"kind": "kubernetes", "context": "in-cluster", "provider": "eks",
             "server_version": "v1.30.4-eks-a737599", "control_plane": "managed/not visible"}  # fmt: skip
KUBEADM_FACTS = {"kind": "kubernetes", "context": "in-cluster", "provider": "self-managed",
                 "control_plane": {"nodes": ["cp-1", "cp-2", "cp-3"], "etcd_members": ["etcd-cp-1"]}}  # fmt: skip


def plan(*scenarios: dict[str, Any]) -> Plan:
    return Plan.model_validate(
        {
            "name": "cluster-benchmark",
            "target": {"kind": "kubernetes", "allowed_contexts": ["in-cluster"], "selector": "app=subs"},
            "load": {"locustfile": str(ROOT / "loadtests/subscriptions.py"), "host": "http://subs.example"},
            "scenarios": list(scenarios),
            "gates": ["error_rate < 0.05"],
        }
    )


ETCD_STOP = {
    "name": "etcd-member-stop",
    "experiment": str(ROOT / "experiments/kubernetes/etcd-member-stop.yaml"),
    "requires": ["self-managed-control-plane"],
    "trials": 5,
}
POD_KILL = {"name": "pod-kill", "experiment": str(ROOT / "experiments/kubernetes/pod-kill.yaml"), "trials": 2}


class StandInTarget:
    """The engine's Target protocol with given facts; it holds nothing and injects nothing."""

    url = "http://subs.example"

    def __init__(self, facts: dict[str, Any]) -> None:
        self._facts = facts

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def configuration(self) -> dict[str, Any]:
        return {}

    def heal(self) -> list[str]:
        return []

    def ground_truth(self, start_t: float, end_t: float) -> list[dict[str, Any]]:
        return []

    def facts(self) -> dict[str, Any]:
        return dict(self._facts)

    @contextlib.contextmanager
    def observe(self, sdir: Path, service: str | None = None) -> Iterator[None]:
        yield


class RecordingEngine(runner.Engine):
    """The engine with its load-and-fault step replaced: it records which trials it was asked to run."""

    def __init__(self, the_plan: Plan, reports: Path, facts: dict[str, Any], stream: io.StringIO) -> None:
        super().__init__(the_plan, reports, reports / "testbed", Progress(stream=stream))
        self.target = StandInTarget(facts)
        self.ran: list[tuple[str, int]] = []

    def run_scenario(self, scenario: Any, trial: int) -> str:
        self.ran.append((scenario.name, trial))
        return "completed"


@pytest.fixture
def eks_run(tmp_path: Path) -> tuple[RecordingEngine, result_model.Result, str]:
    stream = io.StringIO()
    engine = RecordingEngine(plan(ETCD_STOP), tmp_path, EKS_FACTS, stream)
    result = engine.run()
    return engine, result, stream.getvalue()


class TestManagedControlPlane:
    def test_not_run_and_said_so_in_the_console(self, eks_run: tuple[RecordingEngine, Any, str]) -> None:
        """No trial of the scenario runs; the console names it, the reason and that it was not run."""
        engine, _, console = eks_run
        assert engine.ran == []
        assert "etcd-member-stop: not applicable (managed control plane: eks runs etcd" in console
        assert "not run" in console

    def test_result_json_has_one_entry_with_status_and_reason(
        self, eks_run: tuple[RecordingEngine, Any, str]
    ) -> None:
        """One entry stands for the five trials: status not-applicable, the reason, no metrics, no
        gates; it cannot fail the run, which completed and passed (exit 0)."""
        engine, result, _ = eks_run
        data = json.loads((engine.run_dir / "result.json").read_text())
        (entry,) = data["scenarios"]
        assert entry["name"] == "etcd-member-stop" and entry["trial"] == 1
        assert entry["status"] == "not-applicable"
        assert entry["not_applicable"].startswith("managed control plane: eks")
        assert "self-managed-control-plane" in entry["not_applicable"]
        assert entry["metrics"] is None and entry["gates"] == []
        assert data["status"] == "completed" and data["passed"] is True
        assert runner.exit_code(result) == 0

    def test_summary_junit_and_report_say_not_applicable(
        self, eks_run: tuple[RecordingEngine, Any, str]
    ) -> None:
        """summary.md marks the row and gives the reason; junit.xml skips the case; report.html
        shows it as not applicable, not as failed or missing."""
        engine, _, _ = eks_run
        summary = (engine.run_dir / "summary.md").read_text()
        assert "| etcd-member-stop | not-applicable | not applicable (managed control plane) |" in summary
        assert "Not applicable on this target (not run, not failed):" in summary
        assert "**no**" not in summary and "FAILED" not in summary
        junit = (engine.run_dir / "junit.xml").read_text()
        assert '<skipped message="not applicable: managed control plane: eks' in junit
        assert "<error" not in junit and "<failure" not in junit
        html = (engine.run_dir / "report.html").read_text()
        assert 'data-not-applicable="etcd-member-stop"' in html
        assert "NOT APPLICABLE" in html and "Not run:" not in html

    def test_harness_score_keeps_it_not_applicable(self, eks_run: tuple[RecordingEngine, Any, str]) -> None:
        """Scoring the folder again (harness score) gives the same entry, not a scoring error."""
        engine, _, _ = eks_run
        (entry,) = runner.rescore(engine.run_dir, warn=lambda _t: None).scenarios
        assert entry.status == "not-applicable" and entry.not_applicable and entry.scoring_error is None

    def test_gate_output_says_it_is_no_failure(self, eks_run: tuple[RecordingEngine, Any, str]) -> None:
        """`harness gate` prints no summary, so it prints a line per scenario not run, and why."""
        _, result, _ = eks_run
        (line,) = commands.not_applicable_lines(result)
        assert line.startswith("etcd-member-stop: not applicable (managed control plane: eks")
        assert line.endswith("; not run, not a failure")


class TestSelfManagedControlPlane:
    @pytest.mark.parametrize(
        "facts",
        [
            KUBEADM_FACTS,
            {"kind": "testbed", "profile": "self-managed"},
            {"kind": "testbed", "profile": "managed"},
        ],
        ids=["kubeadm", "testbed-self-managed", "testbed-managed"],
    )
    def test_every_trial_runs(self, tmp_path: Path, facts: dict[str, Any]) -> None:
        """A control plane the harness can reach (a kubeadm cluster, either testbed profile) runs
        every trial of the scenario, after the scenarios before it."""
        engine = RecordingEngine(plan(POD_KILL, ETCD_STOP), tmp_path, facts, io.StringIO())
        engine.run()
        assert engine.ran == [("pod-kill", 1), ("pod-kill", 2)] + [
            ("etcd-member-stop", t) for t in range(1, 6)
        ]

    def test_only_the_scenario_that_requires_it_is_skipped(self, tmp_path: Path) -> None:
        """On EKS the scenarios through the Kubernetes API still run, in order."""
        engine = RecordingEngine(plan(ETCD_STOP, POD_KILL), tmp_path, EKS_FACTS, io.StringIO())
        engine.run()
        assert engine.ran == [("pod-kill", 1), ("pod-kill", 2)]


def test_a_not_applicable_scenario_leaves_the_exit_code_to_the_others() -> None:
    """exit 0 when the scenarios that ran passed, 1 when one failed a gate: a not-applicable entry
    (no metrics) counts as neither, where a scenario without metrics that ran exits 3."""
    skipped = {"name": "etcd-member-stop", "trial": 1, "status": "not-applicable",
               "not_applicable": "managed control plane: eks", "metrics": None, "passed": True}  # fmt: skip
    ran = {"name": "pod-kill", "trial": 1, "status": "completed", "metrics": {"error_rate": 0.0}}
    head = {"run_id": "r", "plan": {"name": "p"}, "target": {"kind": "kubernetes"}, "started": 1.0,
            "status": "completed"}  # fmt: skip

    def result(passed: bool) -> result_model.Result:
        scenarios = [skipped, {**ran, "passed": passed}]
        return result_model.Result.model_validate({**head, "passed": passed, "scenarios": scenarios})

    assert runner.exit_code(result(True)) == 0
    assert runner.exit_code(result(False)) == 1
    unscored = {**ran, "metrics": None, "passed": False}
    broken = result_model.Result.model_validate({**head, "passed": False, "scenarios": [skipped, unscored]})
    assert runner.exit_code(broken) == 3
