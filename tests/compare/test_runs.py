"""Reading run directories into a comparison: labels, pooling, warnings, refusals, null recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.compare import runs, stats
from harness.compare.stats import Verdict
from harness.errors import FileInputError, InputError
from harness.plan import gates
from tests.compare import metrics, write_run

SELF_MANAGED = {"kind": "testbed", "profile": "self-managed"}
EKS = {"kind": "kubernetes", "context": "eks-staging"}


def row(report: runs.ComparisonReport, scenario: str, metric: str) -> runs.MetricComparison:
    found = next(s for s in report.scenarios if s.name == scenario)
    return next(m for m in found.metrics if m.name == metric)


class TestLabels:
    def test_derived_labels_name_target_and_run(self, tmp_path: Path) -> None:
        """Without --label, a side is named by its target (profile or context) and run id."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]}, run_id="r-a", target=SELF_MANAGED)
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]}, run_id="r-b", target=EKS)
        report = runs.compare_runs([a, b])
        assert report.labels == ("testbed self-managed r-a", "kubernetes eks-staging r-b")
        assert report.baseline == "testbed self-managed r-a"

    def test_given_labels_pool_trials_of_several_runs(self, tmp_path: Path) -> None:
        """Runs sharing a label form one side: their trials are pooled."""
        sm1 = write_run(tmp_path / "sm1", {"replica-kill": [metrics(recovery_time_s=30.0)] * 2})
        sm2 = write_run(tmp_path / "sm2", {"replica-kill": [metrics(recovery_time_s=34.0)] * 3})
        eks = write_run(tmp_path / "eks", {"replica-kill": [metrics(recovery_time_s=8.0)] * 4})
        report = runs.compare_runs([], {"self-managed": [sm1, sm2], "eks": [eks]})
        assert report.labels == ("self-managed", "eks")
        assert [len(s.runs) for s in report.sides] == [2, 1]
        recovery = row(report, "replica-kill", "recovery_time_s")
        assert recovery.summaries["self-managed"].values == (30.0, 30.0, 34.0, 34.0, 34.0)
        assert recovery.summaries["self-managed"].median == 34.0
        eks_side = recovery.comparisons["eks"]
        assert eks_side.verdict is Verdict.NO_VERDICT  # eks is a single run: its luck is its own
        assert "single run" in eks_side.reason
        assert recovery.run_medians["self-managed"] == {
            "20261127T053921Z-local-gameday-sm1": 30.0,
            "20261127T053921Z-local-gameday-sm2": 34.0,
        }

    def test_order_of_run_dirs_picks_the_baseline(self, tmp_path: Path) -> None:
        """The side of the first RUN_DIR is the baseline; labels name the positional runs."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]})
        report = runs.compare_runs([b, a], {"before": [a], "after": [b]})
        assert report.labels == ("after", "before")

    def test_same_directory_twice_counts_once(self, tmp_path: Path) -> None:
        """A run given as RUN_DIR and again with --label is read once, under its label."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()] * 2})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()] * 2})
        report = runs.compare_runs([a, b], {"old": [a], "new": [b]})
        assert report.labels == ("old", "new")
        assert row(report, "replica-kill", "error_rate").summaries["old"].n == 2

    def test_parse_label_options(self) -> None:
        """--label NAME=RUN_DIR options become a mapping; a repeated name collects its runs."""
        parsed = runs.parse_label_options(["eks=r/1", "self-managed=r/2", "eks=r/3"])
        assert parsed == {"eks": [Path("r/1"), Path("r/3")], "self-managed": [Path("r/2")]}

    @pytest.mark.parametrize("option", ["eks", "=r/1", "eks="])
    def test_malformed_label_option_names_the_flag(self, option: str) -> None:
        """A --label without NAME=RUN_DIR is an input error naming --label."""
        with pytest.raises(InputError, match="--label"):
            runs.parse_label_options([option])

    def test_one_directory_under_two_labels_is_refused(self, tmp_path: Path) -> None:
        """A run cannot be on two sides at once."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        with pytest.raises(InputError, match=r"--label: .* both 'x' and 'y'"):
            runs.compare_runs([], {"x": [a], "y": [a]})


class TestRefusals:
    def test_missing_directory_names_the_argument(self, tmp_path: Path) -> None:
        """A RUN_DIR that does not exist: exit-2 error naming RUN_DIR and the path."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        with pytest.raises(InputError, match=r"RUN_DIR: .*nowhere is not a directory") as info:
            runs.compare_runs([a, tmp_path / "nowhere"])
        assert info.value.exit_code == 2

    def test_label_directory_not_a_run(self, tmp_path: Path) -> None:
        """A --label directory without plan.json is named with its label."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        (tmp_path / "empty").mkdir()
        with pytest.raises(InputError, match=r"--label eks: .*empty has no plan.json"):
            runs.compare_runs([a], {"eks": [tmp_path / "empty"]})

    def test_wrong_schema_names_the_file(self, tmp_path: Path) -> None:
        """A result.json of another schema is refused with its path."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]})
        (b / "result.json").write_text('{"schema": "other/v9"}')
        with pytest.raises(
            FileInputError,
            match=r"result.json: field 'schema': expected 'harness.result/v1' \(got 'other/v9'\)",
        ):
            runs.compare_runs([a, b])

    def test_no_scenario_in_common(self, tmp_path: Path) -> None:
        """Plans with disjoint scenarios have nothing to compare: refused, listing both sides."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        b = write_run(tmp_path / "b", {"node-crash": [metrics()]})
        with pytest.raises(InputError, match=r"no scenario in common.*replica-kill.*node-crash"):
            runs.compare_runs([], {"a": [a], "b": [b]})

    def test_one_side_only(self, tmp_path: Path) -> None:
        """Two runs under one label are one side: a comparison needs two."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]})
        with pytest.raises(InputError, match="at least two sides"):
            runs.compare_runs([], {"same": [a, b]})

    def test_unknown_metric_suggests_a_name(self, tmp_path: Path) -> None:
        """An unknown --metric is refused with the closest known name."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]})
        with pytest.raises(InputError, match=r"--metric: unknown metric 'recovery_time'.*recovery_time_s"):
            runs.compare_runs([a, b], metrics=["recovery_time"])

    def test_alpha_out_of_range(self, tmp_path: Path) -> None:
        """alpha must be a probability strictly between 0 and 1."""
        with pytest.raises(InputError, match="--alpha"):
            runs.compare_runs([tmp_path], alpha=1.5)


class TestWarnings:
    def test_scenario_on_one_side_only(self, tmp_path: Path) -> None:
        """A scenario only one side ran is named in a warning and not compared."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()], "zone-partition": [metrics()]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]})
        report = runs.compare_runs([], {"a": [a], "b": [b]})
        assert [s.name for s in report.scenarios] == ["replica-kill"]
        assert any("'zone-partition' is only in a" in w for w in report.warnings)

    def test_differing_load_and_plan_name(self, tmp_path: Path) -> None:
        """Different users or plan names make the comparison unfair: both are warned about."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]}, load={"users": 50}, plan_name="eks-day")
        report = runs.compare_runs([], {"a": [a], "b": [b]})
        assert any("load.users: 20" in w and "vs 50" in w and "unfair" in w for w in report.warnings)
        assert any("plans differ on name" in w for w in report.warnings)

    def test_different_host_is_expected(self, tmp_path: Path) -> None:
        """Another host is the point of comparing targets: no warning for it."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics()]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]}, load={"host": "https://eks.example"})
        report = runs.compare_runs([], {"a": [a], "b": [b]}, own_thresholds=True)  # no timelines here
        assert report.warnings == ()

    def test_unscored_trials_and_incomplete_runs(self, tmp_path: Path) -> None:
        """Trials without metrics are left out and counted; a run not completed is flagged."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics(), None, metrics()]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics()]}, status="interrupted")
        report = runs.compare_runs([], {"a": [a], "b": [b]})
        assert any("1 of 3 trials have no metrics" in w for w in report.warnings)
        assert any("status 'interrupted'" in w for w in report.warnings)
        recovery = row(report, "replica-kill", "recovery_time_s")
        assert (recovery.summaries["a"].n, recovery.missing["a"]) == (2, 1)


class TestValues:
    def test_null_recovery_is_censored_not_missing(self, tmp_path: Path) -> None:
        """Null recovery_time_s counts as did-not-recover: ranked worst, counted, median says so."""
        a = write_run(
            tmp_path / "a", {"replica-kill": [metrics(recovery_time_s=v) for v in (8, 9, 10, 9.5, 8.5)]}
        )
        b = write_run(
            tmp_path / "b", {"replica-kill": [metrics(recovery_time_s=v) for v in (None, None, None, 12, 11)]}
        )
        report = runs.compare_runs([], {"before": [a], "after": [b]})
        recovery = row(report, "replica-kill", "recovery_time_s")
        after = recovery.summaries["after"]
        assert (after.n, after.censored, after.median_censored) == (5, 3, True)
        assert recovery.comparisons["after"].verdict is Verdict.NO_VERDICT  # one run a side

    def test_null_recovery_in_a_batch_is_judged(self, tmp_path: Path) -> None:
        """The same trials interleaved in one batch: worse, the unrecovered ranked slowest."""
        a = write_run(
            tmp_path / "a",
            {"replica-kill": [metrics(recovery_time_s=v) for v in (8, 9, 10, 9.5, 8.5)]},
            batch="b1",
        )
        b = write_run(
            tmp_path / "b",
            {"replica-kill": [metrics(recovery_time_s=v) for v in (None, None, None, 12, 11)]},
            batch="b1",
        )
        report = runs.compare_runs([], {"before": [a], "after": [b]})
        recovery = row(report, "replica-kill", "recovery_time_s")
        after = recovery.summaries["after"]
        assert (after.n, after.censored, after.median_censored) == (5, 3, True)
        assert recovery.comparisons["after"].verdict is Verdict.WORSE

    def test_null_meaning_unmeasured_is_left_out(self, tmp_path: Path) -> None:
        """A null data_loss (not verified) is no value, not a zero and not a worst case."""
        a = write_run(tmp_path / "a", {"replica-kill": [metrics(data_loss=None), metrics(data_loss=0)]})
        b = write_run(tmp_path / "b", {"replica-kill": [metrics(data_loss=0)]})
        report = runs.compare_runs([], {"a": [a], "b": [b]})
        loss = row(report, "replica-kill", "data_loss")
        assert (loss.summaries["a"].values, loss.missing["a"]) == ((0.0,), 1)

    def test_dotted_metric_selection(self, tmp_path: Path) -> None:
        """metrics=[...] picks nested metrics by dotted name, in the order asked."""
        primary = {"primary": "latency_ms.fault.p95"}
        a = write_run(
            tmp_path / "a",
            {"replica-kill": [metrics(**{"latency_ms.fault.p95": 80.0})] * 4},
            batch="x",
            compare=primary,
        )
        b = write_run(
            tmp_path / "b",
            {"replica-kill": [metrics(**{"latency_ms.fault.p95": 120.0})] * 4},
            batch="x",
            compare=primary,
        )
        report = runs.compare_runs([], {"a": [a], "b": [b]}, metrics=["latency_ms.fault.p95", "peak_p99_ms"])
        assert report.metrics == ("latency_ms.fault.p95", "peak_p99_ms")
        assert report.scenarios[0].primary == "latency_ms.fault.p95"
        p95 = row(report, "replica-kill", "latency_ms.fault.p95")
        assert (p95.summaries["a"].median, p95.summaries["b"].median) == (80.0, 120.0)
        assert p95.comparisons["b"].verdict is Verdict.WORSE  # lower latency is better

    def test_default_metric_absent_from_results_is_dropped(self, tmp_path: Path) -> None:
        """Results without recovery_after_fault_end_s (older runs) simply have no such row."""
        old = metrics()
        del old["recovery_after_fault_end_s"]
        a = write_run(tmp_path / "a", {"replica-kill": [old]})
        b = write_run(tmp_path / "b", {"replica-kill": [old]})
        report = runs.compare_runs([], {"a": [a], "b": [b]})
        names = [m.name for m in report.scenarios[0].metrics]
        assert "recovery_after_fault_end_s" not in names
        assert names[0] == "recovery_time_s"

    def test_no_impact_trials_are_best_not_dropped(self, tmp_path: Path) -> None:
        """2 trials without impact (fault p99 null, time_to_impact_s null) and 3 impacted above
        every baseline trial: counted as the best, so not "worse" from the 3 left."""
        base = [metrics(**{"latency_ms.fault.p99": v}) for v in (110.0, 120.0, 125.0, 130.0, 140.0)]
        calm = metrics(time_to_impact_s=None, **{"latency_ms.fault.p99": None})
        other = [calm, calm, *(metrics(**{"latency_ms.fault.p99": v}) for v in (150.0, 160.0, 170.0))]
        primary = {"primary": "latency_ms.fault.p99"}
        a = write_run(tmp_path / "a", {"replica-kill": base}, batch="x", compare=primary)
        b = write_run(tmp_path / "b", {"replica-kill": other}, batch="x", compare=primary)
        p99 = row(runs.compare_runs([], {"a": [a], "b": [b]}), "replica-kill", "latency_ms.fault.p99")
        assert (p99.summaries["b"].n, p99.summaries["b"].censored, p99.missing["b"]) == (5, 2, 0)
        assert p99.comparisons["b"].verdict is Verdict.INCONCLUSIVE

    def test_missing_share_that_differs_gets_no_verdict(self, tmp_path: Path) -> None:
        """One side unmeasured on a trial the other measured: no verdict, and why."""
        a = write_run(tmp_path / "a", {"r": [metrics(data_loss=0)] * 5}, batch="x")
        b = write_run(
            tmp_path / "b", {"r": [metrics(data_loss=None)] + [metrics(data_loss=3)] * 4}, batch="x"
        )
        loss = row(runs.compare_runs([], {"a": [a], "b": [b]}), "r", "data_loss")
        assert loss.comparisons["b"].verdict is Verdict.NO_VERDICT
        assert "missing on 1 of 5 trials against 0 of 5" in loss.comparisons["b"].reason

    def test_several_runs_a_side_compare_run_medians(self, tmp_path: Path) -> None:
        """Separate runs, 4 a side: the run medians are the units, and a clear shift is found."""
        sides: dict[str, list[Path]] = {"before": [], "after": []}
        for i in range(4):
            sides["before"].append(
                write_run(tmp_path / f"b{i}", {"r": [metrics(recovery_time_s=30.0 + i)] * 3})
            )
            sides["after"].append(
                write_run(tmp_path / f"a{i}", {"r": [metrics(recovery_time_s=10.0 + i)] * 3})
            )
        recovery = row(runs.compare_runs([], sides), "r", "recovery_time_s")
        comparison = recovery.comparisons["after"]
        assert (comparison.units, comparison.verdict) == ("runs", Verdict.BETTER)
        assert comparison.p_value == pytest.approx(2 / 70)

    def test_secondary_metrics_wait_for_the_primary(self, tmp_path: Path) -> None:
        """Recovery (primary) equal, error rate clearly up: inconclusive, said why."""
        a = write_run(
            tmp_path / "a", {"r": [metrics(error_rate=0.01 + i / 1000) for i in range(7)]}, batch="x"
        )
        b = write_run(
            tmp_path / "b", {"r": [metrics(error_rate=0.2 + i / 1000) for i in range(7)]}, batch="x"
        )
        report = runs.compare_runs([], {"a": [a], "b": [b]})
        errors = row(report, "r", "error_rate").comparisons["b"]
        assert errors.verdict is Verdict.INCONCLUSIVE
        assert "recovery_time_s (primary) did not differ" in errors.reason
        assert errors.adjustment.startswith("Holm over")

    def test_bad_compare_settings_in_plan_json(self, tmp_path: Path) -> None:
        """A plan.json naming an unknown metric in compare is refused, naming the file."""
        a = write_run(tmp_path / "a", {"r": [metrics()]}, compare={"margins": {"recovery_tim": 2.0}})
        b = write_run(tmp_path / "b", {"r": [metrics()]})
        with pytest.raises(FileInputError, match="recovery_time_s"):
            runs.compare_runs([], {"a": [a], "b": [b]})

    def test_the_plan_names_the_metrics_it_compares(self, tmp_path: Path) -> None:
        """compare.metrics in the plan: those metrics (the primary first), unless --metric says otherwise."""
        chosen = {"metrics": ["error_rate", "downtime_cost_usd"]}
        a = write_run(tmp_path / "a", {"r": [metrics()]}, compare=chosen)
        b = write_run(tmp_path / "b", {"r": [metrics()]}, compare=chosen)
        report = runs.compare_runs([], {"a": [a], "b": [b]})
        assert report.metrics == ("error_rate", "downtime_cost_usd")
        assert [m.name for m in report.scenarios[0].metrics] == [
            "recovery_time_s",
            "error_rate",
            "downtime_cost_usd",
        ]
        assert runs.compare_runs([], {"a": [a], "b": [b]}, metrics=["kpi_lost"]).metrics == ("kpi_lost",)

    def test_unknown_correction(self, tmp_path: Path) -> None:
        """--correction takes holm or bh."""
        a = write_run(tmp_path / "a", {"r": [metrics()]})
        b = write_run(tmp_path / "b", {"r": [metrics()]})
        with pytest.raises(InputError, match="--correction"):
            runs.compare_runs([], {"a": [a], "b": [b]}, correction="bonferroni")

    def test_alpha_is_shared_over_the_pages_comparisons(self, tmp_path: Path) -> None:
        """Two scenarios, two other sides: each comparison gets alpha / 4."""
        scen = {"r": [metrics()] * 2, "s": [metrics()] * 2}
        dirs = {x: [write_run(tmp_path / x, scen)] for x in "abc"}
        report = runs.compare_runs([], dirs)
        assert (report.comparisons, report.level) == (4, pytest.approx(0.0125))

    def test_every_gate_metric_has_a_direction(self) -> None:
        """Every metric a gate may name can be compared, with a good direction."""
        for name in gates.METRIC_NAMES:
            assert runs.metric_spec(name).better in (stats.Better.LOWER, stats.Better.HIGHER)

    def test_directions_of_key_metrics(self) -> None:
        """Later impact, availability and score are better higher; the rest lower."""
        higher = {"time_to_impact_s", "availability", "resilience_score"}
        for name in runs.DEFAULT_METRICS:
            expected = stats.Better.HIGHER if name in higher else stats.Better.LOWER
            assert runs.metric_spec(name).better is expected, name
