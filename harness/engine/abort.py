"""The running scenario's live timeline, and the abort conditions watched on it.

`LiveSeries` is the one reader of a running scenario's timeline: updated once a tick (by the
engine's loop, or by the abort watcher while the experiment holds the main thread) with the
lines appended since the last tick, and read by the abort watch, the progress line and the
recovery watch. When the scenario ends it is read to its end once more and handed to scoring:
the timeline is never read twice. `tripped` is pure: given the series, has a condition held
for its whole duration?
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from harness.engine.stopping import Interrupted
from harness.errors import HarnessError
from harness.timeline import Series, TimelineFile


class Condition(Protocol):
    metric: str
    above: float | None
    below: float | None
    for_s: float


class LiveSeries:
    """A running scenario's timeline file and its Series, as far as the recorder has written it."""

    def __init__(self, path: Path) -> None:
        self.file = TimelineFile(path)
        self.series: Series | None = None
        """The lines read so far (None before the recorder's first); changed in place by `update`."""
        self.lock = threading.Lock()
        """Held while updating or reading the series (the abort watcher runs in its own thread)."""

    def update(self, final: bool = False) -> None:
        """Add what the recorder appended since the last update (call with the lock held)."""
        try:
            if self.file.update(final) or self.series is None:
                self.series = self.file.series()
        except Interrupted:
            raise  # SIGTERM landed while reading: a stop, not a broken file
        except HarnessError:  # not written yet, or broken: scoring reports it when the scenario ends
            return


def values(series: Series, metric: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Per bucket of positions [lo, hi), the value of an abort metric over all names (NaN where
    nothing completed); only those buckets are read, so the last seconds cost the same all run."""
    hi = len(series) if hi is None else hi
    if metric == "error_rate":
        return series.error_rate_at(lo, hi)
    if metric == "p95_ms":
        return series.latency_corrected.p95_ms[lo:hi]
    raise ValueError(f"unknown abort metric {metric!r}")


def violates(condition: Condition, value: np.ndarray) -> np.ndarray:
    """Per value: outside the condition's bound (NaN, no requests, never is)."""
    if condition.above is not None:
        return value > condition.above
    return value < condition.below if condition.below is not None else np.zeros(value.shape, bool)


def tripped(series: Series, condition: Condition, now_t: float) -> bool:
    """Every bucket of the last `for_s` seconds (closed ones: ending by now_t) violates the condition."""
    dt = series.bucket_s
    needed = max(1, round(condition.for_s / dt))
    closed = series.ends_by(now_t + 1e-9)
    lo = closed - needed
    if lo < 0 or series.t[lo] < now_t - condition.for_s - 2 * dt:
        return False
    return bool(violates(condition, values(series, condition.metric, lo, closed)).all())


def describe(condition: Condition) -> str:
    bound = f"> {condition.above}" if condition.above is not None else f"< {condition.below}"
    return f"{condition.metric} {bound} for {condition.for_s:g} s"


class AbortWatcher:
    """A thread that updates the live series every second, checks the conditions and calls `on_trip` once.

    It runs while the experiment holds the main thread, so the series it updates is also what the
    engine reads when the experiment returns.
    """

    def __init__(
        self,
        live: LiveSeries,
        conditions: Sequence[Condition],
        on_trip: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self.live = live
        self.conditions = list(conditions)
        self.on_trip = on_trip
        self.clock = clock
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="abort-watcher", daemon=True)

    def __enter__(self) -> AbortWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            with self.live.lock:
                self.live.update()
                series, now = self.live.series, self.clock()
                if series is not None:
                    for condition in self.conditions:
                        if self.reason is None and tripped(series, condition, now):
                            self.reason = describe(condition)
            if self.reason is not None:
                self.on_trip(self.reason)
                return
