"""Child processes the harness starts: each in its own session, always stopped as a group.

Locust with --processes, uvicorn with --workers and testbed members all fork;
stopping only the leader would leave its children running, so every child is started with
start_new_session=True and stopped here: a polite signal, a bounded wait, then SIGKILL to
the whole process group.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path


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


def signal_group(pid: int, sig: int) -> bool:
    """Send a signal to the process group led by pid; False if it is gone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pid: int) -> bool:
    """SIGKILL a process group that is not our child (its leader's pid from a state file)."""
    return signal_group(pid, signal.SIGKILL)


def group_alive(pid: int) -> bool:
    """Whether any process of the group led by pid still runs (a zombie does not count)."""
    reap(pid)
    return _alive(pid)


def spawn_detached(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> int:
    """Start a long-lived process in its own session, output to log_path; returns its pid.

    For testbed processes that outlive the command that started them (`harness testbed up`
    exits, the testbed runs on). No Popen object is kept, so nothing warns about a child
    still running; whoever stops it later calls `reap` if it is still our child.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    executable = shutil.which(argv[0]) or argv[0]
    return os.posix_spawn(executable, argv, env if env is not None else dict(os.environ), file_actions=actions,
                          setsid=True)  # fmt: skip


def reap(pid: int) -> None:
    """Collect the exit status of a child we spawned, if it is ours and has exited."""
    with suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Wait until these process groups have no live member; returns those still alive."""
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        for pid in alive:
            reap(pid)
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.05)
    return alive


def _alive(pid: int) -> bool:
    """The group has a member that is not a zombie."""
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # the leader may be a zombie while nothing else runs in the group
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().split(") ", 1)[1].startswith("Z"):
                return _group_has_live_member(pid)
    except (FileNotFoundError, ProcessLookupError, IndexError):  # gone between the two looks
        return _group_has_live_member(pid)
    return True


def _group_has_live_member(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().split(") ", 1)[1].split()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
