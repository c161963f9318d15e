"""Every package says in `__all__` what other packages may use, and other packages use only that.

`__all__` holds names defined in (or imported into) the package, and the public modules of a
package whose surface is modules (`from harness.store import rundir`). Imports inside one
package, and between a package and its own subpackages, are that package's business.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

import harness

ROOT = Path(harness.__file__).parent
PACKAGES = sorted(
    ".".join(("harness", *path.parent.relative_to(ROOT).parts))
    for path in ROOT.rglob("__init__.py")
    if path.parent != ROOT
)


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps `__all__` in: CONSTANTS, then Classes, then the rest."""
    if name.isupper() or re.fullmatch(r"[A-Z0-9_]+", name):
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def _public(package: str) -> list[str]:
    names = getattr(importlib.import_module(package), "__all__", None)
    assert names is not None, f"{package} has no __all__"
    return list(names)


def _exists(module: ModuleType, name: str) -> bool:
    """A name the package defines, or a submodule of it (importable without the package importing it)."""
    return hasattr(module, name) or importlib.util.find_spec(f"{module.__name__}.{name}") is not None


def test_every_package_is_found() -> None:
    """The packages checked below are the ones on disk (a new package is checked without listing it)."""
    assert {"harness.engine", "harness.chaos.activities", "harness.timeline"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
class TestAll:
    def test_is_a_list_of_strings(self, package: str) -> None:
        """__all__ exists and lists names as strings."""
        names = _public(package)
        assert names and all(isinstance(n, str) for n in names), names

    def test_is_sorted_and_unique(self, package: str) -> None:
        """__all__ is in ruff's order, with no name twice."""
        names = _public(package)
        assert names == sorted(set(names), key=_isort_key)

    def test_every_name_exists(self, package: str) -> None:
        """Every listed name is defined in the package or is one of its modules."""
        module = importlib.import_module(package)
        missing = [n for n in _public(package) if not _exists(module, n)]
        assert not missing, f"{package}.__all__ lists what does not exist: {missing}"


def _owner(module: str) -> str | None:
    """The innermost harness package that `module` is, or is inside of."""
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        candidate = ".".join(parts[:end])
        if candidate in PACKAGES:
            return candidate
    return None


def _module_name(path: Path) -> str:
    parts = ("harness", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _related(a: str, b: str) -> bool:
    """One package is the other or contains it: their imports are internal."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def reaches_past(source: str, module_name: str, where: str) -> list[str]:
    """Imports in a module's source of another package's names or modules that its __all__ leaves out."""
    importer = _owner(module_name) or module_name
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [(node.module, [a.name for a in node.names])]
        elif isinstance(node, ast.Import):
            targets = [(a.name, []) for a in node.names]
        else:
            continue
        for module, names in targets:
            package = _owner(module)
            if package is None or _related(importer, package):
                continue
            public = _public(package)
            if module == package:
                bad = [n for n in names if n not in public]
            else:
                first = module.removeprefix(package + ".").split(".")[0]
                bad = [] if first in public else [first]
            if bad:
                found.append(f"{where}:{node.lineno}: {module}: {', '.join(bad)}")
    return found


def test_packages_import_only_public_names_of_other_packages() -> None:
    """No module imports another package's name or module that its __all__ leaves out."""
    found = [
        line
        for path in sorted(ROOT.rglob("*.py"))
        for line in reaches_past(path.read_text(), _module_name(path), str(path.relative_to(ROOT.parent)))
    ]
    assert not found, "imports past a package's __all__:\n" + "\n".join(found)


def test_the_check_sees_an_import_past_all() -> None:
    """Another package's unlisted module or name is reported; listed ones and the package's own are not."""
    source = (
        "from harness.scoring.bins import Bins\n"
        "from harness.timeline import read_timeline, parse_lines\n"
        "def f():\n"
        "    from harness.scoring import hidden\n"
        "    import harness.store.rundir\n"
        "    import harness.testbed.agent\n"
        "from harness.engine import runner, budget\n"
    )
    found = reaches_past(source, "harness.engine.sample", "sample.py")
    assert found == [
        "sample.py:1: harness.scoring.bins: bins",
        "sample.py:2: harness.timeline: parse_lines",
        "sample.py:4: harness.scoring: hidden",
        "sample.py:6: harness.testbed.agent: agent",
    ]
