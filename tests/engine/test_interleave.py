"""The order of an interleaved run, and the sides `--profile` and `--context` make of a plan.

Pure: no testbed is started here; tests/engine/test_interleaved_run.py runs two sides for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.engine import commands, interleave, prepare
from harness.errors import HarnessError, InputError
from harness.plan import Plan, load_plan
from harness.result import files as result_files
from tests.compare import metrics, write_run
from tests.engine.test_commands import Recorder

ROOT = Path(__file__).parents[2]
PLAN = ROOT / "experiments" / "plans" / "local-quick.yaml"


def order(turns: list[interleave.Turn], names: str = "AB") -> list[str]:
    return [f"{turn.scenario}{turn.trial}{names[turn.side]}" for turn in turns]


class TestSchedule:
    def test_two_sides_alternate_each_block(self) -> None:
        """Trial k runs on both sides before trial k + 1, in the order AB, BA, AB."""
        turns = interleave.schedule([("s", 3)], 2)
        assert order(turns) == ["s1A", "s1B", "s2B", "s2A", "s3A", "s3B"]

    def test_each_scenario_starts_its_blocks_in_the_sides_order(self) -> None:
        """Blocks are per scenario: each scenario's first trial runs on the baseline first."""
        turns = interleave.schedule([("x", 2), ("y", 1)], 2)
        assert order(turns) == ["x1A", "x1B", "x2B", "x2A", "y1A", "y1B"]

    def test_three_sides_reverse_so_positions_balance_over_two_blocks(self) -> None:
        """With N sides every side's positions over a pair of blocks add up to N - 1 (0-based)."""
        turns = interleave.schedule([("s", 2)], 3)
        assert order(turns, "ABC") == ["s1A", "s1B", "s1C", "s2C", "s2B", "s2A"]
        positions: dict[int, int] = {}
        for index, turn in enumerate(turns):
            positions[turn.side] = positions.get(turn.side, 0) + index % 3
        assert set(positions.values()) == {2}

    def test_every_trial_of_every_side_runs_once(self) -> None:
        """Nothing is skipped or repeated, whatever the trial counts."""
        turns = interleave.schedule([("a", 5), ("b", 4)], 2)
        assert len(turns) == 18 and len(set(turns)) == 18

    def test_batch_ids_differ_and_name_the_plan(self) -> None:
        """Two commands started in one second still get different batch ids."""
        first, second = interleave.new_batch_id("quick"), interleave.new_batch_id("quick")
        assert first != second and "-quick-batch-" in first


def kubernetes_plan(**target: object) -> Plan:
    return Plan.model_validate(
        {
            "name": "k",
            "target": {
                "kind": "kubernetes",
                "context": "sm",
                "allowed_contexts": ["sm", "eks"],
                "selector": "app=subs",
                **target,
            },
            "load": {
                "locustfile": str(ROOT / "loadtests/subscriptions.py"),
                "host": "http://subs.sm.example",
            },
            "scenarios": [{"name": "s", "experiment": str(ROOT / "experiments/kubernetes/pod-kill.yaml")}],
        }
    )


class TestSides:
    def test_profiles_override_the_plans_target_in_the_order_given(self) -> None:
        """Each --profile is a side with that testbed profile; the first is the baseline."""
        sides = prepare.sides(load_plan(PLAN), ["self-managed", "managed"], [], None)
        assert [s.name for s in sides] == ["self-managed", "managed"]
        assert [s.plan.target.profile for s in sides] == ["self-managed", "managed"]  # type: ignore[union-attr]

    def test_contexts_set_context_url_and_drop_the_plans_cluster_name(self) -> None:
        """Each --context CONTEXT=URL is a side on that context, loading that URL, named by it."""
        plan = kubernetes_plan(cluster="prod")
        sides = prepare.sides(plan, [], ["sm=http://subs.sm.example", "eks=https://subs.eks.example"], None)
        assert [s.name for s in sides] == ["sm", "eks"]
        assert [s.plan.target.context for s in sides] == ["sm", "eks"]  # type: ignore[union-attr]
        assert [s.plan.target.cluster for s in sides] == [None, None]  # type: ignore[union-attr]
        assert [s.plan.load.host for s in sides] == ["http://subs.sm.example", "https://subs.eks.example"]

    def test_no_flag_is_the_plan_as_it_is(self) -> None:
        """Without --profile or --context there is one side, the plan."""
        plan = load_plan(PLAN)
        (side,) = prepare.sides(plan, [], [], None)
        assert side.plan == plan

    @pytest.mark.parametrize(
        ("profiles", "contexts", "cluster", "words"),
        [
            (["bogus"], [], None, ["--profile", "'bogus'"]),
            (["managed", "managed"], [], None, ["--profile managed", "twice"]),
            (["managed"], [], "x", ["--cluster"]),
            ([], ["sm=http://a.example"], None, ["--context sm", "--profile"]),
            (["managed"], ["sm"], None, ["--profile, --context"]),
        ],
    )
    def test_bad_testbed_sides_name_the_flag(
        self, profiles: list[str], contexts: list[str], cluster: str | None, words: list[str]
    ) -> None:
        """Every wrong side is an InputError (exit 2) naming the flag."""
        with pytest.raises(InputError) as caught:
            prepare.sides(load_plan(PLAN), profiles, contexts, cluster)
        assert all(word in str(caught.value) for word in words), str(caught.value)

    @pytest.mark.parametrize(
        ("contexts", "cluster", "words"),
        [
            (["prod=http://a.example"], None, ["--context prod=http://a.example", "allowed_contexts"]),
            (["sm", "eks=http://b.example"], None, ["--context sm", "URL"]),
            (["sm=http://a.example", "eks=http://a.example"], None, ["http://a.example", "twice"]),
            (["sm=http://a.example", "sm=http://b.example"], None, ["--context sm", "twice"]),
            (["sm=http://a.example", "eks=http://b.example"], "c", ["--cluster", "2 sides"]),
            (["eks=ftp://b.example"], None, ["--context eks=ftp://b.example"]),
        ],
    )
    def test_bad_cluster_sides_name_the_flag(
        self, contexts: list[str], cluster: str | None, words: list[str]
    ) -> None:
        """A context outside allowed_contexts, a missing or shared URL, a repeated context: exit 2."""
        with pytest.raises(InputError) as caught:
            prepare.sides(kubernetes_plan(), [], contexts, cluster)
        assert all(word in str(caught.value) for word in words), str(caught.value)


class FakeEngine:
    """runner.Engine's steps as run_sides takes them, recorded; no target, no load."""

    def __init__(
        self, name: str, log: list[str], trials: int = 2, stop_at: tuple[int, Exception] | None = None
    ):
        self.side = name
        self.plan = load_plan(PLAN).with_trials(trials)
        self.head: dict[str, object] = {"status": "running"}
        self.log = log
        self.stop_at = stop_at
        self.finished = False
        self.run_dir = Path(f"/nonexistent/{name}")
        """Where its result would be; tests that read results point it at a written run."""

    def start(self) -> None:
        self.log.append(f"start {self.side}")

    def open_target(self) -> None:
        self.log.append(f"open {self.side}")

    def run_trial(self, scenario: object, trial: int) -> str:
        self.log.append(f"{self.side}{trial}")
        if self.stop_at is not None and self.stop_at[0] == trial:
            raise self.stop_at[1]
        return "completed"

    def fail(self, exc: Exception) -> None:
        self.head.update(status="failed", error=str(exc))

    def finish(self) -> str:
        self.finished = True
        return f"result {self.side} {self.head['status']}"


class TestRunSides:
    def test_trials_take_turns_and_every_side_completes(self) -> None:
        """Both targets are opened before the first trial; trials run AB, BA; both complete."""
        log: list[str] = []
        engines = [FakeEngine("A", log), FakeEngine("B", log)]
        results = interleave.run_sides(engines)  # type: ignore[arg-type]
        assert log[:4] == ["start A", "start B", "open A", "open B"]
        assert [line for line in log[4:]] == ["A1", "B1", "B2", "A2"]
        assert results == ["result A completed", "result B completed"]  # type: ignore[comparison-overlap]

    def test_an_interrupt_stops_every_side_and_writes_each(self) -> None:
        """Ctrl-C during B's first trial: no further trial, both folders written as interrupted."""
        log: list[str] = []
        engines = [FakeEngine("A", log), FakeEngine("B", log, stop_at=(1, KeyboardInterrupt()))]
        with pytest.raises(interleave.Interrupted):
            interleave.run_sides(engines)  # type: ignore[arg-type]
        assert log[4:] == ["A1", "B1"]
        assert all(e.finished and e.head["status"] == "interrupted" for e in engines)

    def test_a_failing_side_fails_and_stops_the_others(self) -> None:
        """A HarnessError out of A's trial is A's error; B is stopped, naming A; both are written."""
        log: list[str] = []
        engines = [FakeEngine("A", log, stop_at=(2, HarnessError("heal failed"))), FakeEngine("B", log)]
        with pytest.raises(HarnessError, match="heal failed"):
            interleave.run_sides(engines)  # type: ignore[arg-type]
        assert log[4:] == ["A1", "B1", "B2", "A2"]
        assert engines[0].head == {"status": "failed", "error": "heal failed"}
        assert engines[1].head["status"] == "failed" and "side A" in str(engines[1].head["error"])
        assert all(e.finished for e in engines)


class TestSideComparison:
    def test_the_sides_comparison_is_written_beside_the_runs(self, tmp_path: Path) -> None:
        """After the sides finish, compare.html and compare.md land in the folder given, each side
        under its name, the first side the baseline, as `harness compare --label` writes them."""
        reports = tmp_path / "reports"
        slow = [metrics(recovery_time_s=20.0 + i) for i in range(5)]
        fast = [metrics(recovery_time_s=3.0 + i / 10) for i in range(5)]
        sides = [
            SimpleNamespace(side="self-managed", run_dir=write_run(
                reports / "r1", {"replica-kill": slow}, target={"kind": "testbed", "profile": "self-managed"},
                batch="b1")),
            SimpleNamespace(side="managed", run_dir=write_run(reports / "r2", {"replica-kill": fast}, batch="b1")),
        ]  # fmt: skip
        html = commands.write_side_comparison(sides, reports / "compare-b1")  # type: ignore[arg-type]
        assert html == reports / "compare-b1" / "compare.html" and html.exists()
        text = (reports / "compare-b1" / "compare.md").read_text()
        assert text.startswith("# Comparison: **managed** against **self-managed**")
        assert "better on recovery_time_s" in text

    def test_a_finished_run_of_sides_ends_with_their_comparison_and_the_worst_exit_code(
        self, tmp_path: Path
    ) -> None:
        """Stand-in engines run their turns; the end prints each report, writes the comparison in
        compare-BATCH beside the runs and prints its path, then the redo command; a gate failed on
        one side makes the exit code 1 (the comparison does not change it)."""
        reports = tmp_path / "reports"
        log: list[str] = []
        good = [metrics(recovery_time_s=3.0 + i / 10) for i in range(5)]
        engines = []
        for name, trials, passed in (
            ("self-managed", [metrics(recovery_time_s=25.0)] * 5, False),
            ("managed", good, True),
        ):
            engine = FakeEngine(name, log, trials=5)
            engine.run_dir = write_run(reports / name, {"replica-kill": trials}, batch="b1")
            (engine.run_dir / "summary.md").write_text(f"summary of {name}")
            if not passed:
                data = json.loads((engine.run_dir / "result.json").read_text())
                data["passed"] = False
                (engine.run_dir / "result.json").write_text(json.dumps(data))
            engines.append(engine)
        interleave.run_sides(engines)  # type: ignore[arg-type]
        results = [result_files.read(e.run_dir / "result.json") for e in engines]
        output = Recorder()
        code = commands.finish_sides(engines, results, reports / "compare-b1", output)  # type: ignore[arg-type]
        assert code == 1, "the worst side's: a gate failed on self-managed"
        printed = [text for stream, text in output.lines if stream == "out"]
        html = reports / "compare-b1" / "compare.html"
        assert html.exists() and (reports / "compare-b1" / "compare.md").exists()
        assert printed[-2:] == [f"comparison: {html}", "compare: " + commands.compare_command(engines)]  # type: ignore[arg-type]
        assert (
            "summary of managed" in printed
            and f"report (managed): {reports / 'managed' / 'report.html'}" in printed
        )

    def test_a_comparison_that_cannot_be_made_is_a_warning(self, tmp_path: Path) -> None:
        """Sides with no scenario in common: no comparison, a warning naming why; the exit code is the sides'."""
        reports = tmp_path / "reports"
        sides = [
            SimpleNamespace(side="a", run_dir=write_run(reports / "a", {"replica-kill": [metrics()]})),
            SimpleNamespace(side="b", run_dir=write_run(reports / "b", {"node-crash": [metrics()]})),
        ]
        for side in sides:
            (side.run_dir / "summary.md").write_text("")
        results = [result_files.read(side.run_dir / "result.json") for side in sides]
        output = Recorder()
        assert commands.finish_sides(sides, results, reports / "compare-x", output, quiet=True) == 0  # type: ignore[arg-type]
        assert any(stream == "warning" and "no comparison written" in text for stream, text in output.lines)
        assert not (reports / "compare-x").exists()
