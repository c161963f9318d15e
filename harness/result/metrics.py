"""The metric registry: every metric of result.json declared once.

Each entry says what a metric is called (its dotted gate path, `latency_ms.fault.p99`), its unit,
which direction is better, what a null means, whether plans may gate on it and `harness compare`
may compare it, and one line of meaning. Gate validation (harness.plan.gates), comparisons
(harness.compare.runs), history (harness.store.history), the report's trends
(harness.report.html) and the table in docs/scoring.md all read it, so a new metric is added
here (and to the model in harness.result.model) and nowhere else.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from harness.errors import InputError
from harness.phases import Window


class Unit(StrEnum):
    """How a metric's values read; renderers format by it."""

    SECONDS = "s"
    MS = "ms"
    FRACTION = "fraction"
    COUNT = "count"
    USD = "usd"
    SCORE = "score"


class Better(StrEnum):
    """Which direction of a metric is good."""

    LOWER = "lower"
    HIGHER = "higher"


class Null(StrEnum):
    """What a null value of a metric says."""

    NOT_MEASURED = "not measured"
    """Nothing to measure (no requests, not verified): the trial is left out of that metric."""
    NEVER_HAPPENED = "never happened"
    """The event did not happen within the observation (no recovery, no impact): an outcome,
    beyond every measured value, never a gap."""


class Scope(StrEnum):
    """Which targets measure a metric."""

    ANY = "any"
    KUBERNETES = "kubernetes"
    """harness.scoring.controlplane, from the cluster's own API; a testbed plan may not gate on it."""


@dataclass(frozen=True)
class MetricInfo:
    """One metric: what it is called, how it reads, and what it means."""

    name: str
    """The dotted path in a scenario's `metrics`, as gates, `--metric` and history name it."""
    unit: Unit
    better: Better
    meaning: str
    """One line for people: the docs table, comparisons."""
    label: str = ""
    """A few words for charts and cards; the name when empty."""
    null: Null = Null.NOT_MEASURED
    null_words: str = ""
    """For NEVER_HAPPENED metrics: the outcome in a few words (`did not recover`)."""
    null_reason: str = ""
    """For NEVER_HAPPENED metrics: why a gate on a null fails, in a sentence's words."""
    gateable: bool = True
    comparable: bool = True
    scope: Scope = Scope.ANY
    compare_default: bool = False
    """Compared when `harness compare` is given no --metric."""
    history_default: bool = False
    """Listed by default in a scenario's history trend."""
    report_trend: bool = False
    """Drawn in the report's trend chart."""

    @property
    def shown_as(self) -> str:
        return self.label or self.name


_LOWER, _HIGHER = Better.LOWER, Better.HIGHER
_NOT_RECOVERED = "the scenario did not recover within the observation window"

_WINDOWS = {
    Window.BASELINE: "before the fault",
    Window.FAULT: "from the fault start to recovery",
    Window.RECOVERY: "from recovery to the end",
}


def _latency(family: str, corrected: bool) -> Iterator[MetricInfo]:
    what = (
        "corrected latency (from the intended send time)"
        if corrected
        else "actual latency (as Locust measures it)"
    )
    for window, span in _WINDOWS.items():
        for p in ("p50", "p95", "p99"):
            yield MetricInfo(
                f"{family}.{window}.{p}",
                Unit.MS,
                _LOWER,
                f"{p} of {what}, {span}; null for an empty window",
                label=f"{p} in the {window} window" if corrected else "",
                gateable=corrected,
                compare_default=corrected and (window, p) == (Window.FAULT, "p99"),
                history_default=corrected and (window, p) == (Window.FAULT, "p99"),
                report_trend=corrected and (window, p) == (Window.FAULT, "p99"),
            )


def _control_plane() -> Iterator[MetricInfo]:
    k8s = Scope.KUBERNETES
    for window in (Window.BASELINE, Window.FAULT):
        for key, unit, meaning in (
            ("p50_ms", Unit.MS, "API server request latency p50"),
            ("p99_ms", Unit.MS, "API server request latency p99"),
            ("error_rate", Unit.FRACTION, "share of API server probes that failed"),
        ):
            yield MetricInfo(f"control_plane.api.{window}.{key}", unit, _LOWER, f"{meaning}, {window} window",
                             scope=k8s)  # fmt: skip
    for key, unit, better, meaning in (
        ("readyz_failed_s", Unit.SECONDS, _LOWER, "time the API server's /readyz failed"),
        ("livez_failed_s", Unit.SECONDS, _LOWER, "time the API server's /livez failed"),
        ("node_not_ready_s", Unit.SECONDS, _LOWER, "fault start to a node reported NotReady"),
        ("node_ready_again_s", Unit.SECONDS, _LOWER, "fault start to the node Ready again"),
        ("pod_rescheduling_time_s", Unit.SECONDS, _LOWER, "fault start to a replacement pod scheduled"),
        ("pod_readiness_time_s", Unit.SECONDS, _LOWER, "fault start to the replacement pod Ready"),
        ("pods_deleted", Unit.COUNT, _LOWER, "the service's pods deleted during the fault"),
        ("pods_replaced", Unit.COUNT, _HIGHER, "the service's pods replaced during the fault"),
        ("deployment_unavailable_s", Unit.SECONDS, _LOWER, "time the deployment had unavailable replicas"),
        ("watch_blind_s", Unit.SECONDS, _LOWER, "time the control-plane watcher saw nothing"),
        ("watch_coverage", Unit.FRACTION, _HIGHER, "share of the observation the watcher saw"),
        ("watch_failed_polls", Unit.COUNT, _LOWER, "watcher polls that failed"),
    ):
        yield MetricInfo(f"control_plane.{key}", unit, better, meaning, scope=k8s)


REGISTRY: tuple[MetricInfo, ...] = (
    MetricInfo(
        "recovery_time_s", Unit.SECONDS, _LOWER,
        "fault start to the start of the final healthy run lasting the stability window",
        label="recovery time", null=Null.NEVER_HAPPENED, null_words="did not recover",
        null_reason=_NOT_RECOVERED, compare_default=True, history_default=True, report_trend=True,
    ),
    MetricInfo(
        "recovery_after_fault_end_s", Unit.SECONDS, _LOWER,
        "fault end (its undo) to the recovery point, for faults that last until rolled back",
        label="recovery after fault end", null=Null.NEVER_HAPPENED, null_words="did not recover",
        null_reason=_NOT_RECOVERED, compare_default=True,
    ),
    # A later impact is better: the system absorbed the fault for longer.
    MetricInfo(
        "time_to_impact_s", Unit.SECONDS, _HIGHER,
        "fault start to the first unhealthy bucket",
        label="time to impact", null=Null.NEVER_HAPPENED, null_words="had no impact",
        null_reason="no bucket was unhealthy, so there was no impact to time",
        compare_default=True, history_default=True,
    ),
    MetricInfo("requests", Unit.COUNT, _HIGHER, "requests over the observation"),
    MetricInfo("failed_requests", Unit.COUNT, _LOWER, "failed requests over the observation"),
    MetricInfo(
        "error_rate", Unit.FRACTION, _LOWER, "failed / requests over the observation",
        label="error rate", compare_default=True, history_default=True, report_trend=True,
    ),
    MetricInfo("peak_error_rate", Unit.FRACTION, _LOWER, "highest error rate of an observed bucket"),
    MetricInfo(
        "availability", Unit.FRACTION, _HIGHER, "share of observed buckets that are healthy",
        compare_default=True,
    ),
    *_latency("latency_ms", corrected=True),
    *_latency("latency_uncorrected_ms", corrected=False),
    MetricInfo("peak_p99_ms", Unit.MS, _LOWER, "highest corrected p99 of an observed bucket"),
    MetricInfo(
        "generator_late_share", Unit.FRACTION, _LOWER,
        "requests the load generator itself sent late / requests; above a few percent latency is not about the service",
    ),
    MetricInfo("generator_lag_max_ms", Unit.MS, _LOWER, "the load generator's largest lag over the observation"),
    MetricInfo("kpi", Unit.COUNT, _HIGHER, "KPI events (completed subscriptions) in the observation"),
    MetricInfo("kpi_baseline_per_s", Unit.COUNT, _HIGHER, "baseline KPI events per second"),
    MetricInfo(
        "kpi_lost", Unit.COUNT, _LOWER, "KPI events expected at the baseline rate but not delivered in the fault window",
        compare_default=True, history_default=True,
    ),
    MetricInfo("downtime_s", Unit.SECONDS, _LOWER, "total width of the unhealthy observed buckets"),
    MetricInfo(
        "downtime_cost_usd", Unit.USD, _LOWER, "downtime priced at the plan's cost per hour",
        compare_default=True, history_default=True,
    ),
    MetricInfo(
        "data_loss", Unit.COUNT, _LOWER, "acknowledged writes that could not be read back; null if not verified or nothing was acknowledged",
        compare_default=True, history_default=True,
    ),
    MetricInfo(
        "resilience_score", Unit.SCORE, _HIGHER, "0-100 from recovery, availability, errors, latency and data loss",
        label="resilience score", compare_default=True, history_default=True, report_trend=True,
    ),
    *_control_plane(),
)  # fmt: skip
"""Every metric, in the order comparisons, trends and the docs list them."""

BY_NAME: dict[str, MetricInfo] = {m.name: m for m in REGISTRY}


def get(name: str, flag: str = "--metric") -> MetricInfo:
    """The metric called `name`; InputError naming `flag` (with the closest name) otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        close = difflib.get_close_matches(name, BY_NAME, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(BY_NAME))}"
        raise InputError(f"{flag}: unknown metric {name!r}{hint}") from None


def gateable(scope: Scope | None = None) -> frozenset[str]:
    """The names a plan's gates may use (all scopes, or only `scope`'s)."""
    return frozenset(m.name for m in REGISTRY if m.gateable and (scope is None or m.scope is scope))


def comparable() -> tuple[str, ...]:
    return tuple(m.name for m in REGISTRY if m.comparable)


def compare_defaults() -> tuple[str, ...]:
    return tuple(m.name for m in REGISTRY if m.compare_default)


def history_defaults() -> tuple[str, ...]:
    return tuple(m.name for m in REGISTRY if m.history_default)


def report_trends() -> tuple[MetricInfo, ...]:
    return tuple(m for m in REGISTRY if m.report_trend)


def never_happened() -> dict[str, str]:
    """Metrics whose null is an outcome, with the words for it."""
    return {m.name: m.null_words for m in REGISTRY if m.null is Null.NEVER_HAPPENED}


def null_reason(name: str) -> str:
    """Why a gate on a null `name` cannot be judged, for the gate's reason."""
    info = BY_NAME.get(name)
    return info.null_reason if info is not None and info.null_reason else "it was not measured"


# --- docs/scoring.md ----------------------------------------------------------------------

DOCS_BEGIN = "<!-- metric-registry:begin (generated from harness/result/metrics.py) -->"
DOCS_END = "<!-- metric-registry:end -->"


def markdown_table() -> str:
    """The metric table of docs/scoring.md, from the registry."""
    rows = [
        "| metric | unit | better | null means | gate | compare | targets | meaning |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in REGISTRY:
        null = m.null_words if m.null is Null.NEVER_HAPPENED else m.null.value
        rows.append(
            f"| `{m.name}` | {m.unit.value} | {m.better.value} | {null} | "
            f"{'yes' if m.gateable else 'no'} | {'yes' if m.comparable else 'no'} | {m.scope.value} | {m.meaning} |"
        )
    return "\n".join(rows) + "\n"
