"""The pure parts of our Kubernetes and SSM activities: selectors, Chaos Mesh objects, etcd
leader lookup, node-to-instance mapping, and the static-pod shell run for real in a folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from harness.chaos.activities import aws, kubernetes


class TestLabelSelectorObject:
    @pytest.mark.parametrize(
        ("selector", "expected"),
        [
            ("app=subs", {"matchLabels": {"app": "subs"}}),
            ("app==subs,tier=web", {"matchLabels": {"app": "subs", "tier": "web"}}),
            (
                "app.kubernetes.io/name in (subs, api),env!=dev",
                {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["subs", "api"]},
                        {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    ]
                },
            ),
            (
                "app=subs,canary,!legacy",
                {
                    "matchLabels": {"app": "subs"},
                    "matchExpressions": [
                        {"key": "canary", "operator": "Exists"},
                        {"key": "legacy", "operator": "DoesNotExist"},
                    ],
                },
            ),
        ],
    )
    def test_kubectl_selectors_become_label_selectors(self, selector: str, expected: dict[str, Any]) -> None:
        """Equality, set-based, existence terms; commas inside parentheses do not split terms."""
        assert kubernetes.label_selector_object(selector) == expected

    @pytest.mark.parametrize("selector", ["", "  ", "app = (subs"])
    def test_empty_or_unreadable_selectors_are_refused(self, selector: str) -> None:
        """An empty selector would select every pod of the namespace."""
        with pytest.raises(ActivityFailed):
            kubernetes.label_selector_object(selector)


class TestNetworkChaosBody:
    def test_latency_on_a_share_of_the_pods(self) -> None:
        """A percentage below 100 is Chaos Mesh's fixed-percent mode with a string value."""
        body = kubernetes.network_chaos_body(
            "resilience-harness-latency", "delay", "app=subs", "shop", 90, 50, {"delay": {"latency": "200ms"}}
        )
        assert body["kind"] == "NetworkChaos" and body["apiVersion"] == "chaos-mesh.org/v1alpha1"
        assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "resilience-harness"}
        spec = body["spec"]
        assert (spec["mode"], spec["value"], spec["duration"]) == ("fixed-percent", "50", "90s")
        assert spec["selector"] == {"namespaces": ["shop"], "labelSelectors": {"app": "subs"}}
        assert spec["delay"] == {"latency": "200ms"} and "target" not in spec

    def test_partition_names_the_other_side(self) -> None:
        """A partition targets the pods of target_label_selector, both directions."""
        body = kubernetes.network_chaos_body(
            "p",
            "partition",
            "app=subs",
            "shop",
            60,
            target_label_selector="app in (postgres)",
            direction="both",
        )
        spec = body["spec"]
        assert spec["mode"] == "all" and spec["direction"] == "both"
        assert spec["target"]["selector"]["expressionSelectors"] == [
            {"key": "app", "operator": "In", "values": ["postgres"]}
        ]


class TestEtcdLeader:
    def _status(self, leader: int) -> str:
        members = {1: "10.0.1.10", 2: "10.0.2.10", 3: "10.0.3.10"}
        return json.dumps(
            [
                {"Endpoint": f"https://{ip}:2379", "Status": {"header": {"member_id": mid}, "leader": leader}}
                for mid, ip in members.items()
            ]
        )

    def test_the_member_that_leads_itself_is_the_leader(self) -> None:
        """`etcdctl endpoint status --cluster -w json`: the leader's member_id equals its leader field."""
        assert aws.etcd_leader_host(self._status(2)) == "10.0.2.10"

    @pytest.mark.parametrize("output", ["", "Error: context deadline exceeded", "[]"])
    def test_no_leader_or_no_json_is_an_error(self, output: str) -> None:
        """A cluster without quorum, or etcdctl failing, must not pick a member at random."""
        with pytest.raises(ActivityFailed):
            aws.etcd_leader_host(output)


@pytest.mark.parametrize(
    ("provider_id", "expected"),
    [
        ("aws:///us-east-1a/i-0123456789abcdef0", "i-0123456789abcdef0"),
        ("aws:///us-east-1a/i-0123456789abcdef0/", "i-0123456789abcdef0"),
        ("kind://docker/kind/kind-worker", None),
        (None, None),
    ],
)
def test_instance_id_from_provider_id(provider_id: str | None, expected: str | None) -> None:
    """The AWS cloud provider's provider id names the instance; other providers do not."""
    assert aws.instance_id_from_provider_id(provider_id) == expected


class TestStaticPodShell:
    """The shell SSM runs on control-plane hosts, run here on a folder standing for /etc/kubernetes."""

    def _run(self, commands: list[str]) -> None:
        subprocess.run(["sh", "-ec", "\n".join(commands)], check=True, timeout=10)

    def test_park_and_restore_are_idempotent(self, tmp_path: Path) -> None:
        """Park twice, restore twice: the manifest is back, unchanged, and nothing else moved."""
        manifests, parked = tmp_path / "manifests", tmp_path / "parked"
        manifests.mkdir()
        (manifests / "etcd.yaml").write_text("kind: Pod # etcd\n")
        (manifests / "kube-apiserver.yaml").write_text("kind: Pod # apiserver\n")
        park = aws.park_commands("etcd", str(manifests), str(parked))
        self._run(park)
        self._run(park)
        assert sorted(p.name for p in manifests.iterdir()) == ["kube-apiserver.yaml"]
        assert (parked / "etcd.yaml").read_text() == "kind: Pod # etcd\n"
        restore = aws.restore_commands(str(manifests), str(parked))
        self._run(restore)
        self._run(restore)
        assert (manifests / "etcd.yaml").read_text() == "kind: Pod # etcd\n"
        assert list(parked.iterdir()) == []

    def test_restore_never_overwrites_a_manifest_that_is_back(self, tmp_path: Path) -> None:
        """If someone already put a (newer) manifest back, the parked copy does not replace it."""
        manifests, parked = tmp_path / "manifests", tmp_path / "parked"
        manifests.mkdir()
        parked.mkdir()
        (parked / "etcd.yaml").write_text("old\n")
        (manifests / "etcd.yaml").write_text("new\n")
        self._run(aws.restore_commands(str(manifests), str(parked)))
        assert (manifests / "etcd.yaml").read_text() == "new\n"

    def test_restore_without_anything_parked_succeeds(self, tmp_path: Path) -> None:
        """A rollback whose action never ran: no parked folder at all."""
        (tmp_path / "manifests").mkdir()
        self._run(aws.restore_commands(str(tmp_path / "manifests"), str(tmp_path / "parked")))


# --- the catalog's guards ----------------------------------------------------------------------
CATALOG = Path(__file__).parents[2] / "experiments" / "kubernetes"
OWN = sorted(
    CATALOG / f"{n}.yaml"
    for n in (
        "pod-kill", "pod-kill-percentage", "deployment-scale-down", "node-drain", "node-cordon",
        "network-deny-ingress", "network-deny-egress", "dns-disruption", "chaos-mesh-latency",
        "chaos-mesh-loss", "chaos-mesh-partition", "apiserver-load",
    )
)  # fmt: skip
"""The Kubernetes-level experiments (the SSM ones are the AWS catalog's)."""
K8S = "harness.chaos.activities.kubernetes"
POD_DELETES = {("chaosk8s.pod.actions", f) for f in ("terminate_pods", "delete_pods")} | {
    (K8S, "terminate_service_pods")
}


def _key(activity: dict[str, Any]) -> tuple[str, str]:
    return activity["provider"]["module"], activity["provider"]["func"]


def _experiment(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", sorted(CATALOG.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_pod_delete_goes_through_the_selector_guard(path: Path) -> None:
    """No catalog step deletes pods with chaosk8s's terminate_pods (an empty selector means every pod
    of the namespace): only terminate_service_pods, which refuses one, with the target's selector."""
    experiment = _experiment(path)
    for activity in [*experiment["method"], *experiment.get("rollbacks", [])]:
        if _key(activity) in POD_DELETES:
            assert _key(activity) == (K8S, "terminate_service_pods"), activity["name"]
            assert activity["provider"]["arguments"]["label_selector"] == "${label_selector}"


@pytest.mark.parametrize("selector", ["", "  ", None, "None"])
def test_pod_deletes_and_cordons_refuse_an_empty_selector_before_any_request(selector: str | None) -> None:
    """Refused before a client is even built (the configuration names no reachable cluster)."""
    nowhere = {"kubernetes_context": "no-such-context"}
    with pytest.raises(ActivityFailed, match="empty label selector"):
        kubernetes.terminate_service_pods(selector, "shop", configuration=nowhere)  # type: ignore[arg-type]
    with pytest.raises(ActivityFailed, match="empty label selector"):
        kubernetes.cordon_nodes_hosting(selector, "shop", configuration=nowhere)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.stem)
def test_the_method_ends_with_the_undo_and_a_wait_for_the_service(path: Path) -> None:
    """The steady state after is judged once the fault is undone and the Deployment is whole with
    every pod Ready: the method ends with each rollback's undo, then the wait; the rollbacks keep
    the same steps as the backstop."""
    experiment = _experiment(path)
    method, rollbacks = experiment["method"], experiment["rollbacks"]
    assert [_key(a) for a in method[-len(rollbacks) :]] == [_key(a) for a in rollbacks]
    assert [a["provider"].get("arguments") for a in method[-len(rollbacks) :]] == [
        a["provider"].get("arguments") for a in rollbacks
    ]
    wait = method[-1]
    assert _key(wait) == (K8S, "wait_for_deployment")
    assert wait["provider"]["arguments"]["label_selector"] == "${label_selector}"
    assert not any(a.get("pauses", {}).get("after") for a in method[-len(rollbacks) :])


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.stem)
def test_the_steady_state_reaches_the_service_at_its_url(path: Path) -> None:
    """The service probe uses the load's URL (configuration service_url), not the API server's proxy,
    and the Deployment probe checks the selector's pods too."""
    experiment = _experiment(path)
    probes = {_key(p): p["provider"]["arguments"] for p in experiment["steady-state-hypothesis"]["probes"]}
    assert probes[(K8S, "service_answers")]["service_url"] == "${service_url}"
    assert probes[(K8S, "service_answers")]["path"] == "${service_path}"
    assert experiment["configuration"]["service_path"] == "/readyz"
    assert probes[(K8S, "deployment_fully_available")]["label_selector"] == "${label_selector}"
    assert not any(module.startswith("chaosk8s") for module, _ in probes)


def _pod(name: str, owner: str | None = "ReplicaSet", phase: str = "Running", **extra: Any) -> Any:
    from types import SimpleNamespace as NS

    owners = [NS(kind=owner, controller=True)] if owner else None
    volumes = extra.get("volumes")
    return NS(
        metadata=NS(name=name, namespace="shop", owner_references=owners, deletion_timestamp=extra.get("deleting"),
                    annotations=extra.get("annotations")),
        spec=NS(volumes=volumes),
        status=NS(phase=phase),
    )  # fmt: skip


class TestDrainPlan:
    def test_what_a_drain_evicts_leaves_and_refuses(self) -> None:
        """As kubectl: DaemonSet and mirror pods stay, finished pods go, unowned pods block; pods
        with no volumes at all are ordinary; an emptyDir stays unless local storage may go."""
        from types import SimpleNamespace as NS

        pods = [
            _pod("web"),
            _pod("no-volumes", volumes=None),
            _pod("ds", owner="DaemonSet"),
            _pod("static", owner="Node", annotations={kubernetes.MIRROR_ANNOTATION: "x"}),
            _pod("done", owner=None, phase="Succeeded"),
            _pod("bare", owner=None),
            _pod("cache", volumes=[NS(empty_dir=NS())]),
            _pod("going", deleting="2026-01-01T00:00:00Z"),
        ]
        plan = kubernetes.drain_plan(pods)
        assert sorted(p.metadata.name for p in plan["evict"]) == ["done", "no-volumes", "web"]
        assert sorted(plan["left"]) == ["shop/cache", "shop/ds", "shop/going", "shop/static"]
        assert list(plan["blocking"]) == ["shop/bare"]
        assert "cache" in [p.metadata.name for p in kubernetes.drain_plan(pods, True)["evict"]]


@pytest.mark.parametrize(
    ("obj", "phase"),
    [
        ({"metadata": {"deletionTimestamp": "t"}, "status": {"conditions": []}}, "terminating"),
        ({"status": {"experiment": {"desiredPhase": "Stop"}}}, "finished"),
        ({"status": {"conditions": [{"type": "AllRecovered", "status": "True"}]}}, "finished"),
        ({"status": {"conditions": [{"type": "AllInjected", "status": "True"}]}}, "injected"),
        ({"status": {"conditions": [{"type": "Selected", "status": "False"}]}}, "failed"),
        ({"status": {"conditions": [{"type": "Selected", "status": "True"}]}}, "pending"),
        ({"metadata": {}}, "unknown"),
    ],
)
def test_chaos_phase_reads_chaos_mesh_status(obj: dict[str, Any], phase: str) -> None:
    """A leftover that is terminating or finished injects nothing; only AllInjected says it does."""
    assert kubernetes.chaos_phase(obj) == phase


def test_every_kubernetes_call_has_a_request_timeout() -> None:
    """An API server under a fault may accept a connection and never answer: no call of the activities
    may wait for it without a bound (read from the source, so a new call without one fails here)."""
    import ast
    import inspect

    verbs = ("list_", "read_", "patch_", "delete_", "create_", "replace_", "connect_")
    missing = [
        f"line {node.lineno}: {node.func.attr}"
        for node in ast.walk(ast.parse(inspect.getsource(kubernetes)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and (node.func.attr.startswith(verbs) or node.func.attr == "get_namespaced_custom_object")
        and node.func.attr != "create_k8s_api_client"
        and not any(k.arg == "_request_timeout" for k in node.keywords)
    ]
    assert missing == []
