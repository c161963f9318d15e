"""Faults the testbed can suffer, each with its undo, and the ledger that makes undo certain.

Every fault that leaves something changed (a frozen process, a proxy fault, a stopped
etcd member, a crashed node) is written to DIR/faults.json *before* it is applied, and
removed from it once undone. If the process that applied it dies — even by SIGKILL —
`cleanup` reads the ledger and undoes what is left. Applying a fault twice is harmless,
and so is undoing one that is not there (each action is idempotent).

Every application and removal is also a ground-truth event (harness.testbed.groundtruth).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import children
from harness.errors import HarnessError, InputError
from harness.testbed import backups, cluster, etcd, keys
from harness.testbed import state as tbstate
from harness.testbed.faultproxy import Direction, FaultProxyClient, FaultSpec
from harness.testbed.groundtruth import Event, EventLog

LEDGER = "faults.json"


# --- ledger ---------------------------------------------------------------------------
def ledger(root: Path) -> list[dict[str, Any]]:
    return tbstate.read_json(root / LEDGER, [])


def _add(root: Path, kind: str, target: str, **params: Any) -> dict[str, Any]:
    entry = {"id": secrets.token_hex(4), "kind": kind, "target": target, "params": params, "t": time.time()}
    with tbstate.locked(root):
        entries = [e for e in ledger(root) if not (e["kind"] == kind and e["target"] == target)]
        tbstate.write_json(root / LEDGER, [*entries, entry])
    return entry


def _drop(root: Path, kind: str, target: str) -> list[dict[str, Any]]:
    with tbstate.locked(root):
        entries = ledger(root)
        gone = [e for e in entries if e["kind"] == kind and e["target"] == target]
        tbstate.write_json(root / LEDGER, [e for e in entries if e not in gone])
    return gone


def _events(root: Path) -> EventLog:
    return EventLog(root / "events.jsonl", source=f"faults/{os.getpid()}")


def _state(root: Path) -> tbstate.TestbedState:
    return tbstate.load(root)


# --- replicas --------------------------------------------------------------------------
def replicas(root: Path) -> dict[str, dict[str, Any]]:
    """replica id -> {"node", "pid", "port", "proxy_port"}, from the node agents' files."""
    out = {}
    for node in _state(root).nodes:
        for rid, info in tbstate.read_json(root / "nodes" / node.name / "replicas.json", {}).items():
            out[rid] = {**info, "node": node.name}
    return out


def _pick_replica(root: Path, replica: str | None) -> tuple[str, dict[str, Any]]:
    known = {rid: info for rid, info in replicas(root).items() if info.get("pid")}
    if replica:
        if replica not in known:
            raise InputError(f"no running replica {replica!r}; running: {', '.join(sorted(known)) or 'none'}")
        return replica, known[replica]
    if not known:
        raise HarnessError("no replica is running")
    rid = random.choice(sorted(known))
    return rid, known[rid]


def kill_replica(root: Path, replica: str | None = None) -> dict[str, Any]:
    """SIGKILL one replica (random if not named); its node's agent restarts it."""
    rid, info = _pick_replica(root, replica)
    children.kill_group(info["pid"])
    _events(root).record(
        Event.FAULT_APPLIED, fault="replica_kill", target=rid, node=info["node"], instant=True
    )
    return {"replica": rid, "node": info["node"]}


def freeze_replica(root: Path, replica: str | None = None) -> dict[str, Any]:
    """SIGSTOP one replica: it accepts connections but never answers, until thawed."""
    rid, info = _pick_replica(root, replica)
    _add(root, "replica_freeze", rid, pid=info["pid"])
    children.signal_group(info["pid"], signal.SIGSTOP)
    _events(root).record(Event.FAULT_APPLIED, fault="replica_freeze", target=rid, node=info["node"])
    return {"replica": rid, "node": info["node"]}


def thaw_replica(root: Path, replica: str | None = None) -> list[str]:
    """Undo replica freezes (all of them when none is named)."""
    done = []
    for entry in [e for e in ledger(root) if e["kind"] == "replica_freeze"]:
        if replica in (None, entry["target"]):
            children.signal_group(entry["params"]["pid"], signal.SIGCONT)
            _drop(root, "replica_freeze", entry["target"])
            _events(root).record(Event.FAULT_REMOVED, fault="replica_freeze", target=entry["target"])
            done.append(entry["target"])
    return done


# --- nodes and zones ------------------------------------------------------------------
def _proxy(node: tbstate.NodeState) -> FaultProxyClient:
    return FaultProxyClient(f"http://127.0.0.1:{node.proxy_control_port}")


def _node_pids(root: Path, node: tbstate.NodeState) -> list[int]:
    reps = tbstate.read_json(root / "nodes" / node.name / "replicas.json", {})
    return [p for p in [node.agent_pid, *(i.get("pid") for i in reps.values())] if p]


def _set_proxy(node: tbstate.NodeState, spec: FaultSpec | None, directions: tuple[Direction, ...]) -> None:
    proxy = _proxy(node)
    try:
        for d in directions:
            proxy.set_faults(d, spec or FaultSpec())
    finally:
        proxy.close()


BOTH = (Direction.INGRESS, Direction.EGRESS)


def crash_node(root: Path, node: str) -> dict[str, Any]:
    """The node dies: its agent and replicas are killed and its address stops answering."""
    n = _state(root).node(node)
    _add(root, "node_crash", node)
    _set_proxy(n, FaultSpec(blackhole=True), BOTH)  # a dead host does not refuse, it is silent
    for pid in _node_pids(root, n):
        children.kill_group(pid)
    _events(root).record(Event.FAULT_APPLIED, fault="node_crash", target=node)
    return {"node": node}


def freeze_node(root: Path, node: str) -> dict[str, Any]:
    """The node hangs: agent, replicas and its network stop (SIGSTOP), state kept."""
    n = _state(root).node(node)
    pids = [*_node_pids(root, n), *([n.proxy_pid] if n.proxy_pid else [])]
    _add(root, "node_freeze", node, pids=pids)
    for pid in pids:
        children.signal_group(pid, signal.SIGSTOP)
    _events(root).record(Event.FAULT_APPLIED, fault="node_freeze", target=node)
    return {"node": node}


def isolate_node(root: Path, node: str) -> dict[str, Any]:
    """Partition the node from everything: load balancer and control plane."""
    n = _state(root).node(node)
    _add(root, "node_isolate", node)
    _set_proxy(n, FaultSpec(blackhole=True), BOTH)
    _events(root).record(Event.FAULT_APPLIED, fault="node_isolate", target=node)
    return {"node": node}


def restore_node(root: Path, node: str) -> list[str]:
    """Undo whatever was done to this node (crash, freeze, isolation, network faults)."""
    state = _state(root)
    n = state.node(node)
    undone = []
    for entry in [e for e in ledger(root) if e["target"] == node]:
        kind = entry["kind"]
        if kind == "node_freeze":
            for pid in entry["params"]["pids"]:
                children.signal_group(pid, signal.SIGCONT)
        elif kind in ("node_isolate", "network"):
            _set_proxy(n, None, BOTH)
        elif kind == "node_crash":
            _set_proxy(n, None, BOTH)
            if not (n.agent_pid and children.group_alive(n.agent_pid)):
                with tbstate.locked(root):
                    fresh = tbstate.load(root)
                    fresh.node(node).agent_pid = cluster.start_agent(fresh, fresh.node(node))
                    tbstate.save(fresh)
        else:
            continue
        _drop(root, kind, node)
        _events(root).record(Event.FAULT_REMOVED, fault=kind, target=node)
        undone.append(kind)
    return undone


def zone_outage(root: Path, zone: str) -> dict[str, Any]:
    """Every node of the zone crashes."""
    nodes = [n.name for n in _state(root).zone_nodes(zone)]
    _events(root).record(Event.FAULT_APPLIED, fault="zone_outage", target=zone, nodes=nodes)
    for node in nodes:
        crash_node(root, node)
    return {"zone": zone, "nodes": nodes}


def restore_zone(root: Path, zone: str) -> list[str]:
    undone = []
    for n in _state(root).zone_nodes(zone):
        undone += restore_node(root, n.name)
    _events(root).record(Event.FAULT_REMOVED, fault="zone", target=zone)
    return undone


def _targets(root: Path, target: str) -> list[tbstate.NodeState]:
    state = _state(root)
    if target in state.profile.zones:
        return state.zone_nodes(target)
    return [state.node(target)]


def network_fault(
    root: Path, target: str, spec: FaultSpec, directions: tuple[Direction, ...] = BOTH
) -> dict[str, Any]:
    """Latency, loss, blackhole or a bandwidth limit on a node's or a zone's network."""
    nodes = _targets(root, target)
    for n in nodes:
        _add(root, "network", n.name, zone_or_node=target, spec=spec.model_dump())
        _set_proxy(n, spec, directions)
    _events(root).record(Event.FAULT_APPLIED, fault="network", target=target, spec=spec.model_dump(exclude_defaults=True),
                         nodes=[n.name for n in nodes])  # fmt: skip
    return {"target": target, "nodes": [n.name for n in nodes]}


def remove_network_fault(root: Path, target: str) -> list[str]:
    nodes = _targets(root, target)
    for n in nodes:
        _set_proxy(n, None, BOTH)
        _drop(root, "network", n.name)
        _drop(root, "node_isolate", n.name)
    _events(root).record(Event.FAULT_REMOVED, fault="network", target=target)
    return [n.name for n in nodes]


# --- etcd ----------------------------------------------------------------------------
def kill_etcd_member(root: Path, member: str | None = None) -> dict[str, Any]:
    """SIGKILL one etcd member (the first follower if none is named)."""
    state = _state(root)
    if member is None:
        health = etcd.cluster_health(state.member_specs())
        followers = [m.name for m in health.members if m.healthy and not m.leader]
        member = followers[0] if followers else state.etcd[0].name
    m = state.member(member)
    _add(root, "etcd_member_down", member)
    if m.pid:
        children.kill_group(m.pid)
    _events(root).record(Event.FAULT_APPLIED, fault="etcd_member_kill", target=member)
    return {"member": member}


def kill_etcd_leader(root: Path) -> dict[str, Any]:
    """SIGKILL the current leader; the others elect a new one (if they are a majority)."""
    state = _state(root)
    health = etcd.cluster_health(state.member_specs())
    if health.leader is None:
        raise HarnessError("etcd has no leader to kill")
    kill_etcd_member(root, health.leader)
    return {"member": health.leader}


def etcd_quorum_loss(root: Path) -> dict[str, Any]:
    """Kill a majority of members: the control plane stops accepting writes."""
    state = _state(root)
    majority = len(state.etcd) // 2 + 1
    victims = [m.name for m in state.etcd][:majority]
    for name in victims:
        kill_etcd_member(root, name)
    return {"members": victims}


def start_etcd_members(root: Path) -> list[str]:
    """Restart members that were killed (undo of kill, leader kill and quorum loss)."""
    started = []
    binaries = etcd.find_binaries()
    for entry in [e for e in ledger(root) if e["kind"] == "etcd_member_down"]:
        with tbstate.locked(root):
            state = tbstate.load(root)
            m = state.member(entry["target"])
            if not (m.pid and children.group_alive(m.pid)):
                m.pid = cluster.start_etcd_member(state, m, binaries)
                tbstate.save(state)
        _drop(root, "etcd_member_down", entry["target"])
        _events(root).record(Event.FAULT_REMOVED, fault="etcd_member_kill", target=entry["target"])
        started.append(entry["target"])
    return started


MEMBER_SELECTORS = ("leader", "follower")
"""What a member argument may say instead of a name, so one experiment runs on every profile."""


def pick_member(root: Path, member: str | None) -> str:
    """A member by name, or `leader`, or `follower` (the only member when there is one), or the last."""
    state = _state(root)
    if member not in MEMBER_SELECTORS:
        return state.member(member).name if member else state.etcd[-1].name
    health = etcd.cluster_health(state.member_specs())
    if member == "leader":
        if health.leader is None:
            raise HarnessError("etcd has no leader")
        return health.leader
    followers = [m.name for m in health.members if m.healthy and not m.leader]
    return followers[0] if followers else state.etcd[-1].name


def _revision(root: Path) -> int | None:
    """The cluster's last revision, or None when the control plane cannot say (it is down)."""
    client = etcd.EtcdClient(_state(root).client_endpoints(), timeout_s=2.0)
    try:
        return client.revision()
    except HarnessError:
        return None
    finally:
        client.close()


def corrupt_etcd_member(root: Path, member: str | None = None) -> dict[str, Any]:
    """Stop a member and overwrite its data file with garbage: it cannot start again as it was.

    With peers the cluster keeps its data; the only member's corruption loses the control plane's
    state (a `control_plane_data_lost` event) until a snapshot is restored.
    """
    state = _state(root)
    name = pick_member(root, member)
    m = state.member(name)
    alone = len(state.etcd) == 1
    revision = _revision(root) if alone else None
    _add(root, "etcd_member_corrupt", m.name, revision=revision)
    if m.pid:
        children.kill_group(m.pid)
        children.wait_gone([m.pid], 3)
    db = root / "etcd" / m.name / "member" / "snap" / "db"
    if db.exists():
        size = db.stat().st_size
        with db.open("r+b") as fh:
            fh.write(os.urandom(min(size, 1 << 20)))
    events = _events(root)
    events.record(Event.FAULT_APPLIED, fault="etcd_member_corruption", target=m.name)
    if alone:
        events.record(Event.CONTROL_PLANE_DATA_LOST, revision=revision)
    return {"member": m.name}


def recover_etcd_member(root: Path, member: str | None = None) -> list[str]:
    """Replace corrupted members from their healthy peers (remove, wipe, re-add, start); the only
    member, which has no peers, is restored from the latest scheduled snapshot instead."""
    recovered = []
    binaries = etcd.find_binaries()
    for entry in [e for e in ledger(root) if e["kind"] == "etcd_member_corrupt"]:
        if member not in (None, "", *MEMBER_SELECTORS, entry["target"]):
            continue
        if len(_state(root).etcd) == 1:
            _restore_cluster(root, lost_revision=entry["params"].get("revision"))
            _drop(root, "etcd_member_corrupt", entry["target"])
            _events(root).record(Event.FAULT_REMOVED, fault="etcd_member_corruption", target=entry["target"])
            recovered.append(entry["target"])
            continue
        with tbstate.locked(root):
            state = tbstate.load(root)
            m = state.member(entry["target"])
            spec = m.spec(root)
            peers = [f"http://127.0.0.1:{o.client_port}" for o in state.etcd if o.name != m.name]
            client = etcd.EtcdClient(peers, timeout_s=2.0)
            try:
                etcd.rejoin_member(spec, client)
            finally:
                client.close()
            cmd = etcd.member_command(spec, state.member_specs(), "existing", binaries)
            m.pid = children.spawn_detached(cmd, root / "logs" / f"{m.name}.log")
            tbstate.save(state)
        _drop(root, "etcd_member_corrupt", entry["target"])
        _events(root).record(Event.FAULT_REMOVED, fault="etcd_member_corruption", target=entry["target"])
        recovered.append(entry["target"])
    return recovered


# --- scheduled snapshots, data loss and restore -------------------------------------------
FIRST_SNAPSHOT_TIMEOUT_S = 15.0
"""How long schedule_etcd_snapshots waits for the job's first snapshot (well under 1 s when idle)."""
RESTORE_HEALTHY_TIMEOUT_S = 30.0


def schedule_etcd_snapshots(root: Path, interval_s: float) -> dict[str, Any]:
    """Start the backup job (harness.testbed.backups): a snapshot now, then every interval_s.

    Returns once the first snapshot exists, so a loss right after has something to restore.
    A job already running with this interval is kept; one with another interval is replaced.
    """
    if interval_s <= 0:
        raise InputError(f"snapshot_interval_s must be above 0, not {interval_s}")
    running = [e for e in ledger(root) if e["kind"] == "etcd_snapshots"]
    state = _state(root)
    alive = bool(state.backups_pid and children.group_alive(state.backups_pid))
    if alive and running and running[0]["params"]["interval_s"] == interval_s:
        return {"interval_s": interval_s, "pid": state.backups_pid, "started": False}
    stop_etcd_snapshots(root)
    started_t = time.time()
    _add(root, "etcd_snapshots", "cluster", interval_s=interval_s)
    with tbstate.locked(root):
        state = tbstate.load(root)
        cmd = cluster.python_module(
            "harness.testbed.backups", "--dir", str(root), "--interval-s", str(interval_s)
        )
        state.backups_pid = children.spawn_detached(cmd, root / "logs" / "backups.log")
        tbstate.save(state)
    _wait(lambda: (s := backups.latest(root)) is not None and s.t >= started_t - 0.01,
          FIRST_SNAPSHOT_TIMEOUT_S, "the first scheduled etcd snapshot (see logs/backups.log)")  # fmt: skip
    return {"interval_s": interval_s, "pid": state.backups_pid, "started": True}


def stop_etcd_snapshots(root: Path) -> bool:
    """Stop the backup job (undo of schedule_etcd_snapshots); whether one was running."""
    with tbstate.locked(root):
        state = tbstate.load(root)
        pid, state.backups_pid = state.backups_pid, None
        tbstate.save(state)
    if pid:
        children.signal_group(pid, signal.SIGTERM)
        for left in children.wait_gone([pid], 5):
            children.kill_group(left)
    _drop(root, "etcd_snapshots", "cluster")
    return pid is not None


def wait_snapshot_age(root: Path, age_s: float, timeout_s: float | None = None) -> float:
    """Wait until the latest scheduled snapshot is age_s old (it places a loss within the backup
    interval); the age reached. A snapshot taken meanwhile restarts the wait, so keep age_s below
    the interval."""
    entry = next((e for e in ledger(root) if e["kind"] == "etcd_snapshots"), None)
    interval_s = entry["params"]["interval_s"] if entry else None
    if interval_s is not None and age_s >= interval_s:
        raise InputError(f"loss_after_snapshot_s ({age_s}) must be below snapshot_interval_s ({interval_s})")
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else 2 * (interval_s or 60) + age_s)
    while True:
        snapshot = backups.latest(root)
        age = time.time() - snapshot.t if snapshot else -1.0
        if snapshot is not None and age >= age_s:
            return round(age, 3)
        if time.monotonic() > deadline:
            raise HarnessError(
                f"no scheduled snapshot reached an age of {age_s} s (is the backup job running?)"
            )
        time.sleep(min(0.05, max(0.005, age_s - age)) if snapshot else 0.1)


def _kill_members(state: tbstate.TestbedState) -> None:
    """Every etcd member killed, and gone, before its data is touched."""
    pids = [m.pid for m in state.etcd if m.pid and children.group_alive(m.pid)]
    for pid in pids:
        children.kill_group(pid)
    children.wait_gone(pids, 5)


def _rebuild_members(
    root: Path, snapshot: Path | None, killed: Callable[[], None] | None = None
) -> list[etcd.MemberSpec]:
    """Every member killed and started again from `snapshot` (None: empty); their specs.

    `killed`, when given, is called once every member is gone and before any is rebuilt (the
    drill records its loss there). The one way both restores (the scheduled-snapshot drill and
    the synthetic one) rebuild etcd."""
    binaries = etcd.find_binaries()
    with tbstate.locked(root):
        state = tbstate.load(root)
        specs = state.member_specs()
        _kill_members(state)
        if killed is not None:
            killed()
        for m in state.etcd:
            if snapshot is not None:
                etcd.restore_snapshot(snapshot, m.spec(root), specs, binaries)
            else:
                shutil.rmtree(m.spec(root).data_dir, ignore_errors=True)
        for m in state.etcd:
            m.pid = cluster.start_etcd_member(state, m, binaries)
        tbstate.save(state)
    return specs


def lose_control_plane_data(root: Path) -> dict[str, Any]:
    """Every etcd member dies and its data is destroyed (a lost disk, a wiped volume).

    The control plane stays down until restore_etcd_from_snapshot brings it back from the
    latest scheduled snapshot; whatever was written after that snapshot is gone for good.
    """
    revision = _revision(root)
    _add(root, "etcd_data_lost", "cluster", revision=revision)
    with tbstate.locked(root):
        state = tbstate.load(root)
        _kill_members(state)
        for m in state.etcd:
            shutil.rmtree(m.spec(root).data_dir, ignore_errors=True)
    events = _events(root)
    lost = events.record(Event.CONTROL_PLANE_DATA_LOST, revision=revision)
    events.record(Event.FAULT_APPLIED, t=lost["t"], fault="etcd_data_loss", target="cluster")
    return {"members": [m.name for m in state.etcd], "revision": revision, "t": lost["t"]}


def restore_etcd_from_snapshot(root: Path) -> dict[str, Any] | None:
    """Undo of lose_control_plane_data: every member rebuilt from the latest scheduled snapshot.

    None when no loss is on the books (idempotent, so it is also a rollback). The controller
    and the agents then reconcile from the restored state, as Kubernetes' controllers do
    after an etcd restore.
    """
    entry = next((e for e in ledger(root) if e["kind"] == "etcd_data_lost"), None)
    if entry is None:
        return None
    restored = _restore_cluster(root, lost_revision=entry["params"].get("revision"))
    _drop(root, "etcd_data_lost", "cluster")
    _events(root).record(Event.FAULT_REMOVED, fault="etcd_data_loss", target="cluster")
    return restored


def _restore_cluster(root: Path, lost_revision: int | None) -> dict[str, Any]:
    """Stop every member and rebuild them all from the latest scheduled snapshot; `etcd_restored`.

    With no snapshot at all the members start empty: the testbed comes back (its controller
    schedules everything anew), and the event says that nothing was restored (snapshot_t null).
    """
    snapshot = backups.latest(root)
    schedule = next((e for e in ledger(root) if e["kind"] == "etcd_snapshots"), None)
    specs = _rebuild_members(root, snapshot.path if snapshot is not None else None)
    etcd.wait_healthy(specs, timeout_s=RESTORE_HEALTHY_TIMEOUT_S)
    result = {
        "snapshot_t": snapshot.t if snapshot else None,
        "snapshot_revision": snapshot.revision if snapshot else 0,
        "lost_revision": lost_revision,
        "interval_s": schedule["params"]["interval_s"] if schedule else None,
    }
    line = _events(root).record(Event.ETCD_RESTORED, **result)
    return {"t": line["t"], **result, "snapshot": str(snapshot.path) if snapshot else None}


def snapshot_restore_drill(root: Path, writes_after: int = 20) -> dict[str, Any]:
    """Take a snapshot, keep writing, lose every member's data, restore from the snapshot.

    Reports how long the control plane was unavailable and how many writes made after the
    snapshot were lost — the numbers a team needs for its etcd backup schedule.
    """
    state = _state(root)
    client = etcd.EtcdClient(state.client_endpoints(), timeout_s=2.0)
    events = _events(root)
    run = secrets.token_hex(3)
    try:
        before = 10
        for i in range(before):
            client.put(f"{keys.DRILL}{run}/{i:04d}", "before-snapshot")
        snapshot = root / "etcd" / f"snapshot-{run}.db"
        # Read before the snapshot: a write landing in between is in the snapshot but counted as
        # lost, so rpo_revisions errs high (by the writes of a few milliseconds), never low.
        snapshot_revision = client.revision()
        client.snapshot_save(snapshot)
        snapshot_t = time.time()
        events.record(Event.ETCD_SNAPSHOT_TAKEN, t=snapshot_t, revision=snapshot_revision, path=str(snapshot))
        for i in range(before, before + writes_after):
            client.put(f"{keys.DRILL}{run}/{i:04d}", "after-snapshot")
        # Read before the kill: writes in the milliseconds between are lost but not counted (errs low).
        lost_revision = client.revision()
    finally:
        client.close()
    _add(root, "etcd_restore_drill", "cluster", snapshot=str(snapshot))
    events.record(Event.FAULT_APPLIED, fault="etcd_snapshot_restore", target="cluster", snapshot_t=snapshot_t)
    lost: dict[str, Any] = {}

    def members_killed() -> None:
        # The kill is the loss: until the members are gone they still acknowledge writes, which
        # the restore then undoes. So the loss is recorded here, not before the kill.
        lost.update(events.record(Event.CONTROL_PLANE_DATA_LOST, revision=lost_revision))

    specs = _rebuild_members(root, snapshot, killed=members_killed)
    disaster_t = float(lost["t"])
    etcd.wait_healthy(specs, timeout_s=30)
    recovered_t = time.time()
    # The drill's one snapshot stands for a backup schedule: a loss comes at most an interval after
    # the last backup, and here it came this long after it.
    events.record(Event.ETCD_RESTORED, t=recovered_t, snapshot_t=snapshot_t, snapshot_revision=snapshot_revision,
                  lost_revision=lost_revision, interval_s=round(disaster_t - snapshot_t, 3))  # fmt: skip
    client = etcd.EtcdClient(state.client_endpoints(), timeout_s=2.0)
    try:
        present = len(client.get_prefix(f"{keys.DRILL}{run}/"))
    finally:
        client.close()
    _drop(root, "etcd_restore_drill", "cluster")
    result = {
        "recovery_time_s": round(recovered_t - disaster_t, 3),
        "writes_before_snapshot": before,
        "writes_after_snapshot": writes_after,
        "writes_lost": before + writes_after - present,
        "snapshot": str(snapshot),
    }
    events.record(Event.FAULT_REMOVED, fault="etcd_snapshot_restore", target="cluster", **result)
    return result


# --- probes ----------------------------------------------------------------------------
def controller_view(root: Path) -> dict[str, Any]:
    return tbstate.read_json(root / "status.json", {})


def ready_nodes(root: Path) -> int:
    return sum(1 for n in controller_view(root).get("nodes", {}).values() if n.get("ready"))


def ready_replicas(root: Path) -> int:
    return sum(1 for r in controller_view(root).get("replicas", {}).values() if r.get("ready"))


def endpoints(root: Path) -> int:
    return len(controller_view(root).get("endpoints", []))


# --- cleanup ---------------------------------------------------------------------------
def cleanup(root: Path) -> list[str]:
    """Undo every fault a dead run left applied, and restart what it left stopped."""
    done: list[str] = []
    try:
        state = _state(root)
    except tbstate.NotRunningError:
        return done
    done += [f"thawed {r}" for r in thaw_replica(root)]
    for n in state.nodes:
        done += [f"{k} on {n.name} undone" for k in restore_node(root, n.name)]
    if restore_etcd_from_snapshot(root) is not None:
        done.append("restored etcd from the latest snapshot")
    done += [f"restarted {m}" for m in start_etcd_members(root)]
    done += [f"replaced {m}" for m in recover_etcd_member(root)]
    if stop_etcd_snapshots(root):
        done.append("stopped the scheduled etcd snapshots")
    for entry in ledger(root):  # anything else (a drill cut short): take it off the books
        _drop(root, entry["kind"], entry["target"])
        done.append(f"dropped {entry['kind']} on {entry['target']} from the ledger")
    # A frozen process stays frozen without a ledger entry if the harness died between
    # the SIGSTOP and the write; SIGCONT to everything is harmless.
    for pid in cluster.all_pids(tbstate.load(root)):
        children.signal_group(pid, signal.SIGCONT)
    for n in state.nodes:
        _set_proxy(n, None, BOTH)
    return done


# --- between scenarios ------------------------------------------------------------------
def rebalance(root: Path, timeout_s: float = 60.0) -> list[str]:
    """Spread replicas over the nodes again, surge first, so every scenario starts alike.

    Kubernetes leaves replicas where eviction put them (no descheduler by default); after a
    node crash one zone is left empty, and the next scenario's zone fault would hit nothing.
    For each node above its share while another has none: schedule a replica on the empty
    node, wait until it is an endpoint, then remove one from the crowded node.
    """
    state = _state(root)
    moves: list[str] = []
    client = etcd.EtcdClient(state.client_endpoints(), timeout_s=2.0)
    try:
        for _ in range(state.profile.replicas):
            view = controller_view(root)
            per_node: dict[str, list[str]] = {n.name: [] for n in state.nodes}
            for rid, info in sorted(view.get("replicas", {}).items()):
                per_node.setdefault(info["node"], []).append(rid)
            ready = {n for n, v in view.get("nodes", {}).items() if v.get("ready")}
            empty = [n for n, rids in per_node.items() if not rids and n in ready]
            crowded = [n for n, rids in per_node.items() if len(rids) > 1]
            if not empty or not crowded:
                break
            target, source = empty[0], max(crowded, key=lambda n: len(per_node[n]))
            rid = "subs-" + secrets.token_hex(3)
            client.put(keys.assignment_key(rid), json.dumps({"node": target}))
            _wait(lambda rid=rid: any(e["replica"] == rid for e in controller_view(root).get("endpoints", [])),
                  timeout_s, f"the new replica {rid} on {target}")  # fmt: skip
            victim = per_node[source][-1]
            client.delete(keys.assignment_key(victim))
            moves.append(f"moved a replica from {source} to {target}")
    finally:
        client.close()
    return moves


def settle(root: Path, timeout_s: float = 60.0) -> list[str]:
    """Wait until every node is Ready and every replica is an endpoint, so that the next scenario
    starts from a whole testbed (its steady-state check would otherwise fail on the last one's
    tail: on `self-managed` a crashed node takes a grace period to return).

    Returns what it waited for, or why it gave up; never raises (the run goes on, and the next
    scenario's steady state says the rest).
    """
    state = _state(root)
    started = time.monotonic()
    nodes, replicas = len(state.nodes), state.profile.replicas

    def whole() -> bool:
        # exactly: after a rebalance's surge the removed replica is still an endpoint for a moment
        return ready_nodes(root) >= nodes and endpoints(root) == replicas

    if whole():
        return []
    try:
        _wait(whole, timeout_s, f"{nodes} Ready nodes and {replicas} endpoints")
    except HarnessError as exc:
        return [f"{exc} (found {ready_nodes(root)} nodes, {endpoints(root)} endpoints)"]
    return [f"waited {time.monotonic() - started:.1f} s for every node and replica to be back"]


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise HarnessError(f"the testbed did not settle: waited {timeout_s:.0f} s for {what}")
        time.sleep(0.1)
