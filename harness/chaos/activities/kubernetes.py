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
- probes through the API server (the service via its proxy, the API server itself).

Every function takes `configuration` and `secrets` as chaosk8s's do; the client comes from
`chaosk8s.create_k8s_api_client`, so kubeconfig, in-cluster and environment handling are
chaosk8s's own. `configuration.kubernetes_context` (which the engine always sets) selects the
kubeconfig context for these functions; chaosk8s's own functions read $KUBERNETES_CONTEXT.
"""

from __future__ import annotations

import random
import re
import statistics
import threading
import time
from typing import Any

import chaosk8s
import urllib3
from chaosk8s.crd import actions as crd_actions
from chaosk8s.node import actions as node_actions
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
    deployment = apps.read_namespaced_deployment(name, ns)
    annotations = deployment.metadata.annotations or {}
    previous = int(annotations.get(PREVIOUS_REPLICAS, deployment.spec.replicas or 0))
    body = {
        "metadata": {"annotations": {PREVIOUS_REPLICAS: str(previous)}},
        "spec": {"replicas": int(replicas)},
    }
    apps.patch_namespaced_deployment(name, ns, body)
    return {"deployment": f"{ns}/{name}", "previous_replicas": previous, "replicas": int(replicas)}


def restore_deployment_scale(
    name: str, ns: str = "default", configuration: Configuration = None, secrets: Secrets = None
) -> dict[str, Any]:
    """Rollback of scale_deployment_recording: the recorded count back, the record removed."""
    apps = client.AppsV1Api(api_client(configuration, secrets))
    try:
        deployment = apps.read_namespaced_deployment(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return {"deployment": f"{ns}/{name}", "restored": None}
        raise
    recorded = (deployment.metadata.annotations or {}).get(PREVIOUS_REPLICAS)
    if recorded is None:
        return {"deployment": f"{ns}/{name}", "restored": None}
    body = {"metadata": {"annotations": {PREVIOUS_REPLICAS: None}}, "spec": {"replicas": int(recorded)}}
    apps.patch_namespaced_deployment(name, ns, body)
    return {"deployment": f"{ns}/{name}", "restored": int(recorded)}


def deployment_fully_available(
    name: str, ns: str = "default", configuration: Configuration = None, secrets: Secrets = None
) -> bool:
    """Desired replicas > 0 and every one of them updated, ready and available."""
    apps = client.AppsV1Api(api_client(configuration, secrets))
    try:
        d = apps.read_namespaced_deployment(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    desired = d.spec.replicas or 0
    status = d.status
    return desired > 0 and all(
        (count or 0) >= desired
        for count in (status.available_replicas, status.ready_replicas, status.updated_replicas)
    )


def wait_for_deployment(
    name: str,
    ns: str = "default",
    timeout_s: float = 180.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> float:
    """Wait until the deployment is fully available again; the seconds it took.

    A rollback step for faults that heal themselves (a killed pod, a lost node): the steady
    state is only worth checking once the cluster has had the chance to repair.
    """
    started = time.monotonic()
    while True:
        try:
            if deployment_fully_available(name, ns, configuration, secrets):
                break
        except urllib3.exceptions.HTTPError:  # the API server itself may still be coming back
            pass
        if time.monotonic() - started > timeout_s:
            raise ActivityFailed(f"deployment {ns}/{name} was not fully available within {timeout_s:.0f} s")
        time.sleep(2.0)
    return round(time.monotonic() - started, 1)


# --- nodes --------------------------------------------------------------------------------------
def nodes_hosting(core: client.CoreV1Api, label_selector: str, ns: str, timeout_s: Any = None) -> set[str]:
    """The nodes hosting the service's running or pending pods (also what the dry run shows)."""
    pods = core.list_namespaced_pod(ns, label_selector=label_selector, _request_timeout=timeout_s).items
    return {p.spec.node_name for p in pods
            if p.spec and p.spec.node_name and p.status and p.status.phase in ("Running", "Pending")}  # fmt: skip


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
    """Cordon (and drain, with chaosk8s's drain) `count` schedulable nodes hosting the service.

    The nodes are labelled in the same patch that cordons them, so the rollback uncordons
    these and only these. Run again, it reuses the nodes it already cordoned.
    """
    core = client.CoreV1Api(api_client(configuration, secrets))
    ours = [n.metadata.name for n in core.list_node(label_selector=f"{CORDONED}=true").items]
    if len(ours) < count:
        hosting = nodes_hosting(core, label_selector, ns)
        kwargs = {"label_selector": node_label_selector} if node_label_selector else {}
        candidates = sorted(
            n.metadata.name
            for n in core.list_node(**kwargs).items
            if n.metadata.name in hosting and not n.spec.unschedulable and n.metadata.name not in ours
        )
        if len(candidates) < count - len(ours):
            raise ActivityFailed(
                f"only {len(candidates)} schedulable node(s) host pods {label_selector!r} in {ns}; {count} wanted"
            )
        for name in random.sample(candidates, count - len(ours)):
            core.patch_node(
                name, {"metadata": {"labels": {CORDONED: "true"}}, "spec": {"unschedulable": True}}
            )
            ours.append(name)
    if drain:
        for name in ours:
            node_actions.drain_nodes(
                name=name,
                timeout=timeout_s,
                delete_pods_with_local_storage=delete_pods_with_local_storage,
                secrets=_secrets(configuration, secrets),
            )
    return sorted(ours)


def uncordon_harness_nodes(configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """Rollback of cordon_nodes_hosting: uncordon the nodes it labelled, and drop the label."""
    core = client.CoreV1Api(api_client(configuration, secrets))
    names = sorted(n.metadata.name for n in core.list_node(label_selector=f"{CORDONED}=true").items)
    for name in names:
        core.patch_node(name, {"metadata": {"labels": {CORDONED: None}}, "spec": {"unschedulable": False}})
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
        net.create_namespaced_network_policy(ns, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        existing = net.read_namespaced_network_policy(name, ns)
        if (existing.metadata.labels or {}).get("app.kubernetes.io/managed-by") != MANAGED_BY[
            "app.kubernetes.io/managed-by"
        ]:
            raise ActivityFailed(
                f"network policy {ns}/{name} exists and was not created by the harness"
            ) from exc
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        net.replace_namespaced_network_policy(name, ns, body)
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
        existing = net.read_namespaced_network_policy(name, ns)
        if (existing.metadata.labels or {}).get("app.kubernetes.io/managed-by") != "resilience-harness":
            raise ActivityFailed(f"network policy {ns}/{name} was not created by the harness; left in place")
        net.delete_namespaced_network_policy(name, ns)
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
        ext.read_custom_resource_definition(name)
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
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Create a NetworkChaos (delay, loss, partition...) on the service's pods.

    Created through chaosk8s's create_custom_object with the plural given, not guessed
    from the kind; an existing object of the same name is returned as it is (idempotent).
    On a conflict chaosk8s returns the API server's 409 Status, not the object: it is read.
    """
    body = network_chaos_body(
        name, action, label_selector, ns, duration_s, percentage, settings, target_label_selector, direction
    )
    group, version, plural = CHAOS_MESH
    created = crd_actions.create_custom_object(
        group, version, plural, ns=ns, resource=body, secrets=_secrets(configuration, secrets)
    )
    if created.get("kind") == "Status":
        api = client.CustomObjectsApi(api_client(configuration, secrets))
        return api.get_namespaced_custom_object(group, version, ns, plural, name)
    return created


def stop_network_chaos(
    name: str, ns: str = "default", configuration: Configuration = None, secrets: Secrets = None
) -> bool:
    """Rollback of start_network_chaos: delete it (Chaos Mesh then removes the fault); False if absent."""
    api = client.CustomObjectsApi(api_client(configuration, secrets))
    group, version, plural = CHAOS_MESH
    try:
        api.delete_namespaced_custom_object(group, version, ns, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


# --- the service and the API server ------------------------------------------------------------
def service_answers(
    service_name: str,
    service_port: str = "http",
    path: str = "/readyz",
    ns: str = "default",
    timeout_s: float = 5.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """The service answers 2xx on `path` through the API server's service proxy.

    Through the proxy so that the probe reaches the service wherever the harness runs (in
    the cluster or outside it), with the same credentials as every other activity.
    """
    core = client.CoreV1Api(_one_try_client(configuration, secrets))
    try:
        core.connect_get_namespaced_service_proxy_with_path(
            f"{service_name}:{service_port}", ns, path.lstrip("/"), _request_timeout=timeout_s
        )
    except (ApiException, urllib3.exceptions.HTTPError):
        return False
    return True


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
        options: dict[str, Any] = {"limit": page_size, "_request_timeout": request_timeout_s}
        if token:
            options["_continue"] = token
        if all_namespaces:
            return core.list_pod_for_all_namespaces(**options)
        return core.list_namespaced_pod(ns, **options)

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
