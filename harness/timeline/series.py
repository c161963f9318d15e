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

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.timeline import bins
from harness.timeline.bins import Block, LineBins, MergedLines
from harness.timeline.histogram import Histogram, mapping_for
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
            if not block.rows.size or block.rows[-1] < lo or block.rows[0] >= hi:
                continue
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

    def above(self, positions: np.ndarray, limit_ms: float) -> np.ndarray:
        """Per bucket at the (sorted) positions: requests whose bin's value is above limit_ms.

        The same values the percentiles read (mapping.value of a bin's key), so a share above
        5 % says exactly what a p95 above the limit says; health weighs it as evidence. Only the
        blocks' entries between the first and the last position are read.
        """
        out = np.zeros(positions.size, dtype=np.float64)
        if not positions.size:
            return out
        mapping = mapping_for(self.relative_accuracy)
        first = mapping.key(limit_ms) - 1  # the smallest key whose value exceeds the limit is near here
        while mapping.value(first) > limit_ms:
            first -= 1
        while mapping.value(first) <= limit_ms:
            first += 1
        lo, hi = int(positions[0]), int(positions[-1]) + 1
        for block in self.blocks:
            if not block.rows.size or block.rows[-1] < lo or block.rows[0] >= hi:
                continue
            a, b = (int(i) for i in np.searchsorted(block.rows, (lo, hi)))
            e0, e1 = int(block.starts[a]), int(block.starts[b])
            if e1 <= e0:
                continue
            rows = np.repeat(block.rows[a:b], np.diff(block.starts[a : b + 1]))
            at = np.minimum(np.searchsorted(positions, rows), positions.size - 1)
            slow = (positions[at] == rows) & (block.keys[e0:e1].astype(np.int64) + block.key_base >= first)
            out += np.bincount(at[slow], weights=block.counts[e0:e1][slow], minlength=out.size)
        return out

    def histogram(self, lo: int, hi: int) -> Histogram:
        """The bins of buckets [lo, hi) as one Histogram, to merge with another series' bins."""
        bins: dict[int, int] = {}
        for block in self.blocks:
            if not block.rows.size or block.rows[-1] < lo or block.rows[0] >= hi:
                continue
            e0, e1 = block.segment(lo, hi)
            if e1 > e0:
                keys, inverse = np.unique(block.keys[e0:e1].astype(np.int64), return_inverse=True)
                sums = np.bincount(inverse, weights=block.counts[e0:e1])
                for key, count in zip((keys + block.key_base).tolist(), sums.tolist(), strict=True):
                    bins[key] = bins.get(key, 0) + round(count)
        return Histogram(self.relative_accuracy, bins, int(self.zero[lo:hi].sum()))


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


class SeriesChanges:
    """Which buckets a SeriesBuilder changed, revision by revision: for readers that keep what they
    derived from a growing series (the recovery watch) and redo only what changed since.

    Every addition is a revision, logged with the lowest position it changed (0 when the positions
    moved up for lines before the first bucket). The log keeps the last `KEEP` revisions, so its
    size does not grow with the run; a reader further behind is told everything may have changed.
    """

    KEEP = 4096
    """About an hour of a live run's additions (one or two a second), far more than a reader asking
    every second falls behind, in a few hundred kB."""

    def __init__(self) -> None:
        self.revision = 0
        self._log: deque[tuple[int, int]] = deque(maxlen=self.KEEP)

    def record(self, low: int) -> None:
        """A new revision that changed the buckets from position `low` (or added them)."""
        self.revision += 1
        self._log.append((self.revision, low))

    def changed_from(self, since: int, until: int) -> int | None:
        """The lowest position changed by revisions since+1..until; None if none, 0 if not known."""
        if until <= since:
            return None
        if since < self.revision - len(self._log):
            return 0  # older than the log
        low: int | None = None
        for revision, at in reversed(self._log):
            if revision <= since:
                break
            if revision <= until:
                low = at if low is None else min(low, at)
        return low


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
    revision: int = 0
    """The builder's revision this series was taken at (`changes`)."""
    changes: SeriesChanges | None = field(default=None, repr=False)
    """The builder's log of changes, shared with every series it builds; None: not built to grow."""

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def error_rate(self) -> np.ndarray:
        """Per bucket: failures / requests, NaN where nothing completed."""
        return self.error_rate_at(0, len(self))

    def error_rate_at(self, lo: int, hi: int) -> np.ndarray:
        """`error_rate` of positions [lo, hi) only, so a reader of the last seconds pays for those."""
        requests = self.requests[lo:hi]
        out = np.full(requests.size, np.nan)
        np.divide(self.failures[lo:hi], requests, out=out, where=requests > 0)
        return out

    def ends_by(self, at_t: float) -> int:
        """How many buckets end by at_t: `searchsorted(t + dt, at_t, "right")`, the same number, without
        adding up the whole series (buckets are in order and do not overlap, so their ends are too)."""
        u = int(np.searchsorted(self.t, at_t, side="right"))  # a bucket starting after at_t ends after it
        lo = max(0, u - 4)
        if lo and not self.t[lo - 1] + self.dt[lo - 1] <= at_t:  # buckets wider than their spacing
            return int(np.searchsorted(self.t + self.dt, at_t, side="right"))
        return lo + int(np.searchsorted(self.t[lo:u] + self.dt[lo:u], at_t, side="right"))

    def changed_from(self, revision: int) -> int | None:
        """The lowest position whose data changed (or was added) after `revision`, up to this series'
        own; None if nothing did, 0 if that is not known (a series not built to grow, a revision too old)."""
        if self.changes is None:
            return 0
        return self.changes.changed_from(revision, self.revision)

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


def pooled_window(parts: Sequence[tuple[Series, int, int]]) -> Window:
    """One Window over bucket positions [lo, hi) of several series, as if their buckets were one
    timeline's: counts and durations add, latency bins merge (`Histogram.merge`, exact), so the
    percentiles are those of all the requests together, never an average of the parts'.

    For thresholds shared by several trials (`harness compare`'s one scale). start_t and end_t span
    the parts; with no bucket at all the window is empty at 0. ValueError when the series' histograms
    have different accuracies (they cannot merge).
    """
    parts = [(series, lo, hi) for series, lo, hi in parts if hi > lo]
    if not parts:
        return Window(0.0, 0.0, 0, 0.0, 0, 0, 0, dict(EMPTY_PERCENTILES), dict(EMPTY_PERCENTILES))

    def percentiles(corrected: bool) -> dict[str, float | None]:
        merged: Histogram | None = None
        for series, lo, hi in parts:
            part = (series.latency_corrected if corrected else series.latency).histogram(lo, hi)
            if merged is None:
                merged = part
            else:
                merged.merge(part)
        assert merged is not None
        return {label: merged.quantile(q) for label, q in QUANTILES.items()}

    return Window(
        start_t=min(float(series.t[lo]) for series, lo, _ in parts),
        end_t=max(float(series.t[hi - 1] + series.dt[hi - 1]) for series, _, hi in parts),
        buckets=sum(hi - lo for _, lo, hi in parts),
        duration_s=sum(float(series.dt[lo:hi].sum()) for series, lo, hi in parts),
        requests=sum(int(series.requests[lo:hi].sum()) for series, lo, hi in parts),
        failures=sum(int(series.failures[lo:hi].sum()) for series, lo, hi in parts),
        kpi=sum(int(series.kpi[lo:hi].sum()) for series, lo, hi in parts),
        latency_ms=percentiles(corrected=False),
        latency_corrected_ms=percentiles(corrected=True),
    )


def compact(series: Series) -> Series:
    """The same Series in arrays of its own, exactly their size.

    A built Series is a view on its builder, whose arrays have room to grow (a 2-minute scenario's
    columns hold 1,024 buckets, its histogram blocks double): kept for the rest of a run (the
    engine's finished scenarios), the copy costs what the data does, not what the builder reserved.
    """

    def latency(lat: LatencySeries) -> LatencySeries:
        blocks = tuple(
            dataclasses.replace(
                b, rows=b.rows.copy(), starts=b.starts.copy(), keys=b.keys.copy(), counts=b.counts.copy()
            )
            for b in lat.blocks
        )
        return dataclasses.replace(
            lat, zero=lat.zero.copy(), p50_ms=lat.p50_ms.copy(), p95_ms=lat.p95_ms.copy(), p99_ms=lat.p99_ms.copy(),
            blocks=blocks,
        )  # fmt: skip

    columns = ("t", "dt", "requests", "failures", "kpi", "users", "gen_late", "gen_lag_max_ms")
    return dataclasses.replace(
        series,
        **{name: getattr(series, name).copy() for name in columns},
        latency=latency(series.latency),
        latency_corrected=latency(series.latency_corrected),
        changes=None,  # a finished copy does not grow: nothing to track, and the builder's log is let go
    )


SEALED_ENTRIES = 1 << 15
"""A block of this many bins or more (a chunk of a file read at once) is kept as it is, a block of
its own; smaller ones (a second of a live run) are appended to the open block."""
OPEN_ENTRIES = 1 << 18
"""Bins the growing block of a series may hold before it is sealed and a new one begun. Lines that
arrive a second at a time are appended to this block (a copy of at most this many entries), so the
number of blocks a window walks stays small however long the run."""


OPEN_KEEP_ROWS = 64
"""When the open block is sealed, its last buckets stay open: late deltas for them (a worker
reporting late) are then merged into the open block rather than making a block of their own."""


class _Columns:
    """Per-bucket arrays that grow at the end (doubling) and, rarely, at the start."""

    INT = ("requests", "failures", "kpi", "gen_late", "users", "zero0", "zero1", "seen0", "seen1")
    FLOAT = ("t", "dt", "gen_lag_max_ms", "p50_0", "p95_0", "p99_0", "p50_1", "p95_1", "p99_1")

    def __init__(self) -> None:
        self.n = 0
        self.cap = 0
        self.a: dict[str, np.ndarray] = {}
        self._alloc(1024, 0)

    def _alloc(self, cap: int, shift: int) -> None:
        fresh = {}
        for name in self.INT:
            fresh[name] = np.zeros(cap, np.int64)
        for name in self.FLOAT:
            fresh[name] = np.full(cap, np.nan if name[0] == "p" else 0.0)
        for name, old in self.a.items():
            fresh[name][shift : shift + self.n] = old[: self.n]
        self.a, self.cap = fresh, cap

    def grow(self, n: int, shift: int = 0) -> None:
        """Make room for n positions, the old ones moved `shift` places up."""
        if n > self.cap or shift:
            self._alloc(max(n, 2 * self.cap) if n > self.cap else self.cap, shift)
        self.n = n


class SeriesBuilder:
    """Takes bucket and tick lines (as arrays), in any order, into a Series that can be taken at any time.

    Built for a file read in chunks and for a live file extended by what was appended since the
    last read alike: per-bucket counts are added in place, and the per-bucket percentiles are
    computed only for the buckets the new lines touched (a bucket whose lines arrive in several
    pieces, late deltas, merges its bins from every block that holds some). `build()` costs no
    more than the number of blocks: the Series it returns shares this builder's arrays, so it is
    a view that later additions may change (take it, use it, then add more).
    """

    def __init__(self, bucket_s: float, relative_accuracy: float) -> None:
        if not bucket_s > 0:
            raise ValueError(f"bucket width must be positive, got {bucket_s}")
        self.bucket_s = bucket_s
        self.relative_accuracy = relative_accuracy
        self._origin: int | None = None
        """Bucket index of position 0."""
        self._cols = _Columns()
        self._sealed: tuple[list[Block], list[Block]] = ([], [])
        self._open = [_OpenBlock(), _OpenBlock()]
        self._keys = [0, 0, 0, 0]
        """key_min, key_max of each histogram (latency: 0-1, corrected: 2-3); meaningless without bins."""
        self._values = bins._Values(mapping_for(relative_accuracy), 0, -1)
        self.changes = SeriesChanges()

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
        if merged is None or merged.rows.size == 0:
            return
        pos = self._positions(merged.rows)
        a = self._cols.a
        for col, values in zip(("requests", "failures", "kpi", "gen_late"), merged.sums.T, strict=True):
            a[col][pos] += values
        a["zero0"][pos] += merged.zero[0]
        a["zero1"][pos] += merged.zero[1]
        np.maximum.at(a["gen_lag_max_ms"], pos, merged.gen_lag_max_ms)
        for slot in (0, 1):
            block = merged.blocks[slot]
            if block is not None:
                block = Block(
                    pos, block.starts, block.keys, block.key_base, block.counts
                )  # rows: merged.rows
                self._add_block(slot, block)
            self._percentiles(slot, pos, block)
            if self._open[slot].entries >= OPEN_ENTRIES:
                self._seal(slot, OPEN_KEEP_ROWS)
        self.changes.record(int(pos.min()))

    def add_ticks(self, index: np.ndarray, users: np.ndarray) -> None:
        """Add tick lines: their bucket indices and users running."""
        if index.size:
            pos = self._positions(index)  # (first: it may reallocate the columns)
            self._cols.a["users"][pos] = users
            self.changes.record(int(pos.min()))

    def build(self) -> Series:
        n = self._cols.n
        a = self._cols.a
        latency = [self._latency(slot, n) for slot in (0, 1)]
        return Series(
            t=a["t"][:n],
            dt=a["dt"][:n],
            requests=a["requests"][:n],
            failures=a["failures"][:n],
            kpi=a["kpi"][:n],
            users=a["users"][:n],
            gen_late=a["gen_late"][:n],
            gen_lag_max_ms=a["gen_lag_max_ms"][:n],
            latency=latency[0],
            latency_corrected=latency[1],
            bucket_s=self.bucket_s,
            revision=self.changes.revision,
            changes=self.changes,
        )

    # --- positions ---------------------------------------------------------------------------
    def _positions(self, index: np.ndarray) -> np.ndarray:
        """Positions of bucket indices, the arrays grown (or moved up) to hold them."""
        lo, hi = int(index.min()), int(index.max())
        cols = self._cols
        if self._origin is None:
            self._origin = lo
        shift = max(0, self._origin - lo)
        n = max(cols.n + shift, hi - self._origin + shift + 1)
        if n > MAX_BUCKETS:
            raise ValueError(
                f"the timeline spans {n} buckets of {self.bucket_s} s: its times are not consistent"
            )
        if n > cols.n or shift:
            old = cols.n
            cols.grow(n, shift)
            self._origin -= shift
            if shift:
                self._shift_blocks(shift)
                old += shift
                fresh = np.r_[0:shift, old:n]
            else:
                fresh = np.arange(old, n)
            cols.a["t"][fresh] = np.round((self._origin + fresh) * self.bucket_s, 6)
            cols.a["dt"][fresh] = self.bucket_s
            if shift:
                self.changes.record(0)  # every position moved
        return index - self._origin

    def _shift_blocks(self, shift: int) -> None:
        for slot in (0, 1):
            self._sealed[slot][:] = [
                Block(b.rows + shift, b.starts, b.keys, b.key_base, b.counts) for b in self._sealed[slot]
            ]
            self._open[slot].rows.a[: self._open[slot].rows.n] += shift

    # --- histogram blocks --------------------------------------------------------------------
    def _add_block(self, slot: int, block: Block) -> None:
        """Keep a block's bins: appended to the open block when they follow it, else a block of their own."""
        keys = self._keys
        if block.keys.size:
            low = block.key_base
            high = block.key_base + int(block.keys.max())
            if self._blocks_empty(slot):
                keys[2 * slot], keys[2 * slot + 1] = low, high
            else:
                keys[2 * slot] = min(keys[2 * slot], low)
                keys[2 * slot + 1] = max(keys[2 * slot + 1], high)
        seen = self._cols.a[f"seen{slot}"]
        opened = self._open[slot]
        first = int(block.rows[0])
        if block.counts.size >= SEALED_ENTRIES:
            self._seal(slot)
            self._sealed[slot].append(block)
            seen[block.rows] += 1
        elif opened.empty or first > opened.last_row:
            opened.append(block)
            seen[block.rows] += 1
        elif first >= opened.first_row:
            before = opened.rows_from(first)
            opened.merge_tail(block)
            added = np.setdiff1d(block.rows, before, assume_unique=True)
            seen[added] += 1
        else:  # lines for buckets before the open block: rare (very late deltas)
            self._sealed[slot].append(block)
            seen[block.rows] += 1

    def _seal(self, slot: int, keep_rows: int = 0) -> None:
        """Keep the open block's rows as a sealed block, but for its last `keep_rows` (they stay open)."""
        opened = self._open[slot]
        if opened.empty:
            return
        until = opened.last_row - keep_rows + 1
        head = opened.sealed_before(until)
        if head is not None:
            self._sealed[slot].append(head)
        fresh = _OpenBlock()
        tail = opened.view_from(until)
        if tail.rows.size:
            fresh.append(tail)
        self._open[slot] = fresh

    def _blocks_empty(self, slot: int) -> bool:
        return not self._sealed[slot] and self._open[slot].empty

    def _blocks(self, slot: int) -> list[Block]:
        opened = self._open[slot]
        return [*self._sealed[slot], *([] if opened.empty else [opened.view()])]

    def _percentiles(self, slot: int, pos: np.ndarray, block: Block | None) -> None:
        """Recompute the per-bucket percentiles of the buckets at `pos` (the ones new lines touched)."""
        a = self._cols.a
        zero, seen = a[f"zero{slot}"], a[f"seen{slot}"]
        out = {label: a[f"{label}_{slot}"] for label in QUANTILES}
        for label in QUANTILES:
            out[label][pos] = np.where(zero[pos] > 0, 0.0, np.nan)
        binned = pos[seen[pos] > 0]
        if not binned.size:
            return
        values = self._values_for(slot)
        rest = binned
        home = self._home(slot, block) if block is not None else None
        if home is not None:  # the touched buckets whose bins are all in the block they went to
            single = binned[seen[binned] == 1]
            use = np.isin(home.rows, single, assume_unique=True)
            bins._fill_percentiles(out, home, zero, use, values)
            rest = np.setdiff1d(binned, home.rows[use], assume_unique=True)
        if rest.size:  # buckets whose bins are in several blocks (late deltas): merged first
            mask = np.zeros(self._cols.n, bool)
            mask[rest] = True
            lo, hi = int(rest[0]), int(rest[-1])  # (rest is sorted) only blocks reaching them are read
            near = [b for b in self._blocks(slot) if b.rows.size and b.rows[0] <= hi and b.rows[-1] >= lo]
            merged = bins._merged_rows(near, mask)
            if merged is not None:
                bins._fill_percentiles(out, merged, zero, np.ones(merged.rows.size, bool), values)

    def _home(self, slot: int, block: Block) -> Block | None:
        """The stored rows of a block just added, as a block of their own (None: they were merged apart)."""
        sealed = self._sealed[slot]
        if sealed and sealed[-1] is block:
            return block
        opened = self._open[slot]
        if opened.empty:
            return (
                sealed[-1]
                if sealed and np.array_equal(sealed[-1].rows[-block.rows.size :], block.rows)
                else None
            )
        return opened.view_from(int(block.rows[0]))

    def _values_for(self, slot: int) -> bins._Values:
        low, high = self._keys[2 * slot], self._keys[2 * slot + 1]
        v = self._values
        if v.table is None or low < v.key_min or high > v.key_min + v.table.size - 1:
            low = min(low, self._keys[0], self._keys[2]) - 64
            high = max(high, self._keys[1], self._keys[3]) + 64
            self._values = v = bins._Values(mapping_for(self.relative_accuracy), low, high)
        return v

    def _latency(self, slot: int, n: int) -> LatencySeries:
        a = self._cols.a
        blocks = tuple(self._blocks(slot))
        key_min, key_max = (self._keys[2 * slot], self._keys[2 * slot + 1]) if blocks else (0, 0)
        return LatencySeries(
            relative_accuracy=self.relative_accuracy,
            zero=a[f"zero{slot}"][:n],
            p50_ms=a[f"p50_{slot}"][:n],
            p95_ms=a[f"p95_{slot}"][:n],
            p99_ms=a[f"p99_{slot}"][:n],
            blocks=blocks,
            key_min=key_min,
            key_max=key_max,
        )


class _Grow:
    """A 1-d array that grows at the end by doubling."""

    def __init__(self, dtype: Any) -> None:
        self.a = np.zeros(256, dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.n + values.size
        if need > self.a.size:
            bigger = np.zeros(max(need, 2 * self.a.size), self.a.dtype)
            bigger[: self.n] = self.a[: self.n]
            self.a = bigger
        self.a[self.n : need] = values
        self.n = need

    def cut(self, n: int) -> None:
        self.n = n

    @property
    def view(self) -> np.ndarray:
        return self.a[: self.n]


class _OpenBlock:
    """The growing block: rows in increasing order, keys absolute (key_base 0)."""

    def __init__(self) -> None:
        self.rows = _Grow(np.int64)
        self.ends = _Grow(np.int64)
        """Per row: where its entries end (starts are 0 and the ends before)."""
        self.keys = _Grow(np.int32)
        self.counts = _Grow(np.int64)

    @property
    def empty(self) -> bool:
        return self.rows.n == 0

    @property
    def entries(self) -> int:
        return self.keys.n

    @property
    def first_row(self) -> int:
        return int(self.rows.a[0])

    @property
    def last_row(self) -> int:
        return int(self.rows.a[self.rows.n - 1])

    def append(self, block: Block) -> None:
        """Add a block whose rows all come after this one's."""
        base = self.keys.n
        self.rows.extend(block.rows)
        self.ends.extend(block.starts[1:] + base)
        self.keys.extend(block.keys.astype(np.int32) + np.int32(block.key_base))
        self.counts.extend(block.counts.astype(np.int64))

    def rows_from(self, row: int) -> np.ndarray:
        """This block's rows from `row` on (a copy)."""
        rows = self.rows.view
        return rows[np.searchsorted(rows, row) :].copy()

    def merge_tail(self, block: Block) -> None:
        """Add a block whose first row is within this one: its rows from there on are merged again."""
        first = int(block.rows[0])
        cut = int(np.searchsorted(self.rows.view, first))
        kept = int(self.ends.a[cut - 1]) if cut else 0
        tail = self.view_from(first)
        rows = np.concatenate([_entry_rows(tail), _entry_rows(block)])
        keys = np.concatenate([tail.keys.astype(np.int64), block.keys.astype(np.int64) + block.key_base])
        counts = np.concatenate([tail.counts, block.counts.astype(np.int64)])
        present = np.union1d(tail.rows, block.rows)
        merged = bins._block(present, np.searchsorted(present, rows), keys, counts)
        self.rows.cut(cut)
        self.ends.cut(cut)
        self.keys.cut(kept)
        self.counts.cut(kept)
        if merged is not None:
            self.append(merged)

    def view(self) -> Block:
        return self.view_from(None)

    def view_from(self, row: int | None) -> Block:
        """The block's rows from `row` on (all: None), sharing its arrays."""
        rows = self.rows.view
        i = 0 if row is None else int(np.searchsorted(rows, row))
        starts = np.concatenate(([0], self.ends.view))[i:]
        first = int(starts[0])
        return Block(rows[i:], starts - first, self.keys.view[first:], 0, self.counts.view[first:])

    def sealed_before(self, row: int) -> Block | None:
        """A compact copy (smallest integer types) of the block's rows before `row`; None if none."""
        i = int(np.searchsorted(self.rows.view, row))
        if i == 0:
            return None
        rows = self.rows.view[:i].copy()
        entries = int(self.ends.a[i - 1])
        entry_rows = np.repeat(np.arange(i), np.diff(np.concatenate(([0], self.ends.view[:i]))))
        block = bins._make_block(rows, entry_rows, self.keys.view[:entries].astype(np.int64),
                                 self.counts.view[:entries])  # fmt: skip
        if block is None:  # rows without bins (zero-latency requests only)
            return Block(rows, np.zeros(i + 1, np.int64), np.zeros(0, np.uint16), 0, np.zeros(0, np.uint16))
        return block


def _entry_rows(block: Block) -> np.ndarray:
    """Per entry of a block: its row."""
    return np.repeat(block.rows, np.diff(block.starts))


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
