"""Side-by-side comparison of runs: the same plan on several targets, or one target over time.

`harness compare RUN_DIR… [--label NAME=RUN_DIR…]` reads run directories, pools the trials of
runs sharing a label, and compares every side against the first (the baseline) per scenario
and metric: median and exact interval per side, Hodges-Lehmann shift, an exact rank test with
the page's correction, and a verdict in the metric's good direction. How to read it: docs/compare.md.

    labels = parse_label_options(["eks=reports/r2", "self-managed=reports/r1"])  # runs.py
    report = compare_runs([], labels, alpha=0.05, metrics=None)                    # runs.py
    html_path, md_path = write_comparison(report, out_dir)                         # render.py
    render_markdown(report), render_html(report)                                   # text only

`stats` is the pure part (summarize, compare, rank_test, hodges_lehmann, adjust), usable on any
list of values; `page` decides units (batches, runs) and shares alpha over a page.
`scale` scores every trial of a scenario again on one set of health thresholds (docs/compare.md,
"One scale"); `compare_runs(..., own_thresholds=True)` keeps each trial's own.
"""

from harness.compare import differences, page, scale, stats
from harness.compare.render import render_html, render_markdown, write_comparison
from harness.compare.runs import (
    DEFAULT_METRICS,
    ComparisonReport,
    MetricComparison,
    MetricSpec,
    ScenarioComparison,
    Side,
    compare_runs,
    metric_spec,
    parse_label_options,
)
from harness.compare.stats import Better, Comparison, Summary, Verdict, compare, min_trials_for, summarize

__all__ = [
    "DEFAULT_METRICS",
    "Better",
    "Comparison",
    "ComparisonReport",
    "MetricComparison",
    "MetricSpec",
    "ScenarioComparison",
    "Side",
    "Summary",
    "Verdict",
    "compare",
    "compare_runs",
    "differences",
    "metric_spec",
    "min_trials_for",
    "page",
    "parse_label_options",
    "render_html",
    "render_markdown",
    "scale",
    "stats",
    "summarize",
    "write_comparison",
]
