"""summary.md: a verdict and a table, short enough for a pull-request comment or a chat message."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from harness import findings
from harness.plan import applicability
from harness.report import inputs, why
from harness.result import files as result_files
from harness.result import metrics as metric_registry
from harness.result import model as result_model

REPORT_URL_ENV = "HARNESS_REPORT_URL"


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def summary(
    result: result_model.Result | Mapping[str, Any],
    report_url: str | None = None,
    journals: Mapping[tuple[str, int], inputs.Journal] | None = None,
) -> str:
    """The Markdown summary; links point at `report_url` (or $HARNESS_REPORT_URL: where CI
    publishes the run folder), else relative to the run folder itself. `journals` (by scenario
    and trial) name the steady-state probes that failed in "Why it failed"."""
    result = result_files.as_result(result)
    scenarios = result.scenarios
    verdict = "PASSED" if result.passed else ("INCOMPLETE" if result.status != "completed" else "FAILED")
    profile = result.target.fact("profile")
    lines = [
        f"# Resilience run `{result.run_id}`: {verdict}",
        "",
        f"Plan **{result.plan.name}** on target **{result.target.kind}**"
        + (f" ({profile})" if profile else "")
        + f"; run status: {result.status}.",
    ]
    if result.error:
        lines += ["", f"Error: {result.error}"]
    lines += _unsteady(scenarios)
    lines += _findings(result)
    scored = [(s, s.metrics) for s in scenarios if s.metrics is not None]
    if scored:
        cost = sum(m.downtime_cost_usd or 0 for _, m in scored)
        loss = sum(m.data_loss or 0 for _, m in scored)
        worst, worst_metrics = min(scored, key=lambda sm: _score(sm[1]))
        lines += [
            "",
            f"Total downtime cost **${cost:,.0f}**, data loss **{loss}** acknowledged writes, "
            f"worst scenario **{worst.name}** (score {_score(worst_metrics):.0f}).",
        ]
    lines += [
        "",
        "| scenario | status | passed | " + " | ".join(c.shown_as for c in metric_registry.SUMMARY) + " |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in metric_registry.SUMMARY) + " |",
    ]
    for s in scenarios:
        cells = " | ".join(_cell(s.metrics, c) for c in metric_registry.SUMMARY)
        if s.not_applicable:
            passed = applicability.label(s.not_applicable)
            lines.append(f"| {s.name} | {s.status} | {passed} | {cells} |")
            continue
        went_on = (
            " (baseline not steady)" if s.baseline_check is not None and s.baseline_check.went_on else ""
        )
        lines.append(
            f"| {s.name}#{s.trial} | {s.status}{went_on} | {'yes' if s.passed else '**no**'} | {cells} |"
        )
    not_applicable = [s for s in scenarios if s.not_applicable]
    if not_applicable:
        lines += ["", "Not applicable on this target (not run, not failed):", ""]
        lines += [f"- {s.name}: {s.not_applicable}" for s in not_applicable]
    lines += _false_alarms(scenarios)
    lines += _recovery_phases(scenarios)
    lines += _fault_effects(scenarios)
    lines += _control_plane(scenarios)
    lines += why.markdown_lines(why.failures(result, journals))
    skipped = [(s, g) for s in scenarios for g in s.gates if g.skipped]
    if skipped:
        lines += ["", "Skipped gates (nothing to compare with yet):", ""]
        for s, g in skipped:
            lines.append(f"- {s.name}#{s.trial}: `{g.expression}` — {g.reason or ''}")
    base = (report_url if report_url is not None else os.environ.get(REPORT_URL_ENV, "")).rstrip("/")
    link = f"{base}/" if base else ""
    lines += [
        "",
        f"Full report: [report.html]({link}report.html) (timelines, activities, gates, trends); "
        f"data: [result.json]({link}result.json), [junit.xml]({link}junit.xml).",
        "",
    ]
    return "\n".join(lines)


def _findings(result: result_model.Result) -> list[str]:
    """The findings, most severe first, one line each: what was seen and what to change
    (docs/findings.md). Near the top, so a CI job summary shows them."""
    listed = findings.stored(result)
    if not listed:
        return []
    lines = ["", "## Findings", ""]
    for x in listed:
        f = x.finding
        line = f"- **{f.severity}** {x.where}: {f.title} — {f.evidence} *Change:* {f.recommendation}"
        if f.expected_effect is not None:
            line += f" *Expected:* {f.expected_effect.text}."
        lines.append(line + f" `{f.id}`")
    return lines


FORMATS: dict[str, Callable[[Any, int | None], str]] = {
    "seconds": lambda v, d: _fmt(v, " s", 1 if d is None else d),
    "ms": lambda v, d: _fmt(v, " ms", 1 if d is None else d),
    "ms_n": lambda v, d: _fmt(v, "", 1 if d is None else d),
    "pct": lambda v, d: _pct(v, 2 if d is None else d),
    "usd": lambda v, d: "—" if v is None else "$" + _fmt(v, "", 2 if d is None else d),
    "num": lambda v, d: _fmt(v, "", 1 if d is None else d),
}
"""The registry's formats (harness.result.metrics.Shown) as summary.md writes them."""


def _unsteady(scenarios: list[result_model.Scenario]) -> list[str]:
    """Scenarios whose load was not steady before the fault, first: their numbers mean little or nothing."""
    out = []
    for s in scenarios:
        check = s.baseline_check
        if check is None or check.steady:
            continue
        if check.went_on:
            then = "the fault was injected anyway (`baseline.require_steady: false`): every number is about an unsteady load"
        else:
            then = "no fault was injected"
        out += [f"- **{s.name}#{s.trial}**: {then}."]
        out += [f"  - `{c.name}`: {c.evidence}" for c in check.failed]
    return (
        ["", "**Baseline not steady** (the load was not steady before the fault):", "", *out] if out else []
    )


def _false_alarms(scenarios: list[result_model.Scenario]) -> list[str]:
    """A sentence on the baseline's false alarms: how far impact and recovery can be the rules' noise."""
    rates = [(s, s.metrics.false_alarm_rate) for s in scenarios if s.metrics is not None]
    measured = [(s, rate) for s, rate in rates if rate is not None]
    if not measured:
        return []  # results scored before the rate existed
    alarmed = [f"{s.name}#{s.trial} {_pct(rate, 1)}" for s, rate in measured if rate > 0]
    if not alarmed:
        return ["", "No baseline false alarms: the health rules judged every baseline bucket healthy, "
                "so impact and recovery are not their noise."]  # fmt: skip
    return ["", f"Baseline false alarms (baseline buckets judged unhealthy with no fault running): "
            f"{', '.join(alarmed)}. Impact and recovery times there carry that much noise."]  # fmt: skip


_STAGE_WORDS = {
    "users_affected": "users affected",
    "detected": "detected",
    "rerouted": "rerouted",
    "users_back": "users back",
    "capacity_restored": "capacity restored",
    "steady": "steady",
}
"""summary.md's words for the recovery phases after the fault (harness.scoring.stages)."""


def _recovery_phases(scenarios: list[result_model.Scenario]) -> list[str]:
    """One line per scenario: each phase's time after the fault, with the platform's evidence."""
    out = []
    for s in scenarios:
        if not s.recovery_phases:
            continue
        seen: list[tuple[float, str]] = []
        missing: list[str] = []
        for p in s.recovery_phases:
            words = _STAGE_WORDS.get(p.name)
            if words is None:
                continue
            if p.at_s is None:
                missing.append(words)
                continue
            part = f"{words} +{p.at_s:.1f} s"
            if p.evidence and p.source in ("ground-truth", "control-plane", "aws"):
                part += f" ({p.evidence.split(': ')[0]})"
            seen.append((p.at_s, part))
        seen.sort(key=lambda item: item[0])  # in time: capacity often comes back after users
        line = f"- {s.name}#{s.trial}: " + (", ".join(part for _, part in seen) or "no phase seen")
        if missing:
            line += "; not seen: " + ", ".join(missing)
        out.append(line)
    if not out:
        return []
    return ["", "Recovery phases (seconds after the fault was applied; evidence from the ground truth or the "
            "control plane):", "", *out]  # fmt: skip


def _fault_effects(scenarios: list[result_model.Scenario]) -> list[str]:
    """The scenarios whose faults no evidence shows to have happened: their clean results prove nothing."""
    out = []
    for s in scenarios:
        effect = s.fault_effect
        if effect is None or effect.outcome == "effect-observed":
            continue
        words = "no effect observed" if effect.outcome == "no-effect-observed" else "effect unknown"
        detail = "; ".join(f"{a.name}: {a.evidence}" for a in effect.activities if a.observed is not True)
        out.append(
            f"- {s.name}#{s.trial}: **{words}**" + (f" ({detail})" if detail else " (no fault action)")
        )
    if not out:
        return []
    return ["", "Faults without evidence that they took effect (a scenario without impact there is not shown "
            "resilient, only untested):", "", *out]  # fmt: skip


def _control_plane(scenarios: list[result_model.Scenario]) -> list[str]:
    """What the control plane itself went through, for the scenarios where it did: writes refused,
    repairs it could not make, and a restore's RTO and RPO (the figures a backup schedule is set by)."""
    out = []
    for s in scenarios:
        cp = s.metrics.control_plane if s.metrics is not None else None
        if cp is None:
            continue
        parts = []
        if cp.write_unavailable_s:
            parts.append(f"writes refused for {_fmt(cp.write_unavailable_s, ' s')}")
        if cp.repair_blocked_s:
            parts.append(f"repairs blocked for {_fmt(cp.repair_blocked_s, ' s')}")
        if cp.leader_changes:
            parts.append(f"{cp.leader_changes} leader change{'s' if cp.leader_changes != 1 else ''}")
        restore = cp.restore
        if restore is not None and restore.rto_s is not None:
            parts.append(
                f"restored from a snapshot: RTO {_fmt(restore.rto_s, ' s')}, RPO {_fmt(restore.rpo_age_s, ' s')} "
                f"of writes ({_fmt(restore.rpo_revisions)} revisions, {_fmt(restore.rpo_writes)} of the harness's "
                f"acknowledged probe writes) with snapshots every {_fmt(restore.snapshot_interval_s, ' s', 0)}"
            )
        if parts:
            out.append(f"- {s.name}#{s.trial}: " + "; ".join(parts))
    return ["", "Control plane:", "", *out] if out else []


def _cell(metrics: result_model.Metrics | None, column: metric_registry.Shown) -> str:
    value = metric_registry.value(metrics, column.metric)
    if value is None and metrics is not None and column.null_text:
        return column.null_text
    return FORMATS[column.format](value, column.digits) + column.suffix


def _score(metrics: result_model.Metrics) -> float:
    """The resilience score, for ranking; a result without one ranks last."""
    return metrics.resilience_score if metrics.resilience_score is not None else 100.0
