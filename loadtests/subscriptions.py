"""Subscription traffic for a meditation and sleep app, against the reference service.

    locust -f loadtests/subscriptions.py --headless -u 20 -r 10 --run-time 30s \
        --host http://127.0.0.1:8000 --timeline out/timeline.jsonl --acks out/acks.jsonl

Journeys (weights are users of each kind):
- Browser (6): anonymous catalog browsing and content details.
- Subscriber (3): signs up and subscribes once, then mostly checks entitlement and streams
  premium content; renews now and then; rarely cancels and later subscribes again.
- NewCustomer (1): the funnel — sign up, look at plans, purchase with an Idempotency-Key
  (retried with the same key on timeout or 5xx), then check the entitlement exists. Every
  funnel is a different customer, and customers arrive on schedule without waiting for each
  other (harness.load.users.ArrivalUser): one stuck at a dead replica holds up no one else.

Business checks, not only status codes: a purchase answered 2xx whose entitlement is then
missing is a failure of kind `check`. A purchase confirmed by its entitlement counts one
KPI ("subscriptions completed"). Every subscription the service acknowledged is appended
to --acks so the harness can verify afterwards that none was lost.

Users are paced (see harness.load.users): --pacing sets the intended seconds between a
user's task starts, and latency is also measured from the intended send time.
"""

import random
import uuid

import gevent
from locust import events, task

from harness.load import acks, recorder, users
from harness.load.users import ArrivalUser, PacedUser, VisitorSession

recorder.register(events)
users.register(events)

CATALOG_IDS = [f"c{i:03d}" for i in range(60)]
PREMIUM_IDS = [c for i, c in enumerate(CATALOG_IDS) if i % 4 != 0]
PLANS = ["monthly", "annual"]
PURCHASE_ATTEMPTS = 3
"""First try plus two retries with the same Idempotency-Key."""


ACKS = acks.register(events)
"""Acknowledged subscriptions, for --acks (workers ship theirs to the master)."""


def _json(resp):
    try:
        return resp.json()
    except (ValueError, TypeError):
        return None


AMBIGUOUS = {0, 502, 504}
"""No answer, or the proxy lost the service's: the request may or may not have been carried out."""


def _ok(resp):
    return 200 <= resp.status_code < 300


def check(resp, condition, message):
    """Fail a 2xx response whose content is wrong; other statuses keep their own failure."""
    if _ok(resp) and not condition:
        resp.failure(message)


class Journeys:
    """Sign-up, purchase and entitlement steps over `self.client`, for a user or one visitor."""

    token = None
    email = None

    def sign_up(self):
        self.email = f"u{uuid.uuid4().hex[:16]}@example.test"
        password = uuid.uuid4().hex
        with self.client.post(
            "/v1/signup",
            json={"email": self.email, "password": password},
            name="signup",
            catch_response=True,
        ) as resp:
            body = _json(resp)
            check(resp, body and body.get("token"), "signup answered without a token")
            if _ok(resp) and body and body.get("token"):
                self.token = body["token"]
                self.client.auth_header = f"Bearer {self.token}"
        return self.token is not None

    def purchase(self, plan_id):
        """Purchase with one Idempotency-Key, retried on timeouts and 5xx; the subscription id or None."""
        key = str(uuid.uuid4())
        for attempt in range(PURCHASE_ATTEMPTS):
            with self.client.post(
                "/v1/subscriptions",
                json={"plan_id": plan_id},
                headers={"Idempotency-Key": key},
                name="purchase",
                catch_response=True,
            ) as resp:
                body = _json(resp)
                if resp.status_code == 409 and body and body.get("error") == "already_subscribed":
                    # An earlier attempt did subscribe (its answer was lost): the service is
                    # right to refuse a second one. Not a failure; learn the subscription.
                    resp.success()
                    return self.current_subscription()
                if _ok(resp):
                    good = bool(body and body.get("subscription_id") and body.get("status") == "active")
                    check(resp, good, "purchase answered without an active subscription")
                    if good:
                        ACKS.record(
                            self.environment, subscription_id=body["subscription_id"], email=self.email
                        )
                        return body["subscription_id"]
                    return None
                retryable = resp.status_code == 0 or resp.status_code >= 500
            if not retryable or attempt == PURCHASE_ATTEMPTS - 1:
                return None
            gevent.sleep(0.2 * (attempt + 1))
        return None

    def current_subscription(self):
        with self.client.get("/v1/entitlements", name="entitlement", catch_response=True) as resp:
            sub = (_json(resp) or {}).get("subscription") or {}
            return sub.get("subscription_id")

    def confirm_entitlement(self, subscription_id):
        """The purchase is complete only when the entitlement shows it: that is the KPI."""
        with self.client.get("/v1/entitlements", name="entitlement", catch_response=True) as resp:
            body = _json(resp) or {}
            sub = body.get("subscription") or {}
            entitled = body.get("active") is True and sub.get("subscription_id") == subscription_id
            check(resp, entitled, "purchase acknowledged but entitlement missing")
            if _ok(resp) and entitled:
                resp.request_meta["context"]["kpi"] = 1
                return True
        return False


class Account(Journeys, PacedUser):
    """A user with an account, kept across tasks: token, subscription, and what it is unsure of."""

    abstract = True

    def on_start(self):
        super().on_start()
        self.subscription_id = None
        self.token = None
        self.email = None
        self.unsure = False
        """A cancellation got no answer: whether it happened is unknown until the service says."""

    def resync(self):
        """After an unanswered cancellation, learn from the service whether the user is subscribed.

        A request that timed out may still have been carried out (held in a partition and
        delivered later, say). A real client re-reads its state; asserting the old belief would
        report the service's correct answer as lost data.
        """
        with self.client.get("/v1/entitlements", name="entitlement", catch_response=True) as resp:
            body = _json(resp) or {}
            if _ok(resp):
                sub = body.get("subscription") or {}
                self.subscription_id = sub.get("subscription_id") if body.get("active") is True else None
                self.unsure = False


class Browser(PacedUser):
    """Anonymous visitors browsing the catalog."""

    weight = 6

    @task(5)
    def catalog(self):
        kind = random.choice([None, "sleep", "meditation", "story"])
        with self.client.get(
            "/v1/catalog" + (f"?kind={kind}" if kind else ""), name="catalog", catch_response=True
        ) as resp:
            body = _json(resp)
            check(resp, body and len(body.get("items", [])) > 0, "catalog is empty")

    @task(3)
    def content(self):
        content_id = random.choice(CATALOG_IDS)
        with self.client.get(f"/v1/content/{content_id}", name="content", catch_response=True) as resp:
            body = _json(resp)
            check(resp, body and body.get("id") == content_id, "content answered for another id")

    @task(1)
    def plans(self):
        with self.client.get("/v1/plans", name="plans", catch_response=True) as resp:
            body = _json(resp)
            check(resp, body and len(body.get("plans", [])) >= 1, "no plans on offer")


class Subscriber(Account):
    """Paying users: entitlement checks and streaming, occasional renewal or cancellation."""

    weight = 3

    def on_start(self):
        super().on_start()
        if self.sign_up():
            self.subscribe()

    def subscribe(self):
        """Buy once; an acknowledged purchase stands even if the entitlement check then failed."""
        self.subscription_id = self.purchase(random.choice(PLANS))
        if self.subscription_id:
            self.confirm_entitlement(self.subscription_id)

    @task(6)
    def entitlement(self):
        if not self.token:
            self.sign_up()
            return
        if self.unsure:
            self.resync()
            return
        if not self.subscription_id:
            self.subscribe()
            return
        with self.client.get("/v1/entitlements", name="entitlement", catch_response=True) as resp:
            body = _json(resp) or {}
            check(resp, body.get("active") is True, "subscriber lost the entitlement")

    @task(4)
    def stream(self):
        if not self.subscription_id or self.unsure:
            return
        content_id = random.choice(PREMIUM_IDS)
        with self.client.get(f"/v1/content/{content_id}/stream", name="stream", catch_response=True) as resp:
            body = _json(resp)
            check(resp, body and body.get("content_id") == content_id, "stream answered for other content")

    @task(1)
    def renew(self):
        if not self.subscription_id or self.unsure:
            return
        with self.client.post(
            f"/v1/subscriptions/{self.subscription_id}/renew",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            name="renew",
            catch_response=True,
        ) as resp:
            body = _json(resp)
            check(
                resp, body and body.get("status") == "active", "renewal did not keep the subscription active"
            )

    @task(1)
    def cancel_sometimes(self):
        if not self.subscription_id or self.unsure or random.random() > 0.2:
            return
        with self.client.post(
            f"/v1/subscriptions/{self.subscription_id}/cancel", name="cancel", catch_response=True
        ) as resp:
            body = _json(resp)
            check(resp, body and body.get("status") == "cancelled", "cancellation not confirmed")
            if _ok(resp):
                self.subscription_id = None
            elif resp.status_code in AMBIGUOUS:
                self.unsure = True


class Customer(Journeys):
    """One new customer, once through the funnel, with an account and token of its own."""

    def __init__(self, client, environment):
        self.client = client
        self.environment = environment

    def funnel(self):
        if not self.sign_up():
            return
        self.client.get("/v1/plans", name="plans")
        subscription_id = self.purchase(random.choice(PLANS))
        if subscription_id:
            self.confirm_entitlement(subscription_id)


class NewCustomer(ArrivalUser):
    """New customers arriving on schedule, each going through the subscription funnel once."""

    weight = 1

    @task
    def subscribe_funnel(self):
        self.arrive(lambda lags: Customer(VisitorSession(self.client, lags), self.environment).funnel())
