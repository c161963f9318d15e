"""Property tests: whatever body, query or header a client sends, the service answers with a
documented status — 2xx, or a 4xx with a JSON error — never a 500 (a traceback in its log).

Bodies are generated JSON of any shape (and not-JSON bytes), sent to every endpoint that takes
one; queries and tokens get odd text (non-ASCII, lone surrogates escaped, huge integers).
Bounded so CI stays fast; SQLite only (the PostgreSQL path is covered by test_api)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.app.test_api import open_client, signup

ENDPOINTS = [
    "/v1/signup",
    "/v1/login",
    "/v1/subscriptions",
    "/v1/subscriptions/{sid}/renew",
    "/v1/subscriptions/{sid}/cancel",
    "/v1/admin/subscriptions/lookup",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "email": JSON | st.emails(),
        "password": JSON,
        "plan_id": JSON | st.sampled_from(["monthly", "annual"]),
        "ids": JSON | st.lists(st.text(max_size=40), max_size=5),
    },
)
ODD_TEXT = st.text(max_size=30) | st.sampled_from(
    ["9223372036854775808", "-1", "1e999", "\u00e9", "%00", "0" * 400, "\\ud800", "NaN"]
)
RELAXED = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("props") / "svc.db"
    with open_client(f"sqlite:///{db}") as c:
        yield c


@pytest.fixture(scope="module")
def auth(client: TestClient) -> dict[str, str]:
    return signup(client)


def _documented(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code < 500, (resp.status_code, resp.text[:300])
    if resp.status_code >= 400:
        assert "error" in resp.json() or "detail" in resp.json(), resp.text[:300]


@RELAXED
@given(endpoint=st.sampled_from(ENDPOINTS), body=JSON | FIELDS, sid=ODD_TEXT)
def test_any_json_body_gets_a_documented_answer(client: TestClient, auth: dict[str, str], endpoint: str,
                                                body: object, sid: str) -> None:  # fmt: skip
    path = endpoint.format(sid=quote(sid, safe="") or uuid.uuid4().hex)
    headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
    _documented(
        client.post(path, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    )


@RELAXED
@given(raw=st.binary(max_size=80), endpoint=st.sampled_from(ENDPOINTS[:3]))
def test_bytes_that_are_not_json_get_a_documented_answer(client: TestClient, auth: dict[str, str], raw: bytes,
                                                         endpoint: str) -> None:  # fmt: skip
    _documented(client.post(endpoint, content=raw, headers={**auth, "Content-Type": "application/json"}))


@RELAXED
@given(after=ODD_TEXT, limit=ODD_TEXT, token=ODD_TEXT)
def test_odd_queries_and_tokens_get_a_documented_answer(client: TestClient, after: str, limit: str,
                                                        token: str) -> None:  # fmt: skip
    _documented(client.get("/v1/admin/subscriptions", params={"after": after, "limit": limit}))
    bearer = b"Bearer " + token.encode("utf-8", "surrogatepass")  # any bytes, as a client may send
    _documented(client.get("/v1/entitlements", headers={"Authorization": bearer}))
