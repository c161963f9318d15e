"""The control-plane sampler against the kmock emulator, and its lines summarized; and the
API-server load as the sampler sees it.

The emulator answers at once, so the latencies here say nothing about a real API server; what
these tests establish is the line format, the transitions, error handling, that the timings
measured match what the test-side controller did, within the polling resolution, which reads
the watcher asks for, and how the load's identity decides what the sampler's 429s mean. The
emulator's API Priority and Fairness is a per-user concurrency cap (see conftest), not APF.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client as k8s_client

from harness.chaos.activities import kubernetes as activities
from harness.kubernetes import client, probes
from harness.kubernetes.target import KubernetesTarget
from harness.scoring import controlplane
from harness.scoring.windows import Phases
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters, ReplicaController, target_spec

KEYS = {
    "api": {"t", "kind", "verb", "resource", "latency_ms", "ok", "status", "error", "own_load"},
    "health": {"t", "kind", "endpoint", "ok", "latency_ms", "failed_checks"},
    "node": {"t", "kind", "name", "ready"},
    "pod": {"t", "kind", "name", "event", "node"},
    "deployment": {"t", "kind", "name", "available", "desired"},
    "poll": {"t", "kind", "resource", "ok", "latency_ms", "status", "error", "last_ok_t", "blind_after_s"},
}
FAST = {"interval_s": 0.25, "poll_s": 0.25, "request_timeout_s": 2.0}


@pytest.fixture
def connection(clusters: Clusters) -> Iterator[client.Connection]:
    conn = client.connect(target_spec())
    yield conn
    conn.close()


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def pods_polled(path: Path) -> bool:
    """Whether the watcher has listed the pods once (its first successful poll writes a line)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return False
    for line in lines:
        try:
            p = json.loads(line)
        except json.JSONDecodeError:  # the line being written
            continue
        if p.get("kind") == "poll" and p.get("resource") == "pods" and p.get("ok"):
            return True
    return False


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
    polls = [p for p in lines if p["kind"] == "poll"]
    assert sorted(p["resource"] for p in polls) == ["deployments", "nodes", "pods"], "first view of each"
    assert all(p["ok"] and p["last_ok_t"] is None for p in polls)


def test_the_watcher_reads_the_watch_cache_in_pages(
    clusters: Clusters, connection: client.Connection, tmp_path: Path
) -> None:
    """Every polling LIST asks for resourceVersion=0 (no quorum read from etcd) with a page limit."""
    before = len(clusters.allowed.requests)
    with probes.open_sampler(connection.api, NAMESPACE, SELECTOR, tmp_path, **FAST):
        time.sleep(1.0)
    requests = clusters.allowed.requests[before:]
    polls = [
        r
        for r in requests
        if r.url.path in ("/api/v1/nodes", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")
    ]
    assert len(polls) >= 4
    assert all(r.params.get("resourceVersion") == "0" and r.params.get("limit") == "500" for r in polls)
    assert all(r.headers.get("User-Agent") == probes.USER_AGENT for r in requests)


def test_failed_polls_are_written_and_the_blind_time_is_scored(
    clusters: Clusters, connection: client.Connection, tmp_path: Path
) -> None:
    """Node LISTs failing for 1.5 s: a `poll` line per failure, and the outage less the 0.5 s a view stays current is blind."""
    emulator = clusters.allowed.emulator
    assert emulator is not None
    with probes.open_sampler(connection.api, NAMESPACE, SELECTOR, tmp_path, **{**FAST, "blind_after_s": 0.5}):
        start = time.time()
        time.sleep(0.8)
        fault = time.time()
        emulator.outage = lambda request: request.url.path == "/api/v1/nodes"
        time.sleep(1.5)
        emulator.outage = None
        time.sleep(1.0)
        end = time.time()
    lines = read(tmp_path / probes.FILE)
    failed = [p for p in lines if p["kind"] == "poll" and not p["ok"]]
    assert failed and {p["resource"] for p in failed} == {"nodes"}
    assert all(p["status"] == 500 and fault <= p["t"] and p["last_ok_t"] < fault for p in failed)
    (resumed,) = [p for p in lines if p["kind"] == "poll" and p["ok"] and p["last_ok_t"] is not None]
    assert resumed["resource"] == "nodes" and resumed["blind_after_s"] == 0.5
    metrics = controlplane.summarize(lines, phases(start, fault, end))
    assert metrics["watch_failed_polls"] == len(failed)
    unseen = resumed["t"] - max(resumed["last_ok_t"] + 0.5, fault)
    assert metrics["watch_blind_s"] == pytest.approx(unseen, abs=1e-3)
    assert metrics["watch_blind_s"] == pytest.approx(1.5 - 0.5, abs=FAST["poll_s"] + 0.35)
    assert metrics["watch_coverage"] == pytest.approx(1 - metrics["watch_blind_s"] / (end - fault), abs=1e-3)


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
        # The watcher must have seen the pods once before one goes (on a busy machine its first
        # list can take longer than any fixed pause); then a little of a baseline.
        seen_deadline = time.time() + 10
        while time.time() < seen_deadline and not pods_polled(tmp_path / probes.FILE):
            time.sleep(0.05)
        time.sleep(0.3)
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


def test_lines_are_masked_as_they_are_written(tmp_path: Path) -> None:
    """An error quoting a URL with its password, or a value under a secret-looking key, is masked in
    controlplane.jsonl: reports show these lines."""
    configuration = k8s_client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    with k8s_client.ApiClient(configuration) as api:
        sampler = probes.ControlPlaneSampler(api, NAMESPACE, SELECTOR, tmp_path / probes.FILE, **FAST)
        # The file opened as start() opens it, without the sampling threads.
        sampler._out = (tmp_path / probes.FILE).open("a", encoding="utf-8")
        sampler._write({"t": 1.0, "kind": "api", "ok": False, "status": None, "token": "tk-4d3c2b1a",
                        "error": "MaxRetryError: https://admin:pw-8e7d6c5b@api.example/api/v1/pods"})  # fmt: skip
        sampler.close()
    [line] = read(tmp_path / probes.FILE)
    assert line["error"] == "MaxRetryError: https://admin:***@api.example/api/v1/pods"
    assert line["token"] == "<redacted>" and line["kind"] == "api" and line["ok"] is False


def test_the_sampler_stops_by_itself_after_its_maximum(connection: client.Connection, tmp_path: Path) -> None:
    """A sampler nobody closes stops writing after max_duration_s."""
    sampler = probes.ControlPlaneSampler(connection.api, NAMESPACE, SELECTOR, tmp_path / probes.FILE,
                                         **{**FAST, "max_duration_s": 0.5})  # fmt: skip
    sampler.start()
    time.sleep(1.5)
    assert not any(t.is_alive() for t in sampler._threads)
    sampler.close()


def test_polls_that_come_late_are_blind_time_too(
    clusters: Clusters, connection: client.Connection, tmp_path: Path
) -> None:
    """LISTs slow enough that each resource is seen only every ~1.2 s, past blind_after_s: written and scored."""
    emulator = clusters.allowed.emulator
    assert emulator is not None
    emulator.list_delay_s = 0.4
    try:
        with probes.open_sampler(
            connection.api, NAMESPACE, SELECTOR, tmp_path, **{**FAST, "blind_after_s": 0.8}
        ):
            start = time.time()
            time.sleep(3.0)
            end = time.time()
    finally:
        emulator.list_delay_s = 0.0
    lines = read(tmp_path / probes.FILE)
    late = [p for p in lines if p["kind"] == "poll" and p["ok"] and p["last_ok_t"] is not None]
    assert late and all(p["t"] - p["last_ok_t"] > 0.8 for p in late)
    metrics = controlplane.summarize(lines, phases(start, start, end))
    assert metrics["watch_failed_polls"] == 0 and 0 < metrics["watch_coverage"] < 1


class TestOwnLoad:
    """apiserver_load and the sampler together, under the emulator's per-user flow cap."""

    @pytest.fixture
    def target(self, clusters: Clusters) -> Iterator[KubernetesTarget]:
        emulator = clusters.allowed.emulator
        assert emulator is not None
        emulator.flow_limit, emulator.list_delay_s = 2, 0.05
        target = KubernetesTarget(target_spec())
        target.open()
        yield target
        target.close()
        emulator.flow_limit, emulator.list_delay_s = None, 0.0

    def run(
        self, target: KubernetesTarget, sdir: Path, **arguments: Any
    ) -> tuple[dict[str, Any], list[Any], Phases]:
        with target.observe(sdir):
            start = time.time()
            time.sleep(0.6)
            fault = time.time()
            result = activities.apiserver_load(threads=6, duration_s=1.5, ns=NAMESPACE,
                                               configuration=target.configuration(), **arguments)  # fmt: skip
            time.sleep(0.3)
            end = time.time()
        return result, read(sdir / probes.FILE), phases(start, fault, end)

    def test_a_load_with_its_own_service_account_is_another_flow(
        self, clusters: Clusters, target: KubernetesTarget, tmp_path: Path
    ) -> None:
        """With a token of its own, the load's 429s are its own; the sampler's flow is not throttled."""
        with clusters.allowed.api() as api:
            k8s_client.CoreV1Api(api).create_namespaced_service_account(
                NAMESPACE, {"metadata": {"name": "resilience-harness-load"}}
            )
        before = len(clusters.allowed.requests)
        result, lines, window = self.run(target, tmp_path, service_account="resilience-harness-load")
        assert result["identity"] == f"system:serviceaccount:{NAMESPACE}:resilience-harness-load"
        assert result["errors"].get("429", 0) > 0, "the load's own flow is capped"
        loads = [r for r in clusters.allowed.requests[before:]
                 if r.headers.get("User-Agent") == activities.LOAD_USER_AGENT]  # fmt: skip
        assert len(loads) == result["requests"]
        assert all(r.headers.get("Authorization") == f"Bearer sa:{NAMESPACE}:resilience-harness-load"
                   for r in loads)  # fmt: skip
        api_lines = [a for a in lines if a["kind"] == "api"]
        assert api_lines and not [a for a in api_lines if a["status"] == 429 or a["own_load"]]
        metrics = controlplane.summarize(lines, window)
        assert metrics["api"]["fault"]["error_rate"] == 0 and metrics["watch_failed_polls"] == 0

    def test_under_the_harness_identity_its_429s_are_not_api_errors(
        self, target: KubernetesTarget, tmp_path: Path
    ) -> None:
        """No token to be had: the sampler's 429s while the load runs are marked ours, not the API's."""
        result, lines, window = self.run(target, tmp_path, service_account="no-such-account")
        assert (
            result["identity"].startswith("the harness's own (TokenRequest") and "404" in result["identity"]
        )
        throttled = [a for a in lines if a["kind"] == "api" and a["status"] == 429]
        assert throttled and all(a["own_load"] for a in throttled)
        fault = controlplane.summarize(lines, window)["api"]["fault"]
        assert fault["throttled_own_load"] == len(throttled)
        assert fault["error_rate"] in (0.0, None), "None: every sample in the window was our own load's 429"
        assert activities.OWN_LOAD.shares_identity() is False, "the mark ends with the load"

    def test_a_service_account_that_may_not_list_is_a_failed_action(
        self, clusters: Clusters, target: KubernetesTarget
    ) -> None:
        """Every LIST refused (403, no RBAC for the account): the action fails instead of reporting a load."""
        emulator = clusters.allowed.emulator
        assert emulator is not None
        with clusters.allowed.api() as api:
            k8s_client.CoreV1Api(api).create_namespaced_service_account(
                NAMESPACE, {"metadata": {"name": "resilience-harness-load"}}
            )
        emulator.forbidden = lambda request: request.headers.get("Authorization", "").startswith("Bearer sa:")
        try:
            with pytest.raises(ActivityFailed, match="may not list pods in shop"):
                activities.apiserver_load(threads=2, duration_s=0.3, ns=NAMESPACE, service_account="resilience-harness-load",
                                          configuration=target.configuration())  # fmt: skip
        finally:
            emulator.forbidden = None

    def test_every_page_of_every_list_is_read(self, clusters: Clusters, target: KubernetesTarget) -> None:
        """With 4 pods and pages of 3, each LIST is two requests, the second with the continue token."""
        emulator = clusters.allowed.emulator
        assert emulator is not None
        emulator.flow_limit = None
        before = len(clusters.allowed.requests)
        result = activities.apiserver_load(threads=2, duration_s=0.5, ns=NAMESPACE, page_size=3,
                                           configuration=target.configuration())  # fmt: skip
        pages = [
            r
            for r in clusters.allowed.requests[before:]
            if r.headers.get("User-Agent") == activities.LOAD_USER_AGENT
        ]
        firsts = [r for r in pages if "continue" not in r.params]
        seconds = [r for r in pages if r.params.get("continue") == "3"]
        assert result["errors"] == {} and result["requests"] == len(pages)
        assert result["lists"] >= 2 and len(seconds) >= result["lists"]
        assert len(firsts) - len(seconds) <= 2, "each thread may stop between a list's two pages"
        assert result["list_latency_ms"]["p50"] is not None


# --- the Service's endpoints --------------------------------------------------------------------
ENDPOINT_KEYS = {"t", "kind", "service", "source", "ok", "ready", "not_ready", "nodes", "error"}


def place_endpoints(api: k8s_client.ApiClient, ready_on: dict[str, bool]) -> None:
    """Play the EndpointSlice controller: the Service's slice holds one endpoint per node, ready or not."""
    endpoints = [{"addresses": [f"10.0.{i}.10"], "nodeName": node, "conditions": {"ready": ready}}
                 for i, (node, ready) in enumerate(sorted(ready_on.items()))]  # fmt: skip
    k8s_client.DiscoveryV1Api(api).patch_namespaced_endpoint_slice(
        "subs-abcde", NAMESPACE, {"endpoints": endpoints}
    )


def test_each_sample_records_the_services_ready_endpoints_and_a_node_loss_is_rerouted(
    clusters: Clusters, connection: client.Connection, tmp_path: Path
) -> None:
    """Every sample has an `endpoints` line; node-b's endpoint turned not ready is `rerouted`, its return `capacity_restored`."""
    from harness.scoring import stages

    all_ready = {"node-a": True, "node-b": True, "node-c": True}
    with clusters.allowed.api() as api:
        place_endpoints(api, all_ready)
        with probes.open_sampler(connection.api, NAMESPACE, SELECTOR, tmp_path, service="subs", **FAST):
            start = time.time()
            time.sleep(0.6)
            fault = time.time()
            k8s_client.CoreV1Api(api).patch_node_status(
                "node-b", {"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})  # fmt: skip
            place_endpoints(api, {**all_ready, "node-b": False})
            dropped = time.time()
            time.sleep(1.0)
            place_endpoints(api, all_ready)
            back = time.time()
            time.sleep(0.6)
            end = time.time()
    lines = read(tmp_path / probes.FILE)
    samples = [line for line in lines if line["kind"] == "endpoints"]
    health = [line for line in lines if line["kind"] == "health" and line["endpoint"] == "readyz"]
    assert samples and len(samples) == len(health), "one endpoints line per sample"
    assert all(set(s) == ENDPOINT_KEYS and s["ok"] and s["source"] == "endpointslices" for s in samples)
    assert {(s["ready"], s["not_ready"]) for s in samples} == {(3, 0), (2, 1)}
    lost = next(s for s in samples if s["ready"] == 2)
    assert lost["nodes"] == {"node-a": 1, "node-c": 1}
    found = stages.recovery_phases(phases(start, fault, end), stages.UserView(None, 0.0, 1.0), None, lines)
    rerouted = next(p for p in found if p.name == "rerouted")
    assert rerouted.source is stages.Source.CONTROL_PLANE
    assert rerouted.evidence == "endpointslice subs: 3 → 2 ready (node node-b removed)"
    assert dropped <= rerouted.t <= back, "the sample that saw the drop"
    restored = next(p for p in found if p.name == "capacity_restored")
    assert restored.t is not None and back <= restored.t <= end, "the first sample after the return"


def test_endpoints_are_read_where_endpoint_slices_cannot_be_listed(
    clusters: Clusters, connection: client.Connection, tmp_path: Path
) -> None:
    """EndpointSlices forbidden (403): the core/v1 Endpoints of the Service are read instead, and only they."""
    emulator = clusters.allowed.emulator
    assert emulator is not None
    with clusters.allowed.api() as api:
        k8s_client.CoreV1Api(api).create_namespaced_endpoints(NAMESPACE, {
            "metadata": {"name": "subs"},
            "subsets": [{"addresses": [{"ip": "10.0.0.10", "nodeName": "node-a"}, {"ip": "10.0.1.10", "nodeName": "node-b"}],
                         "notReadyAddresses": [{"ip": "10.0.2.10", "nodeName": "node-c"}],
                         "ports": [{"name": "http", "port": 8000}]}],
        })  # fmt: skip
    emulator.forbidden = lambda request: "endpointslices" in request.url.path
    before = len(clusters.allowed.requests)
    try:
        with probes.open_sampler(connection.api, NAMESPACE, SELECTOR, tmp_path, service="subs", **FAST):
            time.sleep(0.8)
    finally:
        emulator.forbidden = None
    samples = [line for line in read(tmp_path / probes.FILE) if line["kind"] == "endpoints"]
    assert len(samples) >= 2
    assert all(s["source"] == "endpoints" and s["ok"] for s in samples)
    assert (samples[0]["ready"], samples[0]["not_ready"], samples[0]["nodes"]) == (
        2,
        1,
        {"node-a": 1, "node-b": 1},
    )
    slice_lists = [r for r in clusters.allowed.requests[before:] if "endpointslices" in r.url.path]
    assert len(slice_lists) == 1, "asked once, then the Endpoints"
