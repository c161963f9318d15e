"""Scoring: one scenario's timeline and phase markers in, the metrics of DESIGN.md out.

Pure and deterministic (files are read only by `load_series`, and `load_series_cached` for a
finished scenario's file, read once per process): the engine scores each
scenario with it, live and after the run, and `harness score RUN_DIR` recomputes
result.json from the run folder alone. Definitions in docs/scoring.md.

    phases = phases_from_markers(markers)          # windows.py
    series = load_series("timeline.jsonl")         # loading.py (bucketlines.py), series.py (bins.py)
    metrics = score_scenario(series, phases, ScoringSettings(policy=HealthPolicy(p95_ms=300)))
    metrics.to_dict()                              # metrics.py (health.py, resilience.py)
"""

from harness.scoring.health import HealthPolicy
from harness.scoring.metrics import ScenarioMetrics, ScoringSettings, score_scenario
from harness.scoring.windows import Phases, phases_from_markers
from harness.timeline.cache import load_series_cached
from harness.timeline.loading import load_series
from harness.timeline.series import Series, series_from_timeline

__all__ = [
    "HealthPolicy",
    "Phases",
    "ScenarioMetrics",
    "ScoringSettings",
    "Series",
    "load_series",
    "load_series_cached",
    "phases_from_markers",
    "score_scenario",
    "series_from_timeline",
]
