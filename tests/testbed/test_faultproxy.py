"""The fault proxy as a real process, over real sockets on 127.0.0.1: routes, each fault, restart.

Behind every route is an echo server in this process, so a round trip is one chunk each way
and the echo server counts the connections that actually reached a target.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness import children
from harness.errors import HarnessError
from harness.ports import free_port
from harness.testbed.faultproxy import (
    Direction,
    FaultProxyClient,
    FaultSpec,
    ProxyControlError,
    Route,
    start_proxy,
)

LOCALHOST = "127.0.0.1"


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.reached()  # type: ignore[attr-defined]
        self.request.settimeout(10)  # bounded: every test closes its connections well before
        with suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__((LOCALHOST, 0), _EchoHandler)
        self.connections = 0
        self._lock = threading.Lock()

    def reached(self) -> None:
        with self._lock:
            self.connections += 1

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextmanager
def open_echo() -> Iterator[_EchoServer]:
    server = _EchoServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()  # joins the handler threads; the proxy has closed their sockets
        thread.join(5)


@dataclass
class Proxy:
    process: subprocess.Popen
    client: FaultProxyClient
    control_port: int

    def route(self, name: str, target_port: int, direction: Direction = Direction.INGRESS) -> int:
        """Add a route on a free port to target_port; returns the listen port."""
        port = free_port()
        self.client.add_route(
            Route(name=name, listen_port=port, target_port=target_port, direction=direction)
        )
        return port


@pytest.fixture
def echo() -> Iterator[_EchoServer]:
    with open_echo() as server:
        yield server


@pytest.fixture
def proxy(echo: _EchoServer, tmp_path: Path) -> Iterator[Proxy]:
    """A proxy process (stopped before the echo server, so that no handler is left waiting)."""
    port = free_port()
    process = start_proxy(port, tmp_path / "proxy.log")
    client = FaultProxyClient(f"http://{LOCALHOST}:{port}")
    try:
        yield Proxy(process, client, port)
    finally:
        client.close()
        children.stop_group(process, grace_s=5)


def round_trip_s(sock: socket.socket, payload: bytes = b"ping", timeout_s: float = 3.0) -> float:
    """Send payload, read it back in full; seconds taken."""
    sock.settimeout(timeout_s)
    started = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - started


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(65536, n - got))
        if not chunk:
            raise EOFError(f"connection closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def connect(port: int, timeout_s: float = 3.0) -> socket.socket:
    return socket.create_connection((LOCALHOST, port), timeout=timeout_s)


def assert_silent(*socks: socket.socket, wait_s: float = 1.0) -> None:
    """None of the sockets has anything to read (or a close) within wait_s."""
    readable, _, _ = select.select(list(socks), [], [], wait_s)
    assert readable == [], "expected no answer"


def test_bytes_pass_unchanged_and_routes_change_at_run_time(proxy: Proxy, echo: _EchoServer) -> None:
    """A megabyte of random bytes comes back unchanged; a removed route refuses new connections
    and resets its open ones; another route added meanwhile keeps working."""
    first = proxy.route("subs-1", echo.port)
    payload = os.urandom(1 << 20)
    with connect(first) as sock, connect(first) as kept:
        sock.settimeout(5)
        for i in range(0, len(payload), 64 * 1024):
            chunk = payload[i : i + 64 * 1024]
            sock.sendall(chunk)
            assert recv_exactly(sock, len(chunk)) == chunk
        round_trip_s(kept)
        stats = proxy.client.state()["stats"]["subs-1"]
        assert stats["bytes_to_target"] == stats["bytes_to_client"] == len(payload) + 4
        assert stats["connections_total"] == 2

        second = proxy.route("subs-2", echo.port)
        proxy.client.remove_route("subs-1")
        with pytest.raises(ConnectionRefusedError):
            connect(first).close()
        with pytest.raises((ConnectionResetError, BrokenPipeError, EOFError)):
            round_trip_s(kept)
        with connect(second) as other:
            assert round_trip_s(other) < 0.5
    proxy.client.remove_route("subs-1")  # already gone: no error, so rollbacks can repeat it
    assert [r["name"] for r in proxy.client.state()["routes"]] == ["subs-2"]


def test_control_api_refuses_bad_routes_and_faults(proxy: Proxy, echo: _EchoServer) -> None:
    """An invalid body is a 400, a port in use a 409 with the reason; the proxy stays as it was."""
    port = proxy.route("subs-1", echo.port)
    with pytest.raises(ProxyControlError) as conflict:
        proxy.client.add_route(
            Route(name="subs-2", listen_port=port, target_port=echo.port, direction="ingress")
        )
    assert conflict.value.status == 409 and str(port) in conflict.value.problem
    with socket.socket() as taken:
        taken.bind((LOCALHOST, 0))
        taken.listen()
        busy = Route(
            name="subs-3", listen_port=taken.getsockname()[1], target_port=echo.port, direction="ingress"
        )
        with pytest.raises(ProxyControlError) as in_use:
            proxy.client.add_route(busy)
        assert in_use.value.status == 409
    with httpx.Client(base_url=f"http://{LOCALHOST}:{proxy.control_port}", trust_env=False) as http:
        bad = http.put("/routes/subs-4", json={"name": "subs-4", "listen_port": 0, "target_port": 1})
        assert bad.status_code == 400 and "listen_port" in bad.json()["error"]
        assert http.put("/faults/sideways", json={}).status_code == 400
        assert http.put("/faults/ingress", json={"loss": 2}).status_code == 400
    assert [r["name"] for r in proxy.client.state()["routes"]] == ["subs-1"]
    assert proxy.client.state()["faults"]["ingress"] == FaultSpec().model_dump()


def test_latency_delays_each_way_on_open_connections(proxy: Proxy, echo: _EchoServer) -> None:
    """200 ± 20 ms each way makes a round trip 360 to 1000 ms, also on a connection opened before;
    clearing faults brings it back under 50 ms."""
    port = proxy.route("subs-1", echo.port)
    with connect(port) as before:
        assert round_trip_s(before) < 0.05
        proxy.client.set_faults(Direction.INGRESS, FaultSpec(latency_ms=200, jitter_ms=20))
        with connect(port) as after:
            for sock in (before, after):
                assert 0.35 <= round_trip_s(sock) < 1.0
        proxy.client.clear_faults()
        assert round_trip_s(before) < 0.05
        with connect(port) as cleared:
            assert round_trip_s(cleared) < 0.05


def test_faults_apply_per_direction(proxy: Proxy, echo: _EchoServer) -> None:
    """Latency on egress slows the egress route and leaves the ingress route fast."""
    ingress = proxy.route("subs-1", echo.port)
    egress = proxy.route("to-etcd-a", echo.port, Direction.EGRESS)
    proxy.client.set_faults(Direction.EGRESS, FaultSpec(latency_ms=150))
    with connect(ingress) as fast, connect(egress) as slow:
        assert round_trip_s(fast) < 0.05
        assert 0.28 <= round_trip_s(slow) < 1.0
    faults = proxy.client.state()["faults"]
    assert faults["egress"]["latency_ms"] == 150 and faults["ingress"]["latency_ms"] == 0


def test_loss_resets_about_that_fraction_of_new_connections(proxy: Proxy, echo: _EchoServer) -> None:
    """With loss 0.5 (reset), 30 to 70 % of 200 new connections are reset, the rest answer."""
    port = proxy.route("subs-1", echo.port)
    proxy.client.set_faults(Direction.INGRESS, FaultSpec(loss=0.5, loss_mode="reset"))
    answered = reset = 0
    for _ in range(200):
        try:
            with connect(port) as sock:  # the reset may arrive while connect() is still checking
                round_trip_s(sock, b"x")
            answered += 1
        except (ConnectionResetError, BrokenPipeError):
            reset += 1
    assert answered + reset == 200
    assert 60 <= reset <= 140
    assert proxy.client.state()["stats"]["subs-1"]["connections_reset"] == reset
    assert echo.connections == answered


def test_loss_by_drop_leaves_the_client_waiting(proxy: Proxy, echo: _EchoServer) -> None:
    """With loss_mode drop, a new connection is accepted but gets no answer within 1 s and never
    reaches the target."""
    port = proxy.route("subs-1", echo.port)
    proxy.client.set_faults(Direction.INGRESS, FaultSpec(loss=1.0, loss_mode="drop"))
    with connect(port) as sock:
        sock.sendall(b"hello?")
        assert_silent(sock)
    assert echo.connections == 0
    assert proxy.client.state()["stats"]["subs-1"]["connections_dropped"] == 1


def test_blackhole_silences_open_and_new_connections_until_lifted(proxy: Proxy, echo: _EchoServer) -> None:
    """During a blackhole an open connection gets no replies and a new one no answer (it is held,
    not dialled); once lifted, what was held is delivered, except from clients that gave up,
    and new connections work."""
    port = proxy.route("subs-1", echo.port)
    with connect(port) as before:
        round_trip_s(before)
        proxy.client.set_faults(Direction.INGRESS, FaultSpec(blackhole=True))
        with connect(port) as held:
            before.sendall(b"during")
            held.sendall(b"held")
            with connect(port) as gave_up:
                gave_up.sendall(b"stale")
            assert_silent(before, held)
            stats = proxy.client.state()["stats"]["subs-1"]
            assert stats["connections_held"] == 1 and echo.connections == 1
            proxy.client.clear_faults()
            before.settimeout(2)
            held.settimeout(2)
            assert recv_exactly(before, 6) == b"during"  # resumed, in order
            assert recv_exactly(held, 4) == b"held"
            with connect(port) as after:
                assert round_trip_s(after) < 0.05
            assert echo.connections == 3  # before, held, after: not the one that gave up


@pytest.mark.slow
def test_bandwidth_limits_throughput(proxy: Proxy, echo: _EchoServer) -> None:
    """At 200 kbit/s, 100 kB through an echo (both ways limited, pipelined) takes about 4 s."""
    port = proxy.route("subs-1", echo.port)
    proxy.client.set_faults(Direction.INGRESS, FaultSpec(bandwidth_kbps=200))
    payload = os.urandom(100_000)
    with connect(port) as sock:
        elapsed = round_trip_s(sock, payload, timeout_s=10)
    assert 3.0 <= elapsed <= 6.0


@pytest.mark.slow
def test_state_file_brings_routes_and_faults_back_after_kill(echo: _EchoServer, tmp_path: Path) -> None:
    """A proxy killed with SIGKILL and started again on its state file has its routes and faults;
    SIGTERM then stops it promptly with exit code 0, even with a held connection open."""
    control_port, listen_port = free_port(), free_port()
    state_file = tmp_path / "proxy.json"
    route = Route(name="subs-1", listen_port=listen_port, target_port=echo.port, direction=Direction.INGRESS)
    slow = FaultSpec(latency_ms=100)
    process = start_proxy(control_port, tmp_path / "proxy.log", state_file)
    try:
        with FaultProxyClient(f"http://{LOCALHOST}:{control_port}") as client:
            client.add_route(route)
            client.set_faults(Direction.INGRESS, slow)
            client.set_faults(Direction.EGRESS, FaultSpec(blackhole=True))
            before = client.state()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    finally:
        children.stop_group(process, grace_s=5)

    process = start_proxy(control_port, tmp_path / "proxy.log", state_file)
    try:
        with FaultProxyClient(f"http://{LOCALHOST}:{control_port}") as client:
            after = client.state()
            assert after["routes"] == before["routes"] == [route.model_dump(mode="json")]
            assert after["faults"] == before["faults"]
            with connect(listen_port) as sock:
                assert 0.18 <= round_trip_s(sock) < 1.0
            client.set_faults(Direction.INGRESS, FaultSpec(blackhole=True))
            with connect(listen_port) as held:
                held.sendall(b"x")
                started = time.monotonic()
                assert children.stop_group(process, grace_s=5) == 0
                assert time.monotonic() - started < 2.0
    finally:
        children.stop_group(process, grace_s=5)


def test_start_fails_on_a_bad_state_file_or_a_taken_port(proxy: Proxy, tmp_path: Path) -> None:
    """A state file that is not a proxy state, or a control port another proxy answers on, makes
    start_proxy fail with the log to read (not mistake the other proxy for its own)."""
    state_file = tmp_path / "bad.json"
    state_file.write_text('{"routes": [{"name": "subs-1"}]}')
    with pytest.raises(HarnessError, match="exited with code 2"):
        start_proxy(free_port(), tmp_path / "bad.log", state_file)
    assert "cannot restore" in (tmp_path / "bad.log").read_text()
    with pytest.raises(HarnessError, match="exited with code 2"):
        start_proxy(proxy.control_port, tmp_path / "second.log")
    assert "cannot listen" in (tmp_path / "second.log").read_text()
    assert proxy.client.healthy()


def test_testbed_egress_route_moves_off_a_port_taken_since_it_was_picked(
    proxy: Proxy, echo: _EchoServer
) -> None:
    """Bring-up picks ports seconds before binding them; one taken meanwhile (an outgoing
    connection's ephemeral port) must not fail the testbed: the route takes a fresh port and the
    node's state records the one really bound."""
    from harness.testbed.cluster import _add_egress_route
    from harness.testbed.state import EtcdMemberState, NodeState

    with socket.socket() as squatter:
        squatter.bind((LOCALHOST, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        member = EtcdMemberState(name="etcd-a", zone="zone-a", client_port=echo.port, peer_port=free_port())
        node = NodeState(name="node-a1", zone="zone-a", proxy_control_port=proxy.control_port,
                         egress_ports={"etcd-a": taken})  # fmt: skip
        _add_egress_route(proxy.client, node, member)
    bound = node.egress_ports["etcd-a"]
    assert bound != taken
    with connect(bound) as sock:
        assert round_trip_s(sock) < 1.0  # the route works, on the new port
