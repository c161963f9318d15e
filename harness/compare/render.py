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


def median_text(summary: stats.Summary, null_means: str | None, unit: Unit) -> str:
    """The median as a reader should take it: a number, a lower bound, or what null means."""
    if summary.n == 0:
        return "no trials"
    if summary.median_censored:
        return null_means or "—"
    if summary.median is None:
        return "—"
    prefix = "≥ " if summary.median_is_bound else ""
    return prefix + format_value(summary.median, unit)


def interval_text(summary: stats.Summary, unit: Unit) -> str:
    if not summary.has_interval:
        return ""  # one trial: the counts say n=1, the verdict says too few
    if summary.ci_method == "censored":
        return "[∞]"
    return f"[{format_value(summary.ci_low, unit)}, {format_value(summary.ci_high, unit)}]"


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
    text = format_diff(comparison.diff, unit)
    if comparison.relative is not None and unit is not Unit.FRACTION and comparison.diff:
        text += f" ({100 * comparison.relative:+.0f} %)"
    return text


def direction_text(metric: MetricComparison) -> str:
    return f"{metric.spec.better.value} is better"


# --- verdict lines ------------------------------------------------------------------------


def verdict_line(scenario: ScenarioComparison, label: str) -> str:
    """One side's outcome on one scenario in a sentence: which metrics got better or worse."""
    grouped = scenario.verdicts(label)
    parts: list[str] = []
    for verdict in (stats.Verdict.BETTER, stats.Verdict.WORSE):
        if grouped.get(verdict):
            parts.append(f"{verdict.words} on {', '.join(m.name for m in grouped[verdict])}")
    if grouped.get(stats.Verdict.NO_DIFFERENCE):
        count = len(grouped[stats.Verdict.NO_DIFFERENCE])
        parts.append(f"no significant difference on {count} metric{'s' if count != 1 else ''}")
    if grouped.get(stats.Verdict.TOO_FEW):
        reasons = dict.fromkeys(m.comparisons[label].reason for m in grouped[stats.Verdict.TOO_FEW])
        parts.append("; ".join(reasons))
    if grouped.get(stats.Verdict.NO_DATA):
        parts.append(f"no data for {', '.join(m.name for m in grouped[stats.Verdict.NO_DATA])}")
    return "; ".join(parts) or "no metrics compared"


# --- Markdown -----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: ComparisonReport) -> str:
    """compare.md: sides, warnings, and per scenario a verdict line per side and a compact table."""
    others = report.labels[1:]
    lines = [
        f"# Comparison: {', '.join(f'**{_cell(o)}**' for o in others)} against **{_cell(report.baseline)}**",
        "",
        f"Medians over trials with {100 * report.confidence:g} % bootstrap intervals; each side against "
        f"the baseline by a two-sided Mann-Whitney U test at alpha = {report.alpha:g}. The exact test "
        f"needs at least {report.min_trials} trials per side to reach p < {report.alpha:g}.",
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
    if report.thresholds:
        lines += ["", "**Health thresholds**", ""]
        lines += [f"- {_cell(s.line)}" for s in report.thresholds]
    for scenario in report.scenarios:
        lines += ["", f"## {scenario.name}", ""]
        trials = ", ".join(f"{_cell(label)}: {scenario.trials[label]}" for label in scenario.labels)
        lines.append(f"Trials: {trials}.")
        lines.append("")
        for label in scenario.labels[1:]:
            lines.append(
                f"- **{_cell(label)}** vs {_cell(scenario.labels[0])}: {_cell(verdict_line(scenario, label))}"
            )
        lines.append("")
        header = ["metric", *(_cell(label) for label in scenario.labels)]
        for label in scenario.labels[1:]:
            suffix = f" ({_cell(label)})" if len(scenario.labels) > 2 else ""
            header += [f"difference{suffix}", f"p{suffix}", f"verdict{suffix}"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append(
            "| --- | " + " | ".join("---" if h.startswith("verdict") else "---:" for h in header[1:]) + " |"
        )
        for metric in scenario.metrics:
            unit = metric.spec.unit
            row = [f"{metric.name} ({direction_text(metric)})"]
            for label in scenario.labels:
                summary = metric.summaries[label]
                interval = interval_text(summary, unit)
                text = median_text(summary, metric.spec.null_means, unit)
                row.append(" ".join(t for t in (text, interval, f"({counts_text(metric, label)})") if t))
            for label in scenario.labels[1:]:
                comparison = metric.comparisons[label]
                verdict = comparison.verdict
                words = (
                    f"**{verdict.words}**"
                    if verdict in (stats.Verdict.BETTER, stats.Verdict.WORSE)
                    else verdict.words
                )
                row += [diff_text(comparison, unit), format_p(comparison.p_value), words]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines += ["", "How to read this: docs/compare.md.", ""]
    return "\n".join(lines)


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
            x1 = x_of(s.ci_low) if s.ci_low is not None else g.censored_x
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
                    "direction": direction_text(metric),
                    "sides": [
                        {
                            "label": label,
                            "median": median_text(metric.summaries[label], metric.spec.null_means, unit),
                            "interval": interval_text(metric.summaries[label], unit),
                            "counts": counts_text(metric, label),
                        }
                        for label in scenario.labels
                    ],
                    "comparisons": [
                        {
                            "label": label,
                            "diff": diff_text(metric.comparisons[label], unit),
                            "p": format_p(metric.comparisons[label].p_value),
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
    )


def write_comparison(report: ComparisonReport, out_dir: Path) -> tuple[Path, Path]:
    """Write compare.html and compare.md into out_dir (atomically); returns their paths."""
    html_path, md_path = Path(out_dir) / "compare.html", Path(out_dir) / "compare.md"
    rundir.write_text(html_path, render_html(report))
    rundir.write_text(md_path, render_markdown(report))
    return html_path, md_path
