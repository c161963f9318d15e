"""The engine's scoring of a scenario folder explains its recovery from the target's own evidence:
the testbed's ground truth, or on a cluster the control-plane samples (its events.jsonl holds
Kubernetes Events, which are not read as the testbed's ground truth)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.engine import runner
from harness.plan import Plan
from harness.store import rundir

RUN = Path(__file__).parents[1] / "fixtures" / "runs" / "20261202T174601Z-local-gameday-8afa"


def _scenario(tmp_path: Path, target: dict | None = None) -> tuple[Plan, Path]:
    run = tmp_path / RUN.name
    shutil.copytree(RUN, run)
    data = rundir.read_json(run / rundir.PLAN)
    if target is not None:
        data["target"] = target
        data["load"]["host"] = "http://127.0.0.1:8000"
    plan = Plan.model_validate(data)
    return plan, run / "scenarios" / "node-crash-1"


def test_a_testbed_scenario_is_explained_by_its_ground_truth(tmp_path: Path) -> None:
    """Detected and rerouted come from the ground truth; the fault took effect."""
    plan, sdir = _scenario(tmp_path)
    scored = runner.score_scenario_dir(plan, plan.scenarios[1], sdir)
    by_name = {p.name: p for p in scored.recovery_phases}
    assert (
        by_name["detected"].source == "ground-truth"
        and by_name["detected"].evidence == "node_not_ready node-b1"
    )
    assert scored.fault_effect.outcome == "effect-observed" and scored.metrics.faults_without_effect == 0


def test_a_cluster_scenario_reads_its_control_plane_not_its_kubernetes_events(tmp_path: Path) -> None:
    """On a cluster, Kubernetes Events in events.jsonl are not taken for ground truth: the node seen
    NotReady by the watcher is the detection, and rerouting is null with its reason."""
    plan, sdir = _scenario(
        tmp_path,
        {"kind": "kubernetes", "context": "kind-a", "allowed_contexts": ["kind-a"], "selector": "app=subs"},
    )
    start = next(m["t"] for m in rundir.read_records(sdir / "markers.jsonl") if m.get("section") == "method")
    (sdir / "events.jsonl").write_text(
        json.dumps({"t": start + 1.0, "event": "Killing", "type": "Normal"}) + "\n"
    )
    lines = [
        {"t": start - 10.0, "kind": "node", "name": "node-b", "ready": True},
        {"t": start + 40.5, "kind": "node", "name": "node-b", "ready": False},
    ]
    (sdir / "controlplane.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    scored = runner.score_scenario_dir(plan, plan.scenarios[1], sdir)
    by_name = {p.name: p for p in scored.recovery_phases}
    assert (by_name["detected"].source, by_name["detected"].at_s) == ("control-plane", 40.5)
    assert by_name["rerouted"].t is None and "EndpointSlices" in by_name["rerouted"].reason
    (activity,) = scored.fault_effect.activities
    assert activity.observed is True and activity.source == "control-plane"
