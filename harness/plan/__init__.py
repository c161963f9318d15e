"""Plans: YAML files → validated models (every problem with file:line), and gate expressions.

The engine calls `load_plan` and `gates.parse` / `gates.evaluate`; `harness validate` calls
`validate_file`; `harness run` turns its PLAN argument into a file with `resolve_plan_arg`.
Public modules: `gates`, `loading` (also the size- and alias-limited YAML reader experiments
are read with), `validation`, `lint` (warnings that do not stop a run), `catalog` (the bundled
plans and experiments, for `harness list`), `applicability` (whether a scenario's `requires` is met
by the target's facts).
"""

from __future__ import annotations

from harness.plan import applicability, catalog, gates, lint, loading, validation
from harness.plan.gates import (
    METRIC_NAMES,
    Gate,
    GateError,
    GateNameError,
    GateSyntaxError,
    evaluate,
    parse,
    validate_names,
)
from harness.plan.loading import (
    DEFAULT_PLAN,
    PLANS_DIR,
    FileProblemsError,
    PlanError,
    Problem,
    bundled_plans,
    load_plan,
    resolve_plan_arg,
)
from harness.plan.models import (
    AbortCondition,
    AwsSettings,
    CompareSettings,
    Cost,
    KubernetesTarget,
    LoadSpec,
    Plan,
    Requirement,
    Scenario,
    Slo,
    Target,
    TestbedTarget,
    Windows,
)
from harness.plan.validation import ExperimentError, validate_experiment, validate_file, validate_plan

__all__ = [
    "DEFAULT_PLAN",
    "METRIC_NAMES",
    "PLANS_DIR",
    "AbortCondition",
    "AwsSettings",
    "CompareSettings",
    "Cost",
    "ExperimentError",
    "FileProblemsError",
    "Gate",
    "GateError",
    "GateNameError",
    "GateSyntaxError",
    "KubernetesTarget",
    "LoadSpec",
    "Plan",
    "PlanError",
    "Problem",
    "Requirement",
    "Scenario",
    "Slo",
    "Target",
    "TestbedTarget",
    "Windows",
    "applicability",
    "bundled_plans",
    "catalog",
    "evaluate",
    "gates",
    "lint",
    "load_plan",
    "loading",
    "parse",
    "resolve_plan_arg",
    "validate_experiment",
    "validate_file",
    "validate_names",
    "validate_plan",
    "validation",
]
