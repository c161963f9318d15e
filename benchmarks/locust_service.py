"""Benchmark locustfile: the reference service's read path at full speed (closed loop).

Half catalog reads (cached in process), half entitlement checks (token check and a
database read). Each user signs up once at start.
"""

import uuid

from locust import FastHttpUser, task


class Reader(FastHttpUser):
    def on_start(self):
        resp = self.client.post(
            "/v1/signup", json={"email": f"{uuid.uuid4().hex}@bench.test", "password": "bench-password"}
        )
        self.client.auth_header = f"Bearer {resp.json()['token']}"

    @task
    def catalog(self):
        self.client.get("/v1/catalog", name="catalog")

    @task
    def entitlement(self):
        self.client.get("/v1/entitlements", name="entitlement")
