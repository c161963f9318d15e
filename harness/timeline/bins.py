"""Latency bins per bucket: summing bucket lines into blocks, and the percentiles of each bucket.

A block holds the bins of some buckets, summed over request names and sorted by key, as small
integer arrays (one block per chunk of lines read). `merge_lines` makes a block from lines and
may run in several threads at once; `_fill_percentiles` gives the p50/p95/p99 of a block's
buckets, and `_merged_rows` merges first the buckets whose lines fell into several blocks (late
deltas).
Ranks and values are those of `harness.timeline.Histogram.quantile`, exactly.

Used by harness.timeline.series (SeriesBuilder) and harness.timeline.loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from ddsketch.mapping import LogarithmicMapping

from harness.timeline.reader import QUANTILES

KEY_LIMIT = 1 << 22
"""Histogram keys lie within ±KEY_LIMIT: a latency a float can hold, at accuracy 0.0001 or coarser."""
_DENSE_CELLS_MIN = 1 << 20
"""A chunk's bins are summed in a dense (histogram x bucket x key) table when it has at most this
many cells (or four per bin): a bincount is several times faster than the sort it replaces."""


class LineBins(NamedTuple):
    """One histogram field of many bucket lines, flattened: line i has bins lens[i] of keys/counts."""

    zero: np.ndarray
    lens: np.ndarray
    keys: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True, eq=False)
class Block:
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


class RegionBins(NamedTuple):
    """The bins of many histograms, histogram by histogram ("regions"), each of some line."""

    region_line: np.ndarray
    region_histogram: np.ndarray
    """0 for latency_ms, 1 for latency_corrected_ms."""
    region_bins: np.ndarray
    """How many of keys and counts are the region's."""
    keys: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True, eq=False)
class MergedLines:
    """Some bucket lines summed per bucket: what SeriesBuilder keeps of them."""

    rows: np.ndarray
    """The bucket indices, increasing."""
    sums: np.ndarray
    """Per row: requests, failures, KPI, requests the load generator sent late (gen_late)."""
    zero: tuple[np.ndarray, np.ndarray]
    blocks: tuple[Block | None, Block | None]
    gen_lag_max_ms: np.ndarray
    """Per row: the largest load-generator lag of its lines."""


def merge_lines(
    index: np.ndarray,
    requests: np.ndarray,
    failures: np.ndarray,
    kpi: np.ndarray,
    zero: tuple[np.ndarray, np.ndarray],
    bins: RegionBins,
    gen_late: np.ndarray | None = None,
    gen_lag_max_ms: np.ndarray | None = None,
) -> MergedLines | None:
    """Sum bucket lines per bucket index, and their bins per (histogram, bucket, key); None for no lines.

    Per line: its bucket index, counts and zero-latency counts (latency, corrected), and the load
    generator's late count and largest lag (None: lines without them, 0). Pure and independent of
    other lines, so a loader can run it on several chunks at once.
    """
    if index.size == 0:
        return None
    rows, inverse = np.unique(index, return_inverse=True)
    n = rows.size
    late = gen_late if gen_late is not None else np.zeros(index.size, np.int64)
    sums = np.stack([sum_by(inverse, values, n) for values in (requests, failures, kpi, late)], axis=1)
    zeros = (sum_by(inverse, zero[0], n), sum_by(inverse, zero[1], n))
    lag_max = np.zeros(n)
    if gen_lag_max_ms is not None:
        np.maximum.at(lag_max, inverse, gen_lag_max_ms)
    region_row = inverse[bins.region_line]
    keys = bins.keys
    if keys.size == 0:
        return MergedLines(rows, sums, zeros, (None, None), lag_max)
    kmin = int(keys.min())
    span = int(keys.max()) - kmin + 1
    plane = n * span
    if 2 * plane <= max(4 * keys.size, _DENSE_CELLS_MIN):
        # The usual case: a dense (histogram x row x key) table, indexed straight by key.
        base = (bins.region_histogram.astype(np.int64) * n + region_row) * span - kmin
        dense = np.bincount(
            np.repeat(base, bins.region_bins) + keys, weights=bins.counts, minlength=2 * plane
        )
        cells = np.flatnonzero(dense > 0)  # (on a bool array: several times faster)
        blocks = _split_planes(
            rows, cells, dense[cells].astype(np.int64), plane, np.arange(kmin, kmin + span)
        )
    else:
        bin_row = np.repeat(region_row, bins.region_bins)
        bin_histogram = np.repeat(bins.region_histogram, bins.region_bins)
        blocks = _blocks(rows, bin_row, bin_histogram, keys, bins.counts)
    return MergedLines(rows, sums, zeros, blocks, lag_max)


def as_regions(latency: LineBins, corrected: LineBins) -> RegionBins:
    """Two LineBins as regions: every line's latency histogram, then every line's corrected one."""
    lines = np.arange(latency.lens.size)
    return RegionBins(
        region_line=np.concatenate([lines, lines]),
        region_histogram=np.repeat(np.array([0, 1], np.uint8), lines.size),
        region_bins=np.concatenate([latency.lens, corrected.lens]),
        keys=np.concatenate([latency.keys, corrected.keys]),
        counts=np.concatenate([latency.counts, corrected.counts]),
    )


def sum_by(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1: the sum of its values, as int64 (exact below 2^53)."""
    if groups.size == 0:
        return np.zeros(n, np.int64)
    return np.bincount(groups, weights=values, minlength=n).astype(np.int64)


def _block(rows: np.ndarray, entry_rows: np.ndarray, keys: np.ndarray, counts: np.ndarray) -> Block | None:
    """The bins of one histogram summed per (row, key); entry_rows are positions in `rows`."""
    return _blocks(rows, entry_rows, np.zeros(keys.size, np.uint8), keys, counts)[0]


def _blocks(
    rows: np.ndarray, bin_row: np.ndarray, bin_histogram: np.ndarray, keys: np.ndarray, counts: np.ndarray
) -> tuple[Block | None, Block | None]:
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
        cells = np.flatnonzero(dense > 0)  # (on a bool array: several times faster)
        cell_counts = dense[cells].astype(np.int64)
    else:
        flat = (histogram * n + bin_row) * ncols + cols
        cells, inverse = np.unique(flat, return_inverse=True)
        cell_counts = np.bincount(inverse, weights=counts, minlength=cells.size).astype(np.int64)
        cells, cell_counts = cells[cell_counts > 0], cell_counts[cell_counts > 0]
    return _split_planes(rows, cells, cell_counts, plane, col_keys + kmin)


def _split_planes(
    rows: np.ndarray, cells: np.ndarray, cell_counts: np.ndarray, plane: int, column_keys: np.ndarray
) -> tuple[Block | None, Block | None]:
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
) -> Block | None:
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
    return Block(
        rows=rows.astype(np.int64),
        starts=np.concatenate(([0], np.cumsum(np.bincount(cell_rows, minlength=rows.size)))),
        keys=offsets.astype(key_dtype),
        key_base=base,
        counts=cell_counts.astype(count_dtype),
    )


def _merged_rows(blocks: list[Block], split: np.ndarray) -> Block | None:
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
    out: dict[str, np.ndarray], block: Block, zero: np.ndarray, use: np.ndarray, values_of: _Values
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
