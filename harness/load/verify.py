"""After the load: is every write the service acknowledged still readable?

The locustfile appends each acknowledged subscription id to acks.jsonl; here they are
looked up through the service's verification endpoint. The count that cannot be read
back is the scenario's `data_loss`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from harness.errors import HarnessError

LOOKUP = "/v1/admin/subscriptions/lookup"
BATCH = 1000
NOTHING_ACKNOWLEDGED = "no write was acknowledged during the load: data loss not measured"


def read_acks(path: Path) -> list[str]:
    ids = []
    try:
        for line in path.read_text().splitlines():
            try:
                ids.append(json.loads(line)["subscription_id"])
            except (ValueError, KeyError):
                continue  # a line cut short when Locust was stopped
    except FileNotFoundError:
        pass
    return ids


def verify_acks(
    base_url: str, ids: list[str], admin_token: str | None = None, timeout_s: float = 30.0
) -> dict[str, Any]:
    """{"acknowledged": N, "missing": [...]} — retried until the service answers or timeout_s passes."""
    headers = {"X-Admin-Token": admin_token} if admin_token else {}
    missing: list[str] = []
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=10, headers=headers) as client:
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            while True:
                try:
                    resp = client.post(base_url + LOOKUP, json={"ids": chunk})
                    if resp.status_code == 200:
                        missing += resp.json()["missing"]
                        break
                    problem = f"HTTP {resp.status_code}"
                except httpx.HTTPError as exc:
                    problem = str(exc)
                if time.monotonic() > deadline:
                    raise HarnessError(f"cannot verify acknowledged writes at {base_url}: {problem}")
                time.sleep(0.5)
    if not ids:
        return {"acknowledged": 0, "missing": [], "data_loss": None, "note": NOTHING_ACKNOWLEDGED}
    return {"acknowledged": len(ids), "missing": sorted(set(missing)), "data_loss": len(set(missing))}


def data_loss(verified: dict[str, Any] | None) -> int | None:
    """The scenario's data_loss from verify.json: None unless some write was acknowledged and checked.

    Zero lost out of zero acknowledged is not evidence of durability, so a `data_loss == 0` gate
    fails as not measured rather than passing (also for run folders written before this rule).
    """
    if not verified or not verified.get("acknowledged"):
        return None
    value = verified.get("data_loss")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def unverified(verified: dict[str, Any] | None) -> bool:
    """Writes were acknowledged but the check of them gave no count (it failed): the score must not
    take that for a clean check. Nothing acknowledged, or no verify.json at all, is not a failed check."""
    if not verified or not verified.get("acknowledged"):
        return False
    return data_loss(verified) is None
