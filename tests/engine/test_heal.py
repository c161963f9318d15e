"""Between trials the engine heals the testbed: the next trial must start from a whole cluster."""

from __future__ import annotations

from harness.engine.targets import TestbedTarget
from harness.testbed import faults
from harness.testbed import state as tbstate
from tests.testbed.conftest import serving, wait_for
from tests.testbed.test_cluster import assigned_to, busy_node, replicas_on


def test_heal_returns_only_when_every_node_and_replica_is_back(managed: tbstate.TestbedState) -> None:
    """A node crashed and restored just before the trial ended (its replicas evicted elsewhere):
    when heal() returns, every node is Ready, every replica is an endpoint, one per node."""
    wait_for(lambda: serving(managed), 60, "a healthy testbed first")
    node = busy_node(managed).name
    faults.crash_node(managed.root, node)
    wait_for(lambda: assigned_to(managed, node) == [], 30, "the crashed node's replicas evicted")
    faults.restore_node(managed.root, node)  # the rollback, moments before the trial ends

    healed = TestbedTarget(managed.profile, managed.root).heal()

    assert faults.ready_nodes(managed.root) == len(managed.nodes)
    assert faults.endpoints(managed.root) == managed.profile.replicas
    assert all(len(replicas_on(managed, n.name)) == 1 for n in managed.nodes), healed
    assert any("moved a replica" in line for line in healed)
