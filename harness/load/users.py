"""A Locust user base class for harness locustfiles: paced, with explicit timeouts.

Imported only by locustfiles (it imports Locust). Register its options once:

    from harness.load import users
    users.register(events)

and derive journeys from `PacedUser`. Options: `--pacing S` (intended seconds between a
user's task starts; 0 for a plain closed loop), `--connect-timeout S`, `--request-timeout S`.
"""

from __future__ import annotations

from typing import Any

import gevent
from locust import FastHttpUser

from harness.load.pacing import Schedule
from harness.load.stalls import LoopWatch

__all__ = ["PacedUser", "register"]

DEFAULT_PACING_S = 1.0
DEFAULT_CONNECT_TIMEOUT_S = 2.0
"""A SYN to a blackholed address is retried after 1 s by Linux; 2 s shows a partition fast."""
DEFAULT_REQUEST_TIMEOUT_S = 5.0
"""Locust's FastHttpUser default is 60 s, which hides a blackholed path as stuck users."""


_watch: LoopWatch | None = None


def loop_watch() -> LoopWatch:
    """This process's event-loop watcher, started with the first user: one greenlet ticking every 10 ms."""
    global _watch
    if _watch is None:
        watch = _watch = LoopWatch()

        def run() -> None:
            while True:
                gevent.sleep(watch.tick())

        gevent.spawn(run)
    return _watch


def _option(environment: Any, name: str, default: float) -> float:
    value = getattr(environment.parsed_options, name, None) if environment.parsed_options else None
    return default if value is None else float(value)


class PacedUser(FastHttpUser):
    """A FastHttpUser on an intended schedule; every request carries its lags for the recorder.

    `lag_s` is the lag the service caused (added to the corrected latency), `gen_lag_s` the lag
    the load generator caused (its greenlet ran late, or its event loop stalled while a request
    was in flight): see harness.load.pacing and harness.load.stalls.
    """

    abstract = True
    pacing_s: float | None = None
    """Seconds between task starts; None takes --pacing (default 1 s)."""

    def __init__(self, environment: Any) -> None:
        # FastHttpUser builds its client from these in __init__, so they are set first.
        self.connection_timeout = _option(environment, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_S)
        self.network_timeout = _option(environment, "request_timeout", DEFAULT_REQUEST_TIMEOUT_S)
        super().__init__(environment)
        interval = (
            self.pacing_s if self.pacing_s is not None else _option(environment, "pacing", DEFAULT_PACING_S)
        )
        self.schedule = Schedule(interval, stalled=loop_watch().stalled_s)
        self._phase = self.schedule.first_delay()

    def on_start(self) -> None:
        if self._phase:
            gevent.sleep(self._phase)

    def wait_time(self) -> float:
        return self.schedule.next_delay()

    def context(self) -> dict[str, Any]:
        return {"lag_s": self.schedule.lag_s(), "gen_lag_s": self.schedule.generator_lag_s()}


def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("pacing", "Harness user pacing and timeouts")
    group.add_argument(
        "--pacing",
        type=float,
        default=DEFAULT_PACING_S,
        help="Intended seconds between a user's task starts; 0 runs a closed loop (default 1)",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT_S,
        help="TCP connect timeout in seconds (default 2)",
    )
    group.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT_S,
        help="Timeout for a whole request in seconds (default 5)",
    )


def register(events: Any) -> None:
    """Add the pacing and timeout options; call once from a locustfile."""
    events.init_command_line_parser.add_listener(_add_arguments)
