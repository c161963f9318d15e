"""The engine's Target for a Kubernetes cluster (harness.engine.targets.Target).

open() connects through the allowed-context check and pins chaosk8s to that context for the
whole run (harness.kubernetes.client); close() undoes both. While a scenario's load runs,
observe() samples the control plane into `controlplane.jsonl` (harness.kubernetes.probes).

heal() undoes only what is certainly the harness's own, by the marks our activities
(harness.chaos.activities.kubernetes) leave, in case a rollback did not run or failed:

- a node labelled `resilience-harness.io/cordoned=true` is uncordoned and the label dropped;
- a deployment annotated `resilience-harness.io/previous-replicas` is scaled back to it;
- a NetworkPolicy or Chaos Mesh NetworkChaos in the plan's namespace labelled
  `app.kubernetes.io/managed-by: resilience-harness` is deleted;
- with `aws` settings, the AWS faults marked for this cluster (harness.chaos.activities.aws.heal).

A fault injected by a plain chaosk8s action (which marks nothing) is left to the experiment's
rollbacks: undoing a cordon nobody can attribute could undo an operator's.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from harness import runlock
from harness.chaos.activities import kubernetes as activities
from harness.errors import HarnessError
from harness.kubernetes import client, facts, lease, probes

MANAGED_BY_LABEL, MANAGED_BY = next(iter(activities.MANAGED_BY.items()))
"""The label our own activities put on what they create (network policies, chaos resources)."""
CORDONED_LABEL = activities.CORDONED
"""The label (value "true") our own activities put on a node they cordon."""
PREVIOUS_REPLICAS = activities.PREVIOUS_REPLICAS
DEFAULT_SERVICE = "subs"
"""The Service sampled when a scenario names none: the catalog experiments' `service_name` default."""
DNS_NAMESPACE, DNS_DEPLOYMENT = "kube-system", "coredns"
"""What experiments/kubernetes/dns-disruption.yaml scales by default."""
"""The annotation on a deployment our activities scaled: the count to restore."""
TIMEOUT = (5.0, 15.0)


@dataclass
class KubernetesTarget:
    """A cluster reached through a kubeconfig context the plan allows (or in-cluster)."""

    spec: Any
    """The plan's KubernetesTarget (context, allowed_contexts, namespace, selector, aws)."""
    url: str = ""
    """The service's URL (the plan's load.host): a cluster has no one load balancer to find."""
    sampler_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for probes.ControlPlaneSampler (intervals); empty: its defaults."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    """Marks AWS faults with the run that made them (activities.aws.RUN_TAG); the engine may set its own."""
    lock: bool = False
    """Hold the namespace's run Lease (harness.kubernetes.lease) while open: what a run does;
    `harness cleanup --plan` heals without it."""
    wait_s: float = 0.0
    """How long to wait for another run's Lease; 0: fail at once."""
    say: Callable[[str], None] | None = None
    connection: client.Connection | None = field(default=None, init=False)
    run_lease: lease.Lease | None = field(default=None, init=False)
    healed_before: list[str] = field(default_factory=list, init=False)
    """What a run that died holding the Lease had left marked, undone before this run."""
    _pin: client.ContextPin | None = field(default=None, init=False)

    def open(self) -> None:
        if self.connection is not None:
            return
        connection = client.connect(self.spec)
        try:
            if self.lock:  # before the pin: a run refused here changes nothing in this process
                self._take_lease(connection)
            pin = client.ContextPin(connection)
            pin.apply()
        except BaseException:
            if self.run_lease is not None:
                self.run_lease.release()
                self.run_lease = None
            connection.close()
            raise
        self.connection, self._pin = connection, pin
        held = self.run_lease
        if held is None:
            return
        held.start_renewing()  # before healing, which may take longer than the Lease lasts
        if held.previous:
            # Its holder stopped renewing (killed, or its machine lost): undo what it left marked.
            self.healed_before = self.heal()
            if self.say is not None:
                self.say(
                    f"{runlock.describe(held.previous)} stopped renewing the namespace's Lease; healed first: "
                    f"{len(self.healed_before)} step(s)"
                )

    def _take_lease(self, connection: client.Connection) -> None:
        def waiting(holder: dict[str, Any]) -> None:
            if self.say is not None:
                self.say(
                    f"namespace {self.spec.namespace} is in use by {runlock.describe(holder)}; "
                    f"waiting up to {self.wait_s:.0f} s"
                )

        held = lease.Lease(connection.api, self.spec.namespace, self.run_id)
        held.acquire(self.wait_s, on_wait=waiting)
        self.run_lease = held

    def close(self) -> None:
        held, self.run_lease = self.run_lease, None
        pin, connection = self._pin, self.connection
        self._pin = self.connection = None
        try:
            if held is not None:
                held.release()
        finally:
            try:
                if pin is not None:
                    pin.release()
            finally:
                if connection is not None:
                    connection.close()

    def _api(self) -> k8s_client.ApiClient:
        if self.connection is None:
            raise HarnessError("target: the Kubernetes target is not open")
        return self.connection.api

    def configuration(self) -> dict[str, Any]:
        """What experiments get as configuration; the AWS keys under both our and chaosaws's names."""
        config: dict[str, Any] = {
            "namespace": self.spec.namespace,
            "label_selector": self.spec.selector,
            "kubernetes_context": self.spec.context if self.spec.context is not None else client.IN_CLUSTER,
        }
        if self.url:  # the service as the load reaches it: what the steady state's probe asks
            config["service_url"] = self.url
        aws = self.spec.aws
        if aws is not None:
            # what AWS marks carry (activities.aws.mark_identity): whose cluster, which run
            config["harness_cluster"] = self.spec.cluster or self.spec.effective_context
            config["harness_run_id"] = self.run_id
            config["aws_region"] = aws.region
            if aws.profile is not None:
                config["aws_profile"] = aws.profile
                config["aws_profile_name"] = aws.profile  # the key chaosaws reads
            if aws.role_arn is not None:
                config["aws_assume_role_arn"] = aws.role_arn
        return config

    def heal(self) -> list[str]:
        """Undo harness-marked leftovers (see the module docstring); what was done, and what failed."""
        if self.connection is None:
            return []
        api, ns = self._api(), self.spec.namespace
        core, apps = k8s_client.CoreV1Api(api), k8s_client.AppsV1Api(api)
        net, custom = k8s_client.NetworkingV1Api(api), k8s_client.CustomObjectsApi(api)
        ours = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
        done: list[str] = []

        def step(what: str, action: Any) -> None:
            try:
                action()
            except ApiException as exc:
                if exc.status != 404:  # 404: the resource kind is not installed (Chaos Mesh)
                    done.append(f"could not check {what}: {_reason(exc)}")
            except Exception as exc:  # heal runs in the engine's finally: report, never raise
                done.append(f"could not check {what}: {_reason(exc)}")

        def nodes() -> None:
            for node in core.list_node(
                label_selector=f"{CORDONED_LABEL}=true", _request_timeout=TIMEOUT
            ).items:
                body = {"metadata": {"labels": {CORDONED_LABEL: None}}, "spec": {"unschedulable": False}}
                core.patch_node(node.metadata.name, body, _request_timeout=TIMEOUT)
                done.append(f"uncordoned node {node.metadata.name} left cordoned by a harness activity")

        def deployments() -> None:
            for d in apps.list_namespaced_deployment(ns, _request_timeout=TIMEOUT).items:
                recorded = (d.metadata.annotations or {}).get(PREVIOUS_REPLICAS)
                if recorded is None:
                    continue
                body = {
                    "metadata": {"annotations": {PREVIOUS_REPLICAS: None}},
                    "spec": {"replicas": int(recorded)},
                }
                apps.patch_namespaced_deployment(d.metadata.name, ns, body, _request_timeout=TIMEOUT)
                done.append(f"scaled deployment {ns}/{d.metadata.name} back to {recorded} replicas")

        def coredns() -> None:
            # dns-disruption scales kube-system/coredns (RBAC: get/patch by name only, no list)
            d = apps.read_namespaced_deployment(DNS_DEPLOYMENT, DNS_NAMESPACE, _request_timeout=TIMEOUT)
            recorded = (d.metadata.annotations or {}).get(PREVIOUS_REPLICAS)
            if recorded is None:
                return
            body = {
                "metadata": {"annotations": {PREVIOUS_REPLICAS: None}},
                "spec": {"replicas": int(recorded)},
            }
            apps.patch_namespaced_deployment(DNS_DEPLOYMENT, DNS_NAMESPACE, body, _request_timeout=TIMEOUT)
            done.append(f"scaled deployment {DNS_NAMESPACE}/{DNS_DEPLOYMENT} back to {recorded} replicas")

        def policies() -> None:
            for p in net.list_namespaced_network_policy(
                ns, label_selector=ours, _request_timeout=TIMEOUT
            ).items:
                net.delete_namespaced_network_policy(p.metadata.name, ns, _request_timeout=TIMEOUT)
                done.append(f"deleted network policy {ns}/{p.metadata.name} left by a harness activity")

        def network_chaos() -> None:
            group, version, plural = activities.CHAOS_MESH
            found = custom.list_namespaced_custom_object(group, version, ns, plural, label_selector=ours,
                                                         _request_timeout=TIMEOUT)  # fmt: skip
            for item in found.get("items", []):
                name = item["metadata"]["name"]
                custom.delete_namespaced_custom_object(
                    group, version, ns, plural, name, _request_timeout=TIMEOUT
                )
                done.append(f"deleted {plural} {ns}/{name} left by a harness activity")

        step("nodes for harness cordons", nodes)
        step(f"deployments in {ns} for recorded scales", deployments)
        if ns != DNS_NAMESPACE:
            step(f"{DNS_NAMESPACE}/{DNS_DEPLOYMENT} for a recorded scale", coredns)
        step(f"network policies in {ns}", policies)
        step(f"Chaos Mesh network chaos in {ns}", network_chaos)
        if self.spec.aws is not None:  # AWS faults this cluster's marks show (NACLs, SSM, FIS)
            from harness.chaos.activities import aws as aws_activities

            done += aws_activities.heal(self.configuration())
        return done

    def ground_truth(self, start_t: float, end_t: float) -> list[dict[str, Any]]:
        """The namespace's Kubernetes events in the window (what the cluster says happened).

        Event times are the cluster's clock; `t` is put on the harness's (the API server's
        measured skew subtracted, `client.ClockSkew`), so they line up with the timeline, and
        `cluster_t` keeps the time as the cluster stamped it.
        """
        if self.connection is None:
            return []
        skew = self.connection.clock_skew()
        try:
            items = client.list_all(k8s_client.CoreV1Api(self._api()).list_namespaced_event, self.spec.namespace,
                                    resource_version="0", _request_timeout=TIMEOUT)  # fmt: skip
        except Exception as exc:
            return [{"t": end_t, "event": "events_unreadable", "error": _reason(exc)}]
        out = []
        for e in items:
            cluster_t = _epoch(e.event_time or e.last_timestamp or e.first_timestamp
                               or (e.metadata.creation_timestamp if e.metadata else None))  # fmt: skip
            if cluster_t is None:
                continue
            t = round(skew.to_harness(cluster_t), 3)
            if not start_t <= t <= end_t:
                continue
            obj = e.involved_object
            out.append({
                "t": t,
                "cluster_t": cluster_t,
                "event": e.reason,
                "type": e.type,
                "object": f"{obj.kind}/{obj.name}" if obj else None,
                "message": e.message,
                "count": e.count,
            })  # fmt: skip
        return sorted(out, key=lambda r: r["t"])

    def facts(self) -> dict[str, Any]:
        if self.connection is None:
            raise HarnessError("target: the Kubernetes target is not open")
        cluster = getattr(self.spec, "cluster", None) or self.connection.context
        return {
            **facts.cluster_facts(self.connection, self.spec.selector),
            "cluster": cluster,
            "url": self.url,
            **(
                {"lock": {**self.run_lease.record(), "healed": self.healed_before}}
                if self.run_lease is not None
                else {}
            ),
        }

    @contextlib.contextmanager
    def observe(self, sdir: Path, service: str | None = None) -> Iterator[None]:
        """Sample the control plane into sdir/controlplane.jsonl while the block runs.

        `service`: the scenario's Service (its `service_name`), whose ready endpoints are
        sampled; None: the reference service's name, `subs`, as the catalog's default. With
        `aws` settings, the EC2 instances behind the nodes are followed too.
        """
        if self.connection is None:
            yield
            return
        aws = self.configuration() if self.spec.aws is not None else None
        options = {"service": service or DEFAULT_SERVICE, "aws": aws, **self.sampler_options}
        with probes.open_sampler(self._api(), self.spec.namespace, self.spec.selector, sdir, **options):
            yield


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    return None


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return f"{status} {getattr(exc, 'reason', '')}".strip() if status else f"{type(exc).__name__}: {exc}"
