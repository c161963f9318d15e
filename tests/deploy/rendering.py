"""Render deploy/'s kustomizations with the real kustomize when it is here, else by hand.

`kubectl kustomize DIR` (kustomize built into kubectl; offline) is what `kubectl apply -k`
applies, so the tests check that whenever a kubectl with kustomize 5 or newer is on PATH.
Without one (a fresh Debian machine has no kubectl; Debian's kubernetes-client 1.20 carries
kustomize 2, which lacks `labels` and components) they fall back to tests/deploy/kustomize.py.
`find_renderer()` says which one runs; pytest prints it in its header and summary
(tests/deploy/conftest.py).
Set DEPLOY_RENDERER=builtin to force the fallback, or =kubectl to require the real one.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.deploy import kustomize

type Obj = dict[str, Any]

MIN_KUSTOMIZE = (5, 0)
"""`labels` and `components` as deploy/ uses them, and the `$patch: delete` semantics checked."""
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Renderer:
    name: str
    """"kubectl" or "builtin"."""
    detail: str
    """What it is, or why the real one is not used."""
    kubectl: str | None = None


def _kustomize_version(kubectl: str) -> tuple[int, ...] | None:
    try:
        done = subprocess.run(
            [kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=TIMEOUT_S
        )
        version = json.loads(done.stdout).get("kustomizeVersion", "")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    match = re.match(r"v?(\d+)\.(\d+)", version or "")
    return tuple(int(part) for part in match.groups()) if match else None


@functools.cache
def find_renderer() -> Renderer:
    """The real kustomize (kubectl's) when usable, else the hand-written one, with why."""
    wanted = os.environ.get("DEPLOY_RENDERER", "")
    if wanted not in ("", "kubectl", "builtin"):
        raise RuntimeError(f"DEPLOY_RENDERER={wanted!r}: expected kubectl or builtin")
    if wanted == "builtin":
        return Renderer("builtin", "tests/deploy/kustomize.py (DEPLOY_RENDERER=builtin)")
    kubectl = shutil.which("kubectl")
    version = _kustomize_version(kubectl) if kubectl else None
    if kubectl and version and version >= MIN_KUSTOMIZE:
        shown = ".".join(map(str, version))
        return Renderer("kubectl", f"kubectl kustomize ({kubectl}, kustomize v{shown})", kubectl)
    why = (
        "no kubectl on PATH"
        if not kubectl
        else f"{kubectl} carries kustomize {'.'.join(map(str, version)) if version else '(unknown)'}, "
        f"not >= {'.'.join(map(str, MIN_KUSTOMIZE))}"
    )
    if wanted == "kubectl":
        raise RuntimeError(f"DEPLOY_RENDERER=kubectl, but {why}")
    return Renderer("builtin", f"tests/deploy/kustomize.py ({why})")


def render_with_kubectl(path: Path) -> list[Obj]:
    """`kubectl kustomize path`, parsed; the real kustomize's objects in its own order."""
    renderer = find_renderer()
    kubectl = renderer.kubectl or shutil.which("kubectl") or "kubectl"
    done = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    if done.returncode != 0:
        raise kustomize.KustomizeError(f"kubectl kustomize {path}: {done.stderr.strip()}")
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


@functools.cache
def _render(path: Path, name: str) -> str:
    objects = render_with_kubectl(path) if name == "kubectl" else kustomize.render(path)
    return json.dumps(objects)


def render(path: Path) -> list[Obj]:
    """Build a kustomization with the renderer in use (a fresh copy each call)."""
    return json.loads(_render(Path(path).resolve(), find_renderer().name))
