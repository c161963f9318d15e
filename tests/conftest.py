"""Shared fixtures: databases (SQLite file, real PostgreSQL) and the reference service."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, find_bin, open_postgres

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
