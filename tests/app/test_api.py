"""The reference service's API, on SQLite and on a real PostgreSQL (in-process ASGI client)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from harness.app import db as schema
from harness.app.api import create_app
from harness.app.server import prepare_database
from harness.app.settings import AppSettings
from harness.app.store import AlreadySubscribedError, Store


@contextmanager
def open_client(dsn: str, **overrides) -> Iterator[TestClient]:
    settings = AppSettings(db=dsn, payment_latency_ms=0, **overrides)
    prepare_database(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(dsn: str) -> Iterator[TestClient]:
    with open_client(dsn) as c:
        yield c


def signup(client: TestClient) -> dict[str, str]:
    email = f"{uuid.uuid4().hex[:10]}@example.test"
    resp = client.post("/v1/signup", json={"email": email, "password": "correct horse"})
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def purchase(client: TestClient, auth: dict[str, str], key: str, plan: str = "monthly"):
    return client.post("/v1/subscriptions", json={"plan_id": plan}, headers={**auth, "Idempotency-Key": key})


def count(dsn: str, table: sa.Table) -> int:
    engine = schema.create_engine(dsn)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


class TestAccounts:
    def test_signup_then_login_gives_a_working_token(self, client: TestClient) -> None:
        """A new account can log in again and use its token."""
        resp = client.post("/v1/signup", json={"email": "Ada@Example.test", "password": "s3cret-pass"})
        assert resp.status_code == 201
        login = client.post("/v1/login", json={"email": "ada@example.test", "password": "s3cret-pass"})
        assert login.status_code == 200
        token = login.json()["token"]
        assert client.get("/v1/entitlements", headers={"Authorization": f"Bearer {token}"}).json() == {
            "active": False,
            "subscription": None,
        }

    def test_wrong_password_and_duplicate_email_are_refused(self, client: TestClient) -> None:
        """Bad credentials give 401 and a taken email 409, with a message."""
        client.post("/v1/signup", json={"email": "b@example.test", "password": "password1"})
        assert (
            client.post("/v1/login", json={"email": "b@example.test", "password": "wrong-one"}).status_code
            == 401
        )
        dup = client.post("/v1/signup", json={"email": "b@example.test", "password": "password2"})
        assert dup.status_code == 409 and dup.json()["error"] == "email_taken"

    def test_tampered_token_is_rejected(self, client: TestClient) -> None:
        """A token whose signature does not match is 401, not someone else's account."""
        auth = signup(client)
        user, expiry, sig = auth["Authorization"][7:].split(".")
        forged = {"Authorization": f"Bearer {int(user) + 1}.{expiry}.{sig}"}
        assert client.get("/v1/entitlements", headers=forged).status_code == 401


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "headers", "status"),
        [
            ('{"email": "x@example.test", "pass', {"Content-Type": "application/json"}, 400),
            ('{"email": "x@example.test"}', {"Content-Type": "application/json"}, 422),
            (
                '{"email": "not-an-email", "password": "longenough"}',
                {"Content-Type": "application/json"},
                422,
            ),
            ('{"email": "x@example.test", "password": "short"}', {"Content-Type": "application/json"}, 422),
            ("[1, 2]", {"Content-Type": "application/json"}, 422),
        ],
    )
    def test_malformed_signup_is_a_client_error_with_a_message(self, client, body, headers, status) -> None:
        """Malformed JSON is 400 and missing or invalid fields 422, never 500."""
        resp = client.post("/v1/signup", content=body, headers=headers)
        assert resp.status_code == status
        assert resp.json()["error"] == "invalid_request" and resp.json()["message"]

    def test_purchase_without_idempotency_key_or_with_unknown_plan(self, client: TestClient) -> None:
        """A purchase needs an Idempotency-Key (400) and a real plan (422)."""
        auth = signup(client)
        no_key = client.post("/v1/subscriptions", json={"plan_id": "monthly"}, headers=auth)
        assert no_key.status_code == 400 and no_key.json()["error"] == "idempotency_key_required"
        assert purchase(client, auth, "k1", plan="lifetime").status_code == 422
        assert (
            client.post("/v1/subscriptions", json={}, headers={**auth, "Idempotency-Key": "k"}).status_code
            == 422
        )

    def test_token_with_a_non_ascii_byte_is_401(self, client: TestClient) -> None:
        """A bearer token holding a byte outside ASCII is an invalid token (401), not a 500."""
        auth = signup(client)
        token = auth["Authorization"].encode() + b"\xe9"
        resp = client.get("/v1/entitlements", headers={"Authorization": token})
        assert resp.status_code == 401 and resp.json()["error"] == "unauthenticated"

    def test_admin_token_with_a_non_ascii_byte_is_403(self, sqlite_dsn: str) -> None:
        """A wrong admin token is refused whatever its bytes."""
        with open_client(sqlite_dsn, admin_token="t0k") as client:
            resp = client.get("/v1/admin/subscriptions", headers={"X-Admin-Token": b"t0k\xff"})
            assert resp.status_code == 403

    @pytest.mark.parametrize("after", ["9223372036854775808", "-1", "1" * 40])
    def test_sequence_out_of_range_is_422(self, client: TestClient, after: str) -> None:
        """A listing cursor the database cannot hold is a client error, not an integer overflow."""
        resp = client.get("/v1/admin/subscriptions", params={"after": after})
        assert resp.status_code == 422 and "after" in resp.json()["message"]

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/v1/admin/subscriptions/lookup", '{"ids": ["\\ud800"]}'),
            ("/v1/signup", '{"email": "a@example.test", "password": "12345678\\udfff"}'),
            ("/v1/login", '{"email": "a\\ud800@example.test", "password": "12345678"}'),
        ],
    )
    def test_lone_surrogate_is_422(self, client: TestClient, path: str, body: str) -> None:
        """JSON may spell a lone surrogate ("\\ud800"); it is no text the service can store: 422."""
        resp = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 422 and resp.json()["error"] == "invalid_request"

    def test_unauthenticated_purchase_is_401(self, client: TestClient) -> None:
        """No token, no purchase."""
        resp = client.post("/v1/subscriptions", json={"plan_id": "monthly"}, headers={"Idempotency-Key": "k"})
        assert resp.status_code == 401


class TestCatalog:
    def test_catalog_and_content(self, client: TestClient) -> None:
        """The catalog lists content; details say whether an anonymous caller may play it."""
        items = client.get("/v1/catalog").json()["items"]
        assert len(items) == 60
        sleep = client.get("/v1/catalog", params={"kind": "sleep"}).json()["items"]
        assert sleep and all(i["kind"] == "sleep" for i in sleep)
        free = client.get("/v1/content/c000").json()
        premium = client.get("/v1/content/c001").json()
        assert free["playable"] is True and premium["playable"] is False
        assert client.get("/v1/content/nope").status_code == 404

    def test_premium_stream_needs_a_subscription(self, client: TestClient) -> None:
        """Streaming premium content is 403 until the account subscribes."""
        auth = signup(client)
        assert client.get("/v1/content/c001/stream", headers=auth).status_code == 403
        assert purchase(client, auth, "k").status_code == 201
        assert client.get("/v1/content/c001/stream", headers=auth).status_code == 200
        assert client.get("/v1/content/c001", headers=auth).json()["playable"] is True


class TestSubscriptions:
    def test_purchase_is_idempotent_and_grants_entitlement(self, client: TestClient, dsn: str) -> None:
        """A retried purchase with the same key returns the same subscription and charges once."""
        auth = signup(client)
        first = purchase(client, auth, "key-1")
        assert first.status_code == 201
        again = purchase(client, auth, "key-1")
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["subscription_id"] == first.json()["subscription_id"]
        ent = client.get("/v1/entitlements", headers=auth).json()
        assert ent["active"] and ent["subscription"]["subscription_id"] == first.json()["subscription_id"]
        assert count(dsn, schema.charges) == 1 and count(dsn, schema.subscriptions) == 1

    def test_key_reused_for_another_plan_and_double_subscription(self, client: TestClient) -> None:
        """Reusing a key for a different plan is 422; a second subscription is 409."""
        auth = signup(client)
        assert purchase(client, auth, "k").status_code == 201
        assert purchase(client, auth, "k", plan="annual").json()["error"] == "idempotency_key_reused"
        assert purchase(client, auth, "other").status_code == 409

    def test_renewing_a_cancelled_subscription_beside_an_active_one_is_409(
        self, client: TestClient, dsn: str
    ) -> None:
        """Renewal must not make a second active subscription: 409, and nothing charged for it."""
        auth = signup(client)
        first = purchase(client, auth, "k1").json()["subscription_id"]
        client.post(f"/v1/subscriptions/{first}/cancel", headers=auth)
        assert purchase(client, auth, "k2").status_code == 201
        charges = count(dsn, schema.charges)
        resp = client.post(f"/v1/subscriptions/{first}/renew", headers={**auth, "Idempotency-Key": "r"})
        assert resp.status_code == 409 and resp.json()["error"] == "already_subscribed"
        assert count(dsn, schema.charges) == charges

    def test_a_lapsed_subscription_does_not_block_a_new_one(self, dsn: str) -> None:
        """A subscription past its end, still marked active, frees the one-active slot."""
        settings = AppSettings(db=dsn, payment_latency_ms=0)
        prepare_database(settings)
        engine = schema.create_engine(dsn)
        try:
            store = Store(engine)
            plan = {"id": "monthly", "price_cents": 1299, "period_days": 30}
            old, _ = store.record_purchase(77, plan, "k1", "ch_1", now=1_000.0)
            new, created = store.record_purchase(77, plan, "k2", "ch_2", now=1_000.0 + 31 * 86400)
            assert created and new["subscription_id"] != old["subscription_id"]
            with pytest.raises(AlreadySubscribedError):
                store.record_purchase(77, plan, "k3", "ch_3", now=1_000.0 + 32 * 86400)
        finally:
            engine.dispose()
        assert count(dsn, schema.charges) == 2

    def test_renew_extends_once_per_key_and_cancel_revokes(self, client: TestClient, dsn: str) -> None:
        """Renewal adds one period per key; cancellation ends the entitlement."""
        auth = signup(client)
        sub = purchase(client, auth, "k").json()
        sid = sub["subscription_id"]
        renewed = client.post(
            f"/v1/subscriptions/{sid}/renew", headers={**auth, "Idempotency-Key": "r1"}
        ).json()
        assert renewed["expires_at"] == pytest.approx(sub["expires_at"] + 30 * 86400, abs=1)
        replay = client.post(
            f"/v1/subscriptions/{sid}/renew", headers={**auth, "Idempotency-Key": "r1"}
        ).json()
        assert replay["expires_at"] == renewed["expires_at"]
        assert count(dsn, schema.charges) == 2
        cancelled = client.post(f"/v1/subscriptions/{sid}/cancel", headers=auth).json()
        assert cancelled["status"] == "cancelled"
        assert client.get("/v1/entitlements", headers=auth).json()["active"] is False
        other = signup(client)
        assert client.post(f"/v1/subscriptions/{sid}/cancel", headers=other).status_code == 404

    def test_failed_payment_is_502_and_records_nothing(self, dsn: str) -> None:
        """When the provider fails, nothing is charged or acknowledged, and Retry-After is sent."""
        with open_client(dsn, payment_failure_rate=1.0) as client:
            auth = signup(client)
            resp = purchase(client, auth, "k")
            assert resp.status_code == 502 and resp.headers["Retry-After"]
            assert client.get("/v1/entitlements", headers=auth).json()["active"] is False
        assert count(dsn, schema.subscriptions) == 0 and count(dsn, schema.charges) == 0


class TestVerification:
    def test_acknowledged_subscriptions_can_be_listed_and_looked_up(self, client: TestClient) -> None:
        """The harness can page through acknowledged subscriptions and check a list of ids."""
        ids = [purchase(client, signup(client), "k").json()["subscription_id"] for _ in range(3)]
        page = client.get("/v1/admin/subscriptions", params={"limit": 2}).json()
        assert [r["id"] for r in page["subscriptions"]] == ids[:2]
        rest = client.get("/v1/admin/subscriptions", params={"after": page["next"]}).json()
        assert [r["id"] for r in rest["subscriptions"]] == ids[2:]
        found = client.post("/v1/admin/subscriptions/lookup", json={"ids": [*ids, "sub_missing"]}).json()
        assert found == {"found": sorted(ids), "missing": ["sub_missing"]}

    def test_admin_token_is_enforced_when_set(self, sqlite_dsn: str) -> None:
        """With an admin token configured, verification endpoints need it."""
        with open_client(sqlite_dsn, admin_token="t0k") as client:
            assert client.get("/v1/admin/subscriptions").status_code == 403
            assert client.get("/v1/admin/subscriptions", headers={"X-Admin-Token": "t0k"}).status_code == 200


class TestOperations:
    def test_health_readiness_and_metrics(self, client: TestClient) -> None:
        """/healthz and /readyz answer 200; /metrics counts requests by route."""
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json() == {"status": "ready"}
        client.get("/v1/catalog")
        text = client.get("/metrics").text
        assert 'http_requests_total{method="GET",route="/v1/catalog",status="200"} 1.0' in text

    def test_locked_sqlite_gives_503_with_retry_after_and_no_ack(self, sqlite_dsn: str) -> None:
        """When the database cannot take a write in time, the answer is 503, not a lost ack."""
        with open_client(sqlite_dsn, db_timeout_s=0.2) as client:
            auth = signup(client)
            path = sqlite_dsn.removeprefix("sqlite:///")
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                resp = purchase(client, auth, "k")
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert resp.status_code == 503
            assert resp.headers["Retry-After"] == "1" and resp.json()["error"] == "database_unavailable"
            retry = purchase(client, auth, "k")
            assert retry.status_code == 201
        assert count(sqlite_dsn, schema.subscriptions) == 1


def test_postgres_down_gives_503_and_not_ready(postgres_server, postgres_dsn: str) -> None:
    """With PostgreSQL stopped, requests get 503 and /readyz says not ready; it recovers after."""
    with open_client(postgres_dsn, db_timeout_s=1.0) as client:
        auth = signup(client)
        postgres_server.stop()
        try:
            assert client.get("/readyz").status_code == 503
            resp = purchase(client, auth, "k")
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
        finally:
            postgres_server.start()
        assert client.get("/readyz").status_code == 200
        assert purchase(client, auth, "k").status_code == 201


def test_a_replica_starting_beside_a_busy_writer_does_not_need_the_write_lock(tmp_path: Path) -> None:
    """Seeding happens once: a later replica only reads, so on SQLite it does not queue behind (or
    block) the writers of the replicas already serving."""
    path = tmp_path / "subs.db"
    schema.init_schema(schema.create_engine(f"sqlite:///{path}"))
    writer = sqlite3.connect(path, timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")  # a serving replica in the middle of a write
    try:
        started = time.monotonic()
        schema.init_schema(schema.create_engine(f"sqlite:///{path}", timeout_s=0.2))
        assert time.monotonic() - started < 0.5
    finally:
        writer.rollback()
        writer.close()
