"""report.html: what it shows, what it must never show, and exact downsampling of what it draws."""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import timeline
from harness.report import display, inputs
from harness.report import html as report
from harness.store import runview
from harness.timeline import read_timeline
from harness.timeline.histogram import Histogram
from tests.report.conftest import SECRETS, T0, Spec, build_run, controlplane, markers, write_timeline


def page_data(text: str) -> dict[str, Any]:
    """The JSON the page's script reads, parsed as the browser would (after un-escaping nothing)."""
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert match, "no data element"
    return json.loads(match.group(1))


def render(run_dir: Path, result: dict[str, Any] | None = None, trends: dict[str, list] | None = None) -> str:
    """The page of a run folder, as `harness report` renders it."""
    return report.render_report(runview.read(run_dir, result), trends)


def charts(text: str) -> list[dict[str, str]]:
    """Every chart element's data attributes."""
    out = []
    for tag in re.findall(r'<div class="chart"[^>]*>', text):
        out.append(dict(re.findall(r'data-([a-z]+)="([^"]*)"', tag)))
    return out


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return build_run(tmp_path, [Spec("kill"), Spec("crash", fault_s=(50.4, 80.0), broken_s=(51, 66))])


# --- downsampling --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple[timeline.Series, Path]:
    """1000 s of two names, random latencies (some in the zero bin), failing and slow from 400 s to 460 s."""
    path = tmp_path_factory.mktemp("display") / "timeline.jsonl"
    write_timeline(path, Spec("long", seconds=1000, broken_s=(400, 460)), seed=3)
    return timeline.load_series(path), path


class TestDisplay:
    @pytest.mark.parametrize("max_points", [7, 100, 333])
    def test_display_percentiles_are_those_of_the_merged_histograms(
        self, series: Any, max_points: int
    ) -> None:
        """Each display bin's p50/p95/p99 equal the percentiles of all its requests, merged — not averaged."""
        s, path = series
        shown = display.display_series(s, T0, max_points=max_points)
        k = shown.buckets_per_point
        assert len(shown) <= max_points and k > 1
        timeline = read_timeline(path)
        for i in range(len(shown)):
            lo, hi = i * k, min(len(s), (i + 1) * k)
            assert {
                q: shown.latency_ms[q][i] for q in ("p50", "p95", "p99")
            } == s.latency_corrected.percentiles(lo, hi)
            if i % 3 == 0:  # and against harness.timeline's own Histogram merge of the raw lines
                merged = Histogram()
                for key, bucket in timeline.buckets.items():
                    if lo <= key[0] - round(s.t[0]) < hi:
                        merged.merge(bucket.latency)
                assert shown.latency_actual_ms["p99"][i] == merged.quantile(0.99)

    def test_an_average_of_percentiles_would_differ(self, series: Any) -> None:
        """The test above can fail: averaging the buckets' p99 gives another number in the fault."""
        s, _ = series
        shown = display.display_series(s, T0, max_points=20)
        k = shown.buckets_per_point
        averaged = [np.nanmean(s.latency_corrected.p99_ms[i * k : (i + 1) * k]) for i in range(len(shown))]
        assert not np.allclose(averaged, shown.latency_ms["p99"], equal_nan=True)

    def test_counts_are_summed_and_rates_are_per_second(self, series: Any) -> None:
        """Requests, failures and KPI are conserved; the error rate of a bin is its failures over its requests."""
        s, _ = series
        shown = display.display_series(s, T0, max_points=64)
        assert np.isclose((shown.requests_per_s * shown.width_s).sum(), s.requests.sum())
        assert np.isclose((shown.kpi_per_s * shown.width_s).sum(), s.kpi.sum())
        k = shown.buckets_per_point
        fault_bin = int((400 - 0) // k)
        lo, hi = fault_bin * k, (fault_bin + 1) * k
        assert shown.error_rate[fault_bin] == s.failures[lo:hi].sum() / s.requests[lo:hi].sum()
        assert shown.t_s[0] == s.t[0] - T0 and shown.t_s[1] - shown.t_s[0] == k

    def test_a_short_series_is_drawn_bucket_by_bucket(self, series: Any) -> None:
        """With fewer buckets than points, nothing is merged and the scorer's per-bucket numbers are drawn."""
        s, _ = series
        shown = display.display_series(s, T0, max_points=5000)
        assert shown.buckets_per_point == 1 and len(shown) == len(s)
        np.testing.assert_array_equal(shown.latency_ms["p95"], s.latency_corrected.p95_ms)

    def test_unhealthy_share_follows_the_thresholds_within_the_observation(self, series: Any) -> None:
        """Buckets over the error threshold after the fault start are shaded; the baseline never is."""
        s, _ = series
        limits = {
            "error_rate": 0.01,
            "p95_ms": None,
            "kpi_min_per_s": None,
            "kpi_window_s": 5,
            "min_requests": 1,
        }
        shown = display.display_series(
            s, T0, max_points=5000, thresholds=limits, observed=(T0 + 300, T0 + 990)
        )
        assert np.isnan(shown.unhealthy[:299]).all()
        assert (shown.unhealthy[400:460] == 1.0).all() and (shown.unhealthy[470:980] == 0.0).all()

    def test_windows_end_at_the_recovery_point(self) -> None:
        """Baseline to fault start, fault to fault start + recovery_time_s, recovery to the end."""
        phases = {
            "baseline_start_t": T0 + 5,
            "fault_start_t": T0 + 60,
            "fault_end_t": T0 + 75,
            "end_t": T0 + 119,
        }
        got = display.bands(phases, 12.5, T0, markers(Spec("x")))
        assert [(b.kind, b.start_s, b.end_s) for b in got] == [
            ("warmup", 0.0, 5.0), ("baseline", 5.0, 60.0), ("fault", 60.0, 72.5), ("recovery", 72.5, 119.0)]  # fmt: skip
        not_recovered = display.bands(phases, None, T0)
        assert [(b.kind, b.end_s) for b in not_recovered] == [("baseline", 60.0), ("fault", 119.0)]
        assert display.recovery_mark(phases, 12.5, T0).t_s == 72.5
        assert display.recovery_mark(phases, None, T0) is None

    def test_activity_marks_pair_starts_with_ends(self) -> None:
        """Method actions are faults, rollbacks are rollbacks, steady-state probes are left out."""
        got = display.activity_marks(markers(Spec("x", fault_s=(60.0, 75.0))), T0)
        assert [(m.kind, m.label, m.t_s, m.end_s, m.status) for m in got] == [
            ("fault", "kill-a-replica", 60.0, pytest.approx(60.1), "succeeded"),
            ("rollback", "wait-until-serving", 75.0, 75.5, "succeeded"),
        ]
        cut_short = [m for m in markers(Spec("x")) if m["kind"] != "activity_end"]
        assert all(m.end_s is None for m in display.activity_marks(cut_short, T0))


class TestControlPlane:
    def test_api_latency_percentiles_errors_and_events(self) -> None:
        """Per second: nearest-rank p50/p99 and failed calls; health failures merge into one span."""
        records = controlplane(Spec("x", seconds=120, fault_s=(60.0, 75.0)))
        cp = display.controlplane_display(records, T0)
        assert cp.bin_s == 1.0 and cp.t_s[0] == 0.0
        # each second holds the calls i = 4s..4s+3 with latencies 5 + i % 7
        for sec in (0, 17, 90):
            values = sorted(5.0 + (i % 7) for i in range(4 * sec, 4 * sec + 4))
            assert cp.p50_ms[sec] == values[1] and cp.p99_ms[sec] == values[3]
        assert (
            cp.errors[60:66].tolist() == [4] * 6 and cp.errors[:60].sum() == 0 and cp.errors[66:].sum() == 0
        )
        health = [m for m in cp.marks if m.kind == "health"]
        assert [(m.t_s, m.end_s, m.label) for m in health] == [(60.0, 63.0, "readyz failing (etcd)")]
        nodes = [(m.t_s, m.label) for m in cp.marks if m.kind == "node"]
        assert nodes == [(60.5, "node node-a1 not ready"), (68.5, "node node-a1 ready")]
        assert [m.label for m in cp.marks if m.kind == "pod"] == [
            "pod subs-1 deleted on node-a1", "pod subs-2 scheduled on node-b1"]  # fmt: skip

    def test_a_long_probe_log_is_binned_to_the_point_budget(self) -> None:
        """A day of probes is drawn in wider bins, each with the exact percentile of its calls."""
        records = [
            {"t": T0 + i, "kind": "api", "latency_ms": float(i % 100), "ok": True} for i in range(86_400)
        ]
        cp = display.controlplane_display([*records, {"kind": "api"}], T0, max_points=1000)
        assert cp.bin_s == 87.0 and cp.t_s.size <= 1000 and cp.skipped == 1
        first = sorted(float(i % 100) for i in range(87))
        assert cp.p99_ms[0] == first[int(np.ceil(0.99 * 87)) - 1] and cp.requests.sum() == 86_400


# --- the page --------------------------------------------------------------------------------
class TestReport:
    def test_summary_cards_and_charts(self, run: tuple[Path, dict]) -> None:
        """The verdict, worst scenario, totals and every scenario's cards come from result.json unchanged."""
        run_dir, result = run
        text = render(run_dir)
        scenarios = result["scenarios"]
        worst = min(scenarios, key=lambda s: s["metrics"]["resilience_score"])
        verdict = "PASSED" if result["passed"] else "FAILED"
        assert f'<span class="badge big {verdict.lower()}">{verdict}</span>' in text
        summary = text.split('<section class="howto">')[0]
        assert f'href="#s-{worst["name"]}-1">{worst["name"]}#1</a>' in summary
        cost = sum(s["metrics"]["downtime_cost_usd"] for s in scenarios)
        assert report._fmt_usd(cost) in summary
        for s in scenarios:
            section = text.split(f'id="s-{s["name"]}-1"')[1].split("</section>")[0]
            m = s["metrics"]
            assert f"{m['resilience_score']:,.1f}" in section
            assert f"{m['recovery_time_s']:.1f} s" in section
            for gate in s["gates"]:
                metric, op, limit = gate["expression"].split()
                assert (
                    f"<code>{metric}</code>" in section
                    and f"<code>{htmllib.escape(op)} {limit}</code>" in section
                )
        kinds = [(c["chart"], c["scenario"]) for c in charts(text)]
        assert kinds == [
            (k, f"s-{n}-1") for n in ("kill", "crash") for k in ("throughput", "errors", "latency")
        ]
        assert all(int(c["points"]) >= 100 for c in charts(text))

    def test_the_baseline_false_alarm_rate_is_shown_with_the_thresholds(self, run: tuple[Path, dict]) -> None:
        """Under the healthy p95 threshold: the baseline's false-alarm rate and what it means."""
        run_dir, result = run
        section = render(run_dir).split('id="s-kill-1"')[1].split("</section>")[0]
        rate = result["scenarios"][0]["metrics"]["false_alarm_rate"]
        assert f"Baseline false alarms {100 * rate:.1f} %" in section
        assert ("carry that much noise" if rate > 0 else "are not the rules' noise") in section

    def test_page_data_places_windows_and_activities(self, run: tuple[Path, dict]) -> None:
        """The chart data has the fault window up to the recovery point and a mark per activity."""
        run_dir, result = run
        data = page_data(render(run_dir))["scenarios"]["s-kill-1"]
        entry = result["scenarios"][0]
        origin = data["origin_t"]
        fault = next(b for b in data["bands"] if b["kind"] == "fault")
        assert fault["start_s"] == pytest.approx(entry["phases"]["fault_start_t"] - origin)
        assert fault["end_s"] - fault["start_s"] == pytest.approx(entry["metrics"]["recovery_time_s"])
        assert [m["kind"] for m in data["marks"] if m["kind"] != "phase"] == ["fault", "recovery", "rollback"]
        assert len(data["timeline"]["t"]) == len(data["timeline"]["p99"]) == 120

    def test_recovery_phases_are_drawn_and_listed(self, run: tuple[Path, dict]) -> None:
        """Every recovery phase that was seen is a line on the charts at its time, and the page
        lists all of them: the seen ones with their time, the others with why they are missing."""
        run_dir, result = run
        text = render(run_dir)
        data = page_data(text)["scenarios"]["s-kill-1"]
        entry = result["scenarios"][0]
        drawn = {m["status"]: m["t"] for m in data["marks"] if m["kind"] == "phase"}
        seen = {p["name"]: p["t"] for p in entry["recovery_phases"] if p["t"] is not None}
        assert "steady" in drawn
        for name, t in drawn.items():
            assert t == pytest.approx(seen[name] - data["origin_t"], abs=1e-3)
        section = htmllib.unescape(text.split('id="s-kill-1"')[1].split("</section>")[0])
        assert "Recovery phases" in section
        for p in entry["recovery_phases"]:
            assert (p["reason"] if p["t"] is None else f"+{p['at_s']:.1f} s") in section

    def test_a_fault_without_evidence_is_named_and_one_with_evidence_is_not(
        self, run: tuple[Path, dict]
    ) -> None:
        """A scenario whose fault no evidence shows gets a warning naming the activity and why;
        a fault that took effect gets none."""
        run_dir, result = run
        result["scenarios"][0]["fault_effect"] = {
            "outcome": "no-effect-observed",
            "activities": [{"name": "kill-a-replica", "observed": False, "source": "ground-truth",
                            "evidence": "no fault or effect event in the ground truth, no user impact"}],
        }  # fmt: skip
        result["scenarios"][1]["fault_effect"] = {
            "outcome": "effect-observed",
            "activities": [{"name": "crash-a-node", "observed": True, "source": "timeline",
                            "evidence": "users affected +0.6 s after the fault start"}],
        }  # fmt: skip
        text = htmllib.unescape(render(run_dir, result))
        kill = text.split('id="s-kill-1"')[1].split("</section>")[0]
        crash = text.split('id="s-crash-1"')[1].split("</section>")[0]
        assert (
            "No effect observed" in kill and "<code>kill-a-replica</code> (no fault or effect event" in kill
        )
        assert "No effect observed" not in crash and "Fault effect unknown" not in crash

    def test_secrets_never_appear(self, tmp_path: Path) -> None:
        """Secrets a run folder holds unmasked (journal, activity arguments and outputs, plan vars,
        target token and URL password, control plane) stay out of the page; their keys stay in."""
        run_dir, _ = build_run(tmp_path, [Spec("kill", controlplane=True)])
        text = render(run_dir)
        for where, secret in SECRETS.items():
            assert secret not in text, where
        shown = htmllib.unescape(text)
        assert "<redacted>" in shown
        assert (
            "http://admin:***@127.0.0.1:18080" in shown and "postgresql://subs:***@db.internal/subs" in shown
        )
        assert "api_token" in text  # the key is shown, its value is not

    def test_the_page_renders_from_values_alone(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Inputs built without a run folder render: the report reads no run file of its own."""
        run_dir, result = build_run(tmp_path, [Spec("kill")])
        given = runview.read(run_dir)
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        for path in sorted(run_dir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        text = report.render_report(given)
        assert 'data-chart="latency"' in text and "kill-a-replica" in text
        empty = report.render_report(inputs.RunInputs(result=result, plan=None, trials={}))
        assert "No timeline.jsonl" in empty and "No journal.json" in empty

    def test_markup_in_the_journal_is_text_not_markup(self, run: tuple[Path, dict]) -> None:
        """A title holding </script><script> is escaped in the page and survives the JSON round trip."""
        text = render(run[0])
        assert "<script>alert(1)" not in text
        assert "&lt;/script&gt;&lt;script&gt;alert(1)" in text
        assert text.count("</script>") == 3  # data, uPlot, report script

    def test_no_external_resources(self, run: tuple[Path, dict]) -> None:
        """Nothing is loaded from the network: no http(s) src/href, no <link>, no CSS url(), no @import."""
        text = render(run[0])
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
        assert not re.search(r"<link\b|@import|url\(", text, re.I)
        assert "default-src 'none'" in text  # and the page forbids itself any fetch

    def test_trends_draw_with_two_runs_or_more(self, run: tuple[Path, dict]) -> None:
        """A trend chart per key metric, with a point per past run; none for a single run."""
        run_dir, _ = run

        def past(i: int, score: float) -> dict[str, Any]:
            return {"run_id": f"r{i}", "started": T0 - 86_400 * (3 - i),
                    "metrics": {"recovery_time_s": 10.0 + i, "error_rate": 0.01, "resilience_score": score,
                                "latency_ms": {"fault": {"p99": 100.0 * i}}}}  # fmt: skip

        trends = {"kill": [past(1, 80), past(2, 75), past(3, 60)], "crash": [past(3, 60)]}
        text = render(run_dir, trends=trends)
        trend = [c for c in charts(text) if c["chart"] == "trend"]
        assert [(c["scenario"], c["metric"], c["points"]) for c in trend] == [
            ("s-kill-1", key, "3") for key in ("recovery_time_s", "error_rate", "latency_ms.fault.p99", "resilience_score")]  # fmt: skip
        data = page_data(text)["scenarios"]
        assert data["s-kill-1"]["trend"]["series"][3]["values"] == [80.0, 75.0, 60.0]
        assert data["s-crash-1"]["trend"] is None

    def test_trends_read_the_history_stores_dotted_names(self, run: tuple[Path, dict]) -> None:
        """HistoryStore.trends keys a point's metrics by dotted name: the p99 trend has its points."""
        run_dir, _ = run
        points = [{"run_id": f"r{i}", "started": T0 - 86_400 * (3 - i),
                   "metrics": {"latency_ms.fault.p99": 100.0 * i}} for i in (1, 2, 3)]  # fmt: skip
        series = page_data(render(run_dir, trends={"kill": points}))["scenarios"]["s-kill-1"]["trend"][
            "series"
        ]
        p99 = next(s for s in series if s["key"] == "latency_ms.fault.p99")
        assert p99["values"] == [100.0, 200.0, 300.0]

    def test_control_plane_chart_and_card(self, tmp_path: Path) -> None:
        """controlplane.jsonl adds a chart on the same axis; metrics["control_plane"] adds a card."""
        run_dir, result = build_run(tmp_path, [Spec("kill", controlplane=True)])
        result["scenarios"][0]["metrics"]["control_plane"] = {
            "api_p99_ms": {"fault": 812.5},
            "readyz_failures": 4,
        }
        text = render(run_dir, result)
        cp = [c for c in charts(text) if c["chart"] == "controlplane"]
        assert len(cp) == 1 and int(cp[0]["points"]) == 120
        card = text.split("Control plane</div>")[1].split("</table>")[0]
        assert "api_p99_ms.fault" in card and "812.5" in card and "readyz_failures" in card
        data = page_data(text)["scenarios"]["s-kill-1"]["controlplane"]
        assert sum(data["errors"]) == 24 and {m["kind"] for m in data["marks"]} == {"health", "node", "pod"}

    def test_an_interrupted_run_with_missing_files_still_renders(self, tmp_path: Path) -> None:
        """Each scenario shows what exists and says what is missing; unrun trials are listed."""
        specs = [
            Spec("kill", trials=2),
            Spec("bare", files=set()),
            Spec("half", files={"timeline", "markers"}),
        ]
        run_dir, _ = build_run(tmp_path, specs, status="interrupted", unrun=["later"])
        text = render(run_dir)
        assert '<span class="badge big incomplete">INCOMPLETE</span>' in text
        assert "Not run: later#1." in text
        assert 'id="s-kill-1"' in text and 'id="s-kill-2"' in text
        bare = text.split('id="s-bare-1"')[1].split("</section>")[0]
        assert "Not scored: no markers" in bare
        assert "No timeline.jsonl" in bare and "No journal.json" in bare and "No markers.jsonl" in bare
        assert 'data-chart="' not in bare
        half = text.split('id="s-half-1"')[1].split("</section>")[0]
        assert "No journal.json" in half and 'data-chart="latency"' in half and "No timeline" not in half
        assert sum(1 for c in charts(text) if c["chart"] == "latency") == 3

    def test_write_report_replaces_the_file_atomically(self, run: tuple[Path, dict]) -> None:
        """report.html is written next to result.json, with no temporary file left behind."""
        run_dir, _ = run
        (run_dir / "report.html").write_text("old")
        path = runview.write_report(run_dir)
        assert path == run_dir / "report.html" and path.read_text().startswith("<!DOCTYPE html>")
        assert not list(run_dir.glob(".report.html*"))

    def test_a_checkpoint_reads_no_timeline_scoring_has_read(self, tmp_path: Path) -> None:
        """Each checkpoint scores every scenario again and draws it: with the run's SeriesFiles the
        timelines are read once, when first scored, not twice per scenario at every checkpoint."""
        from harness.engine import runner
        from harness.plan.models import Plan

        run_dir, result = build_run(tmp_path, [Spec("kill", trials=2), Spec("crash", fault_s=(50.4, 80.0))])
        plan = Plan.model_validate(json.loads((run_dir / "plan.json").read_text()))
        head = {k: v for k, v in result.items() if k != "scenarios"}
        files = timeline.SeriesFiles()
        first = runner.assemble_result(run_dir, plan, head, files=files)
        runner.write_outputs(run_dir, first, files=files)
        again = runner.assemble_result(run_dir, plan, head, files=files)
        runner.write_outputs(run_dir, again, files=files)
        paths = sorted(run_dir.glob("scenarios/*/timeline.jsonl"))
        assert len(paths) == 3
        for path in paths:
            assert files.get(path).reads == [(0, path.stat().st_size)], "read once, whole"
        assert again.to_json()["scenarios"] == first.to_json()["scenarios"] == result["scenarios"]
        assert 'id="s-kill-2"' in (run_dir / "report.html").read_text()

    def test_no_result_json_is_an_error_naming_the_file(self, tmp_path: Path) -> None:
        """Without result.json (and none given) the report says which file is missing."""
        from harness.errors import FileInputError

        with pytest.raises(FileInputError, match=r"result\.json"):
            render(tmp_path)
