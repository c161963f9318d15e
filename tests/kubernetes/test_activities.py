"""Our Kubernetes activities (harness.chaos.activities.kubernetes) end to end: the real kubernetes
client and chaosk8s against the kmock emulator, reached through the kubeconfig's `test-cluster`
context as the catalog's experiments reach a cluster.

What the emulator shows: which objects each action creates, patches or deletes, and that the
rollbacks undo exactly that, run twice or without their action; evictions refused (429) while a
PodDisruptionBudget would be violated, and a drain that completes once a slow test-side
replacement is Ready; an API server answering 503/429 for a while; Chaos Mesh objects held by a
finalizer, and a status written by a test-side stand-in for Chaos Mesh. What it cannot show: no
real controller acts on anything, so a cordoned node keeps its pods, a scaled Deployment keeps
its pods, a NetworkPolicy blocks nothing and a NetworkChaos injects nothing; the budget
arithmetic is the emulator's reading of policy/v1, not the disruption controller's. Latencies
are the emulator's, not a control plane's.
"""

from __future__ import annotations

import copy
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from kubernetes import client as k8s_client
from kubernetes.config import kube_config

from harness.chaos import experiment as chaos_experiment
from harness.chaos.activities import kubernetes as k8s
from harness.errors import InputError
from harness.plan import loading
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters, EmulatorServer, ReplicaController

ROOT = Path(__file__).parents[2]
CATALOG = ROOT / "experiments" / "kubernetes"

CONFIG = {"kubernetes_context": "test-cluster"}
"""As the engine sets it; the kubeconfig's current context is the other cluster."""
MANAGED = ("app.kubernetes.io/managed-by", "resilience-harness")


def writes(server: EmulatorServer, since: int = 0) -> list[Any]:
    """The requests after `since` that could change something (anything but GET)."""
    return [r for r in server.requests[since:] if r.method.value != "GET"]


def node(api: k8s_client.ApiClient, name: str) -> k8s_client.V1Node:
    return k8s_client.CoreV1Api(api).read_node(name)


def use_kubeconfig(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point chaosk8s at `path`: load_kube_config reads the location computed at import, not $KUBECONFIG.

    The engine's ContextPin does the same for a run (harness/kubernetes/client.py).
    """
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))


@pytest.fixture(autouse=True)
def _kubeconfig(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("clusters", "chaos_mesh_clusters"):
        if name in request.fixturenames:
            use_kubeconfig(request.getfixturevalue(name).kubeconfig, monkeypatch)


@pytest.fixture
def api(clusters: Clusters) -> Iterator[k8s_client.ApiClient]:
    with clusters.allowed.api() as api:
        yield api


class TestCordon:
    def test_cordon_then_uncordon_leaves_an_operators_cordon_alone(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """Only the node we cordoned is labelled and uncordoned; a second rollback does nothing."""
        core = k8s_client.CoreV1Api(api)
        core.patch_node("node-a", {"spec": {"unschedulable": True}})  # an operator's maintenance
        production_before = len(clusters.production.requests)

        cordoned = k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, count=1, configuration=CONFIG)

        assert len(cordoned) == 1 and cordoned[0] in {"node-b", "node-c"}, "node-a was not schedulable"
        ours = node(api, cordoned[0])
        assert ours.spec.unschedulable and ours.metadata.labels[k8s.CORDONED] == "true"
        assert k8s.uncordon_harness_nodes(configuration=CONFIG) == cordoned
        ours = node(api, cordoned[0])
        assert not ours.spec.unschedulable and k8s.CORDONED not in ours.metadata.labels
        operators = node(api, "node-a")
        assert operators.spec.unschedulable and k8s.CORDONED not in (operators.metadata.labels or {})

        before = len(clusters.allowed.requests)
        assert k8s.uncordon_harness_nodes(configuration=CONFIG) == []
        assert writes(clusters.allowed, before) == [], "a rollback with nothing to undo patches nothing"
        assert len(clusters.production.requests) == production_before, "nothing reached the other context"

    def test_run_again_it_reuses_its_nodes(self, clusters: Clusters, api: k8s_client.ApiClient) -> None:
        """A second cordon with the same count cordons no further node."""
        first = k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, count=2, configuration=CONFIG)
        second = k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, count=2, configuration=CONFIG)
        assert first == second and len(first) == 2
        labelled = k8s_client.CoreV1Api(api).list_node(label_selector=f"{k8s.CORDONED}=true").items
        assert sorted(n.metadata.name for n in labelled) == first

    def test_too_few_schedulable_nodes_is_an_error_before_any_cordon(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """Three wanted, two schedulable: nothing is cordoned."""
        k8s_client.CoreV1Api(api).patch_node("node-a", {"spec": {"unschedulable": True}})
        before = len(clusters.allowed.requests)
        with pytest.raises(ActivityFailed, match="only 2 schedulable node"):
            k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, count=3, configuration=CONFIG)
        assert writes(clusters.allowed, before) == []

    def test_node_label_selector_narrows_the_choice(self, api: k8s_client.ApiClient) -> None:
        """Only nodes matching node_label_selector are candidates."""
        picked = k8s.cordon_nodes_hosting(
            SELECTOR,
            NAMESPACE,
            node_label_selector="topology.kubernetes.io/zone=eu-west-1c",
            configuration=CONFIG,
        )
        assert picked == ["node-c"]

    @pytest.mark.parametrize("local_storage", [False, True])
    def test_drain_evicts_the_services_pod_and_honours_local_storage(
        self, clusters: Clusters, api: k8s_client.ApiClient, local_storage: bool
    ) -> None:
        """chaosk8s's drain evicts the node's managed pods; one with an emptyDir only when asked."""
        core = k8s_client.CoreV1Api(api)
        owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "subs-5d9f",
            "uid": "1",
            "controller": True,
        }
        token = {"name": "kube-api-access", "projected": {"sources": []}}
        core.patch_namespaced_pod(
            "subs-1", NAMESPACE, {"metadata": {"ownerReferences": [owner]}, "spec": {"volumes": [token]}}
        )
        core.create_namespaced_pod(NAMESPACE, {
            "metadata": {"name": "cache-0", "namespace": NAMESPACE, "labels": {"app": "cache"}, "ownerReferences": [owner]},
            "spec": {"nodeName": "node-b", "containers": [{"name": "c", "image": "c"}],
                     "volumes": [{"name": "scratch", "emptyDir": {}}]},
            "status": {"phase": "Running"},
        })  # fmt: skip

        drained = k8s.cordon_nodes_hosting(
            SELECTOR,
            NAMESPACE,
            drain=True,
            node_label_selector="topology.kubernetes.io/zone=eu-west-1b",
            timeout_s=10,
            delete_pods_with_local_storage=local_storage,
            configuration=CONFIG,
        )

        assert drained == ["node-b"] and node(api, "node-b").spec.unschedulable
        evicted = sorted(r.name for r in clusters.allowed.requests if r.subresource == "eviction")
        assert evicted == (["cache-0", "subs-1"] if local_storage else ["subs-1"])
        left = {p.metadata.name for p in core.list_namespaced_pod(NAMESPACE).items}
        assert left == {"subs-0", "subs-2", "other-0"} | (set() if local_storage else {"cache-0"})
        assert k8s.uncordon_harness_nodes(configuration=CONFIG) == ["node-b"]
        assert not node(api, "node-b").spec.unschedulable


class TestScale:
    def test_scale_then_restore_the_exact_count(self, clusters: Clusters, api: k8s_client.ApiClient) -> None:
        """The first recorded count survives a second scale; restore puts it back and drops the record."""
        apps = k8s_client.AppsV1Api(api)
        assert k8s.scale_deployment_recording("subs", 1, NAMESPACE, configuration=CONFIG) == {
            "deployment": f"{NAMESPACE}/subs", "previous_replicas": 3, "replicas": 1}  # fmt: skip
        scaled = apps.read_namespaced_deployment("subs", NAMESPACE)
        assert scaled.spec.replicas == 1 and scaled.metadata.annotations[k8s.PREVIOUS_REPLICAS] == "3"
        again = k8s.scale_deployment_recording("subs", 0, NAMESPACE, configuration=CONFIG)
        assert again["previous_replicas"] == 3, "the original count, not the one we set"

        assert k8s.restore_deployment_scale("subs", NAMESPACE, configuration=CONFIG)["restored"] == 3
        restored = apps.read_namespaced_deployment("subs", NAMESPACE)
        assert restored.spec.replicas == 3
        assert k8s.PREVIOUS_REPLICAS not in (restored.metadata.annotations or {})

        before = len(clusters.allowed.requests)
        assert k8s.restore_deployment_scale("subs", NAMESPACE, configuration=CONFIG)["restored"] is None
        assert writes(clusters.allowed, before) == [] and apps.read_namespaced_deployment(
            "subs", NAMESPACE).spec.replicas == 3  # fmt: skip

    def test_restore_without_a_scale_changes_nothing(self, clusters: Clusters) -> None:
        """No record (or no deployment): no patch, None restored."""
        before = len(clusters.allowed.requests)
        assert k8s.restore_deployment_scale("subs", NAMESPACE, configuration=CONFIG)["restored"] is None
        assert k8s.restore_deployment_scale("gone", NAMESPACE, configuration=CONFIG)["restored"] is None
        assert writes(clusters.allowed, before) == []


class TestNetworkPolicy:
    def test_deny_creates_our_policy_and_allow_removes_it(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """Labelled as ours, selecting the service's pods, one policy type; removal is safe twice."""
        net = k8s_client.NetworkingV1Api(api)
        assert k8s.deny_pod_traffic(SELECTOR, "ingress", NAMESPACE, configuration=CONFIG) == (
            "resilience-harness-deny-ingress"
        )
        policy = net.read_namespaced_network_policy("resilience-harness-deny-ingress", NAMESPACE)
        assert policy.metadata.labels == {MANAGED[0]: MANAGED[1]}
        assert policy.spec.pod_selector.match_labels == {"app": "subs"}
        assert policy.spec.pod_selector.match_expressions is None
        assert policy.spec.policy_types == ["Ingress"] and not policy.spec.ingress

        assert k8s.allow_pod_traffic("ingress", NAMESPACE, configuration=CONFIG) is True
        assert net.list_namespaced_network_policy(NAMESPACE).items == []
        assert k8s.allow_pod_traffic("ingress", NAMESPACE, configuration=CONFIG) is False

    def test_run_again_replaces_its_own_policy(self, api: k8s_client.ApiClient) -> None:
        """A second deny (another selector) replaces our policy rather than failing on the conflict."""
        net = k8s_client.NetworkingV1Api(api)
        k8s.deny_pod_traffic(SELECTOR, "egress", NAMESPACE, configuration=CONFIG)
        k8s.deny_pod_traffic("app in (subs, api),tier!=db", "egress", NAMESPACE, configuration=CONFIG)
        policy = net.read_namespaced_network_policy("resilience-harness-deny-egress", NAMESPACE)
        assert policy.spec.policy_types == ["Egress"]
        assert policy.spec.pod_selector.match_labels is None
        assert [(e.key, e.operator, e.values) for e in policy.spec.pod_selector.match_expressions] == [
            ("app", "In", ["subs", "api"]), ("tier", "NotIn", ["db"])]  # fmt: skip
        assert policy.metadata.labels == {MANAGED[0]: MANAGED[1]}

    def test_a_policy_we_did_not_create_is_never_replaced_or_deleted(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """Same name, no managed-by label: both deny and allow refuse, and it stays as it was."""
        net = k8s_client.NetworkingV1Api(api)
        theirs = {"metadata": {"name": "resilience-harness-deny-ingress", "labels": {"team": "payments"}},
                  "spec": {"podSelector": {"matchLabels": {"app": "payments"}}, "policyTypes": ["Ingress"]}}  # fmt: skip
        net.create_namespaced_network_policy(NAMESPACE, theirs)
        before = len(clusters.allowed.requests)
        with pytest.raises(ActivityFailed, match="not created by the harness"):
            k8s.deny_pod_traffic(SELECTOR, "ingress", NAMESPACE, configuration=CONFIG)
        with pytest.raises(ActivityFailed, match="not created by the harness"):
            k8s.allow_pod_traffic("ingress", NAMESPACE, configuration=CONFIG)
        assert [r.method.value for r in writes(clusters.allowed, before)] == ["POST"], (
            "only the refused create"
        )
        policy = net.read_namespaced_network_policy("resilience-harness-deny-ingress", NAMESPACE)
        assert policy.metadata.labels == {"team": "payments"}
        assert policy.spec.pod_selector.match_labels == {"app": "payments"}

    def test_an_unknown_direction_is_refused(self, clusters: Clusters) -> None:
        """Neither ingress nor egress: nothing is sent."""
        before = len(clusters.allowed.requests)
        with pytest.raises(ActivityFailed, match="ingress or egress"):
            k8s.deny_pod_traffic(SELECTOR, "both", NAMESPACE, configuration=CONFIG)
        assert clusters.allowed.requests[before:] == []


CHAOS = ("chaos-mesh.org", "v1alpha1", NAMESPACE, "networkchaos")
FINALIZER = "chaos-mesh/records"


def chaos_object(server: EmulatorServer, name: str) -> dict[str, Any] | None:
    with server.api() as api:
        try:
            return k8s_client.CustomObjectsApi(api).get_namespaced_custom_object(*CHAOS, name)
        except k8s_client.ApiException as exc:
            if exc.status == 404:
                return None
            raise


def later(delay_s: float, action: Any) -> threading.Thread:
    """Run `action` after `delay_s` in a thread (a stand-in for Chaos Mesh's controller)."""
    thread = threading.Thread(target=lambda: (time.sleep(delay_s), action()), daemon=True)
    thread.start()
    return thread


def patch_chaos(server: EmulatorServer, name: str, body: dict[str, Any]) -> None:
    with server.api() as api:
        k8s_client.CustomObjectsApi(api).patch_namespaced_custom_object(*CHAOS, name, body)


INJECTED = {"conditions": [{"type": "Selected", "status": "True"}, {"type": "AllInjected", "status": "True"}]}


def inject_next(server: EmulatorServer, name: str, within_s: float = 10.0) -> threading.Thread:
    """As Chaos Mesh does: once a live NetworkChaos without status exists, report it injected."""

    def watch() -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            obj = chaos_object(server, name)
            if obj is not None and "status" not in obj and not obj["metadata"].get("deletionTimestamp"):
                patch_chaos(server, name, {"status": INJECTED})
                return
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def make_chaos(server: EmulatorServer, name: str, **metadata: Any) -> None:
    """A NetworkChaos of ours as a previous run (or the start) left it."""
    body = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {MANAGED[0]: MANAGED[1]}, **metadata},
            "spec": {"action": "loss", "duration": "30s"}}  # fmt: skip
    with server.api() as api:
        k8s_client.CustomObjectsApi(api).create_namespaced_custom_object(*CHAOS, body)


class TestNetworkChaos:
    def test_start_creates_networkchaos_and_stop_deletes_it(self, chaos_mesh_clusters: Clusters) -> None:
        """Plural networkchaos in chaos-mesh.org/v1alpha1, our label, the service's pods; stop is safe twice."""
        server = chaos_mesh_clusters.allowed
        before = len(server.requests)
        created = k8s.start_network_chaos(
            "resilience-harness-latency", "delay", SELECTOR, NAMESPACE, duration_s=90, percentage=50,
            settings={"delay": {"latency": "200ms"}}, timeout_s=0.5, configuration=CONFIG,
        )  # fmt: skip
        (post,) = writes(server, before)
        assert post.url.path == f"/apis/chaos-mesh.org/v1alpha1/namespaces/{NAMESPACE}/networkchaos"
        stored = chaos_object(server, "resilience-harness-latency")
        assert stored == created and stored["kind"] == "NetworkChaos"
        assert stored["metadata"]["labels"] == {MANAGED[0]: MANAGED[1]}
        assert stored["spec"] == {
            "action": "delay", "selector": {"namespaces": [NAMESPACE], "labelSelectors": {"app": "subs"}},
            "duration": "90s", "direction": "to", "delay": {"latency": "200ms"},
            "mode": "fixed-percent", "value": "50"}  # fmt: skip

        assert k8s.stop_network_chaos("resilience-harness-latency", NAMESPACE, configuration=CONFIG) is True
        assert k8s.stop_network_chaos("resilience-harness-latency", NAMESPACE, configuration=CONFIG) is False

    def test_stop_returns_only_once_the_finalizer_lets_it_go(self, chaos_mesh_clusters: Clusters) -> None:
        """Chaos Mesh holds a deleted NetworkChaos until the fault is lifted: stop waits for that."""
        server, name = chaos_mesh_clusters.allowed, "resilience-harness-loss"
        make_chaos(server, name, finalizers=[FINALIZER])
        started = time.monotonic()
        later(1.5, lambda: patch_chaos(server, name, {"metadata": {"finalizers": []}}))

        assert k8s.stop_network_chaos(name, NAMESPACE, configuration=CONFIG) is True

        assert time.monotonic() - started >= 1.4, "it waited for the finalizer"
        assert chaos_object(server, name) is None, "gone when stop reports success"

    def test_stop_fails_while_a_finalizer_holds_the_fault(self, chaos_mesh_clusters: Clusters) -> None:
        """A finalizer that never goes: the stop fails within its timeout instead of claiming success."""
        server, name = chaos_mesh_clusters.allowed, "resilience-harness-loss"
        make_chaos(server, name, finalizers=[FINALIZER])
        with pytest.raises(ActivityFailed, match="still exists"):
            k8s.stop_network_chaos(name, NAMESPACE, timeout_s=1.0, configuration=CONFIG)
        assert (chaos_object(server, name) or {}).get("metadata", {}).get("deletionTimestamp")

    def test_a_terminating_leftover_is_awaited_and_a_new_fault_created(
        self, chaos_mesh_clusters: Clusters
    ) -> None:
        """A 409 on an object being deleted: start waits for it to go and creates its own, not the leftover."""
        server, name = chaos_mesh_clusters.allowed, "resilience-harness-partition"
        args = (name, "partition", SELECTOR, NAMESPACE)
        make_chaos(server, name, finalizers=[FINALIZER])
        with server.api() as api:
            k8s_client.CustomObjectsApi(api).delete_namespaced_custom_object(*CHAOS, name)
        assert chaos_object(server, name)["metadata"].get("deletionTimestamp"), "terminating"
        later(1.0, lambda: patch_chaos(server, name, {"metadata": {"finalizers": []}}))
        inject_next(server, name)

        fresh = k8s.start_network_chaos(*args, duration_s=60, configuration=CONFIG)

        stored = chaos_object(server, name)
        assert stored is not None and not stored["metadata"].get("deletionTimestamp")
        assert stored["spec"]["duration"] == "60s" and fresh["spec"]["duration"] == "60s"

    def test_a_finished_leftover_is_replaced(self, chaos_mesh_clusters: Clusters) -> None:
        """A NetworkChaos of ours whose duration is over injects nothing: a new one replaces it."""
        server, name = chaos_mesh_clusters.allowed, "resilience-harness-latency"
        args = (name, "delay", SELECTOR, NAMESPACE)
        make_chaos(server, name)
        finished = {"experiment": {"desiredPhase": "Stop"},
                    "conditions": [{"type": "AllRecovered", "status": "True"}]}  # fmt: skip
        patch_chaos(server, name, {"status": finished})
        assert k8s.chaos_phase(chaos_object(server, name) or {}) == "finished"

        inject_next(server, name)
        k8s.start_network_chaos(*args, duration_s=45, configuration=CONFIG)

        stored = chaos_object(server, name) or {}
        assert stored["status"] == INJECTED and stored["spec"]["duration"] == "45s"

    def test_start_waits_until_chaos_mesh_reports_the_fault_injected(
        self, chaos_mesh_clusters: Clusters
    ) -> None:
        """Chaos Mesh writes AllInjected a moment after the create: start returns after that."""
        server, name = chaos_mesh_clusters.allowed, "resilience-harness-loss"
        injected = {"conditions": [{"type": "Selected", "status": "True"},
                                   {"type": "AllInjected", "status": "True"}]}  # fmt: skip
        later(1.0, lambda: patch_chaos(server, name, {"status": injected}))
        started = time.monotonic()
        created = k8s.start_network_chaos(name, "loss", SELECTOR, NAMESPACE, configuration=CONFIG)
        assert k8s.chaos_phase(created) == "injected" and 0.9 <= time.monotonic() - started < 5

    def test_a_fault_that_selects_no_pod_fails(self, chaos_mesh_clusters: Clusters) -> None:
        """Selected false (no pod matched): the action fails rather than report a fault that is not there."""
        server, name = chaos_mesh_clusters.allowed, "resilience-harness-loss"
        later(0.5, lambda: patch_chaos(server, name, {"status": {"conditions": [
            {"type": "Selected", "status": "False"}, {"type": "AllInjected", "status": "False"}]}}))  # fmt: skip
        with pytest.raises(ActivityFailed, match="not injected"):
            k8s.start_network_chaos(name, "loss", SELECTOR, NAMESPACE, configuration=CONFIG)

    def test_an_object_of_the_same_name_not_ours_is_refused(self, chaos_mesh_clusters: Clusters) -> None:
        """Same name, no managed-by label: left alone, the action fails."""
        server, name = chaos_mesh_clusters.allowed, "resilience-harness-loss"
        theirs = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
                  "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"team": "sre"}},
                  "spec": {"action": "loss"}}  # fmt: skip
        with server.api() as api:
            k8s_client.CustomObjectsApi(api).create_namespaced_custom_object(*CHAOS, theirs)
        with pytest.raises(ActivityFailed, match="not created by the harness"):
            k8s.start_network_chaos(name, "loss", SELECTOR, NAMESPACE, configuration=CONFIG)
        assert (chaos_object(server, name) or {})["metadata"]["labels"] == {"team": "sre"}

    def test_crd_installed_reads_the_crd(self, chaos_mesh_clusters: Clusters) -> None:
        """False until the CRD exists (the steady state then stops a Chaos Mesh experiment)."""
        assert k8s.crd_installed("networkchaos.chaos-mesh.org", configuration=CONFIG) is False
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "networkchaos.chaos-mesh.org"},
               "spec": {"group": "chaos-mesh.org", "scope": "Namespaced",
                        "names": {"plural": "networkchaos", "kind": "NetworkChaos"},
                        "versions": [{"name": "v1alpha1", "served": True, "storage": True}]}}  # fmt: skip
        with chaos_mesh_clusters.allowed.api() as api:
            k8s_client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
        assert k8s.crd_installed("networkchaos.chaos-mesh.org", configuration=CONFIG) is True


class _Readyz(http.server.BaseHTTPRequestHandler):
    """The service as its users reach it: 200 on /readyz, 503 elsewhere."""

    def do_GET(self) -> None:
        ok = self.path == "/readyz"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"not ready")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    """The service's URL on 127.0.0.1 (what the plan's load.host would name)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def silent_api(
    clusters: Clusters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A kubeconfig context whose API server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    doc = yaml.safe_load(clusters.kubeconfig.read_text())
    doc["clusters"].append(
        {"name": "silent", "cluster": {"server": f"http://127.0.0.1:{listener.getsockname()[1]}"}}
    )
    doc["contexts"].append({"name": "silent", "context": {"cluster": "silent", "user": "tester"}})
    path = tmp_path / "kubeconfig-silent"
    path.write_text(yaml.safe_dump(doc))
    use_kubeconfig(path, monkeypatch)
    try:
        yield {"kubernetes_context": "silent", "silent_url": f"http://127.0.0.1:{listener.getsockname()[1]}"}
    finally:
        listener.close()


class TestServiceAnswers:
    def test_the_service_is_judged_at_its_url_not_through_the_api_server_proxy(
        self, clusters: Clusters, service: str
    ) -> None:
        """2xx at the load's URL and ready endpoints: True; nothing asks the API server's service proxy."""
        before = len(clusters.allowed.requests)
        assert k8s.service_answers(
            "subs", "http", "/readyz", NAMESPACE, service_url=service, configuration=CONFIG
        )
        assert not k8s.service_answers(
            "subs", "http", "/broken", NAMESPACE, service_url=service, configuration=CONFIG
        )
        assert not any("/proxy" in r.url.path for r in clusters.allowed.requests[before:])

    def test_the_url_comes_from_the_configuration(self, clusters: Clusters, service: str) -> None:
        """Without an argument, the configuration's service_url (the target sets it from load.host)."""
        assert k8s.service_answers("subs", ns=NAMESPACE, configuration={**CONFIG, "service_url": service})
        with pytest.raises(ActivityFailed, match="service_url"):
            k8s.service_answers("subs", ns=NAMESPACE, configuration=CONFIG)

    def test_no_ready_endpoint_is_a_failed_steady_state(
        self, api: k8s_client.ApiClient, service: str
    ) -> None:
        """The URL answers (another path to the service) but the Service has no ready endpoint: False."""
        discovery = k8s_client.DiscoveryV1Api(api)
        discovery.patch_namespaced_endpoint_slice("subs-abcde", NAMESPACE, {"endpoints": [
            {"addresses": ["10.0.0.10"], "conditions": {"ready": False}}]})  # fmt: skip
        assert k8s.service_answers("subs", ns=NAMESPACE, service_url=service, configuration=CONFIG) is False
        assert k8s.service_answers(ns=NAMESPACE, service_url=service, configuration=CONFIG) is True, (
            "without a service name only the HTTP answer counts"
        )

    def test_a_service_that_never_answers_is_false_within_the_timeout(
        self, silent_api: dict[str, str]
    ) -> None:
        """A URL that accepts and never answers: False within timeout_s (one try)."""
        started = time.monotonic()
        assert k8s.service_answers(service_url=silent_api["silent_url"], timeout_s=0.5) is False
        assert time.monotonic() - started < 1.5


# --- a selector is required -------------------------------------------------------------------
class TestSelectorRequired:
    def test_a_plan_without_a_selector_does_not_load(self, tmp_path: Path) -> None:
        """A kubernetes target without `selector` is refused at validation, with file and line (exit 2)."""
        plan = tmp_path / "plan.yaml"
        (tmp_path / "l.py").write_text("")
        plan.write_text(
            "name: k\ntarget:\n  kind: kubernetes\n  context: test-cluster\n  allowed_contexts: [test-cluster]\n"
            f"load: {{locustfile: {tmp_path / 'l.py'}, host: 'http://127.0.0.1:1'}}\n"
            f"scenarios: [{{name: s, experiment: {CATALOG / 'pod-kill.yaml'}}}]\n"
        )
        with pytest.raises(
            InputError, match=r"plan.yaml:2: target.selector: required key is missing"
        ) as info:
            loading.load_plan(plan)
        assert info.value.exit_code == 2
        plan.write_text(
            plan.read_text().replace("  allowed_contexts:", "  selector: ' '\n  allowed_contexts:")
        )
        with pytest.raises(
            InputError, match=r"plan.yaml:5: target.selector: expected the service's label selector"
        ):
            loading.load_plan(plan)

    @pytest.mark.parametrize("experiment", ["pod-kill", "pod-kill-percentage"])
    def test_the_catalogs_pod_kill_with_no_selector_deletes_nothing(
        self, clusters: Clusters, monkeypatch: pytest.MonkeyPatch, experiment: str
    ) -> None:
        """Its method's delete, run as chaoslib runs it with an unset selector (None), refuses: no pod goes."""
        monkeypatch.setenv("KUBERNETES_CONTEXT", "test-cluster")  # where chaosk8s's own functions would go
        loaded = chaos_experiment.load(CATALOG / f"{experiment}.yaml")
        configuration = {**loaded["configuration"], "namespace": NAMESPACE, "label_selector": None, **CONFIG}
        before = len(clusters.allowed.requests)
        with pytest.raises(ActivityFailed, match="empty label selector"):
            run_activity(loaded["method"][0], configuration, {})
        assert [r for r in writes(clusters.allowed, before) if r.method.value == "DELETE"] == []


def run_activity(activity: dict[str, Any], configuration: dict[str, Any], secrets: dict[str, Any]) -> Any:
    from chaoslib.activity import run_activity as chaoslib_run

    return chaoslib_run(activity, configuration, secrets)


# --- experiments judge after they undo ------------------------------------------------------------
def judged_before_undo(experiment: dict[str, Any]) -> dict[str, Any]:
    """The catalog's former shape: the method is only the fault (then a 5 s pause), the undo and the
    wait are rollbacks, which chaoslib runs after the steady state after."""
    old = copy.deepcopy(experiment)
    undo = {(a["provider"]["module"], a["provider"]["func"]) for a in old["rollbacks"]}
    old["method"] = [a for a in old["method"] if (a["provider"]["module"], a["provider"]["func"]) not in undo]
    old["method"][-1]["pauses"] = {"after": 5}
    return old


class TestJudgeAfterUndo:
    def test_pod_kill_passes_its_steady_state_only_when_it_waits_in_the_method(
        self, clusters: Clusters, api: k8s_client.ApiClient, service: str, tmp_path: Path
    ) -> None:
        """With a replacement Ready 7.5 s after the kill, the old shape checks too early and deviates;
        the catalog's shape (kill, then wait for the Deployment and its pods) passes."""
        variables = {"namespace": NAMESPACE, "label_selector": SELECTOR, "kubernetes_context": "test-cluster",
                     "service_url": service, "recovery_timeout_s": 60}  # fmt: skip
        experiment = chaos_experiment.load(CATALOG / "pod-kill.yaml")
        with ReplicaController(api, create_s=0.5, schedule_s=1.0, ready_s=6.0):
            old = chaos_experiment.run(judged_before_undo(experiment), tmp_path / "old.jsonl", variables)
            new = chaos_experiment.run(experiment, tmp_path / "new.jsonl", variables)

        assert old["steady_states"]["before"]["steady_state_met"] is True
        assert old["steady_states"]["after"]["steady_state_met"] is False, "judged before the replacement"
        assert new["status"] == "completed", new["status"]
        assert new["steady_states"]["after"]["steady_state_met"] is True
        (wait,) = [
            r for r in new["run"] if r["activity"]["name"] == "wait-until-the-deployment-is-whole-again"
        ]
        assert wait["output"] >= 5.0, "the method waited for the slow replacement"
        starts = [json.loads(line) for line in (tmp_path / "new.jsonl").read_text().splitlines()]
        method = [(m["name"], m.get("undo", False)) for m in starts
                  if m["kind"] == "activity_start" and m["section"] == "method"]  # fmt: skip
        assert method == [
            ("terminate-one-pod-of-the-service", False),
            ("wait-until-the-deployment-is-whole-again", True),
        ], "the wait repeats a rollback: scoring ends the fault where it starts"


# --- node drain ------------------------------------------------------------------------------------
def set_on(api: k8s_client.ApiClient, pod: str, node_name: str) -> None:
    k8s_client.CoreV1Api(api).patch_namespaced_pod(pod, NAMESPACE, {"spec": {"nodeName": node_name}})


def budget(api: k8s_client.ApiClient, **spec: Any) -> None:
    k8s_client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(NAMESPACE, {
        "metadata": {"name": "subs", "namespace": NAMESPACE},
        "spec": {**spec, "selector": {"matchLabels": {"app": "subs"}}}})  # fmt: skip


class TestDrain:
    def test_a_budget_delays_the_drain_until_the_replacement_is_ready(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """Two pods of the service on node-b, minAvailable 2: the second eviction is refused (429)
        until the first one's slow replacement is Ready, then the drain completes."""
        set_on(api, "subs-0", "node-b")
        budget(api, minAvailable=2)
        emulator = clusters.allowed.emulator
        assert emulator is not None
        with ReplicaController(api, create_s=0.3, schedule_s=0.5, ready_s=1.5) as controller:
            started = time.time()
            drained = k8s.cordon_nodes_hosting(
                SELECTOR, NAMESPACE, drain=True, node_label_selector="topology.kubernetes.io/zone=eu-west-1b",
                timeout_s=30, configuration=CONFIG,
            )  # fmt: skip
            ended = time.time()
        assert drained == ["node-b"]
        assert emulator.evictions_refused, "the budget refused an eviction at first"
        assert set(emulator.evictions_refused) <= {"subs-0", "subs-1"}
        assert ended >= controller.first("ready") > started, (
            "the drain completed after a replacement was Ready"
        )
        left = {p.metadata.name: p.spec.node_name for p in k8s_client.CoreV1Api(api).list_namespaced_pod(
            NAMESPACE, label_selector=SELECTOR).items}  # fmt: skip
        assert "node-b" not in left.values() and "subs-0" not in left and "subs-1" not in left

    def test_a_budget_that_never_allows_it_fails_within_the_drain_timeout(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """minAvailable 3 with nothing replacing pods: the drain gives up at its timeout, naming the budget."""
        budget(api, minAvailable=3)
        started = time.monotonic()
        with pytest.raises(ActivityFailed, match=r"not evicted within 2 s: shop/subs-1: 429.*budget subs"):
            k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, drain=True, timeout_s=2, configuration=CONFIG,
                                     node_label_selector="topology.kubernetes.io/zone=eu-west-1b")  # fmt: skip
        assert 2.0 <= time.monotonic() - started < 8.0
        assert len(clusters.allowed.emulator.evictions_refused) >= 2, "it tried again"  # type: ignore[union-attr]

    def test_max_unavailable_counts_the_deployments_replicas(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """maxUnavailable 1 and one pod already not Ready: the next eviction is refused."""
        k8s_client.CoreV1Api(api).patch_namespaced_pod_status("subs-0", NAMESPACE, {"status": {"conditions": [
            {"type": "Ready", "status": "False"}]}})  # fmt: skip
        budget(api, maxUnavailable=1)
        with pytest.raises(ActivityFailed, match="budget subs"):
            k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, drain=True, timeout_s=1, configuration=CONFIG,
                                     node_label_selector="topology.kubernetes.io/zone=eu-west-1b")  # fmt: skip

    def test_daemonset_mirror_and_volume_free_pods(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """DaemonSet and mirror pods stay, a finished pod without owner goes, pods without volumes are evicted."""
        core = k8s_client.CoreV1Api(api)
        daemon = {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "name": "node-exporter",
            "uid": "ds",
            "controller": True,
        }
        for name, meta, phase in (
            ("node-exporter-x", {"ownerReferences": [daemon]}, "Running"),
            ("kube-proxy-node-b", {"annotations": {k8s.MIRROR_ANNOTATION: "abc"}}, "Running"),
            ("job-done", {}, "Succeeded"),
        ):
            core.create_namespaced_pod(NAMESPACE, {"metadata": {"name": name, "namespace": NAMESPACE, **meta},
                "spec": {"nodeName": "node-b", "containers": [{"name": "c", "image": "c"}]},
                "status": {"phase": phase}})  # fmt: skip

        result = k8s.drain_node("node-b", timeout_s=10, configuration=CONFIG)

        assert result["evicted"] == ["shop/job-done", "shop/subs-1"]
        assert set(result["left"]) == {"shop/node-exporter-x", "shop/kube-proxy-node-b"}
        left = {p.metadata.name for p in core.list_namespaced_pod(NAMESPACE).items}
        assert {"node-exporter-x", "kube-proxy-node-b"} <= left and not {"subs-1", "job-done"} & left

    def test_a_node_with_a_pod_no_controller_owns_is_not_drained(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """other-0 (node-a) has no owner: kubectl would refuse without --force; nothing is cordoned or evicted."""
        before = len(clusters.allowed.requests)
        with pytest.raises(ActivityFailed, match=r"node-a cannot be drained \(.*other-0: no controller"):
            k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, drain=True, configuration=CONFIG,
                                     node_label_selector="topology.kubernetes.io/zone=eu-west-1a")  # fmt: skip
        assert writes(clusters.allowed, before) == []
        with pytest.raises(ActivityFailed, match="no controller"):
            k8s.drain_node("node-a", timeout_s=5, configuration=CONFIG)


class TestHarnessNode:
    def test_the_harness_node_is_never_cordoned_or_drained(
        self, clusters: Clusters, api: k8s_client.ApiClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$HARNESS_NODE_NAME=node-b: not a candidate however often nodes are picked, and drain refuses it."""
        monkeypatch.setenv(k8s.HARNESS_NODE_ENV, "node-b")
        before = len(clusters.allowed.requests)
        with pytest.raises(ActivityFailed, match="harness's own node node-b excluded"):
            k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, configuration=CONFIG,
                                     node_label_selector="topology.kubernetes.io/zone=eu-west-1b")  # fmt: skip
        with pytest.raises(ActivityFailed, match="runs the harness itself"):
            k8s.drain_node("node-b", configuration=CONFIG)
        assert writes(clusters.allowed, before) == []
        for _ in range(5):
            assert k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, count=2, configuration=CONFIG) == [
                "node-a",
                "node-c",
            ]
            k8s.uncordon_harness_nodes(configuration=CONFIG)


class TestNodeCordonDeletesOnTheCordonedNode:
    def test_the_deleted_pod_ran_on_a_cordoned_node(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """node-cordon's delete takes a pod of the service on the node it cordoned, every time."""
        core = k8s_client.CoreV1Api(api)
        for attempt in range(3):
            (cordoned,) = k8s.cordon_nodes_hosting(SELECTOR, NAMESPACE, configuration=CONFIG)
            hosted = {p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
                      if p.spec.node_name == cordoned}  # fmt: skip
            (deleted,) = k8s.terminate_service_pods(
                SELECTOR, NAMESPACE, on_cordoned_nodes=True, configuration=CONFIG
            )
            assert deleted in hosted, (attempt, cordoned, deleted)
            core.create_namespaced_pod(NAMESPACE, pod_on(deleted, cordoned))  # put it back for the next round
            k8s.uncordon_harness_nodes(configuration=CONFIG)

    def test_no_pod_on_the_cordoned_nodes_is_an_error_not_a_random_delete(
        self, clusters: Clusters, api: k8s_client.ApiClient
    ) -> None:
        """Nothing cordoned: the delete refuses instead of taking any pod of the service."""
        before = len(clusters.allowed.requests)
        with pytest.raises(ActivityFailed, match="on the nodes the harness cordoned"):
            k8s.terminate_service_pods(SELECTOR, NAMESPACE, on_cordoned_nodes=True, configuration=CONFIG)
        assert writes(clusters.allowed, before) == []


def pod_on(name: str, node_name: str) -> dict[str, Any]:
    from tests.kubernetes.conftest import pod_body

    return pod_body(name, node_name, True)


# --- a busy API server ----------------------------------------------------------------------------
class TestTransientAnswers:
    @pytest.mark.parametrize("status", [503, 429])
    def test_wait_for_deployment_outlasts_a_few_refusals(
        self, clusters: Clusters, monkeypatch: pytest.MonkeyPatch, status: int
    ) -> None:
        """An API server answering 503 (or 429) four times, then OK: the wait succeeds."""
        monkeypatch.setattr(k8s, "WAIT_INTERVAL_S", 0.1, raising=False)
        emulator = clusters.allowed.emulator
        assert emulator is not None
        emulator.flaky(4, status)
        assert k8s.wait_for_deployment("subs", NAMESPACE, timeout_s=20, configuration=CONFIG) < 5
        assert emulator._flaky[0] == 0, "the refusals were served"

    def test_the_steady_state_probe_outlasts_a_throttled_read(self, clusters: Clusters) -> None:
        """Two 429s, then OK: the probe says whole, not deviated."""
        emulator = clusters.allowed.emulator
        assert emulator is not None
        emulator.flaky(2, 429)
        assert k8s.deployment_fully_available("subs", NAMESPACE, configuration=CONFIG) is True

    def test_the_wait_gives_up_at_its_deadline_naming_the_answer(
        self, clusters: Clusters, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An outage (every request 500): the wait fails at its deadline, saying what the API server answered."""
        monkeypatch.setattr(k8s, "WAIT_INTERVAL_S", 0.1, raising=False)
        emulator = clusters.allowed.emulator
        assert emulator is not None
        emulator.outage = lambda request: True
        try:
            started = time.monotonic()
            with pytest.raises(ActivityFailed, match="not whole within 1 s: the API server answered 500"):
                k8s.wait_for_deployment("subs", NAMESPACE, timeout_s=1, configuration=CONFIG)
        finally:
            emulator.outage = None
        assert time.monotonic() - started < 5

    def test_a_silent_api_server_cannot_hold_an_action(
        self, silent_api: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every call has a request timeout: a rollback against an API server that never answers ends."""
        monkeypatch.setattr(k8s, "REQUEST_TIMEOUT", (0.3, 0.3), raising=False)
        outcome: list[BaseException] = []

        def rollback() -> None:
            try:
                k8s.uncordon_harness_nodes(configuration=silent_api)
            except BaseException as exc:  # what it raised is the outcome
                outcome.append(exc)

        thread = threading.Thread(target=rollback, daemon=True)
        thread.start()
        thread.join(6)
        assert not thread.is_alive(), "the call had no timeout"
        assert outcome and "timed out" in str(outcome[0]).lower()


class TestApiserverLoad:
    def test_lists_pods_for_the_duration_and_counts_every_request(self, clusters: Clusters) -> None:
        """Returns soon after duration_s; its request count is what the API server received."""
        before = len(clusters.allowed.requests)
        started = time.monotonic()
        result = k8s.apiserver_load(threads=3, duration_s=1.0, ns=NAMESPACE, configuration=CONFIG)
        elapsed = time.monotonic() - started
        lists = [r for r in clusters.allowed.requests[before:]
                 if r.method.value == "GET" and r.url.path == f"/api/v1/namespaces/{NAMESPACE}/pods"]  # fmt: skip

        assert 1.0 <= elapsed < 2.0
        assert result["threads"] == 3 and result["errors"] == {}
        assert result["requests"] == len(lists) > 3
        assert all(r.params.get("limit") == "500" for r in lists), "paged LISTs"
        assert (
            result["latency_ms"]["p50"] is not None
            and result["latency_ms"]["max"] >= result["latency_ms"]["p50"]
        )
        assert writes(clusters.allowed, before) == []

    def test_errors_are_counted_by_status(self, clusters: Clusters) -> None:
        """An API server answering 500 to everything: every request is an error, none is fatal."""
        emulator = clusters.allowed.emulator
        assert emulator is not None
        emulator.outage = lambda request: True
        try:
            result = k8s.apiserver_load(threads=2, duration_s=0.5, ns=NAMESPACE, configuration=CONFIG)
        finally:
            emulator.outage = None
        assert set(result["errors"]) == {"500"} and result["errors"]["500"] == result["requests"] > 0
        assert result["latency_ms"]["p50"] is None

    def test_a_silent_api_server_does_not_stretch_the_action(self, silent_api: dict[str, str]) -> None:
        """Every request times out; the action still ends within duration_s + request_timeout_s."""
        started = time.monotonic()
        result = k8s.apiserver_load(
            threads=4, duration_s=1.0, request_timeout_s=0.5, ns=NAMESPACE, configuration=silent_api
        )
        assert time.monotonic() - started < 1.0 + 0.5 + 0.5
        assert result["requests"] == sum(result["errors"].values()) > 0
        assert set(result["errors"]) == {"ReadTimeoutError"}

    def test_a_pointless_load_is_refused(self) -> None:
        """No thread or no time: refused before any request."""
        with pytest.raises(ActivityFailed):
            k8s.apiserver_load(threads=0, configuration=CONFIG)
