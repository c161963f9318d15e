"""The subscription journeys against the real service when answers are lost on the way back."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from harness.app.launcher import open_service
from harness.load.process import LoadSpec, run_load
from tests.conftest import LOCUSTFILE
from tests.load.loopback import QuietHandler, serve

pytestmark = pytest.mark.slow

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@contextmanager
def open_answer_losing_proxy(upstream: str, lose: Callable[[str], bool], hold_s: float) -> Iterator[str]:
    """A proxy on loopback: requests reach the service, but for paths `lose` picks the answer is held
    `hold_s`, past the client's timeout — done by the service, never heard by the client."""
    client = httpx.Client(base_url=upstream, timeout=10)

    class Handler(QuietHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            answer = client.request(self.command, self.path, content=body, headers=headers)
            if lose(self.path):
                time.sleep(hold_s)
            try:
                self.send_response(answer.status_code)
                for k, v in answer.headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)
            except OSError:
                pass  # the client gave up: that is the point

        do_GET = do_POST = _forward

    try:
        with serve(Handler) as url:
            yield url
    finally:
        client.close()


def test_a_cancellation_whose_answer_was_lost_is_not_reported_as_lost_data(tmp_path: Path) -> None:
    """Every cancellation is carried out but its answer arrives after the 1 s request timeout.
    A subscriber that kept believing it was subscribed reported the service's right answer as
    'subscriber lost the entitlement' (and 403s on streams): data loss that never happened.
    Now the user re-reads its state after an unanswered cancellation, and only the timeouts
    themselves count as failures."""
    with (
        open_service(f"sqlite:///{tmp_path / 'svc.db'}", workers=2, log_path=tmp_path / "svc.log") as svc,
        open_answer_losing_proxy(svc.url, lambda path: path.endswith("/cancel"), hold_s=1.5) as url,
    ):
        spec = LoadSpec(
            LOCUSTFILE,
            url,
            users=10,
            spawn_rate=10,
            run_time_s=15,
            pacing_s=0.2,
            extra_args=["--request-timeout", "1", "Subscriber"],
        )
        result = run_load(spec, tmp_path / "run")
    assert result.returncode in (0, 1), result.log.read_text()[-3000:]
    with Path(f"{result.csv_prefix}_failures.csv").open() as fh:
        failures = {(row["Name"], row["Error"]): int(row["Occurrences"]) for row in csv.DictReader(fh)}
    cancels_lost = sum(
        n for (name, error), n in failures.items() if name == "cancel" and "timed out" in error
    )
    assert cancels_lost >= 2, failures
    others = {key: n for key, n in failures.items() if key[0] != "cancel"}
    assert others == {}, "only the unanswered cancellations fail"
