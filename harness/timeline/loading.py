"""Read a timeline file straight into a Series, fast enough for a day of 1 s buckets.

`harness.timeline.read_timeline` builds a Python object per bucket line and a dict per
histogram: right for a few thousand lines, far too slow and too big for a 24-hour game day of
20 request names (1.8 million lines, 1.7 GB). Here the file is memory-mapped and cut into
chunks of whole lines; worker threads parse each chunk (the recorder's bucket lines with numpy,
harness.timeline.bucketlines) and sum its bins per bucket (harness.timeline.bins.merge_lines),
so memory holds merged bins only. The main thread takes the chunks in file order and reads
their other lines (header, ticks, bucket lines of another shape) with orjson, pulling fields
into numpy arrays with C-level iteration (`map`, `np.fromiter`).

Same results as the reader: deltas of a (bucket, name) summed, the same bucket index
(round(t / dt)), a half-written last line ignored, any other bad line an error naming its line.
Lines that the orjson path cannot take as they are (a count written as "3", say) are normalised
through `Bucket.from_line`, exactly as the reader would read them.

`TimelineFile` keeps where it stopped, so the engine extends one Series per running scenario
with each second's new lines; `load_series` reads a finished file whole (`harness score`,
`harness report`, `harness timeline summary`).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain, compress, repeat
from operator import eq, itemgetter, methodcaller, or_
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from harness.errors import FileInputError, HarnessError
from harness.timeline import bucketlines, saved
from harness.timeline.bins import KEY_LIMIT, LineBins, MergedLines, RegionBins, merge_lines
from harness.timeline.buckets import SCHEMA, Bucket
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY
from harness.timeline.series import Series, SeriesBuilder, compact

MAP_BYTES = 256 << 20
"""From this size on, the file is memory-mapped rather than read (it need not fit in memory twice)
and malloc is asked to keep freed memory (see _keep_freed_memory). A mapped file must not shrink
while it is read (the recorder only appends)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
"""mallopt parameters, from glibc's malloc.h."""
WORKERS = 2
"""Threads parsing chunks: the machines this runs on have two cores."""
CHUNK_BYTES = 4 << 20
"""The file is parsed 4 MB at a time: large enough that the cost of each numpy call vanishes, small
enough that the chunks in flight (two per thread) take a few tens of MB."""

_KIND = methodcaller("get", "type", "bucket")
_T = itemgetter("t")
_DT = itemgetter("dt")
_REQUESTS = itemgetter("requests")
_FAILURES = itemgetter("failures")
_KPI = methodcaller("get", "kpi", 0)
_USERS = methodcaller("get", "users", 0)
_GEN_LATE = methodcaller("get", "gen_late", 0)
_GEN_LAG_MAX = methodcaller("get", "gen_lag_max_ms", 0.0)
_LATENCY = methodcaller("get", "latency_ms", {})
_LATENCY_CORRECTED = methodcaller("get", "latency_corrected_ms", {})
_ZERO = methodcaller("get", "z", 0)
_BINS = methodcaller("get", "b", {})
_COLUMN_ERRORS = (KeyError, TypeError, ValueError, OverflowError, AttributeError)


class _KeyCache(dict[str, int]):
    """Bin key text → int, parsed once per distinct key (a timeline has a few thousand at most)."""

    def __missing__(self, text: str) -> int:
        value = self[text] = int(text)
        return value


def load_series(
    path: str | Path, chunk_bytes: int = CHUNK_BYTES, workers: int = WORKERS, map_bytes: int = MAP_BYTES
) -> Series:
    """The Series of a whole timeline file, read once (`TimelineFile.update(final=True)`)."""
    timeline = TimelineFile(path, chunk_bytes, workers, map_bytes)
    timeline.update(final=True)
    return timeline.series()


class TimelineFile:
    """A timeline file and the Series of what has been read of it, extended by what is appended.

    `update` reads only the bytes written since the last one, up to the last complete line (a
    half-written line waits for its end), and adds them to the same Series, so a file is read
    once however often it is asked: by the engine every second while a scenario runs, then once
    more for the last lines when the load has stopped. Lines for buckets already read (late deltas)
    are summed in, as a whole read would. Chunks of `chunk_bytes` are parsed by `workers` threads
    (numpy releases the GIL for the bulk of the work) and taken in file order, so the header comes
    first and an error names the first bad line; an append of `map_bytes` or more is memory-mapped.
    """

    def __init__(
        self,
        path: str | Path,
        chunk_bytes: int = CHUNK_BYTES,
        workers: int = WORKERS,
        map_bytes: int = MAP_BYTES,
    ) -> None:
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.threads = workers
        self.map_bytes = map_bytes
        self.offset = 0
        """Bytes read: whole lines, or the whole file after a final update."""
        self.identity: tuple[int, int] | None = None
        """(device, inode) of the file read, so that a file replaced under the same name is noticed."""
        self.reads: list[tuple[int, int]] = []
        """(start, stop) of every read of the file's bytes: a file read once has ranges that do not overlap."""
        self._reader = _Reader(str(self.path))
        self._lines = 0
        self._failed: FileInputError | None = None

    @property
    def header(self) -> dict[str, Any] | None:
        """The file's header line, once read."""
        return self._reader.header

    @property
    def workers(self) -> dict[str, Any] | None:
        """The last `workers` line read (a Locust master's count of joined workers); None: none yet."""
        return self._reader.workers

    def update(self, final: bool = False) -> bool:
        """Read what was appended since the last update; return whether anything was.

        final: the file is complete, so a last line without its newline is read too (and ignored if
        it is not a whole JSON object, as a half-written line is). A bad line anywhere else is an
        error naming its line, and every later update raises it again: the Series is then incomplete.
        """
        if self._failed is not None:
            raise self._failed
        try:
            st = os.stat(self.path)
        except FileNotFoundError as exc:
            raise FileInputError(self.path, "no such timeline file") from exc
        if self.replaced_by(st):
            self._failed = FileInputError(self.path, "the timeline was replaced or cut while it was read")
            raise self._failed
        self.identity = (st.st_dev, st.st_ino)
        if st.st_size == self.offset:
            return False
        try:
            return self._read(final)
        except FileInputError as exc:
            self._failed = exc
            raise
        except ValueError as exc:  # a span too long for a Series
            self._failed = FileInputError(self.path, str(exc))
            raise self._failed from exc

    def replaced_by(self, st: os.stat_result) -> bool:
        """Is the file now at the path (stat `st`) another one than the file read, or cut shorter?"""
        return self.identity is not None and (
            (st.st_dev, st.st_ino) != self.identity or st.st_size < self.offset
        )

    def series(self) -> Series:
        """The Series of the lines read so far (a view: the next update may change it)."""
        return self._reader.build()

    def _read(self, final: bool) -> bool:
        with self.path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = self.offset
            if size - start < self.map_bytes:
                fh.seek(start)
                data = fh.read(size - start)
                stop = len(data) if final else data.rfind(b"\n") + 1
                if stop <= 0:
                    return False
                self._lines += _read_chunks(
                    data, 0, stop, self._reader, self.chunk_bytes, self.threads, self._lines
                )
            else:
                libc = _keep_freed_memory()
                mapped = mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ)
                try:
                    stop = size if final else mapped.rfind(b"\n", start) + 1
                    if stop <= start:
                        return False
                    self._lines += _read_chunks(
                        mapped, start, stop, self._reader, self.chunk_bytes, self.threads, self._lines
                    )
                    stop -= start
                finally:
                    # A traceback may still hold a view: the map then goes with it.
                    with contextlib.suppress(BufferError):
                        mapped.close()
                    if libc is not None:
                        libc.malloc_trim(0)
        self.reads.append((start, start + stop))
        self.offset = start + stop
        return True


def _keep_freed_memory() -> Any | None:
    """Ask glibc's malloc to keep freed memory for reuse; return libc (for malloc_trim), or None.

    Each chunk allocates and frees a few tens of MB of numpy temporaries. By default glibc maps
    large arrays afresh and hands the freed top of its heap back to the kernel, so every chunk
    faults its pages in again: on the virtual machines this runs on, a quarter of the time of a
    large file. Raising the mmap and trim thresholds keeps the memory for the next chunk. The
    setting is process-wide and stays (glibc cannot go back to its adaptive thresholds), which is
    harmless: freed memory is still reused, and load_series trims the heap once it is done. Only
    for large files, so the engine's frequent reads of a live timeline change nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt, _ = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    mallopt(_M_TRIM_THRESHOLD, 256 << 20)
    mallopt(_M_MMAP_THRESHOLD, 64 << 20)
    return libc


def _read_chunks(
    source: bytes | mmap.mmap,
    start: int,
    stop: int,
    reader: _Reader,
    chunk_bytes: int,
    workers: int,
    lines_before: int,
) -> int:
    """Parse source[start:stop] chunk by chunk (in worker threads when there are several), hand the
    chunks to the reader in order, and return how many lines they held.

    A mapped file's pages are handed back once their chunk is read, so that memory holds only
    the chunks in flight (a mapped page counts in the process's resident memory).
    """
    whole = np.frombuffer(source, np.uint8)
    mapped = source if isinstance(source, mmap.mmap) else None
    first = lines_before + 1
    # The bounds are found as the chunks are read, not all at once: finding a chunk's end faults
    # in the map's pages around it (kernel readahead, a few MB), which stay resident until the
    # chunk before it is released. Found up front, that is every boundary of the file at once.
    bounds = _chunk_bounds(source, start, stop, chunk_bytes)
    lo, hi = next(bounds)
    if hi >= stop:  # one chunk, what a second of a live run appends: no threads
        first += reader.add_parsed(*_parsed(_padded(whole, lo, hi), hi - lo), first)
        del whole
        return first - lines_before - 1
    bounds = chain([(lo, hi)], bounds)
    queue: deque[tuple[int, Future[tuple[bucketlines.ParsedChunk, MergedLines | None]]]] = deque()
    released = start // mmap.PAGESIZE * mmap.PAGESIZE
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="timeline") as pool:
        for lo, hi in bounds:
            buf = _padded(whole, lo, hi)
            queue.append((hi, pool.submit(_parsed, buf, hi - lo)))
            del buf
            while len(queue) > 2 * workers or (queue and queue[0][1].done()):
                hi, future = queue.popleft()
                first += reader.add_parsed(*future.result(), first)
                if mapped is not None:
                    released = _release(mapped, released, hi)
        while queue:
            hi, future = queue.popleft()
            first += reader.add_parsed(*future.result(), first)
    del whole
    return first - lines_before - 1


def _padded(whole: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Bytes lo to hi and the PAD bytes after them that a parse reads (a padded copy at the end)."""
    if hi + bucketlines.PAD <= whole.size:
        return whole[lo : hi + bucketlines.PAD]
    return np.concatenate([whole[lo:hi], np.full(bucketlines.PAD, ord(" "), np.uint8)])


def _chunk_bounds(
    source: bytes | mmap.mmap, start: int, size: int, chunk_bytes: int
) -> Iterator[tuple[int, int]]:
    """(start, stop) of pieces of about chunk_bytes, from start to size, that end with a newline
    (the last one may not)."""
    while start < size:
        stop = min(start + chunk_bytes, size)
        if stop < size:
            newline = source.rfind(b"\n", start, stop)
            if newline < 0:  # a line longer than a chunk
                newline = source.find(b"\n", stop)
            stop = size if newline < 0 else newline + 1
        yield start, stop
        start = stop


def _release(mapped: mmap.mmap, released: int, upto: int) -> int:
    """Hand back the pages of the map before `upto` (read and parsed); return where released pages end."""
    stop = upto // mmap.PAGESIZE * mmap.PAGESIZE
    if stop > released and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED, released, stop - released)
        return stop
    return released


def _parsed(buf: np.ndarray, size: int) -> tuple[bucketlines.ParsedChunk, MergedLines | None]:
    """One chunk parsed, and its recorder-shaped bucket lines summed per bucket (runs in a worker thread)."""
    chunk = bucketlines.parse_chunk(buf, size)
    index = np.rint(chunk.t / chunk.dt).astype(np.int64)
    bins = RegionBins(chunk.region_line, chunk.region_histogram, chunk.region_bins, chunk.keys, chunk.counts)
    merged = merge_lines(
        index,
        chunk.requests,
        chunk.failures,
        chunk.kpi,
        chunk.zero,
        bins,
        chunk.gen_late,
        chunk.gen_lag_max_ms,
    )
    return chunk, merged


class _Reader:
    """Parsed chunks in, in file order, one SeriesBuilder fed; keeps the reader's rules about bad lines."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.header: dict[str, Any] | None = None
        self.workers: dict[str, Any] | None = None
        """The master's last `workers` line (how many Locust workers had joined); None: no master."""
        self.builder: SeriesBuilder | None = None
        self.pending: FileInputError | None = None
        self.keys = _KeyCache()

    def error(self, problem: str, line: int | None) -> FileInputError:
        return FileInputError(self.source, problem, line=line)

    def add_parsed(self, chunk: bucketlines.ParsedChunk, merged: MergedLines | None, first: int) -> int:
        """Take a parsed chunk whose lines are numbered from `first`; return how many lines it had.

        The lines bucketlines did not take (header, ticks, anything else) are read here with
        orjson first, so that the header is known before any bucket.
        """
        if self.pending is not None:  # a bad line that was not the last one
            raise self.pending
        if chunk.others:
            self.add([text for _, text in chunk.others], [first + i for i, _ in chunk.others])
        if self.pending is not None and (self.pending.line or 0) < first + chunk.line_count - 1:
            raise self.pending
        if chunk.lines.size:
            numbers = (chunk.lines + first).tolist()
            builder = self._builder({"dt": float(chunk.dt[0])}, numbers[0])
            self._check_times(chunk.t, chunk.dt, builder.bucket_s, numbers)
            builder.add_merged(merged)  # keys in range and counts non-negative by construction
        return chunk.line_count

    def add(self, lines: Sequence[bytes], numbers: Sequence[int]) -> None:
        """Parse lines (with their line numbers) one JSON object each, into the builder."""
        try:
            objs = list(map(orjson.loads, lines))
            kinds = list(map(_KIND, objs))
        except (ValueError, AttributeError):  # orjson.JSONDecodeError is a ValueError
            objs, kinds, numbers = self._tolerant(lines, numbers)
        if "header" in kinds:
            for obj, kind, number in zip(objs, kinds, numbers, strict=True):
                if kind == "header":
                    self._header(obj, number)
        if "workers" in kinds:
            self.workers = objs[len(kinds) - 1 - kinds[::-1].index("workers")]
        is_bucket = list(map(eq, kinds, repeat("bucket")))
        is_tick = list(map(eq, kinds, repeat("tick")))
        first_line = next(compress(zip(objs, numbers, strict=True), map(or_, is_bucket, is_tick)), None)
        if first_line is None:
            return
        builder = self._builder(*first_line)
        if any(is_bucket):
            self._buckets(builder, list(compress(objs, is_bucket)), list(compress(numbers, is_bucket)))
        if any(is_tick):
            self._ticks(builder, list(compress(objs, is_tick)), list(compress(numbers, is_tick)))

    def build(self) -> Series:
        if self.builder is None:
            accuracy = float((self.header or {}).get("relative_accuracy", DEFAULT_RELATIVE_ACCURACY))
            return SeriesBuilder(float((self.header or {}).get("bucket_s", 1.0)), accuracy).build()
        try:
            return self.builder.build()
        except ValueError as exc:
            raise self.error(str(exc), None) from exc

    def _tolerant(
        self, lines: Sequence[bytes], numbers: Sequence[int]
    ) -> tuple[list[Any], list[Any], list[int]]:
        """Line by line: skip blank lines; a bad line is an error unless it is the file's last."""
        objs, kinds, kept = [], [], []
        for number, raw in zip(numbers, lines, strict=True):
            if self.pending is not None:
                raise self.pending
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
                kind = obj.get("type", "bucket")
            except (ValueError, AttributeError) as exc:
                self.pending = self.error(f"not a JSON object: {exc}", number)
                continue
            objs.append(obj)
            kinds.append(kind)
            kept.append(number)
        return objs, kinds, kept

    def _header(self, line: dict[str, Any], number: int) -> None:
        if line.get("schema") != SCHEMA:
            raise self.error(f"schema {line.get('schema')!r} is not {SCHEMA!r}", number)
        if self.builder is not None and (
            float(line.get("bucket_s", self.builder.bucket_s)) != self.builder.bucket_s
            or float(line.get("relative_accuracy", DEFAULT_RELATIVE_ACCURACY))
            != self.builder.relative_accuracy
        ):
            raise self.error(
                "a header changes the bucket width or accuracy in the middle of the timeline", number
            )
        self.header = line

    def _builder(self, first_line: dict[str, Any], number: int) -> SeriesBuilder:
        """The builder, made at the first bucket or tick line with the header's (or that line's) width."""
        if self.builder is None:
            header = self.header or {}
            try:
                bucket_s = float(header.get("bucket_s", first_line.get("dt", 1.0)))
                accuracy = float(header.get("relative_accuracy", DEFAULT_RELATIVE_ACCURACY))
                self.builder = SeriesBuilder(bucket_s, accuracy)
            except (TypeError, ValueError) as exc:
                raise self.error(f"bad bucket width or accuracy: {exc}", number) from exc
        return self.builder

    def _buckets(self, builder: SeriesBuilder, lines: list[dict[str, Any]], numbers: list[int]) -> None:
        try:
            columns = self._bucket_columns(lines)
        except _COLUMN_ERRORS:
            lines = [
                self._normalised(line, number, builder) for line, number in zip(lines, numbers, strict=True)
            ]
            try:
                columns = self._bucket_columns(lines)
            except _COLUMN_ERRORS:  # a value the reader took but the columns cannot hold (1e308 requests)
                for line, number in zip(lines, numbers, strict=True):
                    try:
                        self._bucket_columns([line])
                    except _COLUMN_ERRORS as exc:
                        raise self.error(f"bad bucket line: a value out of range ({exc})", number) from None
                raise
        t, dt, requests, failures, kpi, latency, corrected, gen_late, gen_lag_max_ms = columns
        self._check_times(t, dt, builder.bucket_s, numbers)
        self._check_counts(requests, failures, kpi, numbers)
        for bins in (latency, corrected):
            self._check_bins(bins, numbers)
        index = np.rint(t / dt).astype(np.int64)
        builder.add_buckets(index, requests, failures, kpi, latency, corrected, gen_late, gen_lag_max_ms)

    def _bucket_columns(self, lines: list[dict[str, Any]]) -> tuple[Any, ...]:
        n = len(lines)
        return (
            np.fromiter(map(_T, lines), np.float64, n),
            np.fromiter(map(_DT, lines), np.float64, n),
            np.fromiter(map(_REQUESTS, lines), np.int64, n),
            np.fromiter(map(_FAILURES, lines), np.int64, n),
            np.fromiter(map(_KPI, lines), np.int64, n),
            self._line_bins(list(map(_LATENCY, lines))),
            self._line_bins(list(map(_LATENCY_CORRECTED, lines))),
            np.fromiter(map(_GEN_LATE, lines), np.int64, n),
            np.fromiter(map(_GEN_LAG_MAX, lines), np.float64, n),
        )

    def _line_bins(self, hists: list[dict[str, Any]]) -> LineBins:
        n = len(hists)
        zero = np.fromiter(map(_ZERO, hists), np.int64, n)
        bins = list(map(_BINS, hists))
        lens = np.fromiter(map(len, bins), np.int64, n)
        total = int(lens.sum())
        keys = np.fromiter(map(self.keys.__getitem__, chain.from_iterable(bins)), np.int64, total)
        counts = np.fromiter(chain.from_iterable(map(dict.values, bins)), np.int64, total)
        return LineBins(zero, lens, keys, counts)

    def _normalised(self, line: dict[str, Any], number: int, builder: SeriesBuilder) -> dict[str, Any]:
        """The line as the reader would read it (types coerced), or the reader's error for it."""
        try:
            return Bucket.from_line(line, builder.relative_accuracy).to_line()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self.error(f"bad bucket line: {exc!r}", number) from exc

    def _check_times(self, t: np.ndarray, dt: np.ndarray, bucket_s: float, numbers: list[int]) -> None:
        bad = ~(np.abs(t) < 1e12) | ~(np.abs(dt - bucket_s) <= 1e-9)  # Unix seconds; NaN is bad too
        if bad.any():
            i = int(np.argmax(bad))
            raise self.error(
                f"bucket t={t[i]} dt={dt[i]}: every bucket must be {bucket_s} s wide and start at a Unix time",
                numbers[i],
            )

    def _check_counts(
        self, requests: np.ndarray, failures: np.ndarray, kpi: np.ndarray, numbers: list[int]
    ) -> None:
        """Counts a recorder can write: none negative, no more failures than requests (a damaged
        line would otherwise be scored, and could pass a gate)."""
        bad = (requests < 0) | (failures < 0) | (failures > requests) | (kpi < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise self.error(
                f"requests={requests[i]} failures={failures[i]} kpi={kpi[i]}: counts must not be negative "
                "and failures must not exceed requests",
                numbers[i],
            )

    def _check_bins(self, bins: LineBins, numbers: list[int]) -> None:
        bad_line = bins.zero < 0
        bad_entry = (np.abs(bins.keys) > KEY_LIMIT) | (bins.counts < 0)
        if bad_entry.any():
            owner = np.repeat(np.arange(bins.lens.size), bins.lens)
            bad_line[owner[bad_entry]] = True
        if bad_line.any():
            raise self.error(
                "histogram with a negative count or a key out of range", numbers[int(np.argmax(bad_line))]
            )

    def _ticks(self, builder: SeriesBuilder, lines: list[dict[str, Any]], numbers: list[int]) -> None:
        n = len(lines)
        try:
            t = np.fromiter(map(_T, lines), np.float64, n)
            dt = np.fromiter(map(_DT, lines), np.float64, n)
            users = np.fromiter(map(_USERS, lines), np.int64, n)
        except _COLUMN_ERRORS:
            t, dt, users = self._tick_columns(lines, numbers)
        self._check_times(t, dt, builder.bucket_s, numbers)
        builder.add_ticks(np.rint(t / dt).astype(np.int64), users)

    def _tick_columns(self, lines: Iterable[dict[str, Any]], numbers: list[int]) -> tuple[np.ndarray, ...]:
        rows = []
        for line, number in zip(lines, numbers, strict=True):
            try:
                users = line.get("users", 0)
                rows.append((float(line["t"]), float(line["dt"]), users if type(users) is int else 0))
            except (KeyError, TypeError, ValueError) as exc:
                raise self.error(f"bad tick line: {exc!r}", number) from exc
        t, dt, users = zip(*rows, strict=True)
        return np.array(t), np.array(dt), np.array(users, np.int64)


class SeriesFiles:
    """Timeline files by path, each read once and then only extended: what one run, one
    `harness score` or one `harness report` shares, so that scoring a scenario and drawing it
    read its timeline once. Owned by its caller (no process-wide state); a file replaced under
    the same name is read afresh. A file added finished is kept as its compact Series (`add`).

    saved: keep a large finished timeline's Series beside it (harness.timeline.saved) when it has
    been read whole, and take a saved Series that matches the file instead of parsing it.
    """

    def __init__(self, saved: bool = False) -> None:
        self.saved = saved
        self._files: dict[Path, TimelineFile] = {}
        self._loaded: dict[Path, tuple[tuple[int, int, int, int], Series]] = {}

    def add(self, timeline: TimelineFile) -> None:
        """Share a file already read to its end (the engine's live one, once its scenario ended).

        Kept as a compact copy of its Series while the file stays as read, not as the reader: a run
        keeps every finished scenario's Series for scoring and the report until it ends, and the
        reader's arrays have room to grow (most of a short scenario's 0.2 MB)."""
        if self.saved:
            self._save(timeline)
        key = timeline.path.resolve()
        try:
            st = os.stat(timeline.path)
        except FileNotFoundError:
            st = None
        if st is None or st.st_size != timeline.offset or timeline.replaced_by(st):
            self._files[key] = timeline  # not as read: keep the reader, get() tells what changed
            return
        self._files.pop(key, None)
        self._loaded[key] = (_identity(st), compact(timeline.series()))

    def get(self, path: str | Path) -> TimelineFile:
        """The file at path, read to its end (its last line too: the file is complete)."""
        key = Path(path).resolve()
        timeline = self._files.get(key)
        fresh = timeline is None or _replaced(timeline)
        if fresh:
            timeline = self._files[key] = TimelineFile(path)
        assert timeline is not None
        timeline.update(final=True)
        if fresh and self.saved:
            self._save(timeline)
        return timeline

    def series(self, path: str | Path) -> Series:
        """The Series of the whole file at path (its saved Series, when it has a matching one)."""
        key = Path(path).resolve()
        if key not in self._files:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return self.get(path).series()  # the error names the file
            identity = _identity(st)
            hit = self._loaded.pop(key, None)
            if hit is not None and hit[0] == identity:
                self._loaded[key] = hit
                return hit[1]
            loaded = saved.load(Path(path), st) if self.saved else None
            if loaded is not None:
                self._loaded[key] = (identity, loaded)
                return loaded
        return self.get(path).series()

    def _save(self, timeline: TimelineFile) -> None:
        try:
            st = os.stat(timeline.path)
            if st.st_size == timeline.offset and not saved.load_matches(timeline.path, st):
                saved.save(timeline.series(), timeline.path, st)
        except (OSError, HarnessError):  # a saved Series only saves time: never fail a run for it
            return


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """A file as it is: the same inode, size and modification time means the same bytes."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _replaced(timeline: TimelineFile) -> bool:
    try:
        st = os.stat(timeline.path)
    except FileNotFoundError:
        return True
    return timeline.replaced_by(st)
