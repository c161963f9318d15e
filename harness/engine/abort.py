"""Abort conditions, watched on the live timeline while a scenario runs.

`tripped` is pure: given per-bucket values, has a condition held for its whole duration?
`LiveTimeline` tails the timeline file as the recorder writes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.timeline.histogram import Histogram
from harness.timeline.reader import parse_lines


class Condition(Protocol):
    metric: str
    above: float | None
    below: float | None
    for_s: float


@dataclass
class BucketTotals:
    requests: int = 0
    failures: int = 0
    latency: Histogram | None = None

    def value(self, metric: str) -> float | None:
        if metric == "error_rate":
            return self.failures / self.requests if self.requests else None
        if metric == "p95_ms":
            return self.latency.quantile(0.95) if self.latency is not None else None
        raise ValueError(f"unknown abort metric {metric!r}")


def violates(condition: Condition, value: float | None) -> bool:
    if value is None:
        return False
    if condition.above is not None and value > condition.above:
        return True
    return condition.below is not None and value < condition.below


def tripped(buckets: dict[float, BucketTotals], dt: float, condition: Condition, now_t: float) -> bool:
    """Every bucket of the last `for_s` seconds (closed ones) violates the condition."""
    needed = max(1, round(condition.for_s / dt))
    closed = sorted(t for t in buckets if t + dt <= now_t)
    recent = closed[-needed:]
    if len(recent) < needed or recent[0] < now_t - condition.for_s - 2 * dt:
        return False
    return all(violates(condition, buckets[t].value(condition.metric)) for t in recent)


def describe(condition: Condition) -> str:
    bound = f"> {condition.above}" if condition.above is not None else f"< {condition.below}"
    return f"{condition.metric} {bound} for {condition.for_s:g} s"


class LiveTimeline:
    """Reads the complete lines a recorder has written so far, bucket totals over all names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.buckets: dict[float, BucketTotals] = {}
        self.dt = 1.0
        self.accuracy: float | None = None

    def update(self) -> None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # leave a half-written line for next time
        self.offset += end
        lines = data[:end].decode().splitlines()
        if not lines:
            return
        if self.accuracy is None and '"header"' in lines[0]:
            parsed = parse_lines(lines)
            self.dt = parsed.bucket_s
            self.accuracy = parsed.relative_accuracy
        else:
            parsed = parse_lines(lines)
        for bucket in parsed.buckets.values():
            totals = self.buckets.setdefault(bucket.t, BucketTotals())
            totals.requests += bucket.requests
            totals.failures += bucket.failures
            if totals.latency is None:
                totals.latency = bucket.latency_corrected.copy()
            else:
                totals.latency.merge(bucket.latency_corrected)
        for tick in parsed.ticks.values():
            self.buckets.setdefault(float(tick["t"]), BucketTotals())

    def recent(self, seconds: float, now_t: float) -> BucketTotals:
        """Totals over the closed buckets of the last `seconds` (for progress display)."""
        out = BucketTotals()
        for t, b in self.buckets.items():
            if now_t - seconds <= t and t + self.dt <= now_t:
                out.requests += b.requests
                out.failures += b.failures
                if b.latency is not None:
                    if out.latency is None:
                        out.latency = b.latency.copy()
                    else:
                        out.latency.merge(b.latency)
        return out


class AbortWatcher:
    """A thread that checks the conditions every second and calls `on_trip` once."""

    def __init__(
        self,
        timeline: LiveTimeline,
        conditions: Sequence[Condition],
        on_trip: Callable[[str], None],
        clock: Callable[[], float],
        lock: threading.Lock,
    ) -> None:
        self.timeline = timeline
        self.conditions = list(conditions)
        self.on_trip = on_trip
        self.clock = clock
        self.lock = lock
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
            with self.lock:
                self.timeline.update()
                now = self.clock()
                for condition in self.conditions:
                    if self.reason is None and tripped(
                        self.timeline.buckets, self.timeline.dt, condition, now
                    ):
                        self.reason = describe(condition)
            if self.reason is not None:
                self.on_trip(self.reason)
                return
