"""The load timeline: buckets of counts and latency histograms, and the one reader of its file.

The recorder that writes timelines lives in harness.load. `TimelineFile` reads a timeline into a
`Series` (per-bucket arrays over all request names) and extends it with what is appended since
its last read; `load_series` reads a finished file whole; `SeriesFiles` shares the files of a run;
`pooled_window` totals bucket ranges of several Series as one window (latency bins merged).
`read_timeline` (per name, one object per line) is the reference the fast reader is tested against.
Public modules besides: `buckets` (the line format), `histogram` (mergeable latency histograms;
scoring and the report bin latency with its `mapping_for`), `reader` (the reference reader),
`aggregate` (samples → buckets, used by the recorder).
"""

from harness.timeline import aggregate, buckets, histogram, reader
from harness.timeline.buckets import SCHEMA, Bucket, FailureKind
from harness.timeline.histogram import Histogram
from harness.timeline.loading import SeriesFiles, TimelineFile, load_series
from harness.timeline.reader import Timeline, WindowStats, read_timeline
from harness.timeline.series import LatencySeries, Series, Window, pooled_window, series_from_timeline

__all__ = [
    "SCHEMA",
    "Bucket",
    "FailureKind",
    "Histogram",
    "LatencySeries",
    "Series",
    "SeriesFiles",
    "Timeline",
    "TimelineFile",
    "Window",
    "WindowStats",
    "aggregate",
    "buckets",
    "histogram",
    "load_series",
    "pooled_window",
    "read_timeline",
    "reader",
    "series_from_timeline",
]
