"""The acknowledgement log: every write the service acknowledged, in one file per run.

Runs inside Locust (gevent-patched), so it is imported only by locustfiles:

    from locust import events
    from harness.load import acks
    ACKS = acks.register(events)
    ...
    ACKS.record(self.environment, subscription_id=..., email=...)

then `locust -f ... --acks run/acks.jsonl`. After the load, harness.load.verify reads the file
back and asks the service for every id in it (the scenario's `data_loss`).

Where the lines are written. One process (no master): each acknowledgement is appended at once
with a single O_APPEND write, so a Locust killed mid-run still leaves every line it saw. A
worker (`--processes N`, or `--worker` on another machine) cannot write there: the path is the
master's, and another machine's disk is not the run folder. It keeps the lines in a list (one
append, cheaper than the write it replaces) and ships them to the master once a second and when
its test stops, as a custom message, the way the timeline recorder ships its bucket deltas; the
master appends each batch with one write. A worker learns `--acks` from the master when a test
starts, so a worker started with no options still ships.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

__all__ = ["AckLog", "register"]

log = logging.getLogger(__name__)

MESSAGE = "harness_acks"
SHIP_INTERVAL_S = 1.0
"""A worker ships its acknowledgements this often: as often as the recorder ships its buckets."""


class AckLog:
    """Records acknowledged writes in this Locust process: written (single process, master) or shipped (worker)."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._path = ""
        self._shipping = False
        self._worker = False
        self._pending: list[str] = []
        self._shipper: gevent.Greenlet | None = None
        self._runner: Any = None
        self.received: dict[str, int] = {}
        """On the master: acknowledgements received per worker id."""

    # --- hot path (once per acknowledged write, not per request) ---------------------------
    def record(self, environment: Any, **fields: Any) -> None:
        """One acknowledged write (a JSON object of `fields` and the time `t`)."""
        if self._shipping:
            self._pending.append(json.dumps({**fields, "t": time.time()}))
            return
        if self._worker:
            return  # the master has no --acks: nothing to ship to
        if self._fd is None:
            path = getattr(environment.parsed_options, "acks", "") if environment.parsed_options else ""
            if not path:
                return
            self._open(path)
        assert self._fd is not None
        os.write(self._fd, (json.dumps({**fields, "t": time.time()}) + "\n").encode())

    # --- set-up by role ------------------------------------------------------------------
    def _open(self, path: str) -> None:
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def on_init(self, environment: Any, **_: Any) -> None:
        runner = environment.runner
        self._runner = runner
        if isinstance(runner, WorkerRunner):
            self._worker = True
            environment.events.test_start.add_listener(self._worker_test_start)
            environment.events.test_stop.add_listener(self._worker_test_stop)
        elif isinstance(runner, MasterRunner):
            runner.register_message(MESSAGE, self.on_worker_message)

    def on_worker_message(self, environment: Any, msg: Any, **_: Any) -> None:
        """On the master: append a worker's batch to the log in one write."""
        lines = msg.data or []
        if not lines:
            return
        if self._fd is None:
            path = getattr(environment.parsed_options, "acks", "") if environment.parsed_options else ""
            if not path:
                log.error("a worker shipped %d acknowledgements but the master has no --acks", len(lines))
                return
            self._open(path)
        assert self._fd is not None
        os.write(self._fd, "".join(line + "\n" for line in lines).encode())
        self.received[msg.node_id] = self.received.get(msg.node_id, 0) + len(lines)

    def _worker_test_start(self, environment: Any, **_: Any) -> None:
        # The spawn message has just copied the master's custom options onto this worker's.
        opts = environment.parsed_options
        self._shipping = bool(getattr(opts, "acks", "")) if opts is not None else False
        if self._shipping and self._shipper is None:
            self._shipper = gevent.spawn(self._ship_forever)

    def _worker_test_stop(self, **_: Any) -> None:
        if self._shipper is not None:
            self._shipper.kill(block=False)
            self._shipper = None
        self.ship()

    def _ship_forever(self) -> None:
        while True:
            gevent.sleep(SHIP_INTERVAL_S)
            try:
                self.ship()
            except Exception:  # a lost batch must not stop the load test; say so loudly
                log.exception("shipping acknowledgements to the master failed")

    def ship(self) -> None:
        """On a worker: send what was recorded since the last batch to the master."""
        if self._pending and self._runner is not None:
            batch, self._pending = self._pending, []
            self._runner.send_message(MESSAGE, batch)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--acks",
        type=str,
        default="",
        help="Append acknowledged writes here (JSON lines); workers ship theirs to the master",
    )


def register(events: Any) -> AckLog:
    """Add --acks and install the log into Locust's event hooks; call once from a locustfile."""
    ack_log = AckLog()
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(ack_log.on_init)
    events.quit.add_listener(lambda **_: ack_log.close())
    return ack_log
