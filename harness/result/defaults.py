"""Defaults that the plan, scoring and the metric meanings share, each defined once.

The plan models (harness.plan.models) offer them as field defaults and scoring
(harness.scoring.metrics) falls back on them when called without a plan, so a plan that says
nothing and a scoring call that says nothing judge a scenario the same way.
"""

from __future__ import annotations

STABILITY_S = 10.0
"""A recovery counts once healthy buckets have lasted this long with nothing unhealthy after:
long enough to outlast a restart loop's back-off or an endpoint flapping in and out of the
load balancer, short enough that a game day does not wait minutes per scenario."""

COST_PER_HOUR_USD = 40_000.0
"""The figure the project started from: what an hour of the product being down cost."""

TARGET_RECOVERY_S = 60.0
"""Recovering within this costs proportionally fewer points in the resilience score (full
penalty at or beyond it): a minute is what a node or zone loss should take on a managed cluster."""

HEALTH_CONFIDENCE = 0.95
"""One-sided confidence that a bucket's true error rate (or share of slow requests) is above its
threshold before the bucket counts as breaching it: the usual 5 % risk of a false alarm for a
service running exactly at the threshold, far less for one running below it."""

IMPACT_BUCKETS = 3
"""Unhealthy buckets in a row that make an impact (3 s at the recorder's 1 s buckets): a false
alarm in one bucket is rare, three in a row are rare cubed, while an outage users notice outlasts
three seconds. Shorter blips still cost availability and downtime."""
