"""A Kubernetes API on 127.0.0.1 for the Kubernetes target's tests: kmock's emulator, served over HTTP.

No real cluster can run here (no container engine), so the tests talk to kmock's
KubernetesEmulator (an in-memory object store behind the Kubernetes REST paths) with the real
kubernetes client and real chaosk8s. What it is not: there are no controllers, no scheduler,
no kubelet. A deleted pod stays deleted unless a test-side `ReplicaController` thread plays
the ReplicaSet controller, the scheduler and the kubelet through the same API.

`ClusterEmulator` adds what kmock 0.8 leaves out and the code under test relies on:
label and field selectors on LIST (kmock returns every object of the namespace), `/version`
(the kubernetes client asks for `/version/`), `/readyz` and `/livez` with verbose checks, an
`outage` switch that answers every request with a 500, as an API server does when etcd
times out, PUT as a whole-object replace (kmock only knows PATCH), and the pods/eviction
subresource as an API server answers it: deleted at once, or 429 TooManyRequests while a
PodDisruptionBudget (policy/v1, matchLabels only) would be violated — its ready matching pods
counted against minAvailable, or against the matching Deployments' replicas less maxUnavailable.
A `flaky(n)` mode answers the next n API requests with 503 (or 429) and then serves as usual, as
a recovering API server does. Finalizers and deletionTimestamp are kmock's own: a DELETE of an
object with finalizers only marks it, and it goes when a patch empties them (as Chaos Mesh's
NetworkChaos does once the fault is lifted).

`ReplicaController` replaces a deleted pod after configurable delays (create, schedule, Ready),
so a replacement can be as slow as on a live cluster, and schedules only onto schedulable nodes.

`SelfSubjectAccessReview` (POST, answered, never stored, as the API server does) is decided by
`access_rules`: None allows everything (as kmock has no authorisation at all); a list of RBAC
rules (`rbac_rules` reads them from Role/ClusterRole manifests) is evaluated as the RBAC
authoriser does — verbs, API groups, resources/subresources, resourceNames, nonResourceURLs,
a Role's rules in its namespace only. Aggregated ClusterRoles, other authorisers (webhooks,
EKS access entries) and `system:` default bindings are not modelled.

Added for the control-plane probes, each unlike a live API server in the way said:
- LIST honours `limit` and `continue` (the token is a plain offset, not an etcd snapshot: an
  object created between pages can shift the pages) except with `resourceVersion=0`, which
  answers everything at once, as the watch cache did before Kubernetes 1.33;
- `serviceaccounts/NAME/token` (TokenRequest) answers a token naming the ServiceAccount,
  `sa:<namespace>:<name>`, if the ServiceAccount exists. Nothing checks any token;
- `flow_limit`: a crude API Priority and Fairness. A flow is the Authorization header (APF's
  per-user flow distinguisher); an API request beyond `flow_limit` in flight for its flow gets
  429 at once with `Retry-After: 1`. Paths outside the API (/readyz, /livez, /version) are
  exempt, as APF's `probes` FlowSchema makes the health checks. There are no priority levels,
  queues, seats or shuffle sharding. `list_delay_s` holds every LIST that long, so that concurrency builds up;
- `clock_offset_s`: the `Date` header of answers is this far from the machine's clock, as an
  API server whose clock is off. Object timestamps the tests write are their own choice.
- `forbidden`: requests it matches get 403, as a missing RBAC grant would; apart from it and
  the access reviews above, there is no RBAC (any token may do anything).

The kubeconfig has two contexts: `test-cluster` (allowed) on one emulator and `production`
on another, and production is the current-context: a client that forgot to pin the context
would land there.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import pytest
import yaml
from kmock import KubernetesError
from kubernetes import client as k8s_client

NAMESPACE = "shop"
SELECTOR = "app=subs"
ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c")
_PROXY = re.compile(r"^/api/v1/namespaces/([^/]+)/services/([^/:]+)(?::[^/]+)?/proxy(/.*)?$")
RESOURCES = (
    "v1/pods",
    "v1/nodes",
    "v1/events",
    "v1/serviceaccounts",
    "apps/v1/deployments",
    "networking.k8s.io/v1/networkpolicies",
    "policy/v1/poddisruptionbudgets",
    "discovery.k8s.io/v1/endpointslices",
    "v1/endpoints",
    "coordination.k8s.io/v1/leases",
)
CHAOS_MESH_RESOURCES = (
    "chaos-mesh.org/v1alpha1/networkchaos",
    "apiextensions.k8s.io/v1/customresourcedefinitions",
)
"""What a cluster with Chaos Mesh serves besides: its NetworkChaos (plural `networkchaos`, as
its CRD declares; kmock keys resources by group/version/plural) and the CRDs themselves."""


def _selected(selector: str | None, labels: dict[str, str]) -> bool:
    """Equality-based selectors only (`a=b,c!=d`): all the tests use. Kept apart from the harness's own."""
    for part in (selector or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "!=" in part:
            key, value = part.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif part.strip() not in labels:
            return False
    return True


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _field(obj: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def rbac_rules(paths: list[Path], namespace: str) -> list[dict[str, Any]]:
    """The rules of every Role and ClusterRole in these manifests, each with the namespace it
    applies in (None: a ClusterRole, everywhere). A Role without one lands in `namespace`, as
    kustomize's namespace transformer would place it."""
    rules = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") not in ("Role", "ClusterRole"):
                continue
            where = None if doc["kind"] == "ClusterRole" else doc["metadata"].get("namespace", namespace)
            rules.extend({**rule, "namespace": where} for rule in doc.get("rules") or [])
    return rules


def _in(value: str, allowed: list[str] | None) -> bool:
    return bool(allowed) and ("*" in allowed or value in allowed)  # type: ignore[operator]


def access_allowed(rules: list[dict[str, Any]], spec: dict[str, Any]) -> bool:
    """The RBAC authoriser's answer for a SubjectAccessReview spec."""
    if non := spec.get("nonResourceAttributes"):
        path, verb = non.get("path", ""), non.get("verb", "")
        return any(
            _in(verb, r.get("verbs"))
            and any(
                u == path or (u.endswith("*") and path.startswith(u[:-1]))
                for u in r.get("nonResourceURLs") or []
            )
            for r in rules
        )
    attrs = spec.get("resourceAttributes") or {}
    resource = attrs.get("resource", "") + (f"/{attrs['subresource']}" if attrs.get("subresource") else "")
    for r in rules:
        if r["namespace"] is not None and r["namespace"] != attrs.get("namespace"):
            continue
        if not (_in(attrs.get("verb", ""), r.get("verbs")) and _in(attrs.get("group", ""), r.get("apiGroups"))
                and _in(resource, r.get("resources"))):  # fmt: skip
            continue
        names = r.get("resourceNames")
        if names and attrs.get("name") not in names:
            continue
        return True
    return False


class ClusterEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus selectors, version, health endpoints and an outage switch."""

    git_version = "v1.30.4-eks-a737599"
    access_rules: list[dict[str, Any]] | None = None
    """RBAC rules deciding SelfSubjectAccessReviews (see `rbac_rules`); None allows everything."""
    failed_checks: tuple[str, ...] = ()
    outage: Callable[[Any], bool] | None = None
    service_proxy: dict[str, str] = {}
    """Service name -> base URL: the API server's service proxy, forwarding for real over HTTP."""
    forbidden: Callable[[Any], bool] | None = None
    """Requests it answers 403, as RBAC would (nothing else is authorised or refused)."""
    flow_limit: int | None = None
    list_delay_s: float = 0.0
    clock_offset_s: float = 0.0
    _in_flight: dict[str, int] = {}

    def now(self) -> float:
        """The emulated API server's clock."""
        return time.time() + self.clock_offset_s

    _flaky: tuple[int, int] = (0, 503)
    """(requests still to fail, their status): see `flaky`."""

    def flaky(self, n: int, status: int = 503) -> None:
        """Answer the next `n` API requests with `status` (503, 429...), then serve as usual."""
        self._flaky = (n, status)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        flow = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        limited = self.flow_limit is not None and request.resource is not None  # /readyz, /livez: exempt
        if limited and self._in_flight.get(flow, 0) >= (self.flow_limit or 0):
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 429,
                      "reason": "TooManyRequests", "message": "Too many requests, please try again later."}  # fmt: skip
            return aiohttp.web.json_response(status, status=429, headers={"Retry-After": "1"})
        self._in_flight = {**self._in_flight, flow: self._in_flight.get(flow, 0) + 1}
        try:
            if self.list_delay_s and request.method.value == "GET" and request.resource and not request.name:
                await asyncio.sleep(self.list_delay_s)
            response = await self._dispatch(request)
        finally:
            self._in_flight = {**self._in_flight, flow: self._in_flight[flow] - 1}
        if self.clock_offset_s and not response.prepared:
            response.headers["Date"] = email.utils.formatdate(self.now(), usegmt=True)
        return response

    async def _dispatch(self, request: Any) -> aiohttp.web.StreamResponse:
        if self.forbidden is not None and self.forbidden(request):
            raise KubernetesError(status=403, reason="Forbidden", message="forbidden by the test's RBAC")
        if self.outage is not None and self.outage(request):
            raise KubernetesError(status=500, reason="InternalError", message="etcdserver: request timed out")
        left, status = self._flaky
        if left > 0 and request.resource is not None:
            self._flaky = (left - 1, status)
            reason = "TooManyRequests" if status == 429 else "ServiceUnavailable"
            raise KubernetesError(
                status=status, reason=reason, message="the server is currently unable to handle the request"
            )
        path = request.url.path.rstrip("/")
        if path in ("/readyz", "/livez"):
            checks = ["ping", "log", "etcd", "poststarthook/start-informers"]
            lines = [
                f"[-]{c} failed: reason withheld" if c in self.failed_checks else f"[+]{c} ok" for c in checks
            ]
            ok = not any(c in self.failed_checks for c in checks)
            lines.append(f"{path[1:]} check passed" if ok else f"{path[1:]} check failed")
            return aiohttp.web.Response(text="\n".join(lines) + "\n", status=200 if ok else 500)
        if proxied := _PROXY.match(request.url.path):
            base = self.service_proxy.get(proxied.group(2))
            if base is None:
                raise KubernetesError(
                    status=503, reason="ServiceUnavailable", message="no endpoints available"
                )
            async with (
                aiohttp.ClientSession() as session,
                session.get(base + (proxied.group(3) or "/")) as response,
            ):
                return aiohttp.web.Response(
                    body=await response.read(), status=response.status, content_type=response.content_type
                )
        if request.method.value == "POST" and path == _ACCESS_REVIEWS:
            review = request.data
            spec = review.get("spec") or {}
            allowed = self.access_rules is None or access_allowed(self.access_rules, spec)
            status = {"allowed": allowed}
            if not allowed:
                status["reason"] = "no RBAC rule allows it"
            return aiohttp.web.json_response({**review, "status": status}, status=201)
        if request.method.value == "PUT" and request.resource is not None and request.name:
            return await self._replace(request)
        if (
            request.method.value == "POST"
            and request.resource is not None
            and request.resource.plural == "leases"
        ) and isinstance(request.data, dict):  # a created Lease starts at resourceVersion 1 (see _replace)
            request.data.setdefault("metadata", {})["resourceVersion"] = "1"
        if request.method.value == "POST" and request.subresource == "eviction":
            return await self._evict(request)
        if request.method.value == "POST" and request.subresource == "token":
            return await self._token(request)
        if path == "/version":
            return aiohttp.web.json_response(
                {
                    "major": "1",
                    "minor": "30",
                    "gitVersion": self.git_version,
                    "gitCommit": "0" * 40,
                    "gitTreeState": "clean",
                    "buildDate": "2024-08-01T00:00:00Z",
                    "goVersion": "go1.22.5",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        return await super()._handle(request)

    async def _replace(self, request: Any) -> aiohttp.web.StreamResponse:
        """PUT: the body becomes the object (kmock routes only PATCH to its merge).

        Optimistic concurrency for objects that carry a resourceVersion (Leases; kmock keeps none
        for the rest): a PUT naming another version than the stored one gets 409 Conflict, as
        from the API server, and a successful one counts the version up."""
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                raise KubernetesError(status=404, reason="NotFound", message=f"{request.name} not found")
            stored = (self.objects[key].raw.get("metadata") or {}).get("resourceVersion")
            if stored is not None and isinstance(request.data, dict):
                sent = (request.data.get("metadata") or {}).get("resourceVersion")
                if sent is not None and sent != stored:
                    self.conflicts.append(request.name)
                    raise KubernetesError(
                        status=409, reason="Conflict",
                        message=f'Operation cannot be fulfilled on {request.resource.plural} "{request.name}": '
                        "the object has been modified; please apply your changes to the latest version and try again",
                    )  # fmt: skip
                request.data.setdefault("metadata", {})["resourceVersion"] = str(int(stored) + 1)
            self.objects[key].create(request.data)
            raw = self.objects[key].raw
            await self._buses[request.resource].put({"type": "MODIFIED", "object": raw})
        return aiohttp.web.json_response(raw)

    async def _evict(self, request: Any) -> aiohttp.web.StreamResponse:
        """POST pods/NAME/eviction: the pod is deleted, or 429 while a PodDisruptionBudget objects."""
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                raise KubernetesError(status=404, reason="NotFound", message=f"pod {request.name} not found")
            raw = self.objects[key].raw
            if budget := self._budget_violated(request.namespace, raw):
                self.evictions_refused.append(request.name)
                raise KubernetesError(
                    status=429, reason="TooManyRequests",
                    message=f"Cannot evict pod as it would violate the pod's disruption budget {budget}.",
                )  # fmt: skip
            self.objects[key].delete()
            await self._buses[request.resource].put({"type": "DELETED", "object": raw})
        status = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "code": 201}
        return aiohttp.web.json_response(status, status=201)

    async def _token(self, request: Any) -> aiohttp.web.StreamResponse:
        """POST serviceaccounts/NAME/token: a TokenRequest answered with a token naming the account."""
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            raise KubernetesError(
                status=404, reason="NotFound", message=f"serviceaccount {request.name} not found"
            )
        seconds = int(((request.data or {}).get("spec") or {}).get("expirationSeconds") or 3600)
        expires = datetime.fromtimestamp(self.now() + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [], "expirationSeconds": seconds},
                "status": {"token": f"sa:{request.namespace}:{request.name}", "expirationTimestamp": expires}}  # fmt: skip
        return aiohttp.web.json_response(body, status=201)

    evictions_refused: list[str] = []
    """Pods whose eviction a budget refused (429), once per refusal."""
    conflicts: list[str] = []
    """Objects a PUT with a stale resourceVersion was refused for (409), once per refusal."""

    def _live(self, plural: str, ns: str | None) -> list[dict[str, Any]]:
        return [o.raw for (resource, namespace, _), o in self.objects.items()
                if resource.plural == plural and namespace == ns and not o.deleted]  # fmt: skip

    def _budget_violated(self, ns: str | None, pod: dict[str, Any]) -> str | None:
        """The name of a PodDisruptionBudget an eviction of `pod` would violate (only a Ready pod counts)."""
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if not _pod_ready(pod):
            return None  # evicting a pod that serves nothing costs the budget nothing
        for pdb in self._live("poddisruptionbudgets", ns):
            match = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            if not match or not match.items() <= labels.items():
                continue
            pods = [
                p
                for p in self._live("pods", ns)
                if match.items() <= ((p.get("metadata") or {}).get("labels") or {}).items()
            ]
            healthy = sum(1 for p in pods if _pod_ready(p) and not p["metadata"].get("deletionTimestamp"))
            spec = pdb["spec"]
            if "minAvailable" in spec:
                allowed = healthy - int(spec["minAvailable"])
            else:
                expected = sum(int((d.get("spec") or {}).get("replicas") or 0) for d in self._live("deployments", ns)
                               if match.items() <= (((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}).items())  # fmt: skip
                allowed = int(spec.get("maxUnavailable", 0)) - ((expected or len(pods)) - healthy)
            if allowed < 1:
                return pdb["metadata"]["name"]
        return None

    async def _serve_list(self, request: Any) -> Any:
        result = await super()._serve_list(request)
        labels, fields = request.params.get("labelSelector"), request.params.get("fieldSelector")
        items = [
            o for o in result["items"] if _selected(labels, (o.get("metadata") or {}).get("labels") or {})
        ]
        for term in (fields or "").split(","):
            if "=" in term:
                key, value = term.split("=", 1)
                items = [o for o in items if str(_field(o, key)) == value]
        limit = int(request.params.get("limit") or 0)
        if limit <= 0 or (request.params.get("resourceVersion") == "0" and "continue" not in request.params):
            return {**result, "items": items}  # the watch cache answers everything at once
        offset = int(request.params.get("continue") or 0)
        page, rest = items[offset : offset + limit], offset + limit < len(items)
        metadata = {**result["metadata"], **({"continue": str(offset + limit)} if rest else {})}
        return {**result, "metadata": metadata, "items": page}


class EmulatorServer:
    """A ClusterEmulator on 127.0.0.1 in its own thread and event loop."""

    def __init__(self, git_version: str | None = None, resources: tuple[str, ...] = ()) -> None:
        self.emulator: ClusterEmulator | None = None
        self.url = ""
        self.git_version = git_version
        self.resources = (*RESOURCES, *resources)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        emulator = ClusterEmulator()
        emulator.evictions_refused = []  # its own list, not the class's
        emulator.conflicts = []
        if self.git_version:
            emulator.git_version = self.git_version
        for resource in self.resources:
            emulator.resources[resource] = {}
        async with emulator, kmock.Server(emulator, host="127.0.0.1") as server:
            self.emulator, self.url = emulator, str(server.url).rstrip("/")
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> EmulatorServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Kubernetes emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def requests(self) -> list[Any]:
        """Every request that reached the emulator, in order."""
        assert self.emulator is not None
        return list(self.emulator)

    def api(self) -> k8s_client.ApiClient:
        configuration = k8s_client.Configuration()
        configuration.host = self.url
        configuration.api_key = {"BearerToken": "test-token"}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return k8s_client.ApiClient(configuration)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_body(name: str, zone: str, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {
            "topology.kubernetes.io/zone": zone,
            "node.kubernetes.io/instance-type": "m5.large",
            "eks.amazonaws.com/nodegroup": "workers",
            "kubernetes.io/hostname": name,
        }},
        "spec": {"providerID": f"aws:///{zone}/i-{uuid.uuid4().hex[:17]}"},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]},
    }  # fmt: skip


def pod_body(name: str, node: str | None, ready: bool) -> dict[str, Any]:
    tolerations = [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]  # fmt: skip
    conditions = [{"type": "PodScheduled", "status": "True"}] if node else []
    conditions.append({"type": "Ready", "status": "True" if ready else "False"})
    spec: dict[str, Any] = {"containers": [{"name": "subs", "image": "subs:1"}], "tolerations": tolerations}
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": str(uuid.uuid4()),
                     "labels": {"app": "subs"}, "creationTimestamp": _now(),
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "subs-5d9f",
                                          "uid": "rs-subs", "controller": True}]},
        "spec": spec,
        "status": {"phase": "Running" if ready else "Pending", "conditions": conditions},
    }  # fmt: skip


def populate(api: k8s_client.ApiClient, replicas: int = 3) -> None:
    """Three nodes in three zones, the service's deployment and its ready pods."""
    core, apps = k8s_client.CoreV1Api(api), k8s_client.AppsV1Api(api)
    core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "default"}})
    for i, zone in enumerate(ZONES):
        core.create_node(node_body(f"node-{zone[-1]}", zone))
        del i
    for i in range(replicas):
        core.create_namespaced_pod(NAMESPACE, pod_body(f"subs-{i}", f"node-{ZONES[i % 3][-1]}", True))
    core.create_namespaced_pod(NAMESPACE, {"metadata": {"name": "other-0", "labels": {"app": "other"}},
                                           "spec": {"containers": [{"name": "o", "image": "o"}], "nodeName": "node-a"}})  # fmt: skip
    apps.create_namespaced_deployment(NAMESPACE, {
        "metadata": {"name": "subs", "namespace": NAMESPACE, "labels": {"app": "subs"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "subs"}},
                 "template": {"metadata": {"labels": {"app": "subs"}}, "spec": {"containers": [{"name": "subs", "image": "subs:1"}]}}},
        "status": {"replicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas,
                   "updatedReplicas": replicas},
    })  # fmt: skip
    endpoint_slice(api)


def endpoint_slice(api: k8s_client.ApiClient, ready: bool = True) -> None:
    """The Service's EndpointSlice (label kubernetes.io/service-name=subs): the pods' addresses."""
    k8s_client.DiscoveryV1Api(api).create_namespaced_endpoint_slice(NAMESPACE, {
        "metadata": {"name": "subs-abcde", "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": "subs"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
        "endpoints": [{"addresses": [f"10.0.{i}.10"], "conditions": {"ready": ready}} for i in range(3)],
    })  # fmt: skip


class ReplicaController:
    """Plays ReplicaSet controller, scheduler and kubelet through the API: a missing replica is
    created `create_s` after it is seen missing, scheduled `schedule_s` later, ready `ready_s`
    later; the deployment's availableReplicas follows. Records when it did each step."""

    def __init__(self, api: k8s_client.ApiClient, replicas: int = 3, create_s: float = 0.5,
                 schedule_s: float = 1.0, ready_s: float = 2.0) -> None:  # fmt: skip
        self.core, self.apps = k8s_client.CoreV1Api(api), k8s_client.AppsV1Api(api)
        self.replicas, self.create_s, self.schedule_s, self.ready_s = replicas, create_s, schedule_s, ready_s
        self.log: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ReplicaController:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _available(self, n: int) -> None:
        self.apps.patch_namespaced_deployment_status(
            "subs", NAMESPACE, {"status": {"availableReplicas": n, "readyReplicas": n}}
        )

    def _event(self, reason: str, pod: str, message: str) -> None:
        self.core.create_namespaced_event(NAMESPACE, {
            "metadata": {"name": f"{pod}.{uuid.uuid4().hex[:8]}", "namespace": NAMESPACE},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": NAMESPACE},
            "reason": reason, "message": message, "type": "Normal", "count": 1,
            "firstTimestamp": _now(), "lastTimestamp": _now(),
        })  # fmt: skip

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                pods = self.core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
            except Exception:  # the emulator may be in an outage; try again
                continue
            if len(pods) >= self.replicas:
                continue
            missing_at = time.time()
            self.log.append((missing_at, "missing", ""))
            self._available(len(pods))
            if self._stop.wait(self.create_s):
                return
            name = f"subs-{uuid.uuid4().hex[:5]}"
            self.core.create_namespaced_pod(NAMESPACE, pod_body(name, None, False))
            self.log.append((time.time(), "created", name))
            if self._stop.wait(self.schedule_s):
                return
            node = self._schedulable(f"node-{ZONES[len(self.log) % 3][-1]}")
            self.core.patch_namespaced_pod(name, NAMESPACE, {"spec": {"nodeName": node}})
            self.log.append((time.time(), "scheduled", name))
            self._event("Scheduled", name, f"Successfully assigned {NAMESPACE}/{name} to {node}")
            if self._stop.wait(self.ready_s):
                return
            self.core.patch_namespaced_pod_status(
                name, NAMESPACE, {"status": {"phase": "Running", "conditions": [
                    {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}}
            )  # fmt: skip
            self.log.append((time.time(), "ready", name))
            self._available(len(pods) + 1)

    def _schedulable(self, preferred: str) -> str:
        """`preferred` unless it is cordoned; then the first schedulable node, as a scheduler would pick."""
        try:
            nodes = sorted((n.metadata.name for n in self.core.list_node().items
                            if not (n.spec and n.spec.unschedulable)), key=lambda n: n != preferred)  # fmt: skip
        except Exception:  # the emulator may be in an outage: keep the preferred one
            return preferred
        return nodes[0] if nodes else preferred

    def first(self, step: str) -> float:
        return next(t for t, s, _ in self.log if s == step)


def write_kubeconfig(path: Path, allowed_url: str, production_url: str) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "production",
        "clusters": [
            {"name": "test", "cluster": {"server": allowed_url}},
            {"name": "prod", "cluster": {"server": production_url}},
        ],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [
            {
                "name": "test-cluster",
                "context": {"cluster": "test", "user": "tester", "namespace": NAMESPACE},
            },
            {"name": "production", "context": {"cluster": "prod", "user": "tester"}},
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


class Clusters:
    """The allowed cluster, the production one, and the kubeconfig naming both."""

    def __init__(self, allowed: EmulatorServer, production: EmulatorServer, kubeconfig: Path) -> None:
        self.allowed, self.production, self.kubeconfig = allowed, production, kubeconfig


@contextlib.contextmanager
def open_clusters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resources: tuple[str, ...] = ()
) -> Iterator[Clusters]:
    """Both emulators populated, $KUBECONFIG naming them; `resources` also served by the allowed one."""
    with EmulatorServer(resources=resources) as allowed, EmulatorServer(git_version="v1.29.0") as production:
        with allowed.api() as api:
            populate(api)
        with production.api() as api:
            populate(api)
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", allowed.url, production.url)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        for key in ("KUBERNETES_CONTEXT", "CHAOSTOOLKIT_IN_POD", "HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.delenv(key, raising=False)
        yield Clusters(allowed, production, kubeconfig)


@pytest.fixture
def clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clusters]:
    with open_clusters(tmp_path, monkeypatch) as pair:
        yield pair


@pytest.fixture
def chaos_mesh_clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clusters]:
    """As `clusters`, the allowed one also serving Chaos Mesh's NetworkChaos and CRDs."""
    with open_clusters(tmp_path, monkeypatch, CHAOS_MESH_RESOURCES) as pair:
        yield pair


def target_spec(**overrides: Any) -> Any:
    from harness.plan.models import KubernetesTarget

    fields = {"kind": "kubernetes", "context": "test-cluster", "allowed_contexts": ["test-cluster"],
              "namespace": NAMESPACE, "selector": SELECTOR, **overrides}  # fmt: skip
    return KubernetesTarget(**fields)
