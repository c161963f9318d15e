"""What a scenario requires of its target (`requires`): validated in the plan, judged against the
target's facts (harness.plan.applicability), and warned about when an experiment needs it and the
scenario does not say so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.plan import applicability, lint, loading, models

ROOT = Path(__file__).resolve().parents[2]
ETCD_STOP = ROOT / "experiments/kubernetes/etcd-member-stop.yaml"
SELF_MANAGED = "self-managed-control-plane"


def cluster_plan(tmp_path: Path, requires: str | None, experiment: Path = ETCD_STOP) -> Path:
    path = tmp_path / "plan.yaml"
    lines = [
        "name: t",
        "target: {kind: kubernetes, context: c, allowed_contexts: [c], selector: app=subs}",
        f"load: {{locustfile: {ROOT / 'loadtests/subscriptions.py'}, host: 'http://subs.example'}}",
        "scenarios:",
        "  - name: etcd-member-stop",
        f"    experiment: {experiment}",
    ]
    if requires is not None:
        lines.append(f"    requires: {requires}")
    path.write_text("\n".join(lines) + "\n")
    return path


class TestValidation:
    def test_the_requirement_is_read(self, tmp_path: Path) -> None:
        """`requires: [self-managed-control-plane]` loads as the Requirement; none means no requirement."""
        plan = loading.load_plan(cluster_plan(tmp_path, f"[{SELF_MANAGED}]"))
        assert plan.scenarios[0].requires == [models.Requirement.SELF_MANAGED_CONTROL_PLANE]
        assert loading.load_plan(cluster_plan(tmp_path, None)).scenarios[0].requires == []

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("[self-managed]", "scenarios.0.requires.0: unknown requirement 'self-managed'; "
             "expected one of: self-managed-control-plane"),
            ("[3]", "scenarios.0.requires.0: unknown requirement 3; expected one of: self-managed-control-plane"),
            (SELF_MANAGED, "scenarios.0.requires: expected a list (got 'self-managed-control-plane')"),
            (f"[{SELF_MANAGED}, {SELF_MANAGED}]",
             "scenarios.0.requires.1: 'self-managed-control-plane' is listed twice"),
        ],
        ids=["unknown", "not-a-string", "not-a-list", "twice"],
    )  # fmt: skip
    def test_bad_values_name_file_line_and_the_accepted_values(
        self, tmp_path: Path, value: str, message: str
    ) -> None:
        """A wrong requirement is a plan error at the `requires` line (exit 2)."""
        path = cluster_plan(tmp_path, value)
        with pytest.raises(loading.PlanError) as caught:
            loading.load_plan(path)
        assert f"{path}:7: {message}" in str(caught.value)
        assert caught.value.exit_code == 2

    def test_harness_validate_exits_2_without_a_traceback(self, tmp_path: Path) -> None:
        """The CLI prints the problem with file and line and exits 2."""
        path = cluster_plan(tmp_path, "[managed-control-plane]")
        done = subprocess.run(
            [sys.executable, "-m", "harness", "validate", str(path)],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 2
        assert f"{path}:7: scenarios.0.requires.0: unknown requirement 'managed-control-plane'" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout


class TestApplicability:
    @pytest.mark.parametrize(
        ("facts", "reason"),
        [
            ({"kind": "kubernetes", "provider": "eks"}, "managed control plane: eks runs etcd"),
            ({"kind": "kubernetes", "provider": "gke"}, "managed control plane: gke runs etcd"),
            ({"kind": "kubernetes", "provider": "aks"}, "managed control plane: aks runs etcd"),
            ({"kind": "kubernetes", "provider": "self-managed", "control_plane": "managed/not visible"},
             "managed control plane: no control-plane node or static pod is visible"),
            ({"kind": "kubernetes", "provider": "self-managed", "control_plane": {"nodes": ["cp-1"]}}, None),
            ({"kind": "kubernetes", "provider": "self-managed", "control_plane": None}, None),
            ({"kind": "kubernetes", "provider": None}, None),
            ({"kind": "testbed", "profile": "self-managed"}, None),
            ({"kind": "testbed", "profile": "managed"}, None),
        ],
        ids=["eks", "gke", "aks", "hidden", "kubeadm", "kube-system-unreadable", "unknown", "testbed-sm",
             "testbed-managed"],
    )  # fmt: skip
    def test_from_the_facts(self, facts: dict[str, Any], reason: str | None) -> None:
        """Managed providers, or a control plane nobody can see, do not offer it; a visible or
        unknown control plane, and the testbed's in both profiles, do."""
        found = applicability.not_applicable([models.Requirement.SELF_MANAGED_CONTROL_PLANE], facts)
        if reason is None:
            assert found is None
        else:
            assert found is not None and found.startswith(reason)
            assert found.endswith("the scenario requires self-managed-control-plane")
            assert applicability.label(found) == "not applicable (managed control plane)"

    def test_no_requirement_applies_everywhere(self) -> None:
        """A scenario that requires nothing runs on a managed control plane too."""
        assert applicability.not_applicable([], {"kind": "kubernetes", "provider": "eks"}) is None


class TestLint:
    def test_a_self_managed_experiment_without_the_requirement_is_warned_about(self, tmp_path: Path) -> None:
        """etcd-member-stop is tagged self-managed: without `requires` it would fail on EKS."""
        path = cluster_plan(tmp_path, None)
        (warning,) = lint.plan_warnings(path)
        assert warning.line == 6
        assert "etcd-member-stop.yaml acts on a self-managed control plane's hosts" in str(warning)
        assert f"requires: [{SELF_MANAGED}]" in str(warning)

    def test_declared_or_not_needed_is_quiet(self, tmp_path: Path) -> None:
        """With the requirement, or for an experiment through the Kubernetes API, no warning."""
        assert lint.plan_warnings(cluster_plan(tmp_path, f"[{SELF_MANAGED}]")) == []
        pod_kill = ROOT / "experiments/kubernetes/pod-kill.yaml"
        assert lint.plan_warnings(cluster_plan(tmp_path, None, pod_kill)) == []


def test_the_bundled_plans_validate_and_the_benchmark_declares_it() -> None:
    """Every bundled plan validates without warnings about requirements; cluster-benchmark's
    control-plane stops declare theirs."""
    for path in sorted((ROOT / "experiments/plans").glob("*.yaml")):
        loading.load_plan(path)
        assert not [w for w in lint.plan_warnings(path) if "requires" in str(w)], path
    plan = loading.load_plan(ROOT / "experiments/plans/cluster-benchmark.yaml")
    required = {s.name: s.trials for s in plan.scenarios if s.requires}
    assert required == {"etcd-member-stop": 5, "apiserver-stop": 5}
