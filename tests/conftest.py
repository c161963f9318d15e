"""Shared fixtures: databases (SQLite file, real PostgreSQL), the reference service, the one
managed testbed the testbed, engine and report tests share, and one real run on it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.engine import runner
from harness.engine.progress import Progress
from harness.plan import loading
from harness.testbed import cluster
from harness.testbed.state import TestbedState
from harness.timeline import loading as timeline_loading
from tests.postgres import PostgresServer, find_bin, open_postgres
from tests.testbed.conftest import make_profile, serving, wait_for

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtests" / "subscriptions.py"
PLAN_VAR_SECRET = "pv-9d4f1a6c3e8b"
"""A secret plan variable of the shared run (tests.report.conftest.SECRETS["plan_var_password"])."""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if find_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL must be installed in CI (.ci/run installs Debian's postgresql)")
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")
    with open_postgres() as server:
        yield server


@pytest.fixture
def sqlite_dsn(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("t_" + uuid.uuid4().hex[:12])


@pytest.fixture(params=["sqlite", "postgresql"])
def dsn(request: pytest.FixtureRequest) -> str:
    """The same test on the embedded default (SQLite, WAL) and on a real PostgreSQL."""
    name = "sqlite_dsn" if request.param == "sqlite" else "postgres_dsn"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestbedState]:
    """One managed testbed (3 etcd members, 3 zones) shared by every test that asks for it; each
    test heals what it breaks (and starts by waiting for a serving testbed). Those tests run
    last and one after another (pytest_collection_modifyitems), so the testbed comes up once
    and is not left idle beside the rest of the suite."""
    root = tmp_path_factory.mktemp("managed")
    with cluster.open_testbed(make_profile("managed"), root) as state:
        yield state


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-loop",
        action="store_true",
        help="run the `loop` tests: findings' recommended changes tried on real testbeds (minutes)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests on the shared managed testbed after all others, each group in its own order:
    one testbed start-up for all of them instead of one per module. The `loop` tests
    (tests/findings/test_loop.py) only when asked for: --run-loop or HARNESS_LOOP_TESTS=1."""
    if not (config.getoption("--run-loop") or os.environ.get("HARNESS_LOOP_TESTS") == "1"):
        skip = pytest.mark.skip(reason="a loop test: run with --run-loop or HARNESS_LOOP_TESTS=1")
        for item in items:
            if item.get_closest_marker("loop") is not None:
                item.add_marker(skip)
    on_testbed = [item for item in items if "managed" in getattr(item, "fixturenames", ())]
    if on_testbed:
        rest = [item for item in items if "managed" not in getattr(item, "fixturenames", ())]
        items[:] = rest + on_testbed


@dataclass
class SharedRun:
    """One real run on the shared testbed: a replica kill under paced load, one scenario."""

    engine: runner.Engine
    scenario: dict[str, Any]
    events: list[dict[str, Any]]
    reads: list[tuple[Path, int, int]] = field(default_factory=list)
    """(path, from, to) of every read of a timeline file that found new bytes, during the run."""
    opened: list[Path] = field(default_factory=list)
    """Every opening of a timeline.jsonl for reading, during the run."""

    @property
    def sdir(self) -> Path:
        return self.engine.run_dir / "scenarios" / f"{self.scenario['name']}-1"


@pytest.fixture(scope="session")
def replica_kill_run(managed: TestbedState, tmp_path_factory: pytest.TempPathFactory) -> SharedRun:
    """The replica kill that several tests judged each on a run of their own, run once:
    tests/engine/test_accuracy.py (recovery against the ground truth), test_distributed_load.py
    (the single-process side of its comparison, same plan), test_timeline_reads.py (every read of
    the timeline is recorded here) and tests/report/test_browser.py (its report in a browser; a
    secret plan variable that must not show). The accuracy tests' plan, with an abort condition
    (so the abort watch reads the live series too), the secret variable and a recovery gate."""
    tmp = tmp_path_factory.mktemp("replica-kill")
    plan_path = tmp / "plan.yaml"
    plan_path.write_text(f"""name: replica-kill-shared
target: {{kind: testbed, profile: managed}}
load: {{locustfile: {LOCUSTFILE}, host: auto, users: 12, spawn_rate: 12, pacing_s: 0.25, bucket_s: 0.5, request_timeout_s: 1.0}}
windows: {{warmup_s: 3, baseline_s: 6, observe_s: 25, stability_s: 3}}
slo: {{error_rate: 0.01, p95_ms: 60000, kpi_drop: 1.0}}
abort: [{{metric: error_rate, above: 0.99, for_s: 30}}]
scenarios:
  - {{name: replica-kill, experiment: {ROOT / "tests/engine/experiments/replica-kill.yaml"}, vars: {{api_token: {PLAN_VAR_SECRET}}}}}
gates: ["data_loss == 0", "recovery_time_s < 20"]
""")
    reads: list[tuple[Path, int, int]] = []
    opened: list[Path] = []
    read = timeline_loading.TimelineFile._read
    path_open = Path.open

    def recording_read(self: timeline_loading.TimelineFile, final: bool) -> bool:
        before = self.offset
        done = read(self, final)
        if done:
            reads.append((self.path, before, self.offset))
        return done

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        mode = args[0] if args else kwargs.get("mode", "r")
        if self.name == "timeline.jsonl" and not set(mode) & set("wax+"):
            opened.append(self)
        return path_open(self, *args, **kwargs)

    wait_for(lambda: serving(managed), 60, "a healthy testbed before the scenario")
    engine = runner.Engine(loading.load_plan(plan_path), tmp / "reports", managed.root, Progress(quiet=True))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timeline_loading.TimelineFile, "_read", recording_read)
        patch.setattr(Path, "open", counting_open)
        result = engine.run().to_json()
    (scenario,) = result["scenarios"]
    assert scenario["status"] == "completed", scenario
    sdir = engine.run_dir / "scenarios" / f"{scenario['name']}-1"
    events = [json.loads(line) for line in (sdir / "events.jsonl").read_text().splitlines()]
    return SharedRun(engine, scenario, events, reads, opened)
