"""setup.sh's system packages when it does not run as root, as on a hosted CI runner: through
`sudo -n` when sudo needs no password, else a stop that names the packages and the command.

The script's own function runs as `nobody` (when the tests run as root) with stub dpkg, sudo and
apt-get on PATH, so nothing is installed and no password is ever asked for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
PACKAGES = "haproxy postgresql chromium"


@pytest.fixture
def stage() -> Iterator[Path]:
    """A folder `nobody` can read and write, holding setup.sh and a bin/ of stubs (no sudo yet)."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shutil.copy(ROOT / "setup.sh", folder / "setup.sh")
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        stub(bin_dir, "dpkg", "exit 1")  # every package missing
        stub(bin_dir, "apt-get", 'echo "apt-get $*" >> "$LOG"')
        for tool in ("id", "env"):
            (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
        (folder / "calls.log").touch()
        for path in (folder, bin_dir, folder / "calls.log"):
            path.chmod(0o777)
        yield folder


def stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def install_as_nobody(folder: Path) -> subprocess.CompletedProcess[str]:
    """setup.sh's install_system_packages, sourced, as a user who is not root."""
    as_user: list[str] = []
    if os.getuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to drop root")
        as_user = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run(
        [*as_user, shutil.which("bash") or "/bin/bash", "-c", "source ./setup.sh && install_system_packages"],
        cwd=folder,
        env={"PATH": str(folder / "bin"), "LOG": str(folder / "calls.log"), "HOME": str(folder)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_without_sudo_it_stops_naming_the_packages_and_the_command(stage: Path) -> None:
    """No sudo: exit 1, nothing installed, and the message says what to install and how."""
    done = install_as_nobody(stage)
    assert done.returncode == 1, done
    assert f"setup: these Debian packages are missing: {PACKAGES}" in done.stderr
    assert f"sudo apt-get install -y --no-install-recommends {PACKAGES}" in done.stderr
    assert (stage / "calls.log").read_text() == ""


def test_sudo_that_wants_a_password_is_not_asked(stage: Path) -> None:
    """sudo that would prompt (`sudo -n` fails) counts as no sudo: the same message, no apt-get."""
    stub(stage / "bin", "sudo", 'echo "sudo $*" >> "$LOG"; exit 1')
    done = install_as_nobody(stage)
    assert done.returncode == 1, done
    assert f"sudo apt-get install -y --no-install-recommends {PACKAGES}" in done.stderr
    assert "apt-get" not in (stage / "calls.log").read_text().replace("sudo -n true", "")


def test_with_passwordless_sudo_it_installs_through_it(stage: Path) -> None:
    """sudo without a password (a hosted runner): apt-get runs through `sudo -n`, for the missing packages."""
    stub(stage / "bin", "sudo", 'echo "sudo $*" >> "$LOG"; [ "$2" = true ] && exit 0; shift; exec "$@"')
    done = install_as_nobody(stage)
    assert done.returncode == 0, done
    calls = (stage / "calls.log").read_text().splitlines()
    assert calls[:2] == ["sudo -n true", "sudo -n apt-get update -q"], calls
    assert calls[-1] == f"apt-get install -y -q --no-install-recommends {PACKAGES}", calls
    assert (
        f"sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {PACKAGES}"
        in calls
    )
