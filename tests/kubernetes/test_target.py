"""The Kubernetes target against the kmock emulator: allowed contexts, the chaosk8s pin, facts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from chaosk8s.pod.actions import terminate_pods
from chaoslib.experiment import run_experiment
from kubernetes import client as k8s_client
from kubernetes.config import kube_config

from harness.engine import targets
from harness.errors import InputError
from harness.kubernetes import client, facts
from harness.kubernetes.target import (
    CORDONED_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PREVIOUS_REPLICAS,
    KubernetesTarget,
)
from harness.plan import loading
from harness.plan.models import KubernetesTarget as PlanTarget
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters, target_spec


def pod_names(api: k8s_client.ApiClient) -> set[str]:
    return {p.metadata.name for p in k8s_client.CoreV1Api(api).list_namespaced_pod(NAMESPACE).items}


class TestAllowedContexts:
    def test_a_context_not_allowed_is_refused_before_any_request(self, clusters: Clusters) -> None:
        """A target whose context is not allowed raises InputError (exit 2) and sends nothing anywhere."""
        spec = PlanTarget.model_construct(kind="kubernetes", context="production", allowed_contexts=["test-cluster"],
                                          namespace=NAMESPACE, selector=SELECTOR, aws=None)  # fmt: skip
        target = KubernetesTarget(spec, url="http://127.0.0.1:1")
        before = len(clusters.allowed.requests), len(clusters.production.requests)
        with pytest.raises(InputError, match="not in allowed_contexts") as caught:
            target.open()
        assert caught.value.exit_code == 2
        assert (len(clusters.allowed.requests), len(clusters.production.requests)) == before

    def test_a_plan_naming_a_context_not_allowed_does_not_load(
        self, clusters: Clusters, tmp_path: Path
    ) -> None:
        """The plan itself is refused at validation, with the file and line of `context`."""
        plan = tmp_path / "plan.yaml"
        experiment = tmp_path / "e.yaml"
        experiment.write_text("title: t\ndescription: d\nmethod: []\n")
        plan.write_text(
            "name: k\ntarget:\n  kind: kubernetes\n  context: production\n  allowed_contexts: [test-cluster]\n  selector: app=subs\n"
            f"load: {{locustfile: {tmp_path / 'l.py'}, host: 'http://127.0.0.1:1'}}\n"
            f"scenarios: [{{name: s, experiment: {experiment}}}]\n"
        )
        (tmp_path / "l.py").write_text("")
        before = len(clusters.production.requests)
        with pytest.raises(InputError, match="production"):
            loading.load_plan(plan)
        assert len(clusters.production.requests) == before

    def test_in_cluster_needs_a_pod(self, clusters: Clusters, monkeypatch: pytest.MonkeyPatch) -> None:
        """No context means in-cluster, never the kubeconfig's current-context (production here)."""
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        before = len(clusters.production.requests)
        target = KubernetesTarget(target_spec(context=None, allowed_contexts=["in-cluster"]))
        with pytest.raises(InputError, match="in-cluster"):
            target.open()
        assert len(clusters.production.requests) == before

    def test_an_unknown_context_is_an_input_error(self, clusters: Clusters) -> None:
        """An allowed name the kubeconfig does not have is refused; nothing is sent."""
        target = KubernetesTarget(target_spec(context="staging", allowed_contexts=["staging"]))
        with pytest.raises(InputError, match="'staging' is not in the kubeconfig"):
            target.open()

    def test_make_target_builds_the_kubernetes_target(self, clusters: Clusters, tmp_path: Path) -> None:
        """The engine's factory returns the Kubernetes target with the service URL."""
        target = targets.make_target(target_spec(), tmp_path, url="http://127.0.0.1:9")
        assert isinstance(target, KubernetesTarget) and target.url == "http://127.0.0.1:9"


class TestPin:
    def test_chaosk8s_acts_on_the_pinned_context_only(self, clusters: Clusters) -> None:
        """With the kubeconfig's current-context on production, chaosk8s still deletes in test-cluster."""
        target = KubernetesTarget(target_spec())
        target.open()
        try:
            production_before = len(clusters.production.requests)
            deleted = terminate_pods(label_selector=SELECTOR, ns=NAMESPACE, qty=1)
            assert deleted == ["subs-0"]
            assert len(clusters.production.requests) == production_before
            with clusters.allowed.api() as api:
                assert "subs-0" not in pod_names(api)
            with clusters.production.api() as api:
                assert "subs-0" in pod_names(api)
        finally:
            target.close()

    def test_a_secret_naming_another_context_cannot_reach_it(self, clusters: Clusters) -> None:
        """An experiment whose secrets say KUBERNETES_CONTEXT=production fails instead of acting there."""
        target = KubernetesTarget(target_spec())
        target.open()
        try:
            experiment = {
                "title": "t", "description": "d",
                "secrets": {"k8s": {"KUBERNETES_CONTEXT": "production"}},
                "method": [{"type": "action", "name": "kill", "provider": {
                    "type": "python", "module": "chaosk8s.pod.actions", "func": "terminate_pods", "secrets": ["k8s"],
                    "arguments": {"label_selector": SELECTOR, "ns": NAMESPACE}}}],
            }  # fmt: skip
            with pytest.raises(InputError, match=r"secrets\.k8s\.KUBERNETES_CONTEXT"):
                client.check_experiment_secrets(experiment, "test-cluster", "e.yaml")
            production_before = len(clusters.production.requests)
            journal = run_experiment(experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}})
            assert journal["run"][0]["status"] == "failed"
            assert "production" in journal["run"][0]["exception"][-1]
            assert len(clusters.production.requests) == production_before
            with clusters.production.api() as api:
                assert "subs-0" in pod_names(api)
        finally:
            target.close()

    def test_close_restores_the_environment(self, clusters: Clusters) -> None:
        """After close, KUBECONFIG, KUBERNETES_CONTEXT and the kubernetes default location are as before."""
        env_before = {
            k: os.environ.get(k) for k in ("KUBECONFIG", "KUBERNETES_CONTEXT", "CHAOSTOOLKIT_IN_POD")
        }
        location_before = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        target = KubernetesTarget(target_spec())
        target.open()
        assert os.environ["KUBERNETES_CONTEXT"] == "test-cluster"
        assert (
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION == os.environ["KUBECONFIG"] != str(clusters.kubeconfig)
        )
        pinned = Path(os.environ["KUBECONFIG"])
        assert oct(pinned.stat().st_mode & 0o777) == "0o600"
        target.close()
        assert {k: os.environ.get(k) for k in env_before} == env_before
        assert location_before == kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        assert not pinned.exists()

    def test_relative_certificate_paths_are_made_absolute(self, tmp_path: Path) -> None:
        """The single-context copy lives elsewhere, so relative file paths are resolved first."""
        config = tmp_path / "config"
        config.write_text(
            "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443', certificate-authority: ca.crt}}]\n"
            "users: [{name: u, user: {client-certificate: certs/u.crt, client-key: /abs/u.key}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}, {name: y, context: {cluster: c, user: u}}]\n"
        )
        pinned = client.single_context_config("x", [config])
        assert [c["name"] for c in pinned["contexts"]] == ["x"]
        assert pinned["clusters"][0]["cluster"]["certificate-authority"] == str(tmp_path / "ca.crt")
        assert pinned["users"][0]["user"] == {"client-certificate": str(tmp_path / "certs/u.crt"),
                                              "client-key": "/abs/u.key"}  # fmt: skip


class TestTarget:
    def test_configuration_names_the_target(self) -> None:
        """Experiments get the namespace, selector, context and AWS settings under chaosaws's keys too,
        and, with AWS, whose marks AWS faults carry (the cluster, the run)."""
        spec = target_spec(aws={"region": "eu-west-1", "profile": "gameday"})
        config = KubernetesTarget(spec, run_id="r1").configuration()
        assert config == {"namespace": NAMESPACE, "label_selector": SELECTOR, "kubernetes_context": "test-cluster",
                          "aws_region": "eu-west-1", "aws_profile": "gameday", "aws_profile_name": "gameday",
                          "harness_cluster": "test-cluster", "harness_run_id": "r1"}  # fmt: skip

    def test_facts_come_from_the_cluster(self, clusters: Clusters) -> None:
        """Version, nodes, zones, instance types, provider and tolerations as the emulator serves them."""
        target = KubernetesTarget(target_spec(), url="http://127.0.0.1:9")
        target.open()
        try:
            facts = target.facts()
        finally:
            target.close()
        assert facts["kind"] == "kubernetes" and facts["context"] == "test-cluster"
        assert facts["server"] == clusters.allowed.url
        assert facts["server_version"] == "v1.30.4-eks-a737599"
        assert facts["nodes"] == 3
        assert facts["zones"] == {"eu-west-1a": 1, "eu-west-1b": 1, "eu-west-1c": 1}
        assert facts["zone_names"] == {} and "no node carries" in facts["evidence"]["zones"]
        assert facts["instance_types"] == {"m5.large": 3}
        assert facts["provider"] == "eks" and facts["cloud_controller_deletes_dead_nodes"] is True
        assert facts["not_ready_toleration_s"] == 300 and facts["unreachable_toleration_s"] == 300
        assert facts["node_grace_period_s"] is None and "node_grace_period_s" in facts["unknown"]
        assert facts["control_plane"] == "managed/not visible"
        assert facts["clock_skew_s"] == pytest.approx(0.0, abs=0.1) and facts["clock_skew_error_s"] <= 0.1

    def test_zones_are_aws_zone_ids_when_nodes_carry_them(self, clusters: Clusters) -> None:
        """Zone names differ between AWS accounts; with topology.k8s.aws/zone-id the facts count by ID."""
        with clusters.allowed.api() as api:
            core = k8s_client.CoreV1Api(api)
            for name, zone_id in (("node-a", "euw1-az3"), ("node-b", "euw1-az1"), ("node-c", "euw1-az2")):
                core.patch_node(name, {"metadata": {"labels": {facts.ZONE_ID_LABEL: zone_id}}})
        target = KubernetesTarget(target_spec())
        target.open()
        try:
            found = target.facts()
        finally:
            target.close()
        assert found["zones"] == {"euw1-az1": 1, "euw1-az2": 1, "euw1-az3": 1}
        assert found["zone_names"] == {
            "euw1-az1": "eu-west-1b",
            "euw1-az2": "eu-west-1c",
            "euw1-az3": "eu-west-1a",
        }
        assert facts.ZONE_ID_LABEL in found["evidence"]["zones"]

    def test_heal_undoes_only_harness_marks(self, clusters: Clusters) -> None:
        """Harness-marked policy, cordon and scale are undone; an operator's policy and cordon stay."""
        with clusters.allowed.api() as api:
            net, core = k8s_client.NetworkingV1Api(api), k8s_client.CoreV1Api(api)
            for name, labels in (("ours", {MANAGED_BY_LABEL: MANAGED_BY}), ("theirs", {})):
                net.create_namespaced_network_policy(NAMESPACE, {"metadata": {"name": name, "labels": labels},
                                                                 "spec": {"podSelector": {}}})  # fmt: skip
            core.patch_node("node-a", {"spec": {"unschedulable": True},
                                       "metadata": {"labels": {CORDONED_LABEL: "true"}}})  # fmt: skip
            k8s_client.AppsV1Api(api).patch_namespaced_deployment(
                "subs",
                NAMESPACE,
                {"spec": {"replicas": 1}, "metadata": {"annotations": {PREVIOUS_REPLICAS: "3"}}},
            )
            core.patch_node("node-b", {"spec": {"unschedulable": True}})
            k8s_client.AppsV1Api(api).create_namespaced_deployment("kube-system", {  # dns-disruption's
                "metadata": {"name": "coredns", "namespace": "kube-system",
                             "annotations": {PREVIOUS_REPLICAS: "2"}},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                         "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                                      "spec": {"containers": [{"name": "coredns", "image": "coredns:1"}]}}},
            })  # fmt: skip
            target = KubernetesTarget(target_spec())
            target.open()
            try:
                healed = target.heal()
            finally:
                target.close()
            assert any("ours" in h for h in healed) and any("node-a" in h for h in healed)
            assert any("back to 3" in h for h in healed)
            assert any("kube-system/coredns back to 2" in h for h in healed)
            assert len(healed) == 4, healed
            coredns = k8s_client.AppsV1Api(api).read_namespaced_deployment("coredns", "kube-system")
            assert coredns.spec.replicas == 2
            assert [p.metadata.name for p in net.list_namespaced_network_policy(NAMESPACE).items] == [
                "theirs"
            ]
            assert core.read_node("node-a").spec.unschedulable is False
            assert CORDONED_LABEL not in (core.read_node("node-a").metadata.labels or {})
            assert k8s_client.AppsV1Api(api).read_namespaced_deployment("subs", NAMESPACE).spec.replicas == 3
            assert core.read_node("node-b").spec.unschedulable is True

    def test_ground_truth_is_the_namespace_events_in_the_window(self, clusters: Clusters) -> None:
        """Kubernetes events with a time inside the window come back as ground-truth rows."""
        import time

        with clusters.allowed.api() as api:
            k8s_client.CoreV1Api(api).create_namespaced_event(NAMESPACE, {
                "metadata": {"name": "e1", "namespace": NAMESPACE},
                "involvedObject": {"kind": "Pod", "name": "subs-0", "namespace": NAMESPACE},
                "reason": "Killing", "message": "Stopping container subs", "type": "Normal", "count": 1,
                "lastTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            })  # fmt: skip
        target = KubernetesTarget(target_spec())
        target.open()
        try:
            now = time.time()
            rows = target.ground_truth(now - 60, now + 60)
            assert [(r["event"], r["object"]) for r in rows] == [("Killing", "Pod/subs-0")]
            assert target.ground_truth(now + 100, now + 200) == []
        finally:
            target.close()

    def test_observe_samples_the_scenarios_service_endpoints(
        self, clusters: Clusters, tmp_path: Path
    ) -> None:
        """The scenario's `service_name` (its vars over the experiment's default) is the Service sampled; `subs` without one."""
        import json

        from harness.engine.runner import _service_name

        experiment = {"configuration": {"service_name": "subs"}}
        assert _service_name(experiment, {"service_name": "orders"}) == "orders"
        assert _service_name(experiment, {}) == "subs"
        assert _service_name({"configuration": {"service_name": {"type": "env", "key": "S"}}}, {}) is None
        target = KubernetesTarget(target_spec(), sampler_options={"interval_s": 0.2, "poll_s": 0.2})
        target.open()
        try:
            with target.observe(tmp_path, None):
                time.sleep(0.5)
        finally:
            target.close()
        lines = [json.loads(line) for line in (tmp_path / "controlplane.jsonl").read_text().splitlines()]
        samples = [line for line in lines if line["kind"] == "endpoints"]
        assert samples and all((s["service"], s["ready"]) == ("subs", 3) for s in samples)
        assert not [line for line in lines if line["kind"] == "instance"], "no target.aws: no EC2 calls"


def pod_with(*tolerations: dict[str, object]) -> k8s_client.V1Pod:
    return k8s_client.V1Pod(
        metadata=k8s_client.V1ObjectMeta(name="subs-0"),
        spec=k8s_client.V1PodSpec(
            containers=[], tolerations=[k8s_client.V1Toleration(**t) for t in tolerations]
        ),
    )


class TestTolerations:
    def test_a_missing_toleration_is_the_admission_default(self) -> None:
        """A pod that tolerates only not-ready gets the 300 s default for unreachable, and says so."""
        pod = pod_with({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                        "toleration_seconds": 30})  # fmt: skip
        not_ready, unreachable, source = facts.tolerations([pod])
        assert (not_ready, unreachable) == (30, 300)
        assert "unreachable" in source and "DefaultTolerationSeconds" in source

    def test_no_toleration_at_all_is_the_default_for_both(self) -> None:
        """No NoExecute toleration: both are the 300 s default; a NoSchedule one does not count."""
        pod = pod_with(
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule"}
        )
        not_ready, unreachable, source = facts.tolerations([pod])
        assert (not_ready, unreachable) == (300, 300) and "not-ready or unreachable" in source

    def test_an_empty_key_tolerates_both_forever(self) -> None:
        """operator Exists with no key and no seconds tolerates every taint forever: null, not the default."""
        assert facts.tolerations([pod_with({"operator": "Exists"})])[:2] == (None, None)


class TestClockSkew:
    def test_the_interval_narrows_across_a_server_tick(self) -> None:
        """Date 100 answered in [100.20, 100.25] harness time, Date 101 in [100.30, 100.35]: offset in [0.65, 0.80]."""
        low, high = client.skew_interval([(100.20, 100.0, 100.25), (100.30, 101.0, 100.35)])
        assert (low, high) == pytest.approx((0.65, 0.80)), "the tick fell between 100.20 and 100.35"

    def test_contradicting_dates_are_no_estimate(self) -> None:
        """Two answers a second apart in server time but not in ours: no interval holds both."""
        assert client.skew_interval([(100.0, 100.0, 100.1), (100.2, 102.0, 100.3)]) is None

    def test_event_times_are_put_on_the_harness_clock(self, clusters: Clusters) -> None:
        """An API server 5 minutes ahead: its event, stamped now on its clock, is now on ours."""
        emulator = clusters.allowed.emulator
        assert emulator is not None
        emulator.clock_offset_s = 300.0
        with clusters.allowed.api() as api:
            k8s_client.CoreV1Api(api).create_namespaced_event(NAMESPACE, {
                "metadata": {"name": "e1", "namespace": NAMESPACE},
                "involvedObject": {"kind": "Pod", "name": "subs-0", "namespace": NAMESPACE},
                "reason": "Killing", "message": "Stopping container subs", "type": "Normal", "count": 1,
                "lastTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(emulator.now())),
            })  # fmt: skip
        stamped = time.time()
        target = KubernetesTarget(target_spec())
        target.open()
        try:
            found = target.facts()
            rows = target.ground_truth(stamped - 60, stamped + 60)
        finally:
            target.close()
            emulator.clock_offset_s = 0.0
        assert found["clock_skew_s"] == pytest.approx(300.0, abs=0.1)
        assert [(r["event"], r["object"]) for r in rows] == [("Killing", "Pod/subs-0")]
        assert rows[0]["t"] == pytest.approx(stamped, abs=1.2), "the event's second, on our clock"
        assert rows[0]["cluster_t"] - rows[0]["t"] == pytest.approx(300.0, abs=0.1)
