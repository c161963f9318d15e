"""Rules over what users' requests went through: failures a retry would have absorbed, business
KPI lost without errors, latency-only impact, and acknowledged writes lost."""

from __future__ import annotations

import math

from harness.findings.registry import (
    Draft,
    Effect,
    Rule,
    ScenarioInputs,
    Scope,
    Severity,
    ms,
    percent,
    seconds,
)

QUIET_ERROR_RATE = 0.001
"""At most one request in a thousand failed: too few errors to explain a lost KPI or an impact."""
KPI_NOISE_SIGMAS = 3.0
"""KPI events arrive about as a Poisson process: a shortfall beyond three standard deviations of
the expected count (sqrt of it) is not chance (about 1 in 700)."""
KPI_MIN_LOST = 3.0
"""...and at least this many events: at low rates three sigmas is one or two sign-ups."""


def _observed(inputs: ScenarioInputs) -> tuple[float | None, float | None]:
    """The chart range of the observation: fault start to the end."""
    return inputs.instant("fault_start_t"), inputs.instant("end_t")


def retry_absorbable(inputs: ScenarioInputs) -> Draft | None:
    """Requests failed, but in short isolated bursts that never made an impact (never enough
    unhealthy buckets in a row): the kind of failure one retry on another connection absorbs.

    Reads `failed_requests`, `error_rate`, `peak_error_rate` and `time_to_impact_s` (null: no impact)."""
    failed = inputs.metric("failed_requests")
    rate = inputs.metric("error_rate")
    if not failed or rate is None or not inputs.has_metric("time_to_impact_s"):
        return None
    if inputs.metric("time_to_impact_s") is not None:
        return None
    peak = inputs.metric("peak_error_rate")
    worst = f", {percent(peak)} in the worst bucket" if peak is not None else ""
    t_from, t_to = _observed(inputs)
    return Draft(
        title="Errors a retry would have absorbed",
        evidence=(
            f"{failed:.0f} request{'s' if failed != 1 else ''} failed ({percent(rate)}{worst}) without an impact: "
            "isolated failures, not an outage."
        ),
        recommendation=(
            "Retry a failed idempotent request once, after a short backoff, on a new connection; purchases "
            "are safe to retry with their Idempotency-Key."
        ),
        t_from=t_from,
        t_to=t_to,
        expected_effect=Effect(
            "error_rate", -rate, f"down to about 0 from {percent(rate)}: each failure was isolated"
        ),
    )


def kpi_without_errors(inputs: ScenarioInputs) -> Draft | None:
    """Fewer subscriptions completed than the baseline rate predicts, beyond chance, while hardly
    any request failed: the business lost something HTTP status codes do not show (a failed
    business check, a flow that stalled), so error-rate alerts would not have fired.

    Reads `kpi_lost`, `kpi_baseline_per_s`, `horizon_s` and `error_rate`."""
    lost, per_s = inputs.metric("kpi_lost"), inputs.metric("kpi_baseline_per_s")
    horizon, rate = inputs.metric("horizon_s"), inputs.metric("error_rate")
    if lost is None or per_s is None or horizon is None or rate is None or rate > QUIET_ERROR_RATE:
        return None
    expected = per_s * horizon
    noise = KPI_NOISE_SIGMAS * math.sqrt(expected)
    if lost <= max(noise, KPI_MIN_LOST):
        return None
    t_from, t_to = _observed(inputs)
    return Draft(
        title="KPI lost without HTTP errors",
        evidence=(
            f"{lost:.0f} subscriptions fewer than the baseline rate predicts ({per_s:.2f}/s over "
            f"{seconds(horizon)}: {expected:.0f} expected, chance explains ±{noise:.0f}), while "
            f"{percent(rate)} of requests failed."
        ),
        recommendation=(
            "Alert and gate on the business KPI (kpi_lost), not only on HTTP errors, and find the business "
            "check that failed without an error status."
        ),
        t_from=t_from,
        t_to=t_to,
    )


def latency_only(inputs: ScenarioInputs) -> Draft | None:
    """The fault hurt users through latency alone: an impact with no failed request. Error-rate
    alerts and retries do nothing for it; slow backends have to be taken out.

    Reads `time_to_impact_s`, `recovery_time_s`, `error_rate`, `latency_ms.applied.p95` (while the
    fault was active; else `latency_ms.fault.p95`), `latency_ms.baseline.p95` and `thresholds.p95_ms`."""
    impact, rate = inputs.metric("time_to_impact_s"), inputs.metric("error_rate")
    if impact is None or rate is None or rate > QUIET_ERROR_RATE:
        return None
    window = "applied" if inputs.metric("latency_ms.applied.p95") is not None else "fault"
    p95 = inputs.metric(f"latency_ms.{window}.p95")
    limit = inputs.metric("thresholds.p95_ms")
    if p95 is None or limit is None or p95 <= limit:
        return None
    baseline = inputs.metric("latency_ms.baseline.p95")
    before = f" (baseline {ms(baseline)})" if baseline is not None else ""
    start = inputs.instant("fault_start_t")
    recovery = inputs.metric("recovery_time_s")
    while_ = "while the fault was active" if window == "applied" else "in the fault window"
    return Draft(
        title="Latency-only impact: users waited, nothing failed",
        evidence=(
            f"Impact {seconds(impact)} after the fault from latency alone: p95 {ms(p95)} {while_} against a "
            f"threshold of {ms(limit)}{before}; {percent(rate)} of requests failed."
        ),
        recommendation=(
            "Take slow backends out: outlier detection or a least-outstanding-requests balancing policy, and "
            "a client timeout near the SLO with a hedged retry."
        ),
        t_from=start + impact if start is not None else None,
        t_to=start + recovery if start is not None and recovery is not None else inputs.instant("end_t"),
    )


def data_lost(inputs: ScenarioInputs) -> Draft | None:
    """Writes the service acknowledged could not be read back: users were told their purchase went
    through and it did not. No recovery time makes up for it.

    Reads `data_loss`."""
    lost = inputs.metric("data_loss")
    if not lost:
        return None
    t_from, t_to = _observed(inputs)
    return Draft(
        title="Acknowledged writes were lost",
        evidence=f"{lost:.0f} acknowledged write{'s' if lost != 1 else ''} could not be read back after the scenario.",
        recommendation=(
            "Acknowledge a write only once it is durable where it will be read from (synchronous replication "
            "or fsync before the response), and check that failover never promotes a replica behind the primary."
        ),
        t_from=t_from,
        t_to=t_to,
        expected_effect=Effect("data_loss", -lost, "no acknowledged write lost"),
    )


RULES = (
    Rule("errors-a-retry-would-absorb", Severity.INFO, Scope.SCENARIO,
         ("metrics.failed_requests", "metrics.error_rate", "metrics.peak_error_rate",
          "metrics.time_to_impact_s"), retry_absorbable),
    Rule("kpi-lost-without-errors", Severity.WARNING, Scope.SCENARIO,
         ("metrics.kpi_lost", "metrics.kpi_baseline_per_s", "metrics.horizon_s", "metrics.error_rate"),
         kpi_without_errors),
    Rule("latency-only-impact", Severity.INFO, Scope.SCENARIO,
         ("metrics.time_to_impact_s", "metrics.error_rate", "metrics.latency_ms.applied.p95",
          "metrics.latency_ms.fault.p95", "metrics.thresholds.p95_ms"), latency_only),
    Rule("data-loss", Severity.CRITICAL, Scope.SCENARIO, ("metrics.data_loss",), data_lost),
)  # fmt: skip
"""The traffic rules, in the order they are listed."""
