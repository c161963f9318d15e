"""From request samples to bucket lines and back: counts, attribution, late deltas, windows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.errors import FileInputError
from harness.timeline.aggregate import Aggregator, Sample
from harness.timeline.buckets import FAILURE_KINDS, Bucket, FailureKind
from harness.timeline.reader import parse_lines

T0 = 1_700_000_000.0
CODE = {k: i + 1 for i, k in enumerate(FAILURE_KINDS)}


def lines_of(buckets: list[Bucket], header: dict | None = None) -> list[str]:
    head = header or {
        "type": "header",
        "schema": "harness.timeline/v1",
        "bucket_s": 1.0,
        "relative_accuracy": 0.005,
    }
    return [json.dumps(head)] + [json.dumps(b.to_line()) for b in buckets]


class TestAggregator:
    def test_counts_failures_by_kind_and_kpi_per_bucket_and_name(self) -> None:
        """Each (bucket, name, method) gets its own requests, failures by kind and KPI."""
        agg = Aggregator(1.0)
        agg.add_samples(
            [
                Sample(T0 + 0.1, ("catalog", "GET"), 5.0, 0.0, 0, 0),
                Sample(T0 + 0.2, ("catalog", "GET"), 7.0, 0.0, CODE[FailureKind.HTTP_5XX], 0),
                Sample(T0 + 0.9, ("purchase", "POST"), 50.0, 0.0, CODE[FailureKind.TIMEOUT], 0),
                Sample(T0 + 1.5, ("purchase", "POST"), 40.0, 0.0, 0, 1),
                Sample(T0 + 1.6, ("entitlement", "GET"), 3.0, 0.0, CODE[FailureKind.CHECK], 0),
            ]
        )
        got = {(b.t, b.name): b for b in agg.take_all()}
        cat = got[(T0, "catalog")]
        assert (cat.requests, cat.failures, cat.failures_by_kind) == (2, 1, {"http_5xx": 1})
        assert got[(T0, "purchase")].failures_by_kind == {"timeout": 1}
        assert got[(T0 + 1, "purchase")].kpi == 1 and got[(T0 + 1, "purchase")].failures == 0
        assert got[(T0 + 1, "entitlement")].failures_by_kind == {"check": 1}
        assert cat.latency_max_ms == 7.0 and cat.latency_sum_ms == 12.0

    def test_corrected_latency_adds_the_schedule_lag(self) -> None:
        """A request sent 2 s late shows 2 s more in the corrected histogram, not in the actual one."""
        agg = Aggregator(1.0)
        agg.add_samples([Sample(T0 + 0.5, ("x", "GET"), 10.0, 2000.0, 0, 0)])
        (b,) = agg.take_all()
        assert b.latency.quantile(1.0) == pytest.approx(10.0, rel=0.01)
        assert b.latency_corrected.quantile(1.0) == pytest.approx(2010.0, rel=0.01)
        assert b.latency_corrected_max_ms == 2010.0

    def test_generator_lag_is_counted_apart_and_never_added_to_latency(self) -> None:
        """A request the load generator sent 300 ms late keeps its latency; it counts as late, with its lag."""
        agg = Aggregator(1.0, gen_late_ms=50.0)
        agg.add_samples(
            [
                Sample(T0 + 0.1, ("x", "GET"), 10.0, 0.0, 0, 0, 300.0),
                Sample(T0 + 0.2, ("x", "GET"), 10.0, 100.0, 0, 0, 50.0),  # at the threshold: not late
                Sample(T0 + 0.3, ("x", "GET"), 10.0, 0.0, 0, 0),
            ]
        )
        (b,) = agg.take_all()
        assert b.latency_corrected_max_ms == 110.0, "service lag only"
        assert b.latency_corrected.quantile(0.5) == pytest.approx(10.0, rel=0.01)
        assert (b.gen_late, b.gen_lag_max_ms) == (1, 300.0)

    def test_the_late_threshold_is_the_recorders_option(self) -> None:
        """With a 500 ms threshold, a 300 ms generator lag is not counted late, though its maximum is kept."""
        agg = Aggregator(1.0, gen_late_ms=500.0)
        agg.add_samples([Sample(T0 + 0.1, ("x", "GET"), 10.0, 0.0, 0, 0, 300.0)])
        (b,) = agg.take_all()
        assert (b.gen_late, b.gen_lag_max_ms) == (0, 300.0)
        with pytest.raises(ValueError):
            Aggregator(1.0, gen_late_ms=-1.0)

    def test_take_closed_keeps_open_buckets(self) -> None:
        """Only buckets that have ended by the cut-off are handed out."""
        agg = Aggregator(0.5)
        agg.add_samples(
            [Sample(T0 + 0.1, ("a", "GET"), 1.0, 0, 0, 0), Sample(T0 + 0.7, ("a", "GET"), 1.0, 0, 0, 0)]
        )
        closed = agg.take_closed(T0 + 0.6)
        assert [b.t for b in closed] == [T0]
        assert [b.t for b in agg.take_all()] == [T0 + 0.5]

    def test_many_random_samples_sum_exactly_across_split_batches_and_late_deltas(self) -> None:
        """However samples are batched, flushed early and re-read, the totals are exact."""
        rng = np.random.default_rng(5)
        n = 20_000
        ts = T0 + rng.uniform(0, 30, n)
        names = [(f"n{i}", "GET") for i in rng.integers(0, 7, n)]
        kinds = rng.choice([0, 0, 0, 1, 2, 3, 4, 5], n)
        samples = [
            Sample(float(t), k, float(r), 0.0, int(c), int(c == 0 and r > 50))
            for t, k, r, c in zip(ts, names, rng.exponential(30, n), kinds, strict=True)
        ]
        agg = Aggregator(0.25)
        out: list[Bucket] = []
        for i, part in enumerate(np.array_split(np.arange(n), 13)):
            agg.add_samples([samples[j] for j in part])
            if i % 3 == 0:
                out += agg.take_closed(T0 + 15)  # early flush: later samples become extra deltas
        out += agg.take_all()
        timeline = parse_lines(
            lines_of(
                out,
                {
                    "type": "header",
                    "schema": "harness.timeline/v1",
                    "bucket_s": 0.25,
                    "relative_accuracy": 0.005,
                },
            )
        )
        total = timeline.total()
        assert total.requests == n
        assert total.failures == int((kinds > 0).sum())
        assert total.kpi == sum(s.kpi for s in samples)
        for code, kind in enumerate(FAILURE_KINDS, start=1):
            assert total.failures_by_kind.get(kind.value, 0) == int((kinds == code).sum())

    def test_bad_bucket_width(self) -> None:
        with pytest.raises(ValueError):
            Aggregator(0)


class TestReader:
    def make(self) -> list[str]:
        agg = Aggregator(1.0)
        agg.add_samples(
            [Sample(T0 + i * 0.5, ("a", "GET"), float(10 + i), 0, int(i % 10 == 0), 0) for i in range(40)]
        )
        return lines_of(agg.take_all())

    def test_window_counts_and_percentiles(self) -> None:
        """A window sums the buckets that start in it and reads percentiles from the merged histogram."""
        tl = parse_lines(self.make())
        w = tl.window(T0, T0 + 10)
        assert w.requests == 20 and w.failures == 2 and w.error_rate == pytest.approx(0.1)
        assert w.percentiles_ms()["p50"] == pytest.approx(19.0, rel=0.01)
        assert w.requests_per_s == pytest.approx(2.0)
        assert tl.window(T0 + 100, T0 + 110).percentiles_ms()["p99"] is None

    def test_duplicate_lines_for_a_bucket_are_summed(self) -> None:
        """Delta lines for the same bucket (late requests, workers) add up."""
        lines = self.make()
        tl = parse_lines([*lines, *lines[1:]])
        assert tl.total().requests == 80

    def test_half_written_last_line_is_ignored(self) -> None:
        """A live file's incomplete last line does not break reading."""
        lines = self.make()
        tl = parse_lines([*lines, lines[-1][:20]])
        assert tl.total().requests == 40

    def test_bad_line_in_the_middle_names_its_line(self) -> None:
        """A corrupt line that is not the last is an error with file and line number."""
        lines = self.make()
        lines.insert(3, "{oops")
        with pytest.raises(FileInputError, match=r"timeline.jsonl:4: not a JSON object"):
            parse_lines(lines, source="timeline.jsonl")

    def test_generator_fields_merge_across_deltas_sum_and_max(self) -> None:
        """Two workers' deltas of one bucket: late counts add, the largest lag is the larger."""
        one = Bucket(t=T0, dt=1.0, name="a", requests=3, gen_late=2, gen_lag_max_ms=80.5)
        two = Bucket(t=T0, dt=1.0, name="a", requests=4, gen_late=1, gen_lag_max_ms=310.25)
        tl = parse_lines(lines_of([one, two]))
        (b,) = tl.buckets.values()
        assert (b.requests, b.gen_late, b.gen_lag_max_ms) == (7, 3, 310.25)
        w = tl.window(T0, T0 + 1)
        assert (w.gen_late, w.gen_lag_max_ms) == (3, 310.25)

    def test_lines_written_before_the_generator_fields_read_as_zero(self) -> None:
        """An older line without gen_late and gen_lag_max_ms reads as before, with zeros for them."""
        line = Bucket(t=T0, dt=1.0, name="a", requests=3, latency_sum_ms=9.0).to_line()
        del line["gen_late"], line["gen_lag_max_ms"]
        b = Bucket.from_line(line)
        assert (b.requests, b.latency_sum_ms, b.gen_late, b.gen_lag_max_ms) == (3, 9.0, 0, 0.0)
        assert b.to_line() == {**line, "gen_late": 0, "gen_lag_max_ms": 0.0}

    def test_wrong_schema_is_refused(self) -> None:
        with pytest.raises(FileInputError, match="schema"):
            parse_lines(['{"type": "header", "schema": "other/v9"}'], source="t")
