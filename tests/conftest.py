"""Shared fixtures: databases (SQLite file, real PostgreSQL), the reference service, and the one
managed testbed the testbed, engine and report tests share."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.testbed import cluster
from harness.testbed.state import TestbedState
from tests.postgres import PostgresServer, find_bin, open_postgres
from tests.testbed.conftest import make_profile

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtests" / "subscriptions.py"


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the shared managed testbed after all others, each group in its own order:
    one testbed start-up for all of them instead of one per module."""
    on_testbed = [item for item in items if "managed" in getattr(item, "fixturenames", ())]
    if on_testbed:
        rest = [item for item in items if "managed" not in getattr(item, "fixturenames", ())]
        items[:] = rest + on_testbed
