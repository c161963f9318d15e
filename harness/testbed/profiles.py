"""Testbed profiles: how many control-plane members and nodes, and the control loop's timings.

Timings are Kubernetes' defaults scaled down about ten times, so that a scenario (fault,
detection, eviction, recovery) fits in a minute or two. The real defaults sit next to
each field; docs/testbed.md has the table.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ProfileName(StrEnum):
    SELF_MANAGED = "self-managed"
    """One etcd member on one control-plane node: the set-up that lost its data in our story."""
    MANAGED = "managed"
    """Three etcd members in three zones, as EKS runs its control plane."""


class Timings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    heartbeat_s: float = Field(0.5, gt=0)
    """Node heartbeat (Lease renewal). Kubernetes: every 10 s (nodeLeaseDurationSeconds 40 / 4)."""
    node_grace_s: float = Field(4.0, gt=0)
    """Heartbeat silence before a node is NotReady. Kubernetes: node-monitor-grace-period 40 s (50 s since 1.32)."""
    eviction_s: float = Field(30.0, ge=0)
    """NotReady time before its replicas are rescheduled. Kubernetes: 300 s not-ready/unreachable toleration."""
    eviction_interval_s: float = Field(1.0, ge=0)
    """At most one node's replicas evicted per zone this often. Kubernetes: node-eviction-rate 0.1 nodes/s."""
    sync_s: float = Field(0.2, gt=0)
    """Controller loop period. Kubernetes: node-monitor-period 5 s; endpoint updates are near-instant."""
    readiness_period_s: float = Field(0.25, gt=0)
    """Readiness probe period. Kubernetes default periodSeconds 10 (services often set 1-5)."""
    readiness_timeout_s: float = Field(0.5, gt=0)
    """Readiness probe timeout. Kubernetes default timeoutSeconds 1."""
    readiness_failures: int = Field(2, ge=1)
    """Consecutive failed probes before NotReady. Kubernetes default failureThreshold 3."""
    restart_backoff_s: float = Field(0.5, gt=0)
    """First restart delay of a crashed replica, doubled per crash. Kubernetes: 10 s."""
    restart_backoff_max_s: float = Field(8.0, gt=0)
    """Restart delay cap. Kubernetes: 300 s."""


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ProfileName
    etcd_zones: tuple[str, ...]
    """One etcd member per entry, in that zone."""
    zones: tuple[str, ...] = ("zone-a", "zone-b", "zone-c")
    nodes_per_zone: int = Field(1, ge=1, le=4)
    replicas: int = Field(3, ge=1, le=12)
    lb_health_checks: bool = False
    """Off: traffic follows endpoints only (a Kubernetes Service). On: HAProxy checks /readyz itself
    (a cloud load balancer's target health checks)."""
    payment_latency_ms: float = 50.0
    timings: Timings = Timings()

    def node_names(self) -> list[tuple[str, str]]:
        """(node, zone) pairs: node-a1, node-b1, ... one letter per zone."""
        return [
            (f"node-{zone.removeprefix('zone-')}{i}", zone)
            for zone in self.zones
            for i in range(1, self.nodes_per_zone + 1)
        ]


def builtin(name: ProfileName | str, **overrides: object) -> Profile:
    """A bundled profile, optionally with fields replaced (tests use shorter timings)."""
    name = ProfileName(name)
    base: dict[str, object] = {
        "name": name,
        "etcd_zones": ("zone-a",) if name is ProfileName.SELF_MANAGED else ("zone-a", "zone-b", "zone-c"),
    }
    return Profile.model_validate({**base, **overrides})
