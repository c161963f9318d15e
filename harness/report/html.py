"""report.html: one self-contained page per run, for people to read on a laptop or on paper.

Everything the page needs is inlined (uPlot, the styles, the script, the data as JSON), so it
opens offline and can be mailed or archived on its own. Per scenario and trial it shows score
cards from result.json (unchanged), timelines drawn from the run folder's files (downsampled for
display only, harness.report.display), the steady-state probes and the experiment's activities;
at the top, the plan's verdict. A scenario with missing files renders with what exists and says
what is missing.

It renders the values it is given (harness.report.inputs) and reads no run file: the store reads
the folder (harness.store.runview, whose `write_report` the engine calls after a run, at each
checkpoint and for `harness report RUN_DIR`), and secrets are masked where run files are written
and read, so nothing here decides what is secret.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import numpy as np

from harness import scoring, timeline
from harness.errors import HarnessError
from harness.plan import gates as gate_lang
from harness.report import display, inputs
from harness.result import metrics as metric_registry
from harness.result import model as result_model

REPORT = "report.html"
HERE = Path(__file__).parent
STATIC = HERE / "static"
_TREND_UNITS = {
    metric_registry.Unit.SECONDS: "s",
    metric_registry.Unit.MS: "ms",
    metric_registry.Unit.FRACTION: "%",
    metric_registry.Unit.USD: "$",
    metric_registry.Unit.COUNT: "",
    metric_registry.Unit.SCORE: "",
}
TREND_METRICS: tuple[tuple[str, str, str], ...] = tuple(
    (m.name, m.shown_as, _TREND_UNITS[m.unit]) for m in metric_registry.report_trends()
)
"""(metric, label, unit) of the trend chart, from the registry; fractions are drawn as percent."""
MAX_TEXT = 240
"""Activity outputs and arguments longer than this are cut: the journal has them in full."""


def render_report(run: inputs.RunInputs, trends: Mapping[str, list[dict]] | None = None) -> str:
    """The report of a run as HTML text."""
    result, plan = run.result, run.plan
    scenarios = [_scenario(entry, run.trials, plan, trends) for entry in result.get("scenarios") or []]
    missing = _not_run(plan, result)
    context = {
        "findings": _findings(result, scenarios),
        "result": result,
        "run": _run_summary(result, scenarios, missing),
        "plan": plan,
        "target": result.get("target") or {},
        "environment": result.get("environment") or {},
        "scenarios": scenarios,
        "not_run": missing,
        "data_json": _script_json(
            {"scenarios": {s["id"]: s["data"] for s in scenarios if not s["not_applicable"]}}
        ),
        "uplot_js": _static("uPlot.iife.min.js"),
        "uplot_css": _static("uPlot.min.css"),
        "uplot_license": _static("uPlot.LICENSE"),
        "report_js": _static("report.js"),
        "report_css": _static("report.css"),
        "generated": _utc(dt.datetime.now(dt.UTC).timestamp()),
        # Which metrics the cards and the overview table show, as the registry declares them.
        "score": metric_registry.SCORE,
        "totals": metric_registry.RUN_TOTALS,
        "overview": metric_registry.OVERVIEW,
        "cards": metric_registry.CARDS,
        "latency": metric_registry.LATENCY,
        "latency_peak": metric_registry.LATENCY_PEAK,
    }
    return _environment().get_template("report.html.j2").render(**context)


# --- the run -------------------------------------------------------------------------------
def _run_summary(result: Mapping[str, Any], scenarios: list[dict], not_run: list[str]) -> dict[str, Any]:
    status = result.get("status")
    verdict = "passed" if result.get("passed") else ("incomplete" if status != "completed" else "failed")
    scored = [s for s in scenarios if s["metrics"]]
    applicable = [s for s in scenarios if not s["not_applicable"]]
    worst = min(scored, key=lambda s: s["metrics"].get("resilience_score", 100.0), default=None)
    unverified = sum(1 for s in scored if s["metrics"].get("data_loss") is None)
    started, ended = result.get("started"), result.get("ended")
    return {
        "verdict": verdict,
        "status": status,
        "error": result.get("error"),
        "started": _utc(started),
        "ended": _utc(ended),
        "duration_s": ended - started if _num(started) and _num(ended) else None,
        "scenarios": len(applicable),
        "passed": sum(1 for s in applicable if s["passed"]),
        "not_applicable": len(scenarios) - len(applicable),
        "worst": worst,
        "totals": {
            t.metric: sum(metric_registry.value(s["metrics"], t.metric) or 0 for s in scored)
            if scored
            else None
            for t in metric_registry.RUN_TOTALS
        },
        "unverified": unverified,
        "not_run": not_run,
    }


_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _findings(result: Mapping[str, Any], scenarios: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The findings result.json holds, most severe first, each with the scenario section and the
    time range (seconds on its charts) it points at; None for a result written before findings."""
    if "findings" not in result and not any("findings" in s for s in result.get("scenarios") or []):
        return None
    by_trial = {(s["name"], s["trial"]): s for s in scenarios}
    first = {}
    for s in scenarios:
        first.setdefault(s["name"], s)
    listed = []
    for entry in result.get("scenarios") or []:
        shown = by_trial.get((str(entry.get("name")), entry.get("trial") or 1))
        for f in entry.get("findings") or []:
            listed.append(_finding(f, shown, shown["label"] if shown else str(entry.get("name"))))
    for f in result.get("findings") or []:
        shown = first.get(f.get("scenario")) if f.get("scenario") else None
        listed.append(_finding(f, shown, f.get("scenario") or "run"))
    listed.sort(key=lambda f: _SEVERITY_ORDER.get(f["severity"], 3))
    return listed


def _finding(f: Mapping[str, Any], scenario: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """One finding as the page shows it: a link to its scenario's charts, zoomed to its range."""
    out = {**f, "where": where, "href": None, "scenario_id": None, "from_s": None, "to_s": None}
    if scenario is None:
        return out
    out["scenario_id"] = scenario["id"]
    out["href"] = f"#{scenario['id']}-charts" if scenario["points"] else f"#{scenario['id']}"
    origin = scenario["data"]["origin_t"]
    if _num(f.get("t_from")) and _num(f.get("t_to")):
        out["from_s"], out["to_s"] = round(f["t_from"] - origin, 1), round(f["t_to"] - origin, 1)
    return out


def _not_run(plan: Mapping[str, Any] | None, result: Mapping[str, Any]) -> list[str]:
    """Scenario trials the plan asks for that have no entry in result.json (an interrupted run).
    A scenario not applicable to the target has one entry for all its trials: none is missing."""
    if plan is None:
        return []
    done = {(s.get("name"), s.get("trial")) for s in result.get("scenarios") or []}
    skipped = {s.get("name") for s in result.get("scenarios") or [] if s.get("not_applicable")}
    out = []
    for scenario in plan.get("scenarios") or []:
        if scenario.get("name") in skipped:
            continue
        for trial in range(1, int(scenario.get("trials") or 1) + 1):
            if (scenario.get("name"), trial) not in done:
                out.append(f"{scenario.get('name')}#{trial}")
    return out


# --- one scenario --------------------------------------------------------------------------
def _scenario(
    entry: Mapping[str, Any],
    trials: Mapping[tuple[str, int], inputs.Trial],
    plan: Mapping[str, Any] | None,
    trends: Mapping[str, list[dict]] | None,
) -> dict[str, Any]:
    name, trial = str(entry.get("name")), entry.get("trial") or 1
    sid = "s-" + re.sub(r"[^A-Za-z0-9_-]", "-", f"{name}-{trial}")
    files = trials.get((name, int(trial))) or _NO_FILES
    notes: list[str] = []
    metrics = entry.get("metrics") or None
    phases = entry.get("phases") or None
    refused = entry.get("status") == result_model.BASELINE_NOT_STEADY  # its own note says why: no fault
    if metrics is None and not entry.get("not_applicable") and not refused:
        why = entry.get("scoring_error") or entry.get("error")
        notes.append("Not scored" + (f": {why}" if why else "") + ". Cards show what was recorded.")
    markers = _markers(files.markers, notes)
    if phases is None and markers:
        try:
            phases = vars(scoring.phases_from_markers(markers))
        except ValueError:
            phases = None
    series = _series(files.series, notes)
    origin = _origin(entry, markers, series)
    journal = _journal(files.journal, [] if refused else notes, origin)  # refused: no experiment, no journal
    recovery_s = (metrics or {}).get("recovery_time_s")
    data: dict[str, Any] = {"origin_t": origin, "timeline": None, "controlplane": None, "trend": None}
    bands = display.bands(phases, recovery_s, origin, markers)
    marks = display.activity_marks(markers, origin)
    recovered = display.recovery_mark(phases, recovery_s, origin)
    if recovered is not None:
        marks = sorted([*marks, recovered], key=lambda m: m.t_s)
    drawn = sorted([*marks, *display.stage_marks(entry.get("recovery_phases"), origin)], key=lambda m: m.t_s)
    shared = {"bands": [vars(b) for b in bands], "marks": [_mark(m) for m in drawn]}
    points = {}
    if series is not None and len(series):
        observed = (phases["fault_start_t"], phases["end_t"]) if phases else None
        shown = display.display_series(series, origin, thresholds=(metrics or {}).get("thresholds"),
                                       observed=observed)  # fmt: skip
        data["timeline"] = _timeline_json(shown, metrics)
        points = {
            "throughput": len(shown),
            "errors": int((shown.requests_per_s > 0).sum()),
            "latency": int(np.count_nonzero(~np.isnan(shown.latency_ms["p99"]))),
        }
    # Only the fields display.controlplane_display reads reach the page (times, latencies, names,
    # outcomes), never a free-form value.
    cp_records = files.controlplane
    if cp_records:
        cp = display.controlplane_display(cp_records, origin)
        data["controlplane"] = {
            "t": display.plain(cp.t_s, 3),
            "p50": display.plain(cp.p50_ms, 3),
            "p99": display.plain(cp.p99_ms, 3),
            "errors": cp.errors.tolist(),
            "requests": cp.requests.tolist(),
            "marks": [_mark(m) for m in cp.marks],
            "bin_s": cp.bin_s,
        }
        points["controlplane"] = int(cp.t_s.size)
        if cp.skipped:
            notes.append(f"controlplane.jsonl: {cp.skipped} records or events not drawn.")
    data.update(shared)
    trend = _trend((trends or {}).get(name))
    data["trend"] = trend
    plan_scenario = _plan_scenario(plan, name)
    return {
        "id": sid,
        "name": name,
        "trial": trial,
        "label": f"{name}#{trial}",
        "status": entry.get("status"),
        "passed": bool(entry.get("passed")),
        "not_applicable": entry.get("not_applicable"),
        "aborted_by": entry.get("aborted_by"),
        "baseline_check": entry.get("baseline_check"),
        "deviated": entry.get("deviated"),
        "error": entry.get("error"),
        "healed": entry.get("healed") or [],
        "experiment_file": entry.get("experiment"),
        "steady_state": entry.get("steady_state") or {},
        "metrics": metrics,
        "score_class": _score_class((metrics or {}).get("resilience_score")),
        "gates": [_gate(g) for g in entry.get("gates") or []],
        "control_plane": _flat((metrics or {}).get("control_plane")) if metrics else [],
        "phases": phases,
        "recovery_phases": [_stage(p) for p in entry.get("recovery_phases") or []],
        "fault_effect": entry.get("fault_effect"),
        "started": _utc(entry.get("started")),
        "notes": notes,
        "points": points,
        "marks": marks,
        "journal": journal,
        "vars": (plan_scenario or {}).get("vars") or {},
        "trend": trend,
        "data": data,
    }


_NO_FILES = inputs.Trial(
    name="", trial=0, markers=inputs.Missing("markers.jsonl"), series=inputs.Missing("timeline.jsonl"),
    journal=inputs.Missing("journal.json"),
)  # fmt: skip
"""A trial the inputs hold nothing of."""


def _missing(missing: inputs.Missing, absent: str) -> str:
    """The note for a missing file: `absent` when there is none, else why it is unreadable."""
    return absent if missing.problem is None else f"{missing.file} is unreadable: {missing.problem}"


def _markers(markers: list[dict[str, Any]] | inputs.Missing, notes: list[str]) -> list[dict[str, Any]]:
    if isinstance(markers, inputs.Missing):
        notes.append(
            _missing(markers, "No markers.jsonl: windows and activities cannot be placed on the time axis.")
        )
        return []
    return markers


def _series(series: timeline.Series | inputs.Missing, notes: list[str]) -> timeline.Series | None:
    if isinstance(series, inputs.Missing):
        notes.append(_missing(series, "No timeline.jsonl: no load was recorded, so there are no charts."))
        return None
    if not len(series):
        notes.append("timeline.jsonl has no buckets: the load never completed a request.")
    return series


def _origin(entry: Mapping[str, Any], markers: Sequence[Mapping[str, Any]], series: Any) -> float:
    """Seconds on the charts count from the scenario's start (else its first marker or bucket)."""
    if _num(entry.get("started")):
        return float(entry["started"])
    times = [float(m["t"]) for m in markers if _num(m.get("t"))]
    if series is not None and len(series):
        times.append(float(series.t[0]))
    return min(times, default=0.0)


def _timeline_json(shown: display.Display, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    limits = (metrics or {}).get("thresholds") or {}
    return {
        "t": display.plain(shown.t_s, 3),
        "rps": display.plain(shown.requests_per_s, 3),
        "kps": display.plain(shown.kpi_per_s, 3),
        "err": display.plain(shown.error_rate * 100.0, 4),
        "p50": display.plain(shown.latency_ms["p50"], 3),
        "p95": display.plain(shown.latency_ms["p95"], 3),
        "p99": display.plain(shown.latency_ms["p99"], 3),
        "p99a": display.plain(shown.latency_actual_ms["p99"], 3),
        "unhealthy": display.plain(shown.unhealthy, 3),
        "bin_s": shown.buckets_per_point * shown.bucket_s,
        "err_limit": None if limits.get("error_rate") is None else 100.0 * limits["error_rate"],
        "p95_limit": limits.get("p95_ms"),
    }


_STAGE_TITLES = {
    "fault_applied": "fault applied",
    "users_affected": "users affected",
    "detected": "platform detected it",
    "rerouted": "traffic rerouted",
    "users_back": "users back",
    "capacity_restored": "capacity restored",
    "steady": "steady state",
}


def _stage(phase: Mapping[str, Any]) -> dict[str, Any]:
    """A recovery phase as the page lists it."""
    name = str(phase.get("name"))
    return {**phase, "title": _STAGE_TITLES.get(name, name)}


def _mark(m: display.Mark) -> dict[str, Any]:
    return {"kind": m.kind, "t": round(m.t_s, 3), "label": m.label,
            "end": None if m.end_s is None else round(m.end_s, 3), "status": m.status}  # fmt: skip


def _journal(
    journal: inputs.Journal | inputs.Missing, notes: list[str], origin: float
) -> dict[str, Any] | None:
    """What the page shows of the Chaos Toolkit journal."""
    if isinstance(journal, inputs.Missing):
        notes.append(
            "No journal.json: the experiment did not finish, so its activities and steady-state probes are unknown."
            if journal.problem is None
            else f"{journal.file} is unreadable."
        )
        return None

    def steady(state: inputs.SteadyState | None) -> dict[str, Any] | None:
        if state is None:
            return None
        return {"met": state.met, "probes": [_activity(p, origin) for p in state.probes]}

    return {
        "title": journal.title,
        "description": journal.description,
        "tags": journal.tags,
        "status": journal.status,
        "deviated": journal.deviated,
        "duration_s": journal.duration_s,
        "configuration": _flat(journal.configuration),
        "hypothesis": journal.hypothesis,
        "activities": [_activity(a, origin) for a in journal.activities],
        "steady": {"before": steady(journal.before), "after": steady(journal.after)},
    }


def _activity(activity: inputs.Activity, origin: float) -> dict[str, Any]:
    provider = activity.provider
    kind = provider.get("type")
    if kind == "python":
        call = f"{provider.get('module')}.{provider.get('func')}"
    elif kind == "http":
        call = "http " + str(provider.get("url", "")).split("?")[0]
    elif kind == "process":
        call = f"process {provider.get('path')}"
    else:
        call = str(kind or "")
    return {
        "section": activity.section,
        "name": activity.name,
        "type": activity.type,
        "call": call,
        "arguments": _short(provider.get("arguments")) if provider.get("arguments") else "",
        "pauses": activity.pauses,
        "tolerance": _short(activity.tolerance) if activity.has_tolerance else None,
        "tolerance_met": activity.tolerance_met,
        "status": activity.status,
        "at_s": _offset(activity.start, origin),
        "duration_s": activity.duration_s,
        "output": _short(activity.output) if activity.has_output else "",
        "exception": _short(activity.exception) if activity.exception else "",
    }


def _offset(iso: Any, origin: float) -> float | None:
    """Seconds from the scenario's origin of a journal timestamp (ISO 8601; naive means UTC)."""
    try:
        t = dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp() - origin


def _gate(g: Mapping[str, Any]) -> dict[str, Any]:
    """A gate as a card row: the metric, its value and the threshold it is held to."""
    expression = str(g.get("expression", ""))
    metric, limit = expression, ""
    try:
        parsed = gate_lang.parse(expression)
        metric, limit = gate_lang.render(parsed.left), f"{parsed.op} {gate_lang.render(parsed.right)}"
    except HarnessError:
        pass
    return {"expression": expression, "metric": metric, "limit": limit, "value": g.get("value"),
            "passed": bool(g.get("passed")), "reason": g.get("reason")}  # fmt: skip


def _trend(runs: list[dict] | None) -> dict[str, Any] | None:
    """Key metrics over past runs (oldest first, this one included); None with fewer than two."""
    if not runs or len(runs) < 2:
        return None
    out: dict[str, Any] = {"x": [float(r.get("started") or 0.0) for r in runs],
                           "run_ids": [str(r.get("run_id")) for r in runs], "series": []}  # fmt: skip
    for path, label, unit in TREND_METRICS:
        values = [_lookup(r.get("metrics") or {}, path) for r in runs]
        if unit == "%":
            values = [None if v is None else 100.0 * v for v in values]
        out["series"].append({"key": path, "label": label, "unit": unit, "values": values,
                              "points": sum(v is not None for v in values)})  # fmt: skip
    return out


def _lookup(metrics: Mapping[str, Any], path: str) -> float | None:
    """A trend point's metric: the history store keys them by dotted name (`latency_ms.fault.p99`),
    result.json nests them; gates' lookup reads both."""
    value = gate_lang.lookup(metrics, path)
    return float(value) if _num(value) else None


def _plan_scenario(plan: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    if plan is None:
        return None
    return next((s for s in plan.get("scenarios") or [] if s.get("name") == name), None)


# --- small helpers ---------------------------------------------------------------------------
def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(", ", ": "))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _flat(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings as (dotted key, value) rows."""
    if not isinstance(value, Mapping):
        return [] if value is None else [(prefix or "value", value)]
    rows: list[tuple[str, Any]] = []
    for k, v in value.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            rows.extend(_flat(v, key))
        else:
            rows.append((key, v))
    return rows


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _utc(t: Any) -> str | None:
    if not _num(t):
        return None
    return dt.datetime.fromtimestamp(float(t), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _score_class(score: Any) -> str:
    if not _num(score):
        return "none"
    return "good" if score >= 80 else "fair" if score >= 50 else "poor"


def _script_json(data: Any) -> str:
    """JSON safe inside <script type="application/json">: no "</" (ends the element) and no "<!--"."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _static(name: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    if re.search(r"</(script|style)", text, re.IGNORECASE):
        raise ValueError(f"{name} contains a closing script or style tag and cannot be inlined")
    return text


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.ChainableUndefined,  # a scenario without metrics renders "—", not an error
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        seconds=_fmt_seconds,
        pct=_fmt_pct,
        ms=_fmt_ms,
        ms_n=_fmt_ms_number,
        usd=_fmt_usd,
        num=_fmt_num,
        value=_fmt_value,
        duration=_fmt_duration,
        show=_fmt_shown,
        metric=metric_registry.value,
    )
    env.globals.update(cell=_cell)
    return env


def _cell(scenario: Mapping[str, Any], shown: metric_registry.Shown) -> markupsafe.Markup:
    """A scenario's metric in a card or column: formatted (the score coloured by its class), or the
    declared words (marked bad) for a scored scenario whose value is null."""
    metrics = scenario.get("metrics")
    value = metric_registry.value(metrics, shown.metric)
    if metrics and value is None and shown.null_text:
        return markupsafe.Markup('<span class="bad">{}</span>').format(shown.null_text)
    text = _fmt_shown(value, shown)
    if shown.metric == metric_registry.SCORE.metric:
        return markupsafe.Markup('<span class="score {}">{}</span>').format(scenario.get("score_class"), text)
    return markupsafe.escape(text)


def _fmt_shown(value: Any, shown: metric_registry.Shown) -> str:
    """A value as the registry's `shown` declares: its format, digits and suffix."""
    fmt = FORMATS[shown.format]
    return (fmt(value) if shown.digits is None else fmt(value, shown.digits)) + shown.suffix


def _fmt_seconds(value: Any) -> str:
    return "—" if not _num(value) else f"{value:.1f} s" if value < 120 else _fmt_duration(value)


def _fmt_duration(value: Any) -> str:
    if not _num(value):
        return "—"
    seconds = round(float(value))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{value:.1f} s"


def _fmt_pct(value: Any, digits: int = 2) -> str:
    return "—" if not _num(value) else f"{100.0 * value:.{digits}f} %"


def _fmt_ms(value: Any) -> str:
    if not _num(value):
        return "—"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _fmt_ms_number(value: Any) -> str:
    """Milliseconds without the unit, for tables whose header names it."""
    return "—" if not _num(value) else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _fmt_usd(value: Any) -> str:
    return "—" if not _num(value) else f"${value:,.2f}" if value < 100 else f"${value:,.0f}"


def _fmt_num(value: Any, digits: int = 0) -> str:
    return "—" if not _num(value) else f"{value:,.{digits}f}"


def _fmt_value(value: Any) -> str:
    """A metric or configuration value of any type, short."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return _short(value)


FORMATS: dict[str, Callable[..., str]] = {
    "seconds": _fmt_seconds,
    "ms": _fmt_ms,
    "ms_n": _fmt_ms_number,
    "pct": _fmt_pct,
    "usd": _fmt_usd,
    "num": _fmt_num,
}
"""The registry's formats (harness.result.metrics.FORMATS) as the page writes them; those taking
digits are given a place's `digits` when it declares them."""
