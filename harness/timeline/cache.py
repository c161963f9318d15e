"""Series of finished timeline files, kept by file identity so each is read once per process.

The engine scores every scenario of a run again at each checkpoint (result.json is rebuilt
from the run folder alone), and the report then draws each one: without a cache, a plan of N
scenario trials reads timelines 2·N times per checkpoint, N² over the run, and a 24-hour
scenario is read twice at the end. A file is known by (device, inode, size, mtime): a file
still being written changes size and is read afresh, so the live scoring loop, which reads a
growing file, uses `load_series` directly.

Cached Series are shared, so their arrays are made read-only: a caller that wrote into one
would change what every later caller sees, and numpy now raises instead.
"""

from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import FileInputError
from harness.timeline.loading import load_series
from harness.timeline.series import Series

MAX_BYTES = 512 << 20
"""Memory the cached Series may hold together; a Series larger than this is returned, not kept."""


def arrays(value: Any) -> Iterator[np.ndarray]:
    """The numpy arrays in a Series (its dataclasses, tuples and lists walked)."""
    if isinstance(value, np.ndarray):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from arrays(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for v in value:
            yield from arrays(v)


def nbytes(value: Any) -> int:
    """Bytes held by the numpy arrays in a Series."""
    return sum(int(a.nbytes) for a in arrays(value))


class SeriesCache:
    """Least recently used Series by file identity, within a memory budget."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, tuple[Series, int]] = OrderedDict()
        self._bytes = 0
        self.reads = 0
        """Files actually read (misses), for tests and benchmarks."""

    def load(self, path: str | Path) -> Series:
        """The Series of a timeline file, read only if this file, as it is now, was not read before."""
        path = Path(path)
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise FileInputError(path, "no such timeline file") from exc
        key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            return hit[0]
        series = load_series(path)
        self.reads += 1
        size = nbytes(series)
        if size <= self.max_bytes:
            for a in arrays(series):
                a.flags.writeable = False
            self._entries[key] = (series, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return series


shared = SeriesCache()
"""The process's cache, used by the engine's scoring and the report."""


def load_series_cached(path: str | Path) -> Series:
    """`load_series` for a file no longer written (a finished scenario's), read once per process."""
    return shared.load(path)
