"""Sample a cluster's control plane while a scenario runs: `controlplane.jsonl` in the scenario folder.

The Kubernetes target opens a `ControlPlaneSampler` around each scenario's load (the engine's
`Target.observe`). Two daemon threads, each with its own ApiClient (user agent
`resilience-harness/sampler`, so audit logs tell its requests from the load's):

- the **sampler**, every `interval_s` (1 s): times a LIST of the service's pods (namespace and
  selector), a GET of one object (the namespace's `default` ServiceAccount: every namespace
  has one, and it is the cheapest namespaced read), and `/readyz?verbose` and
  `/livez?verbose` (which include the etcd checks). The timed LIST and GET are deliberately
  quorum reads (no resourceVersion): one small namespaced read a second is what shows an etcd
  that stops answering. With a `service`, it also LISTs that Service's EndpointSlices
  (`kubernetes.io/service-name=<service>`, from the watch cache) and writes its ready endpoints
  every sample: what the load balancer sends to, so the scoring sees rerouting. Where slices
  cannot be listed (404: no discovery API; 403: not granted) it reads the core/v1 Endpoints of
  that name from then on;
- the **instances** thread, only with `aws` (the target's AWS configuration), every `aws_poll_s`
  (2 s): DescribeInstances of the EC2 instances behind the cluster's nodes (their providerIDs,
  every one seen during the scenario, so a terminated node's instance stays followed), and
  writes their state changes (harness.kubernetes.instances);
- the **watcher**, every `poll_s` (0.5 s): lists nodes, the selector's pods and the
  deployments whose pod template the selector matches, and writes their transitions. These
  LISTs carry `resourceVersion=0`, so the API server answers them from its watch cache, not
  with a quorum read from etcd: the watcher compares states and needs no newer version than
  the cache holds. They are read in pages of 500 (`client.list_all`). While etcd is down the
  cache answers with the last state it has; nothing can change without etcd, so no
  transition is missed, and the sampler's quorum reads show the outage.

Polling, not watches: a watch needs resourceVersion bookkeeping, 410-Gone relists and
bookmarks to stay correct across an API outage, which is exactly when this must keep working.
Nothing is inferred from a failed list (a pod is never reported deleted because a list
failed), but the failure is written (a `poll` line), so the time the watcher was blind is
known: a quiet result with the watcher blind is not a healthy one
(`metrics["control_plane"]["watch_blind_s"]`). The price of polling is resolution: a
transition's `t` is when the poll saw it, up to `poll_s` (plus the list's latency) late.

Lines (one JSON object each; harness.report reads them, so the keys are fixed):

    {"t", "kind": "api", "verb": "list"|"get", "resource", "latency_ms", "ok", "status", "error", "own_load"}
    {"t", "kind": "health", "endpoint": "readyz"|"livez", "ok", "latency_ms", "failed_checks": [...]}
    {"t", "kind": "node", "name", "ready"}                      initial state and every change
    {"t", "kind": "pod", "name", "event": "deleted"|"created"|"scheduled"|"ready"|"not_ready", "node"}
    {"t", "kind": "deployment", "name", "available", "desired"}  initial state and every change
    {"t", "kind": "poll", "resource": "nodes"|"pods"|"deployments"|"*", "ok", "latency_ms", "status",
     "error", "last_ok_t", "blind_after_s"}
    {"t", "kind": "endpoints", "service", "source": "endpointslices"|"endpoints", "ok", "ready",
     "not_ready", "nodes": {node: ready}, "error"}              every sample, with a service
    {"t", "kind": "instance", "id", "node", "state", "error"}    initial state and every change, with aws

`t` is Unix seconds: for api, health, poll and endpoints lines when the request was sent, for
the others when the change was seen. `own_load` is true when the harness's own API-server load
(`apiserver_load`) was running under this same identity: a 429 then is the load's flow being
throttled by API Priority and Fairness, not the API server failing (the scoring keeps it
apart). What a successful poll saw counts as current for `blind_after_s` (2 s, four polls);
after that, until the next successful poll of that resource, the watcher is blind to it. A
`poll` line is written for the first successful poll of each resource, for every failed one,
and for a successful one that ends a gap (after a failure, or more than `blind_after_s` after
the previous success); `last_ok_t` is the previous successful poll of that resource (null if
none yet), so [last_ok_t + blind_after_s, t] is a span the watcher did not see. Resource `*`
(error "watcher stopped: ...") means the watcher ended early: blind from there on.

Requests are not retried (a retry would hide the failure being measured) and time out after
`request_timeout_s`. Nothing here raises into the engine: an API error is an ok=false line,
and an unexpected one ends that thread's sampling, not the scenario.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from harness import redaction
from harness.chaos.activities import kubernetes as activities
from harness.kubernetes import client, selectors

FILE = "controlplane.jsonl"
USER_AGENT = "resilience-harness/sampler"
log = logging.getLogger(__name__)


def sampling_client(api: k8s_client.ApiClient) -> k8s_client.ApiClient:
    """A client with the same cluster and credentials that never retries a request."""
    configuration = copy.deepcopy(api.configuration)
    configuration.retries = False
    sampling = k8s_client.ApiClient(configuration)
    sampling.user_agent = USER_AGENT
    return sampling


def failed_checks(body: str) -> list[str]:
    """The checks a verbose /readyz or /livez reports as failed (`[-]etcd failed: ...`)."""
    out = []
    for line in body.splitlines():
        if line.startswith("[-]"):
            out.append(line[3:].split(" ", 1)[0])
    return out


@dataclass
class _Pod:
    name: str
    node: str | None
    ready: bool
    terminating: bool


class ControlPlaneSampler:
    """Background sampling of the API server and of the workload's objects; see the module docstring."""

    def __init__(
        self,
        api: k8s_client.ApiClient,
        namespace: str,
        selector: str | None,
        path: Path,
        *,
        interval_s: float = 1.0,
        poll_s: float = 0.5,
        request_timeout_s: float = 5.0,
        blind_after_s: float = 2.0,
        max_duration_s: float = 4 * 3600.0,
        clock: Callable[[], float] = time.time,
        service: str | None = None,
        aws: dict[str, Any] | None = None,
        aws_poll_s: float = 2.0,
    ) -> None:
        self.namespace = namespace
        self.service = service or None
        """The Service whose ready endpoints each sample records; None: none recorded."""
        self.aws = aws
        """The target's AWS configuration (chaosaws keys); None: no instance states followed."""
        self.aws_poll_s = aws_poll_s
        self._slices = True
        """EndpointSlices can be listed; False after a 404 or 403: the core/v1 Endpoints instead."""
        self.selector = selector or None
        self.path = path
        self.interval_s = interval_s
        self.poll_s = poll_s
        self.timeout = (request_timeout_s, request_timeout_s)
        self.blind_after_s = blind_after_s
        """How long what a poll saw counts as current (4 polls): a longer gap is blind time."""
        self.max_duration_s = max_duration_s
        """A sampler left open by a bug stops by itself; a game day is never this long."""
        self.clock = clock
        self._source = api
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._out: Any = None
        self._threads: list[threading.Thread] = []
        self._last_ok: dict[str, float] = {}
        self._failing: set[str] = set()
        self.errors: list[str] = []
        """Unexpected failures that ended a thread early (for the scenario's facts)."""

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.path.open("a", encoding="utf-8")
        deadline = time.monotonic() + self.max_duration_s
        loops: list[tuple[str, Callable[[k8s_client.ApiClient, float], None]]] = [
            ("sampler", self._sample_loop), ("watcher", self._watch_loop)]  # fmt: skip
        if self.aws is not None:
            loops.append(("instances", self._instances_loop))
        for name, loop in loops:
            thread = threading.Thread(
                target=self._guarded, args=(name, loop, deadline), name=f"controlplane-{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout[1] * 2 + 2)
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None

    def __enter__(self) -> ControlPlaneSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _guarded(
        self, name: str, loop: Callable[[k8s_client.ApiClient, float], None], deadline: float
    ) -> None:
        api = sampling_client(self._source)
        try:
            loop(api, deadline)
            if name == "watcher" and not self._stop.is_set():
                self._watcher_stopped("watcher stopped: its maximum duration was reached")
        except Exception as exc:  # never into the engine: record and stop this thread
            log.warning("control-plane %s stopped: %r", name, exc)
            self.errors.append(f"{name}: {exc!r}")
            if name == "watcher":
                self._watcher_stopped(f"watcher stopped: {_short(exc)}")
        finally:
            api.close()

    def _running(self, deadline: float, wait_s: float) -> bool:
        return not self._stop.wait(wait_s) and time.monotonic() < deadline

    def _write(self, line: dict[str, Any]) -> None:
        # Masked as written (an API error may quote a URL with its password): reports show these.
        text = json.dumps(redaction.scrub(line), separators=(",", ":")) + "\n"
        with self._lock:
            if self._out is not None:
                self._out.write(text)
                self._out.flush()

    # --- the sampler ----------------------------------------------------------------------
    def _sample_loop(self, api: k8s_client.ApiClient, deadline: float) -> None:
        core = k8s_client.CoreV1Api(api)
        wait = 0.0
        while self._running(deadline, wait):
            started = time.monotonic()
            self._timed("list", "pods", lambda: core.list_namespaced_pod(
                self.namespace, label_selector=self.selector, _request_timeout=self.timeout))  # fmt: skip
            self._timed("get", "serviceaccounts/default", lambda: core.read_namespaced_service_account(
                "default", self.namespace, _request_timeout=self.timeout))  # fmt: skip
            for endpoint in ("readyz", "livez"):
                self._health(api, endpoint)
            if self.service:
                self._endpoints(api, self.service)
            wait = max(0.0, self.interval_s - (time.monotonic() - started))

    def _timed(self, verb: str, resource: str, call: Callable[[], Any]) -> None:
        t = self.clock()
        own_load = activities.OWN_LOAD.shares_identity()
        start = time.perf_counter()
        status, error = _outcome(call)
        latency_ms = (time.perf_counter() - start) * 1000.0
        own_load = own_load or activities.OWN_LOAD.shares_identity()
        self._write({"t": t, "kind": "api", "verb": verb, "resource": resource,
                     "latency_ms": round(latency_ms, 3), "ok": error is None, "status": status,
                     "error": error, "own_load": own_load})  # fmt: skip

    def _health(self, api: k8s_client.ApiClient, endpoint: str) -> None:
        t = self.clock()
        start = time.perf_counter()
        ok, failed = False, []
        try:
            request = api.param_serialize(
                "GET", f"/{endpoint}", query_params=[("verbose", "true")], auth_settings=["BearerToken"]
            )
            response = api.call_api(*request, _request_timeout=self.timeout)
            body = response.read() or b""
            failed = failed_checks(body.decode("utf-8", "replace"))
            ok = response.status == 200 and not failed
        except Exception as exc:  # no answer at all: the endpoint failed, with no check named
            log.debug("%s: %r", endpoint, exc)
        latency_ms = (time.perf_counter() - start) * 1000.0
        self._write({"t": t, "kind": "health", "endpoint": endpoint, "ok": ok,
                     "latency_ms": round(latency_ms, 3), "failed_checks": failed})  # fmt: skip

    def _endpoints(self, api: k8s_client.ApiClient, service: str) -> None:
        """One `endpoints` line: the Service's ready endpoints, from its EndpointSlices (or Endpoints)."""
        t = self.clock()
        counts: tuple[int, int, dict[str, int]] | None = None

        def slices() -> None:
            nonlocal counts
            items = client.list_all(k8s_client.DiscoveryV1Api(api).list_namespaced_endpoint_slice,
                                    self.namespace, label_selector=f"kubernetes.io/service-name={service}",
                                    resource_version="0", _request_timeout=self.timeout)  # fmt: skip
            counts = slice_counts(items)

        def endpoints() -> None:
            nonlocal counts
            counts = endpoints_counts(k8s_client.CoreV1Api(api).read_namespaced_endpoints(
                service, self.namespace, _request_timeout=self.timeout))  # fmt: skip

        if self._slices:
            status, error = _outcome(slices)
            if status in (403, 404):  # from now on, the Endpoints
                log.info("EndpointSlices of %s not listable (%s): reading its Endpoints", service, error)
                self._slices = False
        source = "endpointslices" if self._slices else "endpoints"
        if not self._slices:
            _, error = _outcome(endpoints)
        ready, not_ready, nodes = counts if counts is not None else (None, None, None)
        self._write({"t": t, "kind": "endpoints", "service": service, "source": source, "ok": error is None,
                     "ready": ready, "not_ready": not_ready, "nodes": nodes, "error": error})  # fmt: skip

    # --- the instances --------------------------------------------------------------------
    def _instances_loop(self, api: k8s_client.ApiClient, deadline: float) -> None:
        from harness.kubernetes import instances

        assert self.aws is not None
        instances.follow(self.aws, k8s_client.CoreV1Api(api), lambda wait: self._running(deadline, wait),
                         self._write, self.clock, self.aws_poll_s, self.timeout)  # fmt: skip

    # --- the watcher ----------------------------------------------------------------------
    def _watch_loop(self, api: k8s_client.ApiClient, deadline: float) -> None:
        core, apps = k8s_client.CoreV1Api(api), k8s_client.AppsV1Api(api)
        nodes: dict[str, bool] | None = None
        pods: dict[str, _Pod] | None = None
        deployments: dict[str, tuple[int, int]] | None = None
        wait = 0.0
        while self._running(deadline, wait):
            started = time.monotonic()
            nodes = self._poll("nodes", lambda: self._nodes(core), nodes, self._node_changes)
            pods = self._poll("pods", lambda: self._pods(core), pods, self._pod_changes)
            deployments = self._poll(
                "deployments", lambda: self._deployments(apps), deployments, self._deployment_changes
            )
            wait = max(0.0, self.poll_s - (time.monotonic() - started))

    def _poll(
        self, resource: str, read: Callable[[], Any], before: Any, changes: Callable[[Any, Any, float], None]
    ) -> Any:
        """One poll of one resource; its failure (or the gap it ends) is written as a `poll` line."""
        t = self.clock()
        start = time.perf_counter()
        now: Any = None

        def call() -> None:
            nonlocal now
            now = read()

        status, error = _outcome(call)
        latency_ms = round((time.perf_counter() - start) * 1000.0, 3)
        last_ok_t = self._last_ok.get(resource)
        line = {"t": t, "kind": "poll", "resource": resource, "ok": error is None, "latency_ms": latency_ms,
                "status": status, "error": error, "last_ok_t": last_ok_t, "blind_after_s": self.blind_after_s}  # fmt: skip
        if error is not None:  # nothing is inferred from a failed list; the gap is recorded
            log.debug("control-plane poll of %s failed: %s", resource, error)
            self._failing.add(resource)
            self._write(line)
            return before
        if last_ok_t is None or resource in self._failing or t - last_ok_t > self.blind_after_s:
            self._write(line)
        self._failing.discard(resource)
        self._last_ok[resource] = t
        changes(before, now, self.clock())
        return now

    def _watcher_stopped(self, reason: str) -> None:
        self._write({"t": self.clock(), "kind": "poll", "resource": "*", "ok": False, "latency_ms": None,
                     "status": None, "error": reason, "last_ok_t": min(self._last_ok.values(), default=None),
                     "blind_after_s": self.blind_after_s})  # fmt: skip

    def _nodes(self, core: k8s_client.CoreV1Api) -> dict[str, bool]:
        items = client.list_all(core.list_node, resource_version="0", _request_timeout=self.timeout)
        return {n.metadata.name: _condition(n.status, "Ready") for n in items}

    def _node_changes(self, before: dict[str, bool] | None, now: dict[str, bool], t: float) -> None:
        before = before or {}
        for name, ready in sorted(now.items()):
            if before.get(name) != ready:
                self._write({"t": t, "kind": "node", "name": name, "ready": ready})
        for name in sorted(set(before) - set(now)):
            if before[name]:  # a deleted Node object (the cloud controller removed it) serves nothing
                self._write({"t": t, "kind": "node", "name": name, "ready": False})

    def _pods(self, core: k8s_client.CoreV1Api) -> dict[str, _Pod]:
        items = client.list_all(core.list_namespaced_pod, self.namespace, label_selector=self.selector,
                                resource_version="0", _request_timeout=self.timeout)  # fmt: skip
        out = {}
        for p in items:
            key = p.metadata.uid or p.metadata.name
            out[key] = _Pod(
                name=p.metadata.name,
                node=p.spec.node_name if p.spec else None,
                ready=_condition(p.status, "Ready"),
                terminating=p.metadata.deletion_timestamp is not None,
            )
        return out

    def _pod_changes(self, before: dict[str, _Pod] | None, now: dict[str, _Pod], t: float) -> None:
        if before is None:
            return  # the pods running when sampling starts are the baseline, not events
        for key, pod in now.items():
            old = before.get(key)
            if old is None:
                self._pod(t, pod, "created")
                if pod.node:
                    self._pod(t, pod, "scheduled")
                if pod.ready:
                    self._pod(t, pod, "ready")
                if pod.terminating:
                    self._pod(t, pod, "deleted")
                continue
            if pod.node and not old.node:
                self._pod(t, pod, "scheduled")
            if pod.ready != old.ready:
                self._pod(t, pod, "ready" if pod.ready else "not_ready")
            if pod.terminating and not old.terminating:
                self._pod(t, pod, "deleted")
        for key in before.keys() - now.keys():
            if not before[key].terminating:  # already reported when it started terminating
                self._pod(t, before[key], "deleted")

    def _pod(self, t: float, pod: _Pod, event: str) -> None:
        self._write({"t": t, "kind": "pod", "name": pod.name, "event": event, "node": pod.node})

    def _deployments(self, apps: k8s_client.AppsV1Api) -> dict[str, tuple[int, int]]:
        items = client.list_all(apps.list_namespaced_deployment, self.namespace, resource_version="0",
                                _request_timeout=self.timeout)  # fmt: skip
        out = {}
        for d in items:
            template = d.spec.template.metadata if d.spec and d.spec.template else None
            if self.selector and not selectors.matches(self.selector, template.labels if template else None):
                continue
            desired = d.spec.replicas if d.spec and d.spec.replicas is not None else 1
            available = (d.status.available_replicas if d.status else None) or 0
            out[d.metadata.name] = (available, desired)
        return out

    def _deployment_changes(
        self, before: dict[str, tuple[int, int]] | None, now: dict[str, tuple[int, int]], t: float
    ) -> None:
        before = before or {}
        for name, (available, desired) in sorted(now.items()):
            if before.get(name) != (available, desired):
                self._write({"t": t, "kind": "deployment", "name": name, "available": available,
                             "desired": desired})  # fmt: skip


def slice_counts(items: Any) -> tuple[int, int, dict[str, int]]:
    """(ready, not ready, ready per node) over EndpointSlices; an unset `ready` condition means ready."""
    ready, not_ready, nodes = 0, 0, {}
    for s in items:
        for e in s.endpoints or []:
            if e.conditions is None or e.conditions.ready is not False:
                ready += 1
                node = e.node_name or ""
                nodes[node] = nodes.get(node, 0) + 1
            else:
                not_ready += 1
    return ready, not_ready, dict(sorted(nodes.items()))


def endpoints_counts(endpoints: Any) -> tuple[int, int, dict[str, int]]:
    """(ready, not ready, ready per node) of a core/v1 Endpoints object."""
    ready, not_ready, nodes = 0, 0, {}
    for subset in endpoints.subsets or []:
        for a in subset.addresses or []:
            ready += 1
            node = a.node_name or ""
            nodes[node] = nodes.get(node, 0) + 1
        not_ready += len(subset.not_ready_addresses or [])
    return ready, not_ready, dict(sorted(nodes.items()))


def _condition(status: Any, kind: str) -> bool:
    for c in (status.conditions if status else None) or []:
        if c.type == kind:
            return c.status == "True"
    return False


def _outcome(call: Callable[[], Any]) -> tuple[int | None, str | None]:
    """(HTTP status, error) of one request: (200, None) when it succeeded."""
    try:
        call()
    except ApiException as exc:
        return exc.status or None, f"{exc.status} {exc.reason}".strip()
    except Exception as exc:  # connection refused, timeout: the API server did not answer
        return None, _short(exc)
    return 200, None


def _short(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def open_sampler(
    api: k8s_client.ApiClient, namespace: str, selector: str | None, sdir: Path, **options: Any
) -> Iterator[ControlPlaneSampler]:
    """Sample into `sdir/controlplane.jsonl` until the block ends."""
    sampler = ControlPlaneSampler(api, namespace, selector, sdir / FILE, **options)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.close()
