"""Database operations of the reference service (blocking; the API runs them in threads).

Every write that the API acknowledges has been committed here first.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from harness.app import db

DAY_S = 86400


class EmailTakenError(Exception):
    """Sign-up with an email that already has an account."""


class AlreadySubscribedError(Exception):
    """The account has an active subscription already (the database's one-active invariant)."""


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- users --------------------------------------------------------------------
    def create_user(self, email: str, password_hash: str, now: float) -> int:
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    sa.insert(db.users).values(email=email, password_hash=password_hash, created_at=now)
                )
                return int(result.inserted_primary_key[0])
        except sa.exc.IntegrityError as exc:
            raise EmailTakenError(email) from exc

    def user_by_email(self, email: str) -> tuple[int, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(db.users.c.id, db.users.c.password_hash).where(db.users.c.email == email)
            ).first()
        return (int(row[0]), str(row[1])) if row else None

    # --- catalog ------------------------------------------------------------------
    def catalog(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.content).order_by(db.content.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def plans(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(db.plans)).mappings().all()]

    # --- subscriptions ------------------------------------------------------------
    @staticmethod
    @contextmanager
    def _one_active(user_id: int) -> Iterator[None]:
        """A transaction that broke ONE_ACTIVE_SUBSCRIPTION (rolled back whole) is AlreadySubscribedError.

        The only other unique constraints these writes can meet are their idempotency keys, which
        they insert with ON CONFLICT DO NOTHING.
        """
        try:
            yield
        except sa.exc.IntegrityError as exc:
            raise AlreadySubscribedError(user_id) from exc

    @staticmethod
    def _public(row: Any) -> dict[str, Any]:
        return {
            "subscription_id": row["id"],
            "plan_id": row["plan_id"],
            "status": row["status"],
            "charge_id": row["charge_id"],
            "created_at": row["created_at"],
            "expires_at": row["expires_at"],
        }

    def subscription_by_key(self, user_id: int, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(db.subscriptions).where(
                        db.subscriptions.c.user_id == user_id, db.subscriptions.c.idempotency_key == key
                    )
                )
                .mappings()
                .first()
            )
        return self._public(row) if row else None

    def active_subscription(self, user_id: int, now: float) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(db.subscriptions)
                    .where(
                        db.subscriptions.c.user_id == user_id,
                        db.subscriptions.c.status == "active",
                        db.subscriptions.c.expires_at > now,
                    )
                    .order_by(db.subscriptions.c.expires_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return self._public(row) if row else None

    def record_purchase(
        self, user_id: int, plan: dict[str, Any], key: str, charge_id: str, now: float
    ) -> tuple[dict[str, Any], bool]:
        """Store the charge and the subscription in one transaction; (subscription, created).

        Raises AlreadySubscribedError, with nothing stored (no charge either), when another
        subscription of the account became active since the API looked.
        """
        with self._one_active(user_id), self.engine.begin() as conn:
            # A lapsed subscription still marked active must not hold the one-active slot.
            conn.execute(
                sa.update(db.subscriptions)
                .where(
                    db.subscriptions.c.user_id == user_id,
                    db.subscriptions.c.status == "active",
                    db.subscriptions.c.expires_at <= now,
                )
                .values(status="expired")
            )
            conn.execute(
                db.insert_ignore(self.engine, db.charges),
                {
                    "id": charge_id,
                    "user_id": user_id,
                    "idempotency_key": key,
                    "purpose": "purchase",
                    "amount_cents": plan["price_cents"],
                    "created_at": now,
                },
            )
            inserted = (
                conn.execute(
                    # Only a retry with the same key is ignored; a second active subscription
                    # violates ONE_ACTIVE_SUBSCRIPTION and rolls back the whole purchase.
                    db.insert_ignore(self.engine, db.subscriptions, ("user_id", "idempotency_key")).returning(
                        db.subscriptions.c.id
                    ),
                    {
                        "id": "sub_" + secrets.token_hex(10),
                        "user_id": user_id,
                        "plan_id": plan["id"],
                        "idempotency_key": key,
                        "status": "active",
                        "charge_id": charge_id,
                        "created_at": now,
                        "expires_at": now + plan["period_days"] * DAY_S,
                    },
                ).first()
                is not None
            )  # RETURNING, not rowcount: psycopg reports -1 for an insert SQLAlchemy returns from
            row = (
                conn.execute(
                    sa.select(db.subscriptions).where(
                        db.subscriptions.c.user_id == user_id, db.subscriptions.c.idempotency_key == key
                    )
                )
                .mappings()
                .one()
            )
        return self._public(row), bool(inserted)

    def owned_subscription(self, user_id: int, subscription_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(db.subscriptions).where(
                        db.subscriptions.c.id == subscription_id, db.subscriptions.c.user_id == user_id
                    )
                )
                .mappings()
                .first()
            )
        return self._public(row) if row else None

    def record_renewal(
        self,
        user_id: int,
        subscription_id: str,
        key: str,
        charge_id: str,
        period_days: int,
        amount_cents: int,
        now: float,
    ) -> dict[str, Any]:
        """Extend the subscription once per idempotency key; returns the subscription.

        Raises AlreadySubscribedError when renewing a cancelled subscription while another one of
        the account is active (the renewal would make it a second active one).
        """
        with self._one_active(user_id), self.engine.begin() as conn:
            done = conn.execute(
                sa.select(db.renewals.c.id).where(
                    db.renewals.c.subscription_id == subscription_id, db.renewals.c.idempotency_key == key
                )
            ).first()
            if done is None:
                current = conn.execute(
                    sa.select(db.subscriptions.c.expires_at).where(db.subscriptions.c.id == subscription_id)
                ).scalar_one()
                expires = max(current, now) + period_days * DAY_S
                conn.execute(
                    db.insert_ignore(self.engine, db.charges),
                    {
                        "id": charge_id,
                        "user_id": user_id,
                        "idempotency_key": key,
                        "purpose": "renewal",
                        "amount_cents": amount_cents,
                        "created_at": now,
                    },
                )
                inserted = (
                    conn.execute(
                        db.insert_ignore(self.engine, db.renewals).returning(db.renewals.c.id),
                        {
                            "id": "ren_" + secrets.token_hex(10),
                            "subscription_id": subscription_id,
                            "idempotency_key": key,
                            "charge_id": charge_id,
                            "expires_at": expires,
                            "created_at": now,
                        },
                    ).first()
                    is not None
                )
                if inserted:
                    conn.execute(
                        sa.update(db.subscriptions)
                        .where(db.subscriptions.c.id == subscription_id)
                        .values(expires_at=expires, status="active")
                    )
            row = (
                conn.execute(sa.select(db.subscriptions).where(db.subscriptions.c.id == subscription_id))
                .mappings()
                .one()
            )
        return self._public(row)

    def cancel(self, subscription_id: str, now: float) -> dict[str, Any]:
        """Cancel at once: entitlement ends now (the service does not prorate)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(db.subscriptions)
                .where(db.subscriptions.c.id == subscription_id, db.subscriptions.c.status == "active")
                .values(
                    status="cancelled",
                    expires_at=sa.func.min(db.subscriptions.c.expires_at, now)
                    if self.engine.dialect.name == "sqlite"
                    else sa.func.least(db.subscriptions.c.expires_at, now),
                )
            )
            row = (
                conn.execute(sa.select(db.subscriptions).where(db.subscriptions.c.id == subscription_id))
                .mappings()
                .one()
            )
        return self._public(row)

    # --- verification -------------------------------------------------------------
    def list_subscriptions(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(db.subscriptions.c.seq, db.subscriptions.c.id, db.subscriptions.c.status)
                    .where(db.subscriptions.c.seq > after_seq)
                    .order_by(db.subscriptions.c.seq)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def existing_subscription_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                found.update(
                    conn.execute(sa.select(db.subscriptions.c.id).where(db.subscriptions.c.id.in_(chunk)))
                    .scalars()
                    .all()
                )
        return found

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
