"""Run the reference service under uvicorn, with one or several worker processes.

The parent creates the schema before any worker starts (so workers never race to create
it), then hands over to uvicorn, which stops accepting on SIGTERM, lets in-flight requests
finish (up to GRACEFUL_S) and exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import sqlalchemy as sa

from harness import redaction
from harness.app import db
from harness.app.metrics import MULTIPROC_ENV
from harness.app.settings import AppSettings
from harness.errors import HarnessError

GRACEFUL_S = 20
"""Longer than any request the service serves (payment latency plus database timeouts)."""


def prepare_database(settings: AppSettings) -> None:
    """Create the schema and seed data; raise HarnessError if the database is unreachable."""
    if settings.db.startswith("sqlite:///"):
        Path(settings.db.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine(settings.db, timeout_s=max(settings.db_timeout_s, 5.0), pool_size=1)
    try:
        db.init_schema(engine)
    except sa.exc.OperationalError as exc:
        password = sa.make_url(settings.db).password
        message = f"cannot prepare the database {settings.db}: {exc.orig}"
        raise HarnessError(redaction.text(message, [str(password)] if password else [])) from exc
    finally:
        engine.dispose()


def serve(settings: AppSettings, host: str, port: int, workers: int = 1) -> None:
    """Serve until SIGTERM or SIGINT."""
    import uvicorn

    prepare_database(settings)
    os.environ.update(settings.to_env())
    multiproc_dir = None
    if workers > 1:
        multiproc_dir = tempfile.mkdtemp(prefix="harness-metrics-")
        os.environ[MULTIPROC_ENV] = multiproc_dir
    try:
        uvicorn.run(
            "harness.app.api:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_S,
            server_header=False,
        )
    finally:
        if multiproc_dir:
            shutil.rmtree(multiproc_dir, ignore_errors=True)
