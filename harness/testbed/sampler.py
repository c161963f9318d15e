"""Sample the testbed's control plane while a scenario runs: `controlplane.jsonl` in the scenario folder.

The testbed target opens a `TestbedSampler` around each scenario's load (the engine's
`Target.observe`), as the Kubernetes target opens harness.kubernetes.probes' sampler: the same
file, and the same line shapes wherever the meaning is the same, so one
`harness.scoring.controlplane.summarize` and one set of metric names serve both targets.

One daemon thread, every `probe_interval_s` (0.5 s):

- **probe write and read** through the control plane: a put of a sequence-numbered key under
  `PROBE_PREFIX/<token>/` on the etcd client endpoints, then a quorum (linearizable) read of it.
  Not retried: a retry would hide the failure being measured. Timed out after
  `request_timeout_s` per member (the client moves on to the next member, as the controller's does);
- **ground truth**: the lines the testbed appended to `events.jsonl` since the sampler started,
  copied with their own `t` (when it happened, not when the sampler read it);
- **repair state**: what the cluster needs, from ground truth (the fault ledger `faults.json`, the
  agents' `replicas.json` and their processes, HAProxy's runtime server state), and whether the
  controller can act (`status.json`): a `repair` line at every change, and a `deployment` line
  for the controller's published endpoints at every change.

When the block ends it reads back every acknowledged probe write (one `readback` line), then
deletes the probe keys. Nothing here raises into the engine: a failed request is an ok=false
line; an unexpected error ends the sampling (logged, kept in `errors`), not the scenario; the
thread stops by itself after `max_duration_s`.

Lines (one JSON object each; `t` is Unix seconds):

    {"t", "kind": "sampler", "target": "testbed", "probe_interval_s", "stale_after_s"}   once started
    {"t", "kind": "api", "verb": "write"|"read", "resource": "probe", "seq", "latency_ms", "ok",
     "status": null, "error", "revision"}                                   as the Kubernetes api line
    {"t", "kind": "node", "name", "ready"}                         initial state, then node_ready/not_ready
    {"t", "kind": "pod", "name", "event": "created"|"scheduled"|"ready"|"not_ready"|"deleted", "node"}
    {"t", "kind": "deployment", "name", "available", "desired"}    initial state and every change
    {"t", "kind": "leader", "member", "previous"}                  etcd_leader_changed
    {"t", "kind": "restore", "event", ...}                         etcd_snapshot_taken,
                                                                   control_plane_data_lost, etcd_restored
    {"t", "kind": "repair", "needed": [...], "serving", "desired", "quorum", "controller_fresh"}
    {"t", "kind": "readback", "ok", "checked", "missing": [seq...], "deleted", "error"}

Where the testbed's lines mean something else than a cluster's:

- a **pod** is a replica. `deleted` is an eviction by the controller (a replica on a node NotReady
  past `eviction_s`), `created` and `scheduled` are one instant (the controller assigns a node as it
  creates the replica), `not_ready` is a replica that reported not ready, was marked not ready by the
  controller (its node NotReady, or its report stale), or died (its agent restarts
  it in place, as a kubelet restarts a container: no deletion). A replica killed on a crashed node
  is seen only when it is evicted, as on a cluster;
- a **node** line is the controller's verdict (`node_ready` / `node_not_ready` events), as the node
  lifecycle controller's; the initial state comes from status.json;
- the **deployment** is the service: `available` is the controller's published endpoints (ready
  replicas on ready nodes, what a Deployment's availableReplicas counts), `desired` the profile's
  replicas. Like a Deployment's status it does not change while etcd has no quorum;
- **api** lines are the harness's own writes and reads of etcd, not API-server reads (there is no
  API server): latency is etcd's, through its JSON gateway.

A **repair** line's `needed` lists, from ground truth: `replica R on down node N` (N crashed,
frozen or isolated by a fault in the ledger, or its agent is not running), `stale endpoint R` (the
load balancer sends to a replica that is dead, frozen, not ready, on a down node, or unknown), and
`serving S of D` (fewer endpoints whose replica is healthy than desired replicas). `quorum` is the
controller's last view of etcd (status.json); `controller_fresh` is false when status.json is older
than `stale_after_s` (the controller rewrites it every step, with or without quorum, so an old one
means it is not running). harness.scoring.controlplane says when that is a blocked repair.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness import children
from harness.errors import HarnessError
from harness.testbed import etcd, faults, haproxy
from harness.testbed import state as tbstate

FILE = "controlplane.jsonl"
PROBE_PREFIX = "/harness-probe/"
"""Outside /testbed/: the controller never reads the probe keys."""
DEPLOYMENT = "subs"
DOWN_NODE_FAULTS = ("node_crash", "node_freeze", "node_isolate")
log = logging.getLogger(__name__)

_POD_EVENTS = {
    "replica_ready": ("ready",),
    "replica_not_ready": ("not_ready",),
    "replica_marked_not_ready": ("not_ready",),
    "replica_died": ("not_ready",),
    "replica_evicted": ("deleted",),
    "replica_scheduled": ("created", "scheduled"),
}
_RESTORE_EVENTS = ("etcd_snapshot_taken", "control_plane_data_lost", "etcd_restored")


class TestbedSampler:
    """Background sampling of the testbed's control plane; see the module docstring."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        root: Path,
        path: Path,
        *,
        probe_interval_s: float = 0.5,
        request_timeout_s: float = 0.5,
        stale_after_s: float = 3.0,
        readback_timeout_s: float = 10.0,
        max_duration_s: float = 4 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.path = path
        self.probe_interval_s = probe_interval_s
        self.request_timeout_s = request_timeout_s
        """Per member, as the controller's 0.5 s: a frozen member costs one timeout, then the next is asked."""
        self.stale_after_s = stale_after_s
        """The controller rewrites status.json every sync (1 s, or its etcd check's 0.5 s timeout
        without quorum); three seconds without a rewrite is a controller that is not running."""
        self.readback_timeout_s = readback_timeout_s
        """How long the read-back after the scenario keeps trying an etcd that is not back yet."""
        self.max_duration_s = max_duration_s
        """A sampler left open by a bug stops by itself; a game day is never this long."""
        self.clock = clock
        self.prefix = f"{PROBE_PREFIX}{secrets.token_hex(4)}/"
        self.acked: dict[int, float] = {}
        """seq -> t of every probe write etcd acknowledged."""
        self.errors: list[str] = []
        """Unexpected failures that ended the sampling early (for the scenario's facts)."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._out: Any = None
        self._thread: threading.Thread | None = None
        self._client: etcd.EtcdClient | None = None
        self._events_offset = 0
        self._last_repair: dict[str, Any] | None = None
        self._last_deployment: tuple[int, int] | None = None
        self._seq = 0
        self._unready: set[str] = set()
        """Replicas whose last readiness event (or, before any, status.json) says not ready."""

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.path.open("a", encoding="utf-8")
        try:
            state = tbstate.load(self.root)
            self._client = etcd.EtcdClient(state.client_endpoints(), timeout_s=self.request_timeout_s)
            self.desired = state.profile.replicas
            self.node_names = [n.name for n in state.nodes]
            self.lb = haproxy.Runtime(self.root / "haproxy.sock", timeout_s=self.request_timeout_s)
            events = self.root / "events.jsonl"
            self._events_offset = events.stat().st_size if events.exists() else 0
            t = self.clock()
            self._write({"t": t, "kind": "sampler", "target": "testbed",
                         "probe_interval_s": self.probe_interval_s, "stale_after_s": self.stale_after_s})  # fmt: skip
            status = tbstate.read_json(self.root / "status.json", {})
            self._unready = {r for r, info in (status.get("replicas") or {}).items() if not info.get("ready")}
            for name, node in sorted(status.get("nodes", {}).items()):
                self._write({"t": t, "kind": "node", "name": name, "ready": bool(node.get("ready"))})
        except (HarnessError, OSError) as exc:  # no testbed to sample: say so, and sample nothing
            log.warning("testbed sampler not started: %r", exc)
            self.errors.append(f"start: {exc!r}")
            return
        self._thread = threading.Thread(target=self._guarded, name="testbed-sampler", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.request_timeout_s * 8 + 5)
        try:
            if self._client is not None:
                self._read_back()
        except Exception as exc:  # never into the engine: the read-back line says what failed
            log.warning("testbed sampler read-back: %r", exc)
            self.errors.append(f"readback: {exc!r}")
        finally:
            if self._client is not None:
                self._client.close()
            with self._lock:
                if self._out is not None:
                    self._out.close()
                    self._out = None

    def __enter__(self) -> TestbedSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _guarded(self) -> None:
        deadline = time.monotonic() + self.max_duration_s
        try:
            wait = 0.0
            while not self._stop.wait(wait) and time.monotonic() < deadline:
                started = time.monotonic()
                self.sample()
                wait = max(0.0, self.probe_interval_s - (time.monotonic() - started))
        except Exception as exc:  # never into the engine: record and stop sampling
            log.warning("testbed sampler stopped: %r", exc)
            self.errors.append(f"sampler: {exc!r}")

    def _write(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, separators=(",", ":")) + "\n"
        with self._lock:
            if self._out is not None:
                self._out.write(text)
                self._out.flush()

    # --- one sample -----------------------------------------------------------------------
    def sample(self) -> None:
        """Probe write and read, new ground-truth events, repair and deployment state."""
        self._probe()
        self._copy_events()
        self._repair_state()

    def _probe(self) -> None:
        assert self._client is not None
        seq = self._seq
        self._seq += 1
        key = f"{self.prefix}{seq:08d}"
        t = self.clock()
        start = time.perf_counter()
        revision, error = None, None
        try:
            revision = self._client.put(key, json.dumps({"t": t}))
        except HarnessError as exc:  # unavailable, or refused: the write failed
            error = _short(exc)
        self._write({"t": t, "kind": "api", "verb": "write", "resource": "probe", "seq": seq,
                     "latency_ms": round((time.perf_counter() - start) * 1000.0, 3), "ok": error is None,
                     "status": None, "error": error, "revision": revision})  # fmt: skip
        if error is None:
            self.acked[seq] = t
        t = self.clock()
        start = time.perf_counter()
        read_error = None
        try:
            self._client.get(key)
        except HarnessError as exc:
            read_error = _short(exc)
        self._write({"t": t, "kind": "api", "verb": "read", "resource": "probe", "seq": seq,
                     "latency_ms": round((time.perf_counter() - start) * 1000.0, 3), "ok": read_error is None,
                     "status": None, "error": read_error})  # fmt: skip

    def _copy_events(self) -> None:
        path = self.root / "events.jsonl"
        try:
            with path.open("rb") as fh:
                fh.seek(self._events_offset)
                data = fh.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]  # a line being written waits for the next sample
        self._events_offset += len(complete)
        for raw in complete.decode("utf-8", "replace").splitlines():
            try:
                line = json.loads(raw)
                t, event = float(line["t"]), str(line["event"])
            except (ValueError, KeyError, TypeError):
                continue
            rid = line.get("replica")
            if event == "replica_ready":
                self._unready.discard(rid)
            elif event in ("replica_not_ready", "replica_died", "replica_stopped", "replica_evicted"):
                self._unready.add(rid)
            for out in event_lines(t, event, line):
                self._write(out)

    def _repair_state(self) -> None:
        status = tbstate.read_json(self.root / "status.json", {})
        now = self.clock()
        line = repair_line(
            status=status,
            ledger=faults.ledger(self.root),
            replicas=faults.replicas(self.root),
            servers=_servers(self.lb),
            agents=_agents(self.root),
            unready=self._unready,
            desired=self.desired,
            now=now,
            stale_after_s=self.stale_after_s,
        )
        if line != self._last_repair:
            self._last_repair = line
            self._write({"t": now, "kind": "repair", **line})
        deployment = (len(status.get("endpoints") or []), self.desired)
        if status and deployment != self._last_deployment:
            self._last_deployment = deployment
            self._write({"t": now, "kind": "deployment", "name": DEPLOYMENT,
                         "available": deployment[0], "desired": deployment[1]})  # fmt: skip

    # --- the end --------------------------------------------------------------------------
    def _read_back(self) -> None:
        """One `readback` line: which acknowledged writes are missing; then the probe keys go."""
        assert self._client is not None
        deadline = time.monotonic() + self.readback_timeout_s
        t = self.clock()
        present: dict[str, str] | None = None
        error = None
        while present is None:
            try:
                present = self._client.get_prefix(self.prefix)
            except HarnessError as exc:  # etcd not back yet: try again until the deadline
                error = _short(exc)
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        if present is None:
            self._write({"t": t, "kind": "readback", "ok": False, "checked": len(self.acked), "missing": None,
                         "deleted": 0, "error": error})  # fmt: skip
            return
        seqs = {int(k.rsplit("/", 1)[1]) for k in present if k.rsplit("/", 1)[1].isdigit()}
        missing = sorted(s for s in self.acked if s not in seqs)
        deleted = 0
        with contextlib.suppress(HarnessError):  # left keys are small; `harness testbed down` drops them
            deleted = self._client.delete_prefix(self.prefix)
        self._write({"t": t, "kind": "readback", "ok": True, "checked": len(self.acked), "missing": missing,
                     "deleted": deleted, "error": None})  # fmt: skip


def event_lines(t: float, event: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The controlplane.jsonl lines one ground-truth event stands for (none for most)."""
    if event in ("node_ready", "node_not_ready"):
        return [{"t": t, "kind": "node", "name": fields.get("node"), "ready": event == "node_ready"}]
    if event in _POD_EVENTS:
        return [{"t": t, "kind": "pod", "name": fields.get("replica"), "event": what, "node": fields.get("node")}
                for what in _POD_EVENTS[event]]  # fmt: skip
    if event == "etcd_leader_changed":
        return [
            {"t": t, "kind": "leader", "member": fields.get("member"), "previous": fields.get("previous")}
        ]
    if event in _RESTORE_EVENTS:
        extra = {k: v for k, v in fields.items() if k not in ("t", "event", "source")}
        return [{"t": t, "kind": "restore", "event": event, **extra}]
    return []


def repair_line(
    *,
    status: dict[str, Any],
    ledger: list[dict[str, Any]],
    replicas: dict[str, dict[str, Any]],
    servers: list[haproxy.ServerState] | None,
    agents: dict[str, bool],
    desired: int,
    unready: set[str] | frozenset[str] = frozenset(),
    now: float,
    stale_after_s: float,
) -> dict[str, Any]:
    """What the cluster needs and whether the controller can act (the `repair` line without t).

    `replicas`: the agents' replicas.json (id -> node, pid, port, proxy_port); `agents`: node ->
    its agent runs; `unready`: replicas whose readiness probe fails (ground-truth events);
    `servers`: HAProxy's slots (None when its runtime API did not answer: the endpoint reasons
    are then left out, not guessed).
    """
    down_nodes = {e["target"] for e in ledger if e.get("kind") in DOWN_NODE_FAULTS}
    down_nodes |= {n for n, running in agents.items() if not running}
    frozen = {e["target"] for e in ledger if e.get("kind") == "replica_freeze"}
    healthy = {
        rid
        for rid, info in replicas.items()
        if rid not in frozen
        and rid not in unready
        and info.get("node") not in down_nodes
        and _alive(info.get("pid"))
    }
    needed = [
        f"replica {rid} on down node {info.get('node')}"
        for rid, info in sorted((status.get("replicas") or {}).items())
        if info.get("node") in down_nodes
    ]
    serving = None
    if servers is not None:
        by_port = {}
        for rid, info in replicas.items():
            for key in ("port", "proxy_port"):
                if isinstance(info.get(key), int):
                    by_port[info[key]] = rid
        serving = 0
        for server in servers:
            if not server.enabled:
                continue
            rid = by_port.get(server.port)
            if rid in healthy:
                serving += 1
            else:
                needed.append(f"stale endpoint {rid or server.port}")
        if serving < desired:
            needed.append(f"serving {serving} of {desired}")
    age = now - float(status["t"]) if isinstance(status.get("t"), int | float) else None
    quorum = (status.get("control_plane") or {}).get("quorum")
    return {
        "needed": needed,
        "serving": serving,
        "desired": desired,
        "quorum": quorum if isinstance(quorum, bool) else None,
        "controller_fresh": age is not None and age <= stale_after_s,
    }


def _alive(pid: Any) -> bool:
    return isinstance(pid, int) and pid > 0 and children.group_alive(pid)


def _servers(lb: haproxy.Runtime) -> list[haproxy.ServerState] | None:
    try:
        return lb.servers()
    except (HarnessError, OSError):  # HAProxy not answering: no endpoint view this sample
        return None


def _agents(root: Path) -> dict[str, bool]:
    try:
        state = tbstate.load(root)
    except (HarnessError, OSError):
        return {}
    return {n.name: _alive(n.agent_pid) for n in state.nodes}


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def open_sampler(root: Path, sdir: Path, **options: Any) -> Iterator[TestbedSampler]:
    """Sample into `sdir/controlplane.jsonl` until the block ends."""
    sampler = TestbedSampler(root, sdir / FILE, **options)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.close()
