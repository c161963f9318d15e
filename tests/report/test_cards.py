"""The report's cards and tables and summary.md's columns show the metrics the registry declares for them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from harness.report import html as report
from harness.report import markdown
from harness.result import files as result_files
from harness.result import metrics as registry
from harness.store import runview
from tests.report.conftest import Spec, build_run


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return build_run(tmp_path, [Spec("kill"), Spec("crash", broken_s=(61, 119))], unrun=["later"])


def render(run_dir: Path, result: dict[str, Any]) -> str:
    return report.render_report(runview.read(run_dir, result))


def test_every_shown_metric_is_in_the_registry() -> None:
    names = registry.shown()
    assert names and set(names) <= set(registry.BY_NAME)
    assert {"resilience_score", "recovery_time_s", "latency_ms.fault.p99", "kpi_lost"} <= set(names)


def test_every_format_is_written_by_both_renderers() -> None:
    assert set(report.FORMATS) == set(registry.FORMATS) == set(markdown.FORMATS)


def test_a_place_naming_an_unknown_metric_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the registry"):
        registry.Shown("recovery_seconds", "seconds")
    with pytest.raises(ValueError, match="unknown format"):
        registry.Shown("recovery_time_s", "minutes")


def test_value_walks_dotted_names_in_the_model_and_the_mapping(run: tuple[Path, dict[str, Any]]) -> None:
    _, result = run
    entry = result["scenarios"][0]
    model = result_files.as_result(result).scenarios[0].metrics
    name = "latency_ms.fault.p99"
    assert (
        registry.value(entry["metrics"], name)
        == registry.value(model, name)
        == entry["metrics"]["latency_ms"]["fault"]["p99"]
    )
    assert registry.value(None, name) is None
    assert registry.value({"latency_ms": None}, name) is None


def _relabel(monkeypatch: pytest.MonkeyPatch, place: str, metric: str, label: str) -> None:
    shown = tuple(
        dataclasses.replace(c, label=label) if c.metric == metric else c for c in getattr(registry, place)
    )
    monkeypatch.setattr(registry, place, shown)


def test_a_registry_label_is_used_where_a_place_gives_none(
    run: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, result = run
    places = [
        c
        for c in (*registry.OVERVIEW, *registry.SUMMARY, *registry.CARDS[1].rows)
        if c.metric == "error_rate"
    ]
    assert len(places) == 3 and not any(c.label for c in places)
    entry = registry.BY_NAME["error_rate"]
    monkeypatch.setitem(registry.BY_NAME, "error_rate", dataclasses.replace(entry, label="share failing"))
    page = render(run_dir, result)
    assert '<th class="n">share failing</th>' in page and '<th class="n">error rate</th>' not in page
    assert page.count("<tr><th>share failing</th><td>") == len(result["scenarios"])
    assert "| share failing |" in markdown.summary(result, report_url="")


def test_labels_come_from_the_registry(
    run: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, result = run
    _relabel(monkeypatch, "OVERVIEW", "error_rate", "share failing")
    _relabel(monkeypatch, "SUMMARY", "error_rate", "share failing")
    totals = registry.RUN_TOTALS
    monkeypatch.setattr(
        registry,
        "RUN_TOTALS",
        totals._replace(cost=dataclasses.replace(totals.cost, label="What downtime cost")),
    )
    cards = tuple(
        dataclasses.replace(
            card, rows=tuple(dataclasses.replace(r, label=f"{r.shown_as} (relabelled)") for r in card.rows)
        )
        for card in registry.CARDS
    )
    monkeypatch.setattr(registry, "CARDS", cards)
    page = render(run_dir, result)
    assert '<th class="n">share failing</th>' in page and '<th class="n">error rate</th>' not in page
    assert '<div class="label">What downtime cost</div>' in page
    for card in registry.CARDS:
        for row in card.rows:
            assert page.count(f"<tr><th>{row.shown_as}</th><td>") == len(result["scenarios"])
    text = markdown.summary(result, report_url="")
    assert "| share failing |" in text and "| error rate |" not in text


def test_a_metric_declared_for_a_place_shows_up_there(
    run: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, result = run
    late = registry.Shown("generator_late_share", "pct", 1, label="sent late")
    monkeypatch.setattr(registry, "OVERVIEW", (*registry.OVERVIEW, late))
    monkeypatch.setattr(registry, "SUMMARY", (*registry.SUMMARY, late))
    traffic, *rest = registry.CARDS
    monkeypatch.setattr(registry, "CARDS", (dataclasses.replace(traffic, rows=(*traffic.rows, late)), *rest))
    shares = [f"{100 * s['metrics']['generator_late_share']:.1f} %" for s in result["scenarios"]]

    page = render(run_dir, result)
    head = re.search(r"<table class=\"overview\">.*?</thead>", page, re.S)
    assert head is not None and len(re.findall(r"<th[ >]", head.group(0))) == 3 + len(registry.OVERVIEW)
    assert head.group(0).removesuffix("</tr></thead>").rstrip().endswith('<th class="n">sent late</th>')
    assert f'<td colspan="{2 + len(registry.OVERVIEW)}">not run</td>' in page
    for share in shares:
        assert f'<td class="n">{share}</td>' in page
        assert f"<tr><th>sent late</th><td>{share}</td></tr>" in page

    lines = markdown.summary(result, report_url="").splitlines()
    header = next(line for line in lines if line.startswith("| scenario |"))
    assert header.endswith("| sent late |")
    rows = [line for line in lines if line.startswith(("| kill#", "| crash#"))]
    assert [row.rsplit("|", 2)[1].strip() for row in rows] == shares
    assert all(row.count("|") == header.count("|") for row in rows)


def test_a_null_with_declared_words_reads_as_those_words(run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, result = run
    result["scenarios"][1]["metrics"]["recovery_time_s"] = None
    words = {c.null_text for c in (*registry.OVERVIEW, *registry.SUMMARY) if c.metric == "recovery_time_s"}
    assert words == {"not recovered"}
    page = render(run_dir, result)
    assert page.count('<span class="bad">not recovered</span>') == 2  # the overview table and the card
    assert "| not recovered |" in markdown.summary(result, report_url="")
