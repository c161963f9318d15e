"""The import contracts in pyproject.toml ([tool.importlinter]) hold: layers, pure gates and scoring.

Runs import-linter's `lint-imports` on this checkout (not on whichever copy of the package is
installed) and shows its report when a contract is broken.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), (
        f"{LINT_IMPORTS} is missing: run ./setup.sh (import-linter is a dev dependency)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_contracts_are_kept() -> None:
    """Every contract is kept: no module imports from a layer above its own, nor what it is forbidden."""
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_a_broken_contract_fails(tmp_path: Path) -> None:
    """An import against the layers makes lint-imports fail, naming the import (the check can fail)."""
    config = tmp_path / "contracts.ini"
    config.write_text(
        "[importlinter]\nroot_package = harness\n\n"
        "[importlinter:contract:upside-down]\nname = upside down\ntype = layers\n"
        "layers =\n    harness.scoring\n    harness.engine\n"
    )
    result = lint_imports("--config", str(config))
    assert result.returncode != 0
    assert "harness.engine is not allowed to import harness.scoring" in result.stdout, result.stdout
