"""A simulated payment provider: configurable latency and failure rate, idempotent by key.

Like a real provider (Stripe's Idempotency-Key), the charge id is derived from the caller's
idempotency key, so a retried purchase can never be charged twice even when two retries
race: both name the same charge, and the database keeps one row for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random


class PaymentDeclinedError(Exception):
    """The provider failed or timed out; nothing was charged."""


class PaymentProvider:
    def __init__(self, latency_ms: float, failure_rate: float, rng: random.Random | None = None) -> None:
        self.latency_ms = latency_ms
        self.failure_rate = failure_rate
        self._rng = rng or random.Random()

    @staticmethod
    def charge_id(user_id: int, idempotency_key: str, purpose: str) -> str:
        digest = hashlib.sha256(f"{purpose}:{user_id}:{idempotency_key}".encode()).hexdigest()
        return "ch_" + digest[:24]

    async def charge(self, user_id: int, idempotency_key: str, amount_cents: int, purpose: str) -> str:
        """Authorise a charge; returns its id or raises PaymentDeclinedError."""
        if self.latency_ms:
            # Jitter of ±50 % around the mean, as provider latency is never flat.
            await asyncio.sleep(self.latency_ms * self._rng.uniform(0.5, 1.5) / 1000.0)
        if self.failure_rate and self._rng.random() < self.failure_rate:
            raise PaymentDeclinedError("payment provider unavailable")
        return self.charge_id(user_id, idempotency_key, purpose)
