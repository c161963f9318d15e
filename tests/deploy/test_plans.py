"""The cluster plans load: every field valid, every experiment file found (experiments/kubernetes/
and experiments/aws/ hold the catalog they name), and as the CronJobs mount them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.plan import lint, loading, models
from tests.deploy.rendering import render

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "experiments" / "plans"
MIN_TRIALS_TO_COMPARE = 4
"""The fewest trials per side with which the exact Mann-Whitney test can reach p < 0.05
(2 / C(8, 4) = 0.029; docs/compare.md)."""


@pytest.mark.parametrize("name", ["cluster-benchmark", "eks-gameday"])
def test_cluster_plans_load(name: str) -> None:
    """Both plans load with the harness's own loader and aim at deploy/'s service."""
    plan = loading.load_plan(PLANS / f"{name}.yaml")
    assert isinstance(plan.target, models.KubernetesTarget)
    assert plan.target.namespace == "subs"
    assert plan.target.selector == "app=subs"
    assert plan.load.host == "http://subs.subs.svc.cluster.local"
    assert lint.plan_warnings(PLANS / f"{name}.yaml") == []
    for scenario in plan.scenarios:
        assert Path(scenario.experiment).is_file(), scenario.experiment


def test_benchmark_has_trials_for_comparisons() -> None:
    """Every scenario of the shared weekly plan repeats enough for a rank test between clusters."""
    plan = loading.load_plan(PLANS / "cluster-benchmark.yaml")
    assert all(scenario.trials >= MIN_TRIALS_TO_COMPARE for scenario in plan.scenarios)


def test_benchmark_touches_aws_only_where_the_control_plane_is_self_managed() -> None:
    """The same plan on every cluster: the scenarios whose experiments act through AWS (SSM on
    control-plane hosts) are exactly those that require a self-managed control plane, so on EKS
    they are not applicable and everything that runs goes through the Kubernetes API."""
    plan = loading.load_plan(PLANS / "cluster-benchmark.yaml")
    through_aws = set()
    for scenario in plan.scenarios:
        tags = yaml.safe_load(Path(scenario.experiment).read_text()).get("tags") or []
        if "aws" in tags:
            through_aws.add(scenario.name)
        needs = models.Requirement.SELF_MANAGED_CONTROL_PLANE in scenario.requires
        assert needs == ("self-managed" in tags), scenario.name
    assert through_aws == {"etcd-member-stop", "apiserver-stop"}
    assert {s.name for s in plan.scenarios if s.requires} == through_aws


def test_eks_gameday_has_the_aws_faults() -> None:
    """The EKS game day terminates a node-group instance and blackholes a zone."""
    plan = loading.load_plan(PLANS / "eks-gameday.yaml")
    assert plan.target.aws is not None
    experiments = {Path(s.experiment).name for s in plan.scenarios}
    assert {"nodegroup-instance-terminate.yaml", "az-blackhole-nacl.yaml"} <= experiments


def test_configmap_holds_the_plans_as_they_are_in_the_repository() -> None:
    """One copy of each plan: the ConfigMap is generated from experiments/plans/, not a copy."""
    configmap = next(
        o
        for o in render(ROOT / "deploy" / "gameday")
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "gameday-plans"
    )
    assert configmap["metadata"]["namespace"] == "subs"
    assert set(configmap["data"]) == {"cluster-benchmark.yaml", "eks-gameday.yaml"}
    for filename, text in configmap["data"].items():
        assert text == (PLANS / filename).read_text(), filename


def test_mounted_plans_load_as_the_pod_sees_them(tmp_path: Path) -> None:
    """Each plan loads alone in a folder (/plans), its experiments found from the working
    directory (/app in the image), with the in-cluster ServiceAccount as the context."""
    configmap = next(
        o
        for o in render(ROOT / "deploy" / "gameday")
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "gameday-plans"
    )
    for filename, text in configmap["data"].items():
        (tmp_path / filename).write_text(text)
        plan = loading.load_plan(tmp_path / filename)
        assert plan.target.effective_context in plan.target.allowed_contexts
        assert plan.target.context is None, "the CronJob runs with its in-cluster ServiceAccount"
        assert plan.target.cluster is None, "the CronJob names the cluster (--cluster), not the plan"
