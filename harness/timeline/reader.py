"""Read a timeline file back and ask it questions: counts and percentiles per window.

Tolerates a file that is still being written (a half-written last line is ignored) so it
can be used on a live run; any other malformed line is an error naming the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import FileInputError
from harness.timeline.buckets import SCHEMA, Bucket
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY, Histogram

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


@dataclass(slots=True)
class WindowStats:
    """Totals and latency over a time window, for one name or all of them."""

    start: float
    end: float
    requests: int = 0
    failures: int = 0
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    kpi: int = 0
    latency: Histogram = field(default_factory=Histogram)
    latency_corrected: Histogram = field(default_factory=Histogram)
    latency_max_ms: float = 0.0
    latency_corrected_max_ms: float = 0.0
    gen_late: int = 0
    """Requests the load generator sent late (see Bucket.gen_late)."""
    gen_lag_max_ms: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.requests if self.requests else None

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def percentiles_ms(self, corrected: bool = False) -> dict[str, float | None]:
        hist = self.latency_corrected if corrected else self.latency
        return {label: hist.quantile(q) for label, q in QUANTILES.items()}

    def add(self, bucket: Bucket) -> None:
        self.requests += bucket.requests
        self.failures += bucket.failures
        for kind, n in bucket.failures_by_kind.items():
            self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + n
        self.kpi += bucket.kpi
        self.latency.merge(bucket.latency)
        self.latency_corrected.merge(bucket.latency_corrected)
        self.latency_max_ms = max(self.latency_max_ms, bucket.latency_max_ms)
        self.latency_corrected_max_ms = max(self.latency_corrected_max_ms, bucket.latency_corrected_max_ms)
        self.gen_late += bucket.gen_late
        self.gen_lag_max_ms = max(self.gen_lag_max_ms, bucket.gen_lag_max_ms)


@dataclass(slots=True)
class Timeline:
    """A whole timeline, deltas already summed per (bucket, name, method)."""

    header: dict[str, Any]
    buckets: dict[tuple[int, str, str], Bucket]
    ticks: dict[int, dict[str, Any]]
    """Per bucket index: the recorder's heartbeat (users running), also for buckets with no requests."""
    end: dict[str, Any] | None = None
    workers: dict[str, Any] | None = None
    """The master's last `workers` line (how many Locust workers had joined); None: no master."""

    @property
    def bucket_s(self) -> float:
        return float(self.header.get("bucket_s", 1.0))

    @property
    def relative_accuracy(self) -> float:
        return float(self.header.get("relative_accuracy", DEFAULT_RELATIVE_ACCURACY))

    def names(self) -> list[tuple[str, str]]:
        """(name, method) pairs present, sorted."""
        return sorted({(b.name, b.method) for b in self.buckets.values()})

    def span(self) -> tuple[float, float] | None:
        """First bucket start and last bucket end, over requests and ticks."""
        starts = [b.t for b in self.buckets.values()] + [t["t"] for t in self.ticks.values()]
        if not starts:
            return None
        return min(starts), max(starts) + self.bucket_s

    def window(self, start: float, end: float, names: Iterable[str] | None = None) -> WindowStats:
        """Totals over buckets whose start lies in [start, end), for the given names or all."""
        wanted = set(names) if names is not None else None
        acc = self.relative_accuracy
        stats = WindowStats(start, end, latency=Histogram(acc), latency_corrected=Histogram(acc))
        for bucket in self.buckets.values():
            in_window = start <= bucket.t + 1e-9 and bucket.t < end - 1e-9
            if in_window and (wanted is None or bucket.name in wanted):
                stats.add(bucket)
        return stats

    def total(self) -> WindowStats:
        span = self.span()
        return self.window(*span) if span else WindowStats(0.0, 0.0)


def parse_lines(lines: Iterable[str], source: str = "<timeline>") -> Timeline:
    """Sum the delta lines of a timeline into a Timeline."""
    header: dict[str, Any] = {}
    buckets: dict[tuple[int, str, str], Bucket] = {}
    ticks: dict[int, dict[str, Any]] = {}
    end = None
    workers = None
    pending_error: FileInputError | None = None
    for number, text in enumerate(lines, start=1):
        if pending_error is not None:  # a bad line that was not the last one
            raise pending_error
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            kind = line.get("type", "bucket")
        except (json.JSONDecodeError, AttributeError) as exc:
            # The last line of a file being written may be incomplete; any other is an error.
            pending_error = FileInputError(source, f"not a JSON object: {exc}", line=number)
            continue
        try:
            if kind == "header":
                if line.get("schema") != SCHEMA:
                    raise FileInputError(
                        source, f"schema {line.get('schema')!r} is not {SCHEMA!r}", line=number
                    )
                header = line
            elif kind == "bucket":
                bucket = Bucket.from_line(
                    line, float(header.get("relative_accuracy", DEFAULT_RELATIVE_ACCURACY))
                )
                have = buckets.get(bucket.key)
                if have is None:
                    buckets[bucket.key] = bucket
                else:
                    have.merge(bucket)
            elif kind == "tick":
                index = round(float(line["t"]) / float(line["dt"]))
                ticks[index] = line
            elif kind == "end":
                end = line
            elif kind == "workers":
                workers = line
        except (KeyError, TypeError, ValueError) as exc:
            raise FileInputError(source, f"bad {kind} line: {exc!r}", line=number) from exc
    return Timeline(header=header, buckets=buckets, ticks=ticks, end=end, workers=workers)


def read_timeline(path: str | Path) -> Timeline:
    """Read a timeline file (or a live one) into a Timeline."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            return parse_lines(fh, source=str(path))
    except FileNotFoundError as exc:
        raise FileInputError(path, "no such timeline file") from exc
