"""The metric registry: one declaration per metric, and everything that lists metrics agrees with it."""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from harness import result as result_model
from harness.compare import runs
from harness.plan import gates
from harness.report import html
from harness.result import files
from harness.result import metrics as registry
from harness.store import history

ROOT = Path(__file__).parents[2]
RUNS = sorted((ROOT / "tests" / "fixtures" / "runs").iterdir())


def _docs_table() -> str:
    text = (ROOT / "docs" / "scoring.md").read_text()
    begin, end = text.index(registry.DOCS_BEGIN), text.index(registry.DOCS_END)
    return text[begin + len(registry.DOCS_BEGIN) : end].strip() + "\n"


def test_docs_table_is_the_registry() -> None:
    """docs/scoring.md lists exactly the registry's metrics, as generated from it."""
    assert _docs_table() == registry.markdown_table(), (
        "docs/scoring.md's metric table differs from harness/result/metrics.py: "
        "paste registry.markdown_table() between the metric-registry markers"
    )


def test_names_are_unique() -> None:
    """A metric is declared once."""
    names = [m.name for m in registry.REGISTRY]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("run_dir", RUNS, ids=lambda p: p.name)
def test_every_testbed_metric_is_in_real_results(run_dir: Path) -> None:
    """Every metric the testbed measures is found under its dotted name in a real result.json,
    and every leaf of a real result's metrics (but the thresholds) is in the registry."""
    result = files.read(run_dir / "result.json")
    for scenario in result.scenarios:
        assert scenario.metrics is not None
        metrics = scenario.metrics.as_mapping()
        for info in registry.REGISTRY:
            if info.scope is registry.Scope.ANY:
                assert gates.lookup(metrics, info.name) is not gates.MISSING, info.name
        leaves = set(gates._leaf_names(metrics))
        assert {n for n in leaves if not n.startswith("thresholds.")} <= set(registry.BY_NAME)


def test_readers_take_their_lists_from_the_registry() -> None:
    """Gates, compare, history and the report list what the registry says, in its order."""
    assert {m.name for m in registry.REGISTRY if m.gateable} == gates.METRIC_NAMES
    assert {
        m.name for m in registry.REGISTRY if m.scope is registry.Scope.KUBERNETES
    } == gates.KUBERNETES_ONLY_NAMES
    assert {
        m.name for m in registry.REGISTRY if m.scope is registry.Scope.TESTBED
    } == gates.TESTBED_ONLY_NAMES
    assert tuple(m.name for m in registry.REGISTRY if m.compare_default) == runs.DEFAULT_METRICS
    assert tuple(m.name for m in registry.REGISTRY if m.history_default) == history.KEY_METRICS
    assert [name for name, _, _ in html.TREND_METRICS] == [
        m.name for m in registry.REGISTRY if m.report_trend
    ]
    for info in registry.REGISTRY:
        spec = runs.metric_spec(info.name)
        assert (spec.better.value, spec.unit) == (info.better.value, info.unit)


def test_readers_show_what_they_listed_by_hand() -> None:
    """The registry's flags give each reader the list it declared by hand before the registry: a
    flag set on the wrong metric changes what users see, and fails here."""
    assert runs.DEFAULT_METRICS == (
        "recovery_time_s", "recovery_after_fault_end_s", "time_to_impact_s", "error_rate", "availability",
        "latency_ms.fault.p99", "kpi_lost", "data_loss", "resilience_score",
    )  # fmt: skip
    assert history.KEY_METRICS == (
        "recovery_time_s", "time_to_impact_s", "error_rate", "latency_ms.fault.p99", "kpi_lost",
        "downtime_cost_usd", "data_loss", "resilience_score",
    )  # fmt: skip
    assert html.TREND_METRICS == (
        ("recovery_time_s", "recovery time", "s"),
        ("error_rate", "error rate", "%"),
        ("latency_ms.fault.p99", "p99 in the fault window", "ms"),
        ("resilience_score", "resilience score", ""),
    )
    assert history.NEVER_HAPPENED == {
        "recovery_time_s": "did not recover", "recovery_after_fault_end_s": "did not recover",
        "time_to_impact_s": "had no impact",
    }  # fmt: skip
    assert {n for n in registry.BY_NAME if not n.startswith("latency_uncorrected_ms.")} == gates.METRIC_NAMES
    control_plane = {n for n in registry.BY_NAME if n.startswith("control_plane.")}
    assert control_plane == {m.name for m in registry.REGISTRY if m.scope is not registry.Scope.ANY}, (
        "every control-plane metric, and nothing else, needs a sampler"
    )
    assert {
        f"control_plane.{k}" for k in ("readyz_failed_s", "livez_failed_s", "watch_blind_s", "watch_coverage",
                                       "watch_failed_polls")
    } == gates.KUBERNETES_ONLY_NAMES  # fmt: skip
    assert {
        f"control_plane.{k}" for k in ("write_unavailable_s", "repair_blocked_s", "leader_changes", "restore.rto_s",
                                       "restore.rpo_writes", "restore.rpo_revisions", "restore.rpo_age_s",
                                       "restore.snapshot_interval_s")
    } == gates.TESTBED_ONLY_NAMES  # fmt: skip


def test_null_that_is_an_outcome_is_explained_everywhere() -> None:
    """A metric whose null means "never happened" has words for compare and history and a reason
    for a failed gate; history ranks it after every number."""
    never = {m.name for m in registry.REGISTRY if m.null is registry.Null.NEVER_HAPPENED}
    assert never == {"recovery_time_s", "recovery_after_fault_end_s", "time_to_impact_s"}
    assert set(history.NEVER_HAPPENED) == never
    for name in never:
        assert runs.metric_spec(name).null_means == registry.BY_NAME[name].null_words
    result = gates.evaluate(gates.parse("recovery_time_s < 30"), {"recovery_time_s": None})
    assert not result.passed
    assert (
        result.reason
        == "recovery_time_s is null (the scenario did not recover within the observation window)"
    )


@pytest.mark.parametrize(
    ("name", "metrics", "expected"),
    [
        ("recovery_time_s", {}, math.inf),
        ("time_to_impact_s", {}, math.inf),
        ("latency_ms.fault.p99", {"time_to_impact_s": None}, -math.inf),
        ("latency_ms.fault.p99", {"time_to_impact_s": 4.0}, None),
        ("latency_ms.fault.p99", {}, None),
        ("latency_ms.recovery.p99", {"time_to_impact_s": None}, None),
        ("error_rate", {"requests": 0}, math.inf),
        ("error_rate", {"requests": 12}, None),
        ("data_loss", {}, None),
    ],
)
def test_null_outcomes_rank_in_their_direction(
    name: str, metrics: dict[str, object], expected: float | None
) -> None:
    """A null that is an outcome stands for the best or worst value, by the trial's other metrics:
    empty fault window with no impact = best latency, no request at all = worst error rate."""
    assert registry.BY_NAME[name].null_value(metrics) == expected


def test_unknown_metric_names_the_flag_and_suggests() -> None:
    """A misspelt metric is refused with the closest known name."""
    with pytest.raises(Exception, match=r"--metric: unknown metric 'recovery_time'.*'recovery_time_s'"):
        registry.get("recovery_time")


def test_registry_text_is_json_safe() -> None:
    """Meanings and labels are plain text (the docs table and the report embed them)."""
    for info in registry.REGISTRY:
        assert "|" not in info.meaning and "\n" not in info.meaning
        json.dumps(info.meaning)


def _model_leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted names of the model's number fields, through nested models."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        kinds = typing.get_args(field.annotation) or (field.annotation,)
        nested = [a for a in kinds if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            names |= _model_leaves(nested[0], f"{prefix}{name}.")
        else:
            names.add(f"{prefix}{name}")
    return names


def test_model_and_registry_name_the_same_metrics() -> None:
    """Every metric of the registry is a field of result.json's Metrics model, and the other way
    round (but the thresholds, which are settings, not measurements)."""
    fields = {n for n in _model_leaves(result_model.Metrics) if not n.startswith("thresholds.")}
    assert fields - {"control_plane.api.baseline.samples", "control_plane.api.fault.samples",
                     "control_plane.api.baseline.throttled_own_load",
                     "control_plane.api.fault.throttled_own_load"} == set(registry.BY_NAME)  # fmt: skip
