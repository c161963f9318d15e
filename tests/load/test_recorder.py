"""The recorder's request listener and fold, in-process: what it writes for a known sequence of requests.

The listener is tuned for instructions per request; these tests hold it to what a plain
per-request implementation (a Bucket per bucket, name and method, one Histogram.add per value)
writes for the same requests, line for line, and to Locust's own totals for them.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from locust.exception import CatchResponseError
from locust.stats import RequestStats

from harness.load.recorder import Recorder, classify
from harness.timeline.buckets import FAILURE_KINDS, Bucket
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY, Histogram

T0 = float(math.floor(time.time())) - 30.0
"""Recent: the recorder's last tick is at the real time, and writes a tick line per second up to it."""
NAMES = [("/v1/catalog", "GET"), ("/v1/subscriptions", "POST"), ("/v1/catalog", "HEAD"), ("/v1/me", "GET")]


def request_events(n: int, seed: int) -> list[dict[str, Any]]:
    """Locust request events as FastHttpSession fires them: successes, every kind of failure, lags."""
    rng = np.random.default_rng(seed)
    failures = [
        (None, None),
        (None, None),
        (None, None),
        (CatchResponseError("no subscription id"), SimpleNamespace(status_code=200)),
        (TimeoutError("timed out"), None),
        (ConnectionRefusedError("refused"), None),
        (Exception("503 Server Error"), SimpleNamespace(status_code=503)),
        (Exception("404 Not Found"), SimpleNamespace(status_code=404)),
    ]
    events = []
    for i in range(n):
        name, method = NAMES[int(rng.integers(len(NAMES)))]
        exception, response = failures[int(rng.integers(len(failures)))]
        context: dict[str, Any] = {}
        if i % 3:  # paced users say how late they were; plain ones send an empty context
            context = {"lag_s": float(rng.exponential(0.02)), "gen_lag_s": float(rng.exponential(0.01))}
            if method == "POST" and exception is None:
                context["kpi"] = 1
        events.append(
            {
                "request_type": method,
                "name": name,
                "context": context,
                "response": response or SimpleNamespace(status_code=200),
                "exception": exception,
                "start_time": T0 + float(rng.uniform(0, 6)),
                "url": f"http://127.0.0.1{name}",
                "response_length": 2,
                "response_time": float(rng.lognormal(1.0, 1.2)) if i % 50 else 0.0,
            }
        )
    return events


def reference_buckets(events: list[dict[str, Any]], bucket_s: float, gen_late_ms: float = 50.0) -> list[dict]:
    """The plain way: one Bucket per (bucket, name, method), updated request by request."""
    buckets: dict[tuple[int, str, str], Bucket] = {}
    for e in events:
        ctx = e["context"]
        lag_s, gen_s = ctx.get("lag_s", 0.0), ctx.get("gen_lag_s", 0.0)
        t = e["start_time"] - lag_s - gen_s
        key = (math.floor(t / bucket_s), e["name"], e["request_type"])
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = Bucket(
                t=round(key[0] * bucket_s, 6), dt=bucket_s, name=e["name"], method=e["request_type"],
                latency=Histogram(DEFAULT_RELATIVE_ACCURACY), latency_corrected=Histogram(DEFAULT_RELATIVE_ACCURACY),
            )  # fmt: skip
        ms = e["response_time"] or 0.0
        corrected = ms + max(lag_s * 1000.0, 0.0)
        b.requests += 1
        if e["exception"] is not None:
            b.failures += 1
            kind = classify(e["exception"], e["response"]).value
            b.failures_by_kind[kind] = b.failures_by_kind.get(kind, 0) + 1
        b.kpi += ctx.get("kpi", 0)
        b.latency_sum_ms += ms
        b.latency_max_ms = max(b.latency_max_ms, ms)
        b.latency_corrected_max_ms = max(b.latency_corrected_max_ms, corrected)
        b.gen_late += gen_s * 1000.0 > gen_late_ms
        b.gen_lag_max_ms = max(b.gen_lag_max_ms, gen_s * 1000.0)
        b.latency.add(ms)
        b.latency_corrected.add(corrected)
    return [buckets[k].to_line() for k in sorted(buckets)]


def open_recorder(path: Path, bucket_s: float = 1.0) -> Recorder:
    """A single-process recorder with no Locust around it: the listener and ticks are called directly."""
    environment = SimpleNamespace(
        runner=SimpleNamespace(user_count=4), host="http://127.0.0.1", parsed_options=None
    )
    return Recorder(environment, str(path), bucket_s)


def written(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def merged_buckets(lines: list[dict], bucket_s: float) -> list[dict]:
    """Bucket lines with the delta lines of one bucket added up, as readers do."""
    out: dict[tuple[int, str, str], Bucket] = {}
    for line in lines:
        if line["type"] == "bucket":
            b = Bucket.from_line(line, DEFAULT_RELATIVE_ACCURACY)
            if b.key in out:
                out[b.key].merge(b)
            else:
                out[b.key] = b
    return [out[k].to_line() for k in sorted(out)]


class TestListener:
    @pytest.mark.parametrize("bucket_s", [1.0, 0.25])
    def test_one_fold_writes_exactly_the_plain_reference_lines(self, tmp_path: Path, bucket_s: float) -> None:
        """Folded at once, 3,000 requests give the reference's bucket lines, every count, bin and float."""
        events = request_events(3000, seed=1)
        rec = open_recorder(tmp_path / "timeline.jsonl", bucket_s)
        for e in events:
            rec.on_request(**e)
        rec.close()
        lines = written(tmp_path / "timeline.jsonl")
        assert [line for line in lines if line["type"] == "bucket"] == reference_buckets(events, bucket_s)
        assert lines[-1]["type"] == "end"

    def test_ticks_and_late_arrivals_add_up_to_the_reference(self, tmp_path: Path) -> None:
        """Ticked every second while requests arrive out of order, the deltas sum to the reference's buckets."""
        events = request_events(4000, seed=2)
        # Response times in whole 1/8 ms, so that sums are exact in any grouping.
        for e in events:
            e["response_time"] = round(e["response_time"] * 8) / 8
        rec = open_recorder(tmp_path / "timeline.jsonl")
        arrival = sorted(range(len(events)), key=lambda i: events[i]["start_time"] + 0.002 * (i % 700))
        for n, i in enumerate(arrival):
            rec.on_request(**events[i])
            if n % 500 == 499:
                rec.tick(events[i]["start_time"])
        rec.close()
        lines = written(tmp_path / "timeline.jsonl")
        assert sum(line["type"] == "bucket" for line in lines) > len(reference_buckets(events, 1.0)), (
            "some buckets were written before all their requests had arrived"
        )
        assert merged_buckets(lines, 1.0) == reference_buckets(events, 1.0)

    def test_totals_equal_locusts_own_for_the_same_events(self, tmp_path: Path) -> None:
        """Requests and failures, per name and method, equal what Locust's RequestStats counts."""
        events = request_events(2500, seed=3)
        rec = open_recorder(tmp_path / "timeline.jsonl")
        stats = RequestStats()
        for e in events:
            rec.on_request(**e)
            stats.log_request(e["request_type"], e["name"], e["response_time"], e["response_length"])
            if e["exception"] is not None:
                stats.log_error(e["request_type"], e["name"], e["exception"])
        rec.close()
        got: dict[tuple[str, str], list[int]] = {}
        for line in written(tmp_path / "timeline.jsonl"):
            if line["type"] == "bucket":
                row = got.setdefault((line["name"], line["method"]), [0, 0])
                row[0] += line["requests"]
                row[1] += line["failures"]
        want = {(s.name, s.method): [s.num_requests, s.num_failures] for s in stats.entries.values()}
        assert got == want
        assert sum(r[0] for r in got.values()) == stats.total.num_requests == 2500

    def test_a_request_without_start_time_is_placed_by_its_end_minus_its_latency(
        self, tmp_path: Path
    ) -> None:
        """Some users fire the event without start_time: the recorder places it at now minus its latency."""
        rec = open_recorder(tmp_path / "timeline.jsonl")
        rec.on_request("GET", "/x", 1500.0, start_time=None)
        rec.close()
        (line,) = [line for line in written(tmp_path / "timeline.jsonl") if line["type"] == "bucket"]
        header = written(tmp_path / "timeline.jsonl")[0]
        assert line["requests"] == 1 and abs(line["t"] - (header["started"] - 1.5)) <= 1.5

    def test_every_failure_kind_is_counted_under_its_name(self, tmp_path: Path) -> None:
        """Each failure kind the classifier knows reaches the bucket's failures_by_kind."""
        events = [e for e in request_events(400, seed=4) if e["exception"] is not None]
        rec = open_recorder(tmp_path / "timeline.jsonl")
        for e in events:
            rec.on_request(**e)
        rec.close()
        kinds: set[str] = set()
        for line in written(tmp_path / "timeline.jsonl"):
            if line["type"] == "bucket":
                kinds |= set(line["failures_by_kind"])
        assert kinds == {k.value for k in FAILURE_KINDS}
