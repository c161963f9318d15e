"""Scoring: one scenario's timeline and phase markers in, the metrics of DESIGN.md out.

Pure and deterministic (files are read only by `load_series`, and `load_series_cached` for a
finished scenario's file, read once per process): the engine scores each
scenario with it, live and after the run, and `harness score RUN_DIR` recomputes
result.json from the run folder alone. Definitions in docs/scoring.md.

    phases = phases_from_markers(markers)          # windows.py
    series = load_series("timeline.jsonl")         # loading.py (bucketlines.py), series.py (bins.py)
    metrics = score_scenario(series, phases, ScoringSettings(policy=HealthPolicy(p95_ms=300)))
    metrics.to_dict()                              # metrics.py (health.py, resilience.py)

`controlplane` summarises a Kubernetes target's control-plane samples over the same phases;
`health` is the healthy-bucket test, which the report draws too.
"""

from harness.scoring import controlplane, health
from harness.scoring.cache import load_series_cached
from harness.scoring.health import HealthPolicy
from harness.scoring.loading import load_series
from harness.scoring.metrics import ScenarioMetrics, ScoringSettings, score_scenario
from harness.scoring.series import LatencySeries, Series, series_from_timeline
from harness.scoring.windows import Phases, phases_from_markers

__all__ = [
    "HealthPolicy",
    "LatencySeries",
    "Phases",
    "ScenarioMetrics",
    "ScoringSettings",
    "Series",
    "controlplane",
    "health",
    "load_series",
    "load_series_cached",
    "phases_from_markers",
    "score_scenario",
    "series_from_timeline",
]
