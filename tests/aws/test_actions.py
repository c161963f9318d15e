"""The AWS experiments' actions against the emulator, through chaosaws's clients and botocore's
parameter validation: only the target node group loses instances, the zone blackhole is undone
exactly, SSM commands carry every argument, FIS experiments start from our templates and stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from chaosaws.asg import actions as asg_actions
from chaosaws.asg import probes as asg_probes
from chaosaws.ec2 import actions as ec2_actions
from chaosaws.fis import actions as fis_actions
from chaosaws.ssm import actions as ssm_actions
from chaoslib import substitute
from chaoslib.exceptions import ActivityFailed
from chaoslib.loader import load_experiment

from harness.chaos.activities import aws as activities
from tests.aws.conftest import REGION
from tests.chaos.test_catalog import fis_template

AWS_EXPERIMENTS = Path(__file__).parents[2] / "experiments" / "aws"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
AMI = "ami-12c6146b"  # one of moto's built-in images


def _ec2() -> Any:
    return boto3.client("ec2", region_name=REGION)


def _network(cluster: str = "prod") -> dict[str, Any]:
    """A VPC with one cluster-tagged subnet per zone, plus an untagged subnet in the first zone."""
    ec2 = _ec2()
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for i, zone in enumerate(ZONES):
        subnets[zone] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        ec2.create_tags(
            Resources=[subnets[zone]], Tags=[{"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"}]
        )
    other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.9.0/24", AvailabilityZone=ZONES[0])["Subnet"][
        "SubnetId"
    ]
    return {"vpc": vpc, "subnets": subnets, "untagged": other}


def _node(subnet: str, cluster: str, nodegroup: str) -> str:
    tags = [{"Key": "eks:cluster-name", "Value": cluster}, {"Key": "eks:nodegroup-name", "Value": nodegroup}]
    return _ec2().run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]


def _states() -> dict[str, str]:
    reservations = _ec2().describe_instances()["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def _acl_of(subnets: list[str]) -> dict[str, str]:
    acls = _ec2().describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])
    return {a["SubnetId"]: acl["NetworkAclId"] for acl in acls["NetworkAcls"] for a in acl["Associations"]}


def _action(stem: str, func: str) -> tuple[dict[str, Any], dict[str, Any]]:
    experiment = load_experiment(str(AWS_EXPERIMENTS / f"{stem}.yaml"))
    activities_ = (
        experiment["method"] + experiment["rollbacks"] + experiment["steady-state-hypothesis"]["probes"]
    )
    (activity,) = [a for a in activities_ if a["provider"]["func"] == func]
    return experiment, activity


def _args(experiment: dict[str, Any], activity: dict[str, Any], **variables: Any) -> dict[str, Any]:
    """The arguments chaoslib would pass, with the plan's variables over the defaults."""
    configuration = {**experiment["configuration"], **variables}
    return substitute(activity["provider"].get("arguments", {}), configuration, {})


# --- node groups ------------------------------------------------------------------------------
class TestNodegroupInstanceTerminate:
    @pytest.fixture
    def fleet(self, aws: dict[str, Any]) -> dict[str, Any]:
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
        experiment, action = _action("nodegroup-instance-terminate", "terminate_instances")
        _, guard = _action("nodegroup-instance-terminate", "instance_filters_are_scoped")
        assert activities.instance_filters_are_scoped(
            **_args(experiment, guard, **variables), configuration=aws
        )
        ec2_actions.terminate_instances(**_args(experiment, action, **variables), configuration=aws)
        terminated = {i for i, s in _states().items() if s in ("shutting-down", "terminated")}
        assert terminated == {fleet[("workers-a", ZONES[0])]}

    def test_the_guard_stops_what_would_be_too_wide_or_empty(
        self, aws: dict[str, Any], fleet: dict[str, Any]
    ) -> None:
        """Without a zone the node group has three instances (more than max_instances 1); unset names match none."""
        experiment, guard = _action("nodegroup-instance-terminate", "instance_filters_are_scoped")
        whole_group = _args(experiment, guard, cluster_name="prod", nodegroup_name="workers-a")
        assert not activities.instance_filters_are_scoped(**whole_group, configuration=aws)
        assert not activities.instance_filters_are_scoped(**_args(experiment, guard), configuration=aws)
        zone_only = [{"Name": "availability-zone", "Values": [ZONES[0]]}]
        assert not activities.instance_filters_are_scoped(zone_only, max_instances=100, configuration=aws)
        assert set(_states().values()) == {"running"}


class TestNodegroupAsgTerminate:
    def test_terminates_one_in_service_instance_of_the_named_group(self, aws: dict[str, Any]) -> None:
        """chaosaws's terminate_random_instances with the YAML's arguments; the other group is untouched."""
        net = _network()
        ec2 = _ec2()
        autoscaling = boto3.client("autoscaling", region_name=REGION)
        template = ec2.create_launch_template(
            LaunchTemplateName="nodes", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.medium"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        for name in ("eks-workers-a", "eks-workers-b"):
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateId": template},
                MinSize=2,
                MaxSize=4,
                DesiredCapacity=2,
                VPCZoneIdentifier=",".join(net["subnets"].values()),
            )

        def members(name: str) -> set[str]:
            group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
                "AutoScalingGroups"
            ][0]
            return {i["InstanceId"] for i in group["Instances"]}

        a_before, b_before = members("eks-workers-a"), members("eks-workers-b")
        experiment, action = _action("nodegroup-asg-terminate", "terminate_random_instances")
        _, probe = _action("nodegroup-asg-terminate", "desired_equals_healthy")
        assert asg_probes.desired_equals_healthy(
            **_args(experiment, probe, asg_name="eks-workers-a"), configuration=aws
        )
        result = asg_actions.terminate_random_instances(
            **_args(experiment, action, asg_name="eks-workers-a"), configuration=aws
        )
        (gone,) = [t["InstanceId"] for t in result[0]["TerminatingInstances"]]
        assert gone in a_before
        states = _states()
        assert states[gone] in ("shutting-down", "terminated")
        assert all(states[i] == "running" for i in (a_before - {gone}) | b_before)


# --- zone blackhole ---------------------------------------------------------------------------------
class TestAzBlackholeNacl:
    @pytest.fixture
    def net(self, aws: dict[str, Any]) -> dict[str, Any]:
        net = _network()
        ec2 = _ec2()
        # one zone subnet sits on a custom ACL: the rollback must put it back there, not on the default
        custom = ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]["NetworkAclId"]
        current = _acl_of([net["subnets"][ZONES[0]]])
        assoc = ec2.describe_network_acls(NetworkAclIds=[current[net["subnets"][ZONES[0]]]])["NetworkAcls"][0]
        (assoc_id,) = [
            a["NetworkAclAssociationId"]
            for a in assoc["Associations"]
            if a["SubnetId"] == net["subnets"][ZONES[0]]
        ]
        ec2.replace_network_acl_association(AssociationId=assoc_id, NetworkAclId=custom)
        net["custom_acl"] = custom
        return net

    def _all_subnets(self, net: dict[str, Any]) -> list[str]:
        return [*net["subnets"].values(), net["untagged"]]

    def test_blackhole_then_rollback_restores_every_association_exactly(
        self, aws: dict[str, Any], net: dict[str, Any]
    ) -> None:
        """Only the zone's cluster subnets move to a deny-all ACL; the rollback puts each back and deletes it."""
        before = _acl_of(self._all_subnets(net))
        assert before[net["subnets"][ZONES[0]]] == net["custom_acl"]
        experiment, action = _action("az-blackhole-nacl", "blackhole_availability_zone")
        _, rollback = _action("az-blackhole-nacl", "restore_availability_zone")
        variables = {"cluster_name": "prod", "availability_zone": ZONES[0]}

        first = activities.blackhole_availability_zone(
            **_args(experiment, action, **variables), configuration=aws
        )
        second = activities.blackhole_availability_zone(
            **_args(experiment, action, **variables), configuration=aws
        )
        assert first["moved"] == [net["subnets"][ZONES[0]]] and second["moved"] == []
        assert second["network_acl"] == first["network_acl"]
        during = _acl_of(self._all_subnets(net))
        assert during[net["subnets"][ZONES[0]]] == first["network_acl"]
        assert {s: a for s, a in during.items() if s != net["subnets"][ZONES[0]]} == {
            s: a for s, a in before.items() if s != net["subnets"][ZONES[0]]
        }
        acl = _ec2().describe_network_acls(NetworkAclIds=[first["network_acl"]])["NetworkAcls"][0]
        assert not [e for e in acl["Entries"] if e["RuleAction"] == "allow"]

        restored = activities.restore_availability_zone(
            **_args(experiment, rollback, **variables), configuration=aws
        )
        assert restored == [net["subnets"][ZONES[0]]]
        assert _acl_of(self._all_subnets(net)) == before
        remaining = _ec2().describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
            "NetworkAcls"
        ]
        assert first["network_acl"] not in {a["NetworkAclId"] for a in remaining}
        assert activities.restore_availability_zone(ZONES[0], configuration=aws) == []

    def test_rollback_without_the_action_does_nothing(self, aws: dict[str, Any], net: dict[str, Any]) -> None:
        """A rollback that runs after a failed or skipped method changes nothing."""
        before = _acl_of(self._all_subnets(net))
        assert activities.restore_availability_zone(ZONES[1], configuration=aws) == []
        assert _acl_of(self._all_subnets(net)) == before

    def test_a_zone_alone_is_refused(self, aws: dict[str, Any], net: dict[str, Any]) -> None:
        """Without cluster_name or vpc_id the zone would span every VPC: nothing is created."""
        with pytest.raises(ActivityFailed, match="cluster_name or vpc_id"):
            activities.blackhole_availability_zone(ZONES[0], configuration=aws)
        by_vpc = activities.blackhole_availability_zone(ZONES[1], vpc_id=net["vpc"], configuration=aws)
        assert by_vpc["moved"] == [net["subnets"][ZONES[1]]]
        activities.restore_availability_zone(ZONES[1], configuration=aws)


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

    def test_run_shell_passes_every_argument_and_waits_for_the_result(self, aws: dict[str, Any]) -> None:
        """Through chaosaws's send_command, tag-targeted, with each instance's invocation awaited."""
        net = _network()
        node = _node(net["subnets"][ZONES[0]], "prod", "control-plane")
        _node(net["subnets"][ZONES[1]], "prod", "workers-a")
        _ec2().create_tags(Resources=[node], Tags=[{"Key": activities.FAULT_TAG, "Value": "kubelet"}])
        results = activities.run_shell(
            activities.FAULT_TAG, "kubelet", [node], ["systemctl stop kubelet"], configuration=aws
        )
        assert {i: r["Status"] for i, r in results.items()} == {node: "Success"}
        sent = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
        assert [c["InstanceIds"] for c in sent] == [[node]]
        assert sent[0]["Parameters"]["commands"] == ["systemctl stop kubelet"]
        assert (sent[0]["MaxErrors"], sent[0]["TimeoutSeconds"]) == ("0", 120)

    @pytest.mark.parametrize(
        ("restore", "value"),
        [(activities.restore_static_pods, "static-pod"), (activities.start_kubelet, "kubelet")],
        ids=["static-pods", "kubelet"],
    )
    def test_ssm_rollbacks_act_on_tagged_instances_once(
        self, aws: dict[str, Any], restore: Any, value: str
    ) -> None:
        """The rollback targets what the action tagged, removes the tag, and is a no-op the second time."""
        net = _network()
        node = _node(net["subnets"][ZONES[0]], "prod", "control-plane")
        other = _node(net["subnets"][ZONES[1]], "prod", "control-plane")
        _ec2().create_tags(Resources=[node], Tags=[{"Key": activities.FAULT_TAG, "Value": value}])
        assert restore(configuration=aws) == [node]
        assert restore(configuration=aws) == []
        tags = _ec2().describe_tags(Filters=[{"Name": "key", "Values": [activities.FAULT_TAG]}])["Tags"]
        assert tags == []
        sent = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
        assert [c["InstanceIds"] for c in sent] == [[node]]
        assert other not in sent[0]["InstanceIds"]


# --- FIS ----------------------------------------------------------------------------------------------
class TestFis:
    @pytest.mark.parametrize(
        ("stem", "template"),
        [
            ("az-disrupt-connectivity-fis", "az-disrupt-connectivity.json"),
            ("nodegroup-terminate-fis", "nodegroup-terminate.json"),
        ],
    )
    def test_template_starts_and_the_rollback_stops_only_ours(
        self, aws: dict[str, Any], stem: str, template: str
    ) -> None:
        """Our JSON creates a template; the experiment starts it tagged; the rollback stops it, and only it."""
        fis = boto3.client("fis", region_name=REGION)
        created = fis.create_experiment_template(clientToken=f"test-{stem}", **fis_template(template))
        template_id = created["experimentTemplate"]["id"]
        someone_elses = fis.start_experiment(experimentTemplateId=template_id, tags={"owner": "someone-else"})

        experiment, start = _action(stem, "start_experiment")
        _, stop = _action(stem, "stop_fis_experiments")
        ours = fis_actions.start_experiment(
            **_args(experiment, start, fis_template_id=template_id), configuration=aws
        )
        stopped = activities.stop_fis_experiments(**_args(experiment, stop), configuration=aws)
        assert stopped == [ours["experiment"]["id"]]
        state = fis.get_experiment(id=ours["experiment"]["id"])["experiment"]["state"]["status"]
        assert state in ("stopping", "stopped")
        other = fis.get_experiment(id=someone_elses["experiment"]["id"])["experiment"]["state"]["status"]
        assert other not in ("stopping", "stopped")
        assert activities.stop_fis_experiments(**_args(experiment, stop), configuration=aws) == []

    def test_refuses_to_stop_without_tags(self, aws: dict[str, Any]) -> None:
        """No tags would select every experiment of the account."""
        with pytest.raises(ActivityFailed):
            activities.stop_fis_experiments({}, configuration=aws)
