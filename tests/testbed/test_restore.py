"""The etcd restore drill on a real self-managed testbed: scheduled snapshots, the loss of the only
member's data, the restore from the latest snapshot, and the control loops reconciling from it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.testbed import backups, cluster, etcd, faults, keys
from harness.testbed.groundtruth import Event
from tests.testbed.conftest import events_since, make_profile, serving, wait_for


def test_restore_loses_what_came_after_the_snapshot_and_the_testbed_reconciles(tmp_path: Path) -> None:
    """Writes after the latest snapshot (another client's key, a replica the control plane scheduled)
    are gone after the restore, the extra replica is stopped, and the events carry the revisions."""
    with cluster.open_testbed(make_profile("self-managed"), tmp_path / "sm") as state:
        root = state.root
        t0 = time.time()
        assert faults.schedule_etcd_snapshots(root, 30.0)["started"]
        snapshot = backups.latest(root)
        assert snapshot is not None
        node = state.nodes[0].name
        with etcd.EtcdClient(state.client_endpoints(), timeout_s=2.0) as client:
            client.put("/other-client/order", "acknowledged after the snapshot")
            client.put(keys.assignment_key("subs-extra"), json.dumps({"node": node}))
        wait_for(lambda: faults.endpoints(root) == 4, 30, "the extra replica behind the load balancer")
        lost = faults.lose_control_plane_data(root)
        assert lost["revision"] > snapshot.revision
        restored = faults.restore_etcd_from_snapshot(root)
        assert restored is not None and restored["snapshot_t"] == snapshot.t
        assert faults.restore_etcd_from_snapshot(root) is None, "idempotent: nothing left to restore"
        with etcd.EtcdClient(state.client_endpoints(), timeout_s=2.0) as client:
            assert client.get("/other-client/order") is None
            assert client.get(keys.assignment_key("subs-extra")) is None
        wait_for(lambda: faults.endpoints(root) == 3 and serving(state), 40, "reconciled to the snapshot's 3")
        # The controller drops its endpoint at once; the agent stops the process once it reads the
        # restored assignments (its control-plane loop may still be backing off from the outage).
        wait_for(lambda: "subs-extra" not in faults.replicas(root), 20, "the unscheduled replica stopped")

        # The only member corrupted: no peer to copy from, so the latest snapshot brings it back.
        faults.corrupt_etcd_member(root, "follower")
        assert faults.recover_etcd_member(root, "follower") == [state.etcd[0].name]
        wait_for(lambda: serving(state), 40, "serving after the corruption")
        assert faults.stop_etcd_snapshots(root)
        assert faults.ledger(root) == []

        taken = events_since(state, t0, Event.ETCD_SNAPSHOT_TAKEN)
        assert taken[0].get("revision") == snapshot.revision and taken[0].get("path") == str(snapshot.path)
        losses = events_since(state, t0, Event.CONTROL_PLANE_DATA_LOST)
        assert len(losses) == 2 and losses[0].get("revision") == lost["revision"]
        drills = events_since(state, t0, Event.ETCD_RESTORED)
        assert len(drills) == 2
        assert drills[0].get("snapshot_revision") == snapshot.revision
        assert drills[0].get("lost_revision") == lost["revision"] and drills[0].get("interval_s") == 30.0
        print(f"restore took {drills[0].t - losses[0].t:.2f} s; "
              f"{lost['revision'] - snapshot.revision} revisions lost")  # fmt: skip
