"""Real Locust runs against the real reference service, checked against Locust's own totals."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness.app.launcher import open_service
from harness.load.process import LoadSpec, read_locust_totals, run_load
from harness.timeline import read_timeline
from tests.conftest import LOCUSTFILE

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("processes", [1, 2])
def test_timeline_totals_equal_locusts_and_acks_are_all_stored(tmp_path: Path, processes: int) -> None:
    """Over a 15 s run the timeline's requests and failures sum to Locust's totals exactly,
    subscriptions complete, and every acknowledged subscription is in the database."""
    with open_service(f"sqlite:///{tmp_path / 'svc.db'}", workers=2, log_path=tmp_path / "svc.log") as svc:
        spec = LoadSpec(
            LOCUSTFILE, svc.url, users=20, spawn_rate=20, run_time_s=15, processes=processes, pacing_s=0.5
        )
        result = run_load(spec, tmp_path / "run")
        assert result.returncode in (0, 1), (result.log.read_text())[-3000:]
        locust = read_locust_totals(result.stats_json)
        timeline = read_timeline(result.timeline)
        total = timeline.total()
        assert locust.requests > 300
        assert (total.requests, total.failures) == (locust.requests, locust.failures)
        assert total.kpi > 0
        assert timeline.end is not None, "the recorder closes the file with an end line"
        assert timeline.ticks, "tick lines mark every bucket the load ran in"
        acks = [json.loads(line)["subscription_id"] for line in result.acks.read_text().splitlines()]
        assert len(acks) >= total.kpi
        found = httpx.post(svc.url + "/v1/admin/subscriptions/lookup", json={"ids": acks}).json()
        assert found["missing"] == []


def test_a_two_second_stall_shows_in_corrected_latency(tmp_path: Path) -> None:
    """Freezing the service for 2 s under paced load puts p99 >= 1.5 s in the corrected latency
    of the buckets that cover the stall; the uncorrected latency is recorded beside it."""
    with open_service(f"sqlite:///{tmp_path / 'svc.db'}", workers=1, log_path=tmp_path / "svc.log") as svc:
        stall: dict[str, float] = {}

        def freeze() -> None:
            time.sleep(6.0)
            stall["start"] = time.time()
            os.killpg(svc.process.pid, signal.SIGSTOP)
            try:
                time.sleep(2.0)
            finally:
                os.killpg(svc.process.pid, signal.SIGCONT)
                stall["end"] = time.time()

        freezer = threading.Thread(target=freeze)
        freezer.start()
        spec = LoadSpec(LOCUSTFILE, svc.url, users=10, spawn_rate=10, run_time_s=14, pacing_s=0.1)
        result = run_load(spec, tmp_path / "run")
        freezer.join()
    timeline = read_timeline(result.timeline)
    dt = timeline.bucket_s
    covering = [
        timeline.window(t, t + dt)
        for t in sorted({b.t for b in timeline.buckets.values()})
        if t < stall["end"] and t + dt > stall["start"]
    ]
    assert covering
    corrected_p99 = max(w.percentiles_ms(corrected=True)["p99"] or 0 for w in covering)
    assert corrected_p99 >= 1500
    for w in covering:
        assert w.latency.count == w.latency_corrected.count > 0
        assert w.percentiles_ms()["p99"] <= w.percentiles_ms(corrected=True)["p99"]
    before = timeline.window(stall["start"] - 4, stall["start"] - 1)
    assert before.percentiles_ms(corrected=True)["p99"] < 500, "no stall, no corrected latency"
