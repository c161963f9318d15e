"""A timeline read piece by piece as it is written gives the Series of the whole file read at once."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import FileInputError
from harness.timeline import read_timeline, series
from harness.timeline.loading import TimelineFile, load_series
from harness.timeline.series import Series
from tests.scoring.timelines import CATALOG, HEADER, T0, bucket, write_lines
from tests.timeline.test_series import random_timeline

ARRAYS = ("t", "dt", "requests", "failures", "kpi", "users", "gen_late", "gen_lag_max_ms")
PER_BUCKET = ("zero", "p50_ms", "p95_ms", "p99_ms")


def assert_same(got: Series, want: Series) -> None:
    """Every per-bucket array and the percentiles of a few windows are equal."""
    assert len(got) == len(want)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    for field in ("latency", "latency_corrected"):
        for name in PER_BUCKET:
            np.testing.assert_array_equal(
                getattr(getattr(got, field), name),
                getattr(getattr(want, field), name),
                err_msg=f"{field}.{name}",
            )
    n = len(want)
    for lo, hi in ((0, n), (0, n // 3), (n // 3, n), (n // 2, n // 2 + 2)):
        assert got.window_at(lo, min(hi, n)) == want.window_at(lo, min(hi, n))


def grow(
    path: Path, text: bytes, cuts: list[int], open_entries: int, sealed_entries: int = 1 << 15
) -> TimelineFile:
    """Write `text` to path in pieces ending at `cuts` (any byte, mid-line too), updating after each."""
    live = TimelineFile(path, chunk_bytes=3000)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(series, "OPEN_ENTRIES", open_entries)
        mp.setattr(series, "SEALED_ENTRIES", sealed_entries)
        path.write_bytes(b"")
        done = 0
        for cut in [*sorted(cuts), len(text)]:
            with path.open("ab") as fh:
                fh.write(text[done:cut])
            done = max(done, cut)
            live.update()
            live.series()  # taken between pieces, as the engine does every second
        live.update(final=True)
    return live


class TestExtendedPieceByPiece:
    @settings(max_examples=25, deadline=None)
    @given(
        seed=st.integers(0, 2**16),
        seconds=st.integers(1, 30),
        cuts=st.lists(st.floats(0, 1), max_size=12),
        open_entries=st.sampled_from([8, 64, series.OPEN_ENTRIES]),
        sealed_entries=st.sampled_from([16, 200, series.SEALED_ENTRIES]),
    )
    def test_any_pieces_give_the_whole_files_series(
        self, seed: int, seconds: int, cuts: list[float], open_entries: int, sealed_entries: int
    ) -> None:
        """Cut anywhere (mid-line too), with late deltas for buckets read long before: the same Series."""
        with tempfile.TemporaryDirectory() as tmp:
            whole = random_timeline(Path(tmp) / "whole.jsonl", seconds=seconds, seed=seed)
            text = whole.read_bytes()
            cut_at = [int(c * len(text)) for c in cuts]
            live = grow(Path(tmp) / "live.jsonl", text, cut_at, open_entries, sealed_entries)
            assert_same(live.series(), load_series(whole))
            total = read_timeline(whole).total()
            assert int(live.series().requests.sum()) == total.requests

    def test_a_long_run_read_every_second_equals_the_whole_file(self, tmp_path: Path) -> None:
        """Eighteen minutes added a few seconds at a time (beyond the first allocation of the arrays)."""
        whole = random_timeline(tmp_path / "whole.jsonl", seconds=1100, seed=5)
        text = whole.read_bytes()
        lines = text.splitlines(keepends=True)
        cuts = list(np.cumsum([len(line) for line in lines])[::20])
        live = grow(tmp_path / "live.jsonl", text, [int(c) for c in cuts], series.OPEN_ENTRIES)
        assert_same(live.series(), load_series(whole))


class TestLinesInPieces:
    def test_a_half_written_line_waits_for_its_end(self, tmp_path: Path) -> None:
        """The bytes after the last newline are not read until the line is complete."""
        path = tmp_path / "t.jsonl"
        first = json.dumps(bucket(T0, CATALOG).to_line(), separators=(",", ":")) + "\n"
        second = json.dumps(bucket(T0 + 1, CATALOG).to_line(), separators=(",", ":")) + "\n"
        path.write_text(json.dumps(HEADER) + "\n" + first + second[:40])
        live = TimelineFile(path)
        assert live.update()
        assert int(live.series().requests.sum()) == 20 and len(live.series()) == 1
        assert live.offset == len(json.dumps(HEADER) + "\n" + first)
        with path.open("a") as fh:
            fh.write(second[40:])
        assert live.update()
        assert list(live.series().requests) == [20, 20]
        assert not live.update(), "nothing new: nothing read"

    def test_late_deltas_for_earlier_buckets_are_summed_in(self, tmp_path: Path) -> None:
        """A delta for a bucket read long ago, and one before the first bucket, change those buckets only."""
        path = write_lines(
            tmp_path / "t.jsonl", [HEADER, *(bucket(T0 + s, CATALOG).to_line() for s in range(5, 9))]
        )
        live = TimelineFile(path)
        live.update()
        slow = {**CATALOG, "requests": 20, "latency_ms": 900.0, "failures": 20}
        with path.open("a") as fh:
            for t in (T0 + 6, T0 + 2):
                fh.write(json.dumps(bucket(t, slow).to_line(), separators=(",", ":")) + "\n")
        live.update()
        got = live.series()
        assert list(got.t - T0) == [2, 3, 4, 5, 6, 7, 8]
        assert list(got.requests) == [20, 0, 0, 20, 40, 20, 20]
        assert got.latency.p99_ms[4] > 800 and got.latency.p50_ms[3] < 30
        assert_same(got, load_series(path))

    def test_reads_never_overlap(self, tmp_path: Path) -> None:
        """Each byte of the file is read once: the reads are back to back."""
        whole = random_timeline(tmp_path / "whole.jsonl", seconds=20)
        text = whole.read_bytes()
        live = grow(tmp_path / "live.jsonl", text, list(range(0, len(text), 997)), series.OPEN_ENTRIES)
        starts = [a for a, _ in live.reads]
        stops = [b for _, b in live.reads]
        assert starts[0] == 0 and starts[1:] == stops[:-1] and stops[-1] == len(text)

    def test_a_bad_line_followed_by_more_is_an_error_every_time(self, tmp_path: Path) -> None:
        """A broken line that is not the last names its line, now and at every later update."""
        path = tmp_path / "t.jsonl"
        path.write_text(json.dumps(HEADER) + "\n{not json\n")
        live = TimelineFile(path)
        live.update()  # the bad line is the last so far: it may be half of something
        with path.open("a") as fh:
            fh.write(json.dumps(bucket(T0, CATALOG).to_line()) + "\n")
        for _ in range(2):
            with pytest.raises(FileInputError, match=r"t\.jsonl:2: not a JSON object"):
                live.update()

    def test_a_replaced_file_is_an_error(self, tmp_path: Path) -> None:
        """A file cut shorter than what was read is not silently read again from the middle."""
        path = write_lines(tmp_path / "t.jsonl", [HEADER, bucket(T0, CATALOG).to_line()])
        live = TimelineFile(path)
        live.update()
        write_lines(path, [HEADER])
        with pytest.raises(FileInputError, match="replaced or cut"):
            live.update()
