"""Chaos Toolkit actions and probes for the local testbed (python provider).

    - type: action
      name: kill-a-replica
      provider:
        type: python
        module: harness.chaos.activities.testbed
        func: kill_replica

Every function finds the testbed in `configuration.testbed_dir`, else $HARNESS_TESTBED_DIR,
else ~/.cache/harness/testbed. Actions are idempotent and recorded in the testbed's fault
ledger, so `harness cleanup` can undo them if the run dies; each has its rollback here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from harness.testbed import etcd, faults
from harness.testbed import state as tbstate
from harness.testbed.faultproxy import FaultSpec

Configuration = dict[str, Any] | None


def _root(configuration: Configuration) -> Path:
    configured = (configuration or {}).get("testbed_dir")
    return Path(configured).expanduser() if configured else tbstate.default_dir()


# --- replicas ---------------------------------------------------------------------------
def kill_replica(replica: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """SIGKILL one replica (random if not named); its node restarts it."""
    return faults.kill_replica(_root(configuration), replica)


def freeze_replica(replica: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """SIGSTOP one replica: connections hang until it is thawed."""
    return faults.freeze_replica(_root(configuration), replica)


def thaw_replica(replica: str | None = None, configuration: Configuration = None) -> list[str]:
    """Rollback of freeze_replica (all frozen replicas when none is named)."""
    return faults.thaw_replica(_root(configuration), replica)


# --- nodes and zones ----------------------------------------------------------------------
def crash_node(node: str, configuration: Configuration = None) -> dict[str, Any]:
    """Kill a node: its agent and replicas die and its address goes silent."""
    return faults.crash_node(_root(configuration), node)


def freeze_node(node: str, configuration: Configuration = None) -> dict[str, Any]:
    """Freeze a node (agent, replicas, network) with SIGSTOP."""
    return faults.freeze_node(_root(configuration), node)


def isolate_node(node: str, configuration: Configuration = None) -> dict[str, Any]:
    """Partition a node from the load balancer and the control plane."""
    return faults.isolate_node(_root(configuration), node)


def restore_node(node: str, configuration: Configuration = None) -> list[str]:
    """Rollback of crash_node, freeze_node, isolate_node and network faults on the node."""
    return faults.restore_node(_root(configuration), node)


def zone_outage(zone: str, configuration: Configuration = None) -> dict[str, Any]:
    """Every node of the zone crashes."""
    return faults.zone_outage(_root(configuration), zone)


def restore_zone(zone: str, configuration: Configuration = None) -> list[str]:
    """Rollback of zone_outage and zone network faults."""
    return faults.restore_zone(_root(configuration), zone)


# --- network ----------------------------------------------------------------------------------
def add_latency(
    target: str, latency_ms: float, jitter_ms: float = 0.0, configuration: Configuration = None
) -> dict[str, Any]:
    """Delay traffic to and from a node or zone (each way)."""
    spec = FaultSpec(latency_ms=latency_ms, jitter_ms=jitter_ms)
    return faults.network_fault(_root(configuration), target, spec)


def add_loss(
    target: str, fraction: float, mode: str = "reset", configuration: Configuration = None
) -> dict[str, Any]:
    """Lose a fraction of new connections to a node or zone (reset or silently dropped)."""
    spec = FaultSpec(loss=fraction, loss_mode=mode)  # type: ignore[arg-type]
    return faults.network_fault(_root(configuration), target, spec)


def partition(target: str, configuration: Configuration = None) -> dict[str, Any]:
    """Blackhole a node or zone: nothing in, nothing out."""
    return faults.network_fault(_root(configuration), target, FaultSpec(blackhole=True))


def limit_bandwidth(target: str, kbps: float, configuration: Configuration = None) -> dict[str, Any]:
    """Cap a node's or zone's bandwidth."""
    return faults.network_fault(_root(configuration), target, FaultSpec(bandwidth_kbps=kbps))


def remove_network_fault(target: str, configuration: Configuration = None) -> list[str]:
    """Rollback of every network fault on a node or zone."""
    return faults.remove_network_fault(_root(configuration), target)


# --- control plane ------------------------------------------------------------------------------
def kill_etcd_member(member: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """SIGKILL an etcd member (a follower if none is named)."""
    return faults.kill_etcd_member(_root(configuration), member)


def kill_etcd_leader(configuration: Configuration = None) -> dict[str, Any]:
    """SIGKILL the etcd leader."""
    return faults.kill_etcd_leader(_root(configuration))


def etcd_quorum_loss(configuration: Configuration = None) -> dict[str, Any]:
    """Kill a majority of etcd members."""
    return faults.etcd_quorum_loss(_root(configuration))


def start_etcd_members(configuration: Configuration = None) -> list[str]:
    """Rollback of the etcd kills: start the stopped members again."""
    return faults.start_etcd_members(_root(configuration))


def corrupt_etcd_member(member: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Corrupt a member's data file (it is stopped first): a name, `leader` or `follower`."""
    return faults.corrupt_etcd_member(_root(configuration), member)


def recover_etcd_member(member: str | None = None, configuration: Configuration = None) -> list[str]:
    """Rollback of corrupt_etcd_member: replace the member from its healthy peers (the only member:
    restore the latest scheduled snapshot)."""
    return faults.recover_etcd_member(_root(configuration), member)


def schedule_etcd_snapshots(interval_s: float, configuration: Configuration = None) -> dict[str, Any]:
    """Start the etcd backup job: a snapshot now and every interval_s (returns after the first).

    Use it as a probe: the backup schedule is the system's normal state, not a fault, and the
    harness places the fault at the method's first action.
    """
    return faults.schedule_etcd_snapshots(_root(configuration), float(interval_s))


def stop_etcd_snapshots(configuration: Configuration = None) -> bool:
    """Rollback of schedule_etcd_snapshots: stop the backup job."""
    return faults.stop_etcd_snapshots(_root(configuration))


def wait_snapshot_age(age_s: float, configuration: Configuration = None) -> float:
    """Probe: wait until the latest scheduled snapshot is age_s old (where in the backup interval
    the loss falls); the age reached."""
    return faults.wait_snapshot_age(_root(configuration), float(age_s))


def lose_control_plane_data(configuration: Configuration = None) -> dict[str, Any]:
    """Every etcd member dies and its data is destroyed; the control plane is down until restored."""
    return faults.lose_control_plane_data(_root(configuration))


def restore_etcd_from_snapshot(configuration: Configuration = None) -> dict[str, Any] | None:
    """Rollback of lose_control_plane_data: every member rebuilt from the latest scheduled snapshot."""
    return faults.restore_etcd_from_snapshot(_root(configuration))


def snapshot_restore_drill(writes_after: int = 20, configuration: Configuration = None) -> dict[str, Any]:
    """Snapshot, keep writing, lose all members' data, restore: recovery time and writes lost."""
    return faults.snapshot_restore_drill(_root(configuration), writes_after)


def wait(seconds: float, configuration: Configuration = None) -> float:
    """Let the testbed react (for methods that need a pause between activities)."""
    time.sleep(seconds)
    return seconds


# --- probes ---------------------------------------------------------------------------------------
def service_answers(
    path: str = "/readyz", timeout_s: float = 2.0, configuration: Configuration = None
) -> bool:
    """The reference service answers 200 through the load balancer."""
    state = tbstate.load(_root(configuration))
    try:
        return httpx.get(state.lb_url + path, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def endpoints_count(settle_s: float = 0.0, configuration: Configuration = None) -> int:
    """Replicas behind the load balancer; with `settle_s`, once every replica is (or when that
    long has passed). A restarted replica's start-up takes longer on a busy machine than a fixed
    pause allows for, and the steady state asks whether the service came back, not how fast
    (the timeline measures that)."""
    root = _root(configuration)
    count = faults.endpoints(root)
    if settle_s <= 0:
        return count
    wanted = tbstate.load(root).profile.replicas
    deadline = time.monotonic() + settle_s
    while count < wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        count = faults.endpoints(root)
    return count


def ready_nodes(configuration: Configuration = None) -> int:
    """Nodes the controller sees as Ready."""
    return faults.ready_nodes(_root(configuration))


def ready_replicas(configuration: Configuration = None) -> int:
    """Replicas that report ready (as the control plane last saw them)."""
    return faults.ready_replicas(_root(configuration))


def etcd_has_leader(configuration: Configuration = None) -> bool:
    state = tbstate.load(_root(configuration))
    return etcd.cluster_health(state.member_specs()).leader is not None


def etcd_has_quorum(configuration: Configuration = None) -> bool:
    state = tbstate.load(_root(configuration))
    return etcd.cluster_health(state.member_specs()).quorum


def wait_until_serving(timeout_s: float = 60.0, configuration: Configuration = None) -> int:
    """Wait until every replica is an endpoint again and the service answers; the endpoint count.

    A rollback step: faults that heal themselves (a killed replica) still need the
    testbed whole again before the steady state is checked.
    """
    root = _root(configuration)
    wanted = tbstate.load(root).profile.replicas
    deadline = time.monotonic() + timeout_s
    count = faults.endpoints(root)
    while time.monotonic() < deadline:
        count = faults.endpoints(root)
        if count >= wanted and service_answers(configuration=configuration):
            return count
        time.sleep(0.2)
    raise faults.HarnessError(
        f"the testbed was not serving all {wanted} replicas within {timeout_s:.0f} s ({count} endpoints)"
    )
