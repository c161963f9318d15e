"""The dry run against the kmock emulator and moto: what each activity would touch, with reads only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from harness.errors import InputError
from harness.kubernetes import dryrun
from harness.plan import loading
from tests.aws.conftest import aws, moto_url  # noqa: F401  (fixtures)
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters

ROOT = Path(__file__).parents[2]
CATALOG_POD_KILL = ROOT / "experiments" / "kubernetes" / "pod-kill.yaml"


def action(title: str, module: str, func: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "action", "name": title,
            "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}}  # fmt: skip


def write(tmp: Path, experiments: dict[str, dict[str, Any]], context: str = "test-cluster",
          aws_region: str | None = None) -> Path:  # fmt: skip
    (tmp / "locustfile.py").write_text("")
    scenarios = []
    for name, body in experiments.items():
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body))
        scenarios.append({"name": name, "experiment": str(path), "vars": {"zone": "eu-west-1a"}})
    target: dict[str, Any] = {"kind": "kubernetes", "context": context, "allowed_contexts": ["test-cluster"],
                              "namespace": NAMESPACE, "selector": SELECTOR}  # fmt: skip
    if aws_region:
        target["aws"] = {"region": aws_region}
    plan = {"name": "dry", "target": target, "scenarios": scenarios,
            "load": {"locustfile": str(tmp / "locustfile.py"), "host": "http://127.0.0.1:9"}}  # fmt: skip
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def experiment(*method: dict[str, Any], rollbacks: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"title": "t", "description": "d", "configuration": {"zone": "unset"},
            "method": list(method), "rollbacks": list(rollbacks)}  # fmt: skip


def test_kubernetes_activities_are_resolved_without_a_write(clusters: Clusters, tmp_path: Path) -> None:
    """Pods, nodes, deployment and policy targets are found with GETs only; ${...} is substituted."""
    exp = experiment(
        action("kill", "chaosk8s.pod.actions", "terminate_pods", label_selector="${label_selector}",
               ns="${namespace}", qty=1, rand=True),
        action("cordon", "chaosk8s.node.actions", "cordon_node",
               label_selector="topology.kubernetes.io/zone=${zone}"),
        action("scale", "chaosk8s.deployment.actions", "scale_deployment", name="subs", replicas=1,
               ns="${namespace}"),
        action("deny", "chaosk8s.networking.actions", "deny_all_ingress", label_selectors={"app": "subs"},
               ns="${namespace}"),
        action("ours", "harness.chaos.activities.kubernetes", "deny_pod_traffic", label_selector="${label_selector}"),
        rollbacks=(action("uncordon", "chaosk8s.node.actions", "uncordon_node",
                          label_selector="topology.kubernetes.io/zone=${zone}"),),
    )  # fmt: skip
    plan = loading.load_plan(write(tmp_path, {"mixed": exp}))
    before = len(clusters.allowed.requests)
    entries = dryrun.dry_run(plan)
    sent = clusters.allowed.requests[before:]
    assert sent and all(r.method.value == "GET" for r in sent), "a dry run only reads"

    by_name = {e["name"]: e for e in entries}
    kill = by_name["kill"]
    assert kill["call"] == "chaosk8s.pod.actions.terminate_pods"
    assert kill["arguments"]["label_selector"] == SELECTOR and kill["arguments"]["ns"] == NAMESPACE
    assert sorted((t["name"], t["node"]) for t in kill["touches"]) == [
        ("subs-0", "node-a"), ("subs-1", "node-b"), ("subs-2", "node-c")]  # fmt: skip
    assert kill["selection"] == f"pods in {NAMESPACE}: 1 of 3, at random"
    assert [t["name"] for t in by_name["cordon"]["touches"]] == ["node-a"], (
        "the scenario var beat the default"
    )
    assert by_name["uncordon"]["section"] == "rollbacks"
    assert [(t["name"], t["replicas"]) for t in by_name["scale"]["touches"]] == [("subs", 3)]
    assert len(by_name["deny"]["touches"]) == 3 and "app=subs" in by_name["deny"]["selection"]
    assert by_name["ours"]["unknown"].startswith(
        "unknown: would call harness.chaos.activities.kubernetes.deny_pod_traffic(label_selector='app=subs'"
    )
    text = dryrun.render(entries)
    assert "scenario mixed" in text and "- pod subs-1 (namespace=shop, node=node-b)" in text


def test_the_catalog_pod_kill_is_resolved(clusters: Clusters, tmp_path: Path) -> None:
    """The bundled pod-kill experiment: its method names the service's pods, its rollback is ours."""
    if not CATALOG_POD_KILL.exists():
        pytest.skip("experiments/kubernetes/pod-kill.yaml is not in this checkout")
    plan_path = write(tmp_path, {})
    plan = yaml.safe_load(plan_path.read_text())
    plan["scenarios"] = [{"name": "pod-kill", "experiment": str(CATALOG_POD_KILL)}]
    plan_path.write_text(yaml.safe_dump(plan))
    entries = dryrun.dry_run(loading.load_plan(plan_path))
    method = [e for e in entries if e["section"] == "method"]
    assert [len(e["touches"]) for e in method] == [3]
    assert all(e["unknown"] for e in entries if e["section"] == "rollbacks")


def test_aws_activities_are_resolved_with_describe_calls(
    clusters: Clusters,
    aws: dict[str, Any],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    """EC2 filters and ASG names become the instances they match, read from the emulator."""
    ec2 = boto3.client("ec2", region_name=aws["aws_region"])
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t3.micro", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "worker"}]}])  # fmt: skip
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    asg = boto3.client("autoscaling", region_name=aws["aws_region"])
    asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=image, InstanceType="t3.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName="workers", LaunchConfigurationName="lc", MinSize=2,
                                  MaxSize=2, AvailabilityZones=[f"{aws['aws_region']}a"])  # fmt: skip
    exp = experiment(
        action("stop", "chaosaws.ec2.actions", "stop_instances",
               filters=[{"Name": "tag:role", "Values": ["worker"]}]),
        action("asg", "chaosaws.asg.actions", "terminate_random_instances", asg_names=["workers"],
               instance_count=1),
    )  # fmt: skip
    plan = loading.load_plan(write(tmp_path, {"aws": exp}, aws_region=aws["aws_region"]))
    entries = {e["name"]: e for e in dryrun.dry_run(plan)}
    stop = entries["stop"]
    assert len(stop["touches"]) == 2 and all(t["tags"] == {"role": "worker"} for t in stop["touches"])
    assert all(t["state"] == "running" for t in stop["touches"])
    assert len(entries["asg"]["touches"]) == 2 and entries["asg"]["selection"].endswith("1 of 2 at random")
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    assert sum(len(r["Instances"]) for r in running["Reservations"]) == 5, "nothing was stopped"


def test_a_context_not_allowed_is_refused_before_reading(clusters: Clusters, tmp_path: Path) -> None:
    """The dry run goes through the same allowed-context check."""
    from harness.plan.models import Plan

    plan = Plan.model_validate(yaml.safe_load(write(tmp_path, {"x": experiment()}).read_text()))
    bad = plan.model_copy(update={"target": plan.target.model_copy(update={"context": "production"})})
    before = len(clusters.production.requests)
    with pytest.raises(InputError, match="not in allowed_contexts"):
        dryrun.dry_run(bad)
    assert len(clusters.production.requests) == before
