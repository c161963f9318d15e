"""Bring the testbed up, report its status, take it down — the Python API behind `harness testbed`.

`up` starts every part as a detached process (each in its own session) and returns once
the service answers through the load balancer with all replicas in it; the testbed keeps
running after the calling process exits. `down` stops every process group recorded in
the state file and in the node agents' replica files, waits for them, and removes the
folder, so it also works after the harness was SIGKILLed mid-fault.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from harness import children, runlock
from harness.app.server import prepare_database
from harness.app.settings import AppSettings
from harness.errors import HarnessError
from harness.ports import free_port
from harness.testbed import etcd, haproxy
from harness.testbed import state as tbstate
from harness.testbed.faultproxy import Direction, FaultProxyClient, ProxyControlError, Route
from harness.testbed.groundtruth import Event, EventLog
from harness.testbed.profiles import Profile
from harness.testbed.state import EtcdMemberState, NodeState, TestbedState

UP_TIMEOUT_S = 60.0
DOWN_GRACE_S = 2.0
"""SIGTERM first: replicas finish in-flight requests; anything left after this gets SIGKILL."""


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def start_etcd_member(state: TestbedState, member: EtcdMemberState, binaries: etcd.Binaries) -> int:
    specs = state.member_specs()
    spec = member.spec(state.root)
    cmd = etcd.member_command(spec, specs, "new", binaries)
    return children.spawn_detached(cmd, state.root / "logs" / f"{member.name}.log")


def start_proxy(state: TestbedState, node: NodeState) -> int:
    files = state.root / "nodes" / node.name
    cmd = python_module(
        "harness.testbed.faultproxy",
        "--control-port", str(node.proxy_control_port),
        "--state-file", str(files / "proxy.json"),
    )  # fmt: skip
    return children.spawn_detached(cmd, files / "proxy.log")


def start_agent(state: TestbedState, node: NodeState) -> int:
    cmd = python_module("harness.testbed.agent", "--dir", str(state.root), "--node", node.name)
    return children.spawn_detached(cmd, state.root / "nodes" / node.name / "agent.log")


def wait_proxy(node: NodeState, timeout_s: float = 15.0) -> None:
    client = FaultProxyClient(f"http://127.0.0.1:{node.proxy_control_port}")
    try:
        deadline = time.monotonic() + timeout_s
        while not client.healthy():
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"the fault proxy of {node.name} did not start; see nodes/{node.name}/proxy.log"
                )
            time.sleep(0.05)
    finally:
        client.close()


def _add_egress_route(
    proxy: FaultProxyClient, node: NodeState, member: EtcdMemberState, attempts: int = 5
) -> None:
    """The node's route to an etcd member, on the port chosen for it or, if that port was taken
    meanwhile (it was free when picked, seconds earlier; an outgoing connection may have got it
    as its ephemeral port since), on a fresh one; the state keeps the port that was bound."""
    for attempt in range(attempts):
        try:
            proxy.add_route(Route(name=f"to-{member.name}", listen_port=node.egress_ports[member.name],
                                  target_port=member.client_port, direction=Direction.EGRESS))  # fmt: skip
            return
        except ProxyControlError as exc:
            if exc.status != 409 or attempt == attempts - 1:
                raise
            node.egress_ports[member.name] = free_port()


def up(
    profile: Profile, root: Path, lb_port: int | None = None, timeout_s: float = UP_TIMEOUT_S
) -> TestbedState:
    """Start a testbed in `root`; if one is already running there with this profile, return it.

    The load balancer listens on `lb_port`, or on a free port when None: a fixed default would
    keep a second testbed (another folder) from running beside the first."""
    root = root.resolve()
    try:
        existing = tbstate.load(root)
    except tbstate.NotRunningError:
        existing = None
    if existing is not None:
        if running(existing):
            if existing.profile.name != profile.name:
                raise HarnessError(
                    f"a {existing.profile.name} testbed is running in {root}; `harness testbed down` first"
                )
            return existing
        down(root)
    lb_port = lb_port or free_port()
    binaries = etcd.find_binaries()
    haproxy.find_haproxy()
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    members = [
        EtcdMemberState(name=f"etcd-{zone.removeprefix('zone-')}", zone=zone, client_port=free_port(),
                        peer_port=free_port())
        for zone in profile.etcd_zones
    ]  # fmt: skip
    nodes = [
        NodeState(name=name, zone=zone, proxy_control_port=free_port(),
                  egress_ports={m.name: free_port() for m in members})
        for name, zone in profile.node_names()
    ]  # fmt: skip
    state = TestbedState(
        dir=str(root), profile=profile, lb_port=lb_port, etcd=members, nodes=nodes, created_t=time.time()
    )
    events = EventLog(root / "events.jsonl", source="testbed")
    try:
        with tbstate.locked(root):
            tbstate.save(state)
            for m in state.etcd:
                m.pid = start_etcd_member(state, m, binaries)
            state.haproxy_pid = haproxy.start_detached(
                lb_port, root, profile.lb_health_checks, root / "logs" / "haproxy.log"
            )
            for n in state.nodes:
                n.proxy_pid = start_proxy(state, n)
            tbstate.save(state)
        prepare_database(AppSettings(db=state.db))
        etcd.wait_healthy(state.member_specs(), timeout_s=15)
        for n in state.nodes:
            wait_proxy(n)
            proxy = FaultProxyClient(f"http://127.0.0.1:{n.proxy_control_port}")
            try:
                for m in state.etcd:
                    _add_egress_route(proxy, n, m)
            finally:
                proxy.close()
        with tbstate.locked(root):
            tbstate.save(state)  # the egress ports as bound, before the agents read them
        with tbstate.locked(root):
            state.controller_pid = children.spawn_detached(
                python_module("harness.testbed.controller", "--dir", str(root)),
                root / "logs" / "controller.log",
            )
            for n in state.nodes:
                n.agent_pid = start_agent(state, n)
            tbstate.save(state)
        wait_serving(state, timeout_s)
    except BaseException:
        down(root, keep=True)
        raise
    events.record(Event.TESTBED_UP, profile=profile.name, lb_url=state.lb_url)
    return state


def wait_serving(state: TestbedState, timeout_s: float) -> None:
    """Until every replica is an endpoint and the load balancer answers /readyz."""
    deadline = time.monotonic() + timeout_s
    last = "nothing yet"
    while time.monotonic() < deadline:
        if dead := _exited_part(state):
            raise HarnessError(f"the testbed in {state.root} did not start: {dead}")
        endpoints = tbstate.read_json(state.root / "status.json", {}).get("endpoints", [])
        if len(endpoints) >= state.profile.replicas:
            try:
                if httpx.get(state.lb_url + "/readyz", timeout=1).status_code == 200:
                    return
                last = "the load balancer does not answer 200"
            except httpx.HTTPError as exc:
                last = f"the load balancer: {exc}"
        else:
            last = f"{len(endpoints)} of {state.profile.replicas} replicas are endpoints"
        time.sleep(0.1)
    raise HarnessError(f"the testbed in {state.root} was not serving within {timeout_s:.0f} s: {last}")


def _exited_part(state: TestbedState) -> str | None:
    """Which of the load balancer and the controller has exited, with the first alert of its log
    (else its first line).

    Waiting out the timeout for a part that is gone hides the reason (a port in use, most often).
    """
    for name, pid, log in (
        ("HAProxy", state.haproxy_pid, "haproxy.log"),
        ("the controller", state.controller_pid, "controller.log"),
    ):
        if pid and not children.group_alive(pid):
            path = state.root / "logs" / log
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            alerts = [line for line in lines if "ALERT" in line or "Error" in line] or lines
            return f"{name} exited ({path}): {alerts[0].strip() if alerts else 'no log'}"
    return None


def running(state: TestbedState) -> bool:
    pids = [state.haproxy_pid, state.controller_pid] + [n.agent_pid for n in state.nodes]
    return all(p and children.group_alive(p) for p in pids)


def all_pids(state: TestbedState) -> list[int]:
    """Every process group the testbed may have running, replicas included."""
    pids: list[int | None] = [state.controller_pid, state.haproxy_pid, state.backups_pid]
    for n in state.nodes:
        pids += [n.agent_pid, n.proxy_pid]
        replicas = tbstate.read_json(state.root / "nodes" / n.name / "replicas.json", {})
        pids += [info.get("pid") for info in replicas.values()]
    pids += [m.pid for m in state.etcd]
    return [p for p in pids if p]


def down(root: Path, keep: bool = False) -> bool:
    """Stop everything of the testbed in `root` and remove the folder; False if there was none."""
    root = root.resolve()
    try:
        state = tbstate.load(root)
    except tbstate.NotRunningError:
        return False
    pids = all_pids(state)
    for pid in pids:
        children.signal_group(pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        children.signal_group(pid, signal.SIGTERM)
    left = children.wait_gone(pids, DOWN_GRACE_S)
    for pid in left:
        children.kill_group(pid)
    children.wait_gone(left, 2.0)
    EventLog(root / "events.jsonl", source="testbed").record(Event.TESTBED_DOWN)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        tbstate.state_path(root).unlink(missing_ok=True)
    return True


@contextmanager
def open_testbed(profile: Profile, root: Path, lb_port: int | None = None) -> Iterator[TestbedState]:
    """A testbed for the duration of a block (tests, the engine); always taken down."""
    state = up(profile, root, lb_port=lb_port)
    try:
        yield state
    finally:
        down(root, keep=True)


def status(root: Path) -> dict[str, Any]:
    """What `harness testbed status --json` prints."""
    state = tbstate.load(root.resolve())
    health = etcd.cluster_health(state.member_specs(), timeout_s=0.5)
    seen = tbstate.read_json(state.root / "status.json", {})
    nodes = seen.get("nodes", {})
    return {
        "profile": state.profile.name.value,
        "dir": state.dir,
        "lb_url": state.lb_url,
        "running": running(state),
        "etcd": {
            "members": [
                {"name": m.name, "zone": m.zone, "healthy": m.healthy, "leader": m.leader}
                for m in health.members
            ],
            "quorum": health.quorum,
            "leader": health.leader,
        },
        "nodes": [
            {
                "name": n.name,
                "zone": n.zone,
                "ready": bool(nodes.get(n.name, {}).get("ready")),
                "replicas": nodes.get(n.name, {}).get("replicas", []),
            }
            for n in state.nodes
        ],
        "endpoints": seen.get("endpoints", []),
        "status_age_s": round(time.time() - seen["t"], 3) if "t" in seen else None,
        "lock": _lock_status(state.root),
    }


def _lock_status(root: Path) -> dict[str, Any] | None:
    """The live run holding the folder's run lock, with a line that names it; None when free."""
    holder = runlock.holder(root)
    return None if holder is None else {**holder, "described": runlock.describe(holder)}
