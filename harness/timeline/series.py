"""The timeline as per-bucket arrays over all request names: what scoring reads.

A `Series` holds, per bucket of the timeline's span, the requests, failures and KPI events of
every request name together, and the latency histograms merged over names (actual and
corrected). Window percentiles merge the bins of the window's buckets, exactly as
`harness.timeline.Histogram` would, and are never averaged from per-bucket percentiles.

Every bucket between the first and the last one the timeline mentions is present: a bucket
with only a tick line (nothing completed: a total stall) or with no line at all has zeros.

Histograms are kept sparse (harness.timeline.bins), so a 24-hour timeline of 20 names fits in a
few hundred MB. Built by `harness.timeline.loading.load_series` (from a file) or
`series_from_timeline` (from a parsed Timeline), through SeriesBuilder; read by health and
metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.timeline import bins
from harness.timeline.bins import Block, LineBins, MergedLines
from harness.timeline.histogram import mapping_for
from harness.timeline.reader import QUANTILES, Timeline

MAX_BUCKETS = 50_000_000
"""A span longer than this (18 months of 1 s buckets) is a broken file, not a test."""

EMPTY_PERCENTILES: dict[str, float | None] = dict.fromkeys(QUANTILES)


@dataclass(frozen=True, eq=False)
class LatencySeries:
    """One latency histogram field (actual or corrected), merged over names, per bucket."""

    relative_accuracy: float
    zero: np.ndarray
    """Per bucket: requests with no latency (failed before sending)."""
    p50_ms: np.ndarray
    p95_ms: np.ndarray
    p99_ms: np.ndarray
    """Per-bucket percentiles; NaN for a bucket without requests."""
    blocks: tuple[Block, ...]
    key_min: int
    key_max: int

    def percentiles(self, lo: int, hi: int) -> dict[str, float | None]:
        """p50/p95/p99 of the bins merged over buckets [lo, hi); None when they hold no request."""
        zero = int(self.zero[lo:hi].sum())
        span = self.key_max - self.key_min + 1
        merged = np.zeros(span)
        for block in self.blocks:
            e0, e1 = block.segment(lo, hi)
            if e1 > e0:
                keys = block.keys[e0:e1].astype(np.int64) + (block.key_base - self.key_min)
                merged += np.bincount(keys, weights=block.counts[e0:e1], minlength=span)
        cum = np.cumsum(merged)
        total = zero + (int(cum[-1]) if cum.size else 0)
        if total == 0:
            return dict(EMPTY_PERCENTILES)
        mapping = mapping_for(self.relative_accuracy)
        out: dict[str, float | None] = {}
        for label, q in QUANTILES.items():
            rank = max(1, int(np.ceil(q * total - 1e-9)))
            if rank <= zero:
                out[label] = 0.0
            else:
                index = int(np.searchsorted(cum, rank - zero, side="left"))
                out[label] = mapping.value(index + self.key_min)
        return out


@dataclass(frozen=True)
class Window:
    """Totals and merged latency percentiles over the buckets of a window."""

    start_t: float
    end_t: float
    """Start of the first and end of the last bucket (both the asked start when the window is empty)."""
    buckets: int
    duration_s: float
    requests: int
    failures: int
    kpi: int
    latency_ms: dict[str, float | None]
    latency_corrected_ms: dict[str, float | None]

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.requests if self.requests else None


@dataclass(frozen=True, eq=False)
class Series:
    """Per-bucket arrays over the timeline's span; index i is the bucket [t[i], t[i] + dt[i])."""

    t: np.ndarray
    dt: np.ndarray
    requests: np.ndarray
    failures: np.ndarray
    kpi: np.ndarray
    users: np.ndarray
    """Users running, from the recorder's tick lines (0 where a bucket has none)."""
    gen_late: np.ndarray
    """Requests the load generator sent late (its own lag over the recorder's threshold; 0 in older files)."""
    gen_lag_max_ms: np.ndarray
    """The largest load-generator lag of a request (0 in older files or without requests)."""
    latency: LatencySeries
    """Response time as Locust measures it (send to response)."""
    latency_corrected: LatencySeries
    """From the intended send time: what a user on schedule waited (coordinated omission corrected)."""
    bucket_s: float

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def error_rate(self) -> np.ndarray:
        """Per bucket: failures / requests, NaN where nothing completed."""
        out = np.full(self.requests.size, np.nan)
        np.divide(self.failures, self.requests, out=out, where=self.requests > 0)
        return out

    def positions(self, start_t: float, end_t: float) -> tuple[int, int]:
        """Bucket positions [lo, hi) of the buckets whose start lies in [start_t, end_t)."""
        lo, hi = np.searchsorted(self.t, (start_t - 1e-9, end_t - 1e-9), side="left")
        return int(lo), int(max(lo, hi))

    def window(self, start_t: float, end_t: float) -> Window:
        """Totals over the buckets whose start lies in [start_t, end_t), as Timeline.window counts them."""
        lo, hi = self.positions(start_t, end_t)
        return self.window_at(lo, hi, start_t)

    def window_at(self, lo: int, hi: int, empty_t: float | None = None) -> Window:
        """Totals over bucket positions [lo, hi)."""
        if hi <= lo:
            at = empty_t if empty_t is not None else (float(self.t[lo]) if lo < len(self) else 0.0)
            return Window(at, at, 0, 0.0, 0, 0, 0, dict(EMPTY_PERCENTILES), dict(EMPTY_PERCENTILES))
        return Window(
            start_t=float(self.t[lo]),
            end_t=float(self.t[hi - 1] + self.dt[hi - 1]),
            buckets=hi - lo,
            duration_s=float(self.dt[lo:hi].sum()),
            requests=int(self.requests[lo:hi].sum()),
            failures=int(self.failures[lo:hi].sum()),
            kpi=int(self.kpi[lo:hi].sum()),
            latency_ms=self.latency.percentiles(lo, hi),
            latency_corrected_ms=self.latency_corrected.percentiles(lo, hi),
        )


class SeriesBuilder:
    """Takes bucket and tick lines chunk by chunk (as arrays) and builds the Series once at the end."""

    def __init__(self, bucket_s: float, relative_accuracy: float) -> None:
        if not bucket_s > 0:
            raise ValueError(f"bucket width must be positive, got {bucket_s}")
        self.bucket_s = bucket_s
        self.relative_accuracy = relative_accuracy
        self._rows: list[np.ndarray] = []
        self._sums: list[np.ndarray] = []
        self._gen_max: list[np.ndarray] = []
        self._zero: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._blocks: tuple[list[Block], list[Block]] = ([], [])
        self._ticks: list[tuple[np.ndarray, np.ndarray]] = []

    def add_buckets(
        self,
        index: np.ndarray,
        requests: np.ndarray,
        failures: np.ndarray,
        kpi: np.ndarray,
        latency: LineBins,
        latency_corrected: LineBins,
        gen_late: np.ndarray | None = None,
        gen_lag_max_ms: np.ndarray | None = None,
    ) -> None:
        """Add bucket lines: their bucket indices (round(t / dt)), counts, histogram bins and
        load-generator lateness (None: 0 for every line)."""
        zero = (latency.zero, latency_corrected.zero)
        regions = bins.as_regions(latency, latency_corrected)
        self.add_merged(
            bins.merge_lines(index, requests, failures, kpi, zero, regions, gen_late, gen_lag_max_ms)
        )

    def add_merged(self, merged: MergedLines | None) -> None:
        """Add lines already summed per bucket by `merge_lines` (which may run in another thread)."""
        if merged is None:
            return
        self._rows.append(merged.rows)
        self._sums.append(merged.sums)
        self._gen_max.append(merged.gen_lag_max_ms)
        for slot in (0, 1):
            self._zero[slot].append(merged.zero[slot])
            if merged.blocks[slot] is not None:
                self._blocks[slot].append(merged.blocks[slot])

    def add_ticks(self, index: np.ndarray, users: np.ndarray) -> None:
        """Add tick lines: their bucket indices and users running."""
        if index.size:
            self._ticks.append((index, users))

    def build(self) -> Series:
        indices = self._rows + [i for i, _ in self._ticks]
        if not indices:
            lo, n = 0, 0
        else:
            lo = min(int(i.min()) for i in indices)
            n = max(int(i.max()) for i in indices) + 1 - lo
        if n > MAX_BUCKETS:
            raise ValueError(
                f"the timeline spans {n} buckets of {self.bucket_s} s: its times are not consistent"
            )
        rows = np.concatenate(self._rows) - lo if self._rows else np.zeros(0, np.int64)
        sums = np.concatenate(self._sums) if self._sums else np.zeros((0, 4), np.int64)
        gen_lag_max_ms = np.zeros(n)
        if self._rows:
            np.maximum.at(gen_lag_max_ms, rows, np.concatenate(self._gen_max))
        users = np.zeros(n, np.int64)
        for index, values in self._ticks:
            users[index - lo] = values
        dt = np.full(n, self.bucket_s)
        latency = [
            _latency_series(
                n,
                lo,
                bins.sum_by(rows, np.concatenate(self._zero[slot]) if self._zero[slot] else np.zeros(0), n),
                self._blocks[slot],
                self.relative_accuracy,
            )
            for slot in (0, 1)
        ]
        return Series(
            t=np.round((lo + np.arange(n)) * self.bucket_s, 6),
            dt=dt,
            requests=bins.sum_by(rows, sums[:, 0], n),
            failures=bins.sum_by(rows, sums[:, 1], n),
            kpi=bins.sum_by(rows, sums[:, 2], n),
            users=users,
            gen_late=bins.sum_by(rows, sums[:, 3], n),
            gen_lag_max_ms=gen_lag_max_ms,
            latency=latency[0],
            latency_corrected=latency[1],
            bucket_s=self.bucket_s,
        )


def series_from_timeline(timeline: Timeline) -> Series:
    """The Series of a Timeline already in memory (read by harness.timeline.read_timeline)."""
    builder = SeriesBuilder(timeline.bucket_s, timeline.relative_accuracy)
    buckets = list(timeline.buckets.items())
    if buckets:

        def line_bins(field: str) -> LineBins:
            hists = [getattr(b, field) for _, b in buckets]
            return LineBins(
                zero=np.array([h.zero for h in hists], np.int64),
                lens=np.array([len(h.bins) for h in hists], np.int64),
                keys=np.array([k for h in hists for k in h.bins], np.int64),
                counts=np.array([c for h in hists for c in h.bins.values()], np.int64),
            )

        builder.add_buckets(
            np.array([key[0] for key, _ in buckets], np.int64),
            np.array([b.requests for _, b in buckets], np.int64),
            np.array([b.failures for _, b in buckets], np.int64),
            np.array([b.kpi for _, b in buckets], np.int64),
            line_bins("latency"),
            line_bins("latency_corrected"),
            np.array([b.gen_late for _, b in buckets], np.int64),
            np.array([b.gen_lag_max_ms for _, b in buckets], np.float64),
        )
    if timeline.ticks:
        index = np.array(list(timeline.ticks), np.int64)
        users = np.array([int(t.get("users", 0)) for t in timeline.ticks.values()], np.int64)
        builder.add_ticks(index, users)
    return builder.build()


def _latency_series(
    n: int, lo: int, zero: np.ndarray, blocks: list[Block], relative_accuracy: float
) -> LatencySeries:
    """Blocks moved to bucket positions, and the per-bucket percentiles computed once."""
    blocks = [Block(b.rows - lo, b.starts, b.keys, b.key_base, b.counts) for b in blocks]
    quantiles = bins.bucket_percentiles(n, zero, blocks, relative_accuracy)
    key_min, key_max = bins.key_range(blocks)
    return LatencySeries(
        relative_accuracy=relative_accuracy,
        zero=zero,
        p50_ms=quantiles["p50"],
        p95_ms=quantiles["p95"],
        p99_ms=quantiles["p99"],
        blocks=tuple(blocks),
        key_min=key_min,
        key_max=key_max,
    )
