"""Synthetic scenario entries for the findings rules: a healthy trial, changed per test."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

T0 = 1_800_000_000.0
"""The fault's start, Unix seconds."""

HEALTHY: dict[str, Any] = {
    "name": "node-crash",
    "trial": 1,
    "status": "completed",
    "aborted_by": None,
    "phases": {"baseline_start_t": T0 - 15, "fault_start_t": T0, "fault_end_t": T0 + 40, "end_t": T0 + 60},
    "metrics": {
        "time_to_impact_s": None,
        "recovery_time_s": 0.0,
        "recovery_after_fault_end_s": 0.0,
        "requests": 1200,
        "failed_requests": 0,
        "error_rate": 0.0,
        "peak_error_rate": 0.0,
        "latency_ms": {
            "baseline": {"p50": 4.0, "p95": 60.0, "p99": 80.0},
            "fault": {"p50": None, "p95": None, "p99": None},
            "recovery": {"p50": 4.0, "p95": 60.0, "p99": 80.0},
        },
        "horizon_s": 60.0,
        "generator_late_share": 0.0,
        "generator_lag_max_ms": 10.0,
        "kpi": 120,
        "kpi_baseline_per_s": 2.0,
        "kpi_lost": 0.0,
        "data_loss": 0,
        "thresholds": {"error_rate": 0.01, "p95_ms": 1000.0},
    },
    "gates": [{"expression": "recovery_time_s < 30", "value": 0.0, "passed": True}],
    "passed": True,
}
PLAN: dict[str, Any] = {"name": "local-gameday", "load": {"request_timeout_s": 5.0, "users": 20}}
TESTBED: dict[str, Any] = {
    "kind": "testbed",
    "profile": "managed",
    "etcd_members": ["etcd-a", "etcd-b", "etcd-c"],
    "nodes": [{"name": "node-a1", "zone": "zone-a"}, {"name": "node-b1", "zone": "zone-b"}],
    "replicas": 3,
    "lb_health_checks": False,
    "node_grace_s": 4.0,
    "eviction_s": 30.0,
}


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scenario(**changes: Any) -> dict[str, Any]:
    """The healthy trial with these keys changed (nested mappings merged)."""
    return _merge(HEALTHY, changes)


def recovery_phases(**at_s: float | None) -> list[dict[str, Any]]:
    """`recovery_phases` with each named phase at this many seconds after the fault (None: unknown)."""
    out = [{"name": "fault_applied", "t": T0, "at_s": 0.0, "source": "markers"}]
    for name, at in at_s.items():
        if at is None:
            out.append({"name": name, "t": None, "at_s": None, "source": None, "reason": "no source"})
        else:
            out.append({"name": name, "t": T0 + at, "at_s": at, "source": "ground-truth"})
    return out
