"""The typed model of result.json (`harness.result/v1`): one run and its scenario trials.

The engine builds a Result and writes it; report, compare, history and gates read it back with
`read`. Writing gives the bytes the engine has always written: fields in the order below, keys
that were not set left out (a scenario that never started its load has no `load`), numbers as
they were given (an int stays an int, a float keeps Python's shortest repr). A key the model
does not know is an error, except in `target`, whose facts depend on the backend.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

SCHEMA = "harness.result/v1"
"""The schema string every result.json carries; a file with another one is refused."""

Number = StrictInt | StrictFloat
"""A measured value, kept as written: `10` stays an int and `10.0` a float, so writing a
result read from a file gives its bytes back."""
Count = StrictInt
OptionalNumber = Number | None
BASELINE_NOT_STEADY = "baseline-not-steady"
"""The status of a scenario whose load was not steady before the fault: no fault was injected,
and `baseline_check` says which criteria failed."""
NOT_APPLICABLE = "not-applicable"
"""The status of a scenario the target could not run (its `requires` unmet); `not_applicable` says why."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# --- run ----------------------------------------------------------------------------------


class PlanRef(_Model):
    """Which plan the run came from; the resolved plan itself is plan.json beside result.json."""

    name: StrictStr
    description: StrictStr | None = None


class Target(BaseModel):
    """What the run ran against. Only `kind` is common to every backend (testbed: profile, url,
    nodes...; kubernetes: context, cluster, server...), so other keys are kept as written."""

    model_config = ConfigDict(frozen=True, extra="allow")

    kind: StrictStr

    def fact(self, key: str) -> Any:
        """A backend-specific fact (`profile`, `cluster`, `context`), None when absent."""
        return (self.model_extra or {}).get(key)


class Environment(_Model):
    """Versions that explain a result, for the report."""

    harness: StrictStr | None = None
    python: StrictStr | None = None
    platform: StrictStr | None = None
    chaostoolkit_lib: StrictStr | None = None
    locust: StrictStr | None = None
    host: StrictStr | None = None


# --- scenario -----------------------------------------------------------------------------


class SteadyState(_Model):
    """Whether the experiment's steady-state hypothesis held; None: not checked."""

    before: StrictBool | None = None
    after: StrictBool | None = None


class BaselineCheckItem(_Model):
    """One criterion of the baseline check (harness.scoring.baseline)."""

    name: StrictStr
    passed: StrictBool
    value: OptionalNumber = None
    """What was measured; None: not judged (too little data), which passes."""
    threshold: OptionalNumber = None
    evidence: StrictStr


class BaselineCheck(_Model):
    """Whether the load was steady before the fault, criterion by criterion."""

    steady: StrictBool
    went_on: StrictBool
    """The baseline was not steady and the fault was injected anyway (the plan's
    `baseline.require_steady: false`): every number of the scenario carries that finding."""
    checks: list[BaselineCheckItem]

    @property
    def failed(self) -> list[BaselineCheckItem]:
        return [c for c in self.checks if not c.passed]

    def reasons(self) -> str:
        """The failed checks' evidence, for a sentence on a page or the console."""
        return "; ".join(f"{c.name}: {c.evidence}" for c in self.failed)


class Load(_Model):
    """Where the load came from: this host's processes, or Locust workers that joined."""

    processes: Count | None = None
    workers_expected: Count | None = None
    workers_joined: Count | None = None
    workers_took_part: Count | None = None
    """Workers whose measurements reached the master; None: Locust did not close the timeline."""


class Percentiles(_Model):
    """Latency percentiles of one window, ms; None for a window without requests."""

    p50: OptionalNumber = None
    p95: OptionalNumber = None
    p99: OptionalNumber = None


class Latency(_Model):
    """Latency per window of the scenario (harness.phases.Window says which is which)."""

    baseline: Percentiles | None = None
    applied: Percentiles | None = None
    """While the fault was applied; absent in results scored before the window existed."""
    fault: Percentiles | None = None
    """The impact window, fault start to recovery."""
    recovery: Percentiles | None = None


class Applied(_Model):
    """Traffic while the fault was applied (fault start to its undo), however soon users recovered."""

    duration_s: OptionalNumber = None
    """How long the fault was applied: fault start to its undo (or the method's end)."""
    requests: Count | None = None
    failed_requests: Count | None = None
    error_rate: OptionalNumber = None
    """failed_requests / requests; None when the window held no request."""


class Thresholds(_Model):
    """The health thresholds the scenario was judged with, resolved from the plan and baseline."""

    error_rate: OptionalNumber = None
    p95_ms: OptionalNumber = None
    kpi_min_per_s: OptionalNumber = None
    kpi_window_s: OptionalNumber = None
    min_requests: Count | None = None
    confidence: OptionalNumber = None
    """How sure the evidence had to be that a bucket breached; absent in results judged on raw rates."""
    impact_buckets: Count | None = None
    """Unhealthy buckets in a row that made an impact; absent in results where every one did."""


class ApiWindow(_Model):
    """The Kubernetes API server's latency and errors in one window."""

    samples: Count
    p50_ms: OptionalNumber = None
    p99_ms: OptionalNumber = None
    error_rate: OptionalNumber = None
    throttled_own_load: Count | None = None


class ApiWindows(_Model):
    baseline: ApiWindow
    fault: ApiWindow


class Restore(_Model):
    """A restore drill's RTO and RPO (harness.scoring.restore); all null without a restore."""

    rto_s: OptionalNumber = None
    rpo_writes: Count | None = None
    rpo_revisions: Count | None = None
    rpo_age_s: OptionalNumber = None
    snapshot_interval_s: OptionalNumber = None


class ControlPlane(_Model):
    """What the target's control plane did during the scenario (harness.scoring.controlplane):
    a Kubernetes API server, or the testbed's etcd and controller."""

    api: ApiWindows
    readyz_failed_s: OptionalNumber = None
    livez_failed_s: OptionalNumber = None
    node_not_ready_s: OptionalNumber = None
    node_ready_again_s: OptionalNumber = None
    pod_rescheduling_time_s: OptionalNumber = None
    pod_readiness_time_s: OptionalNumber = None
    pods_deleted: Count | None = None
    pods_replaced: Count | None = None
    deployment_unavailable_s: OptionalNumber = None
    watch_blind_s: OptionalNumber = None
    watch_coverage: OptionalNumber = None
    watch_failed_polls: Count | None = None
    write_unavailable_s: OptionalNumber = None
    repair_blocked_s: OptionalNumber = None
    leader_changes: Count | None = None
    restore: Restore | None = None


class Metrics(_Model):
    """A scenario trial's metrics; harness.result.metrics says what each one means.

    Every metric may be absent: results written before a metric existed lack it, and a gate or
    comparison on an absent metric says so (it is not the same as null, which was measured as
    nothing)."""

    time_to_impact_s: OptionalNumber = None
    recovery_time_s: OptionalNumber = None
    recovery_after_fault_end_s: OptionalNumber = None
    requests: Count | None = None
    failed_requests: Count | None = None
    error_rate: OptionalNumber = None
    peak_error_rate: OptionalNumber = None
    availability: OptionalNumber = None
    false_alarm_rate: OptionalNumber = None
    latency_ms: Latency | None = None
    latency_uncorrected_ms: Latency | None = None
    applied: Applied | None = None
    peak_p99_ms: OptionalNumber = None
    horizon_s: Number | None = None
    horizon_p99_ms: OptionalNumber = None
    generator_late_share: OptionalNumber = None
    generator_lag_max_ms: OptionalNumber = None
    kpi: Count | None = None
    kpi_baseline_per_s: OptionalNumber = None
    kpi_lost: OptionalNumber = None
    downtime_s: Number | None = None
    downtime_cost_usd: Number | None = None
    data_loss: Count | None = None
    resilience_score: Number | None = None
    thresholds: Thresholds | None = None
    control_plane: ControlPlane | None = None
    """Kubernetes targets only."""
    faults_without_effect: Count | None = None
    """Fault activities that a source could have confirmed and did not (the scenario's
    `fault_effect`); None when no source could judge some activity."""

    def as_mapping(self) -> dict[str, Any]:
        """The metrics as result.json holds them, for what walks them by dotted name (gates)."""
        return self.model_dump(mode="python", exclude_unset=True)


class GateOutcome(_Model):
    """One gate's outcome."""

    expression: StrictStr
    value: OptionalNumber
    """The left side's value; None when it could not be computed."""
    passed: StrictBool
    reason: StrictStr | None = None
    """Why the gate failed without a comparison (a null metric, a division by zero), why it was
    skipped, or what a history function's value rests on."""
    skipped: StrictBool = False
    """The gate could not be judged yet (no earlier runs for its history function) and counts as
    passed; False in every result written before history gates existed."""

    def to_json(self) -> dict[str, Any]:
        """The gate's entry in result.json: `reason` and `skipped` only when they say something."""
        entry: dict[str, Any] = {"expression": self.expression, "value": self.value, "passed": self.passed}
        if self.reason:
            entry["reason"] = self.reason
        if self.skipped:
            entry["skipped"] = True
        return entry


class ExpectedEffect(_Model):
    """What a finding's recommended change should do, where the harness can estimate it."""

    metric: StrictStr
    """A metric of the registry (dotted), or a recovery phase's `recovery_phases.NAME.at_s`."""
    change: Number
    """Signed, in the metric's unit: -20 on `recovery_time_s` is 20 s faster."""
    text: StrictStr


class Finding(_Model):
    """What a rule of harness.findings read in a scenario (or across a run's trials): the
    evidence, the change it recommends and, when it can be estimated, that change's effect."""

    id: StrictStr
    """The rule's stable, kebab-case id (docs/findings.md)."""
    severity: Literal["info", "warning", "critical"]
    title: StrictStr
    evidence: StrictStr
    t_from: OptionalNumber = None
    """Unix seconds: where on the scenario's charts the evidence starts; None for run-level facts."""
    t_to: OptionalNumber = None
    recommendation: StrictStr
    expected_effect: ExpectedEffect | None = None
    scenario: StrictStr | None = None
    """Run-level findings only: the scenario they are about (scenario-level ones sit in its entry)."""


class Phases(_Model):
    """The instants (Unix seconds) that split the scenario's timeline into windows."""

    baseline_start_t: Number
    fault_start_t: Number
    fault_end_t: Number
    end_t: Number


StageName = Literal[
    "fault_applied", "users_affected", "detected", "rerouted", "users_back", "capacity_restored", "steady"
]
EvidenceSource = Literal["markers", "ground-truth", "control-plane", "timeline", "aws"]


class RecoveryPhase(_Model):
    """One step of a recovery (harness.scoring.stages): when, for how long, and on what evidence."""

    name: StageName
    t: OptionalNumber
    """Unix seconds; None when no source showed it (then `reason` says why)."""
    at_s: OptionalNumber
    """Seconds after the fault was applied (the `fault_applied` phase)."""
    duration_s: OptionalNumber
    """Seconds until the next phase in time; None for the last one and for nulls."""
    source: EvidenceSource | None
    evidence: StrictStr | None
    reason: StrictStr | None = None
    """Why t is null; written only then."""


class FaultActivity(_Model):
    """One fault activity of the method and whether evidence shows it happened."""

    name: StrictStr
    observed: StrictBool | None
    """True: evidence shows it; False: a source was there and showed nothing; None: no source could tell."""
    source: EvidenceSource | None
    evidence: StrictStr | None


class FaultEffect(_Model):
    """Whether the scenario's faults demonstrably happened (harness.scoring.stages)."""

    outcome: Literal["effect-observed", "no-effect-observed", "unknown"]
    activities: list[FaultActivity]


class Scenario(_Model):
    """One trial of one scenario: what ran, how it ended, what it measured, whether it passed."""

    name: StrictStr
    experiment: StrictStr | None = None
    trial: Count = Field(ge=1)
    status: StrictStr
    """running, completed, failed, aborted, interrupted or error (Chaos Toolkit's or the engine's),
    baseline-not-steady (the load was not steady before the fault, so none was injected), or not-applicable: the target cannot offer what the scenario requires, so it was not run."""
    not_applicable: StrictStr | None = None
    """Why the scenario was not run on this target (status not-applicable): one entry, trial 1,
    stands for all its trials. It has no metrics and no gates, and counts as passed: it cannot
    fail the run, and it never stands for a measurement."""
    aborted_by: StrictStr | None = None
    deviated: StrictBool | None = None
    steady_state: SteadyState = SteadyState()
    baseline_check: BaselineCheck | None = None
    """Whether the load was steady before the fault; None: the baseline was never reached (or a
    result written before the check existed)."""
    started: OptionalNumber = None
    ended: OptionalNumber = None
    healed: list[StrictStr] = []
    error: StrictStr | None = None
    paths: dict[str, StrictStr] = {}
    load: Load | None = None
    metrics: Metrics | None = None
    """None: the scenario could not be scored (see scoring_error)."""
    gates: list[GateOutcome] = []
    findings: list[Finding] = []
    """What harness.findings read in this trial; absent in results written before findings existed."""
    passed: StrictBool
    scoring_error: StrictStr | None = None
    phases: Phases | None = None
    recovery_phases: list[RecoveryPhase] | None = None
    """Fault applied to steady state, in harness.scoring.stages' order; absent in results scored before it."""
    fault_effect: FaultEffect | None = None
    """Whether each fault activity demonstrably happened; absent in results scored before it."""

    @property
    def applicable(self) -> bool:
        """Whether the scenario applied to its target (it ran, or tried to)."""
        return self.status != NOT_APPLICABLE

    @property
    def ran_to_completion(self) -> bool:
        """The experiment completed with its steady state holding before the fault: only then
        does the scenario measure the fault."""
        return self.status == "completed" and not self.deviated and self.steady_state.before is not False


class Result(_Model):
    """A run: what it ran, against what, when, and each scenario trial's outcome."""

    schema_: StrictStr = Field(SCHEMA, alias="schema")
    run_id: StrictStr
    plan: PlanRef
    target: Target
    environment: Environment = Environment()
    started: Number
    ended: OptionalNumber = None
    status: StrictStr
    """running, completed, interrupted or failed."""
    error: StrictStr | None = None
    """Why a failed run stopped."""
    passed: StrictBool
    scenarios: list[Scenario]
    findings: list[Finding] = []
    """Findings over the run as a whole (its trials per scenario, its target), from harness.findings."""
    batch: StrictStr | None = None
    """Runs made by one command that ran several targets with their trials interleaved share this
    id: trial k of a scenario in each of them ran in the same slot of time (a block)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    def to_json(self) -> dict[str, Any]:
        """result.json's content: the keys that were set, in the model's order."""
        data = self.model_dump(mode="python", by_alias=True, exclude_unset=True)
        data["schema"] = self.schema_  # written whether or not it was given
        data = {"schema": data.pop("schema"), **data}
        data["scenarios"] = [_scenario_json(s) for s in self.scenarios]
        return data


def _scenario_json(scenario: Scenario) -> dict[str, Any]:
    data = scenario.model_dump(mode="python", exclude_unset=True)
    data["gates"] = [g.to_json() for g in scenario.gates]
    return data
