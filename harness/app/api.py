"""HTTP API of the reference subscription service (a meditation and sleep app).

    POST /v1/signup                      {email, password} -> 201 {user_id, token}
    POST /v1/login                       {email, password} -> 200 {token}
    GET  /v1/catalog                     public list of content
    GET  /v1/content/{id}                details; `playable` says whether the caller may stream it
    GET  /v1/content/{id}/stream         premium content needs an active subscription (else 403)
    GET  /v1/plans                       subscription plans
    POST /v1/subscriptions               {plan_id} + Idempotency-Key -> 201 new, 200 replayed
    GET  /v1/entitlements                the caller's active subscription, if any
    POST /v1/subscriptions/{id}/renew    + Idempotency-Key
    POST /v1/subscriptions/{id}/cancel
    GET  /v1/admin/subscriptions         acknowledged subscriptions, by sequence (verification)
    POST /v1/admin/subscriptions/lookup  {ids} -> {found, missing}
    GET  /healthz  /readyz  /metrics

Errors are JSON `{"error": CODE, "message": TEXT}`. Bad input is 400/422, never 500. When
the database cannot be reached the answer is 503 with Retry-After, and nothing was
acknowledged.

No `from __future__ import annotations` here: FastAPI must resolve the dependency
aliases (`User`, `Key`) defined inside create_app at runtime.
"""

import re
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from harness.app import auth, db
from harness.app.metrics import Metrics, MetricsMiddleware
from harness.app.payments import PaymentDeclinedError, PaymentProvider
from harness.app.settings import AppSettings
from harness.app.store import AlreadySubscribedError, EmailTakenError, Store

RETRY_AFTER_S = "1"
CATALOG_CACHE_S = 5.0
"""The catalog changes with releases, not requests; five seconds keeps it off the database."""
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ALREADY_SUBSCRIBED = "the account already has an active subscription"
MAX_SEQ = 2**63 - 1
"""The largest sequence number both databases store (a BIGINT); past it a query overflows."""


def _encodable(value: str) -> str:
    """Refuse text that cannot be stored: a lone surrogate (JSON allows "\\ud800") has no UTF-8 form."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains a lone surrogate, which is not valid Unicode") from None
    return value


Text = Annotated[str, AfterValidator(_encodable)]


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Text = Field(max_length=320)
    password: Text = Field(min_length=8, max_length=200)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("not an email address")
        return value.lower()


class PurchaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan_id: Text = Field(min_length=1, max_length=40)


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[Text, Field(max_length=40)]] = Field(max_length=10000)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


class ApiError(HTTPException):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code


def create_app(settings: AppSettings) -> FastAPI:
    """Build the service for one worker process; the schema must already exist."""
    engine = db.create_engine(settings.db, timeout_s=settings.db_timeout_s, pool_size=settings.pool_size)
    store = Store(engine)
    payments = PaymentProvider(settings.payment_latency_ms, settings.payment_failure_rate)
    metrics = Metrics()
    state: dict[str, Any] = {"secret": None, "catalog": None, "catalog_at": 0.0, "plans": None}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        yield
        engine.dispose()

    app = FastAPI(title="Reference subscription service", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    async def secret() -> bytes:
        if state["secret"] is None:
            state["secret"] = await run_in_threadpool(db.token_secret, engine)
        return state["secret"]

    async def plans() -> dict[str, dict[str, Any]]:
        if state["plans"] is None:
            state["plans"] = {p["id"]: p for p in await run_in_threadpool(store.plans)}
        return state["plans"]

    async def current_user(authorization: Annotated[str | None, Header()] = None) -> int:
        if not authorization or not authorization.startswith("Bearer "):
            raise ApiError(401, "unauthenticated", "missing bearer token", {"WWW-Authenticate": "Bearer"})
        user_id = auth.verify_token(authorization[7:], await secret())
        if user_id is None:
            raise ApiError(401, "unauthenticated", "invalid or expired token", {"WWW-Authenticate": "Bearer"})
        return user_id

    def idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
        if not idempotency_key or len(idempotency_key) > 200:
            raise ApiError(400, "idempotency_key_required", "send an Idempotency-Key header (1-200 chars)")
        return idempotency_key

    def admin(x_admin_token: Annotated[str | None, Header()] = None) -> None:
        if settings.admin_token and not auth.same_secret(x_admin_token or "", settings.admin_token):
            raise ApiError(403, "forbidden", "admin token required in X-Admin-Token")

    User = Annotated[int, Depends(current_user)]
    Key = Annotated[str, Depends(idempotency_key)]

    # --- errors -------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status_code, exc.code, str(exc.detail), exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {err.get('msg')}")
        status = 400 if any(e.get("type") == "json_invalid" for e in exc.errors()) else 422
        return _error(status, "invalid_request", "; ".join(problems))

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    @app.exception_handler(sa.exc.TimeoutError)
    async def _db_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        metrics.db_unavailable.inc()
        return _error(
            503,
            "database_unavailable",
            "the database is unavailable; retry later",
            {"Retry-After": RETRY_AFTER_S},
        )

    # --- health -------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            await run_in_threadpool(store.ping)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
            return _error(503, "not_ready", "database unreachable", {"Retry-After": RETRY_AFTER_S})
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    # --- accounts -----------------------------------------------------------------
    @app.post("/v1/signup", status_code=201)
    async def signup(body: Credentials) -> dict[str, Any]:
        hashed = await run_in_threadpool(auth.hash_password, body.password, settings.password_cost)
        try:
            user_id = await run_in_threadpool(store.create_user, body.email, hashed, time.time())
        except EmailTakenError:
            raise ApiError(409, "email_taken", "an account with this email exists") from None
        return {"user_id": user_id, "token": auth.issue_token(user_id, await secret(), settings.token_ttl_s)}

    @app.post("/v1/login")
    async def login(body: Credentials) -> dict[str, Any]:
        found = await run_in_threadpool(store.user_by_email, body.email)
        ok = found is not None and await run_in_threadpool(auth.check_password, body.password, found[1])
        if not ok or found is None:
            raise ApiError(401, "bad_credentials", "wrong email or password")
        return {
            "user_id": found[0],
            "token": auth.issue_token(found[0], await secret(), settings.token_ttl_s),
        }

    # --- catalog ------------------------------------------------------------------
    async def catalog() -> list[dict[str, Any]]:
        now = time.monotonic()
        if state["catalog"] is None or now - state["catalog_at"] > CATALOG_CACHE_S:
            state["catalog"] = await run_in_threadpool(store.catalog)
            state["catalog_at"] = now
        return state["catalog"]

    @app.get("/v1/catalog")
    async def list_catalog(kind: str | None = None) -> dict[str, Any]:
        items = await catalog()
        if kind:
            items = [i for i in items if i["kind"] == kind]
        return {"items": items}

    async def item(content_id: str) -> dict[str, Any]:
        for i in await catalog():
            if i["id"] == content_id:
                return i
        raise ApiError(404, "not_found", f"no content {content_id!r}")

    @app.get("/v1/content/{content_id}")
    async def content_detail(content_id: str, authorization: Annotated[str | None, Header()] = None):
        found = await item(content_id)
        playable = not found["premium"]
        if found["premium"] and authorization:
            user_id = await current_user(authorization)
            playable = await run_in_threadpool(store.active_subscription, user_id, time.time()) is not None
        return {**found, "playable": playable}

    @app.get("/v1/content/{content_id}/stream")
    async def stream(content_id: str, user_id: User) -> dict[str, Any]:
        found = await item(content_id)
        if found["premium"]:
            sub = await run_in_threadpool(store.active_subscription, user_id, time.time())
            if sub is None:
                raise ApiError(403, "not_entitled", "premium content needs an active subscription")
        return {
            "content_id": content_id,
            "url": f"/media/{content_id}.m4a",
            "duration_s": found["duration_s"],
        }

    @app.get("/v1/plans")
    async def list_plans() -> dict[str, Any]:
        return {"plans": list((await plans()).values())}

    # --- subscriptions ------------------------------------------------------------
    @app.post("/v1/subscriptions", status_code=201)
    async def purchase(body: PurchaseRequest, user_id: User, key: Key) -> JSONResponse:
        plan = (await plans()).get(body.plan_id)
        if plan is None:
            raise ApiError(422, "unknown_plan", f"no plan {body.plan_id!r}; see /v1/plans")
        previous = await run_in_threadpool(store.subscription_by_key, user_id, key)
        if previous is None and await run_in_threadpool(store.active_subscription, user_id, time.time()):
            # A concurrent retry with this key may have committed since the first look:
            # look again before calling it a second subscription.
            previous = await run_in_threadpool(store.subscription_by_key, user_id, key)
            if previous is None:
                raise ApiError(409, "already_subscribed", ALREADY_SUBSCRIBED)
        if previous is not None:
            if previous["plan_id"] != plan["id"]:
                raise ApiError(
                    422, "idempotency_key_reused", "this Idempotency-Key was used for another plan"
                )
            return JSONResponse(previous, status_code=200, headers={"Idempotent-Replayed": "true"})
        try:
            charge_id = await payments.charge(user_id, key, plan["price_cents"], "purchase")
        except PaymentDeclinedError:
            metrics.payment_failures.inc()
            raise ApiError(
                502,
                "payment_failed",
                "the payment provider failed; nothing was charged",
                {"Retry-After": RETRY_AFTER_S},
            ) from None
        try:
            sub, created = await run_in_threadpool(
                store.record_purchase, user_id, plan, key, charge_id, time.time()
            )
        except AlreadySubscribedError:
            raise ApiError(409, "already_subscribed", ALREADY_SUBSCRIBED) from None
        if created:
            metrics.subscriptions.inc()
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return JSONResponse(sub, status_code=201 if created else 200, headers=headers)

    @app.get("/v1/entitlements")
    async def entitlements(user_id: User) -> dict[str, Any]:
        sub = await run_in_threadpool(store.active_subscription, user_id, time.time())
        return {"active": sub is not None, "subscription": sub}

    async def owned(user_id: int, subscription_id: str) -> dict[str, Any]:
        sub = await run_in_threadpool(store.owned_subscription, user_id, subscription_id)
        if sub is None:
            raise ApiError(404, "not_found", f"no subscription {subscription_id!r} on this account")
        return sub

    @app.post("/v1/subscriptions/{subscription_id}/renew")
    async def renew(subscription_id: str, user_id: User, key: Key) -> dict[str, Any]:
        sub = await owned(user_id, subscription_id)
        plan = (await plans())[sub["plan_id"]]
        try:
            charge_id = await payments.charge(user_id, key, plan["price_cents"], "renewal")
        except PaymentDeclinedError:
            metrics.payment_failures.inc()
            raise ApiError(
                502,
                "payment_failed",
                "the payment provider failed; nothing was charged",
                {"Retry-After": RETRY_AFTER_S},
            ) from None
        renewal = run_in_threadpool(
            store.record_renewal,
            user_id,
            subscription_id,
            key,
            charge_id,
            plan["period_days"],
            plan["price_cents"],
            time.time(),
        )
        try:
            return await renewal
        except AlreadySubscribedError:
            raise ApiError(409, "already_subscribed", ALREADY_SUBSCRIBED) from None

    @app.post("/v1/subscriptions/{subscription_id}/cancel")
    async def cancel(subscription_id: str, user_id: User) -> dict[str, Any]:
        await owned(user_id, subscription_id)
        return await run_in_threadpool(store.cancel, subscription_id, time.time())

    # --- verification ---------------------------------------------------------------
    @app.get("/v1/admin/subscriptions", dependencies=[Depends(admin)])
    async def list_subscriptions(
        after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0, limit: int = 1000
    ) -> dict[str, Any]:
        limit = max(1, min(limit, 10000))
        rows = await run_in_threadpool(store.list_subscriptions, after, limit)
        return {"subscriptions": rows, "next": rows[-1]["seq"] if rows else after}

    @app.post("/v1/admin/subscriptions/lookup", dependencies=[Depends(admin)])
    async def lookup(body: LookupRequest) -> dict[str, Any]:
        found = await run_in_threadpool(store.existing_subscription_ids, body.ids)
        return {"found": sorted(found), "missing": sorted(set(body.ids) - found)}

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: settings come from the environment."""
    return create_app(AppSettings.from_env())
