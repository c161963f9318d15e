"""A ComparisonReport as text: compare.md for a pull-request comment, compare.html to read and print.

Values in, text out; `write_comparison` is the only function that touches files. The HTML is
one self-contained file (inline CSS, inline SVG drawn here, no script, no network), so it
opens from an artifact store or an e-mail and prints as it looks. Every verdict is written in
words next to its colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from harness.compare import stats
from harness.compare.runs import ComparisonReport, MetricComparison, ScenarioComparison, Unit
from harness.store import rundir

TEMPLATES = Path(__file__).parent / "templates"

# --- numbers ------------------------------------------------------------------------------


def format_value(value: float | None, unit: Unit) -> str:
    """A metric value with its unit, at the precision result.json rounds to."""
    if value is None:
        return "∞"  # an interval bound beyond everything observed
    if unit is Unit.SECONDS:
        return f"{value:.2f} s" if abs(value) < 10 else f"{value:.1f} s"
    if unit is Unit.MS:
        return f"{value:.1f} ms" if abs(value) < 100 else f"{value:.0f} ms"
    if unit is Unit.FRACTION:
        return f"{100 * value:.2f} %"
    if unit is Unit.USD:
        return f"${value:,.2f}" if abs(value) < 10 else f"${value:,.0f}"
    if unit is Unit.COUNT and float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.1f}"


def format_diff(value: float | None, unit: Unit) -> str:
    """A signed difference; fractions in percentage points, which a relative change is not."""
    if value is None:
        return "—"
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    if unit is Unit.FRACTION:
        return f"{sign}{100 * abs(value):.2f} pp"
    return sign + format_value(abs(value), unit)


def format_p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.3f}" if p >= 0.001 else "< 0.001"


def format_level(level: float | None) -> str:
    """An interval's true level: 93.8 %, not the 95 % asked for."""
    return "" if level is None else f"{100 * level:.1f} %"


def _bound(value: float | None, unit: Unit, low: bool) -> str:
    if value is None:
        return "-∞" if low else "∞"
    return format_value(value, unit)


def median_text(summary: stats.Summary, null_means: str | None, unit: Unit) -> str:
    """The median as a reader should take it: a number, a bound, or what null means."""
    if summary.n == 0:
        return "no trials"
    if summary.median_censored:
        return null_means or "—"
    if summary.median is None:
        return "—"
    prefix = ("≤ " if summary.censored_low else "≥ ") if summary.median_is_bound else ""
    return prefix + format_value(summary.median, unit)


def interval_text(summary: stats.Summary, unit: Unit) -> str:
    """The order-statistic interval of the median with its true level."""
    if not summary.has_interval:
        return ""  # one trial: the counts say n=1, the verdict says too few
    if summary.ci_method == "censored":
        return "[-∞]" if summary.censored_low else "[∞]"
    low, high = _bound(summary.ci_low, unit, True), _bound(summary.ci_high, unit, False)
    return f"[{low}, {high}] {format_level(summary.ci_level)}"


def runs_text(metric: MetricComparison, label: str) -> str:
    """The spread between a side's runs: each run's median, when the side has several."""
    medians = metric.run_medians.get(label) or {}
    if len(medians) < 2:
        return ""
    unit = metric.spec.unit
    words = metric.spec.null_means or "∞"
    shown = [format_value(v, unit) if math.isfinite(v) else words for v in medians.values()]
    return f"run medians: {', '.join(shown)}"


def counts_text(metric: MetricComparison, label: str) -> str:
    """n, and what was left out or censored, so that few or partial data is visible."""
    summary = metric.summaries[label]
    parts = [f"n={summary.n}"]
    if summary.censored:
        parts.append(f"{summary.censored} {metric.spec.null_means}")
    if metric.missing.get(label):
        parts.append(f"{metric.missing[label]} without value")
    return ", ".join(parts)


def diff_text(comparison: stats.Comparison, unit: Unit) -> str:
    """The difference of medians, and relative to the baseline's."""
    text = format_diff(comparison.diff, unit)
    if comparison.relative is not None and unit is not Unit.FRACTION and comparison.diff:
        text += f" ({100 * comparison.relative:+.0f} %)"
    return text


def shift_text(comparison: stats.Comparison, unit: Unit) -> str:
    """The Hodges-Lehmann shift with its Moses interval and that interval's true level."""
    shift = comparison.shift
    if shift.estimate is None and shift.low is None and shift.high is None:
        return "—"
    text = format_diff(shift.estimate, unit) if shift.estimate is not None else "beyond measured"
    if shift.level is not None:
        low = "-∞" if shift.low is None else format_diff(shift.low, unit)
        high = "∞" if shift.high is None else format_diff(shift.high, unit)
        text += f" [{low}, {high}] {format_level(shift.level)}"
    return text


def p_text(comparison: stats.Comparison) -> str:
    """The adjusted p-value, and the raw one when they differ."""
    if comparison.p_value is None:
        return "—"
    if comparison.p_adjusted is None or format_p(comparison.p_adjusted) == format_p(comparison.p_value):
        return format_p(comparison.p_value)
    return f"{format_p(comparison.p_adjusted)} (raw {format_p(comparison.p_value)})"


def verdict_note(comparison: stats.Comparison) -> str:
    """Why a comparison is inconclusive or equivalent, in a few words, and what would decide it."""
    if comparison.verdict is stats.Verdict.EQUIVALENT:
        return f"interval within ±{comparison.margin:g}"
    if comparison.verdict is not stats.Verdict.INCONCLUSIVE:
        return ""
    if "not judged" in comparison.reason:
        note = "judged only after the primary metric differs"
    elif comparison.margin is None:
        note = "no margin to test equivalence against"
    else:
        note = f"interval reaches beyond ±{comparison.margin:g}"
    if comparison.needed_for:
        note += f"; {needed_text(comparison)}"
    return note


def needed_text(comparison: stats.Comparison) -> str:
    """Trials a side that would find the margin (or one spread) with 80 % power, and what for."""
    if not comparison.needed_for:
        return "—"
    count = f"{comparison.trials_needed}" if comparison.trials_needed is not None else "over 1,000"
    return f"{count} {comparison.units.split(',')[0].replace('trials of one run', 'trials')} a side for {comparison.needed_for}"


def direction_text(metric: MetricComparison) -> str:
    return f"{metric.spec.better.value} is better"


# --- verdict lines ------------------------------------------------------------------------


def verdict_line(scenario: ScenarioComparison, label: str) -> str:
    """One side's outcome on one scenario in a sentence: which metrics got better or worse."""
    grouped = scenario.verdicts(label)
    parts: list[str] = []
    for verdict in (stats.Verdict.BETTER, stats.Verdict.WORSE, stats.Verdict.EQUIVALENT):
        if grouped.get(verdict):
            parts.append(f"{verdict.words} on {', '.join(m.name for m in grouped[verdict])}")
    if grouped.get(stats.Verdict.INCONCLUSIVE):
        count = len(grouped[stats.Verdict.INCONCLUSIVE])
        parts.append(f"inconclusive on {count} metric{'s' if count != 1 else ''}")
    for verdict in (stats.Verdict.TOO_FEW, stats.Verdict.NO_VERDICT):
        if grouped.get(verdict):
            reasons = dict.fromkeys(m.comparisons[label].reason for m in grouped[verdict])
            prefix = "no verdict: " if verdict is stats.Verdict.NO_VERDICT else ""
            parts.append(prefix + "; ".join(reasons))
    if grouped.get(stats.Verdict.NO_DATA):
        parts.append(f"no data for {', '.join(m.name for m in grouped[stats.Verdict.NO_DATA])}")
    return "; ".join(parts) or "no metrics compared"


# --- Markdown -----------------------------------------------------------------------------


def not_applicable_lines(scenario: ScenarioComparison) -> list[tuple[str, str]]:
    """Per side where the scenario did not apply, what it says instead of a verdict."""
    return [
        (label, f"not applicable ({reason}); not run there, so no verdict")
        for label, reason in scenario.not_applicable.items()
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def findings_lines(report: ComparisonReport) -> list[str]:
    """compare.md's table of findings that differ between the sides (docs/findings.md)."""
    if not report.findings:
        return []
    labels = report.labels
    lines = [
        "",
        "**Findings that differ between the sides**",
        "",
        "| scenario | finding | severity | " + " | ".join(_cell(label) for label in labels) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in labels) + " |",
    ]
    for d in report.findings:
        shares = " | ".join(d.share_text(label) for label in labels)
        lines.append(
            f"| {_cell(d.scenario or 'run')} | {_cell(d.title)} `{d.id}` | {d.severity} | {shares} |"
        )
    return lines


def render_markdown(report: ComparisonReport) -> str:
    """compare.md: sides, warnings, and per scenario a verdict line per side and a compact table."""
    others = report.labels[1:]
    lines = [
        f"# Comparison: {', '.join(f'**{_cell(o)}**' for o in others)} against **{_cell(report.baseline)}**",
        "",
        intro_text(report),
        "",
        "| side | runs | target | plan |",
        "| --- | --- | --- | --- |",
    ]
    for index, side in enumerate(report.sides):
        name = f"**{_cell(side.label)}**" + (" (baseline)" if index == 0 else "")
        runs = ", ".join(f"`{run.run_id}`" for run in side.runs)
        targets = ", ".join(dict.fromkeys(run.target for run in side.runs))
        plans = ", ".join(dict.fromkeys(run.plan_name for run in side.runs))
        lines.append(f"| {name} | {runs} | {_cell(targets)} | {_cell(plans)} |")
    if report.warnings:
        lines += ["", "**Warnings**", ""]
        lines += [f"- {_cell(w)}" for w in report.warnings]
    lines += findings_lines(report)
    if report.thresholds:
        lines += ["", "**Health thresholds**", ""]
        lines += [f"- {_cell(s.line)}" for s in report.thresholds]
    for scenario in report.scenarios:
        lines += ["", f"## {scenario.name}", ""]
        if scenario.labels:
            trials = ", ".join(f"{_cell(label)}: {scenario.trials[label]}" for label in scenario.labels)
            lines.append(f"Trials: {trials}.")
            lines.append("")
        for label in scenario.labels[1:]:
            lines.append(
                f"- **{_cell(label)}** vs {_cell(scenario.labels[0])}: {_cell(verdict_line(scenario, label))}"
            )
        for label, line in not_applicable_lines(scenario):
            lines.append(f"- **{_cell(label)}**: {_cell(line)}")
        lines.append("")
        if not scenario.metrics:
            continue
        header = ["metric", *(_cell(label) for label in scenario.labels)]
        for label in scenario.labels[1:]:
            suffix = f" ({_cell(label)})" if len(scenario.labels) > 2 else ""
            header += [f"difference{suffix}", f"shift{suffix}", f"p{suffix}", f"verdict{suffix}"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append(
            "| --- | " + " | ".join("---" if h.startswith("verdict") else "---:" for h in header[1:]) + " |"
        )
        for metric in scenario.metrics:
            unit = metric.spec.unit
            primary = " **primary**" if metric.primary else ""
            row = [f"{metric.name} ({direction_text(metric)}){primary}"]
            for label in scenario.labels:
                summary = metric.summaries[label]
                interval = interval_text(summary, unit)
                text = median_text(summary, metric.spec.null_means, unit)
                counts = "; ".join(t for t in (counts_text(metric, label), runs_text(metric, label)) if t)
                row.append(" ".join(t for t in (text, interval, f"({counts})") if t))
            for label in scenario.labels[1:]:
                comparison = metric.comparisons[label]
                verdict = comparison.verdict
                words = (
                    f"**{verdict.words}**"
                    if verdict in (stats.Verdict.BETTER, stats.Verdict.WORSE)
                    else verdict.words
                )
                if verdict_note(comparison):
                    words += f" ({verdict_note(comparison)})"
                row += [diff_text(comparison, unit), shift_text(comparison, unit), p_text(comparison), words]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines += ["", "How to read this: docs/compare.md.", ""]
    return "\n".join(lines)


def intro_text(report: ComparisonReport) -> str:
    """What the numbers are and how the page keeps its false claims under alpha, in a paragraph."""
    correction = "Holm" if report.correction == stats.Correction.HOLM else "Benjamini-Hochberg"
    share = (
        f"alpha = {report.alpha:g} is shared by the page's {report.comparisons} comparisons "
        f"(Bonferroni: {report.level:.3g} each); "
        if report.comparisons > 1
        else f"alpha = {report.alpha:g}; "
    )
    return (
        f"Medians with exact order-statistic intervals (their true level shown; {100 * report.confidence:g} % "
        "asked). Each side against the baseline: the Hodges-Lehmann shift with its exact interval, and an "
        f"exact rank-sum permutation test (stratified by batch when runs were interleaved). {share}"
        f"each scenario's primary metric is tested first, the others only if it differed, under {correction}. "
        f"The exact test needs at least {report.min_trials} trials per side to reach p < {report.level:.3g}. "
        "Without a difference the verdict is inconclusive unless the shift's interval lies within the "
        "plan's margin (equivalent)."
    )


# --- SVG dot plots ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Geometry:
    width: int = 340
    left: int = 22
    right: int = 250
    censored_x: int = 296
    row: int = 20
    axis: int = 26


def _num(value: float) -> str:
    return f"{value:.1f}"


def _stack(x: float, taken: dict[int, int]) -> float:
    """A vertical offset for a dot whose position another dot already holds, so both show."""
    key = round(x)
    count = taken.get(key, 0)
    taken[key] = count + 1
    step = (count + 1) // 2 % 3 * 3.0  # 0, ±3, ±6, then round again: a row is 20 px high
    return -step if count % 2 else step


def dot_plot(metric: MetricComparison, letters: dict[str, str]) -> Markup:
    """Each trial a dot, the median a tick, the interval a bar, one row per side; plain SVG."""
    g = _Geometry()
    unit = metric.spec.unit
    labels = list(metric.summaries)
    finite = [
        v
        for s in metric.summaries.values()
        for v in (*s.measured, s.ci_low, s.ci_high, s.median)
        if v is not None and math.isfinite(v)
    ]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad

    def x_of(value: float) -> float:
        return g.left + (value - lo) / (hi - lo) * (g.right - g.left)

    any_censored = any(s.censored for s in metric.summaries.values())
    height = g.row * len(labels) + g.axis
    parts = [
        f'<svg class="dotplot" data-metric="{escape(metric.name)}" width="{g.width}" height="{height}" '
        f'viewBox="0 0 {g.width} {height}" role="img" '
        f'aria-label="{escape(metric.name)}: trials, median and interval per side">'
    ]
    for index, label in enumerate(labels):
        s = metric.summaries[label]
        y = index * g.row + g.row / 2
        title = (
            f"{label}: median {median_text(s, metric.spec.null_means, unit)} "
            f"{interval_text(s, unit)} ({counts_text(metric, label)})"
        )
        parts.append(f'<g class="side" data-label="{escape(label)}"><title>{escape(title)}</title>')
        parts.append(
            f'<text x="2" y="{_num(y + 4)}" class="letter">{escape(letters.get(label, "?"))}</text>'
            f'<line x1="{g.left}" y1="{_num(y)}" x2="{g.right}" y2="{_num(y)}" class="guide"/>'
        )
        if s.has_interval and s.ci_method != "censored":
            x1 = x_of(s.ci_low) if s.ci_low is not None else (g.left if s.censored_low else g.censored_x)
            x2 = x_of(s.ci_high) if s.ci_high is not None else g.censored_x
            parts.append(
                f'<line x1="{_num(x1)}" y1="{_num(y)}" x2="{_num(x2)}" y2="{_num(y)}" class="ci" data-ci="1"/>'
            )
        taken: dict[int, int] = {}
        for value in s.measured:
            x = x_of(value)
            parts.append(f'<circle cx="{_num(x)}" cy="{_num(y + _stack(x, taken))}" r="3" class="dot"/>')
        for _ in range(s.censored):
            x = float(g.censored_x)
            dy = y + _stack(x, taken)
            parts.append(
                f'<path d="M{_num(x - 3)} {_num(dy - 3)}L{_num(x + 3)} {_num(dy + 3)}'
                f'M{_num(x - 3)} {_num(dy + 3)}L{_num(x + 3)} {_num(dy - 3)}" class="censored-dot"/>'
            )
        if s.median_censored or s.median is not None:
            x = g.censored_x if s.median_censored else x_of(s.median or 0.0)
            parts.append(
                f'<line x1="{_num(x)}" y1="{_num(y - 7)}" x2="{_num(x)}" y2="{_num(y + 7)}" class="median"/>'
            )
        parts.append("</g>")
    axis_y = g.row * len(labels) + 4
    parts.append(
        f'<line x1="{g.left}" y1="{axis_y}" x2="{g.right}" y2="{axis_y}" class="axis"/>'
        f'<text x="{g.left}" y="{axis_y + 14}" class="tick">{escape(format_value(lo, unit))}</text>'
        f'<text x="{g.right}" y="{axis_y + 14}" class="tick" text-anchor="end">'
        f"{escape(format_value(hi, unit))}</text>"
    )
    if any_censored:
        parts.append(
            f'<line x1="{g.right + 12}" y1="0" x2="{g.right + 12}" y2="{axis_y}" class="separator"/>'
            f'<text x="{g.censored_x}" y="{axis_y + 14}" class="tick" text-anchor="middle">'
            f"{escape(metric.spec.null_means or '')}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# --- HTML ---------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _letters(report: ComparisonReport) -> dict[str, str]:
    """Short names for plot rows: A for the baseline, then B, C… (AA… past Z)."""
    letters: dict[str, str] = {}
    for index, label in enumerate(report.labels):
        name, n = "", index
        while True:
            name = chr(ord("A") + n % 26) + name
            n = n // 26 - 1
            if n < 0:
                break
        letters[label] = name
    return letters


def render_html(report: ComparisonReport) -> str:
    """compare.html: one self-contained page, a table and dot plots per scenario."""
    letters = _letters(report)
    scenarios = []
    for scenario in report.scenarios:
        rows = []
        for metric in scenario.metrics:
            unit = metric.spec.unit
            rows.append(
                {
                    "name": metric.name,
                    "primary": metric.primary,
                    "direction": direction_text(metric),
                    "sides": [
                        {
                            "label": label,
                            "median": median_text(metric.summaries[label], metric.spec.null_means, unit),
                            "interval": interval_text(metric.summaries[label], unit),
                            "counts": counts_text(metric, label),
                            "runs": runs_text(metric, label),
                        }
                        for label in scenario.labels
                    ],
                    "comparisons": [
                        {
                            "label": label,
                            "diff": diff_text(metric.comparisons[label], unit),
                            "shift": shift_text(metric.comparisons[label], unit),
                            "p": p_text(metric.comparisons[label]),
                            "adjustment": metric.comparisons[label].adjustment,
                            "units": metric.comparisons[label].units,
                            "needed": needed_text(metric.comparisons[label]),
                            "note": verdict_note(metric.comparisons[label]),
                            "verdict": metric.comparisons[label].verdict.value,
                            "words": metric.comparisons[label].verdict.words,
                            "reason": metric.comparisons[label].reason,
                        }
                        for label in scenario.labels[1:]
                    ],
                    "plot": dot_plot(metric, letters),
                }
            )
        scenarios.append(
            {
                "name": scenario.name,
                "labels": scenario.labels,
                "trials": scenario.trials,
                "lines": [(label, verdict_line(scenario, label)) for label in scenario.labels[1:]],
                "not_applicable": not_applicable_lines(scenario),
                "rows": rows,
            }
        )
    template = _environment().get_template("compare.html.j2")
    return template.render(
        report=report,
        letters=letters,
        scenarios=scenarios,
        confidence_pct=f"{100 * report.confidence:g}",
        alpha=f"{report.alpha:g}",
        intro=intro_text(report),
    )


def write_comparison(report: ComparisonReport, out_dir: Path) -> tuple[Path, Path]:
    """Write compare.html and compare.md into out_dir (atomically); returns their paths."""
    html_path, md_path = Path(out_dir) / "compare.html", Path(out_dir) / "compare.md"
    rundir.write_text(html_path, render_html(report))
    rundir.write_text(md_path, render_markdown(report))
    return html_path, md_path
