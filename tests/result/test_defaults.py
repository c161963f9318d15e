"""A plan that says nothing and scoring called without a plan judge a scenario alike."""

from __future__ import annotations

from harness.plan import models
from harness.result import defaults
from harness.scoring.metrics import ScoringSettings


def test_plan_and_scoring_share_their_defaults() -> None:
    """Stability window and cost per hour: one value, used by the plan models and by scoring."""
    settings = ScoringSettings()
    windows, cost = models.Windows(), models.Cost()
    assert windows.stability_s == settings.stability_s == defaults.STABILITY_S == 10.0
    assert cost.per_hour_usd == settings.cost_per_hour_usd == defaults.COST_PER_HOUR_USD == 40_000.0
    assert settings.target_recovery_s == defaults.TARGET_RECOVERY_S
