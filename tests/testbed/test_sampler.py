"""The testbed sampler's translation of ground truth into controlplane.jsonl lines (no testbed needed)."""

from __future__ import annotations

import os

from harness.testbed import haproxy, sampler

ALIVE = os.getpgid(0)  # a process group that runs: this test's
STATUS = {"t": 100.0, "control_plane": {"quorum": True, "leader": "etcd-a"},
          "replicas": {"r1": {"node": "n1", "ready": True}, "r2": {"node": "n2", "ready": True}},
          "endpoints": [{}, {}]}  # fmt: skip
REPLICAS = {"r1": {"node": "n1", "pid": ALIVE, "port": 9001, "proxy_port": 8001},
            "r2": {"node": "n2", "pid": ALIVE, "port": 9002, "proxy_port": 8002}}  # fmt: skip
SERVERS = [haproxy.ServerState("s1", "127.0.0.1", 8001, True), haproxy.ServerState("s2", "127.0.0.1", 8002, True),
           haproxy.ServerState("s3", "127.0.0.1", 1, False)]  # fmt: skip


def line(**changes: object) -> dict:
    args = {"status": STATUS, "ledger": [], "replicas": REPLICAS, "servers": SERVERS,
            "agents": {"n1": True, "n2": True}, "desired": 2, "now": 101.0, "stale_after_s": 3.0}  # fmt: skip
    return sampler.repair_line(**{**args, **changes})


class TestRepairLine:
    def test_whole_cluster_needs_nothing(self) -> None:
        """Every replica healthy and behind the load balancer: nothing needed, the controller fresh with quorum."""
        assert line() == {"needed": [], "serving": 2, "desired": 2, "quorum": True, "controller_fresh": True}

    def test_crashed_node(self) -> None:
        """A crashed node's replica is on a down node and a stale endpoint, and serving drops below desired."""
        out = line(ledger=[{"kind": "node_crash", "target": "n2"}])
        assert out["needed"] == ["replica r2 on down node n2", "stale endpoint r2", "serving 1 of 2"]

    def test_frozen_replica_and_dead_agent(self) -> None:
        """A frozen replica is a stale endpoint; a node whose agent is gone is down."""
        out = line(ledger=[{"kind": "replica_freeze", "target": "r1"}], agents={"n1": True, "n2": False})
        assert out["needed"] == ["replica r2 on down node n2", "stale endpoint r1", "stale endpoint r2",
                                 "serving 0 of 2"]  # fmt: skip

    def test_unready_replica_still_an_endpoint(self) -> None:
        """A replica whose readiness fails but is still behind the load balancer is a stale endpoint."""
        assert line(unready={"r1"})["needed"] == ["stale endpoint r1", "serving 1 of 2"]

    def test_stale_status_and_no_quorum(self) -> None:
        """status.json older than stale_after_s is a controller not running; its quorum is read as written."""
        status = {**STATUS, "control_plane": {"quorum": False, "leader": None}}
        out = line(status=status, now=104.0)
        assert (out["quorum"], out["controller_fresh"]) == (False, False)

    def test_haproxy_silent(self) -> None:
        """Without HAProxy's answer the endpoint reasons are left out, not guessed."""
        assert line(servers=None)["serving"] is None


class TestEventLines:
    def test_pod_node_leader_restore(self) -> None:
        """Ground-truth events become the Kubernetes-shaped lines; others are dropped."""
        assert sampler.event_lines(1.0, "replica_scheduled", {"replica": "r", "node": "n"}) == [
            {"t": 1.0, "kind": "pod", "name": "r", "event": "created", "node": "n"},
            {"t": 1.0, "kind": "pod", "name": "r", "event": "scheduled", "node": "n"},
        ]
        assert (
            sampler.event_lines(2.0, "replica_evicted", {"replica": "r", "node": "n"})[0]["event"]
            == "deleted"
        )
        assert sampler.event_lines(3.0, "node_not_ready", {"node": "n"}) == [
            {"t": 3.0, "kind": "node", "name": "n", "ready": False}
        ]
        assert (
            sampler.event_lines(4.0, "etcd_leader_changed", {"member": "b", "previous": "a"})[0]["kind"]
            == "leader"
        )
        assert sampler.event_lines(5.0, "etcd_restored", {"source": "x", "lost_revision": 9}) == [
            {"t": 5.0, "kind": "restore", "event": "etcd_restored", "lost_revision": 9}
        ]
        assert sampler.event_lines(6.0, "endpoint_added", {"replica": "r"}) == []
