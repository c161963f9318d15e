"""The testbed from outside: faults seen through the load balancer and in the ground-truth log.

Each test breaks one thing on a shared managed testbed, checks what users would see and
what the ground truth says, heals it, and checks the testbed is whole again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness import children
from harness.chaos.activities import testbed as activities
from harness.errors import HarnessError
from harness.ports import free_port
from harness.scoring import controlplane
from harness.scoring.windows import Phases
from harness.testbed import cluster, etcd, faults, sampler
from harness.testbed import state as tbstate
from harness.testbed.faultproxy import FaultSpec
from harness.testbed.groundtruth import Event
from tests.testbed.conftest import answers, events_since, make_profile, probe_lb, serving, wait_for

pytestmark = pytest.mark.slow


def replicas_on(state: tbstate.TestbedState, node: str) -> list[str]:
    """Ready replicas the controller sees on the node."""
    seen = faults.controller_view(state.root).get("replicas", {})
    return [rid for rid, info in seen.items() if info["node"] == node and info["ready"]]


def assigned_to(state: tbstate.TestbedState, node: str) -> list[str]:
    """Replicas the controller has on the node, ready or not: empty once they are evicted (a NotReady
    node's replicas are marked not ready at once, long before eviction)."""
    seen = faults.controller_view(state.root).get("replicas", {})
    return [rid for rid, info in seen.items() if info["node"] == node]


def busy_node(state: tbstate.TestbedState, avoid: str | None = None) -> tbstate.NodeState:
    """A node that runs a replica now (earlier tests may have moved replicas around)."""
    for n in state.nodes:
        if n.name != avoid and replicas_on(state, n.name):
            return n
    raise AssertionError("no node runs a replica")


class TestUpAndDown:
    def test_self_managed_up_status_down_leaves_nothing(self, tmp_path: Path) -> None:
        """`up` serves through the load balancer, `status` describes it, `down` leaves no process or folder."""
        root = tmp_path / "tb"
        started = time.monotonic()
        state = cluster.up(make_profile("self-managed"), root, lb_port=free_port())
        up_s = time.monotonic() - started
        try:
            info = cluster.status(root)
            assert info["profile"] == "self-managed" and info["lb_url"] == state.lb_url
            assert [m["name"] for m in info["etcd"]["members"]] == ["etcd-a"]
            assert info["etcd"]["quorum"] is True and info["etcd"]["members"][0]["leader"] is True
            assert {n["zone"] for n in info["nodes"]} == {"zone-a", "zone-b", "zone-c"}
            assert all(n["ready"] for n in info["nodes"]) and len(info["endpoints"]) == 3
            assert sum(len(n["replicas"]) for n in info["nodes"]) == 3
            assert httpx.get(state.lb_url + "/v1/catalog").json()["items"]
            pids = cluster.all_pids(state)
            print(f"up in {up_s:.1f} s")
        finally:
            started = time.monotonic()
            assert cluster.down(root)
            down_s = time.monotonic() - started
        print(f"down in {down_s:.1f} s")
        assert not root.exists()
        assert [p for p in pids if children.group_alive(p)] == []
        with pytest.raises(httpx.HTTPError):
            httpx.get(state.lb_url + "/readyz", timeout=1)

    def test_a_load_balancer_port_already_taken_is_refused_not_shared(self, tmp_path: Path) -> None:
        """HAProxy binds with SO_REUSEPORT by default, so a port another listener holds the same way
        was shared: the kernel split the game day's traffic between the testbed and the stranger.
        Now `up` fails at once, names HAProxy and the port, and leaves no process behind."""
        port = free_port()
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        root = tmp_path / "tb"
        try:
            with pytest.raises(HarnessError, match=rf"HAProxy exited .*127\.0\.0\.1:{port}"):
                cluster.up(make_profile("self-managed"), root, lb_port=port)
        except BaseException:
            cluster.down(root)  # it came up sharing the port: leave nothing running
            raise
        finally:
            squatter.close()
        assert (root / "logs" / "haproxy.log").exists(), "the log that says why is kept"
        left = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and str(root).encode() in (proc / "cmdline").read_bytes():
                    left.append(proc.name)
            except OSError:
                continue
        assert left == []

    def test_status_json_from_the_cli(self, managed: tbstate.TestbedState) -> None:
        """`harness testbed status --json` prints the documented fields."""
        out = subprocess.run(
            [sys.executable, "-m", "harness", "testbed", "status", "--json", "--dir", managed.dir],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        info = json.loads(out.stdout)
        assert info["profile"] == "managed" and info["lb_url"] == managed.lb_url
        assert len(info["etcd"]["members"]) == 3 and info["etcd"]["quorum"] is True
        assert sum(m["leader"] for m in info["etcd"]["members"]) == 1
        assert {"name", "zone", "ready", "replicas"} <= set(info["nodes"][0])
        assert len(info["endpoints"]) == 3


class TestReplicaFaults:
    def test_killed_replica_is_restarted_and_back_in_rotation(self, managed: tbstate.TestbedState) -> None:
        """A SIGKILLed replica dies, restarts, turns ready and returns to the load balancer."""
        t0 = time.time()
        victim = faults.kill_replica(managed.root)["replica"]
        wait_for(lambda: events_since(managed, t0, Event.ENDPOINT_REMOVED), 10, "the endpoint to go")
        # The experiments' steady-state probe waits (bounded) for the restarted replica.
        settled = activities.endpoints_count(settle_s=20, configuration={"testbed_dir": str(managed.root)})
        assert settled == 3 and events_since(managed, t0, Event.ENDPOINT_ADDED)
        wait_for(lambda: serving(managed), 20, "all replicas serving")
        log = events_since(managed, t0)
        kinds = [(r.event, r.get("replica")) for r in log]
        assert (Event.REPLICA_DIED, victim) in kinds
        assert (Event.REPLICA_READY, victim) in kinds
        assert (Event.ENDPOINT_REMOVED, victim) in kinds and (Event.ENDPOINT_ADDED, victim) in kinds
        died = next(r.t for r in log if r.event is Event.REPLICA_DIED and r.get("replica") == victim)
        removed = next(r.t for r in log if r.event is Event.ENDPOINT_REMOVED and r.get("replica") == victim)
        assert removed - died < 1.0, "a dead replica leaves the endpoints within a second"

    def test_frozen_replica_leaves_rotation_until_thawed(self, managed: tbstate.TestbedState) -> None:
        """A SIGSTOPped replica fails its readiness probe and is removed; thawed, it returns."""
        t0 = time.time()
        victim = faults.freeze_replica(managed.root)["replica"]
        try:
            wait_for(lambda: faults.endpoints(managed.root) == 2, 10, "the frozen replica to be removed")
            assert all(ok for _, ok, _ in probe_lb(managed, 1.5)), "the other replicas serve every request"
        finally:
            faults.thaw_replica(managed.root)
        wait_for(lambda: serving(managed), 15, "the thawed replica back")
        assert [r.get("replica") for r in events_since(managed, t0, Event.REPLICA_NOT_READY)] == [victim]
        assert faults.ledger(managed.root) == []


class TestNodeFaults:
    def test_crashed_node_is_detected_evicted_and_rescheduled(self, managed: tbstate.TestbedState) -> None:
        """A crashed node goes NotReady after the grace period, its endpoints go, its replicas move."""
        node = busy_node(managed).name
        before = replicas_on(managed, node)
        assert before
        t0 = time.time()
        faults.crash_node(managed.root, node)
        try:
            samples = probe_lb(managed, 1.0, timeout_s=0.5)
            assert not all(ok for _, ok, _ in samples), "requests sent to the dead node fail"
            not_ready = wait_for(lambda: events_since(managed, t0, Event.NODE_NOT_READY), 10, "NotReady")
            grace = managed.profile.timings.node_grace_s
            assert grace - 0.6 <= not_ready[0].t - t0 <= grace + 1.5
            wait_for(lambda: events_since(managed, t0, Event.REPLICA_EVICTED), 15, "eviction")
            wait_for(lambda: serving(managed), 30, "replicas rescheduled and serving")
            assert all(ok for _, ok, _ in probe_lb(managed, 1.0)), "after rescheduling, no request fails"
            scheduled = events_since(managed, t0, Event.REPLICA_SCHEDULED)
            assert len(scheduled) == len(before) and all(r.get("node") != node for r in scheduled)
        finally:
            faults.restore_node(managed.root, node)
        wait_for(lambda: events_since(managed, t0, Event.NODE_READY), 15, "the node back")
        assert faults.ledger(managed.root) == []
        assert replicas_on(managed, node) == [], "Kubernetes does not move replicas back by itself"
        moves = faults.rebalance(managed.root)
        assert moves and replicas_on(managed, node), "rebalance spreads them again"
        wait_for(
            lambda: all(len(replicas_on(managed, n.name)) == 1 for n in managed.nodes), 20, "one per node"
        )

    @pytest.mark.parametrize("fault", ["freeze", "isolate"])
    def test_frozen_or_isolated_node_goes_not_ready_and_comes_back(
        self, managed: tbstate.TestbedState, fault: str
    ) -> None:
        """A hung or partitioned node stops heartbeating, is marked NotReady and loses its endpoints."""
        node = busy_node(managed).name
        t0 = time.time()
        getattr(faults, f"{fault}_node")(managed.root, node)
        try:
            wait_for(lambda: events_since(managed, t0, Event.NODE_NOT_READY), 10, "NotReady")
            wait_for(lambda: all(e["node"] != node for e in faults.controller_view(managed.root)["endpoints"]),
                     5, "its endpoints removed")  # fmt: skip
            assert all(ok for _, ok, _ in probe_lb(managed, 1.0)), "traffic goes only to the other nodes"
        finally:
            faults.restore_node(managed.root, node)
        wait_for(lambda: events_since(managed, t0, Event.NODE_READY), 15, "the node Ready again")
        wait_for(lambda: serving(managed), 30, "the testbed whole again")


class TestZoneFaults:
    def test_zone_outage_and_restore(self, managed: tbstate.TestbedState) -> None:
        """All nodes of a zone crash; the other zones take over; the zone comes back."""
        zone = busy_node(managed).zone
        t0 = time.time()
        faults.zone_outage(managed.root, zone)
        try:
            wait_for(lambda: events_since(managed, t0, Event.REPLICA_EVICTED), 15, "eviction")
            wait_for(lambda: serving(managed), 30, "replicas in the other zones")
            zones = {faults.controller_view(managed.root)["nodes"][e["node"]]["zone"]
                     for e in faults.controller_view(managed.root)["endpoints"]}  # fmt: skip
            assert zone not in zones
        finally:
            faults.restore_zone(managed.root, zone)
        wait_for(lambda: all(n["ready"] for n in faults.controller_view(managed.root)["nodes"].values()), 15,
                 "every node ready")  # fmt: skip

    def test_zone_latency_slows_requests_there_and_is_removed(self, managed: tbstate.TestbedState) -> None:
        """300 ms each way on one zone: a third of requests take over 0.6 s; removed, all are fast."""
        zone = busy_node(managed).zone
        share_expected = len(replicas_on(managed, busy_node(managed).name)) / managed.profile.replicas
        faults.network_fault(managed.root, zone, FaultSpec(latency_ms=300, jitter_ms=20))
        try:
            slow = probe_lb(managed, 3.0, timeout_s=3)
        finally:
            faults.remove_network_fault(managed.root, zone)
        fast = probe_lb(managed, 1.0)
        assert all(ok for _, ok, _ in slow), "latency alone fails nothing"
        share = sum(1 for *_, lat in slow if lat > 0.55) / len(slow)
        assert share == pytest.approx(share_expected, abs=0.2), (share, share_expected)
        assert max(lat for *_, lat in fast) < 0.3

    def test_zone_partition_times_out_then_is_routed_around(self, managed: tbstate.TestbedState) -> None:
        """A partitioned zone's requests time out until its nodes go NotReady and its endpoints are removed."""
        node = busy_node(managed)
        t0 = time.time()
        faults.network_fault(managed.root, node.zone, FaultSpec(blackhole=True))
        try:
            early = probe_lb(managed, 1.0, timeout_s=0.3)
            assert any(not ok for _, ok, _ in early)
            wait_for(lambda: events_since(managed, t0, Event.NODE_NOT_READY), 10, "NotReady")
            wait_for(lambda: all(e["node"] != node.name for e in faults.controller_view(managed.root)["endpoints"]),
                     5, "endpoints removed")  # fmt: skip
            assert all(ok for _, ok, _ in probe_lb(managed, 1.0))
        finally:
            faults.remove_network_fault(managed.root, node.zone)
        wait_for(lambda: serving(managed), 30, "the zone back")


class TestControlPlane:
    def test_leader_kill_costs_about_an_election_and_the_service_keeps_answering(
        self, managed: tbstate.TestbedState
    ) -> None:
        """Writes are unavailable for about an election timeout; the service never stops answering."""
        client = etcd.EtcdClient(managed.client_endpoints(), timeout_s=0.3)
        try:
            t0 = time.time()
            leader = faults.kill_etcd_leader(managed.root)["member"]
            outage_end = None
            samples = []
            while time.time() - t0 < 10:
                try:
                    client.put("/testbed/probe", str(time.time()))
                    outage_end = time.time()
                    break
                except etcd.EtcdUnavailableError:
                    samples.append(answers(managed, timeout_s=0.5))
        finally:
            client.close()
            faults.start_etcd_members(managed.root)
        assert outage_end is not None
        unavailable_s = outage_end - t0
        print(f"etcd writes unavailable for {unavailable_s:.2f} s after killing {leader}")
        assert unavailable_s < 4.0
        assert all(samples), "the service answered throughout"
        wait_for(lambda: len([m for m in etcd.cluster_health(managed.member_specs()).members if m.healthy]) == 3,
                 20, "the killed member back")  # fmt: skip
        changes = events_since(managed, t0, Event.ETCD_LEADER_CHANGED)
        assert changes and changes[0].get("previous") == leader

    def test_corrupt_member_is_replaced_from_peers(self, managed: tbstate.TestbedState) -> None:
        """A member with garbage data is rebuilt from the other two; the cluster keeps quorum throughout."""
        health = etcd.cluster_health(managed.member_specs())
        follower = next(m.name for m in health.members if m.healthy and not m.leader)
        faults.corrupt_etcd_member(managed.root, follower)
        # Two members keep quorum (a status call can miss under load, so allow a second look).
        wait_for(lambda: etcd.cluster_health(managed.member_specs()).quorum, 3, "quorum of the other two")
        assert faults.recover_etcd_member(managed.root, follower) == [follower]
        wait_for(lambda: all(m.healthy for m in etcd.cluster_health(managed.member_specs()).members), 30,
                 "the replaced member healthy again")  # fmt: skip
        assert serving(managed) and faults.ledger(managed.root) == []

    def test_snapshot_restore_drill_reports_recovery_and_lost_writes(
        self, managed: tbstate.TestbedState, tmp_path: Path
    ) -> None:
        """The drill restores every member from a snapshot and counts exactly the writes made after it as lost;
        the control-plane sampler running meanwhile measures its RTO and RPO from its own probe writes."""
        with sampler.open_sampler(managed.root, tmp_path) as probes:
            time.sleep(1.0)
            start_t = time.time()
            result = faults.snapshot_restore_drill(managed.root, writes_after=15)
            wait_for(lambda: serving(managed), 40, "the testbed reconciled from the snapshot")
            time.sleep(1.5)  # reconciled as the sampler sees it: a repair line after the last change
            end_t = time.time()
        assert result["writes_lost"] == 15
        assert 0 < result["recovery_time_s"] < 30
        assert probes.errors == []
        lines = [json.loads(line) for line in (tmp_path / sampler.FILE).read_text().splitlines()]
        kinds = {line["kind"] for line in lines}
        assert {"sampler", "api", "node", "repair", "deployment", "restore", "readback"} <= kinds, kinds
        (readback,) = [line for line in lines if line["kind"] == "readback"]
        assert readback["ok"] and readback["deleted"] == readback["checked"] - len(readback["missing"])
        phases = Phases(baseline_start_t=start_t - 1.0, fault_start_t=start_t, fault_end_t=end_t, end_t=end_t)
        cp = controlplane.summarize(lines, phases)
        restore = cp["restore"]
        print("restore drill:", result, cp["write_unavailable_s"], restore)
        assert restore["rpo_revisions"] >= 15, "the drill's 15 writes after the snapshot, at least"
        # Probe writes acknowledged between the snapshot and the loss are the lost ones (0 or 1 of them:
        # the drill's 15 writes take tens of milliseconds, a probe write comes every 0.5 s).
        assert restore["rpo_writes"] == len(readback["missing"])
        assert 0 <= restore["rpo_age_s"] <= restore["snapshot_interval_s"] + 0.05
        assert restore["rto_s"] is not None and result["recovery_time_s"] <= restore["rto_s"] + 0.6
        # The restore takes about half a second here, so whether a probe write meets it is chance.
        assert cp["write_unavailable_s"] is not None and cp["api"]["fault"]["samples"] > 0
        assert cp["leader_changes"] >= 1, "every member restarted: a new leader was elected"


def test_self_managed_control_plane_outage_stops_all_repair(tmp_path: Path) -> None:
    """With the only etcd member down, a crashed node is not detected, evicted or replaced — until etcd returns."""
    root = tmp_path / "sm"
    with cluster.open_testbed(make_profile("self-managed"), root) as state:
        node = state.nodes[0].name
        faults.etcd_quorum_loss(state.root)
        t_fault = time.time()
        faults.crash_node(state.root, node)
        timings = state.profile.timings
        time.sleep(timings.node_grace_s + timings.eviction_s + 2)
        frozen = events_since(state, t_fault, Event.NODE_NOT_READY, Event.REPLICA_EVICTED, Event.REPLICA_SCHEDULED,
                              Event.ENDPOINT_REMOVED)  # fmt: skip
        assert frozen == [], "nothing is repaired without the control plane"
        assert len(faults.controller_view(state.root)["endpoints"]) == 3, "endpoints do not change"
        t_back = time.time()
        faults.start_etcd_members(state.root)
        wait_for(
            lambda: events_since(state, t_back, Event.REPLICA_SCHEDULED), 30, "repair after etcd returns"
        )
        faults.restore_node(state.root, node)
        wait_for(lambda: serving(state), 30, "whole again")


def test_sigkilled_chaos_run_is_cleaned_up(managed: tbstate.TestbedState, tmp_path: Path) -> None:
    """A `chaos run` SIGKILLed while its fault is applied leaves the fault; `harness cleanup` undoes it."""
    env = {**os.environ, tbstate.ENV_DIR: managed.dir}
    chaos = str(Path(sys.executable).parent / "chaos")
    run = subprocess.Popen(
        [chaos, "--no-log-file", "run", "--journal-path",
         str(tmp_path / "journal.json"), str(Path(__file__).parents[2] / "experiments/local/node-freeze.yaml")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(
            lambda: any(e["kind"] == "node_freeze" for e in faults.ledger(managed.root)), 30, "the freeze"
        )
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(10)
    assert faults.ledger(managed.root), "the killed run left its fault applied"
    out = subprocess.run([sys.executable, "-m", "harness", "cleanup", "--dir", managed.dir],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "node_freeze on" in out.stdout
    assert faults.ledger(managed.root) == []
    wait_for(lambda: serving(managed) and all(n["ready"] for n in faults.controller_view(managed.root)["nodes"].values()),
             30, "a healthy testbed")  # fmt: skip


def test_plain_chaos_run_of_a_local_experiment(managed: tbstate.TestbedState, tmp_path: Path) -> None:
    """`chaos run experiments/local/replica-kill.yaml` completes against the running testbed."""
    journal = tmp_path / "journal.json"
    chaos = str(Path(sys.executable).parent / "chaos")
    experiment = Path(__file__).parents[2] / "experiments/local/replica-kill.yaml"
    done = subprocess.run(
        [chaos, "--no-log-file", "run", "--journal-path", str(journal), str(experiment)],
        env={**os.environ, tbstate.ENV_DIR: managed.dir}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    result = json.loads(journal.read_text())
    assert result["status"] == "completed", done.stdout[-2000:]
    assert result["steady_states"]["after"]["steady_state_met"] is True
    assert [r["activity"]["name"] for r in result["run"]] == ["kill-a-replica"]
