"""A full harness run against a Kubernetes target: the catalog's pod-kill experiment, the real
kubernetes client, Locust load on the real reference service, the kmock emulator as the cluster.

What this proves: the engine drives the Kubernetes target end to end (context check and pin,
facts, control-plane sampling, heal, ground truth), the catalog's `terminate_service_pods` deletes
a pod in the allowed cluster and nowhere else, the steady state reaches the service at the load's
URL, and the control-plane metrics see the replacement.
What it cannot prove: anything about how a real cluster behaves. The replacement pod is made
by a test-side controller, and the load goes straight to one local service process, so the
pod kill costs users nothing here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from harness.app.launcher import open_service
from harness.engine import runner
from harness.engine.progress import Progress
from harness.kubernetes import probes
from harness.plan import loading
from harness.scoring import controlplane
from harness.scoring.windows import Phases
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters, ReplicaController

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
ROOT = HERE.parents[1]
EXPERIMENT = ROOT / "experiments" / "kubernetes" / "pod-kill.yaml"
"""The catalog's own pod-kill experiment (our guarded pod delete, then the wait in the method)."""


def write_plan(tmp: Path, host: str) -> Path:
    plan = tmp / "k8s-pod-kill.yaml"
    plan.write_text(f"""name: k8s-pod-kill
target:
  kind: kubernetes
  context: test-cluster
  allowed_contexts: [test-cluster]
  namespace: {NAMESPACE}
  selector: {SELECTOR}
load: {{locustfile: {ROOT / "loadtests/subscriptions.py"}, host: "{host}", users: 4, spawn_rate: 4,
        pacing_s: 0.5, bucket_s: 1.0, request_timeout_s: 2.0}}
windows: {{warmup_s: 2, baseline_s: 4, observe_s: 8, stability_s: 2}}
scenarios:
  - name: pod-kill
    experiment: {EXPERIMENT}
    vars: {{deployment_name: subs, service_name: subs, service_port: http, recovery_timeout_s: 30}}
gates: ["data_loss == 0"]
""")
    return plan


def test_a_pod_kill_game_day_on_kubernetes(clusters: Clusters, tmp_path: Path) -> None:
    """The run completes with cluster facts, the pod is gone from the allowed cluster only, and the
    control-plane file measures its replacement."""
    emulator = clusters.allowed.emulator
    assert emulator is not None
    with (
        open_service(f"sqlite:///{tmp_path / 'service.db'}", log_path=tmp_path / "service.log") as service,
        clusters.allowed.api() as api,
        ReplicaController(api, create_s=0.5, schedule_s=1.0, ready_s=1.5) as controller,
    ):
        emulator.service_proxy = {"subs": service.url}
        plan = loading.load_plan(write_plan(tmp_path, service.url))
        engine = runner.Engine(plan, tmp_path / "reports", tmp_path / "testbed", Progress(quiet=True))
        production_before = len(clusters.production.requests)
        result = engine.run().to_json()
        pods_after = {p.metadata.name for p in k8s_client.CoreV1Api(api).list_namespaced_pod(
            NAMESPACE, label_selector=SELECTOR).items}  # fmt: skip

    assert result["status"] == "completed", result.get("error")
    (scenario,) = result["scenarios"]
    assert scenario["status"] == "completed", scenario
    assert scenario["steady_state"] == {"before": True, "after": True}
    target = result["target"]
    assert target["kind"] == "kubernetes" and target["context"] == "test-cluster"
    assert target["server_version"] == "v1.30.4-eks-a737599" and target["nodes"] == 3
    assert target["zones"] == {"eu-west-1a": 1, "eu-west-1b": 1, "eu-west-1c": 1}

    deletes = [r for r in clusters.allowed.requests if r.method.value == "DELETE" and r.resource is not None]
    assert len(deletes) == 1 and deletes[0].name in {"subs-0", "subs-1", "subs-2"}
    assert deletes[0].name not in pods_after and len(pods_after) == 3
    assert len(clusters.production.requests) == production_before, "nothing reached the other context"
    assert controller.first("created") > deletes_time(engine, scenario)

    sdir = engine.run_dir / "scenarios" / "pod-kill-1"
    lines = [json.loads(line) for line in (sdir / probes.FILE).read_text().splitlines()]
    assert {line["kind"] for line in lines} >= {"api", "health", "node", "pod", "deployment"}
    phases = Phases(**scenario["phases"])
    summary = controlplane.summarize(lines, phases)
    assert summary["pod_rescheduling_time_s"] is not None
    assert summary["pod_rescheduling_time_s"] == pytest.approx(
        controller.first("scheduled") - deletes_time(engine, scenario), abs=0.8
    )
    assert summary["pod_readiness_time_s"] is not None and summary["pods_replaced"] == 1
    endpoints = [line for line in lines if line["kind"] == "endpoints"]
    assert endpoints and all((e["service"], e["ok"]) == ("subs", True) for e in endpoints), (
        "the experiment's service_name"
    )
    # no EndpointSlice controller runs here: the slice keeps its 3 ready endpoints, and the phase says so
    rerouted = next(p for p in scenario["recovery_phases"] if p["name"] == "rerouted")
    assert rerouted["t"] is None and "no ready endpoint" in rerouted["reason"]
    if "control_plane" in scenario["metrics"]:  # once the engine scores controlplane.jsonl itself
        assert scenario["metrics"]["control_plane"] == summary

    events = [json.loads(line) for line in (sdir / "events.jsonl").read_text().splitlines()]
    assert any(e["event"] == "Scheduled" for e in events), "the namespace's events are the ground truth"
    assert scenario["healed"] == []
    assert scenario["metrics"]["data_loss"] == 0 and scenario["metrics"]["requests"] > 0


def deletes_time(engine: runner.Engine, scenario: dict) -> float:
    """When the method's terminate action started (its marker): the pod was deleted just after."""
    markers = [json.loads(line) for line in
               (engine.run_dir / "scenarios" / "pod-kill-1" / "markers.jsonl").read_text().splitlines()]  # fmt: skip
    return next(m["t"] for m in markers if m["kind"] == "activity_start" and m.get("section") == "method")
