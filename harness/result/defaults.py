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

OBSERVE_S = 90.0
"""The longest the load stays on after the method ends, waiting for recovery plus stability: the
testbed's slowest repair (30 s eviction, then a restart) fits with room. Also the default horizon
(`HORIZON_S`)."""

HORIZON_S = OBSERVE_S
"""The fixed window, from the fault's start, over which availability, error rate, downtime and KPI
lost are counted, when the plan sets none: as long as the plan waits for a recovery, so it is known
before the run, the same for every trial of the plan, and never longer than the engine observes
(it waits up to `observe_s` after the method ends, which is after the fault starts)."""

TARGET_RECOVERY_S = 60.0
"""The recovery time that costs half the resilience score's finite recovery penalty: a minute is
what a node or zone loss should take on a managed cluster (harness.scoring.resilience)."""

HEALTH_CONFIDENCE = 0.95
"""One-sided confidence that a bucket's true error rate (or share of slow requests) is above its
threshold before the bucket counts as breaching it: the usual 5 % risk of a false alarm for a
service running exactly at the threshold, far less for one running below it."""

IMPACT_BUCKETS = 3
"""Unhealthy buckets in a row that make an impact (3 s at the recorder's 1 s buckets): a false
alarm in one bucket is rare, three in a row are rare cubed, while an outage users notice outlasts
three seconds. Shorter blips still cost availability and downtime."""
