"""The history store: runs recorded and listed, per-run medians, trends and gate functions, on
SQLite (the default) and on a real PostgreSQL."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError, InputError
from harness.plan import gates
from harness.ports import free_port
from harness.result import ResultFileError
from harness.store import history

ROOT = Path(__file__).resolve().parents[2]
MANAGED = {"kind": "testbed", "profile": "managed", "url": "http://127.0.0.1:18080"}
SELF_MANAGED = {"kind": "testbed", "profile": "self-managed"}


def scenario(name: str, trial: int = 1, status: str = "completed", **metrics: Any) -> dict[str, Any]:
    """A result.json scenario entry with the given metrics (nested latency included)."""
    full = {"recovery_time_s": 10.0, "error_rate": 0.01, "latency_ms": {"fault": {"p99": 250.0}}}
    full.update(metrics)
    return {"name": name, "trial": trial, "status": status, "passed": status == "completed", "metrics": full}


def result(
    run_id: str,
    started: float,
    scenarios: list[dict[str, Any]],
    plan: str = "gameday",
    target: dict[str, Any] | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """A result.json as the engine writes it, trimmed to what the history reads."""
    return {
        "schema": "harness.result/v1",
        "run_id": run_id,
        "plan": {"name": plan, "description": None},
        "target": target or MANAGED,
        "environment": {"harness": "0.1.0", "python": "3.12.1"},
        "started": started,
        "ended": started + 300.0,
        "status": status,
        "passed": status == "completed" and all(s["passed"] for s in scenarios),
        "scenarios": scenarios,
    }


@pytest.fixture
def store(dsn: str) -> Iterator[history.HistoryStore]:
    """A fresh history store, on SQLite in tmp_path and on a real PostgreSQL database."""
    with history.HistoryStore(dsn) as opened:
        yield opened


class TestRecordAndList:
    def test_two_runs_listed_newest_first(self, store: history.HistoryStore, tmp_path: Path) -> None:
        """Two recorded runs come back newest first, with plan, target key, verdict and folder."""
        store.record(result("run-1", 1000.0, [scenario("replica-kill")]), run_dir=tmp_path / "run-1")
        store.record(
            result("run-2", 2000.0, [scenario("replica-kill", status="failed")], status="interrupted")
        )
        listed = store.runs()
        assert [r.run_id for r in listed] == ["run-2", "run-1"]
        newest, oldest = listed
        assert (newest.status, newest.passed, newest.run_dir) == ("interrupted", False, None)
        assert oldest == history.RunRecord(
            run_id="run-1",
            plan="gameday",
            target="testbed/managed",
            started=1000.0,
            ended=1300.0,
            status="completed",
            passed=True,
            run_dir=str(tmp_path / "run-1"),
            harness_version="0.1.0",
        )

    def test_filters_by_plan_and_target(self, store: history.HistoryStore) -> None:
        """Listing one plan or one target leaves the others out; the limit keeps the newest."""
        store.record(result("a", 1.0, [scenario("s")], plan="gameday"))
        store.record(result("b", 2.0, [scenario("s")], plan="release-gate"))
        store.record(result("c", 3.0, [scenario("s")], plan="gameday", target=SELF_MANAGED))
        store.record(result("d", 4.0, [scenario("s")], plan="gameday"))
        assert [r.run_id for r in store.runs(plan="gameday")] == ["d", "c", "a"]
        assert [r.run_id for r in store.runs(target="testbed/self-managed")] == ["c"]
        assert [r.run_id for r in store.runs(plan="gameday", target="testbed/managed")] == ["d", "a"]
        assert [r.run_id for r in store.runs(limit=2)] == ["d", "c"]
        assert store.runs(plan="nope") == []

    def test_recording_again_replaces_the_run(self, store: history.HistoryStore) -> None:
        """A re-score records the same run id again: its verdict and scenarios are replaced, not added."""
        store.record(
            result("r", 1.0, [scenario("s", 1, recovery_time_s=10.0), scenario("s", 2, recovery_time_s=30.0)])
        )
        rescored = result("r", 1.0, [scenario("s", 1, recovery_time_s=4.0)])
        rescored["passed"] = False
        store.record(rescored)
        assert [(r.run_id, r.passed) for r in store.runs()] == [("r", False)]
        assert store.metric_history("gameday", "testbed/managed", "s", "recovery_time_s") == [("r", 1.0, 4.0)]

    def test_tables_survive_reopening(self, dsn: str) -> None:
        """Opening the store again finds the runs recorded before (tables created only once)."""
        with history.HistoryStore(dsn) as first:
            first.record(result("r", 1.0, [scenario("s")]))
        with history.HistoryStore(dsn) as second:
            assert [r.run_id for r in second.runs()] == ["r"]

    def test_non_finite_metrics_are_refused_not_recorded(self, store: history.HistoryStore) -> None:
        """NaN and infinities are not numbers a result may hold (the result model refuses them,
        naming the field): nothing of such a result reaches the store."""
        with pytest.raises(ResultFileError, match=r"metrics\.error_rate.*metrics\.kpi_lost"):
            store.record(result("r", 1.0, [scenario("s", error_rate=math.nan, kpi_lost=math.inf)]))
        assert store.metric_history("gameday", "testbed/managed", "s", "error_rate") == []


class TestMetricHistory:
    def test_median_over_trials_oldest_first(self, store: history.HistoryStore) -> None:
        """One value per run, the median over its trials, oldest run first; dotted names walk nesting."""
        for i, p99s in enumerate([(100.0, 300.0, 200.0), (400.0, 500.0)]):
            trials = [scenario("s", t, latency_ms={"fault": {"p99": v}}) for t, v in enumerate(p99s, 1)]
            store.record(result(f"r{i}", 10.0 * i, trials))
        assert store.metric_history("gameday", "testbed/managed", "s", "latency_ms.fault.p99") == [
            ("r0", 0.0, 200.0),
            ("r1", 10.0, 450.0),
        ]

    def test_before_and_limit_keep_the_latest_earlier_runs(self, store: history.HistoryStore) -> None:
        """`before` excludes the run being gated and later ones; `limit` keeps the most recent."""
        for i in range(6):
            store.record(result(f"r{i}", float(i), [scenario("s", recovery_time_s=float(i))]))
        values = store.metric_history(
            "gameday", "testbed/managed", "s", "recovery_time_s", before=4.0, limit=3
        )
        assert [v for _, _, v in values] == [1.0, 2.0, 3.0]

    def test_only_completed_runs_and_trials_by_default(self, store: history.HistoryStore) -> None:
        """Interrupted runs and aborted trials are not history unless asked for."""
        store.record(
            result(
                "done",
                1.0,
                [scenario("s", 1, recovery_time_s=5.0), scenario("s", 2, "aborted", recovery_time_s=99.0)],
            )
        )
        store.record(result("cut", 2.0, [scenario("s", recovery_time_s=7.0)], status="interrupted"))
        assert store.metric_history("gameday", "testbed/managed", "s", "recovery_time_s") == [
            ("done", 1.0, 5.0)
        ]
        every = store.metric_history(
            "gameday", "testbed/managed", "s", "recovery_time_s", completed_only=False
        )
        assert every == [("done", 1.0, 52.0), ("cut", 2.0, 7.0)]

    def test_same_plan_target_and_scenario_only(self, store: history.HistoryStore) -> None:
        """Another plan, another cluster or another scenario is not this scenario's history."""
        store.record(result("mine", 1.0, [scenario("s"), scenario("other", recovery_time_s=1.0)]))
        store.record(result("plan", 2.0, [scenario("s")], plan="release-gate"))
        store.record(result("cluster", 3.0, [scenario("s")], target={"kind": "kubernetes", "context": "eks"}))
        assert [
            r for r, _, _ in store.metric_history("gameday", "testbed/managed", "s", "recovery_time_s")
        ] == ["mine"]
        assert [
            r for r, _, _ in store.metric_history("gameday", "kubernetes/eks", "s", "recovery_time_s")
        ] == ["cluster"]

    def test_unmeasured_runs_are_skipped(self, store: history.HistoryStore) -> None:
        """A run where the metric is null in every trial (or was not scored) is left out."""
        store.record(result("r1", 1.0, [scenario("s", error_rate=0.02)]))
        store.record(result("r2", 2.0, [scenario("s", error_rate=None)]))
        unscored = scenario("s")
        unscored["metrics"] = None
        store.record(result("r3", 3.0, [unscored]))
        store.record(
            result("r4", 4.0, [scenario("s", 1, error_rate=None), scenario("s", 2, error_rate=0.04)])
        )
        values = store.metric_history("gameday", "testbed/managed", "s", "error_rate")
        assert [(r, v) for r, _, v in values] == [("r1", 0.02), ("r4", 0.04)]

    def test_did_not_recover_is_kept_as_none(self, store: history.HistoryStore) -> None:
        """A null recovery time means the run did not recover: it stays in the history as None,
        and counts as slower than any recovery in the median over trials."""
        store.record(result("never", 1.0, [scenario("s", recovery_time_s=None)]))
        store.record(
            result(
                "most",
                2.0,
                [scenario("s", t, recovery_time_s=v) for t, v in [(1, None), (2, None), (3, 5.0)]],
            )
        )
        store.record(
            result(
                "some", 3.0, [scenario("s", t, recovery_time_s=v) for t, v in [(1, None), (2, 4.0), (3, 5.0)]]
            )
        )
        values = store.metric_history("gameday", "testbed/managed", "s", "recovery_time_s")
        assert [(r, v) for r, _, v in values] == [("never", None), ("most", None), ("some", 5.0)]


class TestTrends:
    def test_past_runs_then_this_run_per_scenario(self, store: history.HistoryStore) -> None:
        """Each scenario of the run gets its earlier completed runs, oldest first, then the run itself."""
        store.record(
            result(
                "r1", 1.0, [scenario("kill", recovery_time_s=10.0), scenario("zone", recovery_time_s=40.0)]
            )
        )
        store.record(result("r2", 2.0, [scenario("kill", recovery_time_s=12.0)]))
        store.record(result("cut", 2.5, [scenario("kill")], status="interrupted"))
        store.record(result("elsewhere", 2.6, [scenario("kill")], target=SELF_MANAGED))
        current = result(
            "r3",
            3.0,
            [
                scenario("kill", 1, recovery_time_s=20.0),
                scenario("kill", 2, recovery_time_s=None),
                scenario("zone", recovery_time_s=None),
            ],
        )
        store.record(current)  # the engine records before the report asks for trends
        store.record(result("later", 4.0, [scenario("kill")]))
        trends = store.trends(current, metrics=["recovery_time_s", "latency_ms.fault.p99", "kpi_lost"])
        assert list(trends) == ["kill", "zone"]
        assert [(p["run_id"], p["metrics"]["recovery_time_s"]) for p in trends["kill"]] == [
            ("r1", 10.0),
            ("r2", 12.0),
            ("r3", None),  # the median of 20 s and "did not recover" is "did not recover"
        ]
        assert trends["kill"][0] == {
            "run_id": "r1",
            "started": 1.0,
            "passed": True,
            "metrics": {"recovery_time_s": 10.0, "latency_ms.fault.p99": 250.0, "kpi_lost": None},
        }
        assert [(p["run_id"], p["metrics"]["recovery_time_s"]) for p in trends["zone"]] == [
            ("r1", 40.0),
            ("r3", None),
        ]

    def test_limit_and_first_run(self, store: history.HistoryStore) -> None:
        """`limit` keeps the latest earlier runs; a first run's trend is the run alone."""
        first = result("r0", 0.0, [scenario("s", error_rate=0.0)])
        assert [p["run_id"] for p in store.trends(first)["s"]] == ["r0"]
        for i in range(1, 6):
            store.record(result(f"r{i}", float(i), [scenario("s", error_rate=i / 100)]))
        latest = result("r6", 6.0, [scenario("s", error_rate=0.5)])
        points = store.trends(latest, limit=2)["s"]
        assert [(p["run_id"], p["metrics"]["error_rate"]) for p in points] == [
            ("r4", 0.04),
            ("r5", 0.05),
            ("r6", 0.5),
        ]


class TestHistoryFunctions:
    def test_statistics_over_the_last_n(self, store: history.HistoryStore) -> None:
        """median/mean/min/max_last(n) read the gate's metric over the last n earlier runs."""
        for i, v in enumerate([100.0, 1.0, 2.0, 9.0]):
            store.record(result(f"r{i}", float(i), [scenario("s", recovery_time_s=v)]))
        fns = history.history_functions(
            store, "gameday", "testbed/managed", "s", "recovery_time_s", before=10.0
        )
        assert sorted(fns) == sorted(gates.HISTORY_FUNCTIONS)
        assert [fns[name](3).value for name in ("median_last", "mean_last", "min_last", "max_last")] == [
            2.0,
            4.0,
            1.0,
            9.0,
        ]
        assert fns["median_last"](3).note == "median_last(3) = 2 over 3 earlier runs"
        assert fns["max_last"](10) == gates.FunctionValue(
            100.0, "max_last(10) = 100 over 4 earlier runs (only 4 recorded)"
        )

    def test_no_history_raises_no_history(self, store: history.HistoryStore) -> None:
        """Without an earlier run, the functions say so instead of inventing a value."""
        fns = history.history_functions(
            store, "gameday", "testbed/managed", "s", "recovery_time_s", before=10.0
        )
        with pytest.raises(
            gates.NoHistory,
            match=r"no earlier runs of this plan on this target .*median_last\(5\) has no value",
        ):
            fns["median_last"](5)
        with pytest.raises(gates.NoHistory, match="no history store"):
            history.history_functions(None, "gameday", "testbed/managed", "s", "recovery_time_s", 1.0)[
                "min_last"
            ](1)

    def test_runs_that_did_not_recover_count_as_slowest(self, store: history.HistoryStore) -> None:
        """An earlier run that did not recover is the slowest, and the note says how many there were."""
        for i, v in enumerate([3.0, None, 4.0]):
            store.record(result(f"r{i}", float(i), [scenario("s", recovery_time_s=v)]))
        fns = history.history_functions(
            store, "gameday", "testbed/managed", "s", "recovery_time_s", before=10.0
        )
        assert fns["median_last"](3) == gates.FunctionValue(
            4.0, "median_last(3) = 4 over 3 earlier runs, 1 of which did not recover"
        )
        assert fns["min_last"](3).value == 3.0 and fns["max_last"](3).value == math.inf

    @pytest.mark.parametrize("n", [0, 2.5, 101, -1])
    def test_bad_n_is_an_error(self, store: history.HistoryStore, n: float) -> None:
        """n must be a whole number of runs from 1 to 100."""
        fns = history.history_functions(
            store, "gameday", "testbed/managed", "s", "recovery_time_s", before=1.0
        )
        with pytest.raises(
            gates.GateError, match=r"median_last\(n\) takes one whole number n of earlier runs, from 1 to 100"
        ):
            fns["median_last"](n)


class TestTargetKey:
    @pytest.mark.parametrize(
        ("target", "key"),
        [
            (MANAGED, "testbed/managed"),
            ({"kind": "testbed", "profile": "self-managed", "nodes": []}, "testbed/self-managed"),
            ({"kind": "kubernetes", "context": "eks-staging", "namespace": "subs"}, "kubernetes/eks-staging"),
            # in-cluster runs of two clusters must not share one history: the plan names the cluster
            ({"kind": "kubernetes", "context": "in-cluster", "cluster": "eks-prod"}, "kubernetes/eks-prod"),
            ({"kind": "testbed"}, "testbed"),
            ({"kind": "nomad", "region": "x"}, "nomad"),
            ({}, "unknown"),
        ],
    )
    def test_keys(self, target: dict[str, Any], key: str) -> None:
        """The cluster a run ran against is named by kind and profile or context."""
        assert history.target_key(target) == key


class TestOpening:
    def test_default_is_sqlite_under_reports(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a flag or variable, runs go to reports/history.sqlite, created on first use."""
        monkeypatch.delenv(history.ENV_VAR, raising=False)
        reports = tmp_path / "reports"
        assert history.default_url(reports) == f"sqlite:///{reports / 'history.sqlite'}"
        with history.open_history(None, reports) as store:
            store.record(result("r", 1.0, [scenario("s")]))
        assert (reports / "history.sqlite").is_file()

    def test_environment_variable_then_flag(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """HARNESS_HISTORY_URL overrides the default, and --history overrides both."""
        monkeypatch.setenv(history.ENV_VAR, f"sqlite:///{tmp_path / 'env.sqlite'}")
        assert history.default_url(tmp_path) == f"sqlite:///{tmp_path / 'env.sqlite'}"
        with history.open_history(None, tmp_path / "reports"):
            pass
        with history.open_history(f"sqlite:///{tmp_path / 'flag.sqlite'}", tmp_path / "reports"):
            pass
        assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == ["env.sqlite", "flag.sqlite"]
        assert not (tmp_path / "reports" / "history.sqlite").exists()

    def test_a_file_path_is_an_sqlite_file_there(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--history or HARNESS_HISTORY_URL may name an SQLite file by its path, such as a file a CI
        cache restores; a relative path is taken from the working directory."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv(history.ENV_VAR, "cache/env.sqlite")
        with history.open_history(None, tmp_path / "reports") as store:
            store.record(result("e", 1.0, [scenario("s")]))
        with history.open_history("cache/flag.db", tmp_path / "reports") as store:
            store.record(result("f", 1.0, [scenario("s")]))
        assert sorted(p.name for p in (tmp_path / "cache").iterdir() if "-" not in p.name) == [
            "env.sqlite",
            "flag.db",
        ]
        with history.open_history(str(tmp_path / "cache" / "env.sqlite"), tmp_path) as store:
            assert [r.run_id for r in store.runs()] == ["e"]

    @pytest.mark.parametrize(
        "url",
        [
            "not a url",
            "history.sqlite.bak",
            "user:s3cret@db.example/harness",
            "nosuchdb://u:s3cret@host/db",
            "postgresql://u:s3cret@[::1/h",
            "postgresql://u:s3cret@host:port/db",
        ],
    )
    def test_bad_url_names_the_flag(self, tmp_path: Path, url: str) -> None:
        """A URL that is not one is bad input naming --history and what was expected, password hidden."""
        with pytest.raises(InputError) as caught:
            history.open_history(url, tmp_path)
        message = str(caught.value)
        assert message.startswith("--history: ")
        assert "expected an SQLAlchemy database URL such as sqlite:///" in message
        assert "s3cret" not in message

    def test_missing_driver_is_bad_input(self, tmp_path: Path) -> None:
        """A database whose driver is not installed is bad input naming the flag and the driver."""
        with pytest.raises(InputError) as caught:
            history.open_history("mysql://harness:s3cret@db.example/harness", tmp_path)
        assert str(caught.value).startswith("--history: the database driver for 'mysql' is not installed")
        assert "s3cret" not in str(caught.value)

    def test_bad_url_in_the_environment_names_the_variable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The same mistake in HARNESS_HISTORY_URL names the variable."""
        monkeypatch.setenv(history.ENV_VAR, "postgres-db-on-the-corner")
        with pytest.raises(InputError, match=r"^HARNESS_HISTORY_URL: expected an SQLAlchemy database URL"):
            history.open_history(None, tmp_path)

    def test_unreachable_database_is_a_clear_error(self, tmp_path: Path) -> None:
        """A PostgreSQL nobody listens on is a HarnessError naming the store, password masked."""
        url = f"postgresql://harness:s3cret@127.0.0.1:{free_port()}/harness"
        with pytest.raises(HarnessError) as caught:
            history.open_history(url, tmp_path)
        message = str(caught.value)
        assert not isinstance(caught.value, InputError)
        assert message.startswith(
            f"history store postgresql+psycopg://harness:***@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/harness (from --history) cannot be reached: "
        )
        assert "s3cret" not in message


WRITER = textwrap.dedent(
    """
    import sys
    from harness.store import history

    url, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = history.HistoryStore(url)
    for i in range(count):
        store.record({
            "schema": "harness.result/v1", "run_id": f"{who}-{i}", "plan": {"name": "gameday"}, "target": {"kind": "testbed", "profile": "managed"},
            "started": float(i), "ended": float(i) + 1, "status": "completed", "passed": True,
            "scenarios": [{"name": "s", "trial": t, "status": "completed", "passed": True,
                           "metrics": {"recovery_time_s": float(i)}} for t in (1, 2, 3)],
        })
    print(len(store.runs(limit=1000)))
    """
)


class TestConcurrentWriters:
    def test_two_processes_record_into_one_sqlite_file(self, tmp_path: Path) -> None:
        """Two harness processes recording at once into a new SQLite file both succeed, losing nothing."""
        url = f"sqlite:///{tmp_path / 'history.sqlite'}"
        count = 40
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, url, who, str(count)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for who in ("a", "b")
        ]
        for writer in writers:
            out, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err
            assert int(out) >= count
        with history.HistoryStore(url) as store:
            runs = store.runs(limit=1000)
            assert sorted(r.run_id for r in runs) == sorted(f"{w}-{i}" for w in "ab" for i in range(count))
            values = store.metric_history("gameday", "testbed/managed", "s", "recovery_time_s", limit=1000)
            assert len(values) == 2 * count
        with sqlite3.connect(tmp_path / "history.sqlite") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
