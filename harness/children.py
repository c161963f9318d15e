"""Child processes the harness starts: each in its own session, always stopped as a group.

Locust with --processes, uvicorn with --workers and (later) testbed members all fork;
stopping only the leader would leave its children running, so every child is started with
start_new_session=True and stopped here: a polite signal, a bounded wait, then SIGKILL to
the whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress


def stop_group(process: subprocess.Popen, grace_s: float, leader_only: bool = False) -> int:
    """SIGTERM (to the leader, or the group), wait up to grace_s, SIGKILL the group; exit code."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            if leader_only:
                process.send_signal(signal.SIGTERM)
            else:
                os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers in the group, whatever the leader did
    return process.wait(5)
