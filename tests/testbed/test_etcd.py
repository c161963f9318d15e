"""A real etcd cluster on 127.0.0.1: the client, health, and the faults the testbed injects."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from harness import children
from harness.errors import HarnessError
from harness.ports import free_port
from harness.testbed import etcd

ZONES = ("zone-a", "zone-b", "zone-c")


@dataclass
class Cluster:
    """Members of one test cluster and every process and client started for it."""

    members: list[etcd.MemberSpec]
    binaries: etcd.Binaries
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    started: list[subprocess.Popen] = field(default_factory=list)
    clients: list[etcd.EtcdClient] = field(default_factory=list)

    def spec(self, name: str) -> etcd.MemberSpec:
        return next(m for m in self.members if m.name == name)

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, state: Literal["new", "existing"] = "new") -> subprocess.Popen:
        process = etcd.start_member(self.spec(name), self.members, state, self.binaries, self.log(name))
        self.adopt(name, process)
        return process

    def adopt(self, name: str, process: subprocess.Popen) -> None:
        self.processes[name] = process
        self.started.append(process)

    def kill(self, name: str) -> None:
        """SIGKILL the member's process group: a crash, no chance to step down."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)

    def client(self, *names: str) -> etcd.EtcdClient:
        urls = [self.spec(n).client_url for n in names] if names else [m.client_url for m in self.members]
        client = etcd.EtcdClient(urls)
        self.clients.append(client)
        return client


def distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@pytest.fixture(scope="module")
def binaries() -> etcd.Binaries:
    try:
        return etcd.find_binaries()
    except HarnessError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def make_cluster(tmp_path: Path, binaries: etcd.Binaries) -> Iterator[Callable[..., Cluster]]:
    """Build clusters of 1 or 3 members (started and healthy unless start=False); all stopped after."""
    clusters: list[Cluster] = []

    def make(size: int, prefix: str = "etcd", start: bool = True) -> Cluster:
        ports = distinct_free_ports(2 * size)
        root = tmp_path / prefix
        members = [
            etcd.MemberSpec(
                name=f"{prefix}-{zone.removeprefix('zone-')}",
                zone=zone,
                client_port=ports[2 * i],
                peer_port=ports[2 * i + 1],
                data_dir=root / "data" / zone,
            )
            for i, zone in enumerate(ZONES[:size])
        ]
        cluster = Cluster(members, binaries, root / "logs")
        clusters.append(cluster)
        if start:
            for member in members:
                cluster.start(member.name)
            etcd.wait_healthy(members, timeout_s=15, require_all=True)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            for client in cluster.clients:
                client.close()
            for process in cluster.started:
                children.stop_group(process, grace_s=5)


def wait_for(condition: Callable[[], bool], timeout_s: float) -> float:
    """Poll condition until true; seconds it took. Fails the test on timeout."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < timeout_s, f"condition not met within {timeout_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def by_name(health: etcd.ClusterHealth, name: str) -> etcd.MemberHealth:
    return next(m for m in health.members if m.name == name)


def test_single_member_stores_reads_and_deletes_keys(make_cluster: Callable[..., Cluster]) -> None:
    """A one-member cluster round-trips keys, prefixes and empty or non-ASCII values."""
    cluster = make_cluster(1)
    client = cluster.client()
    client.put("/t/a", "1")
    client.put("/t/b", '{"node": "node-a1"}')
    client.put("/t/empty", "")
    client.put("/t/zone/é", "ü")
    client.put("/u", "outside")

    assert client.get("/t/a") == "1"
    assert client.get("/t/empty") == ""
    assert client.get("/t/missing") is None
    assert client.get_prefix("/t/") == {
        "/t/a": "1",
        "/t/b": '{"node": "node-a1"}',
        "/t/empty": "",
        "/t/zone/é": "ü",
    }
    assert client.delete_prefix("/t/") == 4
    assert client.get_prefix("/t/") == {}
    client.delete("/u")
    assert client.get("/u") is None

    health = etcd.cluster_health(cluster.members)
    assert health.quorum
    assert health.leader == "etcd-a"
    assert health.members[0].healthy and health.members[0].leader
    [member] = client.member_list()
    assert (member.name, member.peer_urls, member.client_urls) == (
        "etcd-a",
        [cluster.members[0].peer_url],
        [cluster.members[0].client_url],
    )
    assert health.members[0].member_id == member.id


@pytest.mark.slow
def test_leader_kill_elects_a_new_leader_within_5_s(make_cluster: Callable[..., Cluster]) -> None:
    """After SIGKILL of the leader the other two elect a new one and writes work again."""
    cluster = make_cluster(3)
    client = cluster.client()
    client.put("/k", "before")
    old_leader = etcd.wait_healthy(cluster.members).leader
    assert old_leader is not None

    cluster.kill(old_leader)
    health: list[etcd.ClusterHealth] = []
    elapsed_s = wait_for(lambda: health.append(etcd.cluster_health(cluster.members)) or health[-1].quorum, 10)
    print(f"quorum back {elapsed_s:.2f} s after the leader was killed")

    assert elapsed_s < 5
    assert health[-1].leader not in (None, old_leader)
    assert not by_name(health[-1], old_leader).healthy
    client.put("/k", "after")
    assert client.get("/k") == "after"


@pytest.mark.slow
def test_losing_two_of_three_members_stops_writes_until_they_return(
    make_cluster: Callable[..., Cluster],
) -> None:
    """Without quorum writes and linearizable reads fail fast; with it back, no data is lost."""
    cluster = make_cluster(3)
    client = cluster.client()
    data = {f"/data/{i}": str(i) for i in range(10)}
    for key, value in data.items():
        client.put(key, value)

    down = [cluster.members[0].name, cluster.members[1].name]
    for name in down:
        cluster.kill(name)
    health = etcd.cluster_health(cluster.members)
    assert not health.quorum
    assert health.leader is None

    started = time.monotonic()
    with pytest.raises(etcd.EtcdUnavailableError):
        client.put("/data/during-outage", "x")
    with pytest.raises(etcd.EtcdUnavailableError):
        client.get("/data/0")
    assert time.monotonic() - started < 5

    for name in down:
        cluster.start(name)
    etcd.wait_healthy(cluster.members, timeout_s=15, require_all=True)
    assert {k: v for k, v in client.get_prefix("/data/").items() if k in data} == data
    client.put("/data/after", "ok")


@pytest.mark.slow
def test_a_frozen_member_is_unhealthy_at_once(make_cluster: Callable[..., Cluster]) -> None:
    """SIGSTOP of the leader: health says so within 2 s, and the others take over."""
    cluster = make_cluster(3)
    client = cluster.client()
    frozen = etcd.wait_healthy(cluster.members).leader
    assert frozen is not None
    process = cluster.processes[frozen]

    os.killpg(process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        health = etcd.cluster_health(cluster.members)
        assert time.monotonic() - started < 2
        assert not by_name(health, frozen).healthy
        assert not by_name(health, frozen).leader

        health = etcd.wait_healthy(cluster.members, timeout_s=10)
        assert health.leader != frozen
        client.put("/k", "written while a member is frozen")
    finally:
        os.killpg(process.pid, signal.SIGCONT)
    etcd.wait_healthy(cluster.members, timeout_s=10, require_all=True)
    assert client.get("/k") == "written while a member is frozen"


@pytest.mark.slow
def test_restored_snapshot_holds_exactly_the_keys_written_before_it(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    """A snapshot restored into a fresh cluster has what was written before it, nothing after."""
    source = make_cluster(1, prefix="source")
    client = source.client()
    before = {f"/drill/before/{i}": str(i) for i in range(20)}
    for key, value in before.items():
        client.put(key, value)
    snapshot = tmp_path / "snapshot.db"
    client.snapshot_save(snapshot)
    client.put("/drill/before/0", "changed after the snapshot")
    client.put("/drill/after/0", "x")

    restored = make_cluster(1, prefix="restored", start=False)
    [spec] = restored.members
    etcd.restore_snapshot(snapshot, spec, restored.members, source.binaries)
    restored.start(spec.name)
    etcd.wait_healthy(restored.members, timeout_s=15)

    restored_client = restored.client()
    assert restored_client.get_prefix("/drill/before/") == before
    assert restored_client.get_prefix("/drill/after/") == {}
    [member] = restored_client.member_list()
    assert member.name == spec.name and member.peer_urls == [spec.peer_url]

    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(snapshot.read_bytes()[:-100])
    with pytest.raises(HarnessError, match="snapshot restore"):
        etcd.restore_snapshot(truncated, spec, restored.members, source.binaries)


@pytest.mark.slow
def test_a_member_with_a_corrupt_db_is_replaced_from_its_peers(
    make_cluster: Callable[..., Cluster],
) -> None:
    """A garbage bbolt file stops the member from starting; replace_member restores all three."""
    cluster = make_cluster(3)
    client = cluster.client()
    data = {f"/data/{i}": str(i) for i in range(10)}
    for key, value in data.items():
        client.put(key, value)
    health = etcd.wait_healthy(cluster.members)
    victim = next(m.name for m in health.members if not m.leader)
    old_id = by_name(health, victim).member_id
    spec = cluster.spec(victim)
    etcd.wait_healthy(cluster.members, require_all=True)  # it has applied the writes before we stop it

    children.stop_group(cluster.processes[victim], grace_s=5)
    db = spec.data_dir / "member" / "snap" / "db"
    db.write_bytes(b"not a bbolt file " * (db.stat().st_size // 17 + 1))
    broken = cluster.start(victim)
    assert broken.wait(10) != 0

    peers = [m.name for m in cluster.members if m.name != victim]
    peer_client = cluster.client(*peers)
    peer_client.put("/data/while-broken", "y")
    data["/data/while-broken"] = "y"

    cluster.adopt(
        victim, etcd.replace_member(spec, cluster.members, cluster.binaries, cluster.log(victim), peer_client)
    )
    health = etcd.wait_healthy(cluster.members, timeout_s=15, require_all=True)

    assert by_name(health, victim).member_id not in (None, old_id)
    assert sorted(m.name for m in client.member_list()) == sorted(m.name for m in cluster.members)
    assert cluster.client(victim).get_prefix("/data/") == data
