"""summary.md: a verdict and a table, short enough for a pull-request comment or a chat message."""

from __future__ import annotations

import os
from typing import Any

from harness.phases import Window

REPORT_URL_ENV = "HARNESS_REPORT_URL"


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def summary(result: dict[str, Any], report_url: str | None = None) -> str:
    """The Markdown summary; links point at `report_url` (or $HARNESS_REPORT_URL: where CI
    publishes the run folder), else relative to the run folder itself."""
    scenarios = result.get("scenarios", [])
    verdict = (
        "PASSED"
        if result.get("passed")
        else ("INCOMPLETE" if result.get("status") != "completed" else "FAILED")
    )
    plan = result.get("plan", {}).get("name", "?")
    lines = [
        f"# Resilience run `{result.get('run_id')}`: {verdict}",
        "",
        f"Plan **{plan}** on target **{result.get('target', {}).get('kind', '?')}**"
        + (f" ({result['target'].get('profile')})" if result.get("target", {}).get("profile") else "")
        + f"; run status: {result.get('status')}.",
    ]
    if result.get("error"):
        lines += ["", f"Error: {result['error']}"]
    metrics = [s["metrics"] for s in scenarios if s.get("metrics")]
    if metrics:
        cost = sum(m.get("downtime_cost_usd") or 0 for m in metrics)
        loss = sum(m.get("data_loss") or 0 for m in metrics)
        worst = min(
            (s for s in scenarios if s.get("metrics")), key=lambda s: s["metrics"]["resilience_score"]
        )
        lines += [
            "",
            f"Total downtime cost **${cost:,.0f}**, data loss **{loss}** acknowledged writes, "
            f"worst scenario **{worst['name']}** (score {worst['metrics']['resilience_score']:.0f}).",
        ]
    lines += [
        "",
        "| scenario | status | passed | impact after | recovered after | error rate | p99 (fault) | KPI lost | cost | data loss | score |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in scenarios:
        m = s.get("metrics") or {}
        fault = (m.get("latency_ms") or {}).get(Window.FAULT) or {}
        recovered = m.get("recovery_time_s")
        rec = "not recovered" if m and recovered is None else _fmt(recovered, " s")
        lines.append(
            f"| {s['name']}#{s['trial']} | {s.get('status')} | {'yes' if s.get('passed') else '**no**'} "
            f"| {_fmt(m.get('time_to_impact_s'), ' s')} | {rec} | {_pct(m.get('error_rate'))} "
            f"| {_fmt(fault.get('p99'), ' ms', 0)} | {_fmt(m.get('kpi_lost'))} "
            f"| {_fmt(m.get('downtime_cost_usd'), '', 0) if m else '—'} | {_fmt(m.get('data_loss'))} "
            f"| {_fmt(m.get('resilience_score'), '', 0)} |"
        )
    failed = [(s, g) for s in scenarios for g in s.get("gates", []) if not g["passed"]]
    if failed:
        lines += ["", "Failed gates:", ""]
        for s, g in failed:
            reason = f" ({g['reason']})" if g.get("reason") else ""
            lines.append(
                f"- {s['name']}#{s['trial']}: `{g['expression']}` — value {_fmt(g.get('value'), '', 3)}{reason}"
            )
    aborted = [s for s in scenarios if s.get("aborted_by")]
    for s in aborted:
        lines.append(f"- {s['name']}#{s['trial']} was aborted: {s['aborted_by']}")
    skipped = [(s, g) for s in scenarios for g in s.get("gates", []) if g.get("skipped")]
    if skipped:
        lines += ["", "Skipped gates (nothing to compare with yet):", ""]
        for s, g in skipped:
            lines.append(f"- {s['name']}#{s['trial']}: `{g['expression']}` — {g.get('reason', '')}")
    base = (report_url if report_url is not None else os.environ.get(REPORT_URL_ENV, "")).rstrip("/")
    link = f"{base}/" if base else ""
    lines += [
        "",
        f"Full report: [report.html]({link}report.html) (timelines, activities, gates, trends); "
        f"data: [result.json]({link}result.json), [junit.xml]({link}junit.xml).",
        "",
    ]
    return "\n".join(lines)
