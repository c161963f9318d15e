"""The load timeline: buckets of counts and latency histograms, and how to read them.

Pure: values in, values out. The recorder that writes timelines lives in harness.load.
"""

from harness.timeline.buckets import SCHEMA, Bucket, FailureKind
from harness.timeline.histogram import Histogram
from harness.timeline.reader import Timeline, WindowStats, read_timeline

__all__ = ["SCHEMA", "Bucket", "FailureKind", "Histogram", "Timeline", "WindowStats", "read_timeline"]
