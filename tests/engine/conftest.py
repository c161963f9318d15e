"""The engine's tests on a testbed use the session's shared managed one (tests/conftest.py), and
share one real replica-kill run."""

from __future__ import annotations

from typing import Any

import pytest

from harness.testbed import state as tbstate
from tests.engine.test_accuracy import run_scenario
from tests.testbed.conftest import serving, wait_for


@pytest.fixture(scope="session")
def replica_kill_run(
    managed: tbstate.TestbedState, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, dict, list[dict]]:
    """The accuracy tests' replica kill under one Locust process, run once: test_accuracy checks it
    against the ground truth, test_distributed_load checks its totals and compares the same kill
    under load from two workers with it. (engine, scenario result, ground truth)"""
    wait_for(lambda: serving(managed), 60, "a healthy testbed before the scenario")
    return run_scenario(
        managed, tmp_path_factory.mktemp("replica-kill"), "replica-kill", "replica-kill.yaml", {}
    )
