"""The testbed's folder and its state file: what runs where, so any process can find it.

    DIR/testbed.json        this file's model (ports, pids, profile); rewritten atomically
    DIR/events.jsonl        ground truth (harness.testbed.groundtruth)
    DIR/faults.json         the ledger of applied faults (harness.testbed.faults)
    DIR/status.json         the controller's view: nodes, replicas, endpoints
    DIR/service.db          the reference service's database (outside every node)
    DIR/etcd/NAME/          etcd data
    DIR/etcd-backups/       scheduled snapshots (harness.testbed.backups)
    DIR/nodes/NODE/         the node agent's files: replicas.json, proxy state, logs
    DIR/logs/               logs of etcd, HAProxy, the controller

Changes to the state file happen under an exclusive lock on DIR/lock, since the CLI,
fault actions and cleanup may run at the same time.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import HarnessError
from harness.testbed.etcd import MemberSpec
from harness.testbed.profiles import Profile

ENV_DIR = "HARNESS_TESTBED_DIR"


def default_dir() -> Path:
    """$HARNESS_TESTBED_DIR, else ~/.cache/harness/testbed."""
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else Path.home() / ".cache" / "harness" / "testbed"


class NotRunningError(HarnessError):
    """There is no testbed in that folder."""


class EtcdMemberState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    zone: str
    client_port: int
    peer_port: int
    pid: int | None = None

    def spec(self, root: Path) -> MemberSpec:
        return MemberSpec(self.name, self.zone, self.client_port, self.peer_port, root / "etcd" / self.name)


class NodeState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    zone: str
    agent_pid: int | None = None
    proxy_pid: int | None = None
    proxy_control_port: int
    egress_ports: dict[str, int]
    """etcd member name -> the port on this node's proxy that leads to it."""


class TestbedState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dir: str
    profile: Profile
    lb_port: int
    haproxy_pid: int | None = None
    controller_pid: int | None = None
    backups_pid: int | None = None
    """The scheduled-snapshot job (harness.testbed.backups) while an experiment runs one."""
    etcd: list[EtcdMemberState]
    nodes: list[NodeState]
    created_t: float

    @property
    def root(self) -> Path:
        return Path(self.dir)

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def db(self) -> str:
        return f"sqlite:///{self.root / 'service.db'}"

    def member_specs(self) -> list[MemberSpec]:
        return [m.spec(self.root) for m in self.etcd]

    def member(self, name: str) -> EtcdMemberState:
        for m in self.etcd:
            if m.name == name:
                return m
        raise HarnessError(f"no etcd member {name!r}; members: {', '.join(m.name for m in self.etcd)}")

    def node(self, name: str) -> NodeState:
        for n in self.nodes:
            if n.name == name:
                return n
        raise HarnessError(f"no node {name!r}; nodes: {', '.join(n.name for n in self.nodes)}")

    def zone_nodes(self, zone: str) -> list[NodeState]:
        nodes = [n for n in self.nodes if n.zone == zone]
        if not nodes:
            raise HarnessError(f"no zone {zone!r}; zones: {', '.join(self.profile.zones)}")
        return nodes

    def client_endpoints(self) -> list[str]:
        return [f"http://127.0.0.1:{m.client_port}" for m in self.etcd]


def state_path(root: Path) -> Path:
    return root / "testbed.json"


def load(root: Path) -> TestbedState:
    path = state_path(root)
    try:
        return TestbedState.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise NotRunningError(f"no testbed in {root} (start one with `harness testbed up`)") from None
    except ValidationError as exc:
        raise HarnessError(f"{path}: not a testbed state file ({exc.errors()[0]['msg']})") from exc


def save(state: TestbedState) -> None:
    path = state_path(state.root)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    os.replace(tmp, path)


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Exclusive lock over the testbed folder's files (state file, ledger)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def write_json(path: Path, data: Any) -> None:
    """Atomic replace, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
