"""A fault-injecting TCP proxy: one per testbed node, on every path into and out of the node.

Kernel netem needs root and is not available everywhere, so each testbed node carries its
traffic through this userspace proxy instead: *ingress* routes (HAProxy → the replicas on the
node, their "pod IPs") and *egress* routes (the node agent → etcd). `harness.testbed.cluster`
starts one per node, the node agent adds and removes ingress routes as replicas are
(re)scheduled, and the network-fault activities set faults per direction, all through
`FaultProxyClient`. The process runs as

    python -m harness.testbed.faultproxy --control-port PORT [--state-file PATH]

and answers a small HTTP/1.1 JSON API on 127.0.0.1:PORT (see `_ControlServer`). Faults apply
to every route of a direction, to new and existing connections:

- latency_ms ± jitter_ms: each chunk read is delayed, each way, and waits for the chunk
  before it (netem's jitter reorders packets, which TCP hides from a stream anyway);
- loss: that fraction of new connections is lost, by reset (accept, then RST) or by drop
  (accept, then silence until the client gives up);
- blackhole: a partition (see `FaultSpec.blackhole` for what is held and what resumes);
- bandwidth_kbps: one token bucket per direction and way, shared by all its connections.

What a userspace proxy cannot do: the kernel completes the TCP handshake before the proxy
sees a connection, so while a route exists a client's connect() succeeds at once, whatever the
faults; a lost or partitioned connection is accepted and then reset or held silent, never a
dropped SYN, and latency is not added to the handshake.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness import children
from harness.errors import HarnessError

log = logging.getLogger("harness.testbed.faultproxy")

HOST = "127.0.0.1"
"""Everything listens on loopback only: the testbed is one machine and must not be reachable."""
CONNECT_TIMEOUT_S = 5.0
"""How long a dial to a route's target may take before the client is reset (a dead replica)."""
QUEUE_LIMIT_BYTES = 1 << 20
"""Bytes a stream may hold while delayed or partitioned before the proxy stops reading it.

About netem's default queue (1000 packets), so that a 200 ms delay still carries ~5 MB/s per
connection; beyond it the sender's TCP window fills, as it would behind a slow link.
"""
BURST_S = 0.05
"""A bandwidth limit lets this much time's worth of bytes through at once (and no more per write)."""
MIN_BURST_BYTES = 1024
"""Floor of the burst, so that a very low limit still moves whole small messages."""
CONTROL_IDLE_TIMEOUT_S = 60.0
"""An idle control connection is closed after this long (httpx reconnects transparently)."""
CONTROL_MAX_BODY_BYTES = 1 << 20
READY_TIMEOUT_S = 15.0
"""How long `start_proxy` waits for /healthz; the proxy starts in well under a second."""
STOP_TIMEOUT_S = 5.0
LISTEN_BACKLOG = 1024
"""Well above asyncio's 100, so that a burst of connections from HAProxy queues at the replica
(whose backlog is what a test measures), not at the proxy in front of it."""


class Direction(StrEnum):
    INGRESS = "ingress"
    """Into the node: the load balancer → the replicas on it."""
    EGRESS = "egress"
    """Out of the node: the node agent → the etcd control plane."""


class FaultSpec(BaseModel):
    """The network faults of one direction of a node; the default is a healthy network."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    """Added to every chunk, each way: a request/response round trip gains twice this."""
    jitter_ms: float = Field(default=0.0, ge=0)
    """The delay is uniform in latency_ms ± jitter_ms, clamped at 0; order is preserved."""
    loss: float = Field(default=0.0, ge=0, le=1)
    """Fraction of new connections lost; existing connections are not affected (TCP would
    retransmit lost packets of an established stream, which shows up as latency instead)."""
    loss_mode: Literal["reset", "drop"] = "reset"
    """reset: accept, then RST (SO_LINGER 0), as a crashed peer; drop: accept, then never
    answer, so the client runs into its own timeout."""
    blackhole: bool = False
    """A partition: nothing is forwarded either way, on new or existing connections.

    The proxy cannot drop SYNs, so new connections are accepted and held silent; the target is
    not dialled while the blackhole lasts. Bytes keep being read into the connection's queue
    (up to QUEUE_LIMIT_BYTES, then the sender's window fills) but none are sent. Removing the
    blackhole resumes what was held, in order: queued bytes are delivered and held connections
    dialled, as TCP retransmission would deliver once a partition heals; a FIN is delivered
    after its data, as an orphaned socket's retransmissions would be. What TCP would not
    deliver is dropped: a held connection whose client closes or resets gave up before its
    handshake could complete, so it is closed and never dialled (no stale request reaches the
    target after the heal); a connection reset during the blackhole loses what it had queued
    that way, as an abortive close discards the send queue.
    """
    bandwidth_kbps: float | None = Field(default=None, gt=0)
    """Kilobits (1000 bits) per second, per way, shared by all connections of the direction;
    None for no limit."""


class Route(BaseModel):
    """One listener of the proxy and where its connections go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """Unique per proxy (the replica id, `to-etcd-a`); it is also the control API's path segment."""
    listen_port: int = Field(ge=1, le=65535)
    target_host: str = HOST
    target_port: int = Field(ge=1, le=65535)
    direction: Direction


class _SavedState(BaseModel):
    """What --state-file holds, so that a restarted proxy comes back as it was."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    routes: list[Route] = []
    faults: dict[Direction, FaultSpec] = {}


# --- the data path ------------------------------------------------------------------------


class _Marker(StrEnum):
    """What ends a stream, queued behind its data so that it keeps its place."""

    EOF = "eof"
    RESET = "reset"


class _TokenBucket:
    """Bytes per second with a burst of BURST_S; waiters poll, so a lifted limit frees them."""

    def __init__(self, kbps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_bytes_s = kbps * 1000 / 8
        self.burst_bytes = max(MIN_BURST_BYTES, int(self.rate_bytes_s * BURST_S))
        self.retired = False
        """Set when the limit changes or is lifted: its waiters pass at once."""
        self._tokens = float(self.burst_bytes)
        self._clock = clock
        self._updated = clock()

    async def take(self, n: int) -> None:
        """Wait until n (at most burst_bytes) bytes may pass."""
        while not self.retired:
            now = self._clock()
            self._tokens = min(self.burst_bytes, self._tokens + (now - self._updated) * self.rate_bytes_s)
            self._updated = now
            if self._tokens >= n:
                self._tokens -= n
                return
            await asyncio.sleep(min(BURST_S, (n - self._tokens) / self.rate_bytes_s))


class _Faults:
    """The live faults of one direction; every connection of the direction reads them per chunk."""

    def __init__(self, rng: random.Random) -> None:
        self.spec = FaultSpec()
        self.passthrough = True
        """No delay, limit or blackhole: chunks go straight through without a queue."""
        self.open = asyncio.Event()
        """Set unless a blackhole is on; held traffic waits on it."""
        self.open.set()
        self.buckets: dict[str, _TokenBucket] = {}
        self._rng = rng

    def apply(self, spec: FaultSpec) -> None:
        old, self.spec = self.spec, spec
        self.passthrough = not (spec.latency_ms or spec.jitter_ms or spec.blackhole or spec.bandwidth_kbps)
        if spec.blackhole:
            self.open.clear()
        else:
            self.open.set()
        if spec.bandwidth_kbps != old.bandwidth_kbps:
            for bucket in self.buckets.values():
                bucket.retired = True
            self.buckets = {}
            if spec.bandwidth_kbps is not None:
                self.buckets = {way: _TokenBucket(spec.bandwidth_kbps) for way in ("up", "down")}

    def delay_s(self) -> float:
        latency_ms, jitter_ms = self.spec.latency_ms, self.spec.jitter_ms
        if jitter_ms:
            latency_ms = max(0.0, self._rng.uniform(latency_ms - jitter_ms, latency_ms + jitter_ms))
        return latency_ms / 1000

    def lose(self) -> bool:
        return self.spec.loss > 0 and self._rng.random() < self.spec.loss


@dataclass
class _RouteStats:
    connections_total: int = 0
    connections_active: int = 0
    connections_held: int = 0
    """Accepted during a blackhole and not yet dialled."""
    connections_reset: int = 0
    """Lost to loss_mode reset."""
    connections_dropped: int = 0
    """Lost to loss_mode drop."""
    target_errors: int = 0
    """Dials to the target that failed or timed out (the client was reset)."""
    bytes_to_target: int = 0
    bytes_to_client: int = 0


@dataclass
class _RouteState:
    route: Route
    faults: _Faults
    stats: _RouteStats
    connections: set[_Connection]
    server: asyncio.AbstractServer | None = None


def _reset(transport: asyncio.BaseTransport) -> None:
    """Close with an RST rather than a FIN (SO_LINGER 0), as a crashed or vanished peer would."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):  # already gone: nothing left to reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: the client's (accepted) or the target's (dialled)."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.transport: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self._pauses: set[str] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connection.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.connection.side_data(self, data)

    def eof_received(self) -> bool:
        self.connection.side_end(self, _Marker.EOF)
        return True  # keep the socket half-open: the other way may still be talking

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()  # nobody waits on a dead socket
        self.connection.side_end(self, _Marker.RESET if exc is not None else _Marker.EOF)

    def pause_writing(self) -> None:
        self.writable.clear()
        self.connection.peer_writable(self, False)

    def resume_writing(self) -> None:
        self.writable.set()
        self.connection.peer_writable(self, True)

    def pause(self, reason: str) -> None:
        """Stop reading for `reason`; reading resumes once no reason is left."""
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._pauses.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self._pauses:
            return
        self._pauses.discard(reason)
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class _Flow:
    """One way of a connection: chunks from src to dst, straight through or via a delay queue.

    Without faults a chunk is written as it is read (no task, no queue). Otherwise it is queued
    with its due time (never earlier than the chunk before it, so order holds) and one task
    sends the queue, waiting for the due time, the blackhole to lift and the bandwidth bucket.
    """

    def __init__(self, connection: _Connection, way: Literal["up", "down"]) -> None:
        self.connection = connection
        self.way = way
        self.src: _Side | None = None
        self.dst: _Side | None = None
        self.queue: collections.deque[tuple[float, bytes | _Marker]] = collections.deque()
        self.queued_bytes = 0
        self.task: asyncio.Task[None] | None = None
        self.ended = False
        self._last_due = 0.0

    def feed(self, item: bytes | _Marker) -> None:
        faults = self.connection.route.faults
        if self.task is None and not self.queue and self.dst is not None and faults.passthrough:
            self._send_now(item)
            return
        due = max(asyncio.get_running_loop().time() + faults.delay_s(), self._last_due)
        self._last_due = due
        self.queue.append((due, item))
        if isinstance(item, bytes):
            self.queued_bytes += len(item)
            if self.queued_bytes >= QUEUE_LIMIT_BYTES and self.src is not None:
                self.src.pause("queue")
        self.kick()

    def kick(self) -> None:
        """Start the sending task if there is something to send and somewhere to send it."""
        if self.task is None and self.queue and self.dst is not None and not self.connection.closed:
            self.task = asyncio.get_running_loop().create_task(self._send_queue())

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.queue.clear()

    def _send_now(self, item: bytes | _Marker) -> None:
        assert self.dst is not None and self.dst.transport is not None
        if item is _Marker.RESET:
            self.connection.close(reset=True)
        elif item is _Marker.EOF:
            if not self.dst.transport.is_closing() and self.dst.transport.can_write_eof():
                self.dst.transport.write_eof()
            self.ended = True
            self.connection.flow_ended()
        elif not self.dst.transport.is_closing():
            self.dst.transport.write(item)  # type: ignore[arg-type]

    async def _send_queue(self) -> None:
        loop = asyncio.get_running_loop()
        faults = self.connection.route.faults
        try:
            while self.queue and not self.connection.closed:
                due, item = self.queue.popleft()
                if isinstance(item, bytes):
                    self.queued_bytes -= len(item)
                    if self.queued_bytes < QUEUE_LIMIT_BYTES and self.src is not None:
                        self.src.resume("queue")
                if (wait_s := due - loop.time()) > 0:
                    await asyncio.sleep(wait_s)
                await faults.open.wait()
                if not isinstance(item, bytes):
                    self._send_now(item)
                    continue
                view = memoryview(item)
                while view and not self.connection.closed:
                    bucket = faults.buckets.get(self.way)
                    n = len(view) if bucket is None else min(len(view), bucket.burst_bytes)
                    if bucket is not None:
                        await bucket.take(n)
                    await faults.open.wait()
                    assert self.dst is not None
                    await self.dst.writable.wait()
                    self._send_now(bytes(view[:n]))
                    view = view[n:]
        finally:
            self.task = None


class _Connection:
    """A client connection on a route and, once dialled, its connection to the target."""

    def __init__(self, route: _RouteState) -> None:
        self.route = route
        self.client = _Side(self)
        self.target: _Side | None = None
        self.up = _Flow(self, "up")
        self.down = _Flow(self, "down")
        self.closed = False
        self.dropped = False
        self.held = False
        """Accepted during a blackhole and not dialled yet (in reality: SYNs still unanswered)."""
        self._dial: asyncio.Task[None] | None = None

    # callbacks from the two sides
    def side_made(self, side: _Side) -> None:
        if side is self.client:
            self._accepted()
            return
        if self.closed:  # removed while the dial was completing
            assert side.transport is not None
            _reset(side.transport)
            return
        self.target = side
        self.up.dst = side
        self.down.src, self.down.dst = side, self.client
        self.up.kick()

    def side_data(self, side: _Side, data: bytes) -> None:
        if self.dropped or self.closed:
            return
        if side is self.client:
            self.route.stats.bytes_to_target += len(data)
            self.up.feed(data)
        else:
            self.route.stats.bytes_to_client += len(data)
            self.down.feed(data)

    def side_end(self, side: _Side, marker: _Marker) -> None:
        """EOF or reset from a side: passed on behind its data; a reset also kills the other way."""
        if self.closed:
            return
        if self.dropped or (
            side is self.client and (self.held or (self.target is None and marker is _Marker.RESET))
        ):
            # A held client that closes gave up before its handshake could have completed: none
            # of it would ever have reached the target, so it is not dialled.
            self.close(reset=marker is _Marker.RESET)
            return
        flow = self.up if side is self.client else self.down
        if marker is _Marker.RESET:
            (self.down if flow is self.up else self.up).cancel()  # nothing can reach this side now
            if flow.ended:  # its EOF went out already; the reset ends the connection
                self.close(reset=True)
                return
            if not self.route.faults.open.is_set():
                # An abortive close discards the socket's unsent data: what the blackhole held
                # of this way is lost; the reset itself reaches the other side when it lifts.
                flow.queue.clear()
                flow.queued_bytes = 0
        if not flow.ended and not any(item is marker for _, item in flow.queue):
            flow.feed(marker)

    def peer_writable(self, side: _Side, writable: bool) -> None:
        """Backpressure: while a side's write buffer is full, stop reading from the other side."""
        flow = self.down if side is self.client else self.up
        if flow.src is not None:
            if writable:
                flow.src.resume("peer")
            else:
                flow.src.pause("peer")

    def flow_ended(self) -> None:
        if self.up.ended and self.down.ended:
            self.close(reset=False)

    # life cycle
    def _accepted(self) -> None:
        stats, faults = self.route.stats, self.route.faults
        self.route.connections.add(self)
        stats.connections_total += 1
        stats.connections_active += 1
        if faults.lose():
            if faults.spec.loss_mode == "reset":
                stats.connections_reset += 1
                self.close(reset=True)
            else:
                stats.connections_dropped += 1
                self.dropped = True  # read and discard until the client gives up
            return
        self.up.src = self.client
        self._dial = asyncio.get_running_loop().create_task(self._open_target())

    async def _open_target(self) -> None:
        faults, stats, route = self.route.faults, self.route.stats, self.route.route
        if not faults.open.is_set():
            stats.connections_held += 1
            self.held = True
            try:
                await faults.open.wait()
            finally:
                self.held = False
                stats.connections_held -= 1
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await asyncio.get_running_loop().create_connection(
                    lambda: _Side(self), route.target_host, route.target_port
                )
        except (OSError, TimeoutError) as exc:
            stats.target_errors += 1
            log.info(
                "route %s: cannot reach %s:%s: %s", route.name, route.target_host, route.target_port, exc
            )
            self.close(reset=True)

    def close(self, reset: bool) -> None:
        """Close both sides, with RST (a failure) or FIN after flushing (a clean end)."""
        if self.closed:
            return
        self.closed = True
        if self._dial is not None and self._dial is not asyncio.current_task():
            self._dial.cancel()
        for flow in (self.up, self.down):
            if flow.task is not asyncio.current_task():
                flow.cancel()
        for side in (self.client, self.target):
            if side is not None and side.transport is not None:
                if reset:
                    _reset(side.transport)
                else:
                    side.transport.close()
        self.route.connections.discard(self)
        self.route.stats.connections_active -= 1


# --- the proxy ------------------------------------------------------------------------------


class _Conflict(Exception):
    """A route cannot be added as asked (port in use); the control API answers 409."""


class _Proxy:
    """Routes, faults and their persistence; all changes go through here, one at a time."""

    def __init__(self, state_file: Path | None, rng: random.Random | None = None) -> None:
        self.state_file = state_file
        self.routes: dict[str, _RouteState] = {}
        rng = rng or random.Random()
        self.faults = {d: _Faults(rng) for d in Direction}
        self._lock = asyncio.Lock()

    async def restore(self) -> None:
        """Load --state-file if it exists; a route whose port is now taken is logged and left out."""
        if self.state_file is None or not self.state_file.exists():
            return
        saved = _SavedState.model_validate_json(self.state_file.read_text())
        for direction, spec in saved.faults.items():
            self.faults[direction].apply(spec)
        for route in saved.routes:
            try:
                await self.put_route(route, save=False)
            except _Conflict as exc:
                log.error("route %s from %s not restored: %s", route.name, self.state_file, exc)
        log.info(
            "restored %d routes and faults %s from %s", len(self.routes), self._faults_json(), self.state_file
        )

    async def put_route(self, route: Route, save: bool = True) -> None:
        """Add or replace a route; replacing closes the old listener and its connections."""
        async with self._lock:
            old = self.routes.get(route.name)
            if old is not None and old.route == route:
                return
            for other in self.routes.values():
                if other.route.name != route.name and other.route.listen_port == route.listen_port:
                    raise _Conflict(f"port {route.listen_port} is used by route {other.route.name}")
            if old is not None and old.route.listen_port == route.listen_port:
                await self._close_route(self.routes.pop(route.name))
            state = _RouteState(route, self.faults[route.direction], _RouteStats(), set())
            try:
                state.server = await asyncio.get_running_loop().create_server(
                    lambda: _Connection(state).client, HOST, route.listen_port, backlog=LISTEN_BACKLOG
                )
            except OSError as exc:
                if old is not None and route.name not in self.routes:
                    self.save()  # the old route is gone already
                raise _Conflict(
                    f"cannot listen on {HOST}:{route.listen_port}: {exc.strerror or exc}"
                ) from exc
            if route.name in self.routes:
                await self._close_route(self.routes.pop(route.name))
            self.routes[route.name] = state
            log.info("route %s: %s:%s → %s:%s (%s)", route.name, HOST, route.listen_port,
                     route.target_host, route.target_port, route.direction)  # fmt: skip
            if save:
                self.save()

    async def remove_route(self, name: str) -> bool:
        async with self._lock:
            state = self.routes.pop(name, None)
            if state is None:
                return False
            await self._close_route(state)
            log.info("route %s removed", name)
            self.save()
            return True

    def set_faults(self, direction: Direction, spec: FaultSpec) -> None:
        self.faults[direction].apply(spec)
        log.info("faults %s: %s", direction, spec.model_dump(exclude_defaults=True) or "none")
        self.save()

    def clear_faults(self) -> None:
        for faults in self.faults.values():
            faults.apply(FaultSpec())
        log.info("faults cleared")
        self.save()

    def state(self) -> dict[str, Any]:
        return {
            "routes": [s.route.model_dump(mode="json") for s in self.routes.values()],
            "faults": self._faults_json(),
            "stats": {name: asdict(s.stats) for name, s in self.routes.items()},
        }

    async def close(self) -> None:
        async with self._lock:
            while self.routes:
                await self._close_route(self.routes.popitem()[1])

    def _faults_json(self) -> dict[str, Any]:
        return {d.value: f.spec.model_dump(mode="json") for d, f in self.faults.items()}

    async def _close_route(self, state: _RouteState) -> None:
        """Stop listening (new connections are refused) and reset the route's connections."""
        if state.server is not None:
            state.server.close()
        for connection in list(state.connections):
            connection.close(reset=True)
        if state.server is not None:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await state.server.wait_closed()
            except TimeoutError:
                log.warning(
                    "route %s: listener did not close within %.0f s", state.route.name, STOP_TIMEOUT_S
                )

    def save(self) -> None:
        """Write routes and faults atomically (rename); no fsync: it guards against a killed
        proxy, whose page cache survives, not against a crashed machine."""
        if self.state_file is None:
            return
        saved = _SavedState(
            routes=[s.route for s in self.routes.values()], faults={d: f.spec for d, f in self.faults.items()}
        )
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(saved.model_dump_json(indent=2))
        os.replace(tmp, self.state_file)


# --- the control API ------------------------------------------------------------------------


class _ControlServer:
    """HTTP/1.1 with keep-alive and Content-Length bodies: all that httpx sends, nothing more.

    Written on asyncio streams in the proxy's own loop rather than with uvicorn, so that the
    control API and the data path share one event loop and one process.
    """

    def __init__(self, proxy: _Proxy) -> None:
        self.proxy = proxy
        self._writers: set[asyncio.StreamWriter] = set()

    def close_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(CONTROL_IDLE_TIMEOUT_S):
                        head = await reader.readuntil(b"\r\n\r\n")
                except (
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    TimeoutError,
                    ConnectionError,
                ):
                    return
                try:
                    method, target, headers = self._parse_head(head)
                    length = int(headers.get("content-length", "0"))
                    if headers.get("transfer-encoding") or not 0 <= length <= CONTROL_MAX_BODY_BYTES:
                        raise ValueError("a body needs a Content-Length of at most 1 MiB")
                except ValueError as exc:
                    await self._respond(writer, 400, {"error": f"bad request: {exc}"}, keep_alive=False)
                    return
                try:
                    body = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                status, payload = await self.dispatch(method, target, body)
                keep_alive = headers.get("connection", "").lower() != "close"
                await self._respond(writer, status, payload, keep_alive)
                if not keep_alive:
                    return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def dispatch(self, method: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        path = target.split("?", 1)[0]
        parts = [unquote(p) for p in path.strip("/").split("/")]
        try:
            match method, parts:
                case "GET", ["healthz"]:
                    return 200, {"ok": True, "pid": os.getpid()}
                case "GET", ["state"]:
                    return 200, self.proxy.state()
                case "PUT", ["routes", name]:
                    route = Route.model_validate_json(body)
                    if route.name != name:
                        return 400, {"error": f"the body names route {route.name!r}, the path {name!r}"}
                    try:
                        await self.proxy.put_route(route)
                    except _Conflict as exc:
                        return 409, {"error": str(exc)}
                    return 200, route.model_dump(mode="json")
                case "DELETE", ["routes", name]:
                    if await self.proxy.remove_route(name):
                        return 200, {"removed": name}
                    return 404, {"error": f"no route {name!r}"}
                case "PUT", ["faults", direction]:
                    if direction not in {d.value for d in Direction}:
                        return 400, {"error": f"direction must be one of {[d.value for d in Direction]}"}
                    spec = FaultSpec.model_validate_json(body)
                    self.proxy.set_faults(Direction(direction), spec)
                    return 200, spec.model_dump(mode="json")
                case "DELETE", ["faults"]:
                    self.proxy.clear_faults()
                    return 200, self.proxy.state()["faults"]
                case _, ["healthz" | "state"] | ["routes", _] | ["faults", _] | ["faults"]:
                    return 405, {"error": f"{method} is not allowed on {path}"}
                case _:
                    return 404, {"error": f"no such resource: {path}"}
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            return 400, {"error": problems}
        except Exception:  # a bug: keep the traceback in the log, answer, and keep serving
            log.exception("%s %s failed", method, path)
            return 500, {"error": f"internal error in the fault proxy on {method} {path}; see its log"}

    @staticmethod
    def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        return method, target, headers

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter, status: int, payload: dict[str, Any], keep_alive: bool
    ) -> None:
        body = json.dumps(payload).encode()
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            409: "Conflict",
            500: "Internal Server Error",
        }
        head = (
            f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        with suppress(ConnectionError):  # the client went away; nothing to tell it
            await writer.drain()


async def _serve(control_port: int, state_file: Path | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    proxy = _Proxy(state_file)
    control = _ControlServer(proxy)
    try:
        # Bound first, so that a second proxy on the same port exits before touching its routes;
        # served only once restored, so that /healthz means the routes are back.
        server = await asyncio.start_server(control.handle, HOST, control_port, start_serving=False)
    except OSError as exc:
        log.error("cannot listen on %s:%s for control: %s", HOST, control_port, exc)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await proxy.restore()
            proxy.save()  # also shows now, not at the first change, that the file can be written
        except (OSError, ValueError) as exc:  # ValidationError is a ValueError
            log.error("cannot restore or write %s: %s", state_file, exc)
            return 2
        await server.start_serving()
        log.info("control API on http://%s:%s (pid %d)", HOST, control_port, os.getpid())
        await stop.wait()
        log.info("stopping")
    finally:
        server.close()
        control.close_connections()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await server.wait_closed()
        except TimeoutError:
            log.warning("control connections did not close within %.0f s", STOP_TIMEOUT_S)
        await proxy.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m harness.testbed.faultproxy`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.testbed.faultproxy",
        description="A fault-injecting TCP proxy for one testbed node.",
    )
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--state-file", type=Path, default=None, help="persist routes and faults here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_serve(args.control_port, args.state_file))
    return uvloop.run(_serve(args.control_port, args.state_file))


# --- the harness side -----------------------------------------------------------------------


class ProxyControlError(HarnessError):
    """The proxy refused a control request (invalid body, port in use); carries its answer."""

    def __init__(self, url: str, status: int, problem: str) -> None:
        self.url = url
        self.status = status
        self.problem = problem
        super().__init__(f"fault proxy {url}: {status} {problem}")


class FaultProxyClient:
    """The control API of one proxy, for the testbed's cluster, agents and fault activities.

    Raises ProxyControlError when the proxy refuses a request and HarnessError when it does not
    answer; `healthy` never raises.
    """

    def __init__(self, control_url: str, timeout_s: float = 2.0) -> None:
        self.control_url = control_url.rstrip("/")
        # trust_env=False: an HTTP(S)_PROXY in the environment must not capture loopback traffic
        self._http = httpx.Client(base_url=self.control_url, timeout=timeout_s, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FaultProxyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def healthy(self) -> bool:
        return self.health_pid() is not None

    def health_pid(self) -> int | None:
        """The pid of the proxy answering /healthz, or None if none answers."""
        try:
            response = self._http.get("/healthz")
            return int(response.json()["pid"]) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    def state(self) -> dict[str, Any]:
        """Routes, faults per direction and per-route stats (connections, bytes)."""
        return self._request("GET", "/state")

    def add_route(self, route: Route) -> None:
        """Add or replace the route of that name; ProxyControlError 409 if its port is taken."""
        self._request("PUT", f"/routes/{quote(route.name, safe='')}", route.model_dump(mode="json"))

    def remove_route(self, name: str) -> None:
        """Close the route's listener and reset its connections; no error if it is already gone,
        so that rollbacks can repeat it."""
        self._request("DELETE", f"/routes/{quote(name, safe='')}", missing_ok=True)

    def set_faults(self, direction: Direction, spec: FaultSpec) -> None:
        """Replace the faults of a direction (FaultSpec() clears them); applies to open connections too."""
        self._request("PUT", f"/faults/{Direction(direction).value}", spec.model_dump(mode="json"))

    def clear_faults(self) -> None:
        self._request("DELETE", "/faults")

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, missing_ok: bool = False
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise HarnessError(
                f"fault proxy {self.control_url} did not answer {method} {path}: {exc}"
            ) from exc
        if response.status_code == 404 and missing_ok:
            return {}
        if response.status_code >= 400:
            try:
                problem = str(response.json().get("error", response.text))
            except ValueError:
                problem = response.text
            raise ProxyControlError(self.control_url, response.status_code, problem)
        return response.json()


def start_proxy(control_port: int, log_path: Path, state_file: Path | None = None) -> subprocess.Popen:
    """Start a proxy process in its own session; returns once /healthz answers.

    The caller stops it with `harness.children.stop_group`. Raises HarnessError (after stopping
    it) if it exits or does not answer within READY_TIMEOUT_S.
    """
    cmd = [sys.executable, "-m", "harness.testbed.faultproxy", "--control-port", str(control_port)]
    if state_file is not None:
        cmd += ["--state-file", str(state_file)]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_healthy(process, f"http://{HOST}:{control_port}", log_path)
    except BaseException:
        children.stop_group(process, STOP_TIMEOUT_S)
        raise
    return process


def _wait_healthy(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with FaultProxyClient(url, timeout_s=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise HarnessError(
                    f"the fault proxy exited with code {process.returncode} before it was ready; see {log_path}"
                )
            if client.health_pid() == process.pid:  # not another proxy already on the port
                return
            time.sleep(0.05)
    raise HarnessError(
        f"the fault proxy was not ready at {url} within {READY_TIMEOUT_S:.0f} s; see {log_path}"
    )


if __name__ == "__main__":
    sys.exit(main())
