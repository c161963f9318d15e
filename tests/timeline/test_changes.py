"""A growing Series says from which position each read changed it, and finds closed buckets cheaply."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.timeline.loading import TimelineFile
from harness.timeline.series import SeriesChanges
from tests.scoring.timelines import CATALOG, HEADER, T0, bucket, write_lines
from tests.timeline.test_series import random_timeline


def append(path: Path, seconds: list[float], ticks: bool = True) -> None:
    """Append, per second, a tick line (unless told not to) and a catalog bucket line."""
    with path.open("a") as fh:
        for s in seconds:
            if ticks:
                fh.write(json.dumps({"type": "tick", "t": T0 + s, "dt": 1.0, "users": 3}) + "\n")
            fh.write(json.dumps(bucket(T0 + s, CATALOG).to_line()) + "\n")


class TestChangedFrom:
    def test_a_read_reports_the_lowest_position_it_changed(self, tmp_path: Path) -> None:
        """New seconds report their first position, a late delta its own, and no read reports nothing."""
        path = write_lines(tmp_path / "t.jsonl", [HEADER])
        append(path, list(range(10)))
        live = TimelineFile(path)
        live.update()
        first = live.series()
        assert first.changed_from(0) == 0
        assert first.changed_from(first.revision) is None
        append(path, [10, 11])
        live.update()
        second = live.series()
        assert second.changed_from(first.revision) == 10
        append(path, [3], ticks=False)  # a worker's late report for second 3
        live.update()
        third = live.series()
        assert third.changed_from(second.revision) == 3
        assert third.changed_from(first.revision) == 3
        assert second.changed_from(first.revision) == 10, "an older series answers up to its own revision"

    def test_lines_before_the_first_bucket_move_every_position(self, tmp_path: Path) -> None:
        """A bucket before the first moves the positions up: everything may have changed."""
        path = write_lines(tmp_path / "t.jsonl", [HEADER])
        append(path, [5, 6, 7])
        live = TimelineFile(path)
        live.update()
        before = live.series()
        append(path, [2], ticks=False)
        live.update()
        assert live.series().changed_from(before.revision) == 0

    def test_a_reader_further_behind_than_the_log_is_told_everything_changed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The log keeps the last KEEP revisions; older ones answer 0, not a wrong position."""
        monkeypatch.setattr(SeriesChanges, "KEEP", 2)
        path = write_lines(tmp_path / "t.jsonl", [HEADER])
        append(path, [0, 1], ticks=False)
        live = TimelineFile(path)
        live.update()
        old = live.series().revision
        for s in (2, 3, 4):
            append(path, [s], ticks=False)
            live.update()
        series = live.series()
        assert series.changed_from(old) == 0
        assert series.changed_from(series.revision - 1) == 4

    def test_a_series_not_built_to_grow_says_everything_may_have_changed(self, tmp_path: Path) -> None:
        """Without a change log (a saved Series), every position counts as changed."""
        from dataclasses import replace

        path = write_lines(tmp_path / "t.jsonl", [HEADER])
        append(path, [0, 1])
        live = TimelineFile(path)
        live.update()
        assert replace(live.series(), changes=None).changed_from(5) == 0


class TestEndsBy:
    def test_it_counts_as_searchsorted_over_the_ends_does(self, tmp_path: Path) -> None:
        """For times on, between and around bucket ends: the count of buckets ending by then."""
        path = random_timeline(tmp_path / "t.jsonl", seconds=30)
        live = TimelineFile(path)
        live.update(final=True)
        series = live.series()
        ends = series.t + series.dt
        for at in np.concatenate((ends, ends + 1e-9, ends - 1e-9, ends + 0.5, [T0 - 10.0, T0 + 1e6])):
            assert series.ends_by(float(at)) == int(np.searchsorted(ends, at, side="right"))
