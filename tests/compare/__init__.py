"""Tests of harness.compare, with run directories built the way the engine writes them.

`write_run` copies the shape of a real run's plan.json and result.json (harness.result/v1),
with the metrics each test states, so the tests need no live run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.store import rundir

METRICS: dict[str, Any] = {
    "time_to_impact_s": 15.608,
    "recovery_time_s": 12.0,
    "recovery_after_fault_end_s": 4.0,
    "requests": 460,
    "failed_requests": 3,
    "error_rate": 0.006522,
    "peak_error_rate": 0.1,
    "availability": 0.888889,
    "latency_ms": {
        "baseline": {"p50": 3.174, "p95": 60.644, "p99": 77.869},
        "fault": {"p50": 3.37, "p95": 75.567, "p99": 133.624},
        "recovery": {"p50": None, "p95": None, "p99": None},
    },
    "latency_uncorrected_ms": {
        "baseline": {"p50": 2.351, "p95": 59.443, "p99": 77.094},
        "fault": {"p50": 2.423, "p95": 72.604, "p99": 89.57},
        "recovery": {"p50": None, "p95": None, "p99": None},
    },
    "peak_p99_ms": 199.344,
    "kpi": 38,
    "kpi_baseline_per_s": 2.071429,
    "kpi_lost": 0.0,
    "downtime_s": 2.0,
    "downtime_cost_usd": 22.22,
    "data_loss": 0,
    "resilience_score": 50.8,
    "thresholds": {
        "error_rate": 0.01,
        "p95_ms": 121.288,
        "kpi_min_per_s": 1.035714,
        "kpi_window_s": 5.0,
        "min_requests": 1,
    },
}
"""A real scenario's metrics (local game day, replica-kill), recovery made finite."""

LOAD: dict[str, Any] = {
    "locustfile": "/work/main/loadtests/subscriptions.py",
    "host": "auto",
    "users": 20,
    "spawn_rate": 10.0,
    "shape": "constant",
    "processes": 1,
    "pacing_s": 1.0,
    "bucket_s": 1.0,
    "request_timeout_s": 5.0,
    "connect_timeout_s": 2.0,
}


def metrics(**changes: Any) -> dict[str, Any]:
    """METRICS with some values replaced; dotted keys (`latency_ms.fault.p99`) reach nested ones."""
    result = copy.deepcopy(METRICS)
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = result
        for part in parents:
            node = node[part]
        node[leaf] = value
    return result


def write_run(
    path: Path,
    scenarios: Mapping[str, Sequence[Mapping[str, Any] | None]],
    *,
    run_id: str | None = None,
    target: Mapping[str, Any] | None = None,
    plan_name: str = "local-gameday",
    load: Mapping[str, Any] | None = None,
    plan_scenarios: Sequence[str] | None = None,
    status: str = "completed",
    batch: str | None = None,
    compare: Mapping[str, Any] | None = None,
    primaries: Mapping[str, str] | None = None,
) -> Path:
    """A run directory with one result entry per trial (None: a trial that could not be scored)."""
    target = dict(target or {"kind": "testbed", "profile": "managed"})
    run_id = run_id or f"20261127T053921Z-{plan_name}-{path.name}"
    names = list(plan_scenarios if plan_scenarios is not None else scenarios)
    plan = {
        "name": plan_name,
        "description": None,
        "target": {
            k: v for k, v in target.items() if k in ("kind", "profile", "context", "allowed_contexts")
        },
        "load": {**LOAD, **(load or {})},
        "windows": {"warmup_s": 5.0, "baseline_s": 15.0, "observe_s": 60.0, "stability_s": 10.0},
        "slo": {"error_rate": None, "p95_ms": None, "kpi_drop": None},
        "abort": [],
        "scenarios": [
            {
                "name": name,
                "experiment": f"/work/main/experiments/local/{name}.yaml",
                "vars": {},
                "trials": max(1, len(scenarios.get(name, []))),
                "gates": [],
                **({"primary": primaries[name]} if primaries and name in primaries else {}),
            }
            for name in names
        ],
        "gates": ["error_rate < 0.05"],
        "cost": {"per_hour_usd": 40000.0},
        **({"compare": dict(compare)} if compare is not None else {}),
    }
    entries = []
    for name, trials in scenarios.items():
        for trial, trial_metrics in enumerate(trials, start=1):
            entries.append(
                {
                    "name": name,
                    "experiment": f"/work/main/experiments/local/{name}.yaml",
                    "trial": trial,
                    "status": "completed" if trial_metrics is not None else "error",
                    "aborted_by": None,
                    "deviated": False,
                    "steady_state": {"before": True, "after": True},
                    "healed": [],
                    "error": None if trial_metrics is not None else "target down",
                    "paths": {"timeline.jsonl": f"scenarios/{name}-{trial}/timeline.jsonl"},
                    "metrics": dict(trial_metrics) if trial_metrics is not None else None,
                    "gates": [],
                    "passed": trial_metrics is not None,
                }
            )
    result = {
        "schema": "harness.result/v1",
        "run_id": run_id,
        "plan": {"name": plan_name, "description": None},
        "target": {**target, "url": "http://127.0.0.1:18080"},
        "environment": {"harness": "0.1.0", "python": "3.12.1"},
        "started": 1795757961.5,
        "ended": 1795758300.0,
        "status": status,
        "passed": all(e["passed"] for e in entries),
        "scenarios": entries,
        **({"batch": batch} if batch is not None else {}),
    }
    rundir.write_json(path / rundir.PLAN, plan)
    rundir.write_json(path / rundir.RESULT, result)
    return path
