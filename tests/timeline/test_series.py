"""The timeline as per-bucket arrays: same totals and percentiles as harness.timeline.reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import FileInputError
from harness.timeline import read_timeline
from harness.timeline.buckets import Bucket
from harness.timeline.loading import CHUNK_BYTES, load_series
from harness.timeline.series import pooled_window, series_from_timeline
from tests.scoring.timelines import CATALOG, HEADER, T0, bucket, scenario, write_lines


def random_timeline(path: Path, seconds: int = 40, seed: int = 3) -> Path:
    """Three names, lognormal latencies, zero-latency failures, lag, worker deltas and late deltas."""
    rng = np.random.default_rng(seed)
    lines: list[dict] = [HEADER]
    late: list[dict] = []
    for s in range(seconds):
        t = T0 + s
        lines.append({"type": "tick", "t": t, "dt": 1.0, "users": 12})
        for name, median in (("catalog", 8.0), ("purchase", 60.0), ("content", 25.0)):
            for _worker in range(2):
                n = int(rng.integers(0, 40))
                values = rng.lognormal(np.log(median), 0.7, n)
                values[rng.random(n) < 0.05] = 0.0
                lag = rng.exponential(30.0, n) * (rng.random(n) < 0.3)
                b = Bucket(
                    t=t,
                    dt=1.0,
                    name=name,
                    requests=n,
                    failures=int((values == 0).sum()),
                    kpi=int(n // 10) if name == "purchase" else 0,
                )
                b.latency.add_many(values)
                b.latency_corrected.add_many(values + lag)
                (late if rng.random() < 0.1 else lines).append(b.to_line())
        if s % 7 == 6:
            lines.extend(late)
            late.clear()
    lines.extend(late)
    return write_lines(path, lines)


def merged(tl, start: float, end: float, corrected: bool) -> dict:
    return tl.window(start, end).percentiles_ms(corrected=corrected)


class TestLoadSeries:
    @pytest.mark.parametrize("chunk_bytes", [CHUNK_BYTES, 2000, 1])
    def test_window_percentiles_equal_the_readers_merged_histograms(
        self, tmp_path: Path, chunk_bytes: int
    ) -> None:
        """Window p50/p95/p99 (actual and corrected) and totals equal Timeline.window's, however the file is chunked."""
        path = random_timeline(tmp_path / "t.jsonl")
        tl = read_timeline(path)
        series = load_series(path, chunk_bytes=chunk_bytes)
        for start, end in [
            (T0, T0 + 40),
            (T0 + 3, T0 + 4),
            (T0 + 5.5, T0 + 17),
            (T0 + 39, T0 + 60),
            (T0 + 8, T0 + 8),
        ]:
            want, got = tl.window(start, end), series.window(start, end)
            assert (got.requests, got.failures, got.kpi) == (want.requests, want.failures, want.kpi)
            assert got.latency_ms == want.percentiles_ms()
            assert got.latency_corrected_ms == want.percentiles_ms(corrected=True)

    @pytest.mark.parametrize("chunk_bytes", [CHUNK_BYTES, 1500])
    def test_per_bucket_percentiles_equal_each_buckets_merged_histogram(
        self, tmp_path: Path, chunk_bytes: int
    ) -> None:
        """Each bucket's precomputed percentiles are those of its names' histograms merged (late deltas included)."""
        path = random_timeline(tmp_path / "t.jsonl")
        tl = read_timeline(path)
        series = load_series(path, chunk_bytes=chunk_bytes)
        for i, t in enumerate(series.t):
            for corrected, latency in ((False, series.latency), (True, series.latency_corrected)):
                got = {k: getattr(latency, f"{k}_ms")[i] for k in ("p50", "p95", "p99")}
                assert {k: None if np.isnan(v) else v for k, v in got.items()} == merged(
                    tl, t, t + 1, corrected
                )

    def test_percentiles_merge_bins_and_never_average(self, tmp_path: Path) -> None:
        """Two buckets, one fast and one slow: the window p95 is the slow one's, not the mean of both p95s."""
        fast = bucket(T0, {**CATALOG, "requests": 90, "latency_ms": 10.0})
        slow = bucket(T0 + 1, {**CATALOG, "requests": 10, "latency_ms": 1000.0})
        path = write_lines(tmp_path / "t.jsonl", [HEADER, fast.to_line(), slow.to_line()])
        w = load_series(path).window(T0, T0 + 2)
        assert w.latency_ms["p50"] == pytest.approx(10.0, rel=0.01)
        assert w.latency_ms["p95"] == pytest.approx(1000.0, rel=0.01)
        assert w.latency_ms["p99"] == pytest.approx(1000.0, rel=0.01)

    def test_widely_spread_keys_take_the_sorting_path_with_the_same_answers(self, tmp_path: Path) -> None:
        """1,200 buckets of one distinct latency each (too many cells for a dense table) still match the reader."""
        lines = [HEADER]
        for s in range(1200):
            lines.append(bucket(T0 + s, {**CATALOG, "requests": 3, "latency_ms": 1.0 * 1.02**s}).to_line())
            lines.append(bucket(T0 + s, {**CATALOG, "name": "b", "requests": 1, "latency_ms": 5.0}).to_line())
        path = write_lines(tmp_path / "t.jsonl", lines)
        tl, series = read_timeline(path), load_series(path)
        for i in (0, 1, 599, 1199):
            assert series.latency.p50_ms[i] == merged(tl, T0 + i, T0 + i + 1, False)["p50"]
        assert series.window(T0, T0 + 1200).latency_ms == tl.total().percentiles_ms()

    def test_a_stall_is_an_empty_bucket_and_gaps_in_the_span_are_filled(self, tmp_path: Path) -> None:
        """Buckets with only a tick, or with no line at all, are present with zero requests and no latency."""
        path = scenario(tmp_path / "t.jsonl", seconds=10, stalled={3, 4}, missing={6})
        series = load_series(path)
        assert len(series) == 10
        assert series.t[0] == T0 and series.t[-1] == T0 + 9
        assert series.requests.tolist() == [30, 30, 30, 0, 0, 30, 0, 30, 30, 30]
        assert np.isnan(series.latency_corrected.p95_ms[[3, 4, 6]]).all()
        assert series.users.tolist() == [30, 30, 30, 30, 30, 30, 0, 30, 30, 30]
        assert series.window(T0 + 3, T0 + 5).latency_ms == {"p50": None, "p95": None, "p99": None}

    def test_zero_latency_requests_count_in_the_zero_bin(self, tmp_path: Path) -> None:
        """Requests that failed before sending are latency 0.0, ranked first as in Histogram.quantile."""
        path = write_lines(tmp_path / "t.jsonl", [HEADER, bucket(T0, {**CATALOG, "zero": 12}).to_line()])
        series = load_series(path)
        assert series.latency.p50_ms[0] == 0.0
        assert series.latency.p95_ms[0] == pytest.approx(20.0, rel=0.01)
        assert series.window(T0, T0 + 1).latency_ms["p50"] == 0.0

    def test_series_from_a_timeline_in_memory_equals_the_loaded_one(self, tmp_path: Path) -> None:
        """series_from_timeline(read_timeline(p)) has the same arrays as load_series(p)."""
        path = random_timeline(tmp_path / "t.jsonl")
        a, b = load_series(path), series_from_timeline(read_timeline(path))
        for field in ("t", "dt", "requests", "failures", "kpi", "users"):
            assert np.array_equal(getattr(a, field), getattr(b, field))
        for field in ("p50_ms", "p95_ms", "p99_ms"):
            assert np.array_equal(
                getattr(a.latency_corrected, field), getattr(b.latency_corrected, field), equal_nan=True
            )
        assert a.window(T0 + 2, T0 + 30) == b.window(T0 + 2, T0 + 30)

    def test_types_the_reader_coerces_are_coerced_alike(self, tmp_path: Path) -> None:
        """Counts written as strings or floats are read as the reader reads them (int())."""
        line = bucket(T0, CATALOG).to_line()
        line["requests"], line["kpi"] = "20", 1.0
        line["latency_ms"]["b"] = {k: str(v) for k, v in line["latency_ms"]["b"].items()}
        path = write_lines(tmp_path / "t.jsonl", [HEADER, line])
        series, tl = load_series(path), read_timeline(path)
        assert series.requests.tolist() == [20] and series.kpi.tolist() == [1]
        assert series.window(T0, T0 + 1).latency_ms == tl.total().percentiles_ms()

    def test_a_half_written_last_line_is_ignored(self, tmp_path: Path) -> None:
        """A file still being written may end in a partial line; everything before it counts."""
        path = scenario(tmp_path / "t.jsonl", seconds=5)
        path.write_text(path.read_text() + '{"type":"bucket","t":17957')
        assert load_series(path).requests.sum() == 150

    @pytest.mark.parametrize(
        ("text", "line", "problem"),
        [
            ('{"type":"bucket","t":1\nnot json\n{"type":"tick","t":1,"dt":1}\n', 1, "not a JSON object"),
            ('[1, 2]\n{"type":"tick","t":1,"dt":1}\n', 1, "not a JSON object"),
            ('{"type":"header","schema":"other/v9"}\n', 1, "schema"),
            (
                '{"type":"tick","t":1.0,"dt":1.0}\n{"type":"bucket","t":2.0,"dt":1.0,"name":"x"}\n',
                2,
                "bad bucket line",
            ),
            ('{"type":"tick","t":1.0,"dt":1.0}\n{"type":"tick","t":2.0,"dt":0.5}\n', 2, "wide"),
            ('{"type":"tick","dt":1.0}\n', 1, "bad tick line"),
        ],
    )
    def test_a_bad_line_is_an_error_naming_file_and_line(
        self, tmp_path: Path, text: str, line: int, problem: str
    ) -> None:
        """Malformed lines (other than a partial last one) raise FileInputError with the line number."""
        path = tmp_path / "t.jsonl"
        path.write_text(text)
        with pytest.raises(FileInputError, match=problem) as err:
            load_series(path)
        assert err.value.line == line and err.value.path == path

    def test_bins_out_of_range_or_negative_are_an_error(self, tmp_path: Path) -> None:
        """A negative count or an impossible key cannot come from the recorder: FileInputError."""
        line = bucket(T0, CATALOG).to_line()
        line["latency_corrected_ms"]["b"] = {"99999999": 3}
        path = write_lines(tmp_path / "t.jsonl", [HEADER, bucket(T0 - 1, CATALOG).to_line(), line])
        with pytest.raises(FileInputError, match="out of range") as err:
            load_series(path)
        assert err.value.line == 3

    def test_a_missing_file_is_an_input_error(self, tmp_path: Path) -> None:
        """No timeline file: FileInputError naming it."""
        with pytest.raises(FileInputError, match="no such timeline file"):
            load_series(tmp_path / "absent.jsonl")

    def test_an_empty_timeline_is_an_empty_series(self, tmp_path: Path) -> None:
        """A header alone gives a series of no buckets, whose windows are empty."""
        series = load_series(write_lines(tmp_path / "t.jsonl", [HEADER]))
        assert len(series) == 0
        w = series.window(T0, T0 + 10)
        assert (w.buckets, w.requests, w.error_rate, w.latency_ms["p99"]) == (0, 0, None, None)


class TestWindow:
    @pytest.mark.parametrize(
        ("start", "end", "buckets"),
        [(0, 10, 10), (2, 5, 3), (2.5, 5, 2), (2, 5.5, 4), (9, 20, 1), (-5, 1, 1), (4, 4, 0), (5, 3, 0)],
    )
    def test_a_window_holds_the_buckets_whose_start_lies_in_it(
        self, tmp_path: Path, start: float, end: float, buckets: int
    ) -> None:
        """Buckets count in [start, end) by their start time, as Timeline.window counts them."""
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=10))
        w = series.window(T0 + start, T0 + end)
        assert w.buckets == buckets
        assert w.requests == 30 * buckets and w.kpi == 2 * buckets
        assert w.duration_s == float(buckets)

    def test_error_rate_of_a_window(self, tmp_path: Path) -> None:
        """error_rate is failures / requests over the window, None without requests."""
        series = load_series(
            scenario(tmp_path / "t.jsonl", seconds=4, overrides={1: {"catalog": {"failures": 6}}})
        )
        assert series.window(T0, T0 + 4).error_rate == 6 / 120
        assert series.error_rate.tolist() == [0.0, 0.2, 0.0, 0.0]
        assert series.window(T0 + 10, T0 + 11).error_rate is None


class TestPooledWindow:
    def test_pooled_percentiles_are_those_of_all_requests_together(self, tmp_path: Path) -> None:
        """Windows of two timelines pooled: totals add, percentiles are the merged histograms' own."""
        paths = [random_timeline(tmp_path / "a.jsonl", seed=3), random_timeline(tmp_path / "b.jsonl", seed=8)]
        ranges = [(T0 + 2, T0 + 15), (T0 + 20, T0 + 38)]
        parts, wants = [], []
        for path, (start, end) in zip(paths, ranges, strict=True):
            series = load_series(path)
            parts.append((series, *series.positions(start, end)))
            wants.append(read_timeline(path).window(start, end))
        pooled = pooled_window(parts)
        latency, corrected = wants[0].latency.copy(), wants[0].latency_corrected.copy()
        latency.merge(wants[1].latency)
        corrected.merge(wants[1].latency_corrected)
        assert pooled.requests == sum(w.requests for w in wants)
        assert (pooled.failures, pooled.kpi) == (sum(w.failures for w in wants), sum(w.kpi for w in wants))
        assert (pooled.buckets, pooled.duration_s) == (31, 31.0)
        assert pooled.latency_ms == {
            q: latency.quantile(v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        assert pooled.latency_corrected_ms == {
            q: corrected.quantile(v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }

    def test_one_part_is_that_series_window(self, tmp_path: Path) -> None:
        """Pooling a single range gives the window of that range."""
        series = load_series(random_timeline(tmp_path / "t.jsonl"))
        lo, hi = series.positions(T0 + 4, T0 + 30)
        assert pooled_window([(series, lo, hi)]) == series.window_at(lo, hi)

    def test_nothing_to_pool_is_an_empty_window(self, tmp_path: Path) -> None:
        """No bucket at all: no requests, no latency."""
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=4))
        w = pooled_window([(series, 2, 2)])
        assert (w.buckets, w.requests, w.duration_s, w.latency_corrected_ms["p95"]) == (0, 0, 0.0, None)


class TestLargeFiles:
    def test_a_mapped_file_gives_the_same_series_as_a_read_one(self, tmp_path: Path) -> None:
        """Large files are memory-mapped (and read pages handed back); the result is the same."""
        path = random_timeline(tmp_path / "t.jsonl")
        read, mapped = load_series(path), load_series(path, chunk_bytes=5000, map_bytes=0)
        for field in ("t", "requests", "failures", "kpi", "users"):
            assert np.array_equal(getattr(read, field), getattr(mapped, field))
        assert np.array_equal(read.latency_corrected.p99_ms, mapped.latency_corrected.p99_ms, equal_nan=True)
        assert read.window(T0, T0 + 40) == mapped.window(T0, T0 + 40)

    def test_an_empty_file_is_an_empty_series_either_way(self, tmp_path: Path) -> None:
        """A file with nothing in it yet (Locust just started) is no error."""
        path = tmp_path / "t.jsonl"
        path.write_bytes(b"")
        assert len(load_series(path)) == len(load_series(path, map_bytes=0)) == 0
