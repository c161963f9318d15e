"""compare.md and compare.html: what a reviewer reads in a pull request and what prints offline."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.compare import render, runs
from tests.compare import metrics, write_run


@pytest.fixture
def report(tmp_path: Path) -> runs.ComparisonReport:
    """Self-managed against EKS, interleaved in two batches (one run of each per batch), 5 trials a
    side on replica-kill (one self-managed trial unrecovered), 3 on node-crash."""
    sm1 = write_run(
        tmp_path / "sm1",
        {
            "replica-kill": [metrics(recovery_time_s=v, error_rate=0.04) for v in (30.0, 34.0, None)],
            "node-crash": [metrics(resilience_score=60.0)] * 3,
        },
        target={"kind": "testbed", "profile": "self-managed"},
        batch="b1",
    )
    sm2 = write_run(
        tmp_path / "sm2",
        {"replica-kill": [metrics(recovery_time_s=v, error_rate=0.05) for v in (29.0, 31.0)]},
        target={"kind": "testbed", "profile": "self-managed"},
        plan_scenarios=["replica-kill", "node-crash"],
        batch="b2",
    )
    eks = write_run(
        tmp_path / "eks",
        {
            "replica-kill": [metrics(recovery_time_s=v, error_rate=0.04) for v in (8.0, 9.0, 10.0)],
            "node-crash": [metrics(resilience_score=60.0)] * 3,
            "zone-partition": [metrics()],
        },
        target={"kind": "kubernetes", "context": "eks-staging"},
        load={"users": 40},
        batch="b1",
    )
    eks2 = write_run(
        tmp_path / "eks2",
        {"replica-kill": [metrics(recovery_time_s=v, error_rate=0.04) for v in (8.5, 9.5)]},
        target={"kind": "kubernetes", "context": "eks-staging"},
        load={"users": 40},
        plan_scenarios=["replica-kill", "node-crash", "zone-partition"],
        batch="b2",
    )
    return runs.compare_runs([], {"self-managed": [sm1, sm2], "eks <new>": [eks, eks2]})


class _Structure(HTMLParser):
    """Collects the elements with data attributes, and every attribute value that is a URL."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, str | None]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if any(name.startswith("data-") for name, _ in attrs):
            self.elements.append({"tag": tag, **dict(attrs)})


def parse(html: str) -> _Structure:
    parser = _Structure()
    parser.feed(html)
    return parser


class TestMarkdown:
    def test_verdict_line_and_table_row(self, report: runs.ComparisonReport) -> None:
        """Each scenario has a verdict line per side and a table row per metric with median and p."""
        text = render.render_markdown(report)
        assert "## replica-kill" in text
        assert "- **eks <new>** vs self-managed: better on recovery_time_s" in text
        recovery = next(line for line in text.splitlines() if line.startswith("| recovery_time_s"))
        cells = [c.strip() for c in recovery.strip("|").split("|")]
        assert cells[0] == "recovery_time_s (lower is better) **primary**"
        assert cells[1].startswith("31.0 s [29.0 s, ∞] 93.8 %") and "n=5, 1 did not recover" in cells[1]
        assert "run medians: 34.0 s, 30.0 s" in cells[1]
        assert cells[2].startswith("9.00 s [8.00 s, 10.0 s] 93.8 %")
        assert cells[3] == "-22.0 s (-71 %)"
        assert cells[4].startswith("-22.0 s [") and cells[4].endswith("%")
        assert cells[5] == "0.033 (raw 0.017)"  # stratified by batch, Bonferroni over 2 comparisons
        assert cells[6] == "**better**"

    def test_too_few_trials_is_said(self, report: runs.ComparisonReport) -> None:
        """3 vs 3 trials: the verdict names the trials needed instead of 'no difference'."""
        text = render.render_markdown(report)
        node_crash = text.split("## node-crash", 1)[1]
        assert "too few trials (3 vs 3): need at least 5 per side for p < 0.025" in node_crash
        assert "no significant difference" not in node_crash

    def test_warnings_and_sides(self, report: runs.ComparisonReport) -> None:
        """The sides table lists pooled runs; warnings list one-sided scenarios and unfair plans."""
        text = render.render_markdown(report)
        assert (
            "| **self-managed** (baseline) | `20261127T053921Z-local-gameday-sm1`, `20261127T053921Z-local-gameday-sm2`"
            in text
        )
        assert "'zone-partition' is only in eks <new>" in text
        assert "load.users: 20" in text
        assert "at least 5 trials per side to reach p < 0.025" in text
        assert "shared by the page's 2 comparisons" in text

    def test_pipe_in_a_label_does_not_break_the_table(self, tmp_path: Path) -> None:
        """A label with '|' is escaped, so every table row keeps its column count."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()] * 4})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()] * 4})
        text = render.render_markdown(runs.compare_runs([], {"a|b": [a], "c": [b]}))
        rows = [line for line in text.split("## replica-kill")[1].splitlines() if line.startswith("| ")]
        counts = {len(re.split(r"(?<!\\)\|", line)) for line in rows}
        assert len(counts) == 1

    def test_same_runs_give_the_same_text(self, report: runs.ComparisonReport, tmp_path: Path) -> None:
        """Exact methods (and a fixed seed where Monte Carlo is used) make the report reproducible byte for byte."""
        again = runs.compare_runs(
            [],
            {
                "self-managed": [tmp_path / "sm1", tmp_path / "sm2"],
                "eks <new>": [tmp_path / "eks", tmp_path / "eks2"],
            },
        )
        assert render.render_markdown(again) == render.render_markdown(report)
        assert render.render_html(again) == render.render_html(report)


class TestHtml:
    def test_self_contained(self, report: runs.ComparisonReport) -> None:
        """No URL, script, stylesheet link or image source: the page works offline and prints."""
        html = render.render_html(report)
        assert not re.search(r"https?://", html)
        structure = parse(html)
        assert not structure.tags & {"script", "link", "img", "iframe"}
        assert "<style>" in html

    def test_rows_carry_metric_and_verdict(self, report: runs.ComparisonReport) -> None:
        """Each metric row and verdict cell is marked with data attributes; verdicts are in words."""
        html = render.render_html(report)
        elements = parse(html).elements
        scenarios = [e["data-scenario"] for e in elements if "data-scenario" in e]
        assert scenarios == ["replica-kill", "node-crash"]
        verdicts = {
            (e["data-label"], e["data-verdict"]) for e in elements if e["tag"] == "td" and "data-verdict" in e
        }
        assert ("eks <new>", "better") in verdicts
        assert ("eks <new>", "too-few-trials") in verdicts
        assert re.search(r'<span class="verdict v-better" title="[^"]+">better</span><br>', html)
        # the too-few reason is said once per scenario, not again in every row (it is the tooltip)
        assert re.search(
            r'<span class="verdict v-too-few-trials" title="too few trials[^"]*">too few trials</span></td>',
            html,
        )

    def test_labels_are_escaped(self, report: runs.ComparisonReport) -> None:
        """A label is text, never markup."""
        html = render.render_html(report)
        assert "eks &lt;new&gt;" in html
        assert "<new>" not in html

    def test_dot_plot_per_metric(self, report: runs.ComparisonReport) -> None:
        """Each row has an SVG with a dot per trial, a median tick and interval per side."""
        html = render.render_html(report)
        section = html.split('data-scenario="replica-kill"', 1)[1].split("</section>", 1)[0]
        plots = re.findall(r'<svg class="dotplot" data-metric="recovery_time_s".*?</svg>', section, re.S)
        assert len(plots) == 1
        plot = plots[0]
        # Self-managed: 4 recovered dots and 1 cross for the trial that did not recover; EKS: 5 dots.
        assert plot.count('class="dot"') == 9
        assert plot.count('class="censored-dot"') == 1
        assert plot.count('class="median"') == 2
        assert plot.count('data-ci="1"') == 2
        assert "did not recover" in plot
        elements = parse(section).elements
        rows = [e["data-metric"] for e in elements if e["tag"] == "tr"]
        assert rows == [e["data-metric"] for e in elements if e["tag"] == "svg"]
        assert rows == list(report.metrics)

    def test_write_comparison(self, report: runs.ComparisonReport, tmp_path: Path) -> None:
        """compare.html and compare.md are written into the folder asked for."""
        html_path, md_path = render.write_comparison(report, tmp_path / "out")
        assert (html_path.name, md_path.name) == ("compare.html", "compare.md")
        assert md_path.read_text() == render.render_markdown(report)
        assert html_path.read_text().startswith("<!doctype html>")


class TestFormatting:
    @pytest.mark.parametrize(
        ("value", "unit", "text"),
        [
            (0.0123, runs.Unit.FRACTION, "1.23 %"),
            (12.345, runs.Unit.SECONDS, "12.3 s"),
            (1234.5, runs.Unit.USD, "$1,234"),
            (3.0, runs.Unit.COUNT, "3"),
            (None, runs.Unit.SECONDS, "∞"),
        ],
    )
    def test_values(self, value: float | None, unit: runs.Unit, text: str) -> None:
        """Values read in their unit; a missing interval bound reads as unbounded."""
        assert render.format_value(value, unit) == text

    def test_fraction_difference_in_points(self) -> None:
        """A difference of two rates is in percentage points, not percent."""
        assert render.format_diff(-0.015, runs.Unit.FRACTION) == "-1.50 pp"
