"""What the cluster is, for result.json's "target": version, nodes, zones, provider, and the
timings that decide how fast a dead node's pods move (tolerations, node grace period).

Called once by the Kubernetes target when a run starts. Every fact is read from the API
(LISTs in pages of 500, from the API server's watch cache: `client.list_all`);
what cannot be read (a managed control plane hides its flags and members; RBAC may forbid
kube-system) is null, and `unknown` says why. Nothing is filled in from a guess, except the
two fields whose names say so (`provider`, `cloud_controller_deletes_dead_nodes`), each with its
evidence in `evidence`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from kubernetes import client as k8s_client

from harness.kubernetes import client
from harness.kubernetes.client import Connection

DEFAULT_TOLERATION_S = 300
"""What the DefaultTolerationSeconds admission plugin gives a pod that sets no toleration for
not-ready / unreachable nodes (the API server's --default-not-ready-toleration-seconds and
--default-unreachable-toleration-seconds, both 300 by default and on EKS)."""
TIMEOUT = (5.0, 10.0)
ZONE_ID_LABEL = "topology.k8s.aws/zone-id"
"""The AWS zone ID (`use1-az1`): the same physical zone in every account, where the zone name
(`us-east-1a`) is mapped per account. EKS nodes carry it."""
_ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
_NOT_READY, _UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"
_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
_CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


def cluster_facts(connection: Connection, selector: str | None) -> dict[str, Any]:
    """The "target" entry of result.json for a Kubernetes cluster."""
    core = k8s_client.CoreV1Api(connection.api)
    unknown: dict[str, str] = {}
    evidence: dict[str, str] = {}
    facts: dict[str, Any] = {
        "kind": "kubernetes",
        "context": connection.context,
        "server": connection.server,
        "namespace": connection.namespace,
        "selector": selector,
    }
    version = _read(lambda: k8s_client.VersionApi(connection.api).get_code(_request_timeout=TIMEOUT),
                    "server_version", unknown)  # fmt: skip
    facts["server_version"] = version.git_version if version is not None else None

    nodes = _read(lambda: client.list_all(core.list_node, resource_version="0", _request_timeout=TIMEOUT),
                  "nodes", unknown)  # fmt: skip
    if nodes is None:
        facts.update(nodes=None, instance_types=None, zones=None, zone_names=None)
    else:
        facts["nodes"] = len(nodes)
        facts["instance_types"] = _count(nodes, _TYPE_LABELS) if nodes else {}
        facts["zones"] = dict(sorted(Counter(zone_of(n) or "unlabelled" for n in nodes).items()))
        facts["zone_names"] = zone_names(nodes)
        evidence["zones"] = (
            f"keyed by {ZONE_ID_LABEL} (AZ IDs name the same zone in every AWS account; AZ names do not)"
            if facts["zone_names"]
            else "keyed by topology.kubernetes.io/zone: no node carries " + ZONE_ID_LABEL
        )
    facts["provider"] = provider(facts["server_version"], nodes or [], evidence)
    facts["cloud_controller_deletes_dead_nodes"] = deletes_dead_nodes(facts["provider"], nodes, evidence)

    pods = _read(lambda: client.list_all(core.list_namespaced_pod, connection.namespace, label_selector=selector,
                                         resource_version="0", _request_timeout=TIMEOUT), "tolerations", unknown)  # fmt: skip
    not_ready, unreachable, source = tolerations(pods or [])
    facts["not_ready_toleration_s"] = not_ready
    facts["unreachable_toleration_s"] = unreachable
    evidence["tolerations"] = source

    system = _read(lambda: client.list_all(core.list_namespaced_pod, "kube-system", resource_version="0",
                                           _request_timeout=TIMEOUT), "control_plane", unknown)  # fmt: skip
    facts["control_plane"] = control_plane(nodes or [], system) if system is not None else None
    grace = node_grace_period(system or [])
    facts["node_grace_period_s"] = grace
    if grace is None:
        unknown.setdefault(
            "node_grace_period_s",
            "kube-controller-manager's --node-monitor-grace-period is not visible (managed control plane, "
            "or the flag is unset and the version's default applies)",
        )
    skew = connection.clock_skew()
    facts["clock_skew_s"], facts["clock_skew_error_s"] = skew.offset_s, skew.error_s
    if skew.offset_s is None:
        unknown["clock_skew_s"] = f"{skew.note}; cluster event times are used as they are"
    else:
        evidence["clock_skew_s"] = f"{skew.note}; the API server's clock minus the harness's"
    facts["evidence"] = evidence
    facts["unknown"] = unknown
    return facts


def _read(call: Any, fact: str, unknown: dict[str, str]) -> Any:
    try:
        return call()
    except Exception as exc:  # RBAC, timeouts: a fact we cannot see, not a failed run
        status = getattr(exc, "status", None)
        unknown[fact] = f"could not read it: {status or type(exc).__name__}"
        return None


def _label(obj: Any, keys: tuple[str, ...]) -> str | None:
    labels = obj.metadata.labels or {}
    return next((labels[k] for k in keys if k in labels), None)


def zone_of(node: Any) -> str | None:
    """The node's zone as comparisons should use it: the AWS zone ID when labelled, else the zone name."""
    return _label(node, (ZONE_ID_LABEL,)) or _label(node, _ZONE_LABELS)


def zone_names(nodes: list[Any]) -> dict[str, str]:
    """Zone ID -> zone name, for the nodes that carry both (empty off AWS)."""
    out = {}
    for n in nodes:
        zone_id, name = _label(n, (ZONE_ID_LABEL,)), _label(n, _ZONE_LABELS)
        if zone_id and name:
            out[zone_id] = name
    return dict(sorted(out.items()))


def _count(nodes: list[Any], keys: tuple[str, ...]) -> dict[str, int]:
    """Nodes per label value; nodes without the label under "unlabelled"."""
    return dict(sorted(Counter(_label(n, keys) or "unlabelled" for n in nodes).items()))


def provider(version: str | None, nodes: list[Any], evidence: dict[str, str]) -> str | None:
    """eks, gke, aks or self-managed, from the version string, providerIDs and labels; None if nothing says."""
    ids = [(n.spec.provider_id or "") if n.spec else "" for n in nodes]
    labels: set[str] = (
        set().union(*[set((n.metadata.labels or {}).keys()) for n in nodes]) if nodes else set()
    )
    version = version or ""
    if "-eks-" in version or any(k.startswith("eks.amazonaws.com/") for k in labels):
        evidence["provider"] = f"server version {version!r} / eks.amazonaws.com labels"
        return "eks"
    if "-gke." in version or any(k.startswith("cloud.google.com/gke") for k in labels):
        evidence["provider"] = f"server version {version!r} / cloud.google.com/gke labels"
        return "gke"
    if any(i.startswith("azure://") for i in ids) or any(
        k.startswith("kubernetes.azure.com/") for k in labels
    ):
        evidence["provider"] = "azure:// providerIDs / kubernetes.azure.com labels"
        return "aks"
    if not version and not nodes:
        return None
    clouds = sorted({i.split("://", 1)[0] for i in ids if "://" in i})
    evidence["provider"] = f"no managed-service marks in version {version!r} or node labels" + (
        f"; nodes on {', '.join(clouds)}" if clouds else "; nodes have no providerID"
    )
    return "self-managed"


def deletes_dead_nodes(kind: str | None, nodes: list[Any] | None, evidence: dict[str, str]) -> bool | None:
    """Whether a cloud controller deletes the Node object of a terminated instance (a guess)."""
    if kind in ("eks", "gke", "aks"):
        evidence["cloud_controller_deletes_dead_nodes"] = (
            f"{kind} runs the cloud node-lifecycle controller: a terminated instance's Node is deleted"
        )
        return True
    if nodes and all(not (n.spec and n.spec.provider_id) for n in nodes):
        evidence["cloud_controller_deletes_dead_nodes"] = (
            "no node has a providerID: no cloud controller can match nodes to instances"
        )
        return False
    return None


def tolerations(pods: list[Any]) -> tuple[int | None, int | None, str]:
    """Effective NoExecute toleration seconds for not-ready and unreachable nodes, and where from.

    Read from the first pod of the selector. A toleration without tolerationSeconds tolerates
    forever: null (the pod never moves). One the pod does not list gets what the
    DefaultTolerationSeconds admission plugin adds (300 s), matched as the plugin matches: by
    the key, or an empty key, with effect NoExecute or none. Admitted pods normally list both;
    if they do not, the plugin may be off, and then an untolerated taint evicts at once.
    """
    for pod in pods:
        found: dict[str, int | None] = {}
        for tol in (pod.spec.tolerations if pod.spec else None) or []:
            if tol.effect not in (None, "", "NoExecute"):
                continue
            for key in (_NOT_READY, _UNREACHABLE):
                if tol.key == key or not tol.key:
                    found.setdefault(key, tol.toleration_seconds)
        defaulted = [k.rsplit("/", 1)[1] for k in (_NOT_READY, _UNREACHABLE) if k not in found]
        source = f"pod {pod.metadata.name}"
        if defaulted:
            source += (
                f": lists no {' or '.join(defaulted)} toleration, so the DefaultTolerationSeconds default "
                f"({DEFAULT_TOLERATION_S} s) is reported (0 s if that admission plugin is off)"
            )
        return (
            found.get(_NOT_READY, DEFAULT_TOLERATION_S),
            found.get(_UNREACHABLE, DEFAULT_TOLERATION_S),
            source,
        )
    return (
        DEFAULT_TOLERATION_S,
        DEFAULT_TOLERATION_S,
        f"no pod of the selector seen: the DefaultTolerationSeconds default ({DEFAULT_TOLERATION_S} s)",
    )


def control_plane(nodes: list[Any], system_pods: list[Any]) -> dict[str, Any] | str:
    """Control-plane nodes and static pods when they are visible, else "managed/not visible"."""
    cp_nodes = sorted(n.metadata.name for n in nodes if _label(n, _CONTROL_PLANE_LABELS) is not None)
    names = [p.metadata.name for p in system_pods]
    etcd = sorted(n for n in names if n.startswith("etcd-"))
    apiservers = sorted(n for n in names if n.startswith("kube-apiserver-"))
    if not (cp_nodes or etcd or apiservers):
        return "managed/not visible"
    zones = {n.metadata.name: zone_of(n) for n in nodes if n.metadata.name in cp_nodes}
    return {
        "nodes": cp_nodes,
        "zones": zones,
        "etcd_members": etcd,
        "apiservers": apiservers,
    }


def node_grace_period(system_pods: list[Any]) -> float | None:
    """--node-monitor-grace-period from a visible kube-controller-manager's command line."""
    for pod in system_pods:
        if not pod.metadata.name.startswith("kube-controller-manager"):
            continue
        for container in (pod.spec.containers if pod.spec else None) or []:
            for arg in [*(container.command or []), *(container.args or [])]:
                if arg.startswith("--node-monitor-grace-period="):
                    return duration_s(arg.split("=", 1)[1])
    return None


def duration_s(text: str) -> float | None:
    """A Go duration (`40s`, `1m30s`, `500ms`) in seconds; None if it is not one."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * units[u] for n, u in parts)
