"""An intended schedule for one simulated user, for measuring what users feel.

Locust users are a closed loop: when the service stalls, they wait and stop sending, so a
2-second stall looks like a few slow requests and a quiet gap. A user on a schedule meant
to start a task every `interval_s`; after a stall it catches up (starts the missed tasks
back to back) instead of skipping them, and each request carries its lag behind the
schedule. Latency measured from the intended send time (actual latency + lag) is the
coordinated-omission correction that wrk2 and oha make.

Pure apart from the injected clock.
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
    ) -> None:
        if interval_s < 0:
            raise ValueError(f"interval must be >= 0, got {interval_s}")
        self.interval_s = interval_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._intended: float | None = None
        self._lag: float | None = None

    @property
    def paced(self) -> bool:
        return self.interval_s > 0

    def first_delay(self) -> float:
        """A random phase in [0, interval) so users started together do not fire in step."""
        delay = self._rng.uniform(0, self.interval_s) if self.paced else 0.0
        self._intended = self._clock() + delay
        self._lag = None
        return delay

    def next_delay(self) -> float:
        """Called when a task ends: advance the schedule and say how long to wait (0 if behind)."""
        now = self._clock()
        if not self.paced or self._intended is None:
            self._intended = now
            self._lag = None
            return 0.0
        self._intended += self.interval_s
        self._lag = None
        return max(0.0, self._intended - now)

    def lag_s(self) -> float:
        """How far behind schedule the current task started (fixed at its first request)."""
        if self._lag is None:
            if not self.paced or self._intended is None:
                self._lag = 0.0
            else:
                self._lag = max(0.0, self._clock() - self._intended)
        return self._lag
