"""A Locust user base class for harness locustfiles: paced, with explicit timeouts.

Imported only by locustfiles (it imports Locust). Register its options once:

    from harness.load import users
    users.register(events)

and derive journeys from `PacedUser` (one person's session: tasks one after another) or
`ArrivalUser` (every task a new person, arriving on schedule whatever earlier ones are
waiting for). Options: `--pacing S` (intended seconds between a
user's task starts; 0 for a plain closed loop), `--connect-timeout S`, `--request-timeout S`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
from gevent.pool import Pool
from locust import FastHttpUser

from harness.load.pacing import Schedule
from harness.load.stalls import LoopWatch

__all__ = ["ArrivalUser", "PacedUser", "VisitorSession", "register"]

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
        return self.lags()

    def lags(self) -> dict[str, float]:
        """How late this task starts: the schedule's lag and the part of it the generator caused."""
        return {"lag_s": self.schedule.lag_s(), "gen_lag_s": self.schedule.generator_lag_s()}


Lags = dict[str, float]
"""The lags of one task (or one visitor's arrival), as the recorder reads them from a request's context."""


class ArrivalUser(PacedUser):
    """A paced stream of independent visitors: each task is a new person, started on schedule.

    A PacedUser runs its tasks one after another and catches up after a stall. That suits one
    person's session, not a stream of different people such as new customers: each would wait
    for the strangers before it. When a task takes most of the interval, the backlog a stall
    leaves shrinks by only (interval - task) / task seconds a second, and grows while the task
    takes longer than the interval (every user catching up at once on a busy load generator).
    Its requests land in the buckets of their intended time, so the buckets after the fault got
    almost none of them: the KPI collapsed with no failed request after the service had recovered
    (a node crash at 0.2 s pacing: 390 subscriptions completed per 5 s before, 15 after; see
    docs/service.md). Real arrivals do not wait for each other; here each visitor runs in its own
    greenlet (`arrive`), at most `max_in_flight` at once, sharing the user's connection pool.
    Every request of a visitor carries the lags of its own arrival: it lands in the bucket of its
    send time less how late that visitor arrived, never behind a stranger's delay.
    """

    abstract = True
    max_in_flight = 200
    """Visitors of one user in flight at once; a full pool delays the next arrival (service lag)."""
    concurrency = max_in_flight
    """Connections the visitors may hold at once (FastHttpUser's default is 10)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.visitors = Pool(self.max_in_flight)

    def context(self) -> dict[str, Any]:
        # A visitor's requests carry its arrival's lags; reading the schedule here would fix the
        # lags of an arrival that has not happened yet.
        return {}

    def arrive(self, visit: Callable[[Lags], object]) -> None:
        """Start one visitor now, in its own greenlet; `visit` gets the lags of this arrival."""
        self.visitors.spawn(visit, self.lags())

    def on_stop(self) -> None:
        self.visitors.kill()
        super().on_stop()


class VisitorSession:
    """One visitor's requests through its user's shared session: its own bearer token and lags.

    `get`, `post` and `request` take FastHttpSession's arguments. `auth_header` is this visitor's
    alone (the shared session's own must stay unset: it would override every visitor's).
    """

    def __init__(self, session: Any, lags: Lags) -> None:
        self._session = session
        self._lags = lags
        self.auth_header: str | None = None

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        context = {**self._lags, **kwargs.pop("context", {})}
        return self._session.request(method, url, headers=headers, context=context, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)


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
