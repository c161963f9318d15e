"""`harness preflight PLAN` against the Kubernetes emulator: a checklist and an exit code, reading only.

The emulator answers SelfSubjectAccessReviews from RBAC rules (conftest.rbac_rules), here the
shipped deploy/gameday/rbac.yaml itself, so "all permitted" also proves that the manifests
grant what the permission table says the catalog needs. What the emulator cannot show: other
authorisers (EKS access entries, webhooks), aggregated ClusterRoles, and a real API server's
admission of the calls once permitted.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client
from typer.testing import CliRunner

from harness.cli import app
from harness.kubernetes import permissions, preflight
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters, access_allowed, rbac_rules

ROOT = Path(__file__).resolve().parents[2]
RBAC = [ROOT / "deploy/gameday/rbac.yaml", ROOT / "deploy/gameday/kube-system/rbac.yaml"]
CATALOG = sorted(
    [*(ROOT / "experiments/kubernetes").glob("*.yaml"), *(ROOT / "experiments/aws").glob("*.yaml")]
)
GAMEDAY = (
    "pod-kill",
    "deployment-scale-down",
    "node-drain",
    "network-deny-ingress",
    "dns-disruption",
    "apiserver-load",
)


def write_plan(tmp: Path, scenarios: tuple[str, ...] = GAMEDAY, selector: str | None = SELECTOR,
               context: str = "test-cluster") -> Path:  # fmt: skip
    target: dict[str, Any] = {"kind": "kubernetes", "context": context, "allowed_contexts": ["test-cluster"],
                              "namespace": NAMESPACE}  # fmt: skip
    if selector is not None:
        target["selector"] = selector
    plan = {
        "name": "preflight-test",
        "target": target,
        "load": {
            "locustfile": str(ROOT / "loadtests/subscriptions.py"),
            "host": "http://127.0.0.1:9",
            "users": 1,
        },
        "scenarios": [
            {"name": s, "experiment": str(ROOT / f"experiments/kubernetes/{s}.yaml")} for s in scenarios
        ],
    }
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def run(plan: Path) -> Any:
    result = CliRunner().invoke(app, ["preflight", str(plan)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def lines(output: str, status: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(status)]


def grant(clusters: Clusters, rules: list[dict[str, Any]] | None = None) -> None:
    assert clusters.allowed.emulator is not None
    clusters.allowed.emulator.access_rules = rbac_rules(RBAC, NAMESPACE) if rules is None else rules


def writes(requests: list[Any]) -> list[str]:
    """Every request that could change state: anything but GET, and POSTs other than access reviews."""
    out = []
    for r in requests:
        method = str(getattr(r.method, "value", r.method)).upper()
        path = str(r.url.path)
        if method in ("GET", "HEAD") or (method == "POST" and path.endswith("/selfsubjectaccessreviews")):
            continue
        out.append(f"{method} {path}")
    return out


class TestThePermissionTable:
    def test_every_activity_of_the_bundled_catalog_is_in_the_table(self) -> None:
        """No catalog experiment calls a function the preflight would skip unchecked."""
        missing = set()
        for path in CATALOG:
            experiment = yaml.safe_load(path.read_text())
            activities = [*(experiment.get("steady-state-hypothesis") or {}).get("probes", []),
                          *experiment.get("method", []), *experiment.get("rollbacks", [])]  # fmt: skip
            for activity in activities:
                provider = activity.get("provider") or {}
                if provider.get("type") == "python":
                    function = f"{provider['module']}.{provider['func']}"
                    if function not in permissions.ACTIVITIES:
                        missing.add(f"{path.name}: {function}")
        assert not missing

    @pytest.mark.parametrize("path", CATALOG, ids=lambda p: p.stem)
    def test_the_shipped_rbac_grants_every_need_of_the_experiment(self, path: Path) -> None:
        """deploy/gameday's Roles grant what the table says each bundled experiment and the engine need."""
        from harness.plan import models

        plan = models.Plan.model_validate({
            "name": "rbac", "target": {"kind": "kubernetes", "allowed_contexts": ["in-cluster"], "namespace": "subs",
                                       "selector": "app=subs", "aws": {"region": "eu-west-1"}},
            "load": {"locustfile": str(ROOT / "loadtests/subscriptions.py"), "host": "http://subs", "users": 1},
            "scenarios": [{"name": path.stem, "experiment": str(path), "vars": {"all_namespaces": True}}],
        })  # fmt: skip
        calls, _ = preflight._calls(plan, {str(path): yaml.safe_load(path.read_text())})
        needs = permissions.requirements(calls, "subs")
        rules = rbac_rules(RBAC, "subs")
        denied = [r.describe() for r in [*needs.kubernetes, *needs.engine]
                  if not access_allowed(rules, preflight.access_review_body(r)["spec"])]  # fmt: skip
        assert denied == []

    def test_the_samplers_endpoint_slices_are_an_engine_need(self) -> None:
        """With no experiment needing them, listing EndpointSlices is still the sampler's: a warning, not a block."""
        needs = permissions.requirements([], "subs")
        engine = {r.describe(): r.needed_by for r in needs.engine}
        assert engine["list endpointslices.discovery.k8s.io in subs"] == (
            "control-plane sampler (endpoints)",
        )
        assert "list endpointslices.discovery.k8s.io in subs" not in [r.describe() for r in needs.kubernetes]

    def test_a_drain_needs_evictions_in_every_namespace_and_a_cordon_alone_does_not(self) -> None:
        """`when` arguments switch needs on: a drain evicts pods of any namespace."""
        call = "harness.chaos.activities.kubernetes.cordon_nodes_hosting"
        drain = permissions.requirements(
            [permissions.Call("s", "a", call, {"ns": "subs", "drain": True})], "subs"
        )
        cordon = permissions.requirements(
            [permissions.Call("s", "a", call, {"ns": "subs", "drain": False})], "subs"
        )
        assert "create pods/eviction in all namespaces" in [r.describe() for r in drain.kubernetes]
        assert "create pods/eviction in all namespaces" not in [r.describe() for r in cordon.kubernetes]


class TestPreflight:
    def test_all_permitted_exits_0_and_sends_no_write(self, clusters: Clusters, tmp_path: Path) -> None:
        """The shipped RBAC, the in-cluster game day's experiments: nothing blocks, nothing is written."""
        grant(clusters)
        before_allowed, before_prod = len(clusters.allowed.requests), len(clusters.production.requests)
        result = run(write_plan(tmp_path))
        assert result.exit_code == 0, result.output
        assert lines(result.output, "blocked") == []
        assert "permission(s) granted (SelfSubjectAccessReview)" in result.output
        assert "'app=subs' in shop: 3 of 3 pod(s) ready" in result.output
        seen = clusters.allowed.requests[before_allowed:]
        assert any(str(r.url.path).endswith("/selfsubjectaccessreviews") for r in seen)
        assert writes(seen) == []
        assert clusters.production.requests[before_prod:] == []
        with clusters.allowed.api() as api:  # and nothing appeared: no access review is stored
            assert len(k8s_client.CoreV1Api(api).list_namespaced_pod(NAMESPACE).items) == 4

    def test_one_verb_missing_blocks_naming_it_and_who_needs_it(
        self, clusters: Clusters, tmp_path: Path
    ) -> None:
        """Without `delete pods`, the pod kill would fail: exit 2, the verb, resource, namespace, scenario."""
        rules = rbac_rules(RBAC, NAMESPACE)
        for rule in rules:
            if rule.get("resources") == ["pods"] and rule["namespace"] == NAMESPACE:
                rule["verbs"] = [v for v in rule["verbs"] if v != "delete"]
        grant(clusters, rules)
        result = run(write_plan(tmp_path))
        assert result.exit_code == 2, result.output
        blocked = lines(result.output, "blocked")
        assert len(blocked) == 1, result.output
        assert "delete pods in shop is not permitted" in blocked[0]
        assert "pod-kill (pod-kill.yaml): terminate-one-pod-of-the-service" in blocked[0]
        assert "deploy/gameday/rbac.yaml" in blocked[0]

    def test_an_engine_only_permission_warns(self, clusters: Clusters, tmp_path: Path) -> None:
        """Without `list events` only the ground truth is lost: a warning, exit 0."""
        grant(clusters, [r for r in rbac_rules(RBAC, NAMESPACE) if r.get("resources") != ["events"]])
        result = run(write_plan(tmp_path, ("pod-kill",)))
        assert result.exit_code == 0, result.output
        assert any(
            "list events in shop" in line and "ground truth" in line
            for line in lines(result.output, "warning")
        )

    def test_without_the_run_lease_nothing_can_run_so_it_blocks(
        self, clusters: Clusters, tmp_path: Path
    ) -> None:
        """Without `update leases` on the run Lease no run can take it: exit 2, not a warning."""
        rules = [
            r
            for r in rbac_rules(RBAC, NAMESPACE)
            if r.get("resources") != ["leases"] or "create" in r["verbs"]
        ]
        grant(clusters, rules)
        result = run(write_plan(tmp_path, ("pod-kill",)))
        assert result.exit_code == 2, result.output
        blocked = lines(result.output, "blocked")
        assert any(
            "leases" in line and "resilience-harness-lock" in line and "run lock" in line for line in blocked
        )
        assert not any("leases" in line for line in lines(result.output, "warning"))

    def test_a_missing_chaos_mesh_crd_blocks(self, chaos_mesh_clusters: Clusters, tmp_path: Path) -> None:
        """A Chaos Mesh scenario on a cluster without its CRD: exit 2; once installed, exit 0."""
        grant(chaos_mesh_clusters)
        plan = write_plan(tmp_path, ("chaos-mesh-latency",))
        result = run(plan)
        assert result.exit_code == 2, result.output
        assert "networkchaos.chaos-mesh.org is not installed; needed by chaos-mesh-latency" in result.output
        with chaos_mesh_clusters.allowed.api() as api:
            k8s_client.ApiextensionsV1Api(api).api_client.call_api(
                *api.param_serialize(
                    "POST",
                    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                    body={"metadata": {"name": "networkchaos.chaos-mesh.org"}},
                    header_params={"Content-Type": "application/json"},
                )
            ).read()
        result = run(plan)
        assert result.exit_code == 0, result.output
        assert "networkchaos.chaos-mesh.org is installed" in result.output

    def test_a_selector_matching_no_ready_pod_blocks(self, clusters: Clusters, tmp_path: Path) -> None:
        """A selector that matches nothing (a typo, the wrong namespace): exit 2 before any fault."""
        grant(clusters)
        result = run(write_plan(tmp_path, ("pod-kill",), selector="app=sub"))
        assert result.exit_code == 2, result.output
        assert "'app=sub' in shop: no pod matches" in lines(result.output, "blocked")[0]

    def test_an_unset_selector_blocks(self, clusters: Clusters, tmp_path: Path) -> None:
        """No selector: pod faults could pick any pod of the namespace."""
        grant(clusters)
        result = run(write_plan(tmp_path, ("pod-kill",), selector=None))
        assert result.exit_code == 2, result.output
        assert "target.selector" in result.output

    def test_unreachable_api_exits_3(
        self, clusters: Clusters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A context whose API server does not answer: exit 3, no traceback."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed once the block ends: nothing listens there
        doc = yaml.safe_load(clusters.kubeconfig.read_text())
        doc["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
        kubeconfig = tmp_path / "down-kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(doc))
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        result = run(write_plan(tmp_path, ("pod-kill",)))
        assert result.exit_code == 3, result.output
        assert lines(result.output, "unreachable") and "does not answer" in result.output

    def test_an_invalid_plan_blocks_with_its_file_and_line(self, tmp_path: Path) -> None:
        """A plan that does not validate: exit 2 and where the problem is."""
        plan = write_plan(tmp_path, ("pod-kill",))
        plan.write_text(plan.read_text().replace("users: 1", "users: -1"))
        result = run(plan)
        assert result.exit_code == 2, result.output
        line = next(n for n, text in enumerate(plan.read_text().splitlines(), 1) if "users: -1" in text)
        assert f"{plan}:{line}" in result.output

    def test_a_context_outside_allowed_contexts_blocks_before_any_request(
        self, clusters: Clusters, tmp_path: Path
    ) -> None:
        """The production context: exit 2, and production sees no request at all."""
        before = len(clusters.production.requests)
        result = run(write_plan(tmp_path, ("pod-kill",), context="production"))
        assert result.exit_code == 2, result.output
        assert "allowed_contexts" in result.output
        assert clusters.production.requests[before:] == []

    def test_an_activity_outside_the_table_warns_that_it_is_unchecked(
        self, clusters: Clusters, tmp_path: Path
    ) -> None:
        """A function the table does not know is named, not silently passed: a warning, exit 0."""
        grant(clusters)
        experiment = yaml.safe_load((ROOT / "experiments/kubernetes/pod-kill.yaml").read_text())
        experiment["method"].append({
            "type": "probe", "name": "list-the-nodes",
            "provider": {"type": "python", "module": "chaosk8s.node.probes", "func": "get_nodes"},
        })  # fmt: skip
        custom = tmp_path / "pod-kill-and-nodes.yaml"
        custom.write_text(yaml.safe_dump(experiment, sort_keys=False))
        plan = write_plan(tmp_path, ("pod-kill",))
        plan.write_text(
            plan.read_text().replace(str(ROOT / "experiments/kubernetes/pod-kill.yaml"), str(custom))
        )
        result = run(plan)
        assert result.exit_code == 0, result.output
        assert any("chaosk8s.node.probes.get_nodes is not in the preflight's table" in line
                   for line in lines(result.output, "warning"))  # fmt: skip

    def test_a_control_plane_scenario_on_a_managed_cluster_is_listed_not_applicable(
        self, clusters: Clusters, tmp_path: Path
    ) -> None:
        """On EKS an etcd member stop cannot run: preflight says so as the run will (not applicable,
        not failed) and does not demand the SSM and EC2 permissions only that scenario would use."""
        grant(clusters)
        plan = write_plan(tmp_path, ("pod-kill",))
        content = yaml.safe_load(plan.read_text())
        content["scenarios"].append({
            "name": "etcd-member-stop",
            "experiment": str(ROOT / "experiments/kubernetes/etcd-member-stop.yaml"),
            "requires": ["self-managed-control-plane"],
        })  # fmt: skip
        plan.write_text(yaml.safe_dump(content, sort_keys=False))
        result = run(plan)
        assert result.exit_code == 0, result.output
        warned = lines(result.output, "warning")
        assert any("etcd-member-stop: not applicable (managed control plane)" in line and "eks" in line
                   for line in warned), result.output  # fmt: skip
        assert lines(result.output, "blocked") == []
        assert "AWS" not in result.output and "ssm:" not in result.output

    def test_without_requires_the_scenario_is_checked_in_full(
        self, clusters: Clusters, tmp_path: Path
    ) -> None:
        """The same scenario without `requires` is checked like any other: its AWS needs are asked for."""
        grant(clusters)
        plan = write_plan(tmp_path, ("pod-kill",))
        content = yaml.safe_load(plan.read_text())
        content["scenarios"].append({
            "name": "etcd-member-stop",
            "experiment": str(ROOT / "experiments/kubernetes/etcd-member-stop.yaml"),
        })  # fmt: skip
        plan.write_text(yaml.safe_dump(content, sort_keys=False))
        result = run(plan)
        assert "not applicable" not in result.output
        assert "ssm:SendCommand" in result.output or "AWS" in result.output, result.output
