"""Finished timelines are read once per process: checkpoints and the report share what scoring read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from harness.errors import FileInputError
from harness.timeline.cache import SeriesCache, nbytes
from harness.timeline.loading import load_series
from tests.scoring.timelines import T0, scenario


def test_a_finished_file_is_read_once_and_gives_what_a_fresh_read_gives(tmp_path: Path) -> None:
    path = scenario(tmp_path / "timeline.jsonl", seconds=60)
    cache = SeriesCache()
    first, again = cache.load(path), cache.load(path)
    assert first is again and cache.reads == 1
    fresh = load_series(path)
    assert np.array_equal(first.requests, fresh.requests)
    assert first.window(T0, T0 + 60) == fresh.window(T0, T0 + 60)


def test_a_file_that_changed_is_read_again(tmp_path: Path) -> None:
    """A file still being written (or rewritten) is never served from before the change."""
    path = scenario(tmp_path / "timeline.jsonl", seconds=60)
    cache = SeriesCache()
    before = cache.load(path)
    scenario(path, seconds=61)  # the recorder wrote one more second
    after = cache.load(path)
    assert cache.reads == 2
    assert int(after.requests.sum()) == int(before.requests.sum()) + 30


def test_cached_arrays_are_read_only(tmp_path: Path) -> None:
    """A caller writing into a shared Series would change every later caller's numbers: numpy refuses."""
    series = SeriesCache().load(scenario(tmp_path / "timeline.jsonl", seconds=30))
    with pytest.raises(ValueError, match="read-only"):
        series.requests[0] = 0
    with pytest.raises(ValueError, match="read-only"):
        series.latency_corrected.p99_ms[0] = 0.0


def test_the_memory_budget_is_kept(tmp_path: Path) -> None:
    a = scenario(tmp_path / "a.jsonl", seconds=60)
    b = scenario(tmp_path / "b.jsonl", seconds=60)
    size = nbytes(load_series(a))
    assert size > 0
    one = SeriesCache(max_bytes=size)  # room for one of the two
    one.load(a), one.load(b), one.load(a)
    assert one.reads == 3, "a was evicted by b"
    one.load(a)
    assert one.reads == 3, "a is kept now"
    none = SeriesCache(max_bytes=size - 1)
    none.load(a), none.load(a)
    assert none.reads == 2, "a Series over the budget is returned, not kept"
    assert none.load(a).requests.flags.writeable, "and not frozen either"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileInputError, match="no such timeline file"):
        SeriesCache().load(tmp_path / "nope.jsonl")


def test_the_same_file_under_another_name_is_the_same_file(tmp_path: Path) -> None:
    path = scenario(tmp_path / "timeline.jsonl", seconds=30)
    os.symlink(path, tmp_path / "link.jsonl")
    cache = SeriesCache()
    cache.load(path), cache.load(tmp_path / "link.jsonl"), cache.load(tmp_path / "." / "timeline.jsonl")
    assert cache.reads == 1
