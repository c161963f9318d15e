"""Schema and engine of the reference service: SQLite (WAL) embedded, PostgreSQL for clusters.

The database lives outside the service's replicas, as a managed database would, so that
killing a replica or a node never destroys an acknowledged write. SQLite runs with
`synchronous=FULL`: in WAL mode NORMAL may lose the last commits on power loss, and an
acknowledged subscription must survive anything the harness does.
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from harness.sqlite import durable_and_shared

metadata = sa.MetaData()

settings_table = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

content = sa.Table(
    "content",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("duration_s", sa.Integer, nullable=False),
    sa.Column("premium", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("period_days", sa.Integer, nullable=False),
)

charges = sa.Table(
    "charges",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, nullable=False, index=True),
    sa.Column("plan_id", sa.String(40), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("charge_id", sa.String(40), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_subscription_idempotency"),
)
ONE_ACTIVE_SUBSCRIPTION = sa.Index(
    "uq_one_active_subscription",
    subscriptions.c.user_id,
    unique=True,
    sqlite_where=subscriptions.c.status == "active",
    postgresql_where=subscriptions.c.status == "active",
)
"""The service's invariant, held by the database: an account has at most one active subscription
(so at most one per plan). The API checks first, but two purchases with different keys can both
pass that check before either commits; the second insert then fails here and nothing is charged."""

renewals = sa.Table(
    "renewals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("subscription_id", sa.String(40), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("charge_id", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("subscription_id", "idempotency_key", name="uq_renewal_idempotency"),
)

PLANS = [
    {"id": "monthly", "name": "Monthly", "price_cents": 1299, "period_days": 30},
    {"id": "annual", "name": "Annual", "price_cents": 6999, "period_days": 365},
]

_KINDS = ["meditation", "sleep", "story", "music", "breathing"]


def catalog_seed() -> list[dict]:
    """A fixed catalog of 60 items; every fourth one is free."""
    items = []
    for i in range(60):
        kind = _KINDS[i % len(_KINDS)]
        items.append(
            {
                "id": f"c{i:03d}",
                "title": f"{kind.title()} {i:03d}",
                "kind": kind,
                "duration_s": 300 + (i * 37) % 1500,
                "premium": i % 4 != 0,
                "description": f"A {kind} session, number {i}, for calm and sleep.",
            }
        )
    return items


def sqlalchemy_url(dsn: str) -> str:
    """Accept the plain postgresql:// form and use the psycopg 3 driver for it."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


def create_engine(dsn: str, timeout_s: float = 2.0, pool_size: int = 10) -> Engine:
    """An engine whose waits (locks, connections) are bounded by timeout_s."""
    url = sqlalchemy_url(dsn)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": timeout_s, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=timeout_s,
        )
        return durable_and_shared(engine, timeout_s)
    return sa.create_engine(
        url,
        connect_args={"connect_timeout": max(1, round(timeout_s)), "options": "-c statement_timeout=10000"},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout_s,
        pool_pre_ping=True,
    )


def insert_ignore(engine: Engine, table: sa.Table, conflict_on: tuple[str, ...] | None = None):  # type: ignore[no-untyped-def]
    """INSERT … ON CONFLICT DO NOTHING in the engine's dialect.

    With `conflict_on` only a conflict on those columns is ignored; any other unique constraint
    still raises IntegrityError.
    """
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict_on) if conflict_on else None)


def _seeded(engine: Engine) -> bool:
    """True when the schema and seed data are already there (read only: no lock taken)."""
    try:
        with engine.connect() as conn:
            have_secret = conn.execute(
                sa.select(sa.func.count())
                .select_from(settings_table)
                .where(settings_table.c.key == "token_secret")
            ).scalar_one()
            have_plans = conn.execute(sa.select(sa.func.count()).select_from(plans)).scalar_one()
            have_content = conn.execute(sa.select(sa.func.count()).select_from(content)).scalar_one()
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("subscriptions")}
    except sa.exc.DBAPIError:  # no tables yet, or a database that is briefly busy: create and seed
        return False
    return (
        bool(have_secret)
        and have_plans >= len(PLANS)
        and have_content >= len(catalog_seed())
        and ONE_ACTIVE_SUBSCRIPTION.name in indexes
    )


def init_schema(engine: Engine) -> None:
    """Create tables and seed data; safe to run from several replicas at once.

    A replica starting next to running ones only reads: on SQLite a seeding transaction takes
    the write lock, and under load the replicas already serving would wait on it (writes timed
    out for a second while a rescheduled replica started).
    """
    if _seeded(engine):
        return
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7355608)"))
                metadata.create_all(conn, checkfirst=True)
                # A database made before the invariant was held by an index gets it now (create_all
                # adds indexes only with their table). Older rows are expired first so it can hold.
                _expire_duplicate_active(conn)
                ONE_ACTIVE_SUBSCRIPTION.create(conn, checkfirst=True)
                conn.execute(insert_ignore(engine, plans), PLANS)
                conn.execute(insert_ignore(engine, content), catalog_seed())
                conn.execute(
                    insert_ignore(engine, settings_table),
                    [{"key": "token_secret", "value": secrets.token_hex(32)}],
                )
            return
        except sa.exc.OperationalError:
            # Another replica created the same table between our check and create, or
            # the database is briefly locked; both settle within a moment.
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def _expire_duplicate_active(conn: sa.Connection) -> None:
    """Keep only each account's newest active subscription active (the rest become 'expired')."""
    newest = (
        sa.select(sa.func.max(subscriptions.c.seq))
        .where(subscriptions.c.status == "active")
        .group_by(subscriptions.c.user_id)
    )
    conn.execute(
        sa.update(subscriptions)
        .where(subscriptions.c.status == "active", subscriptions.c.seq.not_in(newest))
        .values(status="expired")
    )


def token_secret(engine: Engine) -> bytes:
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(settings_table.c.value).where(settings_table.c.key == "token_secret")
        ).scalar_one()
    return bytes.fromhex(value)
