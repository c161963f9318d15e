"""What the cluster is, for result.json's "target": version, nodes, zones, provider, and the
timings that decide how fast a dead node's pods move (tolerations, node grace period).

Called once by the Kubernetes target when a run starts. Every fact is read from the API;
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

from harness.kubernetes.client import Connection

DEFAULT_TOLERATION_S = 300
"""What the DefaultTolerationSeconds admission plugin gives a pod that sets no toleration for
not-ready / unreachable nodes (the API server's --default-not-ready-toleration-seconds)."""
TIMEOUT = (5.0, 10.0)
_ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
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

    nodes = _read(lambda: core.list_node(_request_timeout=TIMEOUT).items, "nodes", unknown)
    if nodes is None:
        facts.update(nodes=None, instance_types=None, zones=None)
    else:
        facts["nodes"] = len(nodes)
        facts["instance_types"] = _count(nodes, _TYPE_LABELS) if nodes else {}
        facts["zones"] = _count(nodes, _ZONE_LABELS) if nodes else {}
    facts["provider"] = provider(facts["server_version"], nodes or [], evidence)
    facts["cloud_controller_deletes_dead_nodes"] = deletes_dead_nodes(facts["provider"], nodes, evidence)

    pods = _read(lambda: core.list_namespaced_pod(connection.namespace, label_selector=selector,
                                                  _request_timeout=TIMEOUT).items, "tolerations", unknown)  # fmt: skip
    not_ready, unreachable, source = tolerations(pods or [])
    facts["not_ready_toleration_s"] = not_ready
    facts["unreachable_toleration_s"] = unreachable
    evidence["tolerations"] = source

    system = _read(lambda: core.list_namespaced_pod("kube-system", _request_timeout=TIMEOUT).items,
                   "control_plane", unknown)  # fmt: skip
    facts["control_plane"] = control_plane(nodes or [], system) if system is not None else None
    grace = node_grace_period(system or [])
    facts["node_grace_period_s"] = grace
    if grace is None:
        unknown.setdefault(
            "node_grace_period_s",
            "kube-controller-manager's --node-monitor-grace-period is not visible (managed control plane, "
            "or the flag is unset and the version's default applies)",
        )
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

    A toleration without tolerationSeconds tolerates forever: null (the pod never moves).
    """
    for pod in pods:
        found: dict[str, int | None] = {}
        for tol in (pod.spec.tolerations if pod.spec else None) or []:
            if tol.effect not in (None, "NoExecute"):
                continue
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
                if tol.key == key or (tol.key is None and tol.operator == "Exists"):
                    found.setdefault(key, tol.toleration_seconds)
        if found:
            return (
                found.get("node.kubernetes.io/not-ready", 0),
                found.get("node.kubernetes.io/unreachable", 0),
                f"pod {pod.metadata.name}",
            )
        return (
            DEFAULT_TOLERATION_S,
            DEFAULT_TOLERATION_S,
            (f"pod {pod.metadata.name} lists no such toleration: the admission default applies"),
        )
    return DEFAULT_TOLERATION_S, DEFAULT_TOLERATION_S, "no pod of the selector seen: the admission default"


def control_plane(nodes: list[Any], system_pods: list[Any]) -> dict[str, Any] | str:
    """Control-plane nodes and static pods when they are visible, else "managed/not visible"."""
    cp_nodes = sorted(n.metadata.name for n in nodes if _label(n, _CONTROL_PLANE_LABELS) is not None)
    names = [p.metadata.name for p in system_pods]
    etcd = sorted(n for n in names if n.startswith("etcd-"))
    apiservers = sorted(n for n in names if n.startswith("kube-apiserver-"))
    if not (cp_nodes or etcd or apiservers):
        return "managed/not visible"
    zones = {n.metadata.name: _label(n, _ZONE_LABELS) for n in nodes if n.metadata.name in cp_nodes}
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
