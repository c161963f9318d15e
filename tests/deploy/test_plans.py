"""The cluster plans load: every field valid, every experiment file found (experiments/kubernetes/
and experiments/aws/ hold the catalog they name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plan import loading, models
from tests.deploy.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "experiments" / "plans"


@pytest.mark.parametrize("name", ["cluster-benchmark", "eks-gameday"])
def test_cluster_plans_load(name: str) -> None:
    """Both plans load with the harness's own loader and aim at deploy/'s service."""
    plan = loading.load_plan(PLANS / f"{name}.yaml")
    assert isinstance(plan.target, models.KubernetesTarget)
    assert plan.target.namespace == "subs"
    assert plan.target.selector == "app=subs"
    assert plan.load.host == "http://subs.subs.svc.cluster.local"
    for scenario in plan.scenarios:
        assert Path(scenario.experiment).is_file(), scenario.experiment


def test_benchmark_has_trials_for_comparisons() -> None:
    """Every benchmark scenario repeats enough for a rank test between two clusters."""
    plan = loading.load_plan(PLANS / "cluster-benchmark.yaml")
    assert plan.target.aws is None, "Kubernetes-level faults only, the same on any cluster"
    assert all(scenario.trials >= 5 for scenario in plan.scenarios)


def test_eks_gameday_has_the_aws_faults() -> None:
    """The EKS game day terminates a node-group instance and blackholes a zone."""
    plan = loading.load_plan(PLANS / "eks-gameday.yaml")
    assert plan.target.aws is not None
    experiments = {Path(s.experiment).name for s in plan.scenarios}
    assert {"nodegroup-instance-terminate.yaml", "az-blackhole-nacl.yaml"} <= experiments


def test_gameday_configmap_plan_loads(tmp_path: Path) -> None:
    """The plan the CronJob mounts loads as the pod sees it: alone in /plans, experiments by cwd."""
    configmap = next(
        o
        for o in render(ROOT / "deploy" / "gameday")
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "gameday-plan"
    )
    ((filename, text),) = configmap["data"].items()
    (tmp_path / filename).write_text(text)
    plan = loading.load_plan(tmp_path / filename)
    assert plan.target.effective_context in plan.target.allowed_contexts
    assert plan.target.context is None, "the CronJob runs with its in-cluster ServiceAccount"
