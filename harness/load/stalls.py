"""When the load generator's own event loop stalled, measured by the loop itself.

A user whose request was in flight when the loop stalled (CPU starvation, a blocking call, a
long GC pause) reads the answer late: its task ends late and, judged from the user alone, the
next task looks held up by the service. Only the loop knows better. A watcher that wakes every
`tick_s` and finds it woke more than `slack_s` late knows the loop ran nothing else in that
time; the schedule subtracts such time from how long the previous task took (see
harness.load.pacing), so a stall is charged to the generator, not the service.

The watcher is pure apart from the injected clock: `tick()` is called by a greenlet (see
harness.load.users), and a query also counts a stall still going on, for a user that runs
before the watcher's greenlet after the loop resumes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

DEFAULT_TICK_S = 0.01
DEFAULT_SLACK_S = 0.02
"""Waking up to 20 ms late is a busy loop's ordinary jitter, counted per user as before."""
HORIZON_S = 600.0
"""Stalls older than this are forgotten: no task lasts that long (requests time out in seconds)."""


class LoopWatch:
    """Intervals in which the event loop ran nothing: fed by a ticking greenlet, asked by schedules."""

    def __init__(
        self,
        tick_s: float = DEFAULT_TICK_S,
        slack_s: float = DEFAULT_SLACK_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if tick_s <= 0 or slack_s < 0:
            raise ValueError(f"tick must be > 0 and slack >= 0, got tick {tick_s}, slack {slack_s}")
        self.tick_s = tick_s
        self.slack_s = slack_s
        self._clock = clock
        self._due: float | None = None
        """When the watcher should next wake; None until its first tick (it may start late)."""
        self._stalls: deque[tuple[float, float]] = deque()

    def tick(self) -> float:
        """Note a wake-up: record a stall if it came late. Returns how long to sleep until the next."""
        now = self._clock()
        if self._due is not None and now - self._due > self.slack_s:
            self._stalls.append((self._due, now))
        while self._stalls and self._stalls[0][1] < now - HORIZON_S:
            self._stalls.popleft()
        self._due = now + self.tick_s
        return self.tick_s

    def stalled_s(self, start: float, end: float) -> float:
        """Seconds in [start, end] the loop was stalled, a stall still going on included."""
        total = 0.0
        for a, b in reversed(self._stalls):  # newest first: a task asks about its own few seconds
            if b <= start:
                break  # stalls are kept in order and do not overlap: the rest are older still
            total += max(0.0, min(b, end) - max(a, start))
        now = self._clock()
        if self._due is not None and now - self._due > self.slack_s:  # the loop is only just back
            total += max(0.0, min(now, end) - max(self._due, start))
        return total

    @property
    def stalls(self) -> list[tuple[float, float]]:
        """Recorded stalls as (start, end) pairs, oldest first."""
        return list(self._stalls)
