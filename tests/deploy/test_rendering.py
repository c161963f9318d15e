"""The real kustomize and the fallback renderer agree on every kustomization in deploy/.

When kubectl (kustomize 5) is on PATH, the other deploy tests render with it; where it is not,
they use tests/deploy/kustomize.py, which is only trustworthy if it gives the same objects.
This is where that is shown, and it needs kubectl: without one it is skipped, and says so.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import kustomize
from tests.deploy.rendering import find_renderer, render, render_with_kubectl

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = sorted(
    str(p.parent.relative_to(DEPLOY))
    for p in DEPLOY.rglob("kustomization.yaml")
    if yaml.safe_load(p.read_text()).get("kind", "Kustomization") == "Kustomization"
)
"""Every folder `kubectl apply -k` takes (components are built only inside one)."""

type Obj = dict[str, Any]


def normalized(objects: list[Obj]) -> dict[tuple[str, str, str, str], Obj]:
    """Objects by id (order is kustomize's own business), Secret data decoded: kustomize wraps
    base64 at 76 characters, which the API server reads the same."""
    by_id = {}
    for obj in objects:
        if obj["kind"] == "Secret" and "data" in obj:
            obj = {**obj, "data": {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}}
        key = kustomize.object_id(obj)
        assert key not in by_id, f"{key} twice"
        by_id[key] = obj
    return by_id


def test_the_renderer_in_use_is_reported() -> None:
    """The tests say which kustomize rendered deploy/ (also in pytest's header and summary)."""
    renderer = find_renderer()
    print(f"deploy/ rendered with: {renderer.detail}")
    assert renderer.name in ("kubectl", "builtin")
    assert (renderer.kubectl is not None) == (renderer.name == "kubectl")


def test_every_kustomization_is_found() -> None:
    """The overlays and every part they are built from."""
    assert {"base", "gameday", "overlays/eks", "overlays/self-managed"} <= set(KUSTOMIZATIONS)


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_real_and_fallback_kustomize_give_the_same_objects(path: str) -> None:
    """Same ids, same content, for every kustomization (overlays included)."""
    if find_renderer().name != "kubectl":
        pytest.skip(f"needs kubectl with kustomize 5: {find_renderer().detail}")
    real = normalized(render_with_kubectl(DEPLOY / path))
    fallback = normalized(kustomize.render(DEPLOY / path))
    assert sorted(real) == sorted(fallback)
    for key, obj in real.items():
        assert obj == fallback[key], key
    assert normalized(render(DEPLOY / path)) == real, "the tests render with the real one"
