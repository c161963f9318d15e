"""result.json (`harness.result/v1`): its typed model, reading and writing, the metric registry
and the defaults shared by plan and scoring.

A low layer: it imports only harness.errors, harness.phases, pydantic and the standard library,
so the plan, scoring, report, compare, store and engine can all use it. Public modules: `model`,
`files` (reading and writing result.json), `metrics` (the registry), `defaults`.
"""

from harness.result import defaults, files, metrics, model
from harness.result.files import ResultFileError, dumps, parse, read
from harness.result.model import (
    SCHEMA,
    ControlPlane,
    Environment,
    ExpectedEffect,
    Finding,
    GateOutcome,
    Latency,
    Load,
    Metrics,
    Percentiles,
    Phases,
    PlanRef,
    Result,
    Scenario,
    SteadyState,
    Target,
    Thresholds,
)

__all__ = [
    "SCHEMA",
    "ControlPlane",
    "Environment",
    "ExpectedEffect",
    "Finding",
    "GateOutcome",
    "Latency",
    "Load",
    "Metrics",
    "Percentiles",
    "Phases",
    "PlanRef",
    "Result",
    "ResultFileError",
    "Scenario",
    "SteadyState",
    "Target",
    "Thresholds",
    "defaults",
    "dumps",
    "files",
    "metrics",
    "model",
    "parse",
    "read",
]
