"""The test renderer itself: the kustomize behaviour deploy/ relies on, and its refusals."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize import KustomizeError, render, split_image, strategic_merge

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "web", "image": "web:1.0", "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "registry:5000/side:2"},
                ]
            },
        },
    },
}


def write(folder: Path, files: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


class TestStrategicMerge:
    def test_containers_merge_by_name(self) -> None:
        """A patch naming one container changes it and leaves the others."""
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2.0"}]}}}}
        merged = strategic_merge(DEPLOYMENT, patch)
        images = [c["image"] for c in merged["spec"]["template"]["spec"]["containers"]]
        assert images == ["web:2.0", "registry:5000/side:2"]
        assert merged["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]

    def test_env_merges_by_name_patch_first(self) -> None:
        """Entries are matched by name; the patch's come first, in its order, then the rest
        (kustomize's order, checked against `kubectl kustomize` 5.5)."""
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "web", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}]}
                        ]
                    }
                }
            }
        }
        env = strategic_merge(DEPLOYMENT, patch)["spec"]["template"]["spec"]["containers"][0]["env"]
        assert env == [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}]

    def test_spread_constraints_match_on_key_and_policy_and_delete(self) -> None:
        """topologySpreadConstraints are keyed by topologyKey *and* whenUnsatisfiable: a strict
        entry alone is added beside the soft one; `$patch: delete` removes the soft one."""
        soft = {"topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 1}
        host = {"topologyKey": "host", "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 1}
        strict = {"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 1}
        original = {"topologySpreadConstraints": [soft, host]}
        added = strategic_merge(original, {"topologySpreadConstraints": [strict]})
        assert added["topologySpreadConstraints"] == [strict, soft, host]
        delete = {"topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "$patch": "delete"}
        replaced = strategic_merge(original, {"topologySpreadConstraints": [delete, strict]})
        assert replaced["topologySpreadConstraints"] == [strict, host]

    def test_lists_without_merge_key_are_replaced_and_null_deletes(self) -> None:
        """args are replaced whole; a null value removes the key."""
        merged = strategic_merge({"args": ["a", "b"], "x": 1}, {"args": ["c"], "x": None})
        assert merged == {"args": ["c"]}

    def test_directives_are_refused(self) -> None:
        """$patch and friends are not implemented, so they are refused rather than ignored."""
        with pytest.raises(KustomizeError, match="directives"):
            strategic_merge({"a": 1}, {"$patch": "replace", "a": 2})

    def test_original_is_not_modified(self) -> None:
        """Merging returns a copy."""
        before = yaml.safe_dump(DEPLOYMENT)
        strategic_merge(DEPLOYMENT, {"spec": {"replicas": 1}})
        assert yaml.safe_dump(DEPLOYMENT) == before


class TestRender:
    def test_overlay_patches_namespaces_labels_images_and_replicas(self, tmp_path: Path) -> None:
        """The transformers of base and overlay apply in kustomize's order."""
        write(
            tmp_path / "base",
            {
                "kustomization.yaml": {
                    "namespace": "shop",
                    "resources": ["ns.yaml", "deploy.yaml"],
                    "labels": [{"pairs": {"team": "a"}, "includeTemplates": True}],
                },
                "ns.yaml": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
                "deploy.yaml": DEPLOYMENT,
            },
        )
        write(
            tmp_path / "overlay",
            {
                "kustomization.yaml": {
                    "resources": ["../base"],
                    "patches": [{"path": "p.yaml"}],
                    "images": [{"name": "web", "newName": "ecr.example/web", "newTag": "3"}],
                    "replicas": [{"name": "web", "count": 5}],
                },
                "p.yaml": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {"template": {"spec": {"serviceAccountName": "web"}}},
                },
            },
        )
        namespace, deployment = render(tmp_path / "overlay")
        assert namespace["metadata"]["name"] == "shop"
        assert deployment["metadata"]["namespace"] == "shop"
        assert deployment["metadata"]["labels"] == {"team": "a"}
        template = deployment["spec"]["template"]
        assert template["metadata"]["labels"] == {"app": "web", "team": "a"}
        assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
        assert template["spec"]["serviceAccountName"] == "web"
        assert [c["image"] for c in template["spec"]["containers"]] == [
            "ecr.example/web:3",
            "registry:5000/side:2",
        ]
        assert deployment["spec"]["replicas"] == 5

    def test_generators_without_hash(self, tmp_path: Path) -> None:
        """Literals and files become data; Secret values are base64; names keep no suffix."""
        write(
            tmp_path,
            {
                "kustomization.yaml": {
                    "generatorOptions": {"disableNameSuffixHash": True},
                    "configMapGenerator": [{"name": "plan", "files": ["plans/p.yaml", "other=plans/p.yaml"]}],
                    "secretGenerator": [{"name": "db", "namespace": "n", "literals": ["dsn=a=b"]}],
                },
                "plans/p.yaml": "name: p\n",
            },
        )
        configmap, secret = render(tmp_path)
        assert configmap["metadata"] == {"name": "plan"}
        assert configmap["data"] == {"p.yaml": "name: p\n", "other": "name: p\n"}
        assert secret["metadata"] == {"name": "db", "namespace": "n"}
        assert base64.b64decode(secret["data"]["dsn"]).decode() == "a=b"

    def test_hash_suffix_is_refused(self, tmp_path: Path) -> None:
        """A generator that wants kustomize's hash suffix cannot be rendered faithfully here."""
        write(tmp_path, {"kustomization.yaml": {"configMapGenerator": [{"name": "c", "literals": ["a=1"]}]}})
        with pytest.raises(KustomizeError, match="disableNameSuffixHash"):
            render(tmp_path)

    def test_files_outside_the_folder_are_refused(self, tmp_path: Path) -> None:
        """Like kustomize's load restrictor: a file resource must be inside the kustomization."""
        write(tmp_path, {"outside.yaml": DEPLOYMENT})
        write(tmp_path / "k", {"kustomization.yaml": {"resources": ["../outside.yaml"]}})
        with pytest.raises(KustomizeError, match="load restrictor"):
            render(tmp_path / "k")

    def test_unknown_fields_are_refused(self, tmp_path: Path) -> None:
        """A kustomize feature this renderer lacks is an error, not silently skipped."""
        write(tmp_path, {"kustomization.yaml": {"namePrefix": "x-"}})
        with pytest.raises(KustomizeError, match="namePrefix"):
            render(tmp_path)

    def test_a_patch_must_find_its_target(self, tmp_path: Path) -> None:
        """A patch for an object that is not there fails, as in kustomize."""
        patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nope"}}
        write(tmp_path, {"kustomization.yaml": {"resources": ["d.yaml"], "patches": [{"path": "p.yaml"}]}})
        write(tmp_path, {"d.yaml": DEPLOYMENT, "p.yaml": patch})
        with pytest.raises(KustomizeError, match="matches 0 objects"):
            render(tmp_path)

    def test_duplicates_are_refused(self, tmp_path: Path) -> None:
        """The same object twice is an error."""
        write(tmp_path, {"kustomization.yaml": {"resources": ["a.yaml", "b.yaml"]}, "a.yaml": DEPLOYMENT})
        write(tmp_path, {"b.yaml": DEPLOYMENT})
        with pytest.raises(KustomizeError, match="defined twice"):
            render(tmp_path)

    def test_namespace_leaves_named_subjects_and_cluster_objects(self, tmp_path: Path) -> None:
        """Only subjects named `default` follow the namespace; cluster-scoped objects get none."""
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "runner", "namespace": "elsewhere"},
                {"kind": "ServiceAccount", "name": "default", "namespace": "old"},
            ],
        }
        write(
            tmp_path, {"kustomization.yaml": {"namespace": "new", "resources": ["b.yaml"]}, "b.yaml": binding}
        )
        (rendered,) = render(tmp_path)
        assert "namespace" not in rendered["metadata"]
        assert [s["namespace"] for s in rendered["subjects"]] == ["elsewhere", "new"]

    def test_components_add_and_transform(self, tmp_path: Path) -> None:
        """A component's resources join the including kustomization's, and its generators run."""
        write(
            tmp_path / "comp",
            {
                "kustomization.yaml": {
                    "apiVersion": "kustomize.config.k8s.io/v1alpha1",
                    "kind": "Component",
                    "resources": ["d.yaml"],
                    "secretGenerator": [
                        {"name": "s", "literals": ["k=v"], "options": {"disableNameSuffixHash": True}}
                    ],
                },
                "d.yaml": DEPLOYMENT,
            },
        )
        write(tmp_path / "top", {"kustomization.yaml": {"components": ["../comp"]}})
        assert [o["kind"] for o in render(tmp_path / "top")] == ["Deployment", "Secret"]

    def test_a_component_is_not_a_resource(self, tmp_path: Path) -> None:
        """Listing a component under resources is an error, as in kustomize."""
        write(
            tmp_path / "comp",
            {"kustomization.yaml": {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component"}},
        )
        write(tmp_path / "top", {"kustomization.yaml": {"resources": ["../comp"]}})
        with pytest.raises(KustomizeError, match="expected a Kustomization"):
            render(tmp_path / "top")


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("postgres:17.6", ("postgres", "17.6", None)),
        ("registry:5000/app", ("registry:5000/app", None, None)),
        ("r.example/app:1@sha256:ab", ("r.example/app", "1", "sha256:ab")),
        ("app", ("app", None, None)),
    ],
)
def test_split_image(image: str, parts: tuple[str, str | None, str | None]) -> None:
    """A registry port is not a tag; tag and digest are both read."""
    assert split_image(image) == parts
