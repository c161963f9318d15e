"""Where the bundled plans, experiments and locustfiles are, in a checkout and in an installed wheel.

Plans name their files from the top of the project (`experiments/local/replica-kill.yaml`,
`loadtests/subscriptions.py`). In a checkout those folders sit beside the package; a wheel carries
the same folders inside it, as harness/_bundle/ (setup.py), so the same relative paths start from
ROOT in both. Low level on purpose: the CLI's defaults and the plan loader both need it, and
`harness --help` should not load the plan models to learn a default path.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _root() -> Path:
    installed = _PACKAGE / "_bundle"
    return installed if (installed / "experiments").is_dir() else _PACKAGE.parent


ROOT = _root()
"""The folder holding experiments/ and loadtests/: harness/_bundle/ when installed, else the checkout."""
PLANS_DIR = ROOT / "experiments" / "plans"
LOCUSTFILE = ROOT / "loadtests" / "subscriptions.py"
"""The reference service's journeys: the default locustfile of `harness load run` and `load worker`."""
