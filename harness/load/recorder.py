"""The timeline recorder: a Locust plugin that writes what every request did, per bucket.

Runs inside Locust (gevent-patched), so it is imported only by locustfiles:

    from locust import events
    from harness.load import recorder
    recorder.register(events)

then `locust -f ... --timeline run/timeline.jsonl [--timeline-bucket 0.5]`.

Why not Locust's own stats: its history CSV is smoothed over ~10 s and its percentiles are
rounded to two significant figures, which cannot place a recovery to the second.

How it works. The request listener appends seven numbers per request to one list (the cheap
part, on the hot path); a ticker folds the batch into bucket deltas with numpy (harness.timeline.aggregate).
Single process: the ticker writes buckets once they are closed. Distributed (`--processes N`
or --master/--worker): each worker ships its deltas to the master every tick as a custom
message; the master merges and writes, records each worker that joins (a `workers` line, which
the engine waits on), and drains its workers before it quits (`drain_workers`). A request belongs to the bucket of its *intended*
send time (see harness.load.users), so a stall shows in the buckets it covered; its
corrected latency adds only the lag the service caused, and the lag the load generator
caused itself (late greenlets on a starved CPU) is counted apart (`gen_late`,
`gen_lag_max_ms`), so a busy load generator does not pass for a slow service. A bucket is
written `GRACE_S` after it ends; anything arriving later still counts, as an extra delta
line for the same bucket (readers sum them).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import time
from pathlib import Path
from typing import Any

import gevent
import numpy as np
import orjson
from locust.exception import CatchResponseError
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from harness.timeline.aggregate import DEFAULT_GEN_LATE_MS, Aggregator
from harness.timeline.buckets import SCHEMA, Bucket, FailureKind
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY

__all__ = ["Recorder", "classify", "register"]

log = logging.getLogger(__name__)

MESSAGE = "harness_timeline"
GRACE_S = 1.0
"""How long after a bucket ends it is held for requests still in flight before it is written."""
DRAIN_MARGIN_S = 5.0
"""Beyond Locust's --stop-timeout, how long the master waits at shutdown for its workers to stop
and report, and then again for them to say they are ready (so that they get its quit)."""

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
"""numpy scalars are written as numbers, as json.dumps writes a numpy float."""
_KIND_CODE = {kind: float(i + 1) for i, kind in enumerate(FailureKind)}
_SAMPLE = 7
"""Numbers per recorded request: actual send time, key id, response ms, service lag s, failure
kind code (0: success), KPI count, generator lag s. Ids and codes are small integers, exact in
a float, and stored as floats so that the tick converts floats only."""


def classify(exception: BaseException, response: Any) -> FailureKind:
    """Why a request failed: HTTP status class, business check, timeout or connection."""
    status = getattr(response, "status_code", 0) or 0
    if status >= 500:
        return FailureKind.HTTP_5XX
    if status >= 400:
        return FailureKind.HTTP_4XX
    if isinstance(exception, CatchResponseError):
        return FailureKind.CHECK
    if isinstance(exception, TimeoutError | gevent.Timeout) or "timed out" in str(exception).lower():
        return FailureKind.TIMEOUT
    return FailureKind.CONNECTION


class TimelineWriter:
    """Appends JSON lines and flushes each batch, so another process can tail the file.

    orjson, not json: a bucket line carries a few hundred histogram bins, and the standard
    encoder spent a quarter of a tick on them (orjson is some 20 times faster). Its output is
    the compact form `json.dumps(separators=(",", ":"))` gives, which the fast reader
    (harness.timeline.bucketlines) expects; non-ASCII names come out as UTF-8, not escaped.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("wb")
        self.write([{"type": "header", "schema": SCHEMA, **header}])

    def write(self, lines: list[dict[str, Any]]) -> None:
        if lines:
            dumps = orjson.dumps
            self._fh.write(b"".join(dumps(line, option=_JSON_OPTIONS) + b"\n" for line in lines))
            self._fh.flush()

    def close(self, end: dict[str, Any]) -> None:
        if not self._fh.closed:
            self.write([{"type": "end", **end}])
            self._fh.close()


class Recorder:
    """Collects request samples in one Locust process and writes or ships bucket deltas."""

    def __init__(
        self, environment: Any, path: str, bucket_s: float, gen_late_ms: float = DEFAULT_GEN_LATE_MS
    ) -> None:
        self.environment = environment
        self.bucket_s = bucket_s
        self.aggregator = Aggregator(bucket_s, DEFAULT_RELATIVE_ACCURACY, gen_late_ms)
        self._samples: list[float] = []
        """Requests not folded yet, _SAMPLE numbers each, flat: no container per request for the
        garbage collector to track (floats and ints are not tracked). An array("d") would hold
        them more compactly, but it parses every value it stores like a function argument,
        several times the cost of a list's append."""
        self._extend = self._samples.extend
        self._key_ids: dict[str, dict[str, float]] = {}
        """method -> name -> key id: two dict lookups, no tuple built per request."""
        self.keys: list[tuple[str, str]] = []
        """(name, method) by key id."""
        runner = environment.runner
        self.is_worker = isinstance(runner, WorkerRunner)
        self.is_master = isinstance(runner, MasterRunner)
        self.writer: TimelineWriter | None = None
        self.workers_joined: set[str] = set()
        """On the master: the workers that connected."""
        self.workers_reported: set[str] = set()
        """On the master: the workers whose bucket deltas arrived (the ones that took part)."""
        if not self.is_worker:
            expected = getattr(environment.parsed_options, "expect_workers", 0) if self.is_master else 0
            self.writer = TimelineWriter(
                Path(path),
                {
                    "bucket_s": bucket_s,
                    "relative_accuracy": DEFAULT_RELATIVE_ACCURACY,
                    "started": time.time(),
                    "host": environment.host,
                    "pid": os.getpid(),
                    "latency_unit": "ms",
                    "gen_late_ms": gen_late_ms,
                    **({"workers_expected": expected} if self.is_master else {}),
                },
            )
        self._ticker: gevent.Greenlet | None = None
        self._users: dict[int, int] = {}
        self._next_tick_index: int | None = None
        self._stopped = False

    # --- hot path -------------------------------------------------------------------
    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response: Any = None,
        context: dict | None = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        url: str | None = None,
        response_length: int | None = None,
        **_: Any,
    ) -> None:
        # Once per request, and most of what the recorder costs Locust, so every step counts:
        # one list.extend of seven numbers (see _SAMPLE); numpy converts them at the tick. Named
        # keywords for all Locust passes: one that falls into **_ costs a string comparison
        # with every parameter name.
        response_time = response_time or 0.0
        if context:
            lag_s = context.get("lag_s", 0.0)
            gen_lag_s = context.get("gen_lag_s", 0.0)
            kpi = context.get("kpi", 0)
        else:
            lag_s = gen_lag_s = 0.0
            kpi = 0.0
        if start_time is None:
            start_time = time.time() - response_time / 1000.0
        try:
            key = self._key_ids[request_type][name]
        except KeyError:
            key = self._new_key(name, request_type)
        # The values as Locust gives them: the arithmetic (intended send time, lags in ms) is
        # done by numpy at the tick, where it costs a fraction of a float operation per request.
        self._extend(
            (
                start_time,
                key,
                response_time,
                lag_s,
                0.0 if exception is None else _KIND_CODE[classify(exception, response)],
                kpi,
                gen_lag_s,
            )
        )

    def _new_key(self, name: str, request_type: str) -> float:
        """The id of a (name, method) not seen before in this process (a float, as it is stored)."""
        key = float(len(self.keys))
        self._key_ids.setdefault(request_type, {})[name] = key
        self.keys.append((name, request_type))
        return key

    # --- ticks ----------------------------------------------------------------------
    def start(self) -> None:
        if self._ticker is None:
            self._stopped = False
            self._next_tick_index = None
            self._ticker = gevent.spawn(self._tick_forever)

    def _tick_forever(self) -> None:
        interval = min(self.bucket_s, 1.0)
        while True:
            now = time.time()
            gevent.sleep(interval - (now % interval) + 0.005)
            try:
                self.tick(time.time())
            except Exception:  # a broken tick must not kill the load test; say so loudly
                log.exception("timeline recorder tick failed")

    def _fold(self) -> None:
        """Fold the requests recorded since the last tick into the aggregator's bucket deltas."""
        if not self._samples:
            return
        samples = self._samples
        self._samples = []
        self._extend = self._samples.extend
        # struct reads each float's double directly; numpy's own list conversion inspects every
        # element's type first and costs twice as much per request.
        packed = struct.pack(f"{len(samples)}d", *samples)
        columns = np.frombuffer(packed, dtype=np.float64).reshape(-1, _SAMPLE).T
        start, key, resp, lag_s, kind, kpi, gen_lag_s = columns
        # The intended send time places the request; only the service's lag is added to its latency.
        t = start - lag_s - gen_lag_s
        self.aggregator.add_columns(
            t,
            key.astype(np.int64),
            self.keys,
            resp,
            lag_s * 1000.0,
            kind.astype(np.int64),
            kpi,
            gen_lag_s * 1000.0,
        )

    def tick(self, now: float, final: bool = False) -> None:
        """Fold the samples so far; write (or ship) what is ready."""
        self._fold()
        if self.is_worker:
            self._ship(self.aggregator.take_all())
            return
        index = math.floor(now / self.bucket_s)
        self._users[index] = self.environment.runner.user_count if self.environment.runner else 0
        if self._next_tick_index is None:
            self._next_tick_index = index
        cutoff = math.inf if final else now - GRACE_S
        buckets = self.aggregator.take_all() if final else self.aggregator.take_closed(cutoff)
        lines: list[dict[str, Any]] = []
        last_closed = index if final else math.floor(cutoff / self.bucket_s) - 1
        users = 0
        while self._next_tick_index <= last_closed:
            i = self._next_tick_index
            users = self._users.pop(i, users)
            lines.append(
                {"type": "tick", "t": round(i * self.bucket_s, 6), "dt": self.bucket_s, "users": users}
            )
            self._next_tick_index += 1
        lines.extend(b.to_line() for b in buckets)
        assert self.writer is not None
        self.writer.write(lines)

    def _ship(self, buckets: list[Bucket]) -> None:
        if buckets:
            self.environment.runner.send_message(MESSAGE, [b.to_line() for b in buckets])

    def on_worker_message(self, environment: Any, msg: Any, **_: Any) -> None:
        acc = self.aggregator.relative_accuracy
        self.aggregator.add_buckets(Bucket.from_line(line, acc) for line in msg.data)
        self.workers_reported.add(msg.node_id)

    def on_worker_connect(self, client_id: str, **_: Any) -> None:
        """On the master: a `workers` line, so the engine sees workers join before any load flows."""
        self.workers_joined.add(client_id)
        assert self.writer is not None
        expected = getattr(self.environment.parsed_options, "expect_workers", 0)
        self.writer.write(
            [{"type": "workers", "t": time.time(), "joined": len(self.workers_joined), "expected": expected}]
        )

    def stop(self) -> None:
        """The test stopped: everything measured is written (or shipped) now."""
        if self._ticker is not None:
            self._ticker.kill(block=False)
            self._ticker = None
        if not self._stopped:
            self._stopped = True
            self.tick(time.time(), final=True)

    def close(self) -> None:
        """Locust is quitting: write whatever arrived after the stop, then the end line."""
        self.stop()
        if self.aggregator.pending or self._samples:
            self.tick(time.time(), final=True)
        if self.writer is not None:
            end: dict[str, Any] = {"t": time.time()}
            if self.is_master:
                end["workers"] = len(self.workers_reported)
            self.writer.close(end)


def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("timeline", "Harness timeline recorder")
    group.add_argument(
        "--timeline",
        type=str,
        default="",
        help="Write a per-bucket request timeline (JSON lines) to this file",
    )
    group.add_argument(
        "--timeline-bucket",
        type=float,
        default=1.0,
        help="Timeline bucket width in seconds, 0.1 to 60 (default 1)",
    )
    group.add_argument(
        "--timeline-gen-late-ms",
        type=float,
        default=DEFAULT_GEN_LATE_MS,
        help="Count a request in gen_late when the load generator sent it more than this late (default 50)",
    )


def _on_init(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    runner = environment.runner
    if options is None or runner is None:
        return
    if isinstance(runner, WorkerRunner):
        # A worker learns --timeline from the master only at spawn time, so it decides then.
        state: dict[str, Recorder] = {}

        def on_test_start(environment: Any, **_: Any) -> None:
            opts = environment.parsed_options
            if "recorder" not in state:
                if not getattr(opts, "timeline", ""):
                    return
                state["recorder"] = Recorder(
                    environment, opts.timeline, _bucket_width(opts.timeline_bucket), _gen_late_ms(opts)
                )
                environment.events.request.add_listener(state["recorder"].on_request)
            state["recorder"].start()

        def on_test_stop(**_: Any) -> None:
            if "recorder" in state:
                state["recorder"].stop()

        environment.events.test_start.add_listener(on_test_start)
        environment.events.test_stop.add_listener(on_test_stop)
        return
    if not options.timeline:
        return
    rec = Recorder(
        environment, options.timeline, _bucket_width(options.timeline_bucket), _gen_late_ms(options)
    )
    if isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE, rec.on_worker_message)
        environment.events.worker_connect.add_listener(rec.on_worker_connect)
        environment.events.quitting.add_listener(drain_workers)
        if getattr(options, "headless", False) and options.run_time:
            # Locust's --run-time quits the same way (0.5 s for the workers): take it over, so
            # that the workers are drained first.
            run_time_s, options.run_time = options.run_time, None
            environment.events.test_start.add_listener(
                lambda **_: gevent.spawn_later(run_time_s, _drain_and_quit, environment)
            )
    else:
        environment.events.request.add_listener(rec.on_request)
    environment.events.test_start.add_listener(lambda **_: rec.start())
    environment.events.test_stop.add_listener(lambda **_: rec.stop())
    # `quit` fires after runner.quit(): users and workers have stopped and the master has had
    # its window for workers' final reports. (`quitting` fires before, while users may still run.)
    environment.events.quit.add_listener(lambda **_: rec.close())


def drain_workers(environment: Any, **_: Any) -> None:
    """At shutdown, on the master: stop the workers and wait for their last reports before quitting.

    Locust's master, when it quits (SIGTERM, --run-time), sends its workers "quit" and gives
    them 0.5 s: a worker still finishing its users' last requests (up to --stop-timeout) ships
    its last timeline deltas, acknowledgements and stats after the master stopped listening,
    and they are lost. Here, before that (`quitting` listeners added after the runner's own run
    first), the master stops the test the way its web UI does: "stop" to every worker, which
    stops its users, ships everything (test_stop) and reports it stopped, in that order on one
    connection. Then it waits for the workers to report ready again, so that the quit that
    follows reaches them: a worker that misses it waits 60 s for a heartbeat before quitting,
    and would miss the next scenario's master. Both waits are bounded (DRAIN_MARGIN_S beyond
    the stop timeout), well within the harness's grace before it kills Locust.
    """
    runner = environment.runner
    if runner.state not in (STATE_RUNNING, STATE_SPAWNING) or not runner.clients:
        return
    workers = set(runner.clients)
    bound_s = (environment.stop_timeout or 0.0) + DRAIN_MARGIN_S
    with gevent.Timeout(bound_s, False):
        runner.stop()
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline and not workers <= set(runner.clients):
        gevent.sleep(0.1)


def _drain_and_quit(environment: Any) -> None:
    """--run-time is up, on the master: drain the workers, then quit as Locust would."""
    log.info("--run-time limit reached, stopping the workers")
    drain_workers(environment)
    environment.runner.quit()


def _bucket_width(value: float) -> float:
    if not 0.1 <= value <= 60:
        # Locust's own option errors exit the same way; 2 is the harness's code for bad input.
        log.error("--timeline-bucket must be between 0.1 and 60 seconds, got %s", value)
        raise SystemExit(2)
    return value


def _gen_late_ms(options: Any) -> float:
    value = float(getattr(options, "timeline_gen_late_ms", DEFAULT_GEN_LATE_MS))
    if not value >= 0:
        log.error("--timeline-gen-late-ms must not be negative, got %s", value)
        raise SystemExit(2)
    return value


def register(events: Any) -> None:
    """Install the recorder into Locust's event hooks; call once from a locustfile."""
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)
