"""The metric registry: every metric of result.json declared once.

Each entry says what a metric is called (its dotted gate path, `latency_ms.fault.p99`), its unit,
which direction is better, what a null means, whether plans may gate on it and `harness compare`
may compare it, and one line of meaning. Gate validation (harness.plan.gates), comparisons
(harness.compare.runs), history (harness.store.history), the report's trends
(harness.report.html) and the table in docs/scoring.md all read it, so a new metric is added
here (and to the model in harness.result.model) and nowhere else.

Below the registry, the places that show metrics to people: the report's run cards, its
overview table and scenario cards (harness.report.html and its template) and summary.md's table
(harness.report.markdown) list, by registry name, which metrics they show, in what order, under
what label and in what format. A metric shows up in a place once it is declared there.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

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
    NO_IMPACT = "no impact"
    """Null because the fault had no impact (`time_to_impact_s` null), which empties the window
    measured: the best outcome, not a gap. A null in a trial with an impact is not measured."""
    STALLED = "stalled"
    """Null because no request completed (`requests` 0): a total stall, the worst outcome, not a
    gap. A null in a trial with requests is not measured."""


class Censor(StrEnum):
    """Where a null that is an outcome ranks against measured values: `harness compare` keeps
    such trials as censored values (+inf or -inf) instead of dropping the best or worst trials."""

    ABOVE = "above"
    """Beyond the largest value (+inf): did not recover, impact never came."""
    BEST = "best"
    """Better than any value in the metric's good direction."""
    WORST = "worst"
    """Worse than any value in the metric's good direction."""


_CENSOR = {Null.NEVER_HAPPENED: Censor.ABOVE, Null.NO_IMPACT: Censor.BEST, Null.STALLED: Censor.WORST}
_CONDITION: dict[Null, tuple[str, object]] = {
    Null.NO_IMPACT: ("time_to_impact_s", None),
    Null.STALLED: ("requests", 0),
}
"""For conditional outcomes, the metric and value that make a null one; otherwise unmeasured."""


class Scope(StrEnum):
    """Which targets measure a metric."""

    ANY = "any"
    """From the load: every target."""
    CONTROL_PLANE = "control plane"
    """harness.scoring.controlplane from either target's sampler (the cluster's API, or the
    testbed's etcd probes and ground truth): every target, but only runs that sampled it."""
    KUBERNETES = "kubernetes"
    """harness.scoring.controlplane, from the cluster's own API; a testbed plan may not gate on it."""
    TESTBED = "testbed"
    """harness.scoring.controlplane from the testbed's sampler (probe writes into its etcd, its
    ground truth); a Kubernetes plan may not gate on it."""


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
    """For nulls that are outcomes: the outcome in a few words (`did not recover`, `no impact`)."""
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

    def null_value(self, metrics: Any) -> float | None:
        """What a null of this metric stands for in a trial with these metrics: +inf or -inf in
        the value's scale when it is an outcome (see Censor), None when it is not measured."""
        censor = _CENSOR.get(self.null)
        if censor is None:
            return None
        if self.null in _CONDITION:
            name, expected = _CONDITION[self.null]
            if value(metrics, name) != expected or (expected is None and not _has(metrics, name)):
                return None
        high = censor is Censor.ABOVE or (censor is Censor.BEST) == (self.better is Better.HIGHER)
        return math.inf if high else -math.inf


def _has(metrics: Any, name: str) -> bool:
    """Whether the dotted path `name` exists in a metrics mapping (a null value counts)."""
    node = metrics
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


_LOWER, _HIGHER = Better.LOWER, Better.HIGHER
_NOT_RECOVERED = "the scenario did not recover within the observation window"

_WINDOWS = {
    Window.BASELINE: "before the fault",
    Window.APPLIED: "while the fault was applied (fault start to its rollback)",
    Window.FAULT: "in the impact window (fault start to recovery; empty without impact)",
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
            no_impact = window is Window.FAULT
            yield MetricInfo(
                f"{family}.{window}.{p}",
                Unit.MS,
                _LOWER,
                f"{p} of {what}, {span}; null for an empty window",
                null=Null.NO_IMPACT if no_impact else Null.NOT_MEASURED,
                null_words="no impact" if no_impact else "",
                label=f"{p} in the {window} window" if corrected else "",
                gateable=corrected,
                compare_default=corrected and (window, p) == (Window.FAULT, "p99"),
                history_default=corrected and (window, p) == (Window.FAULT, "p99"),
                report_trend=corrected and (window, p) == (Window.FAULT, "p99"),
            )


def _control_plane() -> Iterator[MetricInfo]:
    both, k8s, testbed = Scope.CONTROL_PLANE, Scope.KUBERNETES, Scope.TESTBED
    probes = "(API server reads; testbed: etcd probe writes and reads)"
    for window in (Window.BASELINE, Window.FAULT):
        for key, unit, meaning in (
            ("p50_ms", Unit.MS, f"control-plane request latency p50 {probes}"),
            ("p99_ms", Unit.MS, f"control-plane request latency p99 {probes}"),
            ("error_rate", Unit.FRACTION, "share of control-plane probes that failed"),
        ):
            yield MetricInfo(f"control_plane.api.{window}.{key}", unit, _LOWER, f"{meaning}, {window} window",
                             scope=both)  # fmt: skip
    for key, unit, better, scope, meaning in (
        ("readyz_failed_s", Unit.SECONDS, _LOWER, k8s, "time the API server's /readyz failed"),
        ("livez_failed_s", Unit.SECONDS, _LOWER, k8s, "time the API server's /livez failed"),
        ("node_not_ready_s", Unit.SECONDS, _LOWER, both, "longest NotReady spell of a node that went NotReady in the fault window"),
        ("node_ready_again_s", Unit.SECONDS, _LOWER, both, "fault start to the last NotReady node Ready again"),
        ("pod_rescheduling_time_s", Unit.SECONDS, _LOWER, both, "a pod's deletion (testbed: eviction) to its replacement scheduled"),
        ("pod_readiness_time_s", Unit.SECONDS, _LOWER, both, "a pod's deletion (testbed: eviction) to its replacement Ready"),
        ("pods_deleted", Unit.COUNT, _LOWER, both, "the service's pods deleted (testbed: evicted) during the fault"),
        ("pods_replaced", Unit.COUNT, _HIGHER, both, "the service's pods replaced during the fault"),
        ("deployment_unavailable_s", Unit.SECONDS, _LOWER, both, "time the deployment had fewer available replicas than desired"),
        ("watch_blind_s", Unit.SECONDS, _LOWER, k8s, "time the control-plane watcher saw nothing"),
        ("watch_coverage", Unit.FRACTION, _HIGHER, k8s, "share of the observation the watcher saw"),
        ("watch_failed_polls", Unit.COUNT, _LOWER, k8s, "watcher polls that failed"),
        ("write_unavailable_s", Unit.SECONDS, _LOWER, testbed, "time in the fault window the harness's own control-plane probe writes failed"),
        ("repair_blocked_s", Unit.SECONDS, _LOWER, testbed, "time in the fault window the cluster needed a repair the controller could not make"),
        ("leader_changes", Unit.COUNT, _LOWER, testbed, "leader changes of the control-plane store (etcd) in the fault window"),
        ("restore.rto_s", Unit.SECONDS, _LOWER, testbed, "restore drill: data loss to writes accepted and the controller reconciled again"),
        ("restore.rpo_writes", Unit.COUNT, _LOWER, testbed, "restore drill: acknowledged probe writes lost by the restore"),
        ("restore.rpo_revisions", Unit.COUNT, _LOWER, testbed, "restore drill: every control-plane write lost (lost revision - snapshot revision)"),
        ("restore.rpo_age_s", Unit.SECONDS, _LOWER, testbed, "restore drill: age at the loss of the oldest lost acknowledged write"),
        ("restore.snapshot_interval_s", Unit.SECONDS, _LOWER, testbed, "restore drill: the interval between backups (in the drill, snapshot to loss)"),
    ):  # fmt: skip
        yield MetricInfo(f"control_plane.{key}", unit, better, meaning, scope=scope)


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
        "fault start to the first impact: a run of impact_buckets (3) unhealthy buckets in a row",
        label="time to impact", null=Null.NEVER_HAPPENED, null_words="had no impact",
        null_reason="no run of unhealthy buckets was long enough to be an impact, so there was none to time",
        compare_default=True, history_default=True,
    ),
    MetricInfo("requests", Unit.COUNT, _HIGHER, "requests over the horizon's observed buckets", label="requests"),
    MetricInfo("failed_requests", Unit.COUNT, _LOWER, "failed requests over the horizon's observed buckets", label="failed requests"),
    MetricInfo(
        "error_rate", Unit.FRACTION, _LOWER, "failed / requests over the horizon (a fixed window from the fault start)",
        label="error rate", null=Null.STALLED, null_words="stalled", compare_default=True, history_default=True, report_trend=True,
    ),
    MetricInfo("peak_error_rate", Unit.FRACTION, _LOWER, "highest error rate of an observed bucket", label="peak error rate"),
    MetricInfo(
        "availability", Unit.FRACTION, _HIGHER, "share of the horizon (a fixed window from the fault start) that was healthy",
        label="availability", compare_default=True,
    ),
    MetricInfo(
        "false_alarm_rate", Unit.FRACTION, _LOWER,
        "share of baseline buckets (no fault running) the same health rules judge unhealthy: the noise in impact and recovery",
        label="baseline false alarms",
    ),
    *_latency("latency_ms", corrected=True),
    *_latency("latency_uncorrected_ms", corrected=False),
    MetricInfo("applied.duration_s", Unit.SECONDS, _LOWER, "how long the fault was applied: fault start to its rollback (or the method's end)",
               label="fault applied for"),
    MetricInfo("applied.requests", Unit.COUNT, _HIGHER, "requests while the fault was applied", label="requests (applied)"),
    MetricInfo("applied.failed_requests", Unit.COUNT, _LOWER, "failed requests while the fault was applied",
               label="failed (applied)"),
    MetricInfo(
        "applied.error_rate", Unit.FRACTION, _LOWER,
        "failed / requests while the fault was applied, however soon users recovered; null for a window without requests",
        label="error rate (applied)",
    ),
    MetricInfo("peak_p99_ms", Unit.MS, _LOWER, "highest corrected p99 of an observed bucket; grows with the observation's length, not scored"),
    MetricInfo(
        "horizon_s", Unit.SECONDS, _LOWER, "the fixed window from the fault start that the rates and the score count over",
    ),
    MetricInfo(
        "horizon_p99_ms", Unit.MS, _LOWER, "corrected p99 pooled over the horizon's requests; the score's latency term",
        label="p99 (horizon)",
    ),
    MetricInfo(
        "generator_late_share", Unit.FRACTION, _LOWER,
        "requests the load generator itself sent late / requests; above a few percent latency is not about the service",
    ),
    MetricInfo("generator_lag_max_ms", Unit.MS, _LOWER, "the load generator's largest lag over the observation"),
    MetricInfo("kpi", Unit.COUNT, _HIGHER, "KPI events (completed subscriptions) in the observation", label="KPI"),
    MetricInfo("kpi_baseline_per_s", Unit.COUNT, _HIGHER, "baseline KPI events per second"),
    MetricInfo(
        "kpi_lost", Unit.COUNT, _LOWER, "KPI events expected at the baseline rate minus those delivered over the horizon; negative: more than expected",
        label="KPI lost", compare_default=True, history_default=True,
    ),
    MetricInfo("downtime_s", Unit.SECONDS, _LOWER, "time the horizon was unhealthy", label="downtime"),
    # Not compared by default: it is downtime_s times the plan's price, a duplicate test.
    MetricInfo(
        "downtime_cost_usd", Unit.USD, _LOWER, "the horizon's downtime priced at the plan's cost per hour",
        history_default=True,
    ),
    MetricInfo(
        "data_loss", Unit.COUNT, _LOWER, "acknowledged writes that could not be read back; null if not verified or nothing was acknowledged",
        label="data loss", compare_default=True, history_default=True,
    ),
    MetricInfo(
        "resilience_score", Unit.SCORE, _HIGHER, "0-100 from recovery, availability, errors, horizon latency and data loss (a failed check caps it)",
        label="resilience score", compare_default=True, history_default=True, report_trend=True,
    ),
    MetricInfo(
        "faults_without_effect", Unit.COUNT, _LOWER,
        "fault activities with no evidence they happened (no ground-truth event, control-plane change or user impact); null if no source could tell",
        label="faults without effect",
        null_reason="no ground truth, control-plane sample or user impact could tell whether every fault took effect",
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


# --- where the report and summary.md show metrics -------------------------------------------
# A metric shows up in several places under different words ("recovered after" in a table's
# column, "recovery time" on a card), so where it is shown is declared here, per place, by the
# registry name: a new metric is added to REGISTRY and to the places below that should show it.
# The renderers (harness.report.html and its template, harness.report.markdown) loop over these.


FORMATS = ("seconds", "ms", "ms_n", "pct", "usd", "num")
"""The formats a place may ask for; each renderer has all of them."""


@dataclass(frozen=True)
class Shown:
    """One metric in one place of the report or summary.md: a column, or a card's row."""

    metric: str
    """A name in REGISTRY."""
    format: str
    """One of FORMATS: seconds, ms, ms_n (ms with the unit in the header), pct (a fraction as
    percent), usd or num."""
    digits: int | None = None
    """Digits for pct and num (and summary.md's seconds and ms); the format's own default when None."""
    label: str = ""
    """The words for it here; the registry's label (or name) when empty."""
    suffix: str = ""
    """Written after the value (`/s`)."""
    null_text: str = ""
    """For a scored scenario whose value is null: these words, marked bad, instead of a dash."""

    def __post_init__(self) -> None:
        if self.metric not in BY_NAME:
            raise ValueError(f"shown metric {self.metric!r} is not in the registry")
        if self.format not in FORMATS:
            raise ValueError(f"{self.metric}: unknown format {self.format!r}; known: {', '.join(FORMATS)}")

    @property
    def info(self) -> MetricInfo:
        return BY_NAME[self.metric]

    @property
    def shown_as(self) -> str:
        return self.label or self.info.shown_as


@dataclass(frozen=True)
class Card:
    """A card of a scenario in the report: a title and its rows."""

    title: str
    rows: tuple[Shown, ...]


@dataclass(frozen=True)
class Grid:
    """A card of `family.<row>.<column>` metrics as a table (the latency card)."""

    title: str
    family: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    format: str
    corner: str
    """The header of the row names' column, which also names the unit."""

    def metric(self, row: str, column: str) -> str:
        return f"{self.family}.{row}.{column}"

    def shown(self, row: str, column: str) -> Shown:
        return Shown(self.metric(row, column), self.format, label=column)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.metric(r, c) for r in self.rows for c in self.columns)


_NOT_RECOVERED_SHORT = "not recovered"


class RunTotals(NamedTuple):
    """The report's run cards: sums over the scored scenarios. The verdict and worst-scenario
    cards beside them are laid out by hand, and so is where these go: the cost card with the
    failed requests under it, and the data loss card (marked when above zero)."""

    cost: Shown
    data_loss: Shown
    failed: Shown


RUN_TOTALS = RunTotals(
    Shown("downtime_cost_usd", "usd", label="Total downtime cost"),
    Shown("data_loss", "num", label="Total data loss"),
    Shown("failed_requests", "num"),
)

SCORE = Shown("resilience_score", "num", 1, label="Resilience score")
"""The score: the run's worst scenario, each scenario's first card, the overview's first column."""

OVERVIEW: tuple[Shown, ...] = (
    Shown("resilience_score", "num", 1, label="score"),
    Shown("time_to_impact_s", "seconds", label="impact after"),
    Shown("recovery_time_s", "seconds", null_text=_NOT_RECOVERED_SHORT, label="recovered after"),
    Shown("error_rate", "pct"),
    Shown("latency_ms.applied.p95", "ms", label="p95 (applied)"),
    Shown("latency_ms.fault.p99", "ms", label="p99 (fault)"),
    Shown("kpi_lost", "num", 1),
    Shown("downtime_cost_usd", "usd", label="cost"),
    Shown("data_loss", "num"),
)
"""The report's overview table: a row per scenario trial, these columns after its name, status
and result."""

SUMMARY: tuple[Shown, ...] = (
    Shown("time_to_impact_s", "seconds", label="impact after"),
    Shown("recovery_time_s", "seconds", null_text=_NOT_RECOVERED_SHORT, label="recovered after"),
    Shown("error_rate", "pct"),
    Shown("latency_ms.applied.p95", "ms", 0, label="p95 (applied)"),
    Shown("latency_ms.fault.p99", "ms", 0, label="p99 (fault)"),
    Shown("kpi_lost", "num"),
    Shown("downtime_cost_usd", "num", 0, label="cost"),
    Shown("data_loss", "num"),
    Shown("resilience_score", "num", 0, label="score"),
)
"""summary.md's table: these columns after scenario, status and passed."""

CARDS: tuple[Card, ...] = (
    Card("Impact and recovery", (
        Shown("time_to_impact_s", "seconds"),
        Shown("recovery_time_s", "seconds", null_text=_NOT_RECOVERED_SHORT),
        Shown("recovery_after_fault_end_s", "seconds", label="after fault end"),
        Shown("applied.duration_s", "seconds"),
        Shown("downtime_s", "seconds"),
        Shown("availability", "pct", 1),
        Shown("false_alarm_rate", "pct", 1),
        Shown("downtime_cost_usd", "usd", label="cost"),
        Shown("data_loss", "num"),
    )),
    Card("Traffic", (
        Shown("requests", "num"),
        Shown("failed_requests", "num", label="failed"),
        Shown("error_rate", "pct"),
        Shown("applied.error_rate", "pct", label="error rate while applied"),
        Shown("peak_error_rate", "pct", 1),
        Shown("kpi", "num"),
        Shown("kpi_baseline_per_s", "num", 2, suffix="/s", label="KPI baseline"),
        Shown("kpi_lost", "num", 1),
    )),
)  # fmt: skip
"""A scenario's cards of label/value rows, after its score and gates cards."""

LATENCY = Grid("Latency (corrected)", "latency_ms", tuple(w.value for w in _WINDOWS), ("p50", "p95", "p99"),
               "ms_n", corner="ms")  # fmt: skip
"""A scenario's latency card; under it the peak bucket's p99 (LATENCY_PEAK) and the healthy p95 threshold."""

LATENCY_PEAK = Shown("peak_p99_ms", "ms", label="peak bucket p99")


def shown() -> tuple[str, ...]:
    """Every metric name the report and summary.md show, for checks against REGISTRY."""
    places = (*RUN_TOTALS, SCORE, *OVERVIEW, *SUMMARY, *(r for c in CARDS for r in c.rows), LATENCY_PEAK)
    return (*(s.metric for s in places), *LATENCY.metrics)


def value(metrics: Any, name: str) -> Any:
    """The value of metric `name` in a scenario's metrics (the model or result.json's mapping);
    None where a step of its dotted path is missing."""
    out = metrics
    for part in name.split("."):
        if out is None:
            return None
        out = out.get(part) if isinstance(out, Mapping) else getattr(out, part, None)
    return out


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
        null = m.null_words if m.null in _CENSOR else m.null.value
        if m.null in _CONDITION:
            name, expected = _CONDITION[m.null]
            null = (
                f"{m.null_words} if `{name}` is {'null' if expected is None else expected}, else not measured"
            )
        rows.append(
            f"| `{m.name}` | {m.unit.value} | {m.better.value} | {null} | "
            f"{'yes' if m.gateable else 'no'} | {'yes' if m.comparable else 'no'} | {m.scope.value} | {m.meaning} |"
        )
    return "\n".join(rows) + "\n"
