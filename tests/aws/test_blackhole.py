"""The zone blackhole (experiments/aws/az-blackhole-nacl.yaml) against the emulator: the cut
carries its own timed undo, scheduled before any subnet moves, which restores the zone with no
harness alive; shared infrastructure is never cut; the restore needs no state from the run."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import xform_name
from chaoslib.exceptions import ActivityFailed

from harness.chaos.activities import aws as activities
from harness.kubernetes.target import KubernetesTarget
from tests.aws.conftest import REGION
from tests.aws.test_actions import ZONES, _acl_of, _action, _args, _config, _ec2, _network
from tests.kubernetes.conftest import open_clusters, target_spec

ACCOUNT = "123456789012"  # moto's


def _scheduler() -> Any:
    return boto3.client("scheduler", region_name=REGION)


def _schedules() -> list[dict[str, Any]]:
    names = [s["Name"] for s in _scheduler().list_schedules()["Schedules"]]
    return [_scheduler().get_schedule(Name=n, GroupName="default") for n in names]


def _fire(schedule: dict[str, Any]) -> None:
    """What EventBridge Scheduler does at the schedule's time: call its universal target
    (`arn:aws:scheduler:::aws-sdk:<service>:<action>`) with its Input. moto keeps schedules but
    never runs them."""
    service, action = schedule["Target"]["Arn"].split(":")[-2:]
    client = boto3.client(service, region_name=REGION)
    getattr(client, xform_name(action[0].upper() + action[1:]))(**json.loads(schedule["Target"]["Input"]))


def _rules(acl_id: str) -> list[tuple[Any, ...]]:
    """What an ACL lets through, in evaluation order (rule numbers themselves do not matter)."""
    (acl,) = _ec2().describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"]
    entries = sorted(acl["Entries"], key=lambda e: (e["Egress"], e["RuleNumber"]))
    return [
        (e["Egress"], e["RuleAction"], e.get("CidrBlock") or e.get("Ipv6CidrBlock"), e["Protocol"],
         json.dumps(e.get("PortRange"), sort_keys=True))
        for e in entries
        if e["RuleNumber"] < 32767
    ]  # fmt: skip


@pytest.fixture
def net(aws: dict[str, Any]) -> dict[str, Any]:
    """The cluster's VPC; the first zone's subnet sits on a custom ACL with rules of its own."""
    net = _network()
    ec2 = _ec2()
    custom = ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]["NetworkAclId"]
    for number, egress, action, cidr, protocol, ports in (
        (10, False, "allow", "10.0.0.0/8", "6", {"From": 443, "To": 443}),
        (20, False, "deny", "0.0.0.0/0", "-1", None),
        (10, True, "allow", "0.0.0.0/0", "-1", None),
    ):
        ec2.create_network_acl_entry(NetworkAclId=custom, RuleNumber=number, Egress=egress, RuleAction=action,
                                     CidrBlock=cidr, Protocol=protocol, **({"PortRange": ports} if ports else {}))  # fmt: skip
    subnet = net["subnets"][ZONES[0]]
    (current,) = ec2.describe_network_acls(NetworkAclIds=[_acl_of([subnet])[subnet]])["NetworkAcls"]
    (assoc,) = [a["NetworkAclAssociationId"] for a in current["Associations"] if a["SubnetId"] == subnet]
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=custom)
    net["custom_acl"] = custom
    net["all"] = [*net["subnets"].values(), net["untagged"]]
    return net


def _blackhole(aws: dict[str, Any], zone: str = ZONES[0], **variables: Any) -> dict[str, Any]:
    experiment, action = _action("az-blackhole-nacl", "blackhole_availability_zone")
    args = _args(experiment, action, cluster_name="prod", availability_zone=zone, **variables)
    return activities.blackhole_availability_zone(**args, configuration=_config(aws))


def test_blackhole_then_restore_puts_every_association_back_exactly(
    aws: dict[str, Any], net: dict[str, Any]
) -> None:
    """Only the zone's cluster subnet moves, to an ACL that denies everything first; run twice it
    changes nothing more; the restore puts each subnet back, deletes the ACL and the schedules."""
    before = _acl_of(net["all"])
    subnet = net["subnets"][ZONES[0]]
    first, second = _blackhole(aws), _blackhole(aws)
    assert first["moved"] == [subnet] and second["moved"] == []
    assert second["network_acls"] == first["network_acls"]
    during = _acl_of(net["all"])
    (blackhole,) = first["network_acls"]
    assert during[subnet] == blackhole
    assert {s: a for s, a in during.items() if s != subnet} == {
        s: a for s, a in before.items() if s != subnet
    }
    denied = _rules(blackhole)
    for egress in (False, True):
        ordered = [r for r in denied if r[0] is egress]
        assert [(r[1], r[2], r[3]) for r in ordered[:2]] == [
            ("deny", "0.0.0.0/0", "-1"),
            ("deny", "::/0", "-1"),
        ]

    experiment, undo = _action("az-blackhole-nacl", "restore_availability_zone")
    restored = activities.restore_availability_zone(
        **_args(experiment, undo, availability_zone=ZONES[0]), configuration=_config(aws, run="later")
    )
    assert restored == [subnet]
    assert _acl_of(net["all"]) == before
    remaining = _ec2().describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
        "NetworkAcls"
    ]
    assert blackhole not in {a["NetworkAclId"] for a in remaining}
    assert _schedules() == []
    assert activities.restore_availability_zone(ZONES[0], configuration=_config(aws)) == []


def test_a_dead_harness_does_not_leave_the_zone_cut_off(aws: dict[str, Any], net: dict[str, Any]) -> None:
    """Before the cut, AWS is given its own undo: one-time schedules at duration + margin, run as the
    scheduler role, deleting the deny rules. Fired with no harness alive, they leave the subnet under
    exactly the rules of its previous ACL (the custom one here)."""
    subnet = net["subnets"][ZONES[0]]
    previous_rules = _rules(net["custom_acl"])
    t0 = datetime.datetime.now(datetime.UTC)
    result = _blackhole(aws, duration_s=300, restore_margin_s=60)
    (blackhole,) = result["network_acls"]
    assert _rules(blackhole) != previous_rules

    schedules = _schedules()
    assert sorted(s["Name"] for s in schedules) == sorted(result["schedules"]) and len(schedules) == 4
    for s in schedules:
        at = datetime.datetime.fromisoformat(re.fullmatch(r"at\((.+)\)", s["ScheduleExpression"])[1])
        assert abs((at.replace(tzinfo=datetime.UTC) - t0).total_seconds() - 360) < 30
        assert s["ScheduleExpressionTimezone"] == "UTC" and s["ActionAfterCompletion"] == "DELETE"
        assert s["Target"]["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{activities.RESTORE_ROLE_NAME}"
        assert s["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:ec2:deleteNetworkAclEntry"

    for s in schedules:  # the harness is gone; AWS runs the schedules
        _fire(s)
    assert _acl_of([subnet])[subnet] == blackhole
    assert _rules(blackhole) == previous_rules, "the zone lets through what it did before the cut"

    # and when a harness comes back, its restore still completes
    assert activities.heal(_config(aws, run="another")) == [
        f"restored the network ACL of subnet(s) {subnet} left blackholed"
    ]
    assert _acl_of([subnet])[subnet] == net["custom_acl"]


def test_refuses_to_cut_when_its_timed_undo_cannot_be_scheduled(
    aws: dict[str, Any], net: dict[str, Any]
) -> None:
    """A schedule that cannot be created (here a group that does not exist; live, a missing
    scheduler:CreateSchedule or iam:PassRole) stops the action before any subnet moves, and
    leaves no ACL behind."""
    before = _acl_of(net["all"])
    with pytest.raises(ActivityFailed, match="timed undo"):
        _blackhole(aws, schedule_group="no-such-group")
    assert _acl_of(net["all"]) == before
    tagged = _ec2().describe_network_acls(Filters=[{"Name": "tag-key", "Values": [activities.BLACKHOLE_TAG]}])
    assert tagged["NetworkAcls"] == []


def test_subnets_holding_shared_infrastructure_are_never_cut(
    aws: dict[str, Any], net: dict[str, Any]
) -> None:
    """By vpc_id every subnet of the zone is a candidate; the one with a NAT gateway and the one with
    an interface endpoint stay where they are and are reported as skipped, with why."""
    ec2 = _ec2()
    nat_subnet, endpoint_subnet = net["subnets"][ZONES[0]], net["untagged"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=nat_subnet, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=net["vpc"], ServiceName=f"com.amazonaws.{REGION}.ssm", VpcEndpointType="Interface",
        SubnetIds=[endpoint_subnet],
    )["VpcEndpoint"]["VpcEndpointId"]  # fmt: skip
    plain = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.0.8.0/24", AvailabilityZone=ZONES[0])["Subnet"][
        "SubnetId"
    ]
    before = _acl_of([nat_subnet, endpoint_subnet])

    result = activities.blackhole_availability_zone(ZONES[0], vpc_id=net["vpc"], configuration=_config(aws))
    assert result["moved"] == [plain]
    assert result["skipped"] == {
        nat_subnet: f"NAT gateway {nat}",
        endpoint_subnet: f"VPC endpoint {endpoint}",
    }
    assert _acl_of([nat_subnet, endpoint_subnet]) == before
    activities.restore_availability_zone(ZONES[0], configuration=_config(aws))


def test_the_targets_heal_restores_every_blackhole_of_its_cluster_with_no_run_state(
    aws: dict[str, Any], net: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a run died with two zones cut, the Kubernetes target's heal() (what the engine runs after
    each scenario, and `harness cleanup`) restores both, with its own run id and no zone given;
    another cluster's blackhole in the same account is left alone."""
    theirs = _network("staging", cidr="10.7")
    _blackhole(aws, ZONES[0])
    _blackhole(aws, ZONES[1])
    activities.blackhole_availability_zone(
        ZONES[0], cluster_name="staging", configuration=_config(aws, "staging")
    )
    theirs_cut = _acl_of([theirs["subnets"][ZONES[0]]])

    with open_clusters(tmp_path, monkeypatch):
        target = KubernetesTarget(target_spec(aws={"region": REGION}, cluster="prod"))
        target.open()
        try:
            healed = target.heal()
        finally:
            target.close()
    cut = ", ".join(sorted(net["subnets"][z] for z in ZONES[:2]))
    assert healed == [f"restored the network ACL of subnet(s) {cut} left blackholed"]
    assert _acl_of(list(net["subnets"].values()))[net["subnets"][ZONES[0]]] == net["custom_acl"]
    left = _ec2().describe_network_acls(Filters=[{"Name": "tag-key", "Values": [activities.BLACKHOLE_TAG]}])
    assert [
        t["Value"] for a in left["NetworkAcls"] for t in a["Tags"] if t["Key"] == activities.CLUSTER_TAG
    ] == ["staging"]
    assert _acl_of([theirs["subnets"][ZONES[0]]]) == theirs_cut
    assert {s["Name"] for s in _schedules()} == set(
        activities._schedule_names(left["NetworkAcls"][0]["NetworkAclId"])
    ), "only the other cluster's timed undo is still scheduled"


def test_rollback_without_the_action_does_nothing(aws: dict[str, Any], net: dict[str, Any]) -> None:
    """A rollback that runs after a failed or skipped method changes nothing."""
    before = _acl_of(net["all"])
    assert activities.restore_availability_zone(ZONES[1], configuration=_config(aws)) == []
    assert _acl_of(net["all"]) == before


def test_a_zone_alone_is_refused(aws: dict[str, Any], net: dict[str, Any]) -> None:
    """Without cluster_name or vpc_id the zone would span every VPC: nothing is created."""
    with pytest.raises(ActivityFailed, match="cluster_name or vpc_id"):
        activities.blackhole_availability_zone(ZONES[0], configuration=_config(aws))
    by_vpc = activities.blackhole_availability_zone(ZONES[1], vpc_id=net["vpc"], configuration=_config(aws))
    assert by_vpc["moved"] == [net["subnets"][ZONES[1]]]
    activities.restore_availability_zone(ZONES[1], configuration=_config(aws))
