"""Plan warnings (harness.plan.lint) and `--cluster`: what `harness validate` and `harness run`
tell the user about a plan that is valid but would mislead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.plan import lint, loading

ROOT = Path(__file__).resolve().parents[2]

PLAN = """\
name: workstation
target:
  kind: kubernetes
  context: staging
  allowed_contexts: [staging]
  namespace: subs
  selector: app=subs
load:
  locustfile: {root}/loadtests/subscriptions.py
  host: {host}
scenarios:
  - name: pod-kill
    experiment: {root}/experiments/kubernetes/pod-kill.yaml
"""


def write_plan(folder: Path, host: str, kind: str = "kubernetes") -> Path:
    text = PLAN.format(root=ROOT, host=host)
    if kind == "testbed":
        text = text.replace(
            "  kind: kubernetes\n  context: staging\n  allowed_contexts: [staging]\n  namespace: subs\n"
            "  selector: app=subs\n",
            "  kind: testbed\n",
        ).replace("experiments/kubernetes/pod-kill.yaml", "experiments/local/replica-kill.yaml")
    path = folder / "plan.yaml"
    path.write_text(text)
    return path


def harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:8080",
        "http://127.3.4.5",
        "http://localhost:8080",
        "http://LOCALHOST.",
        "https://[::1]:8443",
        "http://subs.localhost",
        "http://[::ffff:127.0.0.1]:8080",
    ],
)
def test_loopback_host_of_a_kubernetes_plan_warns_at_its_line(tmp_path: Path, host: str) -> None:
    """A port-forward's address is flagged at the line of load.host, with why."""
    path = write_plan(tmp_path, host)
    (warning,) = lint.plan_warnings(path)
    assert (warning.path, warning.line) == (path, 10)
    assert "port-forward" in warning.message and "one pod" in warning.message
    assert "LoadBalancer" in warning.message


@pytest.mark.parametrize(
    "host",
    ["http://subs.subs.svc.cluster.local", "http://10.0.0.5:8080", "http://128.0.0.1", "http://localhostx"],
)
def test_reachable_hosts_do_not_warn(tmp_path: Path, host: str) -> None:
    """A cluster DNS name, a LoadBalancer's address: nothing to say."""
    assert lint.plan_warnings(write_plan(tmp_path, host)) == []


def test_the_testbed_on_loopback_does_not_warn(tmp_path: Path) -> None:
    """The testbed runs on this machine: loopback is where it is."""
    assert lint.plan_warnings(write_plan(tmp_path, "http://127.0.0.1:8000", kind="testbed")) == []


def test_bundled_plans_do_not_warn() -> None:
    """The shipped plans send load to the Service's cluster DNS name."""
    for path in loading.bundled_plans():
        assert lint.plan_warnings(path) == [], path


def test_validate_prints_the_warning_and_passes(tmp_path: Path) -> None:
    """`harness validate`: valid (exit 0), and the warning on stderr with file:line."""
    path = write_plan(tmp_path, "http://127.0.0.1:8080")
    result = harness("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: valid plan" in result.stdout
    assert f"warning: {path}:10: load.host: 'http://127.0.0.1:8080'" in " ".join(result.stderr.split())


def test_run_prints_the_warning_before_anything_else(tmp_path: Path) -> None:
    """`harness run` warns before it connects; here the context is not in the (empty) kubeconfig,
    so it then stops with exit 2 having touched nothing."""
    path = write_plan(tmp_path, "http://localhost:8080")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
    result = harness("run", str(path), "--dry-run", "--reports", str(tmp_path / "reports"), env=env)
    stderr = " ".join(result.stderr.split())
    assert f"warning: {path}:10: load.host:" in stderr
    assert stderr.index("warning:") < stderr.index("error:")
    assert result.returncode == 2


class TestCluster:
    def test_with_cluster_sets_the_history_name(self, tmp_path: Path) -> None:
        """One plan, two clusters: two names, and nothing else differs."""
        plan = loading.load_plan(write_plan(tmp_path, "http://subs.example"))
        eks, own = plan.with_cluster("eks"), plan.with_cluster("self-managed")
        assert (eks.target.cluster, own.target.cluster) == ("eks", "self-managed")
        assert (
            eks.model_dump(exclude={"target"})
            == own.model_dump(exclude={"target"})
            == plan.model_dump(exclude={"target"})
        )

    @pytest.mark.parametrize("name", ["$(HARNESS_CLUSTER)", "EKS", ""])
    def test_a_bad_name_is_refused(self, tmp_path: Path, name: str) -> None:
        """A name that is not a slug (an unexpanded $(VAR) too) is refused as the plan's would be."""
        plan = loading.load_plan(write_plan(tmp_path, "http://subs.example"))
        with pytest.raises(ValueError, match="slug"):
            plan.with_cluster(name)

    def test_run_refuses_cluster_for_the_testbed(self, tmp_path: Path) -> None:
        """--cluster names a Kubernetes cluster: on a testbed plan it is an input error, exit 2."""
        path = write_plan(tmp_path, "auto", kind="testbed")
        result = harness("run", str(path), "--cluster", "eks", "--reports", str(tmp_path / "reports"))
        assert result.returncode == 2
        assert "--cluster 'eks': a testbed target has no cluster name" in " ".join(result.stderr.split())
