"""The testbed's control loops: node lifecycle, scheduling, endpoints, and the load balancer.

    python -m harness.testbed.controller --dir DIR

One process, one loop every `sync_s`, doing what kube-controller-manager and kube-proxy
do for a Deployment behind a Service:

1. watch etcd's members directly and log leader changes and quorum lost / regained;
2. **only while etcd has quorum**: mark a node NotReady when its heartbeat has not
   changed for `node_grace_s`, and its replicas not ready with it; evict the replicas of a
   node NotReady for `eviction_s` (not while every zone is down, nor from a zone mostly down);
   schedule missing replicas onto ready nodes (spread across zones), publish the endpoints
   (replicas whose agent reported them ready since their node was last Ready again), and
   point HAProxy at them.

Without quorum it does nothing at all: running replicas keep serving, but nothing is
rescheduled and endpoints do not change — the behaviour that makes control-plane faults
matter. When quorum returns, heartbeat timers restart (as the Kubernetes node lifecycle
controller's do), so an outage of the control plane alone does not evict healthy nodes; a
node that was already NotReady stays NotReady until it heartbeats again.

docs/testbed.md ("Node and endpoint life cycle, rule by rule") names the Kubernetes rule
behind each of these, and what is not modelled.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.testbed import haproxy, keys
from harness.testbed import state as tbstate
from harness.testbed.etcd import ClusterHealth, EtcdClient, EtcdUnavailableError, cluster_health
from harness.testbed.groundtruth import Event, EventLog

UNHEALTHY_ZONE_THRESHOLD = 0.55
"""Share of a zone's nodes NotReady (with more than two NotReady) that makes it partially
disrupted. Kubernetes: --unhealthy-zone-threshold 0.55."""
LARGE_CLUSTER_SIZE = 50
"""Up to this many nodes, a partially disrupted zone evicts nothing. Kubernetes:
--large-cluster-size-threshold 50 (--secondary-node-eviction-rate is 0 below it)."""


def beat_time(raw: str | None) -> float | None:
    """The agent's clock reading in a heartbeat value ({"t": ...}); None when it has none."""
    try:
        value = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    value = value.get("t") if isinstance(value, dict) else value
    return float(value) if isinstance(value, int | float) else None


class Controller:
    def __init__(  # type: ignore[no-untyped-def]
        self,
        root: Path,
        clock=time.monotonic,
        etcd: EtcdClient | None = None,
        lb: haproxy.Runtime | None = None,
        health: Callable[[], ClusterHealth] | None = None,
    ) -> None:
        """`etcd`, `lb` and `health` default to the testbed's own; tests pass doubles."""
        state = tbstate.load(root)
        self.root = root
        self.profile = state.profile
        self.timings = state.profile.timings
        self.members = state.member_specs()
        self.zone_of = {n.name: n.zone for n in state.nodes}
        self.etcd = etcd if etcd is not None else EtcdClient(state.client_endpoints(), timeout_s=0.5)
        self.lb = lb if lb is not None else haproxy.Runtime(root / "haproxy.sock")
        self.health = health or (lambda: cluster_health(self.members, timeout_s=0.5))
        self.events = EventLog(root / "events.jsonl", source="controller")
        self.clock = clock
        self.leader: str | None = None
        self.quorum: bool | None = None
        self.blind = True
        self.heartbeat_seen: dict[str, tuple[str | None, float]] = {}
        self.node_ready: dict[str, bool] = {}
        self.not_ready_since: dict[str, float] = {}
        self.back_at: dict[str, float] = {}
        """Per node that was NotReady and is Ready again: the agent's clock in the heartbeat that
        brought it back. A replica status reported before it is stale."""
        self.all_zones_down = False
        self.last_eviction: dict[str, float] = {}
        """Per zone, when the controller last evicted a node's replicas (the eviction rate limit)."""
        self.endpoints: list[dict] | None = None
        self.slots: dict[str, tuple[str, int]] = {}
        self.stopping = threading.Event()
        self.started_at: float | None = None
        self.suspect_since: float | None = None

    # --- 1. the control plane itself -----------------------------------------------
    def watch_etcd(self) -> bool:
        """Whether etcd has quorum now; leader and quorum changes go to the ground truth.

        A single failed check does not make an event: on a loaded two-core machine a member can
        miss one 0.5 s status call while the cluster is fine. The controller still sits that
        step out (acting on a cluster that might have lost quorum is the bug to avoid); the
        ground truth records a loss once it is seen twice in a row, at the first sighting.
        """
        health = self.health()
        if not health.quorum and self.quorum and self.suspect_since is None:
            self.suspect_since = time.time()
            return False
        first_miss, self.suspect_since = self.suspect_since, None
        lost_at = first_miss if not health.quorum else None
        if health.leader != self.leader:
            self.events.record(
                Event.ETCD_LEADER_CHANGED, t=lost_at, member=health.leader, previous=self.leader
            )
            self.leader = health.leader
        if health.quorum != self.quorum:
            if self.quorum is not None or not health.quorum:
                event = Event.QUORUM_REGAINED if health.quorum else Event.QUORUM_LOST
                self.events.record(event, t=lost_at, members=[m.name for m in health.members if m.healthy])
            self.quorum = health.quorum
        return health.quorum

    # --- 2. node lifecycle -----------------------------------------------------------
    def update_nodes(self, data: dict[str, str], now: float) -> None:
        if self.blind:
            self.restart_timers(data, now)
            self.blind = False
        for node in self.zone_of:
            beat = data.get(keys.heartbeat_key(node))
            seen, at = self.heartbeat_seen.get(node, (None, now))
            if beat != seen:
                seen, at = beat, now
                self.heartbeat_seen[node] = (seen, at)
            ready = seen is not None and now - at < self.timings.node_grace_s
            if self.node_ready.get(node) != ready:
                self.events.record(
                    Event.NODE_READY if ready else Event.NODE_NOT_READY, node=node, zone=self.zone_of[node]
                )
                if ready and self.node_ready.get(node) is False:
                    back = beat_time(seen)
                    if back is not None:
                        self.back_at[node] = back
                self.node_ready[node] = ready
                if ready:
                    self.not_ready_since.pop(node, None)
                else:
                    self.not_ready_since[node] = now

    def restart_timers(self, data: dict[str, str], now: float) -> None:
        """The controller could not judge the nodes for a while: start their timers again now.

        After the controller was blind (no quorum, a missed status check), a Ready node's grace
        period starts now, so it is not declared NotReady for the time heartbeats could not be
        seen. A node already NotReady stays so until its heartbeat changes — one missed status
        check must not put a partitioned node back behind the load balancer — and its eviction
        timer starts again. Kubernetes does the same when its view returns, and when it leaves
        full disruption (every zone down).
        """
        for n in self.zone_of:
            if self.node_ready.get(n) is False and n in self.heartbeat_seen:
                self.not_ready_since[n] = now
            else:
                self.heartbeat_seen[n] = (data.get(keys.heartbeat_key(n)), now)

    # --- 3. eviction and scheduling ---------------------------------------------------
    def reconcile_replicas(self, data: dict[str, str], now: float) -> dict[str, str]:
        assignments = {
            k.removeprefix(keys.ASSIGNMENTS): json.loads(v)["node"]
            for k, v in data.items()
            if k.startswith(keys.ASSIGNMENTS)
        }
        evictable = self.evictable_nodes(data, set(assignments.values()), now)
        for rid, node in list(assignments.items()):
            if node not in self.zone_of or node in evictable:
                self.etcd.delete(keys.assignment_key(rid))
                self.etcd.delete(keys.replica_key(rid))
                del assignments[rid]
                self.events.record(Event.REPLICA_EVICTED, replica=rid, node=node)
        ready_nodes = [n for n in self.zone_of if self.node_ready.get(n)]
        if not self.settled(ready_nodes, now):
            return assignments
        while len(assignments) < self.profile.replicas and ready_nodes:
            node = min(ready_nodes, key=lambda n: self._load(assignments, n))
            rid = "subs-" + secrets.token_hex(3)
            self.etcd.put(keys.assignment_key(rid), json.dumps({"node": node}))
            assignments[rid] = node
            self.events.record(Event.REPLICA_SCHEDULED, replica=rid, node=node, zone=self.zone_of[node])
        return assignments

    def evictable_nodes(self, data: dict[str, str], occupied: set[str], now: float) -> set[str]:
        """Nodes whose replicas are evicted now: NotReady for `eviction_s`, at most one node per
        zone every `eviction_interval_s`, none while every zone is fully down, and none in a
        partially disrupted zone (Kubernetes' node lifecycle controller, taint-based eviction)."""
        down = {z: [n for n, zz in self.zone_of.items() if zz == z and not self.node_ready.get(n)]
                for z in set(self.zone_of.values())}  # fmt: skip
        size = {z: sum(1 for zz in self.zone_of.values() if zz == z) for z in down}
        all_down = all(len(down[z]) == size[z] for z in down)
        if all_down != self.all_zones_down:
            # Kubernetes: every zone fully disrupted means the controller's own view is the
            # likelier fault ("master disruption"): evict nothing; on leaving it, timers restart.
            self.all_zones_down = all_down
            if not all_down:
                self.restart_timers(data, now)
        if all_down:
            return set()
        out = set()
        for zone, nodes in down.items():
            partial = len(down[zone]) > 2 and len(down[zone]) / size[zone] >= UNHEALTHY_ZONE_THRESHOLD
            if (partial and len(down[zone]) < size[zone] and size[zone] <= LARGE_CLUSTER_SIZE) or (
                now - self.last_eviction.get(zone, -1e18) < self.timings.eviction_interval_s
            ):
                continue
            due = [
                n
                for n in nodes
                if n in occupied and now - self.not_ready_since.get(n, now) >= self.timings.eviction_s
            ]
            if due:
                node = min(due, key=lambda n: (self.not_ready_since[n], n))
                self.last_eviction[zone] = now
                out.add(node)
        return out

    def settled(self, ready_nodes: list[str], now: float) -> bool:
        """Schedule only once every node has joined, or a grace period after start.

        Otherwise the first node to report would get every replica at bring-up (a cluster's
        nodes join before its workloads are created).
        """
        if self.started_at is None:
            self.started_at = now
        return len(ready_nodes) == len(self.zone_of) or now - self.started_at >= self.timings.node_grace_s

    def _load(self, assignments: dict[str, str], node: str) -> tuple[int, int, str]:
        """Spread: fewest replicas in the zone, then on the node (topology spread constraints)."""
        zone = self.zone_of[node]
        in_zone = sum(1 for n in assignments.values() if self.zone_of.get(n) == zone)
        on_node = sum(1 for n in assignments.values() if n == node)
        return (in_zone, on_node, node)

    # --- 4. replica readiness, endpoints and the load balancer ------------------------
    def believed_ready(self, status: dict | None, node: str) -> bool:
        """A replica counts as ready when its agent said so, on its Ready node, in a report made
        since the node was last Ready again (a status from before a crash or a freeze is stale)."""
        if (
            not status
            or not status.get("ready")
            or status.get("node") != node
            or not self.node_ready.get(node)
        ):
            return False
        back = self.back_at.get(node)
        reported = status.get("t")
        return back is None or (isinstance(reported, int | float) and reported >= back)

    def mark_replicas_not_ready(self, data: dict[str, str], assignments: dict[str, str]) -> None:
        """Write ready false over every ready status that is not believed (Kubernetes:
        MarkPodsNotReady when a node goes NotReady), so the control plane says what the
        endpoints do, and the agent, whose status now differs from etcd's, reports afresh."""
        for rid, node in sorted(assignments.items()):
            raw = data.get(keys.replica_key(rid))
            status = json.loads(raw) if raw else None
            if not status or not status.get("ready") or status.get("node") != node:
                continue
            if self.believed_ready(status, node):
                continue
            reason = "node_not_ready" if not self.node_ready.get(node) else "stale_status"
            marked = {**status, "ready": False, "reason": reason}
            self.etcd.put(keys.replica_key(rid), json.dumps(marked))
            data[keys.replica_key(rid)] = json.dumps(marked)
            self.events.record(Event.REPLICA_MARKED_NOT_READY, replica=rid, node=node, reason=reason)

    def publish_endpoints(self, data: dict[str, str], assignments: dict[str, str]) -> None:
        endpoints = []
        for rid, node in sorted(assignments.items()):
            raw = data.get(keys.replica_key(rid))
            status = json.loads(raw) if raw else None
            if status and self.believed_ready(status, node):
                endpoints.append({"replica": rid, "node": node, "port": int(status["port"])})
        if endpoints != self.endpoints:
            self.etcd.put(keys.ENDPOINTS, json.dumps(endpoints))
            self.endpoints = endpoints
        self.sync_lb(endpoints)

    def sync_lb(self, endpoints: list[dict]) -> None:
        wanted = {(e["replica"], e["port"]): e for e in endpoints}
        for slot, target in list(self.slots.items()):
            if target not in wanted:
                self.lb.disable(slot)
                del self.slots[slot]
                self.events.record(Event.ENDPOINT_REMOVED, replica=target[0], port=target[1], slot=slot)
        have = set(self.slots.values())
        free = [f"s{i}" for i in range(1, haproxy.SLOTS + 1) if f"s{i}" not in self.slots]
        for target, e in wanted.items():
            if target not in have and free:
                slot = free.pop(0)
                self.lb.enable(slot, e["port"])
                self.slots[slot] = target
                self.events.record(
                    Event.ENDPOINT_ADDED, replica=e["replica"], node=e["node"], port=e["port"], slot=slot
                )

    # --- the loop ---------------------------------------------------------------------
    def step(self) -> None:
        now = self.clock()
        if not self.watch_etcd():
            self.blind = True
            self.write_status(now)
            return
        try:
            data = self.etcd.get_prefix(keys.PREFIX)
            self.update_nodes(data, now)
            assignments = self.reconcile_replicas(data, now)
            if assignments.keys() != {
                k.removeprefix(keys.ASSIGNMENTS) for k in data if k.startswith(keys.ASSIGNMENTS)
            }:
                data = self.etcd.get_prefix(keys.PREFIX)
            self.mark_replicas_not_ready(data, assignments)
            self.publish_endpoints(data, assignments)
            self.write_status(now, assignments, data)
        except EtcdUnavailableError:  # quorum lost mid-step: act on nothing until it is back
            self.blind = True

    def write_status(
        self, now: float, assignments: dict[str, str] | None = None, data: dict[str, str] | None = None
    ) -> None:
        previous = tbstate.read_json(self.root / "status.json", {})
        nodes = previous.get("nodes", {})
        replicas = previous.get("replicas", {})
        if assignments is not None and data is not None:
            replicas = {}
            for rid, node in assignments.items():
                raw = data.get(keys.replica_key(rid))
                status = json.loads(raw) if raw else {}
                replicas[rid] = {"node": node, "ready": self.believed_ready(status, node)}
        if assignments is not None:
            nodes = {
                n: {"zone": z, "ready": bool(self.node_ready.get(n)),
                    "replicas": sorted(r for r, node in assignments.items() if node == n)}
                for n, z in self.zone_of.items()
            }  # fmt: skip
        tbstate.write_json(
            self.root / "status.json",
            {
                "t": time.time(),
                "control_plane": {"quorum": bool(self.quorum), "leader": self.leader},
                "nodes": nodes,
                "replicas": replicas,
                "endpoints": self.endpoints if self.endpoints is not None else previous.get("endpoints", []),
            },
        )

    def run(self) -> None:
        for server in self.lb.servers():  # a fresh controller owns every slot
            if server.enabled:
                self.lb.disable(server.slot)
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                self.step()
                self.stopping.wait(max(0.0, self.timings.sync_s - (time.monotonic() - started)))
        finally:
            self.etcd.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Testbed controller")
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    controller = Controller(args.dir)
    signal.signal(signal.SIGTERM, lambda *_: controller.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: controller.stopping.set())
    controller.run()


if __name__ == "__main__":
    main()
