"""Chaos Toolkit actions and probes on AWS for the catalog in experiments/aws/ and the
SSM-driven experiments of experiments/kubernetes/ (python provider).

Only what chaosaws does not already do safely:

- instance termination that never selects by zone alone, never more than `max_instances`,
  and never the node the harness itself runs on (env HARNESS_NODE_NAME);
- node and control-plane faults through SSM Run Command, sent by instance id, that mark the
  instance (EC2 tags: the fault, the cluster, the run) so that the rollback needs no state
  from the run and works while the Kubernetes API server is down; marks are only ever read
  back for this cluster, running instances, in the cluster's VPC when it is known;
- control-plane stops that check quorum (etcd) or a second API server first;
- a zone blackhole with a network ACL that carries its own timed undo (EventBridge Scheduler
  schedules created before the cut, run by AWS whether or not the harness is alive);
- FIS experiments confirmed running before the method goes on, and stopped by tag.

Clients come from `chaosaws.aws_client`, so the region (`configuration.aws_region`),
profiles, assumed roles and credentials are chaosaws's own; AWS_ENDPOINT_URL is honoured
by botocore. Every action can run twice; every rollback can run twice, or without its action.
Every AWS call here is listed in deploy/iam/harness-policy.json (a test checks both agree).
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shlex
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError
from chaosaws import aws_client
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from harness.chaos.activities import kubernetes as k8s

Configuration = dict[str, Any] | None
Secrets = dict[str, Any] | None

FAULT_TAG = "resilience-harness:fault"
"""On an instance we injected a fault into: which fault (kubelet, static-pod)."""
CLUSTER_TAG = "resilience-harness:cluster"
"""On everything we mark: the cluster (the target's `cluster`, else its context) it was done for."""
RUN_TAG = "resilience-harness:run"
"""On everything we mark: the harness run that did it (for the action's own re-runs and for people)."""
EXPERIMENT_TAG = "resilience-harness:experiment"
"""On a FIS experiment we started: the catalog experiment that started it."""
BLACKHOLE_TAG = "resilience-harness:blackhole"
"""On a blackhole network ACL: the availability zone it blackholes."""
COPY_OF_TAG = "resilience-harness:copy-of"
"""On a blackhole network ACL: the ACL whose rules it carries under its deny rules."""
PREVIOUS_PREFIX = "resilience-harness:previous:"
"""On a blackhole network ACL, one per subnet: `...:previous:<subnet-id>` = the ACL to restore."""
SCHEDULE_GROUP_TAG = "resilience-harness:schedule-group"
"""On a blackhole network ACL: the EventBridge Scheduler group its timed-undo schedules are in."""
SCHEDULE_PREFIX = "resilience-harness-"
"""EventBridge Scheduler schedules of a blackhole's timed undo: `resilience-harness-<acl-id>-<rule>`."""
RESTORE_ROLE_NAME = "resilience-harness-scheduler"
"""The role EventBridge Scheduler assumes for the timed undo when `restore_role_arn` is not given
(deploy/iam/scheduler-restore-role-*.json)."""
HARNESS_NODE_ENV = "HARNESS_NODE_NAME"
"""The node the harness pod runs on (the downward API's spec.nodeName): never a fault's target."""
PARKED_DIR = "/etc/kubernetes/resilience-harness-parked"
"""Where a static pod's manifest waits while its pod is stopped (outside the manifests dir)."""
NODEGROUP_TAG = "tag:eks:nodegroup-name"
CLUSTER_TAGS = ("tag:eks:cluster-name", "tag:aws:eks:cluster-name")
ETCDCTL_TLS = (
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt "
    "--key=/etc/kubernetes/pki/etcd/server.key"
)
DENY_RULES = ((1, "0.0.0.0/0"), (2, "::/0"))
"""The blackhole ACL's own rules, first in both directions; its copied rules come after them."""
_process_run_id: str | None = None


# --- whose marks ---------------------------------------------------------------------------------
def mark_identity(configuration: Configuration) -> tuple[str, str]:
    """(cluster, run id) that marks carry: the target's `harness_cluster` and `harness_run_id`.

    Outside the engine (`chaos run`), the cluster falls back to `cluster_name`, then the
    kubeconfig context, and the run id is one per process.
    """
    global _process_run_id
    config = configuration or {}
    cluster = str(
        config.get("harness_cluster") or config.get("cluster_name") or config.get("kubernetes_context") or ""
    )
    if not cluster:
        raise ActivityFailed("no cluster to mark with: set the plan target's `cluster` (or cluster_name)")
    run = str(config.get("harness_run_id") or "")
    if not run:
        _process_run_id = _process_run_id or uuid.uuid4().hex[:12]
        run = _process_run_id
    return cluster, run


def _mark_tags(configuration: Configuration) -> list[dict[str, str]]:
    cluster, run = mark_identity(configuration)
    return [{"Key": CLUSTER_TAG, "Value": cluster}, {"Key": RUN_TAG, "Value": run}]


def _ids(reservations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for r in reservations for i in r["Instances"]]


def _describe(ec2: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        found += _ids(page["Reservations"])
    return found


# --- the harness's own node ----------------------------------------------------------------------
def harness_instance_ids(configuration: Configuration = None, secrets: Secrets = None) -> set[str]:
    """The EC2 instance(s) of the node the harness runs on (env HARNESS_NODE_NAME); empty when unset.

    From the node's provider id, else by private DNS name (EKS names nodes after it). When
    the node is named but its instance cannot be found, every termination is refused: the
    harness could not tell itself apart.
    """
    node_name = os.environ.get(HARNESS_NODE_ENV, "").strip()
    if not node_name:
        return set()
    try:
        core = client.CoreV1Api(k8s._one_try_client(configuration, secrets))
        node = core.read_node(node_name, _request_timeout=(5, 15))
        if iid := instance_id_from_provider_id(node.spec.provider_id if node.spec else None):
            return {iid}
    except Exception:  # the API may be what a fault took down: fall back to the DNS name
        pass
    ec2 = aws_client("ec2", configuration, secrets)
    found = _describe(ec2, [{"Name": "private-dns-name", "Values": [node_name]}])
    if not found:
        raise ActivityFailed(
            f"cannot find the EC2 instance of the harness's own node {node_name} ({HARNESS_NODE_ENV}): "
            "refusing to pick instances that might include it"
        )
    return {i["InstanceId"] for i in found}


# --- the node-group guard and termination ------------------------------------------------------
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


def _candidates(
    filters: list[dict[str, Any]], availability_zone: str, configuration: Configuration, secrets: Secrets
) -> list[str]:
    """Running instances the filters (and zone) select, the harness's own excluded."""
    running = [
        *[f for f in filters if f.get("Name") != "instance-state-name"],
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    if availability_zone:
        running.append({"Name": "availability-zone", "Values": [availability_zone]})
    found = {i["InstanceId"] for i in _describe(aws_client("ec2", configuration, secrets), running)}
    return sorted(found - harness_instance_ids(configuration, secrets))


def instance_filters_are_scoped(
    filters: list[dict[str, Any]],
    availability_zone: str = "",
    max_instances: int = 1,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """A steady-state guard: the filters name a node group and a cluster, and select at least one
    running instance that is not the harness's own; `max_instances` must allow one.

    How many match is no limit: the action terminates at most `max_instances` of them.
    """
    if instance_filter_problems(filters) or int(max_instances) < 1:
        return False
    return bool(_candidates(filters, availability_zone, configuration, secrets))


def terminate_node_group_instances(
    filters: list[dict[str, Any]],
    availability_zone: str = "",
    max_instances: int = 1,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Terminate at most `max_instances` running instances the scoped filters select, at random,
    never the harness's own node; the ids terminated."""
    if problems := instance_filter_problems(filters):
        raise ActivityFailed(f"refusing to select instances: {'; '.join(problems)}")
    candidates = _candidates(filters, availability_zone, configuration, secrets)
    if not candidates:
        raise ActivityFailed(f"no running instance (other than the harness's own) matches {filters}")
    chosen = sorted(random.sample(candidates, min(int(max_instances), len(candidates))))
    aws_client("ec2", configuration, secrets).terminate_instances(InstanceIds=chosen)
    return chosen


def terminate_asg_instances(
    asg_name: str, qty: int = 1, configuration: Configuration = None, secrets: Secrets = None
) -> list[str]:
    """Terminate `qty` random InService instances of one Auto Scaling group, never the harness's own."""
    if not asg_name:
        raise ActivityFailed("asg_name is required")
    autoscaling = aws_client("autoscaling", configuration, secrets)
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"]
    if not groups:
        raise ActivityFailed(f"no Auto Scaling group {asg_name}")
    in_service = {i["InstanceId"] for i in groups[0]["Instances"] if i["LifecycleState"] == "InService"}
    candidates = sorted(in_service - harness_instance_ids(configuration, secrets))
    if len(candidates) < int(qty):
        raise ActivityFailed(
            f"{asg_name} has {len(candidates)} InService instance(s) to pick from, not {qty}"
        )
    chosen = sorted(random.sample(candidates, int(qty)))
    aws_client("ec2", configuration, secrets).terminate_instances(InstanceIds=chosen)
    return chosen


# --- nodes to instances -------------------------------------------------------------------------
def instance_id_from_provider_id(provider_id: str | None) -> str | None:
    """`aws:///us-east-1a/i-0abc...` (what the AWS cloud provider sets) to `i-0abc...`."""
    if provider_id and provider_id.startswith("aws://"):
        last = provider_id.rstrip("/").rsplit("/", 1)[-1]
        if last.startswith("i-"):
            return last
    return None


def cluster_vpcs(vpc_id: str = "", configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """The cluster's VPC(s): `vpc_id` when given, else those of its nodes' instances (by provider id).

    Empty when neither is known (no provider ids, or the API server is down).
    """
    if vpc_id:
        return [vpc_id]
    try:
        core = client.CoreV1Api(k8s._one_try_client(configuration, secrets))  # down: one try, not four
        nodes = core.list_node(_request_timeout=(5, 15)).items
    except Exception:  # rollbacks must work with the API server down: the VPC is then unknown
        return []
    ids = sorted(
        {iid for n in nodes if (iid := instance_id_from_provider_id(n.spec.provider_id if n.spec else None))}
    )
    if not ids:
        return []
    ec2 = aws_client("ec2", configuration, secrets)
    return sorted(
        {i["VpcId"] for i in _describe(ec2, [{"Name": "instance-id", "Values": ids}]) if i.get("VpcId")}
    )


def _instance_ids_for_nodes(
    nodes: list[Any], vpcs: list[str], configuration: Configuration, secrets: Secrets
) -> dict[str, str]:
    """Node name -> instance id: from the provider id, else by the node's InternalIP in the cluster's VPC.

    Self-managed clusters without the AWS cloud provider have no provider id; private IPs
    repeat across VPCs, so that fallback needs the VPC and never looks outside it.
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
        if not vpcs:
            raise ActivityFailed(
                f"nodes {sorted(by_ip.values())} have no provider id: give vpc_id, so that their IPs "
                "are not matched against instances of other VPCs"
            )
        ec2 = aws_client("ec2", configuration, secrets)
        filters = [
            {"Name": "private-ip-address", "Values": sorted(by_ip)},
            {"Name": "vpc-id", "Values": vpcs},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
        for i in _describe(ec2, filters):
            if i.get("PrivateIpAddress") in by_ip:
                found[by_ip[i["PrivateIpAddress"]]] = i["InstanceId"]
    return found


def _marked_instances(
    fault: str, configuration: Configuration, secrets: Secrets, vpcs: list[str], this_run: bool
) -> list[str]:
    """Running instances marked with this fault for this cluster (and run), in its VPCs when known."""
    cluster, run = mark_identity(configuration)
    filters = [
        {"Name": f"tag:{FAULT_TAG}", "Values": [fault]},
        {"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    if this_run:
        filters.append({"Name": f"tag:{RUN_TAG}", "Values": [run]})
    if vpcs:
        filters.append({"Name": "vpc-id", "Values": vpcs})
    return sorted(i["InstanceId"] for i in _describe(aws_client("ec2", configuration, secrets), filters))


def _mark(instance_ids: list[str], fault: str, configuration: Configuration, secrets: Secrets) -> None:
    if instance_ids:
        aws_client("ec2", configuration, secrets).create_tags(
            Resources=instance_ids, Tags=[{"Key": FAULT_TAG, "Value": fault}, *_mark_tags(configuration)]
        )


def _unmark(instance_ids: list[str], configuration: Configuration, secrets: Secrets) -> None:
    if instance_ids:
        aws_client("ec2", configuration, secrets).delete_tags(
            Resources=instance_ids, Tags=[{"Key": k} for k in (FAULT_TAG, CLUSTER_TAG, RUN_TAG)]
        )


# --- SSM Run Command -------------------------------------------------------------------------
def run_shell(
    instance_ids: list[str],
    commands: list[str],
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, dict[str, Any]]:
    """Run a shell script on exactly these instances through SSM; each one's invocation.

    Sent by instance id, never by tag (SSM resolves tags region-wide, other clusters included).
    Waits for the invocation of every instance the command was sent to and raises when one
    did not succeed or did not finish in time.
    """
    if not instance_ids:
        return {}
    ssm_timeout = max(30, int(timeout_s))  # SendCommand's minimum
    ssm = aws_client("ssm", configuration, secrets)
    sent = ssm.send_command(
        DocumentName=ssm_document,
        DocumentVersion="$DEFAULT",
        InstanceIds=sorted(instance_ids),
        Parameters={"commands": commands, "executionTimeout": [str(int(timeout_s))]},
        TimeoutSeconds=ssm_timeout,
        MaxConcurrency=str(max(1, len(instance_ids))),
        MaxErrors="0",
        Comment="resilience-harness",
    )["Command"]
    command_id = sent["CommandId"]
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + ssm_timeout + 60
    pending = set(instance_ids) | set(sent.get("InstanceIds") or [])
    while pending:
        for iid in sorted(pending):
            try:
                inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=iid)
            except ClientError as exc:  # not registered yet: SSM creates invocations asynchronously
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


# --- node loss: kubelet -------------------------------------------------------------------------
def stop_kubelet(
    label_selector: str,
    ns: str = "default",
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    vpc_id: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Stop the kubelet of one node that hosts the service (picked at random, never the harness's), through SSM.

    The node stops reporting; after the node-monitor grace period it turns NotReady and its
    pods are evicted. Its containers keep running until then. The instance is marked before
    the command, so the rollback finds it; run again in the same run, it stops the same node.
    """
    vpcs = cluster_vpcs(vpc_id, configuration, secrets)
    instances = _marked_instances("kubelet", configuration, secrets, vpcs, this_run=True)
    if not instances:
        core = client.CoreV1Api(k8s.api_client(configuration, secrets))
        harness_node = os.environ.get(HARNESS_NODE_ENV, "")
        hosting = sorted(set(k8s.nodes_hosting(core, label_selector, ns)) - {harness_node})
        if not hosting:
            raise ActivityFailed(f"no node other than the harness's hosts pods {label_selector!r} in {ns}")
        node = core.read_node(random.choice(hosting))
        found = _instance_ids_for_nodes([node], vpcs, configuration, secrets)
        if not found:
            raise ActivityFailed(f"cannot find the EC2 instance of node {node.metadata.name}")
        instances = sorted(found.values())
        _mark(instances, "kubelet", configuration, secrets)
    run_shell(instances, ["systemctl stop kubelet"], ssm_document, timeout_s, configuration, secrets)
    return instances


def start_kubelet(
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    vpc_id: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Rollback of stop_kubelet: start it on every running instance this cluster marked for it, then unmark."""
    vpcs = cluster_vpcs(vpc_id, configuration, secrets)
    instances = _marked_instances("kubelet", configuration, secrets, vpcs, this_run=False)
    run_shell(instances, ["systemctl start kubelet"], ssm_document, timeout_s, configuration, secrets)
    _unmark(instances, configuration, secrets)
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


ETCD_SPLIT = "--- resilience-harness: endpoint status ---"


@dataclass(frozen=True)
class EtcdView:
    """What etcd says of itself: its members, those that answered, and the leader's host."""

    members: int
    healthy: int
    leader_host: str | None

    @property
    def quorum(self) -> int:
        return self.members // 2 + 1

    def stop_problem(self) -> str | None:
        """Why stopping one healthy member would lose quorum (None: it would not)."""
        if self.healthy - 1 < self.quorum:
            return (
                f"etcd has {self.members} member(s), {self.healthy} healthy; quorum is {self.quorum}: "
                f"stopping one would leave {self.healthy - 1}"
            )
        return None


def etcd_view(output: str) -> EtcdView:
    """Parse `etcdctl member list -w json`, ETCD_SPLIT, `etcdctl endpoint status --cluster -w json`."""
    members_text, _, status_text = output.partition(ETCD_SPLIT)
    try:
        members = json.loads(members_text).get("members") or []
        statuses = json.loads(status_text) if status_text.strip() else []
    except json.JSONDecodeError as exc:
        raise ActivityFailed(f"etcdctl did not print JSON: {output[:200]!r}") from exc
    healthy = {
        s.get("Status", {}).get("header", {}).get("member_id")
        for s in statuses
        if not s.get("Status", {}).get("errors")
    } - {None}
    leader = None
    for entry in statuses:
        status = entry.get("Status", {})
        if status.get("leader") and status.get("header", {}).get("member_id") == status.get("leader"):
            leader = urlparse(entry["Endpoint"]).hostname or ""
    return EtcdView(members=len(members), healthy=len(healthy), leader_host=leader)


def etcd_leader_host(status_json: str) -> str:
    """The host of the leader in `etcdctl endpoint status --cluster -w json` output."""
    host = etcd_view(f'{{"members": []}}\n{ETCD_SPLIT}\n{status_json}').leader_host
    if host is None:
        raise ActivityFailed("no etcd member reports itself as the leader")
    return host


def _control_plane_instances(
    node_label_selector: str, vpcs: list[str], configuration: Configuration, secrets: Secrets
) -> dict[str, str]:
    """Control-plane instance id -> its InternalIP."""
    core = client.CoreV1Api(k8s.api_client(configuration, secrets))
    nodes = core.list_node(label_selector=node_label_selector).items
    if not nodes:
        raise ActivityFailed(f"no node matches {node_label_selector!r}")
    ids = _instance_ids_for_nodes(nodes, vpcs, configuration, secrets)
    ips = {
        n.metadata.name: next((a.address for a in n.status.addresses or [] if a.type == "InternalIP"), "")
        for n in nodes
    }
    return {iid: ips[name] for name, iid in ids.items()}


def ask_etcd(
    instance_id: str,
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 60,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> EtcdView:
    """Members, healthy members and leader, asked of etcd on one control-plane instance through SSM.

    Uses the host's etcdctl when there is one, else the one in the etcd container (crictl).
    """
    base = f"--endpoints=https://127.0.0.1:2379 {ETCDCTL_TLS}"
    etcdctl = (
        'if command -v etcdctl >/dev/null 2>&1; then ETCDCTL_API=3 etcdctl "$@"; '
        'else crictl exec "$(crictl ps -q --name etcd | head -n 1)" etcdctl "$@"; fi'
    )
    script = (
        f"e() {{ {etcdctl}; }}; e {base} member list -w json; echo {shlex.quote(ETCD_SPLIT)}; "
        f"e {base} endpoint status --cluster -w json || true"
    )
    out = run_shell([instance_id], [script], ssm_document, timeout_s, configuration, secrets)
    return etcd_view(out[instance_id].get("StandardOutputContent", ""))


def find_etcd_leader(
    node_label_selector: str = "node-role.kubernetes.io/control-plane",
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 60,
    vpc_id: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> str:
    """The instance id of the etcd leader, asked of etcd on one control-plane instance through SSM."""
    vpcs = cluster_vpcs(vpc_id, configuration, secrets)
    members = _control_plane_instances(node_label_selector, vpcs, configuration, secrets)
    if not members:
        raise ActivityFailed("no control-plane instance found")
    view = ask_etcd(sorted(members)[0], ssm_document, timeout_s, configuration, secrets)
    return _leader_instance(view, members)


def _leader_instance(view: EtcdView, members: dict[str, str]) -> str:
    if view.leader_host is None:
        raise ActivityFailed("no etcd member reports itself as the leader")
    for iid, ip in members.items():
        if ip == view.leader_host:
            return iid
    raise ActivityFailed(
        f"the etcd leader {view.leader_host} is not one of the control-plane nodes {members}"
    )


def api_servers(configuration: Configuration = None, secrets: Secrets = None) -> int:
    """How many API servers serve: the addresses of the `default/kubernetes` Endpoints, which each
    API server keeps itself in (and is dropped from when it stops renewing its lease)."""
    core = client.CoreV1Api(k8s.api_client(configuration, secrets))
    endpoints = core.read_namespaced_endpoints("kubernetes", "default", _request_timeout=(5, 15))
    return sum(len(s.addresses or []) for s in endpoints.subsets or [])


def park_static_pod(
    component: str,
    member: str = "any",
    node_label_selector: str = "node-role.kubernetes.io/control-plane",
    manifests_dir: str = "/etc/kubernetes/manifests",
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    vpc_id: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Stop a static pod (etcd, kube-apiserver) on one control-plane instance by parking its manifest.

    Static pods belong to the kubelet, not the API server: deleting the mirror pod does
    nothing, so the manifest leaves /etc/kubernetes/manifests and the kubelet stops the pod
    (within its file-check period, ~20 s). `member`: `any`, `leader` or `follower` (etcd).
    Refused, with nothing stopped, when it would cost etcd its quorum or leave no API server.
    """
    if member not in ("any", "leader", "follower"):
        raise ActivityFailed(f"member must be any, leader or follower, not {member!r}")
    vpcs = cluster_vpcs(vpc_id, configuration, secrets)
    instances = _marked_instances("static-pod", configuration, secrets, vpcs, this_run=True)
    if not instances:
        members_ips = _control_plane_instances(node_label_selector, vpcs, configuration, secrets)
        members = sorted(members_ips)
        if not members:
            raise ActivityFailed(f"no control-plane instance found for {node_label_selector!r}")
        if component == "etcd":
            view = ask_etcd(members[0], ssm_document, 60, configuration, secrets)
            if problem := view.stop_problem():
                raise ActivityFailed(f"refusing to stop an etcd member: {problem}")
        else:
            serving = api_servers(configuration, secrets) if component == "kube-apiserver" else len(members)
            if serving < 2:
                raise ActivityFailed(
                    f"refusing to stop {component}: {serving} serve(s); stopping it would be a full outage"
                )
        if member == "any":
            chosen = random.choice(members)
        else:
            if component != "etcd":
                raise ActivityFailed(f"member {member!r} is for etcd, not {component}")
            leader = _leader_instance(view, members_ips)
            followers = [m for m in members if m != leader]
            if member == "follower" and not followers:
                raise ActivityFailed("a single control-plane member has no follower")
            chosen = leader if member == "leader" else random.choice(followers)
        instances = [chosen]
        _mark(instances, "static-pod", configuration, secrets)
    run_shell(
        instances, park_commands(component, manifests_dir), ssm_document, timeout_s, configuration, secrets
    )
    return {"component": component, "instances": instances}


def restore_static_pods(
    manifests_dir: str = "/etc/kubernetes/manifests",
    ssm_document: str = "AWS-RunShellScript",
    timeout_s: int = 120,
    vpc_id: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Rollback of park_static_pod: move every parked manifest back on this cluster's marked
    instances, then unmark them. Needs only EC2 and SSM when the API server is what was stopped
    (the VPC filter then needs vpc_id)."""
    vpcs = cluster_vpcs(vpc_id, configuration, secrets)
    instances = _marked_instances("static-pod", configuration, secrets, vpcs, this_run=False)
    run_shell(instances, restore_commands(manifests_dir), ssm_document, timeout_s, configuration, secrets)
    _unmark(instances, configuration, secrets)
    return instances


# --- zone blackhole with a network ACL ----------------------------------------------------------
# The timed undo. A subnet's ACL association can only be replaced by association id, and that
# id changes when the cut is applied, so a schedule made before the cut cannot move the subnet
# back. Instead the blackhole ACL is a copy of the subnet's previous ACL (same rules, same
# order) with deny-all rules in front (rule numbers 1 and 2); the schedules delete those deny
# rules, which needs only ids known before the cut, and leaves the subnet under the same rules
# it had. The harness's own restore then moves the subnets back and deletes the copy.
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


def shared_infrastructure_subnets(ec2: Any, vpc_id: str) -> dict[str, str]:
    """Subnet id -> what in it serves more than its zone: NAT gateways, interface and Gateway Load
    Balancer endpoints, transit gateway attachments. Cutting those subnets would cut other zones
    (private subnets routing through the NAT gateway, clients resolving an endpoint to this zone)."""
    shared: dict[str, str] = {}
    vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    for nat in ec2.describe_nat_gateways(Filter=vpc)["NatGateways"]:
        if nat.get("State") not in ("deleted", "deleting", "failed"):
            shared.setdefault(nat["SubnetId"], f"NAT gateway {nat['NatGatewayId']}")
    for endpoint in ec2.describe_vpc_endpoints(Filters=vpc)["VpcEndpoints"]:
        if endpoint.get("VpcEndpointType") in ("Interface", "GatewayLoadBalancer"):
            for subnet in endpoint.get("SubnetIds") or []:
                shared.setdefault(subnet, f"VPC endpoint {endpoint['VpcEndpointId']}")
    for attachment in ec2.describe_transit_gateway_vpc_attachments(Filters=vpc)[
        "TransitGatewayVpcAttachments"
    ]:
        if attachment.get("State") not in ("deleted", "deleting", "failed", "rejected"):
            for subnet in attachment.get("SubnetIds") or []:
                shared.setdefault(
                    subnet, f"transit gateway attachment {attachment['TransitGatewayAttachmentId']}"
                )
    return shared


def _zone_subnets(
    ec2: Any, availability_zone: str, cluster_name: str, vpc_id: str
) -> tuple[str, list[str], dict[str, str]]:
    """(VPC, subnets to cut, subnets skipped -> why)."""
    filters = zone_subnet_filters(availability_zone, cluster_name, vpc_id)
    subnets = ec2.describe_subnets(Filters=filters)["Subnets"]
    vpcs = {s["VpcId"] for s in subnets}
    if len(vpcs) != 1:
        raise ActivityFailed(
            f"the subnets of {availability_zone} for {filters} span {len(vpcs)} VPCs; give vpc_id"
        )
    vpc = vpcs.pop()
    shared = shared_infrastructure_subnets(ec2, vpc)
    skipped = {s["SubnetId"]: shared[s["SubnetId"]] for s in subnets if s["SubnetId"] in shared}
    cut = sorted(s["SubnetId"] for s in subnets if s["SubnetId"] not in shared)
    if not cut:
        raise ActivityFailed(f"every subnet of {availability_zone} holds shared infrastructure: {skipped}")
    return vpc, cut, skipped


def _blackhole_acls(ec2: Any, availability_zone: str, cluster: str) -> list[dict[str, Any]]:
    filters = [{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]
    if availability_zone:
        filters.append({"Name": f"tag:{BLACKHOLE_TAG}", "Values": [availability_zone]})
    else:
        filters.append({"Name": "tag-key", "Values": [BLACKHOLE_TAG]})
    return ec2.describe_network_acls(Filters=filters)["NetworkAcls"]


def _entry_args(entry: dict[str, Any]) -> dict[str, Any]:
    """A describe_network_acls entry as create_network_acl_entry arguments (rule number aside)."""
    args: dict[str, Any] = {
        "Egress": entry["Egress"],
        "Protocol": entry["Protocol"],
        "RuleAction": entry["RuleAction"],
    }
    for key in ("CidrBlock", "Ipv6CidrBlock", "PortRange", "IcmpTypeCode"):
        if entry.get(key):
            args[key] = entry[key]
    return args


def _make_blackhole_acl(
    ec2: Any,
    vpc: str,
    previous: dict[str, Any],
    availability_zone: str,
    schedule_group: str,
    configuration: Configuration,
) -> str:
    """A new ACL: deny-all rules first (DENY_RULES), then the previous ACL's rules in their order."""
    tags = [
        {"Key": BLACKHOLE_TAG, "Value": availability_zone},
        {"Key": COPY_OF_TAG, "Value": previous["NetworkAclId"]},
        {"Key": SCHEDULE_GROUP_TAG, "Value": schedule_group},
        *_mark_tags(configuration),
        {"Key": "Name", "Value": f"resilience-harness blackhole {availability_zone}"},
        {"Key": "app.kubernetes.io/managed-by", "Value": "resilience-harness"},
    ]
    acl_id = ec2.create_network_acl(
        VpcId=vpc, TagSpecifications=[{"ResourceType": "network-acl", "Tags": tags}]
    )["NetworkAcl"]["NetworkAclId"]
    try:
        for egress in (False, True):
            for number, cidr in DENY_RULES:
                block = {"Ipv6CidrBlock": cidr} if ":" in cidr else {"CidrBlock": cidr}
                ec2.create_network_acl_entry(
                    NetworkAclId=acl_id,
                    RuleNumber=number,
                    Egress=egress,
                    Protocol="-1",
                    RuleAction="deny",
                    **block,
                )
            copied = sorted(
                (e for e in previous["Entries"] if e["Egress"] == egress and e["RuleNumber"] < 32767),
                key=lambda e: e["RuleNumber"],
            )
            for offset, entry in enumerate(copied):
                ec2.create_network_acl_entry(
                    NetworkAclId=acl_id, RuleNumber=len(DENY_RULES) + 1 + offset, **_entry_args(entry)
                )
    except ClientError:
        ec2.delete_network_acl(NetworkAclId=acl_id)  # not associated yet: nothing was cut
        raise
    return acl_id


def _schedule_names(acl_id: str) -> dict[str, dict[str, Any]]:
    """Schedule name -> the DeleteNetworkAclEntry request it makes: one per deny rule and direction."""
    return {
        f"{SCHEDULE_PREFIX}{acl_id}-{'out' if egress else 'in'}-{number}": {
            "NetworkAclId": acl_id,
            "RuleNumber": number,
            "Egress": egress,
        }
        for egress in (False, True)
        for number, _ in DENY_RULES
    }


def _default_restore_role(configuration: Configuration, secrets: Secrets) -> str:
    account = aws_client("sts", configuration, secrets).get_caller_identity()["Account"]
    return f"arn:aws:iam::{account}:role/{RESTORE_ROLE_NAME}"


def _schedule_undo(
    acl_ids: list[str],
    at: datetime.datetime,
    role_arn: str,
    schedule_group: str,
    configuration: Configuration,
    secrets: Secrets,
) -> list[str]:
    """One-time schedules, at `at`, that delete each blackhole ACL's deny rules; their names.

    EventBridge Scheduler calls EC2 itself (a universal target) with `role_arn`: the harness
    need not be alive. A schedule already there (a re-run) is replaced with the new time.
    """
    scheduler = aws_client("scheduler", configuration, secrets)
    names = []
    for acl_id in acl_ids:
        for name, request in _schedule_names(acl_id).items():
            schedule = {
                "Name": name,
                "GroupName": schedule_group,
                "ScheduleExpression": f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
                "ScheduleExpressionTimezone": "UTC",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "ActionAfterCompletion": "DELETE",
                "Description": "resilience-harness: timed undo of a zone blackhole (deletes a deny rule)",
                "Target": {
                    "Arn": "arn:aws:scheduler:::aws-sdk:ec2:deleteNetworkAclEntry",
                    "RoleArn": role_arn,
                    "Input": json.dumps(request),
                    "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20},
                },
            }
            try:
                scheduler.create_schedule(**schedule)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConflictException":
                    raise
                scheduler.update_schedule(**schedule)
            names.append(name)
    return names


def _delete_schedules(
    names: list[str], schedule_group: str, configuration: Configuration, secrets: Secrets
) -> None:
    scheduler = aws_client("scheduler", configuration, secrets)
    for name in names:
        try:
            scheduler.delete_schedule(Name=name, GroupName=schedule_group)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":  # ran, and deleted itself
                raise


def blackhole_availability_zone(
    availability_zone: str,
    cluster_name: str = "",
    vpc_id: str = "",
    duration_s: float = 120,
    restore_margin_s: float = 120,
    restore_role_arn: str = "",
    schedule_group: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Cut the zone's subnets (the cluster's, by tag) off with deny-all network ACLs that undo
    themselves at `duration_s + restore_margin_s` from now, whether or not the harness is alive.

    Subnets holding shared infrastructure (NAT gateways, interface endpoints, transit gateway
    attachments) are never moved: they are returned under `skipped` with the reason. Before any
    subnet moves, the timed undo is scheduled (EventBridge Scheduler, as `restore_role_arn`,
    default role `resilience-harness-scheduler` of this account); if it cannot be, nothing is cut.
    Each subnet's previous ACL is recorded as a tag on its blackhole ACL, so the rollback restores
    it exactly. ACLs are stateless: established connections stop too. Run again, it reuses the
    blackhole ACLs, schedules the undo anew and moves only subnets not yet cut.
    """
    ec2 = aws_client("ec2", configuration, secrets)
    cluster, _ = mark_identity(configuration)
    vpc, subnets, skipped = _zone_subnets(ec2, availability_zone, cluster_name, vpc_id)
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])
    ours = {a["NetworkAclId"]: a for a in _blackhole_acls(ec2, availability_zone, cluster)}
    to_move = [
        (assoc, acl)
        for acl in current["NetworkAcls"]
        if acl["NetworkAclId"] not in ours
        for assoc in acl["Associations"]
        if assoc["SubnetId"] in subnets
    ]
    copies = {
        t["Value"]: acl_id
        for acl_id, acl in ours.items()
        for t in acl.get("Tags", [])
        if t["Key"] == COPY_OF_TAG
    }
    created = []
    try:
        for _, acl in to_move:
            if acl["NetworkAclId"] not in copies:
                copies[acl["NetworkAclId"]] = _make_blackhole_acl(
                    ec2, vpc, acl, availability_zone, schedule_group, configuration
                )
                created.append(copies[acl["NetworkAclId"]])
        at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            seconds=float(duration_s) + float(restore_margin_s)
        )
        role = restore_role_arn or _default_restore_role(configuration, secrets)
        acl_ids = sorted(set(copies.values()) | set(ours))
        schedules = _schedule_undo(acl_ids, at, role, schedule_group, configuration, secrets)
    except ClientError as exc:
        for acl_id in created:  # none of them is associated yet: nothing was cut
            ec2.delete_network_acl(NetworkAclId=acl_id)
        raise ActivityFailed(
            f"refusing to cut {availability_zone}: its timed undo cannot be set up: {exc}"
        ) from exc
    moved = []
    for assoc, acl in to_move:
        blackhole = copies[acl["NetworkAclId"]]
        ec2.create_tags(
            Resources=[blackhole],
            Tags=[{"Key": PREVIOUS_PREFIX + assoc["SubnetId"], "Value": acl["NetworkAclId"]}],
        )
        ec2.replace_network_acl_association(
            AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=blackhole
        )
        moved.append(assoc["SubnetId"])
    return {
        "network_acls": acl_ids,
        "vpc": vpc,
        "subnets": subnets,
        "moved": sorted(moved),
        "skipped": skipped,
        "restore_at": at.isoformat(),
        "schedules": schedules,
    }


def _acl_exists(ec2: Any, acl_id: str) -> bool:
    try:
        return bool(ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "InvalidNetworkAclID.NotFound":
            return False
        raise


def restore_availability_zone(
    availability_zone: str = "",
    schedule_group: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Undo this cluster's blackholes of the zone (every zone when none is given): each subnet back
    on its recorded ACL, the blackhole ACLs deleted, then their timed-undo schedules deleted.

    Needs nothing from the run: what to undo is read from the blackhole ACLs' tags, so
    `harness cleanup` and the target's heal() complete it too. Falls back to the VPC's
    default ACL for a subnet with no record (its previous ACL was deleted meanwhile, say),
    since a subnet must have one. Nothing to do, nothing done.
    """
    ec2 = aws_client("ec2", configuration, secrets)
    cluster, _ = mark_identity(configuration)
    restored = []
    for acl in _blackhole_acls(ec2, availability_zone, cluster):
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
        # last: were the harness to die before this, the schedules would only fire on a deleted ACL
        group = tags.get(SCHEDULE_GROUP_TAG, schedule_group)
        _delete_schedules(list(_schedule_names(acl["NetworkAclId"])), group, configuration, secrets)
    return sorted(restored)


# --- FIS ------------------------------------------------------------------------------------------
def start_fis_experiment(
    experiment_template_id: str,
    tags: dict[str, str] | None = None,
    start_timeout_s: float = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Start the FIS template, tagged with these tags and this cluster and run, and wait until it runs.

    FIS answers StartExperiment while the experiment is still initiating; a wrong role, a
    target that resolves to nothing or a stop condition in alarm turn it `failed` or `stopped`
    later. The activity fails with FIS's reason then, or when it is not running within
    `start_timeout_s` (the experiment is stopped), so a run with no fault cannot pass.
    """
    if not experiment_template_id:
        raise ActivityFailed("experiment_template_id is required (set fis_template_id)")
    fis = aws_client("fis", configuration, secrets)
    all_tags = {**(tags or {}), **{t["Key"]: t["Value"] for t in _mark_tags(configuration)}}
    experiment = fis.start_experiment(
        experimentTemplateId=experiment_template_id, tags=all_tags, clientToken=uuid.uuid4().hex
    )["experiment"]
    deadline = time.monotonic() + float(start_timeout_s)
    while True:
        state = experiment["state"]
        if state["status"] in ("running", "completed"):
            return experiment
        if state["status"] in ("failed", "stopping", "stopped", "cancelled"):
            raise ActivityFailed(
                f"FIS experiment {experiment['id']} {state['status']} before running: {state.get('reason', '')}"
            )
        if time.monotonic() > deadline:
            fis.stop_experiment(id=experiment["id"])
            raise ActivityFailed(
                f"FIS experiment {experiment['id']} still {state['status']} after {start_timeout_s} s: stopped"
            )
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
        experiment = fis.get_experiment(id=experiment["id"])["experiment"]


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


# --- heal: what a dead run left, found by this cluster's marks ------------------------------------
def heal(configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """Undo every AWS fault this cluster's marks show, whatever run left it; one line per step.

    For the Kubernetes target's heal() and `harness cleanup`: blackhole ACLs restored (every
    zone), kubelets started and static pods restored on marked instances, this cluster's
    active FIS experiments stopped. Never raises: a step that fails is reported as such.
    """
    cluster, _ = mark_identity(configuration)
    done: list[str] = []
    steps = (
        ("network ACL blackholes", lambda: restore_availability_zone("", configuration=configuration, secrets=secrets),
         "restored the network ACL of subnet(s) {} left blackholed"),
        ("instances marked kubelet", lambda: start_kubelet(configuration=configuration, secrets=secrets),
         "started the kubelet again on instance(s) {}"),
        ("instances marked static-pod", lambda: restore_static_pods(configuration=configuration, secrets=secrets),
         "moved parked static-pod manifests back on instance(s) {}"),
        ("FIS experiments", lambda: stop_fis_experiments({CLUSTER_TAG: cluster}, configuration, secrets),
         "stopped FIS experiment(s) {} still active"),
    )  # fmt: skip
    for what, step, said in steps:
        try:
            touched = step()
        except Exception as exc:  # heal runs in the engine's finally: report, never raise
            done.append(f"could not check AWS {what} of cluster {cluster}: {type(exc).__name__}: {exc}")
            continue
        if touched:
            done.append(said.format(", ".join(touched)))
    return done
