"""Mergeable latency histograms with a guaranteed relative error.

Buckets are logarithmic (the DDSketch mapping, from the `ddsketch` package): a value v
falls in bin ceil(log_gamma(v)), and every quantile read back is within
`relative_accuracy` of the true sample at that rank. Merging two histograms is adding
their bin counts, so histograms from many buckets, processes and workers combine
exactly; no percentile is ever averaged.

Values at or below `ZERO_MS` (one microsecond) are counted in a zero bin: a request that
failed before it was sent has no meaningful latency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import numpy as np
from ddsketch.mapping import LogarithmicMapping

DEFAULT_RELATIVE_ACCURACY = 0.005
"""Half of the 1 % the timeline promises, so that rank effects at bin edges stay inside it."""

ZERO_MS = 0.001


@cache
def mapping_for(relative_accuracy: float) -> LogarithmicMapping:
    """The shared (cached) key mapping for one accuracy; all histograms of a timeline use one."""
    return LogarithmicMapping(relative_accuracy)


def keys_of(values_ms: np.ndarray, relative_accuracy: float) -> np.ndarray:
    """Bin keys for many values at once (vectorised `mapping.key`); zero-bin values get no key.

    Returns keys only for values above ZERO_MS, in the same order.
    """
    mapping = mapping_for(relative_accuracy)
    multiplier = 1.0 / math.log2(mapping.gamma)
    positive = values_ms[values_ms > ZERO_MS]
    return np.ceil(np.log2(positive) * multiplier).astype(np.int64)


class Histogram:
    """Counts of latencies (milliseconds) in logarithmic bins; merge by addition."""

    __slots__ = ("bins", "relative_accuracy", "zero")

    def __init__(
        self,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        bins: dict[int, int] | None = None,
        zero: int = 0,
    ) -> None:
        self.relative_accuracy = relative_accuracy
        self.bins: dict[int, int] = bins if bins is not None else {}
        self.zero = zero

    @property
    def count(self) -> int:
        return self.zero + sum(self.bins.values())

    def add(self, value_ms: float, n: int = 1) -> None:
        """Record one value (n times)."""
        if value_ms <= ZERO_MS:
            self.zero += n
            return
        key = mapping_for(self.relative_accuracy).key(value_ms)
        self.bins[key] = self.bins.get(key, 0) + n

    def add_many(self, values_ms: np.ndarray) -> None:
        """Record many values at once; the fast path the recorder uses."""
        values_ms = np.asarray(values_ms, dtype=np.float64)
        keys = keys_of(values_ms, self.relative_accuracy)
        self.zero += int(values_ms.size - keys.size)
        uniq, counts = np.unique(keys, return_counts=True)
        self.add_counts(zip(uniq.tolist(), counts.tolist(), strict=True))

    def add_counts(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Add (key, count) pairs whose keys are distinct, as every caller has them."""
        bins = self.bins
        if not bins:  # a new bucket's histogram: all the pairs in one C call
            bins.update(pairs)
            return
        for key, n in pairs:
            bins[key] = bins.get(key, 0) + n

    def merge(self, other: Histogram) -> None:
        """Add another histogram's counts into this one (exact)."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError(
                f"cannot merge histograms of accuracy {other.relative_accuracy} and {self.relative_accuracy}"
            )
        self.zero += other.zero
        self.add_counts(other.bins.items())

    def quantile(self, q: float) -> float | None:
        """The value at nearest rank ceil(q·n), within relative_accuracy; None when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        total = self.count
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total - 1e-9))  # 0.999 * 30000 must be rank 29970, not 29971
        if rank <= self.zero:
            return 0.0
        seen = self.zero
        mapping = mapping_for(self.relative_accuracy)
        for key in sorted(self.bins):
            seen += self.bins[key]
            if seen >= rank:
                return mapping.value(key)
        raise AssertionError("unreachable: ranks exhausted")  # pragma: no cover

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form: zero count and {key: count}."""
        return {"z": self.zero, "b": dict(zip(map(str, self.bins), self.bins.values(), strict=True))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], relative_accuracy: float) -> Histogram:
        return cls(
            relative_accuracy,
            bins={int(k): int(v) for k, v in data.get("b", {}).items()},
            zero=int(data.get("z", 0)),
        )

    def copy(self) -> Histogram:
        return Histogram(self.relative_accuracy, dict(self.bins), self.zero)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (
            self.relative_accuracy == other.relative_accuracy
            and self.zero == other.zero
            and {k: v for k, v in self.bins.items() if v} == {k: v for k, v in other.bins.items() if v}
        )

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, p50={self.quantile(0.5)}, p99={self.quantile(0.99)})"
