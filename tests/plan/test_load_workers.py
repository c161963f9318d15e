"""load.workers: a plan asking for Locust workers on other machines, validated with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.plan import loading

PLAN = """\
name: t
load:
  locustfile: loadtests/subscriptions.py
{extra}
scenarios:
  - {{name: replica-kill, experiment: experiments/local/replica-kill.yaml}}
"""


def plan_at(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(extra=textwrap.indent(textwrap.dedent(extra), "  ")))
    return path


def test_defaults_listen_on_every_interface_on_locusts_port(tmp_path: Path) -> None:
    """Only `expect` is required: bind 0.0.0.0:5557, a 60 s join timeout."""
    plan = loading.load_plan(plan_at(tmp_path, "workers: {expect: 3}"))
    workers = plan.load.workers
    assert workers is not None
    assert (workers.expect, workers.bind_host, workers.bind_port, workers.join_timeout_s) == (
        3,
        "0.0.0.0",
        5557,
        60.0,
    )
    assert loading.load_plan(plan_at(tmp_path, "processes: 2")).load.workers is None


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ("workers: {expect: 0}", 4, "load.workers.expect: expected a number >= 1"),
        ("workers: {}", 4, "load.workers.expect: required key is missing"),
        ("workers: {expect: 2, bind: '0.0.0.0'}", 4, "load.workers.bind: expected HOST:PORT"),
        ("workers: {expect: 2, bind: 'host:70000'}", 4, "load.workers.bind: expected HOST:PORT"),
        ("workers: {expect: 2, join_timeout_s: 0}", 4, "load.workers.join_timeout_s: expected a number > 0"),
        ("workers: {expect: 2, port: 5557}", 4, "load.workers.port: "),
        ("processes: 2\nworkers: {expect: 2}", 4, "load.processes: expected 1 with load.workers"),
    ],
)
def test_bad_workers_are_reported_with_their_line(
    tmp_path: Path, extra: str, line: int, message: str
) -> None:
    """Each mistake names the file, the line and the key, and is an input error (exit 2)."""
    path = plan_at(tmp_path, extra)
    with pytest.raises(loading.PlanError) as caught:
        loading.load_plan(path)
    assert f"{path}:{line}: {message}" in str(caught.value), str(caught.value)
    assert caught.value.exit_code == 2
