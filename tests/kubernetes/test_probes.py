"""The control-plane sampler against the kmock emulator, and its lines summarized.

The emulator answers at once, so the latencies here say nothing about a real API server; what
these tests establish is the line format, the transitions, error handling, and that the
timings measured match what the test-side controller did, within the polling resolution.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client

from harness.kubernetes import client, probes
from harness.scoring import controlplane
from harness.scoring.windows import Phases
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters, ReplicaController, target_spec

KEYS = {
    "api": {"t", "kind", "verb", "resource", "latency_ms", "ok", "status", "error"},
    "health": {"t", "kind", "endpoint", "ok", "latency_ms", "failed_checks"},
    "node": {"t", "kind", "name", "ready"},
    "pod": {"t", "kind", "name", "event", "node"},
    "deployment": {"t", "kind", "name", "available", "desired"},
}
FAST = {"interval_s": 0.25, "poll_s": 0.25, "request_timeout_s": 2.0}


@pytest.fixture
def connection(clusters: Clusters) -> Iterator[client.Connection]:
    conn = client.connect(target_spec())
    yield conn
    conn.close()


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def phases(start: float, fault: float, end: float) -> Phases:
    return Phases(baseline_start_t=start, fault_start_t=fault, fault_end_t=fault, end_t=end)


def test_lines_have_the_documented_shape(connection: client.Connection, tmp_path: Path) -> None:
    """Every line kind appears with exactly its documented keys; initial nodes and deployment are written."""
    with probes.open_sampler(connection.api, NAMESPACE, SELECTOR, tmp_path, **FAST):
        time.sleep(1.2)
    lines = read(tmp_path / probes.FILE)
    for line in lines:
        assert set(line) == KEYS[line["kind"]], line
    api = [line for line in lines if line["kind"] == "api"]
    assert {(a["verb"], a["resource"]) for a in api} == {("list", "pods"), ("get", "serviceaccounts/default")}
    assert all(a["ok"] and a["status"] == 200 and a["error"] is None for a in api)
    health = [line for line in lines if line["kind"] == "health"]
    assert {h["endpoint"] for h in health} == {"readyz", "livez"} and all(h["ok"] for h in health)
    assert sorted((n["name"], n["ready"]) for n in lines if n["kind"] == "node") == [
        ("node-a", True), ("node-b", True), ("node-c", True)]  # fmt: skip
    assert [(d["name"], d["available"], d["desired"]) for d in lines if d["kind"] == "deployment"] == [
        ("subs", 3, 3)
    ]
    assert not [p for p in lines if p["kind"] == "pod"], "pods present at the start are not events"


def test_pod_rescheduling_and_readiness_match_the_controller(
    clusters: Clusters, connection: client.Connection, tmp_path: Path
) -> None:
    """A deleted pod's replacement: rescheduling and readiness times within the polling resolution."""
    with (
        clusters.allowed.api() as api,
        ReplicaController(api, create_s=0.5, schedule_s=1.0, ready_s=1.5) as rc,
        probes.open_sampler(connection.api, NAMESPACE, SELECTOR, tmp_path, **FAST),
    ):
        start = time.time()
        time.sleep(0.8)
        fault = time.time()
        k8s_client.CoreV1Api(api).delete_namespaced_pod("subs-1", NAMESPACE)
        deleted_at = time.time()
        deadline = time.time() + 15
        while time.time() < deadline and not any(s == "ready" for _, s, _ in rc.log):
            time.sleep(0.1)
        time.sleep(0.8)
        end = time.time()
    lines = read(tmp_path / probes.FILE)
    events = [(p["name"], p["event"]) for p in lines if p["kind"] == "pod"]
    replacement = next(n for _, s, n in rc.log if s == "created")
    assert events == [("subs-1", "deleted"), (replacement, "created"), (replacement, "scheduled"),
                      (replacement, "ready")]  # fmt: skip
    metrics = controlplane.summarize(lines, phases(start, fault, end))
    tolerance = FAST["poll_s"] + 0.35
    assert metrics["pod_rescheduling_time_s"] == pytest.approx(
        rc.first("scheduled") - deleted_at, abs=tolerance
    )
    assert metrics["pod_readiness_time_s"] == pytest.approx(rc.first("ready") - deleted_at, abs=tolerance)
    assert metrics["pods_deleted"] == 1 and metrics["pods_replaced"] == 1
    deployments = [(d["available"], d["desired"]) for d in lines if d["kind"] == "deployment"]
    assert deployments == [(3, 3), (2, 3), (3, 3)]
    assert metrics["deployment_unavailable_s"] == pytest.approx(
        rc.first("ready") - rc.first("missing"), abs=tolerance
    )
    assert metrics["api"]["baseline"]["samples"] > 0 and metrics["api"]["fault"]["error_rate"] == 0


def test_node_not_ready_and_ready_again(
    clusters: Clusters, connection: client.Connection, tmp_path: Path
) -> None:
    """A node going NotReady and back shows as two transitions and a spell of about that length."""
    with (
        clusters.allowed.api() as api,
        probes.open_sampler(connection.api, NAMESPACE, SELECTOR, tmp_path, **FAST),
    ):
        core = k8s_client.CoreV1Api(api)
        start = time.time()
        time.sleep(0.6)
        fault = time.time()
        core.patch_node_status("node-b", {"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
        time.sleep(2.0)
        core.patch_node_status("node-b", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        back = time.time()
        time.sleep(0.6)
        end = time.time()
    lines = read(tmp_path / probes.FILE)
    assert [n["ready"] for n in lines if n["kind"] == "node" and n["name"] == "node-b"] == [True, False, True]
    metrics = controlplane.summarize(lines, phases(start, fault, end))
    assert metrics["node_not_ready_s"] == pytest.approx(2.0, abs=0.6)
    assert metrics["node_ready_again_s"] == pytest.approx(back - fault, abs=0.6)


def test_api_errors_are_lines_not_exceptions(
    clusters: Clusters, connection: client.Connection, tmp_path: Path
) -> None:
    """While the API answers 500 the sampler writes ok=false lines, infers no pod deletion, and carries on."""
    emulator = clusters.allowed.emulator
    assert emulator is not None
    with probes.open_sampler(connection.api, NAMESPACE, SELECTOR, tmp_path, **FAST) as sampler:
        start = time.time()
        time.sleep(0.8)
        fault = time.time()
        emulator.failed_checks = ("etcd",)
        emulator.outage = lambda request: request.url.path.startswith("/api")
        time.sleep(1.5)
        emulator.outage = None
        emulator.failed_checks = ()
        recovered = time.time()
        time.sleep(1.0)
        end = time.time()
    assert sampler.errors == []
    lines = read(tmp_path / probes.FILE)
    failed = [a for a in lines if a["kind"] == "api" and not a["ok"]]
    assert failed and all(a["status"] == 500 and a["error"].startswith("500") for a in failed)
    assert all(fault <= a["t"] <= recovered for a in failed)
    assert any(a["ok"] for a in lines if a["kind"] == "api" and a["t"] > recovered)
    unhealthy = [h for h in lines if h["kind"] == "health" and not h["ok"]]
    assert unhealthy and all(h["failed_checks"] == ["etcd"] for h in unhealthy)
    assert not [p for p in lines if p["kind"] == "pod"], "a failed list is not a deletion"
    metrics = controlplane.summarize(lines, phases(start, fault, end))
    assert 0 < metrics["api"]["fault"]["error_rate"] < 1 and metrics["api"]["baseline"]["error_rate"] == 0
    assert metrics["readyz_failed_s"] == pytest.approx(1.5, abs=0.6)


def test_an_unreachable_server_is_recorded_and_close_is_bounded(tmp_path: Path) -> None:
    """Connection refused becomes ok=false with no status; close returns promptly."""
    configuration = k8s_client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard port: nothing listens
    with k8s_client.ApiClient(configuration) as api:
        sampler = probes.ControlPlaneSampler(api, NAMESPACE, SELECTOR, tmp_path / probes.FILE, **FAST)
        sampler.start()
        time.sleep(0.6)
        began = time.monotonic()
        sampler.close()
        assert time.monotonic() - began < 5
    lines = read(tmp_path / probes.FILE)
    api_lines = [a for a in lines if a["kind"] == "api"]
    assert api_lines and all(not a["ok"] and a["status"] is None and a["error"] for a in api_lines)
    assert all(not h["ok"] and h["failed_checks"] == [] for h in lines if h["kind"] == "health")


def test_the_sampler_stops_by_itself_after_its_maximum(connection: client.Connection, tmp_path: Path) -> None:
    """A sampler nobody closes stops writing after max_duration_s."""
    sampler = probes.ControlPlaneSampler(connection.api, NAMESPACE, SELECTOR, tmp_path / probes.FILE,
                                         **{**FAST, "max_duration_s": 0.5})  # fmt: skip
    sampler.start()
    time.sleep(1.5)
    assert not any(t.is_alive() for t in sampler._threads)
    sampler.close()
