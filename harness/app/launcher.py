"""Start the reference service as a child process and stop it, always.

Used by `harness load run` when no host is given, by the testbed and by tests. The child
runs in its own session (process group), so stopping it also stops its uvicorn workers.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness import children
from harness.errors import HarnessError
from harness.ports import free_port

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 25.0
"""Above the server's graceful-shutdown window, so a clean stop is never cut short."""


@dataclass
class Service:
    process: subprocess.Popen
    url: str
    log_path: Path | None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (graceful), then SIGKILL to the whole group after timeout_s; returns exit code."""
        return children.stop_group(self.process, timeout_s)


def wait_ready(url: str, process: subprocess.Popen | None, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise HarnessError(f"{what} exited with code {process.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise HarnessError(f"{what} was not ready at {url} within {timeout_s:.0f} s")


@contextmanager
def open_service(
    db: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int = 1,
    extra_args: Sequence[str] = (),
    log_path: Path | None = None,
) -> Iterator[Service]:
    """Run `harness app serve` until the block ends; yields once /readyz answers 200."""
    port = port or free_port(host)
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "app",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--db",
        db,
        "--workers",
        str(workers),
        *extra_args,
    ]
    log = log_path.open("ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    service = Service(process, f"http://{host}:{port}", log_path)
    try:
        wait_ready(service.url + "/readyz", process, READY_TIMEOUT_S, "the reference service")
        yield service
    finally:
        service.stop()
        if log_path:
            log.close()  # type: ignore[union-attr]
