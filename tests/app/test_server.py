"""The service as it runs for real: uvicorn workers, concurrent retries, SIGTERM under load."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from harness.app import db as schema
from harness.app.launcher import open_service

pytestmark = pytest.mark.slow


def signup(base: str) -> dict[str, str]:
    resp = httpx.post(
        base + "/v1/signup", json={"email": f"{uuid.uuid4().hex}@example.test", "password": "pw-123456"}
    )
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def rows(dsn: str, table: sa.Table) -> list[dict]:
    engine = schema.create_engine(dsn)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    finally:
        engine.dispose()


def test_concurrent_retries_with_one_key_charge_once(dsn: str, tmp_path: Path) -> None:
    """Twenty simultaneous retries of one purchase across two workers create one subscription
    and one charge; every retry is answered with that same subscription."""
    with open_service(
        dsn, workers=2, extra_args=["--payment-latency-ms", "100"], log_path=tmp_path / "s.log"
    ) as svc:
        auth = {**signup(svc.url), "Idempotency-Key": "same-key"}
        barrier = threading.Barrier(20)
        answers: list[httpx.Response] = []

        def retry() -> None:
            with httpx.Client(timeout=15) as client:
                barrier.wait()
                answers.append(
                    client.post(svc.url + "/v1/subscriptions", json={"plan_id": "annual"}, headers=auth)
                )

        threads = [threading.Thread(target=retry) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 19 + [201], [r.text for r in answers if r.status_code >= 300]
    assert len({r.json()["subscription_id"] for r in answers}) == 1
    assert len(rows(dsn, schema.subscriptions)) == 1
    assert len(rows(dsn, schema.charges)) == 1


@pytest.mark.parametrize("buyers", [2, 5])
def test_concurrent_purchases_with_different_keys_give_one_subscription(
    dsn: str, tmp_path: Path, buyers: int
) -> None:
    """Simultaneous purchases by one account with different keys: one 201, the others 409, and one
    charge and one active subscription stored (the database holds the invariant, not the API's
    look-then-insert, which they all pass before any commits)."""
    with open_service(
        dsn, workers=2, extra_args=["--payment-latency-ms", "200"], log_path=tmp_path / "s.log"
    ) as svc:
        auth = signup(svc.url)
        barrier = threading.Barrier(buyers)
        answers: list[httpx.Response] = []

        def buy(n: int) -> None:
            with httpx.Client(timeout=15) as client:
                barrier.wait()
                answers.append(
                    client.post(
                        svc.url + "/v1/subscriptions",
                        json={"plan_id": "monthly"},
                        headers={**auth, "Idempotency-Key": f"key-{n}"},
                    )
                )

        threads = [threading.Thread(target=buy, args=(n,)) for n in range(buyers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log = (tmp_path / "s.log").read_text()
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * (buyers - 1), [r.text for r in answers]
    assert all(r.json()["error"] == "already_subscribed" for r in answers if r.status_code == 409)
    subs = rows(dsn, schema.subscriptions)
    assert [s["status"] for s in subs] == ["active"]
    assert len(rows(dsn, schema.charges)) == 1
    assert "Traceback" not in log


def test_sigterm_under_load_loses_no_acknowledged_purchase(dsn: str, tmp_path: Path) -> None:
    """SIGTERM while purchases are in flight: they finish, and every acknowledged one is stored."""
    acked: list[tuple[str, float]] = []
    stop = threading.Event()
    with open_service(
        dsn, workers=2, extra_args=["--payment-latency-ms", "300"], log_path=tmp_path / "s.log"
    ) as svc:

        def shopper() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    try:
                        resp = client.post(
                            svc.url + "/v1/signup",
                            json={"email": f"{uuid.uuid4().hex}@example.test", "password": "pw-123456"},
                        )
                        auth = {"Authorization": f"Bearer {resp.json()['token']}", "Idempotency-Key": "k"}
                        buy = client.post(
                            svc.url + "/v1/subscriptions", json={"plan_id": "monthly"}, headers=auth
                        )
                    except (httpx.HTTPError, KeyError, ValueError):
                        return  # the server has gone; nothing more can be acknowledged
                    if buy.status_code in (200, 201):
                        acked.append((buy.json()["subscription_id"], time.time()))

        threads = [threading.Thread(target=shopper) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        sigterm_at = time.time()
        code = svc.stop()
        stop.set()
        for t in threads:
            t.join(15)
    assert code == 0, "graceful shutdown exits cleanly"
    assert len(acked) >= 10
    assert any(t > sigterm_at for _, t in acked), "purchases in flight at SIGTERM were completed"
    stored = {r["id"] for r in rows(dsn, schema.subscriptions)}
    assert {sid for sid, _ in acked} <= stored
