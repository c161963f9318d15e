"""The bundled local experiments are valid Chaos Toolkit experiments whose activities exist."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.loader import load_experiment

from harness.chaos.activities import testbed as activities

LOCAL = Path(__file__).parents[2] / "experiments" / "local"
EXPECTED = {
    "replica-kill", "node-crash", "node-freeze", "zone-outage", "zone-latency", "zone-partition",
    "etcd-leader-kill", "etcd-quorum-loss", "etcd-member-corruption", "etcd-snapshot-restore",
    "etcd-outage-node-crash", "etcd-outage-replica-kill", "etcd-outage-zone-outage",
}  # fmt: skip


def test_one_experiment_per_fault_class() -> None:
    """Every fault class the testbed offers has its experiment file."""
    assert {p.stem for p in LOCAL.glob("*.yaml")} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_experiment_is_valid_with_hypothesis_method_and_rollbacks(name: str) -> None:
    """chaoslib validates it (python activities are imported and their arguments checked),
    and it has a steady-state hypothesis, a method and rollbacks."""
    experiment = load_experiment(str(LOCAL / f"{name}.yaml"))
    ensure_experiment_is_valid(experiment)
    assert experiment["steady-state-hypothesis"]["probes"]
    assert experiment["method"] and experiment["rollbacks"]
    for activity in experiment["method"] + experiment["rollbacks"]:
        assert activity["provider"]["module"] == activities.__name__
        func = getattr(activities, activity["provider"]["func"])
        assert inspect.signature(func).parameters.get("configuration") is not None
