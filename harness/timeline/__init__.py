"""The load timeline: buckets of counts and latency histograms, and how to read them.

Pure: values in, values out. The recorder that writes timelines lives in harness.load; it
aggregates samples into buckets with `Aggregator`. Scoring and the report draw latency with the
same `mapping_for` and `QUANTILES` as the histograms here.
"""

from harness.timeline.aggregate import DEFAULT_GEN_LATE_MS, Aggregator, SampleBuffer
from harness.timeline.buckets import SCHEMA, Bucket, FailureKind
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY, Histogram, mapping_for
from harness.timeline.reader import QUANTILES, Timeline, WindowStats, parse_lines, read_timeline

__all__ = [
    "DEFAULT_GEN_LATE_MS",
    "DEFAULT_RELATIVE_ACCURACY",
    "QUANTILES",
    "SCHEMA",
    "Aggregator",
    "Bucket",
    "FailureKind",
    "Histogram",
    "SampleBuffer",
    "Timeline",
    "WindowStats",
    "mapping_for",
    "parse_lines",
    "read_timeline",
]
