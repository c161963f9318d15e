"""Chaos Toolkit actions and probes for real Kubernetes clusters (python provider).

The catalog in experiments/kubernetes/ uses chaosk8s wherever its functions are safe to
roll back; these fill the gaps:

- undo exactly what was done: a scale-down records the replica count it replaced, a
  cordon marks the nodes it cordoned, so a rollback restores those and nothing else (a
  node an operator cordoned for maintenance stays cordoned);
- rollbacks that are safe to run twice, or when the action never ran (chaosk8s's
  `remove_network_policy` and `delete_custom_object` fail on a missing object);
- the engine passes the service's pods as a selector string (`app=subs`) while
  NetworkPolicy and Chaos Mesh want a LabelSelector object: `label_selector_object`;
- refusals where chaosk8s would act on too much: pod deletion and cordons without a
  selector, the harness's own node ($HARNESS_NODE_NAME), a drain that would evict a pod no
  controller brings back;
- waits that outlast a busy API server: every call has a `_request_timeout`, and the waits
  retry 429s, 5xx and timeouts until their deadline (a drain retries a PodDisruptionBudget's
  429 the same way, where chaosk8s's drain gives up on the first);
- a Chaos Mesh fault confirmed: a leftover object of the same name is replaced, not taken for
  the fault, and the stop waits until Chaos Mesh's finalizer lets the object go;
- probes of the service as its users reach it (the load's URL and the Service's ready
  endpoints) and of the API server itself.

Every function takes `configuration` and `secrets` as chaosk8s's do; the client comes from
`chaosk8s.create_k8s_api_client`, so kubeconfig, in-cluster and environment handling are
chaosk8s's own. `configuration.kubernetes_context` (which the engine always sets) selects the
kubeconfig context for these functions; chaosk8s's own functions read $KUBERNETES_CONTEXT.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import statistics
import threading
import time
from typing import Any

import chaosk8s
import urllib3
from chaoslib.exceptions import ActivityFailed
from kubernetes import client
from kubernetes.client.exceptions import ApiException

Configuration = dict[str, Any] | None
Secrets = dict[str, Any] | None

MANAGED_BY = {"app.kubernetes.io/managed-by": "resilience-harness"}
PREVIOUS_REPLICAS = "resilience-harness.io/previous-replicas"
"""Annotation on a deployment we scaled: the replica count to restore."""
CORDONED = "resilience-harness.io/cordoned"
"""Label on a node we cordoned (a label, so the rollback finds them with one LIST)."""
CHAOS_MESH = ("chaos-mesh.org", "v1alpha1", "networkchaos")
REQUEST_TIMEOUT = (5.0, 15.0)
"""(connect, read) seconds for every call: an API server under a fault may accept a connection and
never answer, and a call without a timeout would hold the experiment (and its rollbacks) forever."""
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers a wait retries until its deadline: throttling, and an API server or etcd in trouble."""
WAIT_INTERVAL_S = 2.0
"""Between two checks of a wait: a replacement pod takes seconds, so finer polling only adds load."""
HARNESS_NODE_ENV = "HARNESS_NODE_NAME"
"""The harness's own node, from the downward API (spec.nodeName) in deploy/gameday."""
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
"""On the API's copy of a static pod: the kubelet owns it, an eviction cannot move it."""


def _secrets(configuration: Configuration, secrets: Secrets) -> dict[str, Any]:
    """chaosk8s's secrets, with the configured context unless the secrets name one."""
    merged = dict(secrets or {})
    context = (configuration or {}).get("kubernetes_context")
    if context and "KUBERNETES_CONTEXT" not in merged:
        merged["KUBERNETES_CONTEXT"] = context
    return merged


def api_client(configuration: Configuration = None, secrets: Secrets = None) -> client.ApiClient:
    """An API client for the configured cluster (chaosk8s's own loading rules)."""
    return chaosk8s.create_k8s_api_client(_secrets(configuration, secrets))


def _one_try_client(configuration: Configuration, secrets: Secrets) -> client.ApiClient:
    """As api_client, but each request is tried once, so that its timeout bounds it.

    urllib3 otherwise retries a GET that timed out three times: a request given 10 s could
    take 40 s, and a time-bounded action would run on past its end.
    """
    base = api_client(configuration, secrets)
    settings = base.configuration  # a fresh Configuration per client: ours to change
    base.close()
    settings.retries = False
    return client.ApiClient(settings)


# --- selectors --------------------------------------------------------------------------
_SET_TERM = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b=c` has two terms)."""
    terms, depth, current = [], 0, []
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


def label_selector_object(label_selector: str) -> dict[str, Any]:
    """A kubectl-style selector string as a LabelSelector (matchLabels, matchExpressions).

    An empty selector is refused: in a NetworkPolicy or a Chaos Mesh selector it would
    select every pod of the namespace, not the service's.
    """
    terms = _split_terms(label_selector or "")
    if not terms:
        raise ActivityFailed("an empty label selector would select every pod of the namespace")
    labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for term in terms:
        if match := _SET_TERM.match(term):
            key, op, values = match.groups()
            expressions.append(
                {
                    "key": key,
                    "operator": "In" if op == "in" else "NotIn",
                    "values": [v.strip() for v in values.split(",") if v.strip()],
                }
            )
        elif "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            expressions.append({"key": key, "operator": "NotIn", "values": [value]})
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
            labels[key] = value
        elif term.startswith("!"):
            expressions.append({"key": term[1:].strip(), "operator": "DoesNotExist"})
        elif re.fullmatch(r"[\w./-]+", term):
            expressions.append({"key": term, "operator": "Exists"})
        else:
            raise ActivityFailed(f"cannot read the label selector term {term!r} in {label_selector!r}")
    keys = [*labels, *(e["key"] for e in expressions)]
    values = [*labels.values(), *(v for e in expressions for v in e.get("values", []))]
    if not all(_KEY.match(k) for k in keys) or not all(_VALUE.match(v) for v in values):
        raise ActivityFailed(f"{label_selector!r} has a key or value Kubernetes would not accept")
    selector: dict[str, Any] = {}
    if labels:
        selector["matchLabels"] = labels
    if expressions:
        selector["matchExpressions"] = expressions
    return selector


# --- calls that survive a busy API server -------------------------------------------------------
def _reason(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if status:
        return f"{status} {getattr(exc, 'reason', '') or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def transient(exc: BaseException) -> bool:
    """An answer worth another try: throttling (429), an API server or etcd in trouble (5xx), no answer.

    Exactly what API-server and etcd faults produce, so every wait retries these until its deadline
    instead of failing the experiment on the first one.
    """
    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUSES
    return isinstance(exc, urllib3.exceptions.HTTPError)  # timeouts, refused, reset


def harness_node() -> str | None:
    """The node the harness runs on ($HARNESS_NODE_NAME, from the downward API); never drained or cordoned."""
    return os.environ.get(HARNESS_NODE_ENV) or None


def _core(configuration: Configuration, secrets: Secrets) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(configuration, secrets))


def require_selector(label_selector: str | None, what: str) -> str:
    """The selector, or a refusal: an empty one would act on every pod of the namespace."""
    selector = (label_selector or "").strip()
    if not selector or selector == "None":
        raise ActivityFailed(
            f"{what}: refused: an empty label selector would select every pod of the namespace "
            "(set the target's selector)"
        )
    return selector


# --- pods -----------------------------------------------------------------------------------------
def _ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def terminate_service_pods(
    label_selector: str,
    ns: str = "default",
    qty: int = 1,
    mode: str = "fixed",
    rand: bool = True,
    on_cordoned_nodes: bool = False,
    grace_period_s: int | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Delete `qty` pods of the service (or `qty` % of them, rounded up); the names deleted.

    Refuses an empty selector (chaosk8s's terminate_pods takes it as "every pod of the
    namespace"). With `on_cordoned_nodes`, only pods on the nodes the harness cordoned are
    candidates, so the replacement must be scheduled elsewhere. Pods already terminating are
    not counted: deleting them again would change nothing.
    """
    selector = require_selector(label_selector, "terminate_service_pods")
    if mode not in ("fixed", "percentage"):
        raise ActivityFailed(f"mode must be fixed or percentage, not {mode!r}")
    core = _core(configuration, secrets)
    pods = [
        p
        for p in core.list_namespaced_pod(ns, label_selector=selector, _request_timeout=REQUEST_TIMEOUT).items
        if p.metadata.deletion_timestamp is None and p.status and p.status.phase in ("Running", "Pending")
    ]
    where = ""
    if on_cordoned_nodes:
        cordoned = {n.metadata.name for n in core.list_node(
            label_selector=f"{CORDONED}=true", _request_timeout=REQUEST_TIMEOUT).items}  # fmt: skip
        pods = [p for p in pods if p.spec and p.spec.node_name in cordoned]
        where = f" on the nodes the harness cordoned ({', '.join(sorted(cordoned)) or 'none'})"
    if not pods:
        raise ActivityFailed(f"no running pod {selector!r} in {ns}{where} to delete")
    wanted = int(qty) if mode == "fixed" else math.ceil(int(qty) * len(pods) / 100)
    wanted = max(0, min(wanted, len(pods)))
    picked = random.sample(pods, wanted) if rand else sorted(pods, key=lambda p: p.metadata.name)[:wanted]
    for pod in picked:
        core.delete_namespaced_pod(
            pod.metadata.name, ns, grace_period_seconds=grace_period_s, _request_timeout=REQUEST_TIMEOUT
        )
    return sorted(p.metadata.name for p in picked)


# --- deployments ----------------------------------------------------------------------------
def scale_deployment_recording(
    name: str,
    replicas: int,
    ns: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Scale a deployment, recording the count it had in an annotation for the rollback.

    One patch sets both, so there is no moment where the deployment is scaled and the
    count lost. Run twice, it keeps the first recorded count (the original one).
    """
    apps = client.AppsV1Api(api_client(configuration, secrets))
    deployment = apps.read_namespaced_deployment(name, ns, _request_timeout=REQUEST_TIMEOUT)
    annotations = deployment.metadata.annotations or {}
    previous = int(annotations.get(PREVIOUS_REPLICAS, deployment.spec.replicas or 0))
    body = {
        "metadata": {"annotations": {PREVIOUS_REPLICAS: str(previous)}},
        "spec": {"replicas": int(replicas)},
    }
    apps.patch_namespaced_deployment(name, ns, body, _request_timeout=REQUEST_TIMEOUT)
    return {"deployment": f"{ns}/{name}", "previous_replicas": previous, "replicas": int(replicas)}


def restore_deployment_scale(
    name: str, ns: str = "default", configuration: Configuration = None, secrets: Secrets = None
) -> dict[str, Any]:
    """Rollback of scale_deployment_recording: the recorded count back, the record removed."""
    apps = client.AppsV1Api(api_client(configuration, secrets))
    try:
        deployment = apps.read_namespaced_deployment(name, ns, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return {"deployment": f"{ns}/{name}", "restored": None}
        raise
    recorded = (deployment.metadata.annotations or {}).get(PREVIOUS_REPLICAS)
    if recorded is None:
        return {"deployment": f"{ns}/{name}", "restored": None}
    body = {"metadata": {"annotations": {PREVIOUS_REPLICAS: None}}, "spec": {"replicas": int(recorded)}}
    apps.patch_namespaced_deployment(name, ns, body, _request_timeout=REQUEST_TIMEOUT)
    return {"deployment": f"{ns}/{name}", "restored": int(recorded)}


def _deployment_gap(
    apps: client.AppsV1Api, core: client.CoreV1Api, name: str, ns: str, label_selector: str | None
) -> str | None:
    """What keeps the deployment from being whole (None: nothing).

    Whole: desired > 0; the status is about the current spec (observedGeneration); every desired
    replica updated, ready and available; and, given the service's selector, no pod of it
    terminating and every one Ready, at least `desired` of them. The pods are checked as well
    because a Deployment's status lags a deletion: just after a pod kill it still reads 3/3.
    """
    try:
        d = apps.read_namespaced_deployment(name, ns, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return f"deployment {ns}/{name} not found"
        raise
    desired = d.spec.replicas or 0
    status = d.status
    if desired <= 0:
        return f"deployment {ns}/{name} wants 0 replicas"
    generation, observed = d.metadata.generation, status.observed_generation if status else None
    if generation is not None and observed is not None and observed < generation:
        return f"deployment {ns}/{name}: its controller has not seen generation {generation} yet"
    counts = {
        "available": status.available_replicas if status else None,
        "ready": status.ready_replicas if status else None,
        "updated": status.updated_replicas if status else None,
    }
    short = {k: v or 0 for k, v in counts.items() if (v or 0) < desired}
    if short:
        return f"deployment {ns}/{name}: " + ", ".join(f"{v}/{desired} {k}" for k, v in short.items())
    if not label_selector:
        return None
    pods = core.list_namespaced_pod(ns, label_selector=label_selector, _request_timeout=REQUEST_TIMEOUT).items
    terminating = sorted(p.metadata.name for p in pods if p.metadata.deletion_timestamp is not None)
    if terminating:
        return f"pods {label_selector!r} still terminating: {', '.join(terminating)}"
    not_ready = sorted(p.metadata.name for p in pods if not _ready(p))
    if not_ready:
        return f"pods {label_selector!r} not Ready: {', '.join(not_ready)}"
    if len(pods) < desired:
        return f"only {len(pods)} of {desired} pods {label_selector!r}"
    return None


def deployment_fully_available(
    name: str,
    ns: str = "default",
    label_selector: str | None = None,
    retry_s: float = 10.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """The deployment is whole (see `_deployment_gap`): the steady state's check, and the wait's.

    A transient answer (429, 5xx, timeout) is asked again for up to `retry_s`: one throttled
    read must not make the steady state deviate.
    """
    api = api_client(configuration, secrets)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deadline = time.monotonic() + float(retry_s)
    while True:
        try:
            return _deployment_gap(apps, core, name, ns, label_selector) is None
        except Exception as exc:
            if not transient(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def wait_for_deployment(
    name: str,
    ns: str = "default",
    timeout_s: float = 180.0,
    label_selector: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> float:
    """Wait until the deployment is whole again (and the selector's pods Ready); the seconds it took.

    The last step of every method, after the undo: the steady state is only worth checking once
    the cluster has had the chance to repair. 429s, 5xx and timeouts are retried until the
    deadline (an API server recovering from a fault answers them); a 403 is not.
    """
    api = api_client(configuration, secrets)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    started = time.monotonic()
    deadline = started + float(timeout_s)
    while True:
        try:
            gap = _deployment_gap(apps, core, name, ns, label_selector)
        except Exception as exc:
            if not transient(exc):
                raise
            gap = f"the API server answered {_reason(exc)}"
        if gap is None:
            return round(time.monotonic() - started, 1)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ActivityFailed(
                f"deployment {ns}/{name} was not whole within {float(timeout_s):.0f} s: {gap}"
            )
        time.sleep(min(WAIT_INTERVAL_S, remaining))


# --- nodes --------------------------------------------------------------------------------------
def nodes_hosting(core: client.CoreV1Api, label_selector: str, ns: str, timeout_s: Any = None) -> set[str]:
    """The nodes hosting the service's running or pending pods (also what the dry run shows)."""
    pods = core.list_namespaced_pod(
        ns, label_selector=label_selector, _request_timeout=timeout_s or REQUEST_TIMEOUT
    ).items
    return {p.spec.node_name for p in pods
            if p.spec and p.spec.node_name and p.status and p.status.phase in ("Running", "Pending")}  # fmt: skip


def _controller(pod: Any) -> Any:
    return next((o for o in pod.metadata.owner_references or [] if o.controller), None)


def drain_plan(pods: list[Any], delete_pods_with_local_storage: bool = False) -> dict[str, Any]:
    """Which of a node's pods a drain evicts, which it leaves (and why), which block it (pure).

    As `kubectl drain`: DaemonSet and mirror (static) pods stay; finished pods go; a pod that
    no controller owns blocks the drain (evicted, it would never come back: kubectl wants
    --force). Unlike kubectl, a pod with an emptyDir volume is left on the node unless
    `delete_pods_with_local_storage` (kubectl refuses the whole drain): its data would be lost.
    A pod with no volumes at all is an ordinary pod.
    """
    evict: list[Any] = []
    left: dict[str, str] = {}
    blocking: dict[str, str] = {}
    for pod in pods:
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        owner = _controller(pod)
        phase = pod.status.phase if pod.status else None
        if pod.metadata.deletion_timestamp is not None:
            left[key] = "already terminating"
        elif MIRROR_ANNOTATION in (pod.metadata.annotations or {}):
            left[key] = "a mirror (static) pod: the kubelet owns it"
        elif owner is not None and owner.kind == "DaemonSet":
            left[key] = "a DaemonSet pod: it would be recreated on the same node"
        elif phase in ("Succeeded", "Failed"):
            evict.append(pod)
        elif owner is None:
            blocking[key] = "no controller owns it, so an evicted copy would never come back"
        elif any(v.empty_dir is not None for v in (pod.spec.volumes if pod.spec else None) or []) and not (
            delete_pods_with_local_storage
        ):
            left[key] = "an emptyDir volume (delete_pods_with_local_storage is false)"
        else:
            evict.append(pod)
    return {"evict": evict, "left": left, "blocking": blocking}


def _pods_on(core: client.CoreV1Api, node: str) -> list[Any]:
    return core.list_pod_for_all_namespaces(
        field_selector=f"spec.nodeName={node}", _request_timeout=REQUEST_TIMEOUT
    ).items


def drain_node(
    name: str,
    timeout_s: float = 180.0,
    delete_pods_with_local_storage: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Evict the node's pods (see `drain_plan`) and wait until they are gone, within `timeout_s`.

    An eviction a PodDisruptionBudget refuses (429) is tried again, backing off up to 5 s, until
    the deadline: the budget allows it once a replacement elsewhere is Ready. chaosk8s's
    drain_nodes gives up on the first 429. The node is expected to be cordoned already.
    """
    if name == harness_node():
        raise ActivityFailed(
            f"node {name} runs the harness itself (${HARNESS_NODE_ENV}); it is never drained"
        )
    core = _core(configuration, secrets)
    deadline = time.monotonic() + float(timeout_s)
    plan = drain_plan(_pods_on(core, name), delete_pods_with_local_storage)
    if plan["blocking"]:
        raise ActivityFailed(f"node {name} cannot be drained: " + "; ".join(
            f"{k}: {why}" for k, why in sorted(plan["blocking"].items())))  # fmt: skip
    pending = {(p.metadata.namespace, p.metadata.name): p.metadata.uid for p in plan["evict"]}
    evicted: dict[tuple[str, str], str] = {}
    refused: dict[tuple[str, str], str] = {}
    delay = 0.5
    while pending:
        for (ns, pod), uid in list(pending.items()):
            body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": ns}}
            try:
                core.create_namespaced_pod_eviction(pod, ns, body, _request_timeout=REQUEST_TIMEOUT)
            except Exception as exc:
                if isinstance(exc, ApiException) and exc.status == 404:
                    del pending[(ns, pod)]  # gone already
                elif transient(exc):  # 429: a disruption budget says not yet
                    refused[(ns, pod)] = _eviction_reason(exc)
                else:
                    raise ActivityFailed(
                        f"eviction of {ns}/{pod} from {name} refused: {_reason(exc)}"
                    ) from exc
            else:
                evicted[(ns, pod)] = uid
                del pending[(ns, pod)]
                refused.pop((ns, pod), None)
        if not pending:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ActivityFailed(f"node {name}: {len(pending)} pod(s) not evicted within {float(timeout_s):.0f} s: "
                                 + "; ".join(f"{ns}/{pod}: {refused.get((ns, pod), '?')}" for ns, pod in sorted(pending)))  # fmt: skip
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 5.0)
    _wait_gone(core, name, evicted, deadline, timeout_s)
    return {
        "node": name,
        "evicted": sorted(f"{ns}/{pod}" for ns, pod in evicted),
        "left": dict(sorted(plan["left"].items())),
    }


def _eviction_reason(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            return f"{_reason(exc)}: {json.loads(body).get('message', '')}".rstrip(": ")
        except (ValueError, AttributeError):  # not a Status object
            pass
    return _reason(exc)


def _wait_gone(
    core: client.CoreV1Api, node: str, evicted: dict[tuple[str, str], str], deadline: float, timeout_s: float
) -> None:
    """Until every evicted pod is gone (or its name now belongs to a new pod, as a StatefulSet's does)."""
    waiting = dict(evicted)
    while waiting:
        for (ns, pod), uid in list(waiting.items()):
            try:
                current = core.read_namespaced_pod(pod, ns, _request_timeout=REQUEST_TIMEOUT)
            except Exception as exc:
                if isinstance(exc, ApiException) and exc.status == 404:
                    del waiting[(ns, pod)]
                    continue
                if not transient(exc):
                    raise
                continue
            if current.metadata.uid != uid:
                del waiting[(ns, pod)]
        if not waiting:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ActivityFailed(f"node {node}: evicted pod(s) still terminating after {float(timeout_s):.0f} s: "
                                 + ", ".join(f"{ns}/{pod}" for ns, pod in sorted(waiting)))  # fmt: skip
        time.sleep(min(WAIT_INTERVAL_S / 2, remaining))


def cordon_nodes_hosting(
    label_selector: str,
    ns: str = "default",
    count: int = 1,
    drain: bool = False,
    node_label_selector: str | None = None,
    timeout_s: int = 120,
    delete_pods_with_local_storage: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list[str]:
    """Cordon (and drain, with `drain_node`) `count` schedulable nodes hosting the service.

    The nodes are labelled in the same patch that cordons them, so the rollback uncordons
    these and only these. Run again, it reuses the nodes it already cordoned. The harness's
    own node ($HARNESS_NODE_NAME) is never a candidate, nor, for a drain, a node with a pod
    the drain would refuse (see `drain_plan`): such a node is left alone rather than cordoned.
    """
    selector = require_selector(label_selector, "cordon_nodes_hosting")
    core = _core(configuration, secrets)
    ours = [n.metadata.name for n in core.list_node(
        label_selector=f"{CORDONED}=true", _request_timeout=REQUEST_TIMEOUT).items]  # fmt: skip
    if len(ours) < count:
        hosting = nodes_hosting(core, selector, ns)
        kwargs = {"label_selector": node_label_selector} if node_label_selector else {}
        own = harness_node()
        candidates = sorted(
            n.metadata.name
            for n in core.list_node(**kwargs, _request_timeout=REQUEST_TIMEOUT).items
            if n.metadata.name in hosting
            and not n.spec.unschedulable
            and n.metadata.name not in ours
            and n.metadata.name != own
        )
        refused: dict[str, str] = {}
        if drain:
            for node in list(candidates):
                blocking = drain_plan(_pods_on(core, node), delete_pods_with_local_storage)["blocking"]
                if blocking:
                    candidates.remove(node)
                    refused[node] = "; ".join(f"{k}: {why}" for k, why in sorted(blocking.items()))
        if len(candidates) < count - len(ours):
            why = "".join(
                f"; {node} cannot be drained ({reason})" for node, reason in sorted(refused.items())
            )
            mine = f" (the harness's own node {own} excluded)" if own else ""
            raise ActivityFailed(
                f"only {len(candidates)} schedulable node(s) host pods {selector!r} in {ns}{mine}; "
                f"{count} wanted{why}"
            )
        for name in random.sample(candidates, count - len(ours)):
            core.patch_node(
                name,
                {"metadata": {"labels": {CORDONED: "true"}}, "spec": {"unschedulable": True}},
                _request_timeout=REQUEST_TIMEOUT,
            )
            ours.append(name)
    if drain:
        for name in ours:
            drain_node(name, timeout_s, delete_pods_with_local_storage, configuration, secrets)
    return sorted(ours)


def uncordon_harness_nodes(configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """Rollback of cordon_nodes_hosting: uncordon the nodes it labelled, and drop the label."""
    core = _core(configuration, secrets)
    names = sorted(n.metadata.name for n in core.list_node(
        label_selector=f"{CORDONED}=true", _request_timeout=REQUEST_TIMEOUT).items)  # fmt: skip
    for name in names:
        core.patch_node(
            name,
            {"metadata": {"labels": {CORDONED: None}}, "spec": {"unschedulable": False}},
            _request_timeout=REQUEST_TIMEOUT,
        )
    return names


# --- network policies -----------------------------------------------------------------------
def policy_name(direction: str) -> str:
    if direction not in ("ingress", "egress"):
        raise ActivityFailed(f"direction must be ingress or egress, not {direction!r}")
    return f"resilience-harness-deny-{direction}"


def deny_pod_traffic(
    label_selector: str,
    direction: str = "ingress",
    ns: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> str:
    """A NetworkPolicy that denies all ingress or all egress of the service's pods; its name.

    Policies are additive allow-lists: selecting the pods with no rule of that type denies
    the traffic. Only a CNI that enforces NetworkPolicy makes this bite (see the README).
    Run again, it replaces its own policy; it refuses to touch one it did not create.
    """
    name = policy_name(direction)
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "labels": dict(MANAGED_BY)},
        "spec": {
            "podSelector": label_selector_object(label_selector),
            "policyTypes": [direction.capitalize()],
        },
    }
    net = client.NetworkingV1Api(api_client(configuration, secrets))
    try:
        net.create_namespaced_network_policy(ns, body, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status != 409:
            raise
        existing = net.read_namespaced_network_policy(name, ns, _request_timeout=REQUEST_TIMEOUT)
        if (existing.metadata.labels or {}).get("app.kubernetes.io/managed-by") != MANAGED_BY[
            "app.kubernetes.io/managed-by"
        ]:
            raise ActivityFailed(
                f"network policy {ns}/{name} exists and was not created by the harness"
            ) from exc
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        net.replace_namespaced_network_policy(name, ns, body, _request_timeout=REQUEST_TIMEOUT)
    return name


def allow_pod_traffic(
    direction: str = "ingress",
    ns: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """Rollback of deny_pod_traffic: delete our policy; False when there was none."""
    name = policy_name(direction)
    net = client.NetworkingV1Api(api_client(configuration, secrets))
    try:
        existing = net.read_namespaced_network_policy(name, ns, _request_timeout=REQUEST_TIMEOUT)
        if (existing.metadata.labels or {}).get("app.kubernetes.io/managed-by") != "resilience-harness":
            raise ActivityFailed(f"network policy {ns}/{name} was not created by the harness; left in place")
        net.delete_namespaced_network_policy(name, ns, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


# --- Chaos Mesh ------------------------------------------------------------------------------------
def crd_installed(name: str, configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """Whether a CustomResourceDefinition (e.g. networkchaos.chaos-mesh.org) is installed."""
    ext = client.ApiextensionsV1Api(api_client(configuration, secrets))
    try:
        ext.read_custom_resource_definition(name, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _chaos_mesh_selector(label_selector: str, ns: str) -> dict[str, Any]:
    """A Chaos Mesh PodSelectorSpec: labelSelectors is a map, expressionSelectors a list."""
    parsed = label_selector_object(label_selector)
    selector: dict[str, Any] = {"namespaces": [ns]}
    if "matchLabels" in parsed:
        selector["labelSelectors"] = parsed["matchLabels"]
    if "matchExpressions" in parsed:
        selector["expressionSelectors"] = parsed["matchExpressions"]
    return selector


def network_chaos_body(
    name: str,
    action: str,
    label_selector: str,
    ns: str,
    duration_s: int,
    percentage: int = 100,
    settings: dict[str, Any] | None = None,
    target_label_selector: str | None = None,
    direction: str = "to",
) -> dict[str, Any]:
    """The NetworkChaos object for the service's pods (pure: what start_network_chaos creates)."""
    spec: dict[str, Any] = {
        "action": action,
        "selector": _chaos_mesh_selector(label_selector, ns),
        "duration": f"{int(duration_s)}s",
        "direction": direction,
        **(settings or {}),
    }
    if int(percentage) >= 100:
        spec["mode"] = "all"
    else:
        spec.update(mode="fixed-percent", value=str(int(percentage)))
    if target_label_selector:
        spec["target"] = {"mode": "all", "selector": _chaos_mesh_selector(target_label_selector, ns)}
    return {
        "apiVersion": f"{CHAOS_MESH[0]}/{CHAOS_MESH[1]}",
        "kind": "NetworkChaos",
        "metadata": {"name": name, "namespace": ns, "labels": dict(MANAGED_BY)},
        "spec": spec,
    }


def chaos_phase(obj: dict[str, Any]) -> str:
    """What a NetworkChaos is doing, from what Chaos Mesh (2.x) writes in its status (pure).

    "terminating" (deletionTimestamp set: a finalizer still holds it), "finished" (desiredPhase
    Stop, or AllRecovered), "injected" (AllInjected), "failed" (Selected false: no pod matched),
    "pending" (conditions, none of those yet), "unknown" (no status: Chaos Mesh has not seen it).
    """
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "terminating"
    status = obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if (status.get("experiment") or {}).get("desiredPhase") == "Stop" or conditions.get(
        "AllRecovered"
    ) == "True":
        return "finished"
    if conditions.get("AllInjected") == "True":
        return "injected"
    if conditions.get("Selected") == "False":
        return "failed"
    return "pending" if conditions else "unknown"


def _wait_chaos_gone(api: client.CustomObjectsApi, ns: str, name: str, deadline: float) -> bool:
    """Until the object is gone (its finalizers done); False at the deadline."""
    group, version, plural = CHAOS_MESH
    while True:
        try:
            api.get_namespaced_custom_object(
                group, version, ns, plural, name, _request_timeout=REQUEST_TIMEOUT
            )
        except Exception as exc:
            if isinstance(exc, ApiException) and exc.status == 404:
                return True
            if not transient(exc):
                raise
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(WAIT_INTERVAL_S / 4, remaining))


def start_network_chaos(
    name: str,
    action: str,
    label_selector: str,
    ns: str = "default",
    duration_s: int = 60,
    percentage: int = 100,
    settings: dict[str, Any] | None = None,
    target_label_selector: str | None = None,
    direction: str = "to",
    timeout_s: float = 60.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Create a NetworkChaos (delay, loss, partition...) on the service's pods; the object.

    An object of the same name (409) is never taken for the fault: it may be terminating or
    finished and inject nothing. One of ours is deleted, its finalizers awaited, and a new one
    created, so the fault runs its full `duration_s` from now; one that is not ours is refused.
    Once created, Chaos Mesh's status is awaited for AllInjected; when Chaos Mesh reports a
    status that never gets there (no pod selected, say) within `timeout_s`, the action fails.
    Without any status by then (no controller writes one) the object is returned as it is.
    """
    body = network_chaos_body(
        name, action, label_selector, ns, duration_s, percentage, settings, target_label_selector, direction
    )
    group, version, plural = CHAOS_MESH
    api = client.CustomObjectsApi(api_client(configuration, secrets))
    deadline = time.monotonic() + float(timeout_s)
    replaced = None
    while True:
        try:
            created = api.create_namespaced_custom_object(
                group, version, ns, plural, body, _request_timeout=REQUEST_TIMEOUT
            )
            break
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = api.get_namespaced_custom_object(
            group, version, ns, plural, name, _request_timeout=REQUEST_TIMEOUT
        )
        if not ((existing.get("metadata") or {}).get("labels") or {}).items() >= MANAGED_BY.items():
            raise ActivityFailed(f"NetworkChaos {ns}/{name} exists and was not created by the harness")
        replaced = chaos_phase(existing)
        if replaced != "terminating":
            _delete_chaos(api, ns, name)
        if not _wait_chaos_gone(api, ns, name, deadline):
            raise ActivityFailed(f"NetworkChaos {ns}/{name} ({replaced}) was still there after {float(timeout_s):.0f} s; "
                                 "its finalizer may be stuck: nothing injected")  # fmt: skip
    if not isinstance(created, dict):  # the client maps only a 201 to the object; some servers say 200
        created = api.get_namespaced_custom_object(
            group, version, ns, plural, name, _request_timeout=REQUEST_TIMEOUT
        )
    phase = chaos_phase(created)
    while phase not in ("injected", "failed"):
        if time.monotonic() >= deadline:
            break
        time.sleep(min(WAIT_INTERVAL_S / 4, max(0.0, deadline - time.monotonic())))
        try:
            created = api.get_namespaced_custom_object(
                group, version, ns, plural, name, _request_timeout=REQUEST_TIMEOUT
            )
        except Exception as exc:
            if not transient(exc):
                raise
        phase = chaos_phase(created)
    if phase not in ("injected", "unknown"):
        conditions = (created.get("status") or {}).get("conditions")
        raise ActivityFailed(f"NetworkChaos {ns}/{name} was not injected within {float(timeout_s):.0f} s "
                             f"({phase}; conditions {conditions})")  # fmt: skip
    if replaced is not None:
        logging.getLogger("chaostoolkit").info("NetworkChaos %s/%s: a %s one replaced", ns, name, replaced)
    return created


def _delete_chaos(api: client.CustomObjectsApi, ns: str, name: str) -> bool:
    group, version, plural = CHAOS_MESH
    try:
        api.delete_namespaced_custom_object(
            group, version, ns, plural, name, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def stop_network_chaos(
    name: str,
    ns: str = "default",
    timeout_s: float = 120.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """Rollback of start_network_chaos: delete it and wait until it is gone; False if it was absent.

    Chaos Mesh holds the object with a finalizer until it has lifted the fault from every pod,
    so only its disappearance says the fault is gone. Still there after `timeout_s`: a failure.
    """
    api = client.CustomObjectsApi(api_client(configuration, secrets))
    existed = _delete_chaos(api, ns, name)
    if not _wait_chaos_gone(api, ns, name, time.monotonic() + float(timeout_s)):
        raise ActivityFailed(f"NetworkChaos {ns}/{name} still exists {float(timeout_s):.0f} s after its deletion: "
                             "Chaos Mesh has not lifted the fault (finalizer)")  # fmt: skip
    return existed


# --- the service and the API server ------------------------------------------------------------
def ready_endpoints(
    service_name: str,
    ns: str = "default",
    service_port: str | int | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> int:
    """How many ready endpoints the Service has (EndpointSlices; Endpoints on a cluster without them).

    A named `service_port` counts only slices serving a port of that name; a number is the
    Service's port, not the pods', so it does not filter.
    """
    api = api_client(configuration, secrets)
    named = service_port if isinstance(service_port, str) and not service_port.isdigit() else None
    try:
        slices = (
            client.DiscoveryV1Api(api)
            .list_namespaced_endpoint_slice(
                ns,
                label_selector=f"kubernetes.io/service-name={service_name}",
                _request_timeout=REQUEST_TIMEOUT,
            )
            .items
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
        endpoints = client.CoreV1Api(api).read_namespaced_endpoints(
            service_name, ns, _request_timeout=REQUEST_TIMEOUT
        )
        return sum(len(s.addresses or []) for s in endpoints.subsets or []
                   if named is None or any(p.name == named for p in s.ports or []))  # fmt: skip
    return sum(
        1
        for s in slices
        if named is None or any(p.name == named for p in s.ports or [])
        for e in s.endpoints or []
        if e.conditions is None or e.conditions.ready is not False  # unset means ready
    )


def service_answers(
    service_name: str | None = None,
    service_port: str | int | None = "http",
    path: str = "/readyz",
    ns: str = "default",
    timeout_s: float = 5.0,
    service_url: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """The service answers 2xx on `path` at its URL, and its Service has ready endpoints.

    The URL is the one the load uses: `service_url`, else the configuration's `service_url`
    (the Kubernetes target sets it from the plan's load.host). So the steady state judges the
    service as its users reach it; the API server's service proxy would reach the pod IPs from
    the control plane, which an overlay CNI on EKS does not route. One try, bounded by
    `timeout_s`. Without `service_name` only the HTTP answer is judged.
    """
    base = service_url or (configuration or {}).get("service_url") or ""
    if not base:
        raise ActivityFailed(
            "service_answers needs the service's URL: service_url, or the configuration's "
            "service_url (the Kubernetes target sets it from load.host)"
        )
    url = base.rstrip("/") + "/" + path.lstrip("/")
    try:
        with urllib3.PoolManager() as http:
            response = http.request("GET", url, timeout=float(timeout_s), retries=False, redirect=False)
    except urllib3.exceptions.HTTPError:
        return False
    if not 200 <= response.status < 300:
        return False
    if not service_name:
        return True
    try:
        return ready_endpoints(service_name, ns, service_port, configuration, secrets) > 0
    except Exception as exc:
        if transient(exc):
            return False
        raise


def _percentile(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    return round(sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))], 1)


class _OwnLoad:
    """Whether an `apiserver_load` runs in this process under the harness's own API identity.

    The control-plane sampler (harness.kubernetes.probes) runs in the same process as the
    experiment. API Priority and Fairness queues requests per flow, and a flow is the
    FlowSchema plus, for nearly every schema, the user: a load sent as the sampler's user
    shares the sampler's queues, so the sampler's 429s are then the load's own throttling, not
    the API server failing. The sampler asks `shares_identity()` and marks its lines.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared = 0

    def enter(self, shared: bool) -> None:
        if shared:
            with self._lock:
                self._shared += 1

    def leave(self, shared: bool) -> None:
        if shared:
            with self._lock:
                self._shared -= 1

    def shares_identity(self) -> bool:
        return self._shared > 0


OWN_LOAD = _OwnLoad()
LOAD_USER_AGENT = "resilience-harness/apiserver-load"
MIN_TOKEN_S = 600
"""The shortest lifetime a TokenRequest may ask for (the API server's minimum)."""


def _load_identity(
    service_account: str,
    ns: str,
    duration_s: float,
    request_timeout_s: float,
    configuration: Configuration,
    secrets: Secrets,
) -> tuple[client.Configuration, str, bool]:
    """The client settings for the load, what identity they carry, and whether it is the harness's own.

    With `service_account`, a short-lived token for it (TokenRequest, `create
    serviceaccounts/token`): the load is then another user to API Priority and Fairness, in
    its own flow (the `service-accounts` FlowSchema, priority level workload-low), as a real
    noisy client is. Client certificates and exec plugins are dropped from its settings, since the
    API server would authenticate a certificate before the token. If the token cannot be had,
    the load runs as the harness itself, and says why.
    """
    base = _one_try_client(configuration, secrets)
    settings = base.configuration
    if not service_account:
        base.close()
        return settings, "the harness's own (no service_account given)", True
    lifetime = max(MIN_TOKEN_S, int(duration_s + request_timeout_s) + 60)
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": lifetime}}  # fmt: skip
    try:
        answer = client.CoreV1Api(base).create_namespaced_service_account_token(
            service_account, ns, body, _request_timeout=request_timeout_s
        )
        token = answer.status.token
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        reason = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else type(exc).__name__
        return settings, f"the harness's own (TokenRequest for {ns}/{service_account}: {reason})", True
    finally:
        base.close()
    settings.api_key = {"BearerToken": token}  # a fresh Configuration (_one_try_client): ours to change
    settings.api_key_prefix = {"BearerToken": "Bearer"}
    settings.refresh_api_key_hook = None
    settings.cert_file = settings.key_file = None
    settings.username = settings.password = None
    return settings, f"system:serviceaccount:{ns}:{service_account}", False


def apiserver_load(
    threads: int = 8,
    duration_s: float = 60.0,
    ns: str = "default",
    all_namespaces: bool = False,
    page_size: int = 500,
    request_timeout_s: float = 10.0,
    service_account: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """LIST pods from `threads` threads for `duration_s`, every page of each; what the API server
    answered, and how fast.

    Each LIST is read to its end, `page_size` objects a page (`limit` + `continue`), as
    controllers and kubectl read. Bounded in time: no request starts after the deadline and
    each has a timeout, so the action ends within duration_s + request_timeout_s. LIST is the
    expensive verb for the API server and etcd (a full read, serialised per page), which is the
    load that controllers and careless clients put on a real control plane. The load runs as
    `service_account` when it can have a token for it (see `_load_identity`), and always with
    its own user agent (`resilience-harness/apiserver-load`, for audit logs; API Priority and
    Fairness does not look at user agents).
    """
    if threads < 1 or duration_s <= 0:
        raise ActivityFailed("apiserver_load needs threads >= 1 and duration_s > 0")
    settings, identity, shared = _load_identity(
        service_account, ns, duration_s, request_timeout_s, configuration, secrets
    )
    latencies: list[list[float]] = [[] for _ in range(threads)]
    list_ms: list[list[float]] = [[] for _ in range(threads)]
    errors: list[dict[str, int]] = [{} for _ in range(threads)]

    # Clients made here, not in the threads, so that a configuration error reaches the caller.
    apis = [client.ApiClient(settings) for _ in range(threads)]
    for api in apis:
        api.user_agent = LOAD_USER_AGENT
    cores = [client.CoreV1Api(api) for api in apis]
    deadline = time.monotonic() + duration_s

    def page(core: client.CoreV1Api, token: str | None) -> Any:
        options: dict[str, Any] = {"limit": page_size}
        if token:
            options["_continue"] = token
        if all_namespaces:
            return core.list_pod_for_all_namespaces(_request_timeout=request_timeout_s, **options)
        return core.list_namespaced_pod(ns, _request_timeout=request_timeout_s, **options)

    def hammer(i: int) -> None:
        core, token, list_started = cores[i], None, time.monotonic()
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                answer = page(core, token)
                latencies[i].append((time.monotonic() - started) * 1000)
                token = getattr(answer.metadata, "_continue", None) if answer.metadata else None
                if not token:
                    list_ms[i].append((time.monotonic() - list_started) * 1000)
                    list_started = time.monotonic()
                continue
            except ApiException as exc:
                errors[i][str(exc.status)] = errors[i].get(str(exc.status), 0) + 1
            except Exception as exc:  # connection refused, timeouts: counted, never fatal
                kind = type(exc).__name__
                errors[i][kind] = errors[i].get(kind, 0) + 1
                time.sleep(0.1)
            token, list_started = None, time.monotonic()  # a failed page (or a 410 token): start over

    workers = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(threads)]
    started = time.monotonic()
    OWN_LOAD.enter(shared)
    try:
        for w in workers:
            w.start()
        # One deadline for all the joins: a per-join timeout would add up over the threads.
        give_up = deadline + request_timeout_s + 1.0
        for w in workers:
            w.join(timeout=max(0.0, give_up - time.monotonic()))
    finally:
        OWN_LOAD.leave(shared)
        for api in apis:
            api.close()
    elapsed = time.monotonic() - started
    ok = sorted(ms for per in latencies for ms in per)
    lists = sorted(ms for per in list_ms for ms in per)
    error_counts: dict[str, int] = {}
    for per in errors:
        for kind, n in per.items():
            error_counts[kind] = error_counts.get(kind, 0) + n
    requests = len(ok) + sum(error_counts.values())
    if not ok and error_counts and set(error_counts) <= {"401", "403"}:
        # No load was put on anything: a set-up error, not a result (the experiment must not pass on it).
        where = "in any namespace" if all_namespaces else f"in {ns}"
        raise ActivityFailed(f"apiserver_load: {identity} may not list pods {where} ({error_counts})")
    return {
        "threads": threads,
        "identity": identity,
        "duration_s": round(elapsed, 1),
        "requests": requests,
        "lists": len(lists),
        "errors": error_counts,
        "requests_per_s": round(requests / elapsed, 1) if elapsed else 0.0,
        "latency_ms": {
            "p50": _percentile(ok, 0.50),
            "p99": _percentile(ok, 0.99),
            "max": round(ok[-1], 1) if ok else None,
            "mean": round(statistics.fmean(ok), 1) if ok else None,
        },
        "list_latency_ms": {"p50": _percentile(lists, 0.50), "p99": _percentile(lists, 0.99)},
    }


def apiserver_latency_ms(
    ns: str = "default", configuration: Configuration = None, secrets: Secrets = None
) -> float:
    """Milliseconds for one small LIST (a probe: tolerate it with a range, e.g. [0, 1000]).

    A quorum read (no resourceVersion), on purpose: it is the path an etcd fault slows.
    """
    with _one_try_client(configuration, secrets) as api:
        started = time.monotonic()
        client.CoreV1Api(api).list_namespaced_pod(ns, limit=1, _request_timeout=10)
        return round((time.monotonic() - started) * 1000, 1)
