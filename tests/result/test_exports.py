"""The package's public names are what it exports."""

from __future__ import annotations

import harness.result


def test_all_lists_the_public_names() -> None:
    """Every name in __all__ exists, and every public module-level name (its public modules
    included) is in __all__."""
    public = {n for n in vars(harness.result) if not n.startswith("_")}
    assert set(harness.result.__all__) == public
    assert {"defaults", "files", "metrics", "model"} <= public
