"""The testbed's control loops: node lifecycle, scheduling, endpoints, and the load balancer.

    python -m harness.testbed.controller --dir DIR

One process, one loop every `sync_s`, doing what kube-controller-manager and kube-proxy
do for a Deployment behind a Service:

1. watch etcd's members directly and log leader changes and quorum lost / regained;
2. **only while etcd has quorum**: mark a node NotReady when its heartbeat has not
   changed for `node_grace_s`, evict the replicas of a node NotReady for `eviction_s`,
   schedule missing replicas onto ready nodes (spread across zones), publish the
   endpoints (ready replicas on ready nodes), and point HAProxy at them.

Without quorum it does nothing at all: running replicas keep serving, but nothing is
rescheduled and endpoints do not change — the behaviour that makes control-plane faults
matter. When quorum returns, heartbeat timers restart (as the Kubernetes node lifecycle
controller's do), so an outage of the control plane alone does not evict healthy nodes; a
node that was already NotReady stays NotReady until it heartbeats again.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import threading
import time
from pathlib import Path

from harness.testbed import haproxy, keys
from harness.testbed import state as tbstate
from harness.testbed.etcd import EtcdClient, EtcdUnavailableError, cluster_health
from harness.testbed.groundtruth import Event, EventLog


class Controller:
    def __init__(self, root: Path, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        state = tbstate.load(root)
        self.root = root
        self.profile = state.profile
        self.timings = state.profile.timings
        self.members = state.member_specs()
        self.zone_of = {n.name: n.zone for n in state.nodes}
        self.etcd = EtcdClient(state.client_endpoints(), timeout_s=0.5)
        self.lb = haproxy.Runtime(root / "haproxy.sock")
        self.events = EventLog(root / "events.jsonl", source="controller")
        self.clock = clock
        self.leader: str | None = None
        self.quorum: bool | None = None
        self.blind = True
        self.heartbeat_seen: dict[str, tuple[str | None, float]] = {}
        self.node_ready: dict[str, bool] = {}
        self.not_ready_since: dict[str, float] = {}
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
        health = cluster_health(self.members, timeout_s=0.5)
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
            # We could not look: a Ready node's grace period starts now, so a node is not declared
            # NotReady for the time we were blind. A node already NotReady stays so until its
            # heartbeat changes — one missed status check must not put a partitioned node back
            # behind the load balancer — and its eviction timer starts again.
            for n in self.zone_of:
                if self.node_ready.get(n) is False and n in self.heartbeat_seen:
                    self.not_ready_since[n] = now
                else:
                    self.heartbeat_seen[n] = (data.get(keys.heartbeat_key(n)), now)
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
                self.node_ready[node] = ready
                if ready:
                    self.not_ready_since.pop(node, None)
                else:
                    self.not_ready_since[node] = now

    # --- 3. eviction and scheduling ---------------------------------------------------
    def reconcile_replicas(self, data: dict[str, str], now: float) -> dict[str, str]:
        assignments = {
            k.removeprefix(keys.ASSIGNMENTS): json.loads(v)["node"]
            for k, v in data.items()
            if k.startswith(keys.ASSIGNMENTS)
        }
        for rid, node in list(assignments.items()):
            since = self.not_ready_since.get(node)
            if node not in self.zone_of or (since is not None and now - since >= self.timings.eviction_s):
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

    # --- 4. endpoints and the load balancer -----------------------------------------
    def publish_endpoints(self, data: dict[str, str], assignments: dict[str, str]) -> None:
        endpoints = []
        for rid, node in sorted(assignments.items()):
            raw = data.get(keys.replica_key(rid))
            status = json.loads(raw) if raw else None
            if status and status.get("ready") and status.get("node") == node and self.node_ready.get(node):
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
                replicas[rid] = {
                    "node": node,
                    "ready": bool(status.get("ready")) and status.get("node") == node,
                }
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
