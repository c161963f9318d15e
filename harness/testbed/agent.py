"""The node agent: the testbed's kubelet. One process per node.

    python -m harness.testbed.agent --dir DIR --node NODE

- heartbeats to the control plane (etcd) every `heartbeat_s`;
- runs the replicas the control plane assigned to this node, as real processes of the
  reference service, each behind a route on the node's fault proxy (its "pod IP");
- restarts a crashed replica locally with exponential back-off, also while the control
  plane is down (as a kubelet does);
- probes each replica's /readyz and reports readiness to the control plane.

All its control-plane traffic goes through the node's proxy (egress routes), so isolating
or blackholing the node cuts its heartbeats as a real partition would. Talking to etcd
happens on its own thread: a control plane that hangs must not stop the supervision
and probing of replicas.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness import children
from harness.errors import HarnessError
from harness.ports import free_port
from harness.testbed import state as tbstate
from harness.testbed.etcd import EtcdClient
from harness.testbed.faultproxy import Direction, FaultProxyClient, Route
from harness.testbed.groundtruth import Event, EventLog
from harness.testbed.keys import ASSIGNMENTS, REPLICAS, heartbeat_key, replica_key

READY_RESET_S = 10.0
"""A replica ready this long has its restart back-off reset (kubelet: 10 min)."""


@dataclass
class Replica:
    id: str
    port: int
    proxy_port: int
    process: subprocess.Popen | None = None
    ready: bool = False
    failures: int = 0
    restarts: int = 0
    backoff_s: float = 0.0
    restart_at: float | None = None
    ready_since: float | None = None

    def status(self, node: str) -> dict:
        return {"node": node, "port": self.proxy_port, "ready": self.ready, "restarts": self.restarts}


def reported(stored: dict | None) -> dict | None:
    """A status as etcd holds it, without the time of its report (compared with the agent's own)."""
    return None if stored is None else {k: v for k, v in stored.items() if k != "t"}


class Agent:
    def __init__(self, root: Path, node_name: str) -> None:
        state = tbstate.load(root)
        self.root = root
        self.node = state.node(node_name)
        self.timings = state.profile.timings
        self.db = state.db
        self.payment_latency_ms = state.profile.payment_latency_ms
        self.files = root / "nodes" / node_name
        self.files.mkdir(parents=True, exist_ok=True)
        egress = [f"http://127.0.0.1:{self.node.egress_ports[m.name]}" for m in state.etcd]
        self.etcd = EtcdClient(egress, timeout_s=0.5)
        self.proxy = FaultProxyClient(f"http://127.0.0.1:{self.node.proxy_control_port}")
        self.events = EventLog(root / "events.jsonl", source=f"agent/{node_name}")
        self.replicas: dict[str, Replica] = {}
        self.assigned: set[str] | None = None
        """Replica ids the control plane assigned here, as last seen; None until first seen."""
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.probe_client = httpx.Client(timeout=self.timings.readiness_timeout_s)
        self.probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")

    # --- control plane (own thread) ---------------------------------------------
    def control_plane_loop(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            with contextlib.suppress(HarnessError):  # control plane unreachable: keep serving what we have
                self.sync_control_plane()
            self.stopping.wait(max(0.0, self.timings.heartbeat_s - (time.monotonic() - started)))

    def sync_control_plane(self) -> None:
        """Heartbeat, read the assignments, and report every replica whose status in etcd is not
        what this agent sees now.

        Compared against etcd, not against what this agent last wrote (a kubelet's status manager
        does the same): the controller marks the replicas of a NotReady node not ready, and after
        a freeze or a partition this agent still holds its old view, in which nothing changed.
        Each report carries the heartbeat's clock reading, so the controller can tell a report
        made since the node came back from one made before it went.
        """
        beat_t = time.time()
        self.etcd.put(heartbeat_key(self.node.name), json.dumps({"t": beat_t}))
        assigned = {
            rid
            for key, value in self.etcd.get_prefix(ASSIGNMENTS).items()
            if json.loads(value).get("node") == self.node.name
            for rid in [key.removeprefix(ASSIGNMENTS)]
        }
        stored = {
            key.removeprefix(REPLICAS): json.loads(value)
            for key, value in self.etcd.get_prefix(REPLICAS).items()
        }
        with self.lock:
            self.assigned = assigned
            pending = {
                rid: r.status(self.node.name)
                for rid, r in self.replicas.items()
                if rid in assigned and reported(stored.get(rid)) != r.status(self.node.name)
            }
        for rid, status in pending.items():
            self.etcd.put(replica_key(rid), json.dumps({**status, "t": beat_t}))

    # --- replicas (main thread) ----------------------------------------------------
    def start_replica(self, r: Replica) -> None:
        log = (self.files / f"{r.id}.log").open("ab")
        with log:
            r.process = subprocess.Popen(
                [
                    sys.executable, "-m", "harness", "app", "serve", "--db", self.db,
                    "--host", "127.0.0.1", "--port", str(r.port),
                    "--payment-latency-ms", str(self.payment_latency_ms),
                ],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        r.ready = False
        r.failures = 0
        r.restart_at = None
        self.proxy.add_route(
            Route(name=r.id, listen_port=r.proxy_port, target_port=r.port, direction=Direction.INGRESS)
        )
        self.events.record(
            Event.REPLICA_STARTED, replica=r.id, node=self.node.name, pid=r.process.pid, port=r.proxy_port
        )
        self.save_replicas()

    def stop_replica(self, r: Replica) -> None:
        if r.process is not None:
            children.stop_group(r.process, grace_s=10)
        with contextlib.suppress(HarnessError):  # the proxy may be frozen or gone; its route dies with it
            self.proxy.remove_route(r.id)
        self.events.record(Event.REPLICA_STOPPED, replica=r.id, node=self.node.name)

    def reconcile(self) -> None:
        with self.lock:
            assigned = set(self.assigned) if self.assigned is not None else None
        if assigned is None:
            return
        for rid in assigned - self.replicas.keys():
            r = Replica(rid, free_port(), free_port())
            with self.lock:
                self.replicas[rid] = r
            self.start_replica(r)
        for rid in list(self.replicas.keys() - assigned):
            r = self.replicas[rid]
            self.stop_replica(r)
            with self.lock:
                del self.replicas[rid]
            with contextlib.suppress(HarnessError):  # the controller deletes it on eviction anyway
                self.etcd.delete(replica_key(rid))
            self.save_replicas()

    def supervise(self) -> None:
        now = time.monotonic()
        for r in list(self.replicas.values()):
            if r.process is not None and r.process.poll() is not None:
                code = r.process.returncode
                r.process = None
                self.set_ready(r, False)
                r.backoff_s = min(
                    self.timings.restart_backoff_max_s,
                    r.backoff_s * 2 if r.backoff_s else self.timings.restart_backoff_s,
                )
                r.restart_at = now + r.backoff_s
                self.events.record(Event.REPLICA_DIED, replica=r.id, node=self.node.name, exit_code=code,
                                   restart_in_s=r.backoff_s)  # fmt: skip
            elif r.process is None and r.restart_at is not None and now >= r.restart_at:
                r.restarts += 1
                self.start_replica(r)
            if r.ready and r.ready_since and now - r.ready_since > READY_RESET_S:
                r.backoff_s = 0.0

    def probe(self) -> None:
        running = [r for r in self.replicas.values() if r.process is not None]
        results = self.probes.map(self._probe_one, running)
        for r, ok in zip(running, results, strict=True):
            if ok:
                r.failures = 0
                self.set_ready(r, True)
            else:
                r.failures += 1
                if r.failures >= self.timings.readiness_failures:
                    self.set_ready(r, False)

    def _probe_one(self, r: Replica) -> bool:
        try:
            return self.probe_client.get(f"http://127.0.0.1:{r.port}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def set_ready(self, r: Replica, ready: bool) -> None:
        if r.ready == ready:
            return
        with self.lock:
            r.ready = ready
        r.ready_since = time.monotonic() if ready else None
        event = Event.REPLICA_READY if ready else Event.REPLICA_NOT_READY
        self.events.record(event, replica=r.id, node=self.node.name, port=r.proxy_port)

    def save_replicas(self) -> None:
        """pids on disk, so `testbed down` and cleanup can stop replicas if this agent is gone."""
        tbstate.write_json(
            self.files / "replicas.json",
            {
                rid: {"pid": r.process.pid if r.process else None, "port": r.port, "proxy_port": r.proxy_port}
                for rid, r in self.replicas.items()
            },
        )

    def reap_leftovers(self) -> None:
        """Replicas of a previous incarnation of this node (it crashed): stop them."""
        for info in tbstate.read_json(self.files / "replicas.json", {}).values():
            if info.get("pid"):
                children.kill_group(info["pid"])
        self.save_replicas()
        for route in self.proxy.state().get("routes", []):
            if route.get("direction") == Direction.INGRESS:
                self.proxy.remove_route(route["name"])

    def run(self) -> None:
        self.reap_leftovers()
        cp = threading.Thread(target=self.control_plane_loop, name="control-plane", daemon=True)
        cp.start()
        next_probe = 0.0
        try:
            while not self.stopping.is_set():
                self.reconcile()
                self.supervise()
                if time.monotonic() >= next_probe:
                    next_probe = time.monotonic() + self.timings.readiness_period_s
                    self.probe()
                self.stopping.wait(0.05)
        finally:
            for r in list(self.replicas.values()):
                self.stop_replica(r)
            self.save_replicas()
            cp.join(2)
            self.probes.shutdown(wait=False)
            self.probe_client.close()
            self.etcd.close()
            self.proxy.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Testbed node agent")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--node", required=True)
    args = parser.parse_args()
    agent = Agent(args.dir, args.node)
    signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stopping.set())
    agent.run()


if __name__ == "__main__":
    main()
