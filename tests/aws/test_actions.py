"""The AWS experiments' actions against the emulator, through chaosaws's clients and botocore's
parameter validation: only the target node group loses instances (never the harness's own node),
SSM commands go by instance id to this cluster's running instances only, FIS experiments start
from our templates, are awaited until running and stop. The zone blackhole: test_blackhole.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from chaosaws.asg import probes as asg_probes
from chaosaws.ssm import actions as ssm_actions
from chaoslib import substitute
from chaoslib.exceptions import ActivityFailed
from chaoslib.loader import load_experiment
from kubernetes import client as k8s_client

from harness.chaos.activities import aws as activities
from tests.aws.conftest import REGION
from tests.chaos.test_catalog import fis_template

AWS_EXPERIMENTS = Path(__file__).parents[2] / "experiments" / "aws"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
AMI = "ami-12c6146b"  # one of moto's built-in images


def _config(aws: dict[str, Any], cluster: str = "prod", run: str = "run-1", **more: Any) -> dict[str, Any]:
    """What the Kubernetes target gives experiments on AWS: region, and whose marks (cluster, run)."""
    return {**aws, "harness_cluster": cluster, "harness_run_id": run, **more}


def _ec2() -> Any:
    return boto3.client("ec2", region_name=REGION)


def _network(cluster: str = "prod", cidr: str = "10.0") -> dict[str, Any]:
    """A VPC with one cluster-tagged subnet per zone, plus an untagged subnet in the first zone."""
    ec2 = _ec2()
    vpc = ec2.create_vpc(CidrBlock=f"{cidr}.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for i, zone in enumerate(ZONES):
        subnets[zone] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.{i}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        ec2.create_tags(
            Resources=[subnets[zone]], Tags=[{"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"}]
        )
    other = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.9.0/24", AvailabilityZone=ZONES[0])["Subnet"][
        "SubnetId"
    ]
    return {"vpc": vpc, "subnets": subnets, "untagged": other}


def _node(subnet: str, cluster: str, nodegroup: str, private_ip: str | None = None) -> str:
    tags = [{"Key": "eks:cluster-name", "Value": cluster}, {"Key": "eks:nodegroup-name", "Value": nodegroup}]
    more = {"PrivateIpAddress": private_ip} if private_ip else {}
    return _ec2().run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        **more,
    )["Instances"][0]["InstanceId"]


def _states() -> dict[str, str]:
    reservations = _ec2().describe_instances()["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def _private_dns(instance_id: str) -> str:
    return _ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "PrivateDnsName"
    ]


def _acl_of(subnets: list[str]) -> dict[str, str]:
    acls = _ec2().describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])
    return {a["SubnetId"]: acl["NetworkAclId"] for acl in acls["NetworkAcls"] for a in acl["Associations"]}


def _action(stem: str, func: str, folder: Path = AWS_EXPERIMENTS) -> tuple[dict[str, Any], dict[str, Any]]:
    """The experiment and its first activity calling `func` (method first: undos are there and in rollbacks)."""
    experiment = load_experiment(str(folder / f"{stem}.yaml"))
    activities_ = (
        experiment["method"] + experiment["rollbacks"] + experiment["steady-state-hypothesis"]["probes"]
    )
    activity = next(a for a in activities_ if a["provider"]["func"] == func)
    return experiment, activity


def _args(experiment: dict[str, Any], activity: dict[str, Any], **variables: Any) -> dict[str, Any]:
    """The arguments chaoslib would pass, with the plan's variables over the defaults."""
    configuration = {**experiment["configuration"], **variables}
    return substitute(activity["provider"].get("arguments", {}), configuration, {})


# --- node groups ------------------------------------------------------------------------------
class TestNodegroupInstanceTerminate:
    @pytest.fixture
    def fleet(self, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        monkeypatch.delenv(activities.HARNESS_NODE_ENV, raising=False)
        net = _network()
        nodes = {
            (ng, zone): _node(net["subnets"][zone], "prod", ng)
            for ng in ("workers-a", "workers-b")
            for zone in ZONES
        }
        # same node-group name in another cluster: the cluster tag must keep it out
        nodes[("staging", ZONES[0])] = _node(net["subnets"][ZONES[0]], "staging", "workers-a")
        return nodes

    def test_the_experiments_filters_terminate_only_the_target_node_group_in_the_zone(
        self, aws: dict[str, Any], fleet: dict[str, Any]
    ) -> None:
        """The YAML's filters, the zone set: one instance of workers-a in us-east-1a, nothing else."""
        variables = {"cluster_name": "prod", "nodegroup_name": "workers-a", "availability_zone": ZONES[0]}
        experiment, action = _action("nodegroup-instance-terminate", "terminate_node_group_instances")
        _, guard = _action("nodegroup-instance-terminate", "instance_filters_are_scoped")
        assert activities.instance_filters_are_scoped(
            **_args(experiment, guard, **variables), configuration=aws
        )
        activities.terminate_node_group_instances(**_args(experiment, action, **variables), configuration=aws)
        terminated = {i for i, s in _states().items() if s in ("shutting-down", "terminated")}
        assert terminated == {fleet[("workers-a", ZONES[0])]}

    def test_eks_gamedays_scenario_runs_and_loses_only_max_instances(
        self, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With eks-gameday's own vars (no zone, max_instances 1) and its node group spread over three
        zones: the guard lets the scenario run and exactly one instance of the group is terminated."""
        from harness.plan import loading

        monkeypatch.delenv(activities.HARNESS_NODE_ENV, raising=False)
        plan = loading.load_plan(Path(__file__).parents[2] / "experiments" / "plans" / "eks-gameday.yaml")
        (scenario,) = [s for s in plan.scenarios if Path(s.experiment).stem == "nodegroup-instance-terminate"]
        variables = dict(scenario.vars)
        net = _network(cluster=variables["cluster_name"], cidr="10.3")
        group = {
            _node(net["subnets"][z], variables["cluster_name"], variables["nodegroup_name"]) for z in ZONES
        }
        experiment, action = _action("nodegroup-instance-terminate", "terminate_node_group_instances")
        _, guard = _action("nodegroup-instance-terminate", "instance_filters_are_scoped")
        assert activities.instance_filters_are_scoped(
            **_args(experiment, guard, **variables), configuration=aws
        )
        (gone,) = activities.terminate_node_group_instances(
            **_args(experiment, action, **variables), configuration=aws
        )
        assert gone in group
        assert {i for i, s in _states().items() if s != "running"} == {gone}

    def test_the_guard_stops_what_is_unscoped_or_empty(
        self, aws: dict[str, Any], fleet: dict[str, Any]
    ) -> None:
        """Unset names match nothing and a zone alone names no node group: the guard fails, nothing is terminated."""
        experiment, guard = _action("nodegroup-instance-terminate", "instance_filters_are_scoped")
        assert not activities.instance_filters_are_scoped(**_args(experiment, guard), configuration=aws)
        zone_only = [{"Name": "availability-zone", "Values": [ZONES[0]]}]
        assert not activities.instance_filters_are_scoped(zone_only, max_instances=100, configuration=aws)
        with pytest.raises(ActivityFailed, match="refusing to select"):
            activities.terminate_node_group_instances(zone_only, configuration=aws)
        assert set(_states().values()) == {"running"}

    def test_never_the_node_the_harness_runs_on(
        self, aws: dict[str, Any], fleet: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """HARNESS_NODE_NAME names the harness's node (found by private DNS name when the API cannot
        say): of a zone's two matching instances, the other is always the one terminated; with only
        the harness's own left, the guard fails and the action refuses."""
        harness = fleet[("workers-a", ZONES[0])]
        other = _node(_network(cidr="10.1")["subnets"][ZONES[0]], "prod", "workers-a")
        monkeypatch.setenv(activities.HARNESS_NODE_ENV, _private_dns(harness))
        monkeypatch.setenv("KUBECONFIG", "/nonexistent")
        filters = [
            {"Name": "tag:eks:cluster-name", "Values": ["prod"]},
            {"Name": "tag:eks:nodegroup-name", "Values": ["workers-a"]},
        ]
        assert activities.terminate_node_group_instances(filters, ZONES[0], 5, configuration=aws) == [other]
        assert _states()[harness] == "running"
        assert not activities.instance_filters_are_scoped(filters, ZONES[0], 5, configuration=aws)
        with pytest.raises(ActivityFailed, match="other than the harness"):
            activities.terminate_node_group_instances(filters, ZONES[0], 5, configuration=aws)
        assert _states()[harness] == "running"


class TestNodegroupAsgTerminate:
    def _groups(self) -> tuple[Any, dict[str, set[str]]]:
        net = _network()
        ec2 = _ec2()
        autoscaling = boto3.client("autoscaling", region_name=REGION)
        template = ec2.create_launch_template(
            LaunchTemplateName="nodes", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.medium"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        members = {}
        for name in ("eks-workers-a", "eks-workers-b"):
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateId": template},
                MinSize=2,
                MaxSize=4,
                DesiredCapacity=2,
                VPCZoneIdentifier=",".join(net["subnets"].values()),
            )
            group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
                "AutoScalingGroups"
            ][0]
            members[name] = {i["InstanceId"] for i in group["Instances"]}
        return autoscaling, members

    def test_terminates_one_in_service_instance_of_the_named_group(
        self, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The YAML's arguments: one instance of the named group goes; the other group is untouched."""
        monkeypatch.delenv(activities.HARNESS_NODE_ENV, raising=False)
        _, members = self._groups()
        experiment, action = _action("nodegroup-asg-terminate", "terminate_asg_instances")
        _, probe = _action("nodegroup-asg-terminate", "desired_equals_healthy")
        assert asg_probes.desired_equals_healthy(
            **_args(experiment, probe, asg_name="eks-workers-a"), configuration=aws
        )
        (gone,) = activities.terminate_asg_instances(
            **_args(experiment, action, asg_name="eks-workers-a"), configuration=aws
        )
        assert gone in members["eks-workers-a"]
        states = _states()
        assert states[gone] in ("shutting-down", "terminated")
        assert all(
            states[i] == "running" for i in (members["eks-workers-a"] - {gone}) | members["eks-workers-b"]
        )

    def test_never_the_node_the_harness_runs_on(
        self, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the harness on one of the group's two instances, the other one goes, every time."""
        _, members = self._groups()
        harness, other = sorted(members["eks-workers-a"])
        monkeypatch.setenv(activities.HARNESS_NODE_ENV, _private_dns(harness))
        monkeypatch.setenv("KUBECONFIG", "/nonexistent")
        assert activities.terminate_asg_instances("eks-workers-a", 1, configuration=aws) == [other]
        assert _states()[harness] == "running"
        with pytest.raises(ActivityFailed, match="1 InService instance"):
            activities.terminate_asg_instances("eks-workers-a", 2, configuration=aws)


# --- SSM --------------------------------------------------------------------------------------------
class TestSsm:
    def test_chaosaws_send_command_needs_every_argument(self, aws: dict[str, Any]) -> None:
        """With optional arguments left out, chaosaws sends None and botocore refuses the request."""
        with pytest.raises(ParamValidationError):
            ssm_actions.send_command(
                document_name="AWS-RunShellScript",
                targets=[{"Key": "tag:role", "Values": ["control-plane"]}],
                parameters={"commands": ["true"]},
                configuration=aws,
            )

    def test_run_shell_sends_by_instance_id_and_waits_for_each(self, aws: dict[str, Any]) -> None:
        """The command names the instances, never a tag, and each invocation is awaited."""
        net = _network()
        nodes = sorted(_node(net["subnets"][z], "prod", "control-plane") for z in ZONES[:2])
        results = activities.run_shell(nodes, ["systemctl stop kubelet"], configuration=aws)
        assert {i: r["Status"] for i, r in results.items()} == dict.fromkeys(nodes, "Success")
        (sent,) = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
        assert sorted(sent["InstanceIds"]) == nodes and sent["Targets"] == []
        assert sent["Parameters"]["commands"] == ["systemctl stop kubelet"]
        assert (sent["MaxErrors"], sent["TimeoutSeconds"]) == ("0", 120)

    @pytest.mark.parametrize(
        ("restore", "value"),
        [(activities.restore_static_pods, "static-pod"), (activities.start_kubelet, "kubelet")],
        ids=["static-pods", "kubelet"],
    )
    def test_rollbacks_act_only_on_this_clusters_running_marked_instances(
        self, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, restore: Any, value: str
    ) -> None:
        """Another cluster's marked instance, a stopped one and an unmarked one are never sent a
        command nor unmarked; ours is, once, whatever run marked it."""
        monkeypatch.setenv("KUBECONFIG", "/nonexistent")  # the API server down: marks alone must do
        net = _network()
        ours, others, stopped, unmarked = (
            _node(net["subnets"][ZONES[i % 3]], "prod", "cp") for i in range(4)
        )
        ec2 = _ec2()
        fault = {"Key": activities.FAULT_TAG, "Value": value}
        mark = [
            fault,
            {"Key": activities.CLUSTER_TAG, "Value": "prod"},
            {"Key": activities.RUN_TAG, "Value": "old"},
        ]
        ec2.create_tags(Resources=[ours, stopped], Tags=mark)
        ec2.create_tags(Resources=[others], Tags=[fault, {"Key": activities.CLUSTER_TAG, "Value": "staging"}])
        ec2.stop_instances(InstanceIds=[stopped])
        config = _config(aws, run="a-new-run")
        assert restore(configuration=config) == [ours]
        assert restore(configuration=config) == []
        sent = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
        assert [c["InstanceIds"] for c in sent] == [[ours]]
        tagged = {
            t["ResourceId"]
            for t in ec2.describe_tags(Filters=[{"Name": "key", "Values": [activities.FAULT_TAG]}])["Tags"]
        }
        assert tagged == {others, stopped}
        del unmarked

    def test_the_ip_fallback_looks_only_in_the_clusters_vpc(self, aws: dict[str, Any]) -> None:
        """A node without a provider id is found by its InternalIP in the cluster's VPC only: another
        VPC with the same CIDR has an instance with the same IP. Without a VPC, it is refused."""
        ours_net, theirs_net = _network(), _network("other")
        theirs = _node(theirs_net["subnets"][ZONES[0]], "other", "cp", private_ip="10.0.0.50")
        ours = _node(ours_net["subnets"][ZONES[0]], "prod", "cp", private_ip="10.0.0.50")
        node = k8s_client.V1Node(
            metadata=k8s_client.V1ObjectMeta(name="cp-1"),
            spec=k8s_client.V1NodeSpec(),
            status=k8s_client.V1NodeStatus(
                addresses=[k8s_client.V1NodeAddress(type="InternalIP", address="10.0.0.50")]
            ),
        )
        found = activities._instance_ids_for_nodes([node], [ours_net["vpc"]], aws, None)
        assert found == {"cp-1": ours} and theirs not in found.values()
        with pytest.raises(ActivityFailed, match="give vpc_id"):
            activities._instance_ids_for_nodes([node], [], aws, None)


# --- FIS ----------------------------------------------------------------------------------------------
class TestFis:
    @pytest.mark.parametrize(
        ("stem", "template"),
        [
            ("az-disrupt-connectivity-fis", "az-disrupt-connectivity.json"),
            ("nodegroup-terminate-fis", "nodegroup-terminate.json"),
        ],
    )
    def test_template_starts_running_and_the_undo_stops_only_ours(
        self, aws: dict[str, Any], stem: str, template: str
    ) -> None:
        """Our JSON creates a template; the experiment's start returns once FIS says running, tagged
        with the cluster and run; the undo stops it, and only it."""
        fis = boto3.client("fis", region_name=REGION)
        created = fis.create_experiment_template(clientToken=f"test-{stem}", **fis_template(template))
        template_id = created["experimentTemplate"]["id"]
        someone_elses = fis.start_experiment(experimentTemplateId=template_id, tags={"owner": "someone-else"})

        experiment, start = _action(stem, "start_fis_experiment")
        _, stop = _action(stem, "stop_fis_experiments")
        ours = activities.start_fis_experiment(
            **_args(experiment, start, fis_template_id=template_id), configuration=_config(aws)
        )
        assert ours["state"]["status"] == "running"
        assert ours["tags"][activities.CLUSTER_TAG] == "prod" and ours["tags"][activities.RUN_TAG] == "run-1"
        stopped = activities.stop_fis_experiments(**_args(experiment, stop), configuration=aws)
        assert stopped == [ours["id"]]
        state = fis.get_experiment(id=ours["id"])["experiment"]["state"]["status"]
        assert state in ("stopping", "stopped")
        other = fis.get_experiment(id=someone_elses["experiment"]["id"])["experiment"]["state"]["status"]
        assert other not in ("stopping", "stopped")
        assert activities.stop_fis_experiments(**_args(experiment, stop), configuration=aws) == []

    def test_refuses_to_stop_without_tags(self, aws: dict[str, Any]) -> None:
        """No tags would select every experiment of the account."""
        with pytest.raises(ActivityFailed):
            activities.stop_fis_experiments({}, configuration=aws)
