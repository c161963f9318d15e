"""The recorder's request listener and fold: what it writes for a known sequence of request events.

The listener is tuned for instructions per request; these tests hold it to what a plain
per-request implementation (a Bucket per bucket, name and method, one Histogram.add per value)
writes for the same events, line for line, and to Locust's own totals for them. The events are
replayed in a child process (tests/load/listener_replay.py): the recorder imports Locust, which
monkey-patches whatever process imports it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.timeline.buckets import FAILURE_KINDS, Bucket
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY

REPLAY = Path(__file__).with_name("listener_replay.py")
ROOT = Path(__file__).resolve().parents[2]


def replay(tmp_path: Path, scenario: str, seed: int, requests: int, bucket_s: float = 1.0) -> dict[str, Any]:
    """Run one replay; the recorder's lines and what the replay computed beside them."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run(
        [sys.executable, str(REPLAY), scenario, str(seed), str(requests), str(bucket_s), str(tmp_path)],
        check=True, env=env, timeout=120, cwd=ROOT,
    )  # fmt: skip
    result = json.loads((tmp_path / "replay.json").read_text())
    result["lines"] = [json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    return result


def merged_buckets(lines: list[dict]) -> list[dict]:
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
        got = replay(tmp_path, "once", seed=1, requests=3000, bucket_s=bucket_s)
        assert [line for line in got["lines"] if line["type"] == "bucket"] == got["reference"]
        assert got["lines"][-1]["type"] == "end"

    def test_ticks_and_late_arrivals_add_up_to_the_reference(self, tmp_path: Path) -> None:
        """Ticked while requests arrive out of order, the delta lines sum to the reference's buckets."""
        got = replay(tmp_path, "ticks", seed=2, requests=4000)
        assert sum(line["type"] == "bucket" for line in got["lines"]) > len(got["reference"]), (
            "some buckets were written before all their requests had arrived"
        )
        assert merged_buckets(got["lines"]) == got["reference"]

    def test_totals_equal_locusts_own_for_the_same_events(self, tmp_path: Path) -> None:
        """Requests and failures, per name and method, equal what Locust's RequestStats counted."""
        got = replay(tmp_path, "once", seed=3, requests=2500)
        totals: dict[tuple[str, str], list[int]] = {}
        for line in got["lines"]:
            if line["type"] == "bucket":
                row = totals.setdefault((line["name"], line["method"]), [0, 0])
                row[0] += line["requests"]
                row[1] += line["failures"]
        assert totals == {(name, method): [n, f] for name, method, n, f in got["locust"]}
        assert sum(r[0] for r in totals.values()) == 2500

    def test_every_failure_kind_is_counted_under_its_name(self, tmp_path: Path) -> None:
        """Each failure kind the classifier knows reaches the buckets' failures_by_kind."""
        got = replay(tmp_path, "once", seed=4, requests=400)
        kinds: set[str] = set()
        for line in got["lines"]:
            if line["type"] == "bucket":
                kinds |= set(line["failures_by_kind"])
        assert kinds == set(got["failure_kinds"]) == {k.value for k in FAILURE_KINDS}

    def test_a_request_without_start_time_is_placed_by_its_end_minus_its_latency(
        self, tmp_path: Path
    ) -> None:
        """An event without start_time lands in the bucket of now minus its latency."""
        got = replay(tmp_path, "no-start-time", seed=5, requests=1)
        header = got["lines"][0]
        (line,) = [line for line in got["lines"] if line["type"] == "bucket"]
        assert line["requests"] == 1 and header["started"] - 1.5 - 1.0 <= line["t"] <= header["started"]
