"""An installed wheel carries the bundled plans, experiments and locustfiles, and finds them from
any folder: what a CI job gets from `pip install`, without the project's checkout.

The wheel is built once per session from a copy of the files a wheel is made of (a build in the
checkout would reuse a stale build/ folder), and installed without its dependencies into a
throwaway virtual environment that borrows them from the one running the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "setup.py", "README.md", "harness", "experiments", "loadtests"]
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
"""pip's environment: a PYTHONPATH pointing at a checkout would show pip the package as installed."""
PLANS = sorted(p.stem for p in (ROOT / "experiments" / "plans").glob("*.yaml"))


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("wheel-src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
         "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=600, env=CLEAN_ENV,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("*.whl")
    return path


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh virtual environment holding the wheel; the dependencies are the
    test environment's, reached through a .pth line (which does not bring its `harness` along)."""
    venv = tmp_path_factory.mktemp("venv")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
         "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=300, env=CLEAN_ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # After the install: pip would otherwise find this environment's own resilience-harness there.
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv / "bin"


def harness(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "harness"), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd), "COLUMNS": "200"},
    )  # fmt: skip


def test_the_wheel_carries_every_bundled_file(wheel: Path) -> None:
    """Every file of experiments/ and loadtests/ is in the wheel, under harness/_bundle/."""
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        f"harness/_bundle/{p.relative_to(ROOT)}"
        for folder in ("experiments", "loadtests")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert wanted and wanted <= names, sorted(wanted - names)


def test_list_shows_the_bundled_plans_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    """`harness list` in a folder with no checkout names every bundled plan and experiment folder."""
    listed = harness(installed, tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    for name in PLANS:
        assert name in listed.stdout
    assert "experiments/local" in listed.stdout


def test_a_bundled_plan_validates_and_resolves_inside_the_package(installed: Path, tmp_path: Path) -> None:
    """`harness validate local-quick` passes from an empty folder, its experiment and locustfile
    found in the installed package, and a look-alike experiments/ folder here changes nothing."""
    decoy = tmp_path / "experiments" / "local"
    decoy.mkdir(parents=True)
    (decoy / "replica-kill.yaml").write_text("not: an experiment\n")
    validated = harness(installed, tmp_path, "validate", "local-quick", "release-gate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "local-quick: valid plan" in validated.stdout
    assert "release-gate: valid plan" in validated.stdout
    assert "Traceback" not in validated.stderr
