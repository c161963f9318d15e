"""One run per Kubernetes namespace: a coordination.k8s.io Lease held while a run injects.

The Kubernetes target (harness.kubernetes.target) takes the Lease `resilience-harness-lock`
in the plan's namespace in open(), renews it from a thread every RENEW_S seconds, and gives
it up in close(). The Lease's holderIdentity is the run id; an annotation holds who the run
is (run id, host, pid, started) for the message a second run prints.

Why a Lease and not a lock on this machine: two game days against one cluster may start on
different machines (a laptop and the scheduled CronJob). A Lease is what Kubernetes itself
uses for this (leader election of the scheduler and controller manager), every cluster has
it, and the permissions are narrow (get, create, update one named object).

A holder that dies stops renewing; its Lease expires DURATION_S after the last renewal, and
a later run may take it over. Expiry is judged from renewTime against this machine's clock, as
client libraries without a watch do; a clock ahead of the holder's shortens the wait. Every
write carries the resourceVersion it read, so of two runs taking over one expired Lease at
once, one write wins and the other gets 409 Conflict: it reads again and sees the winner.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from harness import runlock
from harness.errors import HarnessError

LEASE_NAME = "resilience-harness-lock"
DURATION_S = 60
"""How long a Lease stays held without renewal: four missed renewals, so one slow API answer
or a short API server outage does not hand the cluster to a second run."""
RENEW_S = 15.0
"""How often the holder renews: a quarter of the duration, as leader election does."""
HOLDER_ANNOTATION = "resilience-harness.io/holder"
TIMEOUT = (5.0, 15.0)
POLL_S = 2.0
"""How often a waiting run looks at the Lease again."""


class LeaseHeldError(runlock.HeldError):
    """Another live run holds the namespace's Lease: exit 2, as for a held testbed folder."""

    def __init__(self, namespace: str, holder: dict[str, Any], waited_s: float = 0.0) -> None:
        self.namespace = namespace
        super().__init__(
            f"namespace {namespace} is in use by {runlock.describe(holder)} (Lease {LEASE_NAME})",
            holder,
            waited_s,
            "one run per namespace at a time: wait for it (--wait SECONDS), or let the Lease expire "
            f"({DURATION_S} s after its holder stops renewing)",
        )


def _micro_time(t: float) -> str:
    """Kubernetes MicroTime (RFC 3339 with microseconds)."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _reason(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


@dataclass
class Lease:
    """The namespace's run Lease, as held by one run."""

    api: k8s_client.ApiClient
    namespace: str
    run_id: str
    clock: Callable[[], float] = time.time
    """Wall clock: renewTime is wall-clock time, compared with the holder's."""
    body: dict[str, Any] = field(init=False)
    previous: dict[str, Any] | None = field(default=None, init=False)
    """Who held the Lease before, when this run took over an expired one (a run that died)."""
    waited_s: float = field(default=0.0, init=False)
    renewals: int = field(default=0, init=False)
    lost: str | None = field(default=None, init=False)
    """Why the Lease was lost while held (another run took it after renewals failed), if it was."""
    held: bool = field(default=False, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.body = runlock.holder_body(self.run_id, self.clock())
        self._api = k8s_client.CoordinationV1Api(self.api)

    # --- reading and writing the object ---------------------------------------------------
    def _read(self) -> dict[str, Any] | None:
        try:
            answer = self._api.read_namespaced_lease(
                LEASE_NAME, self.namespace, _preload_content=False, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return json.loads(answer.data)

    def _spec(self, now: float, transitions: int, acquired: float | None = None) -> dict[str, Any]:
        return {
            "holderIdentity": self.run_id,
            "leaseDurationSeconds": DURATION_S,
            "acquireTime": _micro_time(acquired if acquired is not None else now),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }

    def _object(self, spec: dict[str, Any], resource_version: str | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": LEASE_NAME,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/managed-by": "resilience-harness"},
            "annotations": {HOLDER_ANNOTATION: json.dumps(self.body)},
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    @staticmethod
    def holder_of(lease: dict[str, Any]) -> dict[str, Any]:
        """Who a Lease object names: its annotation, else its holderIdentity alone."""
        metadata = lease.get("metadata") or {}
        spec = lease.get("spec") or {}
        try:
            holder = json.loads((metadata.get("annotations") or {}).get(HOLDER_ANNOTATION) or "{}")
        except ValueError:
            holder = {}
        if not isinstance(holder, dict):
            holder = {}
        if spec.get("holderIdentity") and holder.get("run_id") != spec["holderIdentity"]:
            holder = {"run_id": spec["holderIdentity"]}  # another tool wrote it, or an older body
        return holder

    def _expired(self, lease: dict[str, Any], now: float) -> bool:
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            return True  # released
        renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
        duration = spec.get("leaseDurationSeconds") or DURATION_S
        return renewed is None or now > renewed + duration

    def try_acquire(self) -> dict[str, Any] | None:
        """Take the Lease if it is free, released or expired; None when taken, else who holds it."""
        for _ in range(5):  # each turn ends in a decision unless a write lost a race
            try:
                lease = self._read()
                now = self.clock()
                if lease is None:
                    self._api.create_namespaced_lease(
                        self.namespace, self._object(self._spec(now, 0)), _request_timeout=TIMEOUT
                    )
                    self.previous = None
                    return None
                spec = lease.get("spec") or {}
                if (
                    spec.get("holderIdentity")
                    and spec["holderIdentity"] != self.run_id
                    and not self._expired(lease, now)
                ):
                    return self.holder_of(lease)
                version = (lease.get("metadata") or {}).get("resourceVersion")
                self._api.replace_namespaced_lease(
                    LEASE_NAME,
                    self.namespace,
                    self._object(self._spec(now, int(spec.get("leaseTransitions") or 0) + 1), version),
                    _request_timeout=TIMEOUT,
                )
                # A Lease still naming a holder was taken over from a run that stopped renewing.
                taken_from = spec.get("holderIdentity")
                self.previous = self.holder_of(lease) if taken_from and taken_from != self.run_id else None
                return None
            except ApiException as exc:
                if exc.status != 409:  # 409: another run wrote first (create or replace); look again
                    raise HarnessError(
                        f"the run Lease {self.namespace}/{LEASE_NAME}: {exc.status} {_reason(exc)}"
                    ) from None
        raise HarnessError(f"the run Lease {self.namespace}/{LEASE_NAME}: kept changing while being taken")

    def acquire(
        self,
        wait_s: float = 0.0,
        on_wait: Callable[[dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Take the Lease, waiting up to `wait_s` for its holder; LeaseHeldError if it stays held."""
        started = monotonic()
        told = False
        while True:
            holder = self.try_acquire()
            waited = monotonic() - started
            if holder is None:
                self.waited_s, self.held = waited, True
                return
            if waited >= wait_s:
                raise LeaseHeldError(self.namespace, holder, waited)
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            sleep(min(POLL_S, max(wait_s - waited, 0.0)))

    def renew(self) -> bool:
        """Renew the Lease if this run still holds it; False (and `lost` set) when another run has it."""
        try:
            lease = self._read()
        except ApiException:
            return True  # unreachable for now: the Lease lasts DURATION_S, the next renewal may get through
        spec = (lease or {}).get("spec") or {}
        if lease is None or spec.get("holderIdentity") != self.run_id:
            self.lost = (
                f"the Lease is held by {runlock.describe(self.holder_of(lease))}"
                if lease
                else "the Lease is gone"
            )
            self.held = False
            return False
        version = (lease.get("metadata") or {}).get("resourceVersion")
        acquired = _parse_time(spec.get("acquireTime"))
        body = self._object(
            self._spec(self.clock(), int(spec.get("leaseTransitions") or 0), acquired), version
        )
        try:
            self._api.replace_namespaced_lease(LEASE_NAME, self.namespace, body, _request_timeout=TIMEOUT)
        except ApiException:
            return True  # a conflict or an outage: the next renewal reads again and decides
        self.renewals += 1
        return True

    def start_renewing(self, every_s: float = RENEW_S) -> None:
        """Renew from a daemon thread until release()."""

        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    if not self.renew():
                        return
                except Exception as exc:  # the renewer must not die silently; the next turn retries
                    self.lost = f"renewal failed: {exc.__class__.__name__}: {exc}"

        self._thread = threading.Thread(target=loop, name="harness-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and give the Lease up (holder cleared), if this run still holds it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT[1] * 2)
            self._thread = None
        if not self.held:
            return
        self.held = False
        try:
            lease = self._read()
            spec = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != self.run_id:
                return
            version = (lease.get("metadata") or {}).get("resourceVersion")
            body = self._object(
                {**spec, "holderIdentity": None, "renewTime": _micro_time(self.clock())}, version
            )
            body["metadata"]["annotations"] = {}
            self._api.replace_namespaced_lease(LEASE_NAME, self.namespace, body, _request_timeout=TIMEOUT)
        except ApiException:
            pass  # not given up: it expires DURATION_S after the last renewal

    def record(self) -> dict[str, Any]:
        """What result.json keeps under target.lock."""
        return {
            "kind": "lease",
            "name": f"{self.namespace}/{LEASE_NAME}",
            **self.body,
            "duration_s": DURATION_S,
            "renew_s": RENEW_S,
            "waited_s": round(self.waited_s, 3),
            "took_over_from": self.previous,
            "renewals": self.renewals,
            "lost": self.lost,
        }
