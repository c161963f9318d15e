"""Paced users against a fast local service, in a load generator that stalls once: for the recorder tests.

`--stall-at S --stall-s D` blocks Locust's event loop (a busy CPU loop, no greenlet runs) for D
seconds, S seconds after the test starts: what a starved load-generator CPU does to the users.
`--samples PATH` writes every request's start time, response time and both lags, and the stall's
start and end, as JSON when the test stops, so a test can recompute the buckets any way it likes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events, task

from harness.load import recorder, users
from harness.load.users import PacedUser

recorder.register(events)
users.register(events)

_SAMPLES: list[list[float]] = []
_STALL: dict[str, float] = {}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--acks", type=str, default="", help="(passed by harness.load.process; unused)")
    parser.add_argument(
        "--stall-at", type=float, default=0.0, help="Seconds after the start to block the loop"
    )
    parser.add_argument("--stall-s", type=float, default=0.3, help="How long to block it")
    parser.add_argument("--samples", type=str, default="", help="Write the request samples here")


@events.request.add_listener
def _sample(start_time: float, response_time: float, context: dict | None = None, **_: Any) -> None:
    context = context or {}
    _SAMPLES.append([start_time, response_time, context.get("lag_s", 0.0), context.get("gen_lag_s", 0.0)])


def _stall(after_s: float, stall_s: float) -> None:
    gevent.sleep(after_s)
    _STALL["start"] = time.time()
    until = time.perf_counter() + stall_s
    while time.perf_counter() < until:  # busy: the event loop cannot run another greenlet
        pass
    _STALL["end"] = time.time()


@events.test_start.add_listener
def _start(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options.stall_at > 0:
        gevent.spawn(_stall, options.stall_at, options.stall_s)


@events.test_stop.add_listener
def _stop(environment: Any, **_: Any) -> None:
    path = environment.parsed_options.samples
    if path:
        Path(path).write_text(json.dumps({"stall": _STALL, "samples": _SAMPLES}))


class Ping(PacedUser):
    """One cheap request per task."""

    @task
    def ping(self) -> None:
        self.client.get("/ping", name="ping")
