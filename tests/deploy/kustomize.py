"""A small kustomize renderer for the features deploy/ uses: the fallback for machines without
a kubectl that carries kustomize 5 (tests/deploy/rendering.py picks one; Debian packages no
kustomize, and its own kubectl, 1.20, carries kustomize 2). `render(path)` builds a
kustomization the way `kustomize build` does for this subset, and refuses anything outside it
rather than guessing (test_rendering.py checks that both give the same objects):

- `resources`: YAML files (one or more documents) and kustomization folders;
- `components`: folders with `kind: Component`;
- `namespace`: set on every namespaced object and as the name of a Namespace object; binding
  subjects only when they are named `default` (kustomize's `defaultOnly` mode);
- `labels`: `pairs` on metadata, and on pod templates with `includeTemplates`
  (`includeSelectors: true` is refused: it rewrites selectors, which deploy/ never wants);
- `configMapGenerator` / `secretGenerator`: `literals` and `files`, with the name suffix hash
  disabled (kustomize's hash is not reproduced here, so a generator that wants it is refused);
- `generatorOptions`: `disableNameSuffixHash`, `labels`, `annotations`;
- `patches`: strategic merge patches from `path` or inline `patch`, found by their own kind
  and name (and namespace when given), or by a `target` of kind, name and namespace; of the
  directives, only `$patch: delete` on an item of a merged list;
- `images`: `newName`, `newTag`, `digest`;
- `replicas`: `name` and `count`.

Like kustomize's default load restrictor, files (resources, generator files, patches) must be
inside the kustomization's folder; other kustomizations may be anywhere.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

type Obj = dict[str, Any]

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_KINDS = {"Kustomization": "kustomize.config.k8s.io/v1beta1", "Component": "kustomize.config.k8s.io/v1alpha1"}
_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "components",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "patches",
    "images",
    "replicas",
}
_GENERATOR_FIELDS = {"name", "namespace", "behavior", "type", "literals", "files", "options"}
_OPTION_FIELDS = {"disableNameSuffixHash", "labels", "annotations"}

CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CSIDriver",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
    }
)
"""Kinds the namespace transformer leaves alone (Namespace itself is renamed instead)."""

_MERGE_KEYS: dict[str, tuple[str, ...] | None] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "envFrom": None,
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
    "volumeClaimTemplates": None,
}
"""Lists that strategic merge merges item by item, on the keys kustomize (kyaml) matches items
by: the API's list-map keys (`x-kubernetes-list-map-keys`), which for topologySpreadConstraints
are topologyKey and whenUnsatisfiable, not the patchMergeKey alone. `ports` is decided by its
items (containerPort for containers, port for Services). Any other list is replaced whole, as
strategic merge does for lists without a merge strategy."""

_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(Exception):
    """The kustomization is wrong, or uses a feature this renderer does not implement."""


def render(path: Path) -> list[Obj]:
    """Build the kustomization in folder `path`, as `kustomize build path` would."""
    return _build(Path(path).resolve(), expect="Kustomization", stack=())


def object_id(obj: Obj) -> tuple[str, str, str, str]:
    """(apiVersion's group, kind, namespace, name): what kustomize calls a resource id."""
    group = obj["apiVersion"].rpartition("/")[0]
    meta = obj.get("metadata", {})
    return group, obj["kind"], meta.get("namespace", ""), meta["name"]


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec inside a workload, a CronJob or a Pod; None for other kinds."""
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind in _WORKLOADS:
        return obj["spec"]["template"]["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def pod_template(obj: Obj) -> Obj | None:
    """The pod template (metadata and spec) of a workload or a CronJob."""
    if obj["kind"] in _WORKLOADS:
        return obj["spec"]["template"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return None


# --- building -----------------------------------------------------------------------------


def _read_kustomization(root: Path) -> Obj:
    for name in KUSTOMIZATION_NAMES:
        if (root / name).is_file():
            data = yaml.safe_load((root / name).read_text())
            break
    else:
        raise KustomizeError(f"{root}: no kustomization.yaml")
    if not isinstance(data, dict):
        raise KustomizeError(f"{root}: the kustomization is not a mapping")
    unknown = set(data) - _FIELDS
    if unknown:
        raise KustomizeError(f"{root}: unsupported kustomization fields {sorted(unknown)}")
    kind = data.get("kind", "Kustomization")
    if _KINDS.get(kind) != data.get("apiVersion", _KINDS.get(kind)):
        raise KustomizeError(f"{root}: kind {kind} with apiVersion {data.get('apiVersion')}")
    return data


def _inside(root: Path, relative: str, what: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise KustomizeError(
            f"{root}: {what} {relative!r} is outside the kustomization's folder "
            "(kustomize's load restrictor refuses it)"
        )
    if not path.is_file():
        raise KustomizeError(f"{root}: {what} {relative!r} does not exist")
    return path


def _build(root: Path, expect: str, stack: tuple[Path, ...]) -> list[Obj]:
    if root in stack:
        raise KustomizeError(f"{root}: cycle through {' -> '.join(map(str, stack))}")
    stack = (*stack, root)
    spec = _read_kustomization(root)
    kind = spec.get("kind", "Kustomization")
    if kind != expect:
        raise KustomizeError(f"{root}: expected a {expect}, found a {kind}")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        target = (root / entry).resolve()
        if target.is_dir():
            _add(objects, _build(target, "Kustomization", stack), root)
        else:
            _add(objects, _read_objects(_inside(root, entry, "resource")), root)
    for entry in spec.get("components", []):
        objects = _apply_component((root / entry).resolve(), objects, stack)
    return _generate_and_transform(root, spec, objects)


def _apply_component(root: Path, objects: list[Obj], stack: tuple[Path, ...]) -> list[Obj]:
    """A component adds its resources to the including kustomization's, then runs its
    generators and transformers over all of them."""
    if not root.is_dir():
        raise KustomizeError(f"{root}: a component must be a folder")
    spec = _read_kustomization(root)
    if spec.get("kind") != "Component":
        raise KustomizeError(f"{root}: expected a Component")
    objects = copy.deepcopy(objects)
    for entry in spec.get("resources", []):
        target = (root / entry).resolve()
        if target.is_dir():
            _add(objects, _build(target, "Kustomization", (*stack, root)), root)
        else:
            _add(objects, _read_objects(_inside(root, entry, "resource")), root)
    for entry in spec.get("components", []):
        objects = _apply_component((root / entry).resolve(), objects, (*stack, root))
    return _generate_and_transform(root, spec, objects)


def _generate_and_transform(root: Path, spec: Obj, objects: list[Obj]) -> list[Obj]:
    options = spec.get("generatorOptions", {})
    _check_keys(root, "generatorOptions", options, _OPTION_FIELDS)
    for entry in spec.get("configMapGenerator", []):
        _add(objects, [_generate(root, "ConfigMap", entry, options)], root)
    for entry in spec.get("secretGenerator", []):
        _add(objects, [_generate(root, "Secret", entry, options)], root)
    # kustomize's order of built-in transformers: patches, namespace, labels, replicas, images.
    for patch in spec.get("patches", []):
        _apply_patch(root, patch, objects)
    if "namespace" in spec:
        _set_namespace(objects, spec["namespace"])
    for entry in spec.get("labels", []):
        _add_labels(root, entry, objects)
    for entry in spec.get("replicas", []):
        _set_replicas(root, entry, objects)
    for entry in spec.get("images", []):
        _set_image(root, entry, objects)
    return objects


def _read_objects(path: Path) -> list[Obj]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict) or not {"apiVersion", "kind", "metadata"} <= set(doc):
            raise KustomizeError(f"{path}: every document needs apiVersion, kind and metadata")
        if doc["kind"].endswith("List"):
            raise KustomizeError(f"{path}: List objects are not supported")
    return docs


def _add(objects: list[Obj], new: Iterable[Obj], root: Path) -> None:
    seen = {object_id(obj) for obj in objects}
    for obj in new:
        if object_id(obj) in seen:
            raise KustomizeError(f"{root}: {object_id(obj)} is defined twice")
        seen.add(object_id(obj))
        objects.append(obj)


def _check_keys(root: Path, where: str, data: Obj, allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise KustomizeError(f"{root}: unsupported {where} fields {sorted(unknown)}")


# --- generators ---------------------------------------------------------------------------


def _generate(root: Path, kind: str, entry: Obj, global_options: Obj) -> Obj:
    _check_keys(root, f"{kind} generator", entry, _GENERATOR_FIELDS)
    options = {**global_options, **entry.get("options", {})}
    _check_keys(root, f"{kind} generator options", options, _OPTION_FIELDS)
    name = entry["name"]
    if entry.get("behavior", "create") != "create":
        raise KustomizeError(f"{root}: {name}: only behavior 'create' is supported")
    if not options.get("disableNameSuffixHash"):
        raise KustomizeError(
            f"{root}: {name}: set options.disableNameSuffixHash: true (this renderer does not "
            "compute kustomize's name suffix hash)"
        )
    data: dict[str, str] = {}
    for literal in entry.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep or not key:
            raise KustomizeError(f"{root}: {name}: literal {literal!r} is not KEY=VALUE")
        _put(root, name, data, key, value)
    for item in entry.get("files", []):
        key, sep, relative = item.partition("=")
        if not sep:
            key, relative = Path(item).name, item
        _put(root, name, data, key, _inside(root, relative, "generator file").read_text())
    metadata: Obj = {"name": name}
    if "namespace" in entry:
        metadata["namespace"] = entry["namespace"]
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    if options.get("annotations"):
        metadata["annotations"] = dict(options["annotations"])
    obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
    if kind == "Secret":
        obj["type"] = entry.get("type", "Opaque")
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        if "type" in entry:
            raise KustomizeError(f"{root}: {name}: a ConfigMap has no type")
        obj["data"] = data
    return obj


def _put(root: Path, name: str, data: dict[str, str], key: str, value: str) -> None:
    if key in data:
        raise KustomizeError(f"{root}: {name}: key {key!r} is given twice")
    data[key] = value


# --- transformers -------------------------------------------------------------------------


def _set_namespace(objects: list[Obj], namespace: str) -> None:
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] == "Namespace":
            meta["name"] = namespace
        elif obj["kind"] not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj.get("subjects", []):
                if subject.get("kind") == "ServiceAccount" and subject.get("name") == "default":
                    subject["namespace"] = namespace


def _add_labels(root: Path, entry: Obj, objects: list[Obj]) -> None:
    _check_keys(root, "labels", entry, {"pairs", "includeSelectors", "includeTemplates"})
    if entry.get("includeSelectors"):
        raise KustomizeError(f"{root}: labels with includeSelectors: true are not supported")
    pairs = {str(k): str(v) for k, v in entry["pairs"].items()}
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(pairs)
        template = pod_template(obj) if entry.get("includeTemplates") else None
        if template is not None:
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _set_replicas(root: Path, entry: Obj, objects: list[Obj]) -> None:
    _check_keys(root, "replicas", entry, {"name", "count"})
    hits = [o for o in objects if o["metadata"]["name"] == entry["name"] and o["kind"] in _WORKLOADS]
    if not hits:
        raise KustomizeError(f"{root}: replicas: no workload named {entry['name']!r}")
    for obj in hits:
        obj["spec"]["replicas"] = int(entry["count"])


def _set_image(root: Path, entry: Obj, objects: list[Obj]) -> None:
    _check_keys(root, "images", entry, {"name", "newName", "newTag", "digest"})
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            name, tag, digest = split_image(container["image"])
            if name != entry["name"]:
                continue
            name = entry.get("newName", name)
            if "digest" in entry:
                container["image"] = f"{name}@{entry['digest']}"
            elif "newTag" in entry:
                container["image"] = f"{name}:{entry['newTag']}"
            else:
                container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference; a registry port is not a tag."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None


# --- strategic merge patches --------------------------------------------------------------


def _apply_patch(root: Path, entry: Obj, objects: list[Obj]) -> None:
    _check_keys(root, "patches", entry, {"path", "patch", "target"})
    if ("path" in entry) == ("patch" in entry):
        raise KustomizeError(f"{root}: a patch needs exactly one of 'path' and 'patch'")
    text = _inside(root, entry["path"], "patch").read_text() if "path" in entry else entry["patch"]
    patch = yaml.safe_load(text)
    if not isinstance(patch, dict):
        raise KustomizeError(f"{root}: only strategic merge patches (a mapping) are supported")
    target = entry.get("target")
    if target is not None:
        _check_keys(root, "patch target", target, {"kind", "name", "namespace"})
        wanted = target
    else:
        meta = patch.get("metadata", {})
        wanted = {"kind": patch.get("kind"), "name": meta.get("name")}
        if "namespace" in meta:
            wanted["namespace"] = meta["namespace"]
    hits = [obj for obj in objects if _matches(obj, wanted)]
    if not hits or (target is None and len(hits) > 1):
        raise KustomizeError(f"{root}: patch {wanted} matches {len(hits)} objects")
    for obj in hits:
        merged = strategic_merge(obj, patch)
        if target is not None:  # a targeted patch keeps each object's identity
            merged["metadata"]["name"] = obj["metadata"]["name"]
            merged["kind"] = obj["kind"]
        obj.clear()
        obj.update(merged)


def _matches(obj: Obj, wanted: Obj) -> bool:
    meta = obj["metadata"]
    return (
        ("kind" not in wanted or wanted["kind"] == obj["kind"])
        and ("name" not in wanted or wanted["name"] == meta["name"])
        and ("namespace" not in wanted or wanted["namespace"] == meta.get("namespace", ""))
    )


def strategic_merge(original: Any, patch: Any, field: str = "") -> Any:
    """Merge `patch` into a copy of `original`: mappings key by key (null deletes), lists of
    known kinds item by item on their merge keys (an item with `$patch: delete` removes its
    match; the patch's items come first, as kustomize orders them), anything else replaced."""
    if isinstance(patch, dict):
        if any(key.startswith("$") for key in patch):
            raise KustomizeError(f"strategic merge directives ({sorted(patch)}) are not supported")
        if not isinstance(original, dict):
            return copy.deepcopy(patch)
        merged = copy.deepcopy(original)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(original.get(key), value, key)
        return merged
    if isinstance(patch, list) and isinstance(original, list):
        keys = _merge_key(field, original + patch)
        if keys is None:
            return copy.deepcopy(patch)
        # kustomize's order: the patch's items first, in the patch's order, then the original's
        # items the patch did not name, in theirs.
        rest = list(original)
        merged = []
        for item in patch:
            if not isinstance(item, dict) or keys[0] not in item:
                raise KustomizeError(f"an item of {field} in a patch has no {keys[0]}")
            item = dict(item)
            delete = item.pop("$patch", None)
            if delete not in (None, "delete"):
                raise KustomizeError(f"strategic merge directive $patch: {delete} is not supported")
            wanted = tuple(item.get(k) for k in keys)
            match = next((e for e in rest if tuple(e.get(k) for k in keys) == wanted), None)
            if match is not None:
                rest.remove(match)
            if not delete:
                merged.append(copy.deepcopy(item) if match is None else strategic_merge(match, item, field))
        return merged + copy.deepcopy(rest)
    return copy.deepcopy(patch)


def _merge_key(field: str, items: list[Any]) -> tuple[str, ...] | None:
    if field == "ports":
        if all(isinstance(i, dict) and "containerPort" in i for i in items):
            return ("containerPort",)
        return ("port",)
    return _MERGE_KEYS.get(field)
