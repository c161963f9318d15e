"""The node lifecycle of the testbed's controller, step by step, with a made-up clock and heartbeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.testbed import keys
from harness.testbed import state as tbstate
from harness.testbed.controller import Controller
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
