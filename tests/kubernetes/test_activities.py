"""Our Kubernetes activities (harness.chaos.activities.kubernetes) end to end: the real kubernetes
client and chaosk8s against the kmock emulator, reached through the kubeconfig's `test-cluster`
context as the catalog's experiments reach a cluster.

What the emulator shows: which objects each action creates, patches or deletes, and that the
rollbacks undo exactly that, run twice or without their action. What it cannot show: no
controller acts on anything, so a cordoned node keeps its pods, a scaled Deployment keeps its
pods, a NetworkPolicy blocks nothing and a NetworkChaos injects nothing. Evictions are emulated
as an API server with no PodDisruptionBudget answers them (the pod is deleted at once), so a
drain blocked by a budget, and chaosk8s's wait for a slow pod to go, are not shown. Latencies
are the emulator's, not a control plane's.
"""

from __future__ import annotations

import http.server
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

from harness.chaos.activities import kubernetes as k8s
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters, EmulatorServer

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


class TestNetworkChaos:
    def test_start_creates_networkchaos_and_stop_deletes_it(self, chaos_mesh_clusters: Clusters) -> None:
        """Plural networkchaos in chaos-mesh.org/v1alpha1, our label, the service's pods; stop is safe twice."""
        server = chaos_mesh_clusters.allowed
        before = len(server.requests)
        created = k8s.start_network_chaos(
            "resilience-harness-latency", "delay", SELECTOR, NAMESPACE, duration_s=90, percentage=50,
            settings={"delay": {"latency": "200ms"}}, configuration=CONFIG,
        )  # fmt: skip
        (post,) = writes(server, before)
        assert post.url.path == f"/apis/chaos-mesh.org/v1alpha1/namespaces/{NAMESPACE}/networkchaos"
        with server.api() as api:
            stored = k8s_client.CustomObjectsApi(api).get_namespaced_custom_object(
                "chaos-mesh.org", "v1alpha1", NAMESPACE, "networkchaos", "resilience-harness-latency"
            )
        assert stored == created and stored["kind"] == "NetworkChaos"
        assert stored["metadata"]["labels"] == {MANAGED[0]: MANAGED[1]}
        assert stored["spec"] == {
            "action": "delay", "selector": {"namespaces": [NAMESPACE], "labelSelectors": {"app": "subs"}},
            "duration": "90s", "direction": "to", "delay": {"latency": "200ms"},
            "mode": "fixed-percent", "value": "50"}  # fmt: skip

        assert k8s.stop_network_chaos("resilience-harness-latency", NAMESPACE, configuration=CONFIG) is True
        assert k8s.stop_network_chaos("resilience-harness-latency", NAMESPACE, configuration=CONFIG) is False

    def test_run_again_returns_the_existing_object(self, chaos_mesh_clusters: Clusters) -> None:
        """The second start answers with the NetworkChaos already there, not the API server's 409 Status."""
        args = ("resilience-harness-partition", "partition", SELECTOR, NAMESPACE)
        first = k8s.start_network_chaos(*args, target_label_selector="app=postgres", configuration=CONFIG)
        second = k8s.start_network_chaos(*args, target_label_selector="app=postgres", configuration=CONFIG)
        assert second["kind"] == "NetworkChaos" and second == first
        assert second["spec"]["target"] == {
            "mode": "all", "selector": {"namespaces": [NAMESPACE], "labelSelectors": {"app": "postgres"}}}  # fmt: skip

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
    """The service behind the proxy: 200 on /readyz, 503 elsewhere."""

    def do_GET(self) -> None:
        ok = self.path == "/readyz"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"not ready")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def service(clusters: Clusters) -> Iterator[str]:
    """A service on 127.0.0.1, reachable as `subs` through the emulator's service proxy."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    assert clusters.allowed.emulator is not None
    clusters.allowed.emulator.service_proxy = {"subs": url}
    try:
        yield url
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
        yield {"kubernetes_context": "silent"}
    finally:
        listener.close()


class TestProbes:
    def test_service_answers_through_the_proxy(self, service: str) -> None:
        """2xx on the path is True; a failing path, an unknown service are False."""
        assert k8s.service_answers("subs", "http", "/readyz", NAMESPACE, configuration=CONFIG) is True
        assert k8s.service_answers("subs", "http", "/broken", NAMESPACE, configuration=CONFIG) is False
        assert k8s.service_answers("nope", "http", "/readyz", NAMESPACE, configuration=CONFIG) is False

    def test_service_answers_is_bounded_by_its_timeout(self, silent_api: dict[str, str]) -> None:
        """An API server that never answers: False within timeout_s (one try, not four)."""
        started = time.monotonic()
        assert k8s.service_answers("subs", timeout_s=0.5, ns=NAMESPACE, configuration=silent_api) is False
        assert time.monotonic() - started < 1.5


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
