"""Abort conditions on the live series: every closed bucket of the last for_s seconds must violate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.engine.abort import LiveSeries, tripped
from harness.timeline import load_series
from tests.scoring.timelines import T0, bad, scenario


@dataclass
class Condition:
    metric: str
    above: float | None = None
    below: float | None = None
    for_s: float = 3.0


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """Twenty seconds; catalog fails half its requests (a third of all) from second 10 on."""
    return scenario(tmp_path / "timeline.jsonl", seconds=20, overrides=bad(range(10, 20)))


class TestTripped:
    def test_a_condition_held_for_its_duration_trips(self, failing: Path) -> None:
        """Error rate above 0.3 in every closed bucket of the last 3 s."""
        series = load_series(failing)
        assert tripped(series, Condition("error_rate", above=0.3), now_t=T0 + 13)
        assert not tripped(series, Condition("error_rate", above=0.3), now_t=T0 + 12), "two seconds only"
        assert not tripped(series, Condition("error_rate", above=0.5), now_t=T0 + 20)

    def test_an_open_bucket_is_not_judged(self, failing: Path) -> None:
        """Buckets still being filled (ending after now) do not count: 10..12 are closed at 13.0 only."""
        series = load_series(failing)
        assert not tripped(series, Condition("error_rate", above=0.3), now_t=T0 + 12.9)

    def test_latency_and_a_stale_timeline(self, tmp_path: Path) -> None:
        """p95 is the corrected latency over all names; a timeline that stopped long ago trips nothing."""
        path = scenario(tmp_path / "t.jsonl", seconds=10)
        series = load_series(path)
        assert tripped(series, Condition("p95_ms", above=40.0), now_t=T0 + 10)  # purchase: 50 ms
        assert not tripped(series, Condition("p95_ms", above=60.0), now_t=T0 + 10)
        assert tripped(series, Condition("p95_ms", below=60.0), now_t=T0 + 10)
        assert not tripped(series, Condition("p95_ms", above=40.0), now_t=T0 + 60)


def test_the_live_series_waits_for_the_file_and_follows_it(tmp_path: Path) -> None:
    """Before the recorder's first line there is no series; then it is the file's as far as written."""
    path = tmp_path / "timeline.jsonl"
    live = LiveSeries(path)
    live.update()
    assert live.series is None
    scenario(path, seconds=20, overrides=bad(range(10, 20)))
    live.update()
    assert live.series is not None and len(live.series) == 20
    assert tripped(live.series, Condition("error_rate", above=0.3), now_t=T0 + 20)
