"""The timeline's unit: one bucket of one request name, and its JSON line.

A timeline file is JSON lines (see docs/timeline.md). A bucket line is a *delta*: the same
(t, name, method) may appear on several lines — a late request, or one worker's share —
and readers add them up. Every field adds exactly: counts sum, histograms merge by bin,
maxima take the max.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY, Histogram

SCHEMA = "harness.timeline/v1"


class FailureKind(StrEnum):
    """Why a request failed, as users would tell it apart."""

    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    CHECK = "check"
    """The response looked fine but a business check failed (e.g. a purchase without entitlement)."""


FAILURE_KINDS: tuple[FailureKind, ...] = tuple(FailureKind)
"""Kind codes used on the hot path: 0 is success, i+1 is FAILURE_KINDS[i]."""


def _empty_kinds() -> dict[str, int]:
    return {}


@dataclass(slots=True)
class Bucket:
    """What one request name saw in one time bucket."""

    t: float
    """Bucket start, Unix seconds. A request belongs to the bucket of its intended send time."""
    dt: float
    name: str
    method: str = ""
    requests: int = 0
    failures: int = 0
    failures_by_kind: dict[str, int] = field(default_factory=_empty_kinds)
    kpi: int = 0
    latency: Histogram = field(default_factory=Histogram)
    """Response time as Locust measures it: from actual send to response."""
    latency_corrected: Histogram = field(default_factory=Histogram)
    """From the intended send time to response: what a user on schedule waited."""
    latency_max_ms: float = 0.0
    latency_corrected_max_ms: float = 0.0
    latency_sum_ms: float = 0.0
    gen_late: int = 0
    """Requests the load generator sent late: its own lag (not the service's) exceeded the recorder's
    threshold. Absent from older files (0)."""
    gen_lag_max_ms: float = 0.0
    """Largest load-generator lag of a request (ms). While it is high, the bucket's latency says more
    about the load generator than about the service. Absent from older files (0)."""

    @property
    def key(self) -> tuple[int, str, str]:
        return (round(self.t / self.dt), self.name, self.method)

    def merge(self, other: Bucket) -> None:
        """Add another delta for the same bucket and name."""
        self.requests += other.requests
        self.failures += other.failures
        for kind, n in other.failures_by_kind.items():
            self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + n
        self.kpi += other.kpi
        self.latency.merge(other.latency)
        self.latency_corrected.merge(other.latency_corrected)
        self.latency_max_ms = max(self.latency_max_ms, other.latency_max_ms)
        self.latency_corrected_max_ms = max(self.latency_corrected_max_ms, other.latency_corrected_max_ms)
        self.latency_sum_ms += other.latency_sum_ms
        self.gen_late += other.gen_late
        self.gen_lag_max_ms = max(self.gen_lag_max_ms, other.gen_lag_max_ms)

    def to_line(self) -> dict[str, Any]:
        return {
            "type": "bucket",
            "t": round(self.t, 6),
            "dt": self.dt,
            "name": self.name,
            "method": self.method,
            "requests": self.requests,
            "failures": self.failures,
            "failures_by_kind": self.failures_by_kind,
            "kpi": self.kpi,
            "latency_ms": self.latency.to_json(),
            "latency_corrected_ms": self.latency_corrected.to_json(),
            "latency_max_ms": round(self.latency_max_ms, 3),
            "latency_corrected_max_ms": round(self.latency_corrected_max_ms, 3),
            "latency_sum_ms": round(self.latency_sum_ms, 3),
            "gen_late": self.gen_late,
            "gen_lag_max_ms": round(self.gen_lag_max_ms, 3),
        }

    @classmethod
    def from_line(cls, line: dict[str, Any], relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> Bucket:
        return cls(
            t=float(line["t"]),
            dt=float(line["dt"]),
            name=str(line["name"]),
            method=str(line.get("method", "")),
            requests=int(line["requests"]),
            failures=int(line["failures"]),
            failures_by_kind={str(k): int(v) for k, v in line.get("failures_by_kind", {}).items()},
            kpi=int(line.get("kpi", 0)),
            latency=Histogram.from_json(line.get("latency_ms", {}), relative_accuracy),
            latency_corrected=Histogram.from_json(line.get("latency_corrected_ms", {}), relative_accuracy),
            latency_max_ms=float(line.get("latency_max_ms", 0.0)),
            latency_corrected_max_ms=float(line.get("latency_corrected_max_ms", 0.0)),
            latency_sum_ms=float(line.get("latency_sum_ms", 0.0)),
            gen_late=int(line.get("gen_late", 0)),
            gen_lag_max_ms=float(line.get("gen_lag_max_ms", 0.0)),
        )
