"""A run's timeline files are read once: scoring, checkpoints and the report share one SeriesFiles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from harness.errors import FileInputError
from harness.timeline import saved
from harness.timeline.loading import SeriesFiles, TimelineFile, load_series
from tests.scoring.timelines import CATALOG, PURCHASE, T0, bucket, scenario


def test_a_finished_file_is_read_once_and_gives_what_a_fresh_read_gives(tmp_path: Path) -> None:
    path = scenario(tmp_path / "timeline.jsonl", seconds=60)
    files = SeriesFiles()
    first, again = files.series(path), files.series(path)
    assert files.get(path).reads == [(0, path.stat().st_size)]
    fresh = load_series(path)
    assert np.array_equal(first.requests, fresh.requests) and np.array_equal(again.requests, fresh.requests)
    assert first.window(T0, T0 + 60) == fresh.window(T0, T0 + 60)


def test_appended_lines_are_read_and_nothing_before_them(tmp_path: Path) -> None:
    """The recorder appends: the next ask reads the new bytes only, and counts them in."""
    path = scenario(tmp_path / "timeline.jsonl", seconds=60)
    files = SeriesFiles()
    before = int(files.series(path).requests.sum())
    size = path.stat().st_size
    with path.open("a") as fh:
        for spec in (CATALOG, PURCHASE):
            fh.write(json.dumps(bucket(T0 + 60, spec).to_line()) + "\n")
    after = files.series(path)
    assert int(after.requests.sum()) == before + 30
    assert files.get(path).reads == [(0, size), (size, path.stat().st_size)]


def test_a_replaced_file_is_read_afresh(tmp_path: Path) -> None:
    """Another file under the same name (a run folder copied over) is not extended but read anew."""
    path = scenario(tmp_path / "timeline.jsonl", seconds=60)
    files = SeriesFiles()
    files.series(path)
    other = scenario(tmp_path / "other.jsonl", seconds=20)
    os.replace(other, path)
    assert len(files.series(path)) == 20


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileInputError, match="no such timeline file"):
        SeriesFiles().series(tmp_path / "nope.jsonl")


def test_the_same_file_under_another_name_is_the_same_file(tmp_path: Path) -> None:
    path = scenario(tmp_path / "timeline.jsonl", seconds=30)
    os.symlink(path, tmp_path / "link.jsonl")
    files = SeriesFiles()
    files.series(path), files.series(tmp_path / "link.jsonl"), files.series(tmp_path / "." / "timeline.jsonl")
    assert len(files.get(path).reads) == 1


class TestAddedFiles:
    """The engine adds each scenario's live file when the scenario ends; the run keeps it to the end."""

    def test_an_added_file_is_kept_as_a_compact_series_equal_to_a_fresh_read(self, tmp_path: Path) -> None:
        """Not the reader: arrays of their own, exactly their size, with the same windows."""
        path = scenario(tmp_path / "timeline.jsonl", seconds=60)
        live = TimelineFile(path)
        live.update(final=True)
        files = SeriesFiles()
        files.add(live)
        kept, fresh = files.series(path), load_series(path)
        assert files.series(path) is kept
        assert kept.requests.base is None and kept.requests.size == len(fresh) == 60
        assert all(b.counts.base is None for b in kept.latency.blocks)
        assert kept.window(T0, T0 + 60) == fresh.window(T0, T0 + 60)
        assert kept.window(T0 + 10, T0 + 20) == fresh.window(T0 + 10, T0 + 20)

    def test_an_added_file_appended_to_afterwards_is_read_again(self, tmp_path: Path) -> None:
        path = scenario(tmp_path / "timeline.jsonl", seconds=60)
        live = TimelineFile(path)
        live.update(final=True)
        files = SeriesFiles()
        files.add(live)
        with path.open("a") as fh:
            fh.write(json.dumps(bucket(T0 + 60, CATALOG).to_line()) + "\n")
        assert len(files.series(path)) == 61


class TestSavedSeries:
    def test_a_long_timeline_is_saved_and_taken_instead_of_parsed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Read whole once, its Series is saved; another reader takes it, with the same numbers."""
        monkeypatch.setattr(saved, "MIN_BYTES", 0)
        path = scenario(tmp_path / "timeline.jsonl", seconds=60)
        first = SeriesFiles(saved=True).series(path)
        assert saved.path_for(path).exists()
        monkeypatch.setattr(TimelineFile, "_read", lambda self, final: pytest.fail("parsed again"))
        again = SeriesFiles(saved=True).series(path)
        for name in ("t", "requests", "failures", "kpi", "users"):
            assert np.array_equal(getattr(again, name), getattr(first, name))
        assert np.array_equal(again.latency_corrected.p95_ms, first.latency_corrected.p95_ms, equal_nan=True)
        assert again.window(T0, T0 + 60) == first.window(T0, T0 + 60)

    def test_a_saved_series_that_no_longer_matches_is_ignored(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The timeline grew after it was saved: it is parsed, and the new lines count."""
        monkeypatch.setattr(saved, "MIN_BYTES", 0)
        path = scenario(tmp_path / "timeline.jsonl", seconds=60)
        before = int(SeriesFiles(saved=True).series(path).requests.sum())
        with path.open("a") as fh:
            fh.write(json.dumps(bucket(T0 + 60, CATALOG).to_line()) + "\n")
        assert int(SeriesFiles(saved=True).series(path).requests.sum()) == before + 20
        saved.path_for(path).write_bytes(b"not a zip file")
        assert int(SeriesFiles(saved=True).series(path).requests.sum()) == before + 20

    def test_a_saved_file_whose_description_is_not_an_object_is_ignored(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A readable npz from elsewhere, its description a JSON list: parsed, and saved over."""
        monkeypatch.setattr(saved, "MIN_BYTES", 0)
        path = scenario(tmp_path / "timeline.jsonl", seconds=60)
        want = int(load_series(path).requests.sum())
        np.savez(saved.path_for(path), meta=np.array(json.dumps([1, 2])))
        assert int(SeriesFiles(saved=True).series(path).requests.sum()) == want
        assert saved.load(path, os.stat(path)) is not None

    def test_small_timelines_are_not_saved(self, tmp_path: Path) -> None:
        """They parse faster than a saved Series loads: the run folder stays as it was."""
        path = scenario(tmp_path / "timeline.jsonl", seconds=60)
        SeriesFiles(saved=True).series(path)
        assert not saved.path_for(path).exists()
