"""The load timeline: buckets of counts and latency histograms, and how to read them.

Pure: values in, values out. The recorder that writes timelines lives in harness.load and builds
its buckets with `aggregate`. Public modules: `buckets` (the line format), `histogram` (mergeable
latency histograms; scoring and the report bin latency with its `mapping_for`), `reader` (a
timeline file or lines → `Timeline`), `aggregate` (samples → buckets).
"""

from harness.timeline import aggregate, buckets, histogram, reader
from harness.timeline.buckets import SCHEMA, Bucket, FailureKind
from harness.timeline.histogram import Histogram
from harness.timeline.reader import Timeline, WindowStats, read_timeline

__all__ = [
    "SCHEMA",
    "Bucket",
    "FailureKind",
    "Histogram",
    "Timeline",
    "WindowStats",
    "aggregate",
    "buckets",
    "histogram",
    "read_timeline",
    "reader",
]
