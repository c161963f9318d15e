"""data_loss is measured only when some write was acknowledged and read back: zero of zero is
not evidence of durability, so `data_loss == 0` must not pass on a load that wrote nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.engine import runner
from harness.load import verify
from harness.plan import Plan
from harness.store import rundir

RUN = Path(__file__).parents[1] / "fixtures" / "runs" / "20261202T174501Z-release-gate-8bf8"


def test_nothing_acknowledged_is_not_measured() -> None:
    verified = verify.verify_acks("http://127.0.0.1:9", [], timeout_s=0.1)
    assert verified["data_loss"] is None and verified["acknowledged"] == 0
    assert "no write was acknowledged" in verified["note"]
    assert verify.data_loss(verified) is None


def test_old_run_folder_with_zero_acknowledged_rescoring_gives_null() -> None:
    assert verify.data_loss({"acknowledged": 0, "missing": [], "data_loss": 0}) is None
    assert verify.data_loss(None) is None
    assert verify.data_loss({"acknowledged": 5, "missing": None, "data_loss": None, "error": "x"}) is None


def test_acknowledged_writes_give_the_count_missing() -> None:
    assert verify.data_loss({"acknowledged": 10, "missing": ["a", "b"], "data_loss": 2}) == 2
    assert verify.data_loss({"acknowledged": 10, "missing": [], "data_loss": 0}) == 0


def test_gate_on_unmeasured_data_loss_fails(tmp_path: Path) -> None:
    """Scoring a run folder whose verify.json says 0 lost of 0 acknowledged (as folders written
    before the rule do): its `data_loss == 0` gate fails as not measured."""
    run = tmp_path / RUN.name
    shutil.copytree(RUN, run)
    sdir = run / "scenarios" / "zone-latency-light-1"
    (sdir / "verify.json").write_text(json.dumps({"acknowledged": 0, "missing": [], "data_loss": 0}))
    plan = Plan.model_validate(rundir.read_json(run / rundir.PLAN))
    scored = runner.score_scenario_dir(plan, plan.scenarios[0], sdir)
    (gate,) = [g for g in scored.gates if g.expression == "data_loss == 0"]
    assert not gate.passed


def test_a_failed_check_of_acknowledged_writes_is_unverified() -> None:
    """Acknowledged writes whose check failed are unverified; nothing acknowledged or no file is not."""
    assert verify.unverified({"acknowledged": 5, "missing": None, "data_loss": None, "error": "x"})
    assert not verify.unverified({"acknowledged": 5, "missing": [], "data_loss": 0})
    assert not verify.unverified({"acknowledged": 0, "missing": [], "data_loss": None})
    assert not verify.unverified(None)


def test_a_failed_check_caps_the_rescored_score(tmp_path: Path) -> None:
    """A run folder whose verification failed after writes were acknowledged scores at most 50."""
    run = tmp_path / RUN.name
    shutil.copytree(RUN, run)
    sdir = run / "scenarios" / "zone-latency-light-1"
    (sdir / "verify.json").write_text(
        json.dumps({"acknowledged": 5, "missing": None, "data_loss": None, "error": "cannot verify"})
    )
    plan = Plan.model_validate(rundir.read_json(run / rundir.PLAN))
    scored = runner.score_scenario_dir(plan, plan.scenarios[0], sdir)
    assert scored.metrics is not None
    assert scored.metrics.data_loss is None and scored.metrics.resilience_score is not None
    assert scored.metrics.resilience_score <= 50.0
