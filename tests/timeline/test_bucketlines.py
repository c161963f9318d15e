"""The vectorised parser of recorder-shaped bucket lines: same numbers as the reader, or hands the line back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import FileInputError
from harness.timeline import read_timeline
from harness.timeline.bucketlines import PAD, parse_chunk
from harness.timeline.buckets import Bucket
from harness.timeline.loading import load_series
from harness.timeline.series import series_from_timeline
from tests.scoring.timelines import CATALOG, HEADER, T0, bucket

COMPACT = {"separators": (",", ":")}


def chunk_of(lines: list[dict], **dumps: object) -> tuple[np.ndarray, int]:
    text = "".join(json.dumps(line, **dumps) + "\n" for line in lines).encode()  # type: ignore[arg-type]
    return np.frombuffer(text + b" " * PAD, np.uint8), len(text)


def extreme_bucket(t: float) -> Bucket:
    """Keys of every shape (negative, one to four digits, five and more) and counts of 1 to 5 digits."""
    b = bucket(t, {**CATALOG, "requests": 0, "latency_ms": 1.0})
    values = [0.0005, 0.002, 0.004, 0.5, 0.9, 1.0, 1.004, 1.05, 2.0, 20.0, 999.0, 30_000.0, 1e9, 1e50, 0.95]
    counts = [1, 9, 10, 99, 100, 12_345, 3, 7, 1, 2, 4, 5, 6, 8, 42]
    for value, n in zip(values, counts, strict=True):
        b.latency.add(value, n)
        b.latency_corrected.add(value * 1.5, n)
        b.requests += n
    b.failures = 3
    b.kpi = 2
    return b


class TestParseChunk:
    def test_recorder_lines_are_taken_and_other_lines_handed_back(self) -> None:
        """Compact bucket lines are parsed here; header, ticks and a spaced bucket line go back as text."""
        lines = [HEADER, {"type": "tick", "t": T0, "dt": 1.0, "users": 3}, bucket(T0, CATALOG).to_line()]
        buf, size = chunk_of(lines, **COMPACT)
        spaced = json.dumps(bucket(T0 + 1, CATALOG).to_line()).encode()
        text = bytes(buf[:size]) + spaced + b"\n"
        got = parse_chunk(np.frombuffer(text + b" " * PAD, np.uint8), len(text))
        assert got.lines.tolist() == [2]
        assert [i for i, _ in got.others] == [0, 1, 3]
        assert got.others[2][1] == spaced
        assert (got.requests.tolist(), got.t.tolist(), got.dt.tolist()) == ([20], [T0], [1.0])
        assert got.region_bins.tolist() == [1, 1] and got.counts.tolist() == [20, 20]

    def test_keys_and_counts_of_every_shape(self) -> None:
        """Negative and long keys, multi-digit counts: the same bins as Bucket.from_line reads."""
        line = extreme_bucket(T0).to_line()
        got = parse_chunk(*chunk_of([line], **COMPACT))
        assert got.lines.tolist() == [0]
        n = got.region_bins[0]
        want = Bucket.from_line(line)
        assert dict(zip(got.keys[:n].tolist(), got.counts[:n].tolist(), strict=True)) == want.latency.bins
        assert (
            dict(zip(got.keys[n:].tolist(), got.counts[n:].tolist(), strict=True))
            == want.latency_corrected.bins
        )
        assert (got.failures.tolist(), got.kpi.tolist()) == ([3], [2])

    def test_empty_histograms_and_zero_latencies(self) -> None:
        """A bucket whose requests all failed before sending has empty bins and a zero count."""
        line = bucket(T0, {**CATALOG, "zero": 20}).to_line()
        got = parse_chunk(*chunk_of([line], **COMPACT))
        assert got.lines.tolist() == [0]
        assert got.region_bins.tolist() == [0, 0]
        assert [z.tolist() for z in got.zero] == [[20], [20]]

    @pytest.mark.parametrize(
        "change",
        [
            lambda d: d.update(requests="20"),
            lambda d: d.update(t="1795750000"),
            lambda d: d.update(kpi=1.5),
            lambda d: d["latency_ms"]["b"].update({"7x": 1}),
            lambda d: d["latency_ms"]["b"].update({"7": -1}),
            lambda d: d["latency_ms"].update(z=-1),
            lambda d: d.pop("failures"),
            lambda d: d.update(dt=0),
            lambda d: d.update(extra={"1": 2}),
        ],
        ids=[
            "string-count",
            "string-t",
            "float-kpi",
            "bad-key",
            "negative-count",
            "negative-zero",
            "missing-field",
            "zero-width",
            "extra-object",
        ],
    )
    def test_a_line_not_exactly_in_shape_is_handed_back(self, change: object) -> None:
        """Anything but the recorder's exact shape goes to the general path, which reads it as the reader does."""
        line = bucket(T0, CATALOG).to_line()
        change(line)  # type: ignore[operator]
        got = parse_chunk(*chunk_of([line], **COMPACT))
        assert got.lines.size == 0
        assert [i for i, _ in got.others] == [0]

    @pytest.mark.parametrize(
        ("lag_ms", "text"), [(0.0, "0.0"), (310.25, "310.25"), (0.001, "0.001"), (123456.789, "123456.789")]
    )
    def test_generator_fields_are_read(self, lag_ms: float, text: str) -> None:
        """gen_late and gen_lag_max_ms are read as Bucket.from_line reads them, to the last bit."""
        line = bucket(T0, {**CATALOG, "gen_late": 7, "gen_lag_max_ms": lag_ms}).to_line()
        raw = json.dumps(line, **COMPACT)  # type: ignore[arg-type]
        assert raw.endswith(f'"gen_late":7,"gen_lag_max_ms":{text}}}')
        got = parse_chunk(*chunk_of([line], **COMPACT))
        assert got.lines.tolist() == [0]
        assert (got.gen_late.tolist(), got.gen_lag_max_ms.tolist()) == (
            [7],
            [Bucket.from_line(line).gen_lag_max_ms],
        )
        assert got.requests.tolist() == [20] and got.counts.tolist() == [20, 20]

    def test_lines_without_generator_fields_are_taken_with_zeros(self) -> None:
        """Lines written before the fields existed keep the fast path."""
        old = bucket(T0, CATALOG).to_line()
        del old["gen_late"], old["gen_lag_max_ms"]
        new = bucket(T0 + 1, {**CATALOG, "gen_late": 2, "gen_lag_max_ms": 99.5}).to_line()
        got = parse_chunk(*chunk_of([old, new], **COMPACT))
        assert got.lines.tolist() == [0, 1]
        assert got.gen_late.tolist() == [0, 2] and got.gen_lag_max_ms.tolist() == [0.0, 99.5]

    @pytest.mark.parametrize(
        "change",
        [
            lambda d: d.pop("gen_late"),
            lambda d: d.pop("gen_lag_max_ms"),
            lambda d: d.update(gen_late="3"),
            lambda d: d.update(gen_late=1.5),
            lambda d: d.update(gen_lag_max_ms=1e16),
            lambda d: d.update(gen_lag_max_ms=0.1234567),
            lambda d: d.update(gen_lag_max_ms=-1.0),
            lambda d: d.update(gen_lag_max_ms=d.pop("gen_lag_max_ms"), gen_late=d.pop("gen_late")),
        ],
        ids=[
            "only-max",
            "only-late",
            "string-late",
            "float-late",
            "exponent",
            "long-fraction",
            "negative",
            "swapped",
        ],
    )
    def test_generator_fields_not_in_shape_are_handed_back(self, change: object) -> None:
        """One field without the other, other types, or numbers the fast path cannot read exactly: the general path."""
        line = bucket(T0, {**CATALOG, "gen_late": 1, "gen_lag_max_ms": 75.0}).to_line()
        change(line)  # type: ignore[operator]
        got = parse_chunk(*chunk_of([line], **COMPACT))
        assert got.lines.size == 0
        assert [i for i, _ in got.others] == [0]

    def test_a_last_line_without_newline_is_handed_back(self) -> None:
        """The end of a file being written may be half a line: never parsed here."""
        text = json.dumps(bucket(T0, CATALOG).to_line(), **COMPACT).encode()  # type: ignore[arg-type]
        got = parse_chunk(np.frombuffer(text + b" " * PAD, np.uint8), len(text))
        assert got.lines.size == 0 and got.others == [(0, text)]


class TestSameAsTheReader:
    @pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")], ids=["recorder", "spaced"])
    @pytest.mark.parametrize("chunk_bytes", [1 << 22, 3000])
    def test_both_paths_give_the_readers_numbers(
        self, tmp_path: Path, separators: tuple, chunk_bytes: int
    ) -> None:
        """Extreme bins, late deltas and mixed line shapes: windows equal Timeline.window's exactly."""
        rng = np.random.default_rng(11)
        lines: list[dict] = [HEADER]
        for s in range(60):
            lines.append({"type": "tick", "t": T0 + s, "dt": 1.0, "users": 5})
            lines.append(extreme_bucket(T0 + s).to_line())
            b = bucket(T0 + s, {**CATALOG, "name": "x", "requests": 0, "latency_ms": 1.0})
            values = rng.lognormal(np.log(30), 1.5, 200)
            b.latency.add_many(values)
            b.latency_corrected.add_many(values + rng.exponential(100, 200))
            b.requests = 200
            lines.append(b.to_line())
            if s % 9 == 4:
                lines.append(bucket(T0 + s - 3, {**CATALOG, "latency_ms": 4000.0}).to_line())  # a late delta
        path = tmp_path / "t.jsonl"
        path.write_text("".join(json.dumps(line, separators=separators) + "\n" for line in lines))
        tl, series = read_timeline(path), load_series(path, chunk_bytes=chunk_bytes)
        for start, end in [(T0, T0 + 60), (T0 + 3, T0 + 4), (T0 + 10, T0 + 33)]:
            want, got = tl.window(start, end), series.window(start, end)
            assert (got.requests, got.failures, got.kpi) == (want.requests, want.failures, want.kpi)
            assert got.latency_ms == want.percentiles_ms()
            assert got.latency_corrected_ms == want.percentiles_ms(corrected=True)

    @pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")], ids=["recorder", "spaced"])
    @pytest.mark.parametrize("chunk_bytes", [1 << 22, 2000])
    def test_generator_fields_per_bucket_equal_the_readers(
        self, tmp_path: Path, separators: tuple, chunk_bytes: int
    ) -> None:
        """Old lines and new, late deltas, odd values: per bucket, gen_late sums and gen_lag_max_ms maxima agree."""
        rng = np.random.default_rng(3)
        lines: list[dict] = [HEADER]
        for s in range(80):
            lines.append({"type": "tick", "t": T0 + s, "dt": 1.0, "users": 5})
            spec = {
                **CATALOG,
                "gen_late": int(rng.integers(0, 4)),
                "gen_lag_max_ms": round(rng.exponential(60), 3),
            }
            line = bucket(T0 + s, spec).to_line()
            if s % 4 == 0:  # written before the fields existed
                del line["gen_late"], line["gen_lag_max_ms"]
            lines.append(line)
            if s % 7 == 3:  # a late delta, another worker's share
                late = {**CATALOG, "name": "p", "gen_late": 5, "gen_lag_max_ms": float(s * 11 + 0.5)}
                lines.append(bucket(T0 + s - 2, late).to_line())
            if s % 13 == 5:  # a line the fast path hands back (a count written as text), read alike
                odd = bucket(T0 + s, {**CATALOG, "gen_lag_max_ms": s + 0.5}).to_line()
                lines.append({**odd, "gen_late": "1"})
        path = tmp_path / "t.jsonl"
        path.write_text("".join(json.dumps(line, separators=separators) + "\n" for line in lines))
        want, got = series_from_timeline(read_timeline(path)), load_series(path, chunk_bytes=chunk_bytes)
        assert got.t.tolist() == want.t.tolist()
        assert got.gen_late.tolist() == want.gen_late.tolist()
        assert got.gen_lag_max_ms.tolist() == want.gen_lag_max_ms.tolist()
        assert got.requests.tolist() == want.requests.tolist()
        assert int(got.gen_late.sum()) == sum(int(line.get("gen_late", 0)) for line in lines[1:])
        assert got.gen_lag_max_ms.max() == max(line.get("gen_lag_max_ms", 0.0) for line in lines[1:])

    def test_a_bad_bin_in_a_recorder_line_is_the_readers_error(self, tmp_path: Path) -> None:
        """A bin key that is not a number fails with the line number, as the reader fails."""
        line = bucket(T0, CATALOG).to_line()
        line["latency_ms"]["b"]["x"] = 1
        path = tmp_path / "t.jsonl"
        path.write_text(
            "".join(
                json.dumps(x, **COMPACT) + "\n" for x in (HEADER, bucket(T0 - 1, CATALOG).to_line(), line)
            )
        )  # type: ignore[arg-type]
        with pytest.raises(FileInputError, match="bad bucket line") as err:
            load_series(path)
        assert err.value.line == 3
