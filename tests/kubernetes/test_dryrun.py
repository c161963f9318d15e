"""The dry run against the kmock emulator and moto: what each activity would touch, with reads only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client as k8s_client

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
        action("ours", "harness.chaos.activities.kubernetes", "deny_pod_traffic", label_selector="${label_selector}",
               ns="${namespace}"),
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
    ours = by_name["ours"]
    assert ours["unknown"] is None and len(ours["touches"]) == 3
    assert (
        ours["selection"]
        == f"network policy resilience-harness-deny-ingress selecting app=subs in {NAMESPACE}: 3 pod(s)"
    )
    text = dryrun.render(entries)
    assert "scenario mixed" in text and "- pod subs-1 (namespace=shop, node=node-b)" in text


def test_the_catalog_pod_kill_is_resolved(clusters: Clusters, tmp_path: Path) -> None:
    """The bundled pod-kill experiment: its method names the service's pods, then waits (reads only),
    as does its rollback."""
    if not CATALOG_POD_KILL.exists():
        pytest.skip("experiments/kubernetes/pod-kill.yaml is not in this checkout")
    plan_path = write(tmp_path, {})
    plan = yaml.safe_load(plan_path.read_text())
    plan["scenarios"] = [{"name": "pod-kill", "experiment": str(CATALOG_POD_KILL)}]
    plan_path.write_text(yaml.safe_dump(plan))
    entries = dryrun.dry_run(loading.load_plan(plan_path))
    method = [e for e in entries if e["section"] == "method"]
    assert [len(e["touches"]) for e in method] == [3, 0]
    assert method[0]["selection"] == f"pods 'app=subs' in {NAMESPACE}: 1 of 3, at random, deleted"
    (wait,) = [e for e in entries if e["section"] == "rollbacks"]
    for waits in (method[1], wait):
        assert (
            waits["unknown"] is None
            and waits["touches"] == []
            and waits["selection"].startswith("reads only")
        )


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


CATALOG = sorted((ROOT / "experiments" / "kubernetes").glob("*.yaml")) + sorted(
    (ROOT / "experiments" / "aws").glob("*.yaml")
)
CLUSTER = "demo"


def seed_aws(region: str) -> dict[str, Any]:
    """An EKS-like account: three workers (one per zone) in an ASG's tags, the cluster's subnet, an FIS template."""
    ec2 = boto3.client("ec2", region_name=region)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = [{"Key": "eks:cluster-name", "Value": CLUSTER}, {"Key": "eks:nodegroup-name", "Value": "workers"}]
    instances = {}
    for zone in ("a", "b", "c"):
        reservation = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                        Placement={"AvailabilityZone": f"{region}{zone}"},
                                        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])  # fmt: skip
        instances[zone] = reservation["Instances"][0]["InstanceId"]
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=f"{region}a", TagSpecifications=[
        {"ResourceType": "subnet", "Tags": [{"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "shared"}]}])  # fmt: skip
    asg = boto3.client("autoscaling", region_name=region)
    asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=image, InstanceType="t3.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName="workers-asg", LaunchConfigurationName="lc", MinSize=2,
                                  MaxSize=2, AvailabilityZones=[f"{region}a"])  # fmt: skip
    template = boto3.client("fis", region_name=region).create_experiment_template(
        description="terminate one worker", roleArn="arn:aws:iam::123456789012:role/fis",
        stopConditions=[{"source": "none"}],
        targets={"workers": {"resourceType": "aws:ec2:instance", "selectionMode": "COUNT(1)",
                             "resourceTags": {"eks:cluster-name": CLUSTER}}},
        actions={"terminate": {"actionId": "aws:ec2:terminate-instances", "targets": {"Instances": "workers"}}},
    )["experimentTemplate"]["id"]  # fmt: skip
    return {"instances": instances, "template": template}


def test_every_catalog_action_is_resolved_with_reads_only(
    clusters: Clusters,
    aws: dict[str, Any],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    """Every method and rollback action of experiments/kubernetes and experiments/aws says what it would
    touch (no "unknown"); the cluster saw only GETs and every instance is still running."""
    region = aws["aws_region"]
    seeded = seed_aws(region)
    with clusters.allowed.api() as api:  # the cluster as EKS shows it: nodes named after their instances
        core, apps = k8s_client.CoreV1Api(api), k8s_client.AppsV1Api(api)
        for zone, iid in seeded["instances"].items():
            core.patch_node(f"node-{zone}", {"spec": {"providerID": f"aws:///{region}{zone}/{iid}"}})
        core.patch_node("node-c", {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}})
        apps.create_namespaced_deployment("kube-system", {
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                     "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                                  "spec": {"containers": [{"name": "coredns", "image": "coredns"}]}}}})  # fmt: skip
    scenario_vars = {"cluster_name": CLUSTER, "nodegroup_name": "workers", "availability_zone": f"{region}a",
                     "asg_name": "workers-asg", "fis_template_id": seeded["template"]}  # fmt: skip
    plan_path = write(tmp_path, {}, aws_region=region)
    plan = yaml.safe_load(plan_path.read_text())
    plan["scenarios"] = [{"name": f"{f.parent.name}-{f.stem}", "experiment": str(f),
                          "vars": {k: v for k, v in scenario_vars.items() if k in yaml.safe_load(
                              f.read_text())["configuration"]}} for f in CATALOG]  # fmt: skip
    plan_path.write_text(yaml.safe_dump(plan))

    before = len(clusters.allowed.requests)
    entries = dryrun.dry_run(loading.load_plan(plan_path))
    sent = clusters.allowed.requests[before:]

    assert {e["scenario"] for e in entries} == {f"{f.parent.name}-{f.stem}" for f in CATALOG}
    assert [f"{e['scenario']}: {e['unknown']}" for e in entries if e["unknown"]] == []
    assert sent and {r.method.value for r in sent} == {"GET"}, "a dry run only reads"
    ec2 = boto3.client("ec2", region_name=region)
    states = [i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(states) == 5 and set(states) == {"running"}, "three workers and the ASG's two, untouched"
    acls = ec2.describe_network_acls(
        Filters=[{"Name": "tag-key", "Values": ["resilience-harness:blackhole"]}]
    )
    assert acls["NetworkAcls"] == [], "no blackhole ACL was created"

    def entry(scenario: str, section: str = "method") -> dict[str, Any]:
        return next(e for e in entries if e["scenario"] == scenario and e["section"] == section)

    drain = entry("kubernetes-node-drain")
    assert {t["name"] for t in drain["touches"] if t["kind"] == "node"} == {"node-a", "node-b", "node-c"}
    assert "drained" in drain["selection"] and {t["name"] for t in drain["touches"] if t["kind"] == "pod"} >= {
        "subs-1", "subs-2"}  # fmt: skip
    (never,) = [t for t in drain["touches"] if t.get("never")]
    assert never["name"] == "node-a" and "other-0" in never["never"], "other-0 has no controller"
    assert [t["name"] for t in entry("kubernetes-dns-disruption")["touches"]] == ["coredns"]
    assert entry("kubernetes-network-deny-egress", "rollbacks")["selection"].endswith("nothing to delete")
    kubelet = entry("kubernetes-node-loss-ssm")["touches"]
    assert {(t["id"], t["state"]) for t in kubelet} == {(i, "running") for i in seeded["instances"].values()}
    (apiserver,) = entry("kubernetes-apiserver-stop")["touches"]
    assert apiserver["id"] == seeded["instances"]["c"] and apiserver["node"] == "node-c"
    blackhole = entry("aws-az-blackhole-nacl")
    assert [t["kind"] for t in blackhole["touches"]] == ["subnet"] and blackhole["touches"][0]["network_acl"]
    fis = entry("aws-nodegroup-terminate-fis")["touches"]
    assert [(t["kind"], t["name"]) for t in fis] == [("fis_action", "terminate"), ("fis_target", "workers")]
    assert len(entry("aws-nodegroup-instance-terminate")["touches"]) == 1, "the zone's worker only"
    text = dryrun.render(entries)
    assert "unknown" not in text


def test_the_harness_node_and_undrainable_nodes_are_shown_as_never(
    clusters: Clusters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drain names node-a (an unowned pod) and the harness's own node as never touched; node-cordon's
    delete names only the pods on the nodes the harness cordoned."""
    monkeypatch.setenv("HARNESS_NODE_NAME", "node-c")
    k8s = "harness.chaos.activities.kubernetes"
    exp = experiment(
        action("drain", k8s, "cordon_nodes_hosting", label_selector="${label_selector}", ns="${namespace}",
               drain=True),
        action("delete", k8s, "terminate_service_pods", label_selector="${label_selector}", ns="${namespace}",
               on_cordoned_nodes=True),
    )  # fmt: skip
    with clusters.allowed.api() as api:
        k8s_client.CoreV1Api(api).patch_node(
            "node-b", {"metadata": {"labels": {"resilience-harness.io/cordoned": "true"}}}
        )
    entries = dryrun.dry_run(loading.load_plan(write(tmp_path, {"never": exp})))
    drain, delete = [e for e in entries if e["section"] == "method"]
    never = {t["name"]: t["never"] for t in drain["touches"] if t.get("never")}
    assert set(never) == {"node-a", "node-c"} and "HARNESS_NODE_NAME" in never["node-c"]
    assert [t["name"] for t in delete["touches"]] == ["subs-1"], "the pod on the cordoned node-b only"
    assert "node-b" in delete["selection"]
