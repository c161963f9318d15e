"""Plan files → validated models, every problem reported with its file and line."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import FileInputError, InputError
from harness.plan import loading, models
from harness.plan.loading import PLANS_DIR, load_plan

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted((ROOT / "experiments" / "plans").glob("*.yaml"))

MINIMAL = """\
name: t
load: {locustfile: loadtests/subscriptions.py}
scenarios:
  - {name: replica-kill, experiment: experiments/local/replica-kill.yaml}
"""

WritePlan = Callable[[str], Path]


@pytest.fixture
def write_plan(tmp_path: Path) -> WritePlan:
    def write(text: str) -> Path:
        path = tmp_path / "plan.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


def _problems(path: Path) -> loading.PlanError:
    with pytest.raises(loading.PlanError) as caught:
        loading.load_plan(path)
    return caught.value


class TestBundledPlans:
    def test_the_bundled_plans(self) -> None:
        """The local game day, the quick run, the release gate and the control-plane drill for the
        testbed; the cluster benchmark and the EKS game day for real clusters."""
        assert [p.stem for p in BUNDLED] == [
            "cluster-benchmark", "control-plane-drill", "eks-gameday", "local-gameday", "local-quick",
            "release-gate",
        ]  # fmt: skip
        assert loading.bundled_plans() == BUNDLED

    @pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
    def test_loads_with_absolute_existing_paths(self, path: Path) -> None:
        """Every bundled plan loads, and its locustfile and experiments resolve to real files."""
        plan = loading.load_plan(path)
        assert plan.load.locustfile.is_absolute() and plan.load.locustfile.is_file()
        folder = "local" if plan.target.kind == "testbed" else ("kubernetes", "aws")
        for scenario in plan.scenarios:
            assert scenario.experiment.is_absolute() and scenario.experiment.is_file()
            assert scenario.experiment.parent.parent == ROOT / "experiments"
            assert scenario.experiment.parent.name in folder

    def test_local_gameday_runs_the_five_faults(self) -> None:
        """The default game day runs the five faults on the managed testbed."""
        plan = loading.load_plan(loading.DEFAULT_PLAN)
        assert [s.name for s in plan.scenarios] == [
            "replica-kill", "node-crash", "zone-latency", "zone-partition", "etcd-leader-kill",
        ]  # fmt: skip
        assert plan.target == models.TestbedTarget(kind="testbed", profile="managed")
        assert plan.gates == [
            "recovery_time_s < 30", "error_rate < 0.05", "data_loss == 0", "faults_without_effect == 0"
        ]  # fmt: skip

    def test_local_quick_windows(self) -> None:
        """The quick plan runs one replica kill with the short windows."""
        plan = loading.load_plan(loading.PLANS_DIR / "local-quick.yaml")
        assert [s.name for s in plan.scenarios] == ["replica-kill"]
        assert plan.windows == models.Windows(warmup_s=3, baseline_s=10, observe_s=30, stability_s=5)


class TestDefaults:
    def test_the_evidence_settings_reach_scoring(self, write_plan: WritePlan) -> None:
        """slo.confidence and slo.impact_buckets are the scoring policy's, as the plan sets them."""
        from harness import scoring

        plan = loading.load_plan(write_plan(MINIMAL + "slo: {confidence: 0.9, impact_buckets: 5}\n"))
        policy = scoring.settings_for(plan).policy
        assert (policy.confidence, policy.impact_buckets) == (0.9, 5)

    def test_the_baseline_settings_reach_scoring(self, write_plan: WritePlan) -> None:
        """A steady baseline is required by default; the plan may go on anyway or move the late-share limit."""
        from harness import scoring

        assert scoring.settings_for(loading.load_plan(write_plan(MINIMAL))).baseline.require_steady
        text = MINIMAL + "baseline: {require_steady: false, max_generator_late_share: 0.02}\n"
        settings = scoring.settings_for(loading.load_plan(write_plan(text))).baseline
        assert (settings.require_steady, settings.max_generator_late_share) == (False, 0.02)

    def test_minimal_plan_gets_documented_defaults(self, write_plan: WritePlan) -> None:
        """A plan with only name, load and scenarios gets the defaults DESIGN.md names."""
        plan = loading.load_plan(write_plan(MINIMAL))
        assert plan.target == models.TestbedTarget(kind="testbed", profile="managed")
        assert (plan.load.host, plan.load.users, plan.load.bucket_s, plan.load.pacing_s) == (
            "auto",
            20,
            1.0,
            1.0,
        )
        assert plan.windows == models.Windows(warmup_s=5, baseline_s=20, observe_s=90, stability_s=10)
        assert plan.slo == models.Slo(
            error_rate=None, p95_ms=None, kpi_drop=None, confidence=0.95, impact_buckets=3
        )
        assert plan.cost.per_hour_usd == 40_000
        assert (plan.scenarios[0].trials, plan.scenarios[0].vars, plan.scenarios[0].gates) == (1, {}, [])

    def test_with_trials_overrides_every_scenario(self) -> None:
        """`harness run --trials N`: every scenario N times, the rest of the plan unchanged."""
        plan = load_plan(PLANS_DIR / "local-gameday.yaml")
        more = plan.with_trials(5)
        assert [s.trials for s in more.scenarios] == [5] * len(plan.scenarios)
        assert [s.name for s in more.scenarios] == [s.name for s in plan.scenarios]
        assert more.gates == plan.gates and more.load == plan.load
        assert all(s.trials == 1 for s in plan.scenarios)

    def test_models_are_frozen(self, write_plan: WritePlan) -> None:
        """A loaded plan cannot be changed in place."""
        plan = loading.load_plan(write_plan(MINIMAL))
        with pytest.raises(ValueError, match="frozen"):
            plan.name = "other"  # type: ignore[misc]

    def test_kubernetes_target(self, write_plan: WritePlan) -> None:
        """A kubernetes target with its allowed contexts, namespace, selector and AWS settings loads."""
        plan = loading.load_plan(
            write_plan(
                MINIMAL.replace(
                    "{locustfile: loadtests/subscriptions.py}",
                    "{locustfile: loadtests/subscriptions.py, host: 'https://subs.example'}",
                )
                + "target: {kind: kubernetes, context: eks-staging, allowed_contexts: [eks-staging], "
                "selector: app=subs, aws: {region: eu-west-1}}\n"
            )
        )
        target = plan.target
        assert isinstance(target, models.KubernetesTarget)
        assert (target.context, target.namespace, target.selector) == ("eks-staging", "default", "app=subs")
        assert target.aws == models.AwsSettings(region="eu-west-1")


class TestPaths:
    def test_plan_folder_comes_first(self, write_plan: WritePlan, tmp_path: Path) -> None:
        """A relative path is looked for next to the plan before the working directory and the project."""
        (tmp_path / "experiments" / "local").mkdir(parents=True)
        own = tmp_path / "experiments" / "local" / "replica-kill.yaml"
        own.write_text("title: mine\n")
        plan = loading.load_plan(write_plan(MINIMAL))
        assert plan.scenarios[0].experiment == own
        assert plan.load.locustfile == ROOT / "loadtests" / "subscriptions.py"

    def test_working_directory_before_project_root(
        self, write_plan: WritePlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The working directory is tried after the plan's folder and before the project root."""
        plan_path = write_plan(MINIMAL.replace("experiments/local/replica-kill.yaml", "exp.yaml"))
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        (cwd / "exp.yaml").write_text("title: here\n")
        monkeypatch.chdir(cwd)
        assert loading.load_plan(plan_path).scenarios[0].experiment == cwd / "exp.yaml"

    def test_missing_file_names_every_path_tried(self, write_plan: WritePlan, tmp_path: Path) -> None:
        """A file found nowhere is an error at its key's line naming each place looked."""
        path = write_plan(MINIMAL.replace("experiments/local/replica-kill.yaml", "nope/gone.yaml"))
        error = _problems(path)
        message = str(error)
        assert message.startswith(
            f"{path}:4: scenarios.0.experiment: file 'nope/gone.yaml' not found (tried "
        )
        for base in (tmp_path, Path.cwd(), ROOT):
            assert str(base / "nope" / "gone.yaml") in message

    def test_missing_absolute_file(self, write_plan: WritePlan, tmp_path: Path) -> None:
        """An absolute path is tried as it is."""
        missing = tmp_path / "absent.py"
        error = _problems(write_plan(MINIMAL.replace("loadtests/subscriptions.py", str(missing))))
        assert (
            str(error)
            == f"{tmp_path / 'plan.yaml'}:2: load.locustfile: file '{missing}' not found (tried {missing})"
        )


class TestResolvePlanArg:
    def test_none_is_the_local_gameday(self) -> None:
        """Without a PLAN, `harness run` runs the bundled local game day."""
        assert loading.resolve_plan_arg(None) == ROOT / "experiments" / "plans" / "local-gameday.yaml"

    def test_bare_name_is_a_bundled_plan(self) -> None:
        """A bare name picks the bundled plan of that name."""
        assert loading.resolve_plan_arg("local-quick") == ROOT / "experiments" / "plans" / "local-quick.yaml"

    def test_path_as_given(self, write_plan: WritePlan) -> None:
        """Anything else is a path."""
        path = write_plan(MINIMAL)
        assert loading.resolve_plan_arg(str(path)) == path

    @pytest.mark.parametrize("arg", ["no-such-plan", "some/where.yaml"])
    def test_missing_is_an_input_error(self, arg: str) -> None:
        """A plan that is neither bundled nor a file is an input error naming it and the bundled plans."""
        with pytest.raises(
            InputError,
            match=rf"PLAN: {arg} does not exist \(bundled plans: cluster-benchmark, control-plane-drill, "
            r"eks-gameday, local-gameday, local-quick, release-gate\)",
        ):
            loading.resolve_plan_arg(arg)


# Each case: plan text, then (line, message) for every problem expected, in order.
PROBLEMS = [
    pytest.param(
        MINIMAL + "gates: [error_rate < 0.01, control_plane.watch_coverage > 0.9]\n",
        [
            (
                5,
                "gates.1: control_plane.watch_coverage is measured on kubernetes targets only; the "
                "testbed has no API server to probe",
            )
        ],
        id="control-plane-gate-on-the-testbed",
    ),
    pytest.param(
        MINIMAL.replace(
            "{locustfile: loadtests/subscriptions.py}",
            "{locustfile: loadtests/subscriptions.py, host: 'https://subs.example'}",
        )
        + "target: {kind: kubernetes, allowed_contexts: [in-cluster], selector: app=subs}\n"
        + "gates: [control_plane.write_unavailable_s < 5]\n",
        [
            (
                6,
                "gates.0: control_plane.write_unavailable_s is measured on the testbed only (from its "
                "etcd probes and ground truth)",
            )
        ],
        id="testbed-control-plane-gate-on-kubernetes",
    ),
    pytest.param(
        MINIMAL.replace("scenarios:", "userz: 5\nscenarios:"),
        [
            (
                3,
                "userz: unknown key 'userz'; allowed: name, description, target, load, windows, slo, baseline, abort, scenarios, gates, cost",
            )
        ],
        id="unknown-top-level-key",
    ),
    pytest.param(
        """\
        name: t
        load:
          locustfile: loadtests/subscriptions.py
          userz: 5
        scenarios:
          - {name: a, experiment: experiments/local/replica-kill.yaml}
        """,
        [
            (
                4,
                "load.userz: unknown key 'userz'; allowed: locustfile, host, users, spawn_rate, shape, processes, pacing_s, bucket_s",
            )
        ],
        id="unknown-nested-key",
    ),
    pytest.param(
        MINIMAL + "target: {kind: kubernetes, allowed_contexts: [in-cluster], selector: app=subs, zone: x}\n",
        [
            (
                5,
                "target.zone: unknown key 'zone'; allowed: kind, context, allowed_contexts, namespace, selector, aws",
            )
        ],
        id="unknown-key-in-union-member",
    ),
    pytest.param(
        MINIMAL.replace(
            "{locustfile: loadtests/subscriptions.py}",
            "{locustfile: loadtests/subscriptions.py, users: many}",
        ),
        [(2, "load.users: expected a whole number (got 'many')")],
        id="wrong-type",
    ),
    pytest.param(
        MINIMAL.replace(
            "{locustfile: loadtests/subscriptions.py}",
            "{locustfile: loadtests/subscriptions.py, users: 0, bucket_s: 90}",
        ),
        [
            (2, "load.users: expected a number >= 1 (got 0)"),
            (2, "load.bucket_s: expected a number <= 60 (got 90)"),
        ],
        id="out-of-range",
    ),
    pytest.param(
        MINIMAL.replace(
            "{locustfile: loadtests/subscriptions.py}",
            "{locustfile: loadtests/subscriptions.py, shape: wave}",
        ),
        [(2, "load.shape: expected 'constant', 'step', 'spike' or 'diurnal' (got 'wave')")],
        id="wrong-literal",
    ),
    pytest.param(
        MINIMAL.replace(
            "{locustfile: loadtests/subscriptions.py}",
            "{locustfile: loadtests/subscriptions.py, host: subs.local}",
        ),
        [
            (
                2,
                "load.host: expected 'auto' or an http(s) URL such as http://subs.example:8000 (got 'subs.local')",
            )
        ],
        id="bad-host",
    ),
    pytest.param(
        "load: {locustfile: loadtests/subscriptions.py}\nscenarios: []\n",
        [(1, "name: required key is missing"), (2, "scenarios: expected at least 1 item(s) (got [])")],
        id="missing-and-empty",
    ),
    pytest.param(
        """\
        name: t
        load:
          locustfile: loadtests/subscriptions.py
          userz: 5
        scenarios:
          - name: a
            experiment: experiments/local/replica-kill.yaml
            trials: 0
        gates:
          - recovery_time_s <
        """,
        [
            (4, "load.userz: unknown key 'userz'"),
            (8, "scenarios.0.trials: expected a number >= 1 (got 0)"),
            (
                10,
                "gates.0: gate 'recovery_time_s <': column 18: expected a number, a metric name, '(' or '-' (got the end of the gate)",
            ),
        ],
        id="several-problems-at-once",
    ),
    pytest.param(
        MINIMAL + "gates:\n  - data_loss == 0\n  - recovery_tme_s < 30\n",
        [
            (
                7,
                "gates.1: gate 'recovery_tme_s < 30': unknown metric 'recovery_tme_s' ('recovery_tme_s': did you mean 'recovery_time_s'?); known: ",
            )
        ],
        id="unknown-metric-in-gate",
    ),
    pytest.param(
        MINIMAL + "  - name: replica-kill\n    experiment: experiments/local/node-crash.yaml\n",
        [
            (
                5,
                "scenarios.1.name: scenario name 'replica-kill' is already used by scenario 0; names must be unique",
            )
        ],
        id="duplicate-scenario-names",
    ),
    pytest.param(
        MINIMAL.replace("name: replica-kill", "name: Replica Kill"),
        [(4, "scenarios.0.name: expected a slug: lowercase letters, digits and '-'")],
        id="scenario-name-not-a-slug",
    ),
    pytest.param(
        MINIMAL.replace(
            "experiment: experiments/local/replica-kill.yaml",
            "experiment: experiments/local/replica-kill.yaml, vars: {x: [1, 2]}",
        ),
        [(4, "scenarios.0.vars.x: expected a string, a number or a boolean (got [1, 2])")],
        id="var-not-a-scalar",
    ),
    pytest.param(
        MINIMAL + "target:\n  kind: kubernetes\n  context: prod\n  selector: app=subs\n",
        [(5, "target.allowed_contexts: required key is missing")],
        id="kubernetes-without-allowed-contexts",
    ),
    pytest.param(
        MINIMAL
        + "target:\n  kind: kubernetes\n  context: prod\n  allowed_contexts: [staging]\n  selector: app=subs\n",
        [(7, "target.context: context 'prod' is not in allowed_contexts (staging)")],
        id="kubernetes-context-not-allowed",
    ),
    pytest.param(
        MINIMAL + "target: {kind: kubernetes, allowed_contexts: [], selector: app=subs}\n",
        [(5, "target.allowed_contexts: expected at least 1 item(s) (got [])")],
        id="kubernetes-allowed-contexts-empty",
    ),
    pytest.param(
        MINIMAL + "target: {kind: kubernetes, allowed_contexts: [in-cluster], selector: app=subs}\n",
        [(2, "load.host: a kubernetes target needs the service's URL: 'auto' finds only the testbed's")],
        id="kubernetes-needs-a-host",
    ),
    pytest.param(
        MINIMAL + "target:\n  kind: cloud\n",
        [(6, "target.kind: expected kind 'testbed', 'kubernetes' (got 'cloud')")],
        id="unknown-target-kind",
    ),
    pytest.param(
        MINIMAL + "target: {profile: managed}\n",
        [(5, "target.kind: required key is missing: expected one of 'testbed', 'kubernetes'")],
        id="target-without-kind",
    ),
    pytest.param(
        MINIMAL
        + "abort:\n  - {metric: error_rate, above: 0.5, below: 0.1}\n  - {metric: p99_ms, above: 1}\n",
        [
            (6, "abort.0: expected exactly one of 'above' and 'below'"),
            (7, "abort.1.metric: expected 'error_rate' or 'p95_ms' (got 'p99_ms')"),
        ],
        id="abort-conditions",
    ),
    pytest.param(
        MINIMAL + "windows: {observe_s: 5}\n",
        [(5, "windows.stability_s: expected at most observe_s (5): recovery could never be seen")],
        id="stability-longer-than-observation",
    ),
    pytest.param(
        MINIMAL + "slo: {error_rate: 2, kpi_drop: -1}\n",
        [
            (5, "slo.error_rate: expected a number <= 1 (got 2)"),
            (5, "slo.kpi_drop: expected a number >= 0 (got -1)"),
        ],
        id="slo-ranges",
    ),
    pytest.param(
        MINIMAL + "slo: {confidence: 1, impact_buckets: 0}\n",
        [
            (5, "slo.confidence: expected a number < 1 (got 1)"),
            (5, "slo.impact_buckets: expected a number >= 1 (got 0)"),
        ],
        id="slo-evidence-ranges",
    ),
    pytest.param(
        MINIMAL + "name: again\n",
        [(5, "name: duplicate key (first at line 1); YAML would keep only this one")],
        id="duplicate-yaml-key",
    ),
    pytest.param(
        "name: t\nload: [1, 2\n",
        [(3, "YAML syntax: while parsing a flow sequence: expected ',' or ']', but got '<stream end>'")],
        id="yaml-syntax-error",
    ),
    pytest.param(
        "", [(1, "expected a mapping with name, load and scenarios (the file is empty)")], id="empty-file"
    ),
    pytest.param(
        "- a\n- b\n",
        [(1, "expected a mapping with name, load and scenarios (got [a, b])")],
        id="not-a-mapping",
    ),
]


class TestProblems:
    @pytest.mark.parametrize(("text", "expected"), PROBLEMS)
    def test_reported_with_file_and_line(
        self, write_plan: WritePlan, text: str, expected: list[tuple[int, str]]
    ) -> None:
        """Every problem is reported, each as FILE:LINE: key: what was expected (got value)."""
        path = write_plan(text)
        error = _problems(path)
        assert [(p.path, p.line) for p in error.problems] == [(path, line) for line, _ in expected]
        for problem, (line, message) in zip(error.problems, expected, strict=True):
            assert str(problem).startswith(f"{path}:{line}: {message}")
            assert f"{path}:{line}: {message}" in str(error)
        assert isinstance(error, FileInputError) and error.exit_code == 2

    def test_several_problems_are_listed_in_one_message(self, write_plan: WritePlan) -> None:
        """With more than one problem the message counts them and lists one per line."""
        path = write_plan(
            MINIMAL.replace(
                "{locustfile: loadtests/subscriptions.py}",
                "{locustfile: loadtests/subscriptions.py, users: 0, spawn_rate: 0}",
            )
        )
        lines = str(_problems(path)).splitlines()
        assert lines[0] == f"{path}: 2 problems:"
        assert lines[1:] == [
            f"  {path}:2: load.users: expected a number >= 1 (got 0)",
            f"  {path}:2: load.spawn_rate: expected a number > 0 (got 0)",
        ]

    @pytest.mark.parametrize(
        ("baseline", "message"),
        [
            ("{require_steady: maybe}", "baseline.require_steady: expected true or false"),
            (
                "{max_generator_late_share: 5}",
                "baseline.max_generator_late_share: expected a number <= 1 (got 5)",
            ),
            ("{require_stedy: false}", "baseline.require_stedy: unknown key"),
        ],
    )
    def test_a_bad_baseline_section_names_its_line(
        self, write_plan: WritePlan, baseline: str, message: str
    ) -> None:
        """A wrong value or key under `baseline` is refused with the file, the line and the key."""
        path = write_plan(MINIMAL + f"baseline: {baseline}\n")
        assert f"{path}:5: {message}" in str(_problems(path))

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A plan that does not exist is an input error naming it."""
        with pytest.raises(loading.PlanError, match=r"absent\.yaml: cannot read the file: No such file"):
            loading.load_plan(tmp_path / "absent.yaml")


class TestScenarioGates:
    @pytest.mark.parametrize(
        ("plan_gates", "scenario_gates", "expected"),
        [
            (["recovery_time_s < 30", "data_loss == 0"], [], ["recovery_time_s < 30", "data_loss == 0"]),
            (
                ["recovery_time_s < 30", "data_loss == 0"],
                ["recovery_time_s <= 10"],
                ["data_loss == 0", "recovery_time_s <= 10"],
            ),
            (
                ["error_rate < 0.05"],
                ["peak_error_rate < 0.5"],
                ["error_rate < 0.05", "peak_error_rate < 0.5"],
            ),
            (["kpi_lost/kpi < 0.1"], ["kpi_lost / kpi < 0.2"], ["kpi_lost / kpi < 0.2"]),
        ],
    )
    def test_scenario_gates_override_same_subject(
        self, plan_gates: list[str], scenario_gates: list[str], expected: list[str]
    ) -> None:
        """A scenario's gate replaces the plan's gates on the same left side; the rest still apply."""
        scenario = models.Scenario(name="s", experiment=Path("e.yaml"), gates=scenario_gates)
        plan = models.Plan(
            name="p", load=models.LoadSpec(locustfile=Path("l.py")), scenarios=[scenario], gates=plan_gates
        )
        assert plan.gates_for(scenario) == expected


class TestCompareSettings:
    def test_defaults(self, write_plan: WritePlan) -> None:
        """Without a compare block: recovery time is primary, Holm, no margins."""
        plan = load_plan(
            write_plan(
                MINIMAL.replace(
                    "loadtests/subscriptions.py", str(ROOT / "loadtests/subscriptions.py")
                ).replace("experiments/local", str(ROOT / "experiments/local"))
            )
        )
        assert plan.compare == models.CompareSettings(
            primary="recovery_time_s", margins={}, correction="holm"
        )
        assert plan.scenarios[0].primary is None

    def test_metric_names_are_checked_against_the_registry(self, write_plan: WritePlan) -> None:
        """A misspelt primary or margin metric is a problem with its line and the closest name."""
        text = (
            MINIMAL
            + "compare:\n  primary: recovery_time\n  margins: {error_rate: 0.01, latency_ms.fault.p99: -1}\n"
        )
        problems = [str(p) for p in _problems(write_plan(text)).problems]
        assert any(
            ":6: compare.primary: unknown metric 'recovery_time'; did you mean 'recovery_time_s'?" in p
            for p in problems
        )
        assert any(":7: compare.margins.latency_ms.fault.p99: expected a number > 0" in p for p in problems)
