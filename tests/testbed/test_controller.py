"""The node lifecycle of the testbed's controller, step by step, with a made-up clock and heartbeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.testbed import haproxy, keys
from harness.testbed import state as tbstate
from harness.testbed.agent import Agent, Replica
from harness.testbed.controller import Controller
from harness.testbed.etcd import ClusterHealth, EtcdUnavailableError
from harness.testbed.groundtruth import Event, read_events
from tests.testbed.conftest import make_profile


@pytest.fixture
def controller(tmp_path: Path) -> Controller:
    """A controller over a saved three-node testbed state (no process is started; grace 4 s)."""
    state = tbstate.TestbedState(
        dir=str(tmp_path),
        profile=make_profile("self-managed"),
        lb_port=1,
        etcd=[tbstate.EtcdMemberState(name="etcd-a", zone="zone-a", client_port=2, peer_port=3)],
        nodes=[
            tbstate.NodeState(name=f"node-{z}1", zone=f"zone-{z}", proxy_control_port=4, egress_ports={})
            for z in "abc"
        ],
        created_t=0.0,
    )
    tbstate.save(state)
    return Controller(tmp_path)


def beats(**counters: int) -> dict[str, str]:
    return {keys.heartbeat_key(f"node-{z}1"): str(n) for z, n in counters.items()}


def test_a_partitioned_node_stays_not_ready_after_the_controller_missed_a_check(
    controller: Controller, tmp_path: Path
) -> None:
    """A node cut off stops heartbeating: NotReady after the grace period. A missed etcd status
    check (a busy machine) makes the controller blind for a step; before, that restarted every
    grace period and put the partitioned node back behind the load balancer for 4 s."""
    grace = controller.timings.node_grace_s
    controller.update_nodes(beats(a=1, b=1, c=1), 0.0)
    assert controller.node_ready == {"node-a1": True, "node-b1": True, "node-c1": True}
    controller.update_nodes(beats(a=2, b=1, c=2), grace + 1)
    assert controller.node_ready["node-b1"] is False
    controller.blind = True  # what step() does when a status check fails
    controller.update_nodes(beats(a=3, b=1, c=3), grace + 2)
    assert controller.node_ready["node-b1"] is False, "no heartbeat, no Ready"
    assert controller.not_ready_since["node-b1"] == grace + 2, "its eviction timer starts again"
    controller.update_nodes(beats(a=4, b=2, c=4), grace + 3)
    assert controller.node_ready["node-b1"] is True, "a new heartbeat makes it Ready"
    flips = [(e.event, e.get("node")) for e in read_events(tmp_path / "events.jsonl")]
    assert (
        flips.count((Event.NODE_READY, "node-b1")) == 2
        and flips.count((Event.NODE_NOT_READY, "node-b1")) == 1
    )


def test_a_ready_node_gets_a_fresh_grace_period_after_the_controller_was_blind(
    controller: Controller,
) -> None:
    """Heartbeats could not be seen (or written, without quorum) while blind: a Ready node is not
    declared NotReady for that time, only after a full grace period of silence once sight returns."""
    grace = controller.timings.node_grace_s
    controller.update_nodes(beats(a=1, b=1, c=1), 0.0)
    controller.blind = True
    controller.update_nodes(beats(a=1, b=1, c=1), 3 * grace)
    assert all(controller.node_ready.values())
    controller.update_nodes(beats(a=1, b=1, c=2), 4 * grace + 0.5)
    assert controller.node_ready == {"node-a1": False, "node-b1": False, "node-c1": True}


# --- Rule by rule, against doubles of etcd and HAProxy (docs/testbed.md, "Node and endpoint life
# cycle, rule by rule"). Grace 2 s, eviction 4 s, one node per zone every 1 s (the tests' timings).


class FakeEtcd:
    """The controller's EtcdClient: a dict; `up = False` makes every call fail as without quorum."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.up = True
        self.writes = 0

    def _check(self) -> None:
        if not self.up:
            raise EtcdUnavailableError("no quorum")

    def put(self, key: str, value: str) -> None:
        self._check()
        self.writes += 1
        self.data[key] = value

    def get_prefix(self, prefix: str) -> dict[str, str]:
        self._check()
        return {k: v for k, v in self.data.items() if k.startswith(prefix)}

    def delete(self, key: str) -> None:
        self._check()
        self.writes += 1
        self.data.pop(key, None)

    def close(self) -> None:
        pass


class FakeLb:
    """HAProxy's runtime API: which slot sends to which port."""

    def __init__(self) -> None:
        self.enabled: dict[str, int] = {}

    def servers(self) -> list[haproxy.ServerState]:
        return [haproxy.ServerState(s, "127.0.0.1", p, True) for s, p in self.enabled.items()]

    def enable(self, slot: str, port: int, address: str = "127.0.0.1") -> None:
        self.enabled[slot] = port

    def disable(self, slot: str) -> None:
        self.enabled.pop(slot, None)


class Bed:
    """A controller over doubles, a made-up clock, and agents reduced to what they write."""

    def __init__(self, root: Path, nodes_per_zone: int = 1) -> None:
        self.root = root
        state = tbstate.TestbedState(
            dir=str(root),
            profile=make_profile("managed", nodes_per_zone=nodes_per_zone),
            lb_port=1,
            etcd=[tbstate.EtcdMemberState(name="etcd-a", zone="zone-a", client_port=2, peer_port=3)],
            nodes=[
                tbstate.NodeState(name=name, zone=zone, proxy_control_port=4, egress_ports={"etcd-a": 5})
                for name, zone in make_profile("managed", nodes_per_zone=nodes_per_zone).node_names()
            ],
            created_t=0.0,
        )
        tbstate.save(state)
        self.now = 0.0
        self.quorum = True
        self.etcd = FakeEtcd()
        self.lb = FakeLb()
        self.controller = Controller(
            root, clock=lambda: self.now, etcd=self.etcd, lb=self.lb, health=self.health
        )  # type: ignore[arg-type]
        self.nodes = [n.name for n in state.nodes]
        self.beats = dict.fromkeys(self.nodes, 0)

    def health(self) -> ClusterHealth:
        return ClusterHealth(members=[], leader="etcd-a" if self.quorum else None, quorum=self.quorum)

    def assign(self, rid: str, node: str, port: int, ready: bool = True) -> None:
        self.etcd.data[keys.assignment_key(rid)] = json.dumps({"node": node})
        self.report(rid, node, port, ready)

    def report(self, rid: str, node: str, port: int, ready: bool) -> None:
        """What the node's agent writes: the status, stamped with its latest heartbeat."""
        status = {"node": node, "port": port, "ready": ready, "restarts": 0, "t": self.beats[node]}
        self.etcd.data[keys.replica_key(rid)] = json.dumps(status)

    def beat(self, *nodes: str) -> None:
        for n in nodes:
            self.beats[n] += 1
            if self.etcd.up:
                self.etcd.data[keys.heartbeat_key(n)] = json.dumps({"t": self.beats[n]})

    def run(self, seconds: float, beating: tuple[str, ...] = ()) -> None:
        """Steps of 0.1 s; the nodes named heartbeat every 0.5 s."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            if round(self.now * 10) % 5 == 0:
                self.beat(*beating)
            self.controller.step()
            self.now = round(self.now + 0.1, 6)

    def status(self, rid: str) -> dict:
        return json.loads(self.etcd.data[keys.replica_key(rid)])

    def ports(self) -> set[int]:
        return set(self.lb.enabled.values())

    def events(self, kind: Event) -> list:
        return [e for e in read_events(self.root / "events.jsonl") if e.event is kind]


ALL = ("node-a1", "node-b1", "node-c1")


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    """Three nodes in three zones, one replica on each, all serving."""
    b = Bed(tmp_path)
    for i, node in enumerate(ALL):
        b.beat(node)
        b.assign(f"r{i}", node, 9000 + i)
    b.run(0.6, beating=ALL)  # last heartbeat at 0.5 s
    assert b.ports() == {9000, 9001, 9002}
    return b


class TestNodeLifecycle:
    def test_a_silent_node_is_not_ready_after_the_grace_period_and_not_before(self, bed: Bed) -> None:
        """node-monitor-grace-period: Ready until heartbeats have been silent for node_grace_s."""
        bed.run(1.8, beating=ALL[1:])
        assert bed.controller.node_ready["node-a1"] is True
        bed.run(0.8, beating=ALL[1:])
        assert bed.controller.node_ready["node-a1"] is False

    def test_a_not_ready_node_takes_its_replicas_out_of_ready_and_out_of_the_load_balancer(
        self, bed: Bed
    ) -> None:
        """MarkPodsNotReady: the replica's status says ready false, its endpoint goes, and the
        ground truth records the controller's change."""
        bed.run(3.0, beating=ALL[1:])
        assert bed.status("r0")["ready"] is False and bed.status("r0")["reason"] == "node_not_ready"
        assert bed.ports() == {9001, 9002}
        (marked,) = bed.events(Event.REPLICA_MARKED_NOT_READY)
        assert marked.get("replica") == "r0" and marked.get("reason") == "node_not_ready"

    def test_a_returning_node_gets_its_replica_back_only_on_a_fresh_ready_report(self, bed: Bed) -> None:
        """The node heartbeats again, but the replica enters endpoints only once the agent reports
        it ready after the node's return: the restarted replica's new port, not the old one."""
        bed.run(3.0, beating=ALL[1:])
        bed.run(0.5, beating=ALL)
        assert bed.controller.node_ready["node-a1"] is True
        assert bed.ports() == {9001, 9002}, "ready false from the controller stands"
        bed.report("r0", "node-a1", 9100, ready=False)  # the agent restarted it on a new port
        bed.run(0.5, beating=ALL)
        assert bed.ports() == {9001, 9002}
        bed.report("r0", "node-a1", 9100, ready=True)
        bed.run(0.2, beating=ALL)
        assert bed.ports() == {9001, 9002, 9100}

    def test_a_stale_ready_status_written_late_is_overwritten_not_believed(self, bed: Bed) -> None:
        """A pre-crash report that lands after the controller's mark (a write held up in the
        network) still carries the old heartbeat: it is marked stale, and the agent's fresh
        report is what brings the replica back."""
        bed.run(3.0, beating=ALL[1:])
        bed.run(0.5, beating=ALL)
        assert bed.controller.node_ready["node-a1"] is True
        stale = {"node": "node-a1", "port": 9000, "ready": True, "restarts": 0, "t": 1}
        bed.etcd.data[keys.replica_key("r0")] = json.dumps(stale)
        bed.run(0.2)
        assert bed.ports() == {9001, 9002}
        assert bed.status("r0")["ready"] is False and bed.status("r0")["reason"] == "stale_status"
        bed.report("r0", "node-a1", 9000, ready=True)
        bed.run(0.2, beating=ALL)
        assert bed.ports() == {9000, 9001, 9002}

    def test_replicas_are_evicted_after_the_toleration_and_not_if_the_node_returns_first(
        self, bed: Bed
    ) -> None:
        """Taint-based eviction: NotReady for eviction_s (tolerationSeconds) deletes the node's
        replicas; a node back in time keeps them, and its timer starts from zero next time."""
        bed.run(5.0, beating=ALL[1:])  # NotReady from 2.5 s
        assert bed.controller.node_ready["node-a1"] is False
        bed.run(1.0, beating=ALL)  # back at 6.0 s, before eviction at 6.5 s
        assert keys.assignment_key("r0") in bed.etcd.data and bed.controller.node_ready["node-a1"]
        bed.run(5.9, beating=ALL[1:])  # NotReady from 8.5 s to 12.5 s
        assert keys.assignment_key("r0") in bed.etcd.data, "the timer started again"
        bed.run(0.2, beating=ALL[1:])
        assert keys.assignment_key("r0") not in bed.etcd.data
        assert [e.get("node") for e in bed.events(Event.REPLICA_EVICTED)] == ["node-a1"]

    def test_nothing_is_evicted_while_every_zone_is_down(self, bed: Bed) -> None:
        """Full disruption of every zone (the controller's own view is the likelier fault):
        nodes go NotReady and leave endpoints, but nothing is evicted; once one zone is back,
        the others' eviction timers start again."""
        bed.run(10.0)
        assert not bed.lb.enabled
        assert not bed.events(Event.REPLICA_EVICTED)
        bed.run(3.9, beating=("node-c1",))
        assert not bed.events(Event.REPLICA_EVICTED), "a full eviction timeout from the return"
        bed.run(0.7, beating=("node-c1",))
        assert {e.get("node") for e in bed.events(Event.REPLICA_EVICTED)} == {"node-a1", "node-b1"}

    def test_the_control_plane_without_quorum_changes_nothing_and_evicts_nothing_after(
        self, bed: Bed
    ) -> None:
        """Without quorum the controller writes nothing and the load balancer keeps its
        endpoints, however long; when quorum returns, heartbeat timers restart, so the outage
        alone makes no node NotReady and evicts nothing."""
        writes = bed.etcd.writes
        bed.quorum, bed.etcd.up = False, False
        bed.run(20.0, beating=ALL)  # the agents cannot write either
        assert bed.etcd.writes == writes and bed.ports() == {9000, 9001, 9002}
        bed.quorum, bed.etcd.up = True, True
        bed.run(1.5)
        assert all(bed.controller.node_ready.values()), "a fresh grace period"
        bed.run(1.0, beating=ALL)
        assert bed.ports() == {9000, 9001, 9002}
        assert not bed.events(Event.REPLICA_EVICTED) and not bed.events(Event.NODE_NOT_READY)[1:]


class TestZones:
    @pytest.fixture
    def big(self, tmp_path: Path) -> Bed:
        """Four nodes in each zone, the three replicas on node-a1, node-a2, node-a3."""
        b = Bed(tmp_path, nodes_per_zone=4)
        b.beat(*b.nodes)
        for i in range(3):
            b.assign(f"r{i}", f"node-a{i + 1}", 9000 + i)
        b.run(0.6, beating=tuple(b.nodes))
        return b

    def test_a_partially_disrupted_small_zone_evicts_nothing(self, big: Bed) -> None:
        """Three of four nodes NotReady (more than two, at least 55 %) in a zone of at most 50
        nodes: its eviction rate is zero (--secondary-node-eviction-rate below
        --large-cluster-size-threshold)."""
        beating = tuple(n for n in big.nodes if n not in ("node-a1", "node-a2", "node-a3"))
        big.run(12.0, beating=beating)
        assert not big.events(Event.REPLICA_EVICTED)
        assert not big.lb.enabled, "their replicas are out of the load balancer all the same"

    def test_a_zone_evicts_one_node_at_a_time(self, big: Bed) -> None:
        """Two nodes of a zone NotReady together: one node's replicas go at the toleration, the
        next one eviction_interval_s later (--node-eviction-rate 0.1 nodes/s, scaled)."""
        beating = tuple(n for n in big.nodes if n not in ("node-a1", "node-a2"))
        big.run(6.5, beating=beating)  # NotReady from 2.5 s: due at 6.5 s
        assert [e.get("node") for e in big.events(Event.REPLICA_EVICTED)] == ["node-a1"]
        big.run(0.4, beating=beating)
        assert [e.get("node") for e in big.events(Event.REPLICA_EVICTED)] == ["node-a1"], "not before 7.5 s"
        big.run(0.2, beating=beating)
        assert [e.get("node") for e in big.events(Event.REPLICA_EVICTED)] == ["node-a1", "node-a2"]


class TestAgentReports:
    def test_a_thawed_agent_reports_its_replica_again_and_it_returns(self, bed: Bed) -> None:
        """After a freeze the agent's own view has not changed (its replica was ready before and
        is ready after), but etcd now says ready false: the agent compares with etcd, reports
        again with its new heartbeat's clock, and the replica returns to the load balancer."""
        agent = Agent(bed.root, "node-a1")
        agent.etcd = bed.etcd  # type: ignore[assignment]
        agent.replicas = {"r0": Replica("r0", port=1, proxy_port=9000, ready=True)}
        try:
            agent.sync_control_plane()
            bed.run(0.5, beating=ALL[1:])
            writes = bed.etcd.writes
            agent.sync_control_plane()
            assert bed.etcd.writes == writes + 1, "only the heartbeat: etcd already says what it sees"
            bed.run(3.0, beating=ALL[1:])  # frozen
            assert bed.ports() == {9001, 9002} and bed.status("r0")["ready"] is False
            agent.sync_control_plane()  # thawed
            assert bed.status("r0") == {"node": "node-a1", "port": 9000, "ready": True, "restarts": 0,
                                        "t": bed.status("r0")["t"]}  # fmt: skip
            bed.run(0.2, beating=ALL[1:])
            assert bed.ports() == {9000, 9001, 9002}
        finally:
            agent.probes.shutdown(wait=False)
            agent.probe_client.close()
