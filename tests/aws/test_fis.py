"""FIS experiments are confirmed running before the method goes on: one that fails or never runs
fails its activity, and a trial whose fault never started is not scored as a pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes.config import kube_config

from harness.chaos import experiment as chaos_experiment
from harness.chaos.activities import aws as activities
from tests.aws.conftest import REGION
from tests.aws.test_actions import AWS_EXPERIMENTS, _config
from tests.chaos.test_catalog import fis_template
from tests.kubernetes.conftest import NAMESPACE, open_clusters


def _template() -> str:
    fis = boto3.client("fis", region_name=REGION)
    created = fis.create_experiment_template(
        clientToken="test", **fis_template("az-disrupt-connectivity.json")
    )
    return created["experimentTemplate"]["id"]


def test_a_failed_start_fails_the_activity_with_fis_reason(
    aws: dict[str, Any], fis_fails_to_start: str
) -> None:
    """StartExperiment answers while FIS is still initiating; the failure that follows is the activity's."""
    with pytest.raises(ActivityFailed, match="failed before running: Unable to assume the role"):
        activities.start_fis_experiment(_template(), {"t": "1"}, configuration=_config(aws))


def test_an_experiment_that_never_runs_is_stopped_and_fails_the_activity(
    aws: dict[str, Any], moto_url: str
) -> None:
    """Still initiating after start_timeout_s: the experiment is stopped and the activity fails (bounded)."""
    transition = {"model_name": "fis::experiment", "transition": {"progression": "manual", "times": 10**6}}
    httpx.post(
        f"{moto_url}/moto-api/state-manager/set-transition", json=transition, timeout=10
    ).raise_for_status()
    try:
        with pytest.raises(ActivityFailed, match="still pending after 1 s: stopped"):
            activities.start_fis_experiment(
                _template(), {"t": "1"}, start_timeout_s=1, configuration=_config(aws)
            )
    finally:
        httpx.post(f"{moto_url}/moto-api/state-manager/unset-transition",
                   json={"model_name": "fis::experiment"}, timeout=10).raise_for_status()  # fmt: skip
    (exp,) = boto3.client("fis", region_name=REGION).list_experiments()["experiments"]
    assert exp["state"]["status"] in ("stopping", "stopped")


def test_a_run_whose_fault_never_started_is_not_scored_as_a_pass(
    aws: dict[str, Any], fis_fails_to_start: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole experiment as the engine runs it: the service stays whole (no fault ever ran), so
    chaoslib alone would say "completed" with its steady state met; the harness's journal says
    "failed", which the engine scores as not passed."""
    with open_clusters(tmp_path, monkeypatch) as clusters:
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(clusters.kubeconfig))
        monkeypatch.setenv("KUBERNETES_CONTEXT", "test-cluster")
        assert clusters.allowed.emulator is not None
        variables = _config(aws, namespace=NAMESPACE, label_selector="app=subs", kubernetes_context="test-cluster",
                            service_url=clusters.allowed.url,  # the emulator's /readyz answers 200
                            fis_template_id=_template(), duration_s=0, recovery_timeout_s=5)  # fmt: skip
        experiment = chaos_experiment.load(AWS_EXPERIMENTS / "az-disrupt-connectivity-fis.yaml")
        journal = chaos_experiment.run(experiment, tmp_path / "markers.jsonl", variables)
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["steady_states"]["after"]["steady_state_met"] is True and not journal["deviated"]
    (start, *_rest) = journal["run"]
    assert start["status"] == "failed" and "Unable to assume the role" in "".join(start["exception"])
    assert journal["status"] == "failed"
    assert journal["harness_failed_actions"] == ["start-the-fis-experiment-and-wait-until-it-runs"]
