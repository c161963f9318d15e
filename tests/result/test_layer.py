"""harness.result is a low layer: everything above reads result.json through it, so it must not
import them back."""

from __future__ import annotations

import ast
from pathlib import Path

import harness.result

PACKAGE = Path(harness.result.__file__).parent
ALLOWED = ("harness.result", "harness.errors", "harness.phases", "pydantic", "__future__")
_STDLIB_OK = {"collections", "dataclasses", "difflib", "enum", "json", "math", "pathlib", "typing"}
"""The standard-library modules the package uses; anything else must be in ALLOWED."""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_result_imports_only_errors_pydantic_and_the_standard_library() -> None:
    """No module of harness.result imports another harness package than harness.errors and harness.phases."""
    for path in sorted(PACKAGE.glob("*.py")):
        for name in _imports(path):
            if name.startswith("harness") or name.split(".")[0] not in _STDLIB_OK:
                assert name.startswith(ALLOWED), f"{path.name} imports {name}"
