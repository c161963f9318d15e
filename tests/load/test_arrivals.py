"""New customers arrive on schedule: one stuck at a dead replica holds up no one after it.

A NewCustomer user used to run its funnels one after another and catch up after a stall, so
every later customer queued behind a stuck one; their requests landed in the buckets of their
intended times, and after a node crash the buckets following it got almost no completed
subscriptions (KPI 390 -> 15 per 5 s, no failed request) while the service had recovered.
The scenarios run in a child process (tests/load/arrivals_child.py): Locust monkey-patches
whatever process imports it.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHILD = Path(__file__).with_name("arrivals_child.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, str(CHILD)],
        check=True,
        env=env,
        timeout=120,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def test_the_bundled_new_customers_arrive_independently(seen: dict[str, Any]) -> None:
    assert seen["new_customer_arrives"] is True


def test_customers_after_a_stuck_one_arrive_on_time(seen: dict[str, Any]) -> None:
    """The first customer never gets an answer; the nine after it start on schedule, none late."""
    run = seen["stuck_first_customer"]
    starts = run["starts"]
    assert len(starts) == 10
    assert [b - a for a, b in itertools.pairwise(starts)] == pytest.approx([0.2] * 9)
    assert run["lags"] == [{"lag_s": 0.0, "gen_lag_s": 0.0}] * 10
    assert run["delays"] == pytest.approx([0.2] * 10)  # no backlog builds up behind the stuck one
    assert run["in_flight"] == 1


def test_stopping_the_user_stops_its_customers(seen: dict[str, Any]) -> None:
    assert seen["stop"] == {"before": 3, "after": 0}


def test_each_customer_sends_its_own_token_and_arrival_lags(seen: dict[str, Any]) -> None:
    """Two customers interleaved on one connection pool: neither's token nor KPI leaks to the other."""
    signup, b_entitlement, a_entitlement = seen["interleaved"]
    assert "Authorization" not in signup["headers"]
    assert signup["context"] == {"lag_s": 0.0, "gen_lag_s": 0.01}
    assert b_entitlement == {
        "headers": {"X-Other": "1", "Authorization": "Bearer B"},
        "context": {"lag_s": 0.5, "gen_lag_s": 0.0, "kpi": 1},
    }
    assert a_entitlement == {
        "headers": {"Authorization": "Bearer A"},
        "context": {"lag_s": 0.0, "gen_lag_s": 0.01},
    }
