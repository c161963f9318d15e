"""One run per testbed folder: an exclusive `flock` on DIR/run.lock, held for the whole run.

The engine's testbed target takes it in open() and lets it go in close(); `harness testbed
up/down` and `harness cleanup` look at it before they touch a folder a run is using.

Why flock and not a PID file: the kernel drops the lock when the holder's last descriptor
closes, also when the holder dies by SIGKILL, so a dead holder never blocks the next run and
nobody has to guess whether a recorded pid was reused. The descriptor is not inherited by
child processes (Python opens files close-on-exec), so a testbed or Locust process the run
started cannot keep the lock alive after the run is gone.

The file's body says who holds it (run id, host, pid, started), for the message a second run
prints. A holder that finishes empties the body before unlocking; a body still there when the
lock is taken is therefore the record of a holder that died holding it (`previous`), and the
new holder heals what that run may have left (harness.engine.targets.TestbedTarget.open).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.errors import HarnessError

LOCK_FILE = "run.lock"
POLL_S = 0.2
"""How often a waiting run tries again: flock has no timeout, so `--wait` polls."""


class HeldError(HarnessError):
    """Another live run holds the target (a testbed folder here, a namespace's Lease in
    harness.kubernetes.lease): exit 2, like bad input, as nothing was injected and the fix is the
    caller's (wait, or another target)."""

    exit_code = 2

    def __init__(self, in_use: str, holder: dict[str, Any] | None, waited_s: float, remedy: str) -> None:
        self.holder = holder
        self.waited_s = waited_s
        after = f" after waiting {waited_s:.0f} s" if waited_s else ""
        super().__init__(f"{in_use}{after}; {remedy}")


class RunLockHeldError(HeldError):
    """Another live run holds the folder's lock."""

    def __init__(self, root: Path, holder: dict[str, Any] | None, waited_s: float = 0.0) -> None:
        self.root = root
        super().__init__(
            f"the testbed in {root} is in use by {describe(holder)}",
            holder,
            waited_s,
            "one run per testbed at a time: wait for it (--wait SECONDS), or use another --dir",
        )


class FolderInUseError(HarnessError):
    """`harness testbed up/down` or `harness cleanup` on a folder a live run holds: exit 2, as
    for a second run."""

    exit_code = 2


def describe(holder: dict[str, Any] | None) -> str:
    """'run R (pid P on host H, started T)' for a holder body, or what is known of it."""
    if not holder:
        return "a run that has not yet written who it is"
    started = holder.get("started")
    when = (
        dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(started, int | float)
        else "?"
    )
    return (
        f"run {holder.get('run_id', '?')} (pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
        f"started {when})"
    )


def holder_body(run_id: str, now: float) -> dict[str, Any]:
    """Who a holder is (run id, host, pid, started), as a lock file or a Lease annotation keeps it."""
    return {"run_id": run_id, "host": platform.node(), "pid": os.getpid(), "started": round(now, 3)}


def lock_path(root: Path) -> Path:
    return root / LOCK_FILE


def _read_body(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        body = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None  # a holder between truncate and write; the next look sees it whole
    return body if isinstance(body, dict) else None


def holder(root: Path) -> dict[str, Any] | None:
    """Who holds the folder's lock now, or None when nobody does (a dead holder does not count)."""
    path = lock_path(root)
    if not path.exists():
        return None
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            for _ in range(10):  # the holder writes its body just after it takes the lock
                if body := _read_body(path):
                    return body
                time.sleep(0.02)
            return {}
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


@dataclass
class RunLock:
    """A held lock; `release()` (or leaving `open_run_lock`) lets it go."""

    root: Path
    body: dict[str, Any]
    previous: dict[str, Any] | None
    """The body a holder that died holding the lock left behind; None after a clean release."""
    waited_s: float
    _fh: IO[str] | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        """What result.json keeps under target.lock."""
        return {
            "kind": "flock",
            "path": str(lock_path(self.root)),
            **self.body,
            "waited_s": round(self.waited_s, 3),
            "took_over_from": self.previous,
        }

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            fh.seek(0)
            fh.truncate()  # a clean release: the next holder has nothing to heal
            fh.flush()
        except OSError:
            pass  # the folder was removed with the testbed (`down`); the lock goes with the descriptor
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def acquire(
    root: Path,
    run_id: str,
    wait_s: float = 0.0,
    on_wait: Callable[[dict[str, Any] | None], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunLock:
    """Take the folder's run lock, waiting up to `wait_s` for a live holder; RunLockHeldError if it
    stays held. `on_wait` is told about the holder once, when waiting starts."""
    root = root.resolve()
    path = lock_path(root)
    started = clock()
    told = False
    while True:
        # Again each turn: a holder that started the testbed removes the folder with it (`down`).
        root.mkdir(parents=True, exist_ok=True)
        fh = path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            current = holder(root)
            waited = clock() - started
            if waited >= wait_s:
                raise RunLockHeldError(root, current, waited) from None
            if on_wait is not None and not told:
                on_wait(current)
                told = True
            sleep(min(POLL_S, max(wait_s - waited, 0.0)))
            continue
        # The file may have been removed (testbed down) and made again between our open and our
        # flock: then we hold a lock nobody else can see. Take the one at the path instead.
        try:
            same = os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            fh.close()
            continue
        break
    previous = _read_body(path)
    body = holder_body(run_id, time.time())
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(body))
    fh.flush()
    os.fsync(fh.fileno())
    return RunLock(root=root, body=body, previous=previous, waited_s=clock() - started, _fh=fh)


@contextlib.contextmanager
def open_run_lock(root: Path, run_id: str, wait_s: float = 0.0) -> Iterator[RunLock]:
    """The folder's run lock for the duration of a block."""
    lock = acquire(root, run_id, wait_s)
    try:
        yield lock
    finally:
        lock.release()


def refuse_if_held(root: Path, action: str, force: bool = False) -> None:
    """For `harness testbed up/down` and `harness cleanup`: a folder a live run uses is not
    touched unless `force` (not offered for up) says so."""
    current = holder(root.expanduser().resolve()) if root.expanduser().exists() else None
    if current is None or force:
        return
    hint = " (or pass --force to do it anyway)" if action != "up" else ""
    raise FolderInUseError(
        f"testbed {action}: the testbed in {root} is in use by {describe(current)}; wait for the run to end{hint}"
    )
