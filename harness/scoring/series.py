"""The timeline as per-bucket arrays over all request names: what scoring reads.

A `Series` holds, per bucket of the timeline's span, the requests, failures and KPI events of
every request name together, and the latency histograms merged over names (actual and
corrected). Window percentiles merge the bins of the window's buckets, exactly as
`harness.timeline.Histogram` would, and are never averaged from per-bucket percentiles.

Every bucket between the first and the last one the timeline mentions is present: a bucket
with only a tick line (nothing completed: a total stall) or with no line at all has zeros.

Histograms are kept sparse, in blocks (one per chunk of lines read): for each bucket of a
block its bins sorted by key, as small integer arrays, so a 24-hour timeline of 20 names
fits in a few hundred MB. A bucket whose lines fall into several blocks (a late delta) is
merged when percentiles are computed.

Built by `harness.scoring.loading.load_series` (from a file) or `series_from_timeline` (from
a parsed Timeline); read by health and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from ddsketch.mapping import LogarithmicMapping

from harness.timeline.histogram import mapping_for
from harness.timeline.reader import QUANTILES, Timeline

KEY_LIMIT = 1 << 22
"""Histogram keys lie within ±KEY_LIMIT: a latency a float can hold, at accuracy 0.0001 or coarser."""
MAX_BUCKETS = 50_000_000
"""A span longer than this (18 months of 1 s buckets) is a broken file, not a test."""
_DENSE_CELLS_MIN = 1 << 20
"""A chunk's bins are summed in a dense (bucket x key) table when it has at most this many cells
(or four per bin): a bincount is several times faster than the sort it replaces."""

EMPTY_PERCENTILES: dict[str, float | None] = dict.fromkeys(QUANTILES)


class LineBins(NamedTuple):
    """One histogram field of many bucket lines, flattened: line i has bins lens[i] of keys/counts."""

    zero: np.ndarray
    lens: np.ndarray
    keys: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True, eq=False)
class _Block:
    """Merged bins of some buckets: bins of rows[i] are keys[starts[i]:starts[i + 1]] + key_base, by key."""

    rows: np.ndarray
    starts: np.ndarray
    keys: np.ndarray
    key_base: int
    counts: np.ndarray

    def segment(self, lo: int, hi: int) -> tuple[int, int]:
        """Entry range of the rows within [lo, hi)."""
        a, b = np.searchsorted(self.rows, (lo, hi))
        return int(self.starts[a]), int(self.starts[b])


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
    blocks: tuple[_Block, ...]
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


@dataclass(frozen=True, eq=False)
class MergedLines:
    """Some bucket lines summed per bucket: what SeriesBuilder keeps of them."""

    rows: np.ndarray
    """The bucket indices, increasing."""
    sums: np.ndarray
    """Per row: requests, failures, KPI."""
    zero: tuple[np.ndarray, np.ndarray]
    blocks: tuple[_Block | None, _Block | None]


def merge_lines(
    index: np.ndarray,
    requests: np.ndarray,
    failures: np.ndarray,
    kpi: np.ndarray,
    zero: tuple[np.ndarray, np.ndarray],
    bins: RegionBins,
) -> MergedLines | None:
    """Sum bucket lines per bucket index, and their bins per (histogram, bucket, key); None for no lines.

    Per line: its bucket index, counts and zero-latency counts (latency, corrected). Pure and
    independent of other lines, so a loader can run it on several chunks at once.
    """
    if index.size == 0:
        return None
    rows, inverse = np.unique(index, return_inverse=True)
    n = rows.size
    sums = np.stack([_sum_by(inverse, values, n) for values in (requests, failures, kpi)], axis=1)
    zeros = (_sum_by(inverse, zero[0], n), _sum_by(inverse, zero[1], n))
    region_row = inverse[bins.region_line]
    keys = bins.keys
    if keys.size == 0:
        return MergedLines(rows, sums, zeros, (None, None))
    kmin = int(keys.min())
    span = int(keys.max()) - kmin + 1
    plane = n * span
    if 2 * plane <= max(4 * keys.size, _DENSE_CELLS_MIN):
        # The usual case: a dense (histogram x row x key) table, indexed straight by key.
        base = (bins.region_histogram.astype(np.int64) * n + region_row) * span - kmin
        dense = np.bincount(
            np.repeat(base, bins.region_bins) + keys, weights=bins.counts, minlength=2 * plane
        )
        cells = np.flatnonzero(dense)
        blocks = _split_planes(
            rows, cells, dense[cells].astype(np.int64), plane, np.arange(kmin, kmin + span)
        )
    else:
        bin_row = np.repeat(region_row, bins.region_bins)
        bin_histogram = np.repeat(bins.region_histogram, bins.region_bins)
        blocks = _blocks(rows, bin_row, bin_histogram, keys, bins.counts)
    return MergedLines(rows, sums, zeros, blocks)


class RegionBins(NamedTuple):
    """The bins of many histograms, histogram by histogram ("regions"), each of some line."""

    region_line: np.ndarray
    region_histogram: np.ndarray
    """0 for latency_ms, 1 for latency_corrected_ms."""
    region_bins: np.ndarray
    """How many of keys and counts are the region's."""
    keys: np.ndarray
    counts: np.ndarray


def _as_regions(latency: LineBins, corrected: LineBins) -> RegionBins:
    """Two LineBins as regions: every line's latency histogram, then every line's corrected one."""
    lines = np.arange(latency.lens.size)
    return RegionBins(
        region_line=np.concatenate([lines, lines]),
        region_histogram=np.repeat(np.array([0, 1], np.uint8), lines.size),
        region_bins=np.concatenate([latency.lens, corrected.lens]),
        keys=np.concatenate([latency.keys, corrected.keys]),
        counts=np.concatenate([latency.counts, corrected.counts]),
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
        self._zero: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._blocks: tuple[list[_Block], list[_Block]] = ([], [])
        self._ticks: list[tuple[np.ndarray, np.ndarray]] = []

    def add_buckets(
        self,
        index: np.ndarray,
        requests: np.ndarray,
        failures: np.ndarray,
        kpi: np.ndarray,
        latency: LineBins,
        latency_corrected: LineBins,
    ) -> None:
        """Add bucket lines: their bucket indices (round(t / dt)), counts and histogram bins."""
        zero = (latency.zero, latency_corrected.zero)
        bins = _as_regions(latency, latency_corrected)
        self.add_merged(merge_lines(index, requests, failures, kpi, zero, bins))

    def add_merged(self, merged: MergedLines | None) -> None:
        """Add lines already summed per bucket by `merge_lines` (which may run in another thread)."""
        if merged is None:
            return
        self._rows.append(merged.rows)
        self._sums.append(merged.sums)
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
        sums = np.concatenate(self._sums) if self._sums else np.zeros((0, 3), np.int64)
        users = np.zeros(n, np.int64)
        for index, values in self._ticks:
            users[index - lo] = values
        dt = np.full(n, self.bucket_s)
        latency = [
            _latency_series(
                n,
                lo,
                _sum_by(rows, np.concatenate(self._zero[slot]) if self._zero[slot] else np.zeros(0), n),
                self._blocks[slot],
                self.relative_accuracy,
            )
            for slot in (0, 1)
        ]
        return Series(
            t=np.round((lo + np.arange(n)) * self.bucket_s, 6),
            dt=dt,
            requests=_sum_by(rows, sums[:, 0], n),
            failures=_sum_by(rows, sums[:, 1], n),
            kpi=_sum_by(rows, sums[:, 2], n),
            users=users,
            latency=latency[0],
            latency_corrected=latency[1],
            bucket_s=self.bucket_s,
        )


def series_from_timeline(timeline: Timeline) -> Series:
    """The Series of a Timeline already in memory (read by harness.timeline.read_timeline)."""
    builder = SeriesBuilder(timeline.bucket_s, timeline.relative_accuracy)
    buckets = list(timeline.buckets.items())
    if buckets:

        def bins(field: str) -> LineBins:
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
            bins("latency"),
            bins("latency_corrected"),
        )
    if timeline.ticks:
        index = np.array(list(timeline.ticks), np.int64)
        users = np.array([int(t.get("users", 0)) for t in timeline.ticks.values()], np.int64)
        builder.add_ticks(index, users)
    return builder.build()


def _sum_by(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1: the sum of its values, as int64 (exact below 2^53)."""
    if groups.size == 0:
        return np.zeros(n, np.int64)
    return np.bincount(groups, weights=values, minlength=n).astype(np.int64)


def _block(rows: np.ndarray, entry_rows: np.ndarray, keys: np.ndarray, counts: np.ndarray) -> _Block | None:
    """The bins of one histogram summed per (row, key); entry_rows are positions in `rows`."""
    return _blocks(rows, entry_rows, np.zeros(keys.size, np.uint8), keys, counts)[0]


def _blocks(
    rows: np.ndarray, bin_row: np.ndarray, bin_histogram: np.ndarray, keys: np.ndarray, counts: np.ndarray
) -> tuple[_Block | None, _Block | None]:
    """Sum bins per (histogram, row, key); per histogram, a block of its rows' bins by key (None if none).

    bin_row are positions in `rows`. A dense (histogram x row x key) table summed by one bincount
    when it is small enough (the usual case: a chunk spans a few thousand buckets and keys);
    otherwise sorting.
    """
    n = rows.size
    if keys.size == 0:
        return None, None
    kmin = int(keys.min())
    span = int(keys.max()) - kmin + 1
    if span <= 1 << 16:
        present = np.zeros(span, bool)
        present[keys - kmin] = True
        col_keys = np.flatnonzero(present)
        cols = (np.cumsum(present) - 1)[keys - kmin]
    else:
        col_keys, cols = np.unique(keys - kmin, return_inverse=True)
    ncols = col_keys.size
    plane = n * ncols
    histogram = bin_histogram.astype(np.int64)
    if 2 * plane <= max(4 * keys.size, _DENSE_CELLS_MIN):
        dense = np.bincount((histogram * n + bin_row) * ncols + cols, weights=counts, minlength=2 * plane)
        cells = np.flatnonzero(dense)
        cell_counts = dense[cells].astype(np.int64)
    else:
        flat = (histogram * n + bin_row) * ncols + cols
        cells, inverse = np.unique(flat, return_inverse=True)
        cell_counts = np.bincount(inverse, weights=counts, minlength=cells.size).astype(np.int64)
        cells, cell_counts = cells[cell_counts > 0], cell_counts[cell_counts > 0]
    return _split_planes(rows, cells, cell_counts, plane, col_keys + kmin)


def _split_planes(
    rows: np.ndarray, cells: np.ndarray, cell_counts: np.ndarray, plane: int, column_keys: np.ndarray
) -> tuple[_Block | None, _Block | None]:
    """The two histograms' blocks from the non-empty cells of a (histogram x row x column) table, in order."""
    ncols = column_keys.size
    split = int(np.searchsorted(cells, plane))
    out = []
    for part, part_counts in (
        (cells[:split], cell_counts[:split]),
        (cells[split:] - plane, cell_counts[split:]),
    ):
        cell_rows, cell_cols = np.divmod(part, ncols)
        out.append(_make_block(rows, cell_rows, column_keys[cell_cols], part_counts))
    return out[0], out[1]


def _make_block(
    rows: np.ndarray, cell_rows: np.ndarray, cell_keys: np.ndarray, cell_counts: np.ndarray
) -> _Block | None:
    """A block from summed cells sorted by (row, key), stored in the smallest integer types that hold them."""
    if cell_counts.size == 0:
        return None
    base = int(cell_keys.min())
    offsets = cell_keys - base
    key_dtype = np.uint16 if int(offsets.max()) <= np.iinfo(np.uint16).max else np.int32
    top = int(cell_counts.max())
    count_dtype = (
        np.uint16
        if top <= np.iinfo(np.uint16).max
        else np.uint32
        if top <= np.iinfo(np.uint32).max
        else np.int64
    )
    return _Block(
        rows=rows.astype(np.int64),
        starts=np.concatenate(([0], np.cumsum(np.bincount(cell_rows, minlength=rows.size)))),
        keys=offsets.astype(key_dtype),
        key_base=base,
        counts=cell_counts.astype(count_dtype),
    )


def _latency_series(
    n: int, lo: int, zero: np.ndarray, blocks: list[_Block], relative_accuracy: float
) -> LatencySeries:
    """Blocks moved to bucket positions, and the per-bucket percentiles computed once."""
    blocks = [_Block(b.rows - lo, b.starts, b.keys, b.key_base, b.counts) for b in blocks]
    seen = np.zeros(n, np.int64)
    for block in blocks:
        seen[block.rows] += 1
    split = seen > 1
    init = np.where(zero > 0, 0.0, np.nan)
    quantiles = {label: init.copy() for label in QUANTILES}
    key_min = min((b.key_base for b in blocks), default=0)
    key_max = max((b.key_base + int(b.keys.max()) for b in blocks if b.keys.size), default=0)
    values = _Values(mapping_for(relative_accuracy), key_min, key_max)
    for block in blocks:
        _fill_percentiles(quantiles, block, zero, ~split[block.rows], values)
    if split.any():
        merged = _merged_rows(blocks, split)
        if merged is not None:
            _fill_percentiles(quantiles, merged, zero, np.ones(merged.rows.size, bool), values)
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


def _merged_rows(blocks: list[_Block], split: np.ndarray) -> _Block | None:
    """One block holding, merged, the bins of every row that appears in several blocks."""
    rows, keys, counts = [], [], []
    for block in blocks:
        wanted = np.flatnonzero(split[block.rows])
        if not wanted.size:
            continue
        lengths = block.starts[wanted + 1] - block.starts[wanted]
        entries = np.repeat(block.starts[wanted] - np.cumsum(lengths) + lengths, lengths) + np.arange(
            lengths.sum()
        )
        rows.append(np.repeat(block.rows[wanted], lengths))
        keys.append(block.keys[entries].astype(np.int64) + block.key_base)
        counts.append(block.counts[entries].astype(np.int64))
    if not rows:
        return None
    all_rows = np.concatenate(rows)
    present = np.zeros(split.size, bool)
    present[all_rows] = True
    entry_rows = (np.cumsum(present) - 1)[all_rows]
    return _block(np.flatnonzero(present), entry_rows, np.concatenate(keys), np.concatenate(counts))


class _Values:
    """mapping.value(key), computed once per key with the mapping itself, so values match Histogram's exactly."""

    def __init__(self, mapping: LogarithmicMapping, key_min: int, key_max: int) -> None:
        self.mapping = mapping
        self.key_min = key_min
        self.table = None
        if key_max - key_min < 1 << 16:
            self.table = np.array([mapping.value(k) for k in range(key_min, key_max + 1)])

    def __call__(self, keys: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table[keys - self.key_min]
        distinct, inverse = np.unique(keys, return_inverse=True)
        return np.array([self.mapping.value(int(k)) for k in distinct])[inverse].reshape(keys.shape)


def _fill_percentiles(
    out: dict[str, np.ndarray], block: _Block, zero: np.ndarray, use: np.ndarray, values_of: _Values
) -> None:
    """Write the nearest-rank percentiles of the block's rows (where `use`) into `out`, vectorised.

    Same ranks as Histogram.quantile: rank = max(1, ceil(q·n - 1e-9)), the zero bin first, then
    bins by key; the value of a bin is mapping.value(key).
    """
    cum = np.cumsum(block.counts, dtype=np.int64)
    before = np.concatenate(([0], cum))[block.starts]
    rows = block.rows[use]
    zero_rows = zero[rows]
    in_bins = (before[1:] - before[:-1])[use]
    total = zero_rows + in_bins
    start = before[:-1][use]
    for label, q in QUANTILES.items():
        rank = np.maximum(1, np.ceil(q * total - 1e-9)).astype(np.int64)
        from_bins = (rank > zero_rows) & (total > 0)
        index = np.searchsorted(cum, start[from_bins] + rank[from_bins] - zero_rows[from_bins], side="left")
        values = np.where(total > 0, 0.0, np.nan)
        values[from_bins] = values_of(block.keys[index].astype(np.int64) + block.key_base)
        out[label][rows] = values
