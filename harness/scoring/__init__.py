"""Scoring: one scenario's Series and phase markers in, the metrics of DESIGN.md out.

Pure and deterministic: functions of a `harness.timeline.Series`, the phases and the plan's
settings, with no file, thread or process-wide state. The engine scores each scenario with it
(and asks `recovered` while it watches for recovery), `harness score RUN_DIR` recomputes
result.json from the run folder alone, and the report shades the buckets `health.observed_health`
judges unhealthy. Definitions in docs/scoring.md.

    phases = phases_from_markers(markers)                        # windows.py
    series = harness.timeline.load_series("timeline.jsonl")      # read by harness.timeline
    metrics = score_scenario(series, phases, ScoringSettings(policy=HealthPolicy(p95_ms=300)))
    metrics.to_dict()                                            # metrics.py (health.py, resilience.py)

`settings_for(plan)` is a plan's ScoringSettings; `pooled_thresholds` resolves one scale for
several trials from their baselines pooled (harness compare). `controlplane` summarises a
Kubernetes target's control-plane samples over the same phases; `health` is the healthy-bucket
test, which the report draws too; `stages` explains a recovery: its phases from the fault to steady
state, from ground truth and control-plane samples, and whether each fault took effect; `baseline`
judges whether the load was steady before the fault (the engine asks it before injecting, `harness
score` again).
"""

from harness.scoring import baseline, controlplane, health, stages
from harness.scoring.health import HealthPolicy
from harness.scoring.metrics import (
    RecoveryWatch,
    ScenarioMetrics,
    ScoringSettings,
    pooled_thresholds,
    recovered,
    score_scenario,
    settings_for,
)
from harness.scoring.windows import Phases, phases_from_markers

__all__ = [
    "HealthPolicy",
    "Phases",
    "RecoveryWatch",
    "ScenarioMetrics",
    "ScoringSettings",
    "baseline",
    "controlplane",
    "health",
    "phases_from_markers",
    "pooled_thresholds",
    "recovered",
    "score_scenario",
    "settings_for",
    "stages",
]
