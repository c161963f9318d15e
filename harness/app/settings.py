"""Settings of the reference subscription service, shared by every worker process."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_VAR = "HARNESS_APP_SETTINGS"
"""uvicorn starts each worker in a fresh interpreter; the settings travel as JSON in this variable."""


class AppSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    db: str = Field(description="sqlite:///path or postgresql://user:pass@host:port/db")
    payment_latency_ms: float = Field(50.0, ge=0)
    """A card network answers in tens of milliseconds; 50 ms keeps purchases visibly slower than reads."""
    payment_failure_rate: float = Field(0.0, ge=0, le=1)
    admin_token: str | None = None
    """When set, the /v1/admin endpoints require it in `X-Admin-Token`."""
    db_timeout_s: float = Field(2.0, gt=0)
    """How long a request waits for the database (lock or connection) before answering 503."""
    pool_size: int = Field(10, ge=1)
    password_cost: int = Field(2**12, ge=2)
    """scrypt N. Production would use 2**14 or more; sign-ups are part of the load here."""
    token_ttl_s: int = Field(24 * 3600, gt=0)

    @field_validator("db")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
        return value

    def to_env(self) -> dict[str, str]:
        return {ENV_VAR: self.model_dump_json()}

    @classmethod
    def from_env(cls) -> AppSettings:
        raw = os.environ.get(ENV_VAR)
        if not raw:
            raise RuntimeError(f"{ENV_VAR} is not set; start the service with `harness app serve`")
        return cls.model_validate_json(raw)
