"""SQLite settings shared by every harness database: the service's and the history store.

Both are written by more than one process at once (service workers; concurrent runs) and
must not lose an acknowledged write, so every connection gets the same pragmas.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def durable_and_shared(engine: Engine, busy_timeout_s: float) -> Engine:
    """Set WAL, synchronous=FULL, foreign keys and a busy timeout on each new connection.

    The busy timeout comes first: switching to WAL needs a lock another process may hold.
    """

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine
