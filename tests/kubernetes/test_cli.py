"""`harness` as an SRE runs it against a cluster: dry run, refusals before anything is touched,
and `harness cleanup --plan` after a killed run — in a separate process, against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client

from harness.chaos.activities import kubernetes as activities
from tests.aws.conftest import aws, moto_url  # noqa: F401
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters

ROOT = Path(__file__).resolve().parents[2]


def write_plan(tmp: Path, experiment: Path, context: str = "test-cluster") -> Path:
    plan = tmp / "plan.yaml"
    plan.write_text(f"""name: k8s-cli
target:
  kind: kubernetes
  context: {context}
  allowed_contexts: [test-cluster]
  namespace: {NAMESPACE}
  selector: {SELECTOR}
load: {{locustfile: {ROOT / "loadtests/subscriptions.py"}, host: "http://127.0.0.1:9", users: 1}}
scenarios:
  - name: pod-kill
    experiment: {experiment}
""")
    return plan


def harness(clusters: Clusters, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(clusters.kubeconfig)}
    env.pop("KUBERNETES_CONTEXT", None)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120, env=env
    )


def writes(requests: list[object]) -> list[str]:
    methods = [getattr(r.method, "value", r.method) for r in requests]  # type: ignore[attr-defined]
    return [str(m) for m in methods if str(m).upper() not in ("GET", "HEAD")]


class Seen:
    """The requests each emulator gets from here on (populating the clusters is not the harness's)."""

    def __init__(self, clusters: Clusters) -> None:
        self.clusters = clusters
        self.allowed0, self.production0 = len(clusters.allowed.requests), len(clusters.production.requests)

    @property
    def allowed(self) -> list[object]:
        return self.clusters.allowed.requests[self.allowed0 :]

    @property
    def production(self) -> list[object]:
        return self.clusters.production.requests[self.production0 :]


def test_dry_run_names_the_pods_a_pod_kill_may_take_and_touches_nothing(
    clusters: Clusters, tmp_path: Path
) -> None:
    plan = write_plan(tmp_path, ROOT / "experiments/kubernetes/pod-kill.yaml")
    seen = Seen(clusters)
    result = harness(clusters, "run", str(plan), "--dry-run", "--reports", str(tmp_path / "reports"))
    assert result.returncode == 0, result.stderr
    for pod in ("subs-0", "subs-1", "subs-2"):
        assert pod in result.stdout
    assert "other-0" not in result.stdout  # not selected by app=subs
    assert seen.allowed and writes(seen.allowed) == []
    assert seen.production == []
    assert not (tmp_path / "reports").exists()  # a dry run is not a run


def test_a_context_not_allowed_exits_2_before_any_request(clusters: Clusters, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, ROOT / "experiments/kubernetes/pod-kill.yaml", context="production")
    seen = Seen(clusters)
    result = harness(clusters, "run", str(plan), "--reports", str(tmp_path / "reports"))
    assert result.returncode == 2
    assert "production" in result.stderr and "allowed_contexts" in result.stderr
    assert "Traceback" not in result.stderr
    assert seen.production == [] and seen.allowed == []


def test_an_experiment_pointing_chaosk8s_elsewhere_is_refused(clusters: Clusters, tmp_path: Path) -> None:
    experiment = tmp_path / "sneaky.yaml"
    text = (ROOT / "experiments/kubernetes/pod-kill.yaml").read_text()
    experiment.write_text(text + "\nsecrets:\n  k8s:\n    KUBERNETES_CONTEXT: production\n")
    plan = write_plan(tmp_path, experiment)
    seen = Seen(clusters)
    result = harness(clusters, "run", str(plan), "--reports", str(tmp_path / "reports"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "KUBERNETES_CONTEXT" in result.stderr and str(experiment) in result.stderr
    assert seen.production == [] and writes(seen.allowed) == []


def test_cleanup_uncordons_what_a_killed_run_left_and_only_that(clusters: Clusters, tmp_path: Path) -> None:
    """A run killed during node-cordon leaves a harness-labelled cordoned node; an operator's own
    cordon on another node must survive the cleanup."""
    with clusters.allowed.api() as api:
        core = k8s_client.CoreV1Api(api)
        core.patch_node("node-a", {"metadata": {"labels": {activities.CORDONED: "true"}},
                                   "spec": {"unschedulable": True}})  # fmt: skip
        core.patch_node("node-b", {"spec": {"unschedulable": True}})
    plan = write_plan(tmp_path, ROOT / "experiments/kubernetes/pod-kill.yaml")
    seen = Seen(clusters)
    result = harness(clusters, "cleanup", "--plan", str(plan))
    assert result.returncode == 0, result.stderr
    assert "node-a" in result.stdout and "node-b" not in result.stdout
    with clusters.allowed.api() as api:
        nodes = {n.metadata.name: n for n in k8s_client.CoreV1Api(api).list_node().items}
    assert not nodes["node-a"].spec.unschedulable
    assert activities.CORDONED not in (nodes["node-a"].metadata.labels or {})
    assert nodes["node-b"].spec.unschedulable
    assert seen.production == []


def cluster_subnet(ec2: Any, cidr: str, zone: str) -> tuple[str, Callable[[], str]]:
    """A subnet tagged for cluster `prod` in its own VPC, and a function reading its network ACL."""
    vpc = ec2.create_vpc(CidrBlock=cidr.replace(".1.0/24", ".0.0/16"))["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[subnet], Tags=[{"Key": "kubernetes.io/cluster/prod", "Value": "owned"}])

    def acl() -> str:
        found = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
        return found["NetworkAcls"][0]["NetworkAclId"]

    return subnet, acl


def blackhole_plan(tmp_path: Path, zone: str) -> Path:
    """A plan of the AZ blackhole experiment for cluster `prod` in `zone`, with AWS settings."""
    plan = write_plan(tmp_path, ROOT / "experiments/aws/az-blackhole-nacl.yaml")
    text = plan.read_text().replace("  selector:", "  aws: {region: us-east-1}\n  selector:")
    text += f"    vars: {{cluster_name: prod, availability_zone: {zone}, deployment_name: subs}}\n"
    plan.write_text(text)
    return plan


def test_cleanup_runs_the_rollbacks_heal_cannot_see(clusters: Clusters, aws: dict, tmp_path: Path) -> None:  # noqa: F811
    """A run killed during the AZ blackhole leaves the zone's subnets on a deny-all ACL: `harness
    cleanup --plan` restores them (heal() finds the cluster's marked ACL), then runs the
    experiment's rollbacks, which find nothing more to do."""
    import boto3

    from harness.chaos.activities import aws as aws_activities

    ec2 = boto3.client("ec2", region_name=aws["aws_region"])
    subnet, acl = cluster_subnet(ec2, "10.0.1.0/24", "us-east-1a")

    before = acl()
    run = {**aws, "harness_cluster": "test-cluster", "harness_run_id": "killed"}  # as the target marks it
    hole = aws_activities.blackhole_availability_zone("us-east-1a", cluster_name="prod", configuration=run)
    (blackhole,) = hole["network_acls"]
    assert acl() == blackhole != before  # the run is "killed" here, before its rollback

    plan = blackhole_plan(tmp_path, "us-east-1a")
    result = harness(clusters, "cleanup", "--plan", str(plan))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"restored the network ACL of subnet(s) {subnet} left blackholed" in result.stdout
    assert "rollback 'restore-the-zone-subnets-acls' succeeded" in result.stdout
    assert acl() == before
    remaining = {a["NetworkAclId"] for a in ec2.describe_network_acls()["NetworkAcls"]}
    assert blackhole not in remaining

    again = harness(clusters, "cleanup", "--plan", str(plan))  # nothing left: still clean, still 0
    assert again.returncode == 0, again.stdout + again.stderr
    assert acl() == before


def test_cleanup_takes_the_cluster_name_the_killed_run_used(
    clusters: Clusters,
    aws: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A run under `--cluster eks-prod` marks its faults with that name; `harness cleanup --plan`
    without it looks for the context's marks and leaves the other cluster's alone, and with
    `--cluster eks-prod` restores them."""
    import boto3

    from harness.chaos.activities import aws as aws_activities

    ec2 = boto3.client("ec2", region_name=aws["aws_region"])
    _subnet, acl = cluster_subnet(ec2, "10.1.1.0/24", "us-east-1b")

    before = acl()
    run = {**aws, "harness_cluster": "eks-prod", "harness_run_id": "killed"}
    aws_activities.blackhole_availability_zone("us-east-1b", cluster_name="prod", configuration=run)
    assert acl() != before

    plan = blackhole_plan(tmp_path, "us-east-1b")
    other = harness(clusters, "cleanup", "--plan", str(plan))
    assert other.returncode == 0, other.stdout + other.stderr
    assert acl() != before, "another cluster's marks are not this cleanup's to undo"
    named = harness(clusters, "cleanup", "--plan", str(plan), "--cluster", "eks-prod")
    assert named.returncode == 0, named.stdout + named.stderr
    assert acl() == before
