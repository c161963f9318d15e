"""An AWS emulator (moto in server mode) on 127.0.0.1, reached through the real clients.

Server mode rather than moto's in-process mock: chaosaws builds its own boto3 clients, and
requests then go over HTTP through botocore's whole stack (parameter validation, signing,
serialisation), as they would against AWS. botocore honours AWS_ENDPOINT_URL (since 1.31),
so chaosaws.aws_client needs no change to be pointed here.

Where moto behaves unlike AWS, the fixtures here make it behave as AWS does (the server runs in
this process, so patching moto's models reaches it): a command sent by InstanceIds alone reaches
only those instances (`aws`); an instance's shell output can be played (`ssm_shell`); a FIS
experiment can fail to start (`fis_fails_to_start`). moto keeps EventBridge Scheduler schedules
but never runs them: tests fire them by calling their target themselves.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, Any]:
    """A clean emulated account; the configuration chaosaws expects (aws_region)."""
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # no user's files: nothing here may reach a real account
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    _ssm_without_targets_means_none(monkeypatch)
    return {"aws_region": REGION}


def _ssm_without_targets_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2 resolves SendCommand's Targets with EC2 filters, and no Targets at all as no filter:
    a command sent by InstanceIds alone also reaches every instance of the region. AWS sends it to
    the listed instances only; so does this."""
    from moto.ssm import models

    original = models.Command._get_instance_ids_from_targets

    def resolve(self: Any) -> list[str]:
        return original(self) if self.targets else []

    monkeypatch.setattr(models.Command, "_get_instance_ids_from_targets", resolve)


@pytest.fixture
def ssm_shell(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[str, list[str]], str]], None]:
    """Play the instances' shell for SSM: moto runs no script (every invocation succeeds with empty
    output), so give a function (instance id, commands) -> standard output, etcdctl's JSON say.

    The server runs in this process (ThreadedMotoServer), so patching moto's model reaches it.
    """
    from moto.ssm import models

    original = models.Command.invocation_response

    def install(play: Callable[[str, list[str]], str]) -> None:
        def response(self: Any, instance_id: str, plugin_name: str) -> dict[str, Any]:
            out = original(self, instance_id, plugin_name)
            out["StandardOutputContent"] = play(
                instance_id, list((self.parameters or {}).get("commands") or [])
            )
            return out

        monkeypatch.setattr(models.Command, "invocation_response", response)

    return install


@pytest.fixture
def fis_fails_to_start(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every FIS experiment started from now on is `failed`, as FIS reports a role it cannot assume
    or a target that resolves to nothing; moto never fails one by itself. The reason it gives."""
    from moto.fis.models import Experiment

    reason = "Unable to assume the role arn:aws:iam::123456789012:role/resilience-harness-fis"
    original = Experiment.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.status = "failed"

    monkeypatch.setattr(Experiment, "__init__", init)
    monkeypatch.setitem(Experiment.STATUS_REASONS, "failed", reason)
    return reason
