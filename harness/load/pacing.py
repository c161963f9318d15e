"""An intended schedule for one simulated user, for measuring what users feel.

Locust users are a closed loop: when the service stalls, they wait and stop sending, so a
2-second stall looks like a few slow requests and a quiet gap. A user on a schedule meant
to start a task every `interval_s`; after a stall it catches up (starts the missed tasks
back to back) instead of skipping them, and each request carries its lag behind the
schedule. Latency measured from the intended send time (actual latency + lag) is the
coordinated-omission correction that wrk2 and oha make.

Only lag the service caused is charged to it. A task starts late for one of two reasons:
the user was still busy with its previous task (the service answered slowly: *service
lag*), or the user was free and due but its greenlet ran late (the load generator was short
of CPU, or a sleep overshot: *generator lag*). Counting the second as latency made a starved
load generator look like a slow service.

The split follows the start time the task would have had had the generator kept every
appointment (`punctual`): the intended time, or later if the previous task, started
punctually and taking as long as it did, ended after it. Service lag is punctual - intended;
generator lag is actual start - punctual. When the previous task started on time this is
service lag = max(0, ready - intended) and generator lag = now - max(intended, ready), with
`ready` the end of the previous task; after a generator stall longer than the interval, the
tasks the user then runs back to back are late because of the stall, not the service, and
keep counting as generator lag.

How long the previous task took is itself judged without the generator's stalls: a request in
flight when the load generator's loop stalled is read late, and its task ends late through no
fault of the service. With a `stalled(start, end)` function (a harness.load.stalls.LoopWatch),
the time the loop ran nothing is taken out of the task's length, so the lateness it causes the
next task counts as generator lag.

Pure apart from the injected clock and stall function.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Schedule:
    """Intended task start times on a fixed interval, with a random phase."""

    def __init__(
        self,
        interval_s: float,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        stalled: Callable[[float, float], float] | None = None,
    ) -> None:
        if interval_s < 0:
            raise ValueError(f"interval must be >= 0, got {interval_s}")
        self.interval_s = interval_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._stalled = stalled
        self._intended: float | None = None
        self._punctual: float | None = None
        """When the current task would have started had the generator kept its schedule."""
        self._started: float | None = None
        """When the current task actually started (its first request); None until then."""
        self._lags: tuple[float, float] | None = None

    @property
    def paced(self) -> bool:
        return self.interval_s > 0

    def first_delay(self) -> float:
        """A random phase in [0, interval) so users started together do not fire in step."""
        delay = self._rng.uniform(0, self.interval_s) if self.paced else 0.0
        self._intended = self._punctual = self._clock() + delay
        self._started = None
        self._lags = None
        return delay

    def next_delay(self) -> float:
        """Called when a task ends: advance the schedule and say how long to wait (0 if behind)."""
        now = self._clock()
        if not self.paced or self._intended is None or self._punctual is None:
            self._intended = self._punctual = now
            self._started = None
            self._lags = None
            return 0.0
        # A task that sent nothing is taken to have started punctually: its whole length counts
        # as the service's, as every lag did before the split.
        began = self._started if self._started is not None else self._punctual
        took = now - began
        if self._stalled is not None:
            took = max(0.0, took - self._stalled(began, now))
        self._intended += self.interval_s
        self._punctual = max(self._intended, self._punctual + took)
        self._started = None
        self._lags = None
        return max(0.0, self._intended - now)

    def lag_s(self) -> float:
        """Service lag: how far behind schedule the service put the current task (fixed at its first request)."""
        return self._fixed()[0]

    def generator_lag_s(self) -> float:
        """Generator lag: how much later the current task started than the user was free and due."""
        return self._fixed()[1]

    def _fixed(self) -> tuple[float, float]:
        """(service lag, generator lag) of the current task, measured once, at its first request."""
        if self._lags is None:
            if not self.paced or self._intended is None or self._punctual is None:
                self._lags = (0.0, 0.0)
            else:
                now = self._clock()
                self._started = now
                # A sleep may end a hair early: lateness is never negative.
                self._lags = (self._punctual - self._intended, max(0.0, now - self._punctual))
        return self._lags
