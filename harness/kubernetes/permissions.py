"""What each activity needs from the cluster and from AWS: one declared table, read by the preflight.

`ACTIVITIES` maps every activity function the catalog calls (chaosk8s, chaosaws and the
harness's own in harness.chaos.activities.kubernetes and .aws) to the Kubernetes permissions
(verb, API group, resource, namespace, name), the custom resource definitions and the IAM
actions it needs. The entries are read from the code that makes the calls (chaosk8s 0.39,
chaosaws 0.35 and ours); `ENGINE` lists what the engine's Kubernetes target itself needs
around every scenario (sampler, facts, ground truth, heal). `requirements` turns an
experiment's activities, with their arguments substituted, into concrete checks.

Pure: values in, values out. tests/kubernetes/test_preflight.py holds the table against the
bundled catalog (every activity listed) and against deploy/gameday/rbac.yaml (every need granted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

NS = "$ns"
"""The namespace is the activity's `ns` argument (default "default", as in chaosk8s)."""
ALL = "*"
"""Every namespace (a cluster-wide LIST, or pods of whatever namespace a drained node hosts)."""
CLUSTER = None
"""A cluster-scoped resource (nodes, CRDs) or a non-resource URL."""


@dataclass(frozen=True)
class Need:
    """One Kubernetes permission an activity needs.

    `namespace` is NS, ALL, CLUSTER or a fixed name; `name` a fixed resource name or `$arg` for
    the activity argument holding it; `when` an argument that must be true for the need to hold
    (a drain only when `drain: true`), or `arg=value` for one that must equal a value. A `resource` starting with "/" is a non-resource URL.
    """

    verb: str
    resource: str
    group: str = ""
    namespace: str | None = NS
    name: str | None = None
    when: str | None = None


@dataclass(frozen=True)
class Activity:
    """Everything one activity function needs."""

    kubernetes: tuple[Need, ...] = ()
    crds: tuple[str, ...] = ()
    """CustomResourceDefinitions that must be installed (Chaos Mesh's NetworkChaos)."""
    aws: tuple[str, ...] = ()
    """IAM actions (`ec2:TerminateInstances`)."""


NETWORK_CHAOS_CRD = "networkchaos.chaos-mesh.org"
_CHAOS = "chaos-mesh.org"
_DRAIN = (  # chaosk8s drain_nodes and the harness's drain: cordon, then evict the node's pods of every namespace
    Need("list", "nodes", namespace=CLUSTER),
    Need("patch", "nodes", namespace=CLUSTER),
    Need("list", "pods", namespace=ALL),
    Need("create", "pods/eviction", namespace=ALL),
    Need("get", "pods", namespace=ALL),
)
_SSM = ("ec2:DescribeInstances", "ec2:CreateTags", "ssm:SendCommand", "ssm:GetCommandInvocation")
_SSM_READ = ("ec2:DescribeInstances", "ssm:SendCommand", "ssm:GetCommandInvocation")
_SSM_UNDO = ("ec2:DescribeInstances", "ec2:DeleteTags", "ssm:SendCommand", "ssm:GetCommandInvocation")

_K8S = "harness.chaos.activities.kubernetes."
_AWS = "harness.chaos.activities.aws."
ACTIVITIES: dict[str, Activity] = {
    # chaosk8s
    "chaosk8s.deployment.probes.deployment_available_and_healthy": Activity(
        (Need("list", "deployments", "apps"),)
    ),
    "chaosk8s.pod.probes.pods_in_conditions": Activity((Need("list", "pods"),)),
    "chaosk8s.pod.actions.terminate_pods": Activity((Need("list", "pods"), Need("delete", "pods"))),
    "chaosk8s.pod.actions.delete_pods": Activity((Need("list", "pods"), Need("delete", "pods"))),
    "chaosk8s.node.actions.cordon_node": Activity(
        (Need("list", "nodes", namespace=CLUSTER), Need("patch", "nodes", namespace=CLUSTER))
    ),
    "chaosk8s.node.actions.uncordon_node": Activity(
        (Need("list", "nodes", namespace=CLUSTER), Need("patch", "nodes", namespace=CLUSTER))
    ),
    "chaosk8s.node.actions.drain_nodes": Activity(_DRAIN),
    # the harness's own Kubernetes activities
    _K8S + "scale_deployment_recording": Activity(
        (Need("get", "deployments", "apps", name="$name"), Need("patch", "deployments", "apps", name="$name"))
    ),
    _K8S + "restore_deployment_scale": Activity(
        (Need("get", "deployments", "apps", name="$name"), Need("patch", "deployments", "apps", name="$name"))
    ),
    _K8S + "deployment_fully_available": Activity(
        (Need("get", "deployments", "apps", name="$name"), Need("list", "pods", when="label_selector"))
    ),
    _K8S + "wait_for_deployment": Activity(
        (Need("get", "deployments", "apps", name="$name"), Need("list", "pods", when="label_selector"))
    ),
    _K8S + "terminate_service_pods": Activity(
        (
            Need("list", "pods"),
            Need("delete", "pods"),
            Need("list", "nodes", namespace=CLUSTER, when="on_cordoned_nodes"),
        )
    ),
    _K8S + "cordon_nodes_hosting": Activity(
        (
            Need("list", "nodes", namespace=CLUSTER),
            Need("patch", "nodes", namespace=CLUSTER),
            Need("list", "pods"),
            *(Need(n.verb, n.resource, n.group, n.namespace, when="drain") for n in _DRAIN),
        )
    ),
    _K8S + "uncordon_harness_nodes": Activity(
        (Need("list", "nodes", namespace=CLUSTER), Need("patch", "nodes", namespace=CLUSTER))
    ),
    _K8S + "deny_pod_traffic": Activity(
        tuple(Need(v, "networkpolicies", "networking.k8s.io") for v in ("create", "get", "update"))
    ),
    _K8S + "allow_pod_traffic": Activity(
        tuple(Need(v, "networkpolicies", "networking.k8s.io") for v in ("get", "delete"))
    ),
    _K8S + "crd_installed": Activity(
        (Need("get", "customresourcedefinitions", "apiextensions.k8s.io", CLUSTER, name="$name"),)
    ),
    _K8S + "start_network_chaos": Activity(
        (
            Need("create", "networkchaos", _CHAOS),
            Need("get", "networkchaos", _CHAOS),
            Need("delete", "networkchaos", _CHAOS),  # a leftover of ours is replaced
        ),
        crds=(NETWORK_CHAOS_CRD,),
    ),
    _K8S + "stop_network_chaos": Activity(
        (Need("delete", "networkchaos", _CHAOS), Need("get", "networkchaos", _CHAOS)),
        crds=(NETWORK_CHAOS_CRD,),
    ),
    _K8S + "service_answers": Activity(
        # EndpointSlices; Endpoints only on a cluster without them (not asked for here)
        (Need("list", "endpointslices", "discovery.k8s.io"),)
    ),
    _K8S + "apiserver_load": Activity(
        (Need("list", "pods"), Need("list", "pods", namespace=ALL, when="all_namespaces"))
    ),
    _K8S + "apiserver_latency_ms": Activity((Need("list", "pods"),)),
    # the harness's own AWS activities (and the Kubernetes reads some of them make)
    _AWS + "instance_filters_are_scoped": Activity(aws=("ec2:DescribeInstances",)),
    _AWS + "stop_kubelet": Activity(
        (Need("list", "pods"), Need("get", "nodes", namespace=CLUSTER)), aws=_SSM
    ),
    _AWS + "start_kubelet": Activity(aws=_SSM_UNDO),
    _AWS + "find_etcd_leader": Activity((Need("list", "nodes", namespace=CLUSTER),), aws=_SSM_READ),
    _AWS + "park_static_pod": Activity(
        (
            Need("list", "nodes", namespace=CLUSTER),
            # apiserver-stop asks how many API servers serve before stopping one
            Need("get", "endpoints", namespace="default", name="kubernetes", when="component=kube-apiserver"),
        ),
        aws=_SSM,
    ),
    _AWS + "restore_static_pods": Activity(aws=_SSM_UNDO),
    _AWS + "blackhole_availability_zone": Activity(
        aws=(
            "sts:GetCallerIdentity",
            "ec2:DescribeSubnets",
            "ec2:DescribeNatGateways",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeTransitGatewayVpcAttachments",
            "ec2:DescribeNetworkAcls",
            "ec2:CreateNetworkAcl",
            "ec2:CreateNetworkAclEntry",
            "ec2:CreateTags",
            "ec2:ReplaceNetworkAclAssociation",
            "ec2:DeleteNetworkAcl",
            "scheduler:CreateSchedule",
            "iam:PassRole",
        )
    ),
    _AWS + "restore_availability_zone": Activity(
        aws=(
            "ec2:DescribeNetworkAcls",
            "ec2:ReplaceNetworkAclAssociation",
            "ec2:DeleteNetworkAcl",
            "scheduler:DeleteSchedule",
        )
    ),
    _AWS + "stop_fis_experiments": Activity(aws=("fis:ListExperiments", "fis:StopExperiment")),
    _AWS + "start_fis_experiment": Activity(
        aws=("fis:StartExperiment", "fis:TagResource", "fis:GetExperiment", "fis:StopExperiment")
    ),
    _AWS + "terminate_node_group_instances": Activity(
        # the harness's own node (HARNESS_NODE_NAME), to leave its instance out
        (Need("get", "nodes", namespace=CLUSTER),),
        aws=("ec2:DescribeInstances", "ec2:TerminateInstances"),
    ),
    _AWS + "terminate_asg_instances": Activity(
        (Need("get", "nodes", namespace=CLUSTER),),
        aws=("autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances", "ec2:TerminateInstances"),
    ),
    # chaosaws
    "chaosaws.ec2.actions.terminate_instances": Activity(
        aws=("ec2:DescribeInstances", "ec2:TerminateInstances")
    ),
    "chaosaws.asg.actions.terminate_random_instances": Activity(
        aws=("autoscaling:DescribeAutoScalingGroups", "ec2:TerminateInstances")
    ),
    "chaosaws.asg.probes.desired_equals_healthy": Activity(aws=("autoscaling:DescribeAutoScalingGroups",)),
    "chaosaws.fis.actions.start_experiment": Activity(aws=("fis:StartExperiment", "fis:TagResource")),
}


_LEASE = "resilience-harness-lock"
"""harness.kubernetes.lease.LEASE_NAME (this module is pure: no Kubernetes client import)."""


@dataclass(frozen=True)
class EngineNeed:
    """A permission the engine's Kubernetes target needs in the plan's namespace (NS), whatever runs."""

    need: Need
    used_by: str
    blocks: bool = False
    """Without it no run can start (the run Lease), so the preflight blocks rather than warns."""


ENGINE: tuple[EngineNeed, ...] = (
    EngineNeed(Need("list", "pods"), "control-plane sampler"),
    EngineNeed(Need("get", "serviceaccounts", name="default"), "control-plane sampler"),
    EngineNeed(Need("get", "/readyz", namespace=CLUSTER), "control-plane sampler"),
    EngineNeed(Need("get", "/livez", namespace=CLUSTER), "control-plane sampler"),
    EngineNeed(Need("list", "nodes", namespace=CLUSTER), "control-plane sampler"),
    EngineNeed(Need("list", "deployments", "apps"), "control-plane sampler"),
    # the Service's ready endpoints; its Endpoints (get) only where slices cannot be listed
    EngineNeed(Need("list", "endpointslices", "discovery.k8s.io"), "control-plane sampler (endpoints)"),
    EngineNeed(Need("get", "/version", namespace=CLUSTER), "cluster facts"),
    EngineNeed(Need("list", "pods", namespace="kube-system"), "cluster facts"),
    EngineNeed(Need("list", "events"), "ground truth"),
    EngineNeed(Need("patch", "nodes", namespace=CLUSTER), "heal()"),
    EngineNeed(Need("patch", "deployments", "apps"), "heal()"),
    EngineNeed(Need("get", "deployments", "apps", "kube-system", name="coredns"), "heal()"),
    EngineNeed(Need("patch", "deployments", "apps", "kube-system", name="coredns"), "heal()"),
    EngineNeed(Need("list", "networkpolicies", "networking.k8s.io"), "heal()"),
    EngineNeed(Need("delete", "networkpolicies", "networking.k8s.io"), "heal()"),
    EngineNeed(Need("list", "networkchaos", _CHAOS), "heal()"),
    EngineNeed(Need("delete", "networkchaos", _CHAOS), "heal()"),
    *(
        EngineNeed(
            Need(verb, "leases", "coordination.k8s.io", name=_LEASE), "the run lock (Lease)", blocks=True
        )
        for verb in ("get", "update")
    ),
    # create cannot be limited by name (the name is not known to RBAC before the object exists)
    EngineNeed(Need("create", "leases", "coordination.k8s.io"), "the run lock (Lease)", blocks=True),
)
"""Read from harness/kubernetes/probes.py, facts.py and target.py. Without one of these the run
completes with less: a missing sample, fact or event, or a leftover heal() cannot undo."""


@dataclass(frozen=True)
class Requirement:
    """A concrete permission to check, and who needs it."""

    verb: str
    resource: str
    group: str
    namespace: str | None
    """A namespace; "" for every namespace; None for cluster-scoped and non-resource URLs."""
    name: str | None
    needed_by: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple[str, str, str, str | None, str | None]:
        return (self.verb, self.group, self.resource, self.namespace, self.name)

    def describe(self) -> str:
        """`delete pods in subs`, `patch deployments.apps coredns in kube-system`, `get /readyz`."""
        if self.resource.startswith("/"):
            return f"{self.verb} {self.resource}"
        what = self.resource + (f".{self.group}" if self.group else "")
        named = f" {self.name}" if self.name else ""
        if self.namespace is None:
            where = " (cluster-wide)"
        elif self.namespace == "":
            where = " in all namespaces"
        else:
            where = f" in {self.namespace}"
        return f"{self.verb} {what}{named}{where}"


def _holds(when: str, arguments: Mapping[str, Any]) -> bool:
    """`arg` holds when the argument is true; `arg=value` when it equals value."""
    name, _, value = when.partition("=")
    if value:
        return str(arguments.get(name, "")).strip() == value
    return _truthy(arguments.get(name))


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


def concrete(
    need: Need, arguments: Mapping[str, Any], target_namespace: str | None = None
) -> Requirement | None:
    """The need for these arguments; None when its `when` argument is false.

    `target_namespace` stands for NS when the need is the engine's (no activity arguments).
    """
    if need.when is not None and not _holds(need.when, arguments):
        return None
    if need.namespace == NS:
        namespace: str | None = str(arguments.get("ns") or target_namespace or "default")
    elif need.namespace == ALL:
        namespace = ""
    else:
        namespace = need.namespace
    name = need.name
    if name is not None and name.startswith("$"):
        value = arguments.get(name[1:])
        name = str(value) if value not in (None, "") else None
    return Requirement(need.verb, need.resource, need.group, namespace, name)


@dataclass(frozen=True)
class Call:
    """One activity of one scenario, as the preflight sees it."""

    scenario: str
    activity: str
    """The activity's name in its experiment."""
    function: str
    """`module.func`."""
    arguments: Mapping[str, Any]
    experiment: str = ""
    """The experiment file's name, for messages."""

    @property
    def who(self) -> str:
        """`pod-kill (pod-kill.yaml): terminate-one-pod-of-the-service`."""
        where = f" ({self.experiment})" if self.experiment else ""
        return f"{self.scenario}{where}: {self.activity}"


@dataclass
class Needs:
    """Everything a plan's experiments need, merged; which calls the table does not know."""

    kubernetes: list[Requirement]
    engine: list[Requirement]
    crds: dict[str, list[str]]
    """CRD name -> the scenarios needing it."""
    aws: dict[str, list[str]]
    """IAM action -> who needs it (`scenario: activity`)."""
    unknown: list[Call]


def requirements(calls: Iterable[Call], target_namespace: str) -> Needs:
    """Merge the needs of every call; duplicates keep every caller, in first-seen order."""
    merged: dict[tuple[Any, ...], Requirement] = {}
    crds: dict[str, list[str]] = {}
    aws: dict[str, list[str]] = {}
    unknown: list[Call] = []
    for call in calls:
        entry = ACTIVITIES.get(call.function)
        if entry is None:
            unknown.append(call)
            continue
        who = call.who
        for need in entry.kubernetes:
            req = concrete(need, call.arguments)
            if req is None:
                continue
            seen = merged.get(req.key)
            users = seen.needed_by if seen else ()
            if who not in users:
                users = (*users, who)
            merged[req.key] = Requirement(req.verb, req.resource, req.group, req.namespace, req.name, users)
        for crd in entry.crds:
            crds.setdefault(crd, [])
            if call.scenario not in crds[crd]:
                crds[crd].append(call.scenario)
        for action in entry.aws:
            aws.setdefault(action, [])
            if who not in aws[action]:
                aws[action].append(who)
    engine: list[Requirement] = []
    for item in ENGINE:
        req = concrete(item.need, {}, target_namespace)
        if req is not None and item.blocks:
            seen = merged.get(req.key)
            users = (*(seen.needed_by if seen else ()), item.used_by)
            merged[req.key] = Requirement(req.verb, req.resource, req.group, req.namespace, req.name, users)
        elif req is not None and req.key not in merged:
            engine.append(
                Requirement(req.verb, req.resource, req.group, req.namespace, req.name, (item.used_by,))
            )
    return Needs(list(merged.values()), engine, crds, aws, unknown)


def uses_aws(function: str) -> bool:
    """Whether an activity function acts on AWS (chaosaws or the harness's own AWS activities)."""
    return function.startswith("chaosaws.") or function.startswith(_AWS)
