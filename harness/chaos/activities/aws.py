"""Chaos Toolkit actions and probes on AWS for the catalog in experiments/aws/ and the
SSM-driven experiments of experiments/kubernetes/ (python provider).

Only what chaosaws does not already do safely:

- a guard against selecting EC2 instances by availability zone alone (chaosaws's
  `terminate_instances` then terminates every instance of the zone);
- node and control-plane faults through SSM Run Command that remember, on the instance
  itself (an EC2 tag), what they did, so that the rollback needs no state from the run
  and works while the Kubernetes API server is down;
- a zone blackhole with a deny-all network ACL whose rollback restores each subnet's
  previous ACL exactly (recorded as tags on the blackhole ACL) and then deletes it;
- stopping FIS experiments by tag, tolerating experiments that already ended.

Clients come from `chaosaws.aws_client`, so the region (`configuration.aws_region`),
profiles, assumed roles and credentials are chaosaws's own; AWS_ENDPOINT_URL is honoured
by botocore. Every action can run twice; every rollback can run twice, or without its action.
"""

from __future__ import annotations

import json
import random
import shlex
import time
import uuid
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError
from chaosaws import aws_client
from chaosaws.ssm import actions as ssm_actions
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from harness.chaos.activities import kubernetes as k8s

Configuration = dict[str, Any] | None
Secrets = dict[str, Any] | None

FAULT_TAG = "resilience-harness:fault"
"""On an instance we injected a fault into: which fault (kubelet, static-pod)."""
QUERY_TAG = "resilience-harness:query"
"""On an instance for the length of one read-only SSM command (SSM targets it by tag)."""
BLACKHOLE_TAG = "resilience-harness:blackhole"
"""On the deny-all network ACL: the availability zone it blackholes."""
PREVIOUS_PREFIX = "resilience-harness:previous:"
"""On the deny-all network ACL, one per subnet: `...:previous:<subnet-id>` = the ACL to restore."""
PARKED_DIR = "/etc/kubernetes/resilience-harness-parked"
"""Where a static pod's manifest waits while its pod is stopped (outside the manifests dir)."""
NODEGROUP_TAG = "tag:eks:nodegroup-name"
CLUSTER_TAGS = ("tag:eks:cluster-name", "tag:aws:eks:cluster-name")
ETCDCTL_TLS = (
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt "
    "--key=/etc/kubernetes/pki/etcd/server.key"
)


# --- the node-group guard ---------------------------------------------------------------------
def instance_filter_problems(filters: list[dict[str, Any]]) -> list[str]:
    """Why these describe_instances filters could select more than one node group (empty: fine).

    A zone or an instance type alone selects every instance there, other clusters' included:
    a node-group tag and a cluster tag, each with non-empty values, are required.
    """
    named = {f.get("Name"): [v for v in f.get("Values") or [] if str(v).strip()] for f in filters or []}
    problems = []
    if not named.get(NODEGROUP_TAG):
        problems.append(f"no {NODEGROUP_TAG} filter with a value")
    cluster_tagged = any(named.get(t) for t in CLUSTER_TAGS) or any(
        str(n).startswith("tag:kubernetes.io/cluster/") and v for n, v in named.items()
    )
    if not cluster_tagged:
        problems.append("no cluster tag filter (tag:eks:cluster-name or tag:kubernetes.io/cluster/NAME)")
    return problems


def instance_filters_are_scoped(
    filters: list[dict[str, Any]],
    availability_zone: str = "",
    max_instances: int = 1,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """A steady-state guard: the filters name a node group and a cluster, and select 1..max instances.

    Given the same filters and zone as chaosaws's terminate_instances (which adds the zone
    filter only when the zone is set), a failing guard stops the experiment before anything
    is terminated: nothing matches, or more than the blast radius allows.
    """
    if instance_filter_problems(filters):
        return False
    ec2 = aws_client("ec2", configuration, secrets)
    running = [*filters, {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    if availability_zone:
        running.append({"Name": "availability-zone", "Values": [availability_zone]})
    found = [i for r in ec2.describe_instances(Filters=running)["Reservations"] for i in r["Instances"]]
    return 1 <= len(found) <= int(max_instances)


# --- nodes to instances -------------------------------------------------------------------------
def instance_id_from_provider_id(provider_id: str | None) -> str | None:
    """`aws:///us-east-1a/i-0abc...` (what the AWS cloud provider sets) to `i-0abc...`."""
    if provider_id and provider_id.startswith("aws://"):
        last = provider_id.rstrip("/").rsplit("/", 1)[-1]
        if last.startswith("i-"):
            return last
    return None


def _instance_ids_for_nodes(
    nodes: list[Any], configuration: Configuration, secrets: Secrets
) -> dict[str, str]:
    """Node name -> instance id: from the provider id, else by the node's InternalIP.

    Self-managed clusters without the AWS cloud provider have no provider id.
    """
    found: dict[str, str] = {}
    by_ip: dict[str, str] = {}
    for node in nodes:
        if iid := instance_id_from_provider_id(node.spec.provider_id):
            found[node.metadata.name] = iid
        else:
            ips = [a.address for a in node.status.addresses or [] if a.type == "InternalIP"]
            if ips:
                by_ip[ips[0]] = node.metadata.name
    if by_ip:
        ec2 = aws_client("ec2", configuration, secrets)
        filters = [{"Name": "private-ip-address", "Values": sorted(by_ip)}]
        for r in ec2.describe_instances(Filters=filters)["Reservations"]:
            for i in r["Instances"]:
                if i.get("PrivateIpAddress") in by_ip:
                    found[by_ip[i["PrivateIpAddress"]]] = i["InstanceId"]
    return found


def _tagged_instances(key: str, value: str, configuration: Configuration, secrets: Secrets) -> list[str]:
    ec2 = aws_client("ec2", configuration, secrets)
    filters = [
        {"Name": f"tag:{key}", "Values": [value]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ]
    return sorted(
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=filters)["Reservations"]
        for i in r["Instances"]
    )


# --- SSM Run Command -------------------------------------------------------------------------
def run_shell(
    tag_key: str,
    tag_value: str,
    instance_ids: list[str],
    commands: list[str],
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, dict[str, Any]]:
    """Run a shell script through chaosaws's send_command on the instances carrying the tag; each one's result.

    Targets by tag, as SSM resolves them. Every optional argument is passed: chaosaws sends
    omitted ones as None, which botocore's parameter validation rejects. Waits for every
    instance's invocation and raises when one did not succeed.
    """
    if not instance_ids:
        return {}
    ssm_timeout = max(30, int(timeout_s))  # SendCommand's minimum
    sent = ssm_actions.send_command(
        document_name=ssm_document,
        targets=[{"Key": f"tag:{tag_key}", "Values": [tag_value]}],
        document_version="$DEFAULT",
        parameters={"commands": commands, "executionTimeout": [str(int(timeout_s))]},
        timeout_seconds=ssm_timeout,
        max_concurrency=str(max(1, len(instance_ids))),
        max_errors="0",
        region=(configuration or {}).get("aws_region"),
        configuration=configuration,
        secrets=secrets,
    )
    command_id = sent["Command"]["CommandId"]
    ssm = aws_client("ssm", configuration, secrets)
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + ssm_timeout + 60
    pending = set(instance_ids)
    while pending:
        for iid in sorted(pending):
            try:
                inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=iid)
            except ClientError as exc:  # not resolved yet: SSM resolves tag targets asynchronously
                if exc.response["Error"]["Code"] != "InvocationDoesNotExist":
                    raise
                continue
            if inv["Status"] not in ("Pending", "InProgress", "Delayed"):
                results[iid] = inv
                pending.discard(iid)
        if pending:
            if time.monotonic() > deadline:
                raise ActivityFailed(f"SSM command {command_id} did not finish on {sorted(pending)}")
            time.sleep(2.0)
    failed = {iid: inv["Status"] for iid, inv in results.items() if inv["Status"] != "Success"}
    if failed:
        raise ActivityFailed(f"SSM command {command_id} failed: {failed}")
    return results


def _tag(
    instance_ids: list[str], key: str, value: str, configuration: Configuration, secrets: Secrets
) -> None:
    if instance_ids:
        aws_client("ec2", configuration, secrets).create_tags(
            Resources=instance_ids, Tags=[{"Key": key, "Value": value}]
        )


def _untag(instance_ids: list[str], key: str, configuration: Configuration, secrets: Secrets) -> None:
    if instance_ids:
        aws_client("ec2", configuration, secrets).delete_tags(Resources=instance_ids, Tags=[{"Key": key}])


# --- node loss: kubelet -------------------------------------------------------------------------
def stop_kubelet(
    label_selector: str,
    ns: str = "default",
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Stop the kubelet of one node that hosts the service (picked at random), through SSM.

    The node stops reporting; after the node-monitor grace period it turns NotReady and its
    pods are evicted. Its containers keep running until then. The instance is tagged before
    the command, so the rollback finds it; run again, it stops the same node again.
    """
    instances = _tagged_instances(FAULT_TAG, "kubelet", configuration, secrets)
    if not instances:
        core = client.CoreV1Api(k8s.api_client(configuration, secrets))
        hosting = sorted(k8s.nodes_hosting(core, label_selector, ns))
        if not hosting:
            raise ActivityFailed(f"no node hosts pods {label_selector!r} in {ns}")
        node = core.read_node(random.choice(hosting))
        found = _instance_ids_for_nodes([node], configuration, secrets)
        if not found:
            raise ActivityFailed(f"cannot find the EC2 instance of node {node.metadata.name}")
        instances = sorted(found.values())
        _tag(instances, FAULT_TAG, "kubelet", configuration, secrets)
    run_shell(
        FAULT_TAG,
        "kubelet",
        instances,
        ["systemctl stop kubelet"],
        ssm_document,
        timeout_s,
        configuration,
        secrets,
    )
    return instances


def start_kubelet(
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Rollback of stop_kubelet: start it on every instance tagged for it, then drop the tag."""
    instances = _tagged_instances(FAULT_TAG, "kubelet", configuration, secrets)
    run_shell(
        FAULT_TAG,
        "kubelet",
        instances,
        ["systemctl start kubelet"],
        ssm_document,
        timeout_s,
        configuration,
        secrets,
    )
    _untag(instances, FAULT_TAG, configuration, secrets)
    return instances


# --- control plane: static pods ----------------------------------------------------------------
def park_commands(
    component: str, manifests_dir: str = "/etc/kubernetes/manifests", parked_dir: str = PARKED_DIR
) -> list[str]:
    """Shell that moves a static pod's manifest out of the kubelet's sight (idempotent)."""
    src = shlex.quote(f"{manifests_dir.rstrip('/')}/{component}.yaml")
    parked = shlex.quote(parked_dir.rstrip("/"))
    return [f"mkdir -p {parked}", f"if [ -f {src} ]; then mv {src} {parked}/; fi"]


def restore_commands(
    manifests_dir: str = "/etc/kubernetes/manifests", parked_dir: str = PARKED_DIR
) -> list[str]:
    """Shell that moves every parked manifest back, never over a manifest that is there (idempotent)."""
    target = shlex.quote(manifests_dir.rstrip("/"))
    parked = shlex.quote(parked_dir.rstrip("/"))
    return [
        f'for f in {parked}/*.yaml; do [ -e "$f" ] || continue; '
        f'n=$(basename "$f"); [ -e {target}/"$n" ] || mv "$f" {target}/"$n"; done'
    ]


def etcd_leader_host(status_json: str) -> str:
    """The host of the leader in `etcdctl endpoint status --cluster -w json` output."""
    try:
        statuses = json.loads(status_json)
    except json.JSONDecodeError as exc:
        raise ActivityFailed(f"etcdctl did not print JSON: {status_json[:200]!r}") from exc
    for entry in statuses:
        status = entry.get("Status", {})
        if status.get("leader") and status.get("header", {}).get("member_id") == status.get("leader"):
            return urlparse(entry["Endpoint"]).hostname or ""
    raise ActivityFailed("no etcd member reports itself as the leader")


def _control_plane_instances(
    node_label_selector: str, configuration: Configuration, secrets: Secrets
) -> dict[str, str]:
    """Control-plane instance id -> its InternalIP."""
    core = client.CoreV1Api(k8s.api_client(configuration, secrets))
    nodes = core.list_node(label_selector=node_label_selector).items
    if not nodes:
        raise ActivityFailed(f"no node matches {node_label_selector!r}")
    ids = _instance_ids_for_nodes(nodes, configuration, secrets)
    ips = {
        n.metadata.name: next((a.address for a in n.status.addresses or [] if a.type == "InternalIP"), "")
        for n in nodes
    }
    return {iid: ips[name] for name, iid in ids.items()}


def find_etcd_leader(
    node_label_selector: str = "node-role.kubernetes.io/control-plane",
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 60,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> str:
    """The instance id of the etcd leader, asked of etcd on one control-plane instance through SSM.

    Uses the host's etcdctl when there is one, else the one in the etcd container (crictl).
    """
    members = _control_plane_instances(node_label_selector, configuration, secrets)
    if not members:
        raise ActivityFailed("no control-plane instance found")
    ask = sorted(members)[0]
    args = f"--endpoints=https://127.0.0.1:2379 {ETCDCTL_TLS} endpoint status --cluster -w json"
    script = (
        f"if command -v etcdctl >/dev/null 2>&1; then ETCDCTL_API=3 etcdctl {args}; "
        f'else crictl exec "$(crictl ps -q --name etcd | head -n 1)" etcdctl {args}; fi'
    )
    token = uuid.uuid4().hex
    _tag([ask], QUERY_TAG, token, configuration, secrets)
    try:
        out = run_shell(QUERY_TAG, token, [ask], [script], ssm_document, timeout_s, configuration, secrets)
    finally:
        _untag([ask], QUERY_TAG, configuration, secrets)
    host = etcd_leader_host(out[ask].get("StandardOutputContent", ""))
    for iid, ip in members.items():
        if ip == host:
            return iid
    raise ActivityFailed(f"the etcd leader {host} is not one of the control-plane nodes {members}")


def park_static_pod(
    component: str,
    member: str = "any",
    node_label_selector: str = "node-role.kubernetes.io/control-plane",
    manifests_dir: str = "/etc/kubernetes/manifests",
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Stop a static pod (etcd, kube-apiserver) on one control-plane instance by parking its manifest.

    Static pods belong to the kubelet, not the API server: deleting the mirror pod does
    nothing, so the manifest leaves /etc/kubernetes/manifests and the kubelet stops the pod
    (within its file-check period, ~20 s). `member`: `any`, `leader` or `follower` (etcd).
    """
    if member not in ("any", "leader", "follower"):
        raise ActivityFailed(f"member must be any, leader or follower, not {member!r}")
    instances = _tagged_instances(FAULT_TAG, "static-pod", configuration, secrets)
    if not instances:
        members = sorted(_control_plane_instances(node_label_selector, configuration, secrets))
        if member == "any":
            chosen = random.choice(members)
        else:
            leader = find_etcd_leader(node_label_selector, ssm_document, 60, configuration, secrets)
            followers = [m for m in members if m != leader]
            if member == "follower" and not followers:
                raise ActivityFailed("a single control-plane member has no follower")
            chosen = leader if member == "leader" else random.choice(followers)
        instances = [chosen]
        _tag(instances, FAULT_TAG, "static-pod", configuration, secrets)
    commands = park_commands(component, manifests_dir)
    run_shell(FAULT_TAG, "static-pod", instances, commands, ssm_document, timeout_s, configuration, secrets)
    return {"component": component, "instances": instances}


def restore_static_pods(
    manifests_dir: str = "/etc/kubernetes/manifests",
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Rollback of park_static_pod: move every parked manifest back, then drop the tag.

    Needs only EC2 and SSM, not the Kubernetes API, which may be what was stopped.
    """
    instances = _tagged_instances(FAULT_TAG, "static-pod", configuration, secrets)
    commands = restore_commands(manifests_dir)
    run_shell(FAULT_TAG, "static-pod", instances, commands, ssm_document, timeout_s, configuration, secrets)
    _untag(instances, FAULT_TAG, configuration, secrets)
    return instances


# --- zone blackhole with a network ACL ----------------------------------------------------------
def zone_subnet_filters(availability_zone: str, cluster_name: str, vpc_id: str) -> list[dict[str, Any]]:
    """describe_subnets filters for the cluster's subnets in one zone; the dry run asks the same."""
    if not availability_zone:
        raise ActivityFailed("availability_zone is required")
    if not (cluster_name or vpc_id):
        raise ActivityFailed("give cluster_name or vpc_id: a zone alone spans every VPC of the account")
    filters: list[dict[str, Any]] = [{"Name": "availability-zone", "Values": [availability_zone]}]
    if cluster_name:
        filters.append({"Name": "tag-key", "Values": [f"kubernetes.io/cluster/{cluster_name}"]})
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    return filters


def _zone_subnets(ec2: Any, availability_zone: str, cluster_name: str, vpc_id: str) -> tuple[str, list[str]]:
    filters = zone_subnet_filters(availability_zone, cluster_name, vpc_id)
    subnets = ec2.describe_subnets(Filters=filters)["Subnets"]
    vpcs = {s["VpcId"] for s in subnets}
    if len(vpcs) != 1:
        raise ActivityFailed(
            f"the subnets of {availability_zone} for {filters} span {len(vpcs)} VPCs; give vpc_id"
        )
    return vpcs.pop(), sorted(s["SubnetId"] for s in subnets)


def _blackhole_acls(ec2: Any, availability_zone: str) -> list[dict[str, Any]]:
    filters = [{"Name": f"tag:{BLACKHOLE_TAG}", "Values": [availability_zone]}]
    return ec2.describe_network_acls(Filters=filters)["NetworkAcls"]


def blackhole_availability_zone(
    availability_zone: str,
    cluster_name: str = "",
    vpc_id: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Associate the zone's subnets (the cluster's, by tag) with a new deny-all network ACL.

    A new network ACL denies everything in both directions; as ACLs are stateless, existing
    connections stop too. Each subnet's previous ACL is recorded as a tag on the new ACL
    before its association moves, so the rollback restores them exactly. Run again, it
    reuses the blackhole ACL and moves only subnets not yet on it.
    """
    ec2 = aws_client("ec2", configuration, secrets)
    vpc, subnets = _zone_subnets(ec2, availability_zone, cluster_name, vpc_id)
    existing = _blackhole_acls(ec2, availability_zone)
    if existing:
        acl_id = existing[0]["NetworkAclId"]
    else:
        acl_id = ec2.create_network_acl(
            VpcId=vpc,
            TagSpecifications=[
                {
                    "ResourceType": "network-acl",
                    "Tags": [
                        {"Key": BLACKHOLE_TAG, "Value": availability_zone},
                        {"Key": "Name", "Value": f"resilience-harness blackhole {availability_zone}"},
                        {"Key": "app.kubernetes.io/managed-by", "Value": "resilience-harness"},
                    ],
                }
            ],
        )["NetworkAcl"]["NetworkAclId"]
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])
    moved = []
    for acl in current["NetworkAcls"]:
        for assoc in acl["Associations"]:
            if assoc["SubnetId"] not in subnets or acl["NetworkAclId"] == acl_id:
                continue
            ec2.create_tags(
                Resources=[acl_id],
                Tags=[{"Key": PREVIOUS_PREFIX + assoc["SubnetId"], "Value": acl["NetworkAclId"]}],
            )
            ec2.replace_network_acl_association(
                AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=acl_id
            )
            moved.append(assoc["SubnetId"])
    return {"network_acl": acl_id, "vpc": vpc, "subnets": subnets, "moved": sorted(moved)}


def _acl_exists(ec2: Any, acl_id: str) -> bool:
    try:
        return bool(ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "InvalidNetworkAclID.NotFound":
            return False
        raise


def restore_availability_zone(
    availability_zone: str, configuration: Configuration = None, secrets: Secrets = None
) -> list[str]:
    """Rollback of blackhole_availability_zone: each subnet back on its recorded ACL; the blackhole ACL deleted.

    Falls back to the VPC's default ACL for a subnet with no record (its previous ACL was
    deleted meanwhile, say), since a subnet must have one. Nothing to do, nothing done.
    """
    ec2 = aws_client("ec2", configuration, secrets)
    restored = []
    for acl in _blackhole_acls(ec2, availability_zone):
        tags = {t["Key"]: t["Value"] for t in acl.get("Tags", [])}
        default = None
        for assoc in acl["Associations"]:
            previous = tags.get(PREVIOUS_PREFIX + assoc["SubnetId"])
            if previous is None or not _acl_exists(ec2, previous):
                if default is None:
                    default = ec2.describe_network_acls(
                        Filters=[
                            {"Name": "vpc-id", "Values": [acl["VpcId"]]},
                            {"Name": "default", "Values": ["true"]},
                        ]
                    )["NetworkAcls"][0]["NetworkAclId"]
                previous = default
            ec2.replace_network_acl_association(
                AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=previous
            )
            restored.append(assoc["SubnetId"])
        ec2.delete_network_acl(NetworkAclId=acl["NetworkAclId"])
    return sorted(restored)


# --- FIS ------------------------------------------------------------------------------------------
def stop_fis_experiments(
    tags: dict[str, str], configuration: Configuration = None, secrets: Secrets = None
) -> list[str]:
    """Stop the FIS experiments carrying all these tags that are still active; their ids.

    Unlike chaosaws's stop_experiments_by_tags, one that already completed or stopped is
    left alone (stopping it is an error) and every page of the listing is read.
    """
    if not tags:
        raise ActivityFailed("refusing to stop FIS experiments without tags to select them")
    fis = aws_client("fis", configuration, secrets)
    stopped = []
    kwargs: dict[str, Any] = {"maxResults": 100}
    while True:
        page = fis.list_experiments(**kwargs)
        for exp in page.get("experiments", []):
            active = exp["state"]["status"] in ("pending", "initiating", "running")
            if active and tags.items() <= (exp.get("tags") or {}).items():
                fis.stop_experiment(id=exp["id"])
                stopped.append(exp["id"])
        if not page.get("nextToken"):
            return stopped
        kwargs["nextToken"] = page["nextToken"]
