"""One source per fact: the permissions docs/kubernetes.md shows are the ones rbac.yaml grants.

deploy/gameday/rbac.yaml and kube-system/rbac.yaml are the source; section 2 of
docs/kubernetes.md summarises them in tables for readers. Every rule of one must be in the
other, so a permission added to (or dropped from) the manifests without the docs, or the other
way round, fails here. experiments/kubernetes/README.md points to them instead of keeping a copy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.rendering import render

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "kubernetes.md"

type Grant = tuple[str, str, str, str]
"""(API group or `nonResourceURL`, resource or URL, resource name or "", verb)."""

ROLES = {
    "Role `harness-gameday` in the service's namespace": ("Role", "harness-gameday"),
    "ClusterRole `harness-gameday`": ("ClusterRole", "harness-gameday"),
    "Role `harness-gameday-coredns` in `kube-system`": ("Role", "harness-gameday-coredns"),
    "Role `harness-gameday-load` in the service's namespace": ("Role", "harness-gameday-load"),
}
"""The bold heading of each table in section 2, and the role it describes."""


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def table_after(text: str, title: str) -> list[list[str]]:
    """The rows of the first Markdown table after the bold `title`, cells stripped."""
    start = text.index(f"**{title}**")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    header, rule, *body = rows
    assert set(rule[0]) <= set("-: "), "a table with a header row"
    return [dict(zip(header, row, strict=True)) for row in body]  # type: ignore[misc]


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def documented(rows: list[dict[str, str]]) -> set[Grant]:
    """Grants from a docs table: `API group`, `resource` (with "(`name` only)" for a resource
    name, "(all namespaces)" as a note), `verbs` (comma-separated)."""
    grants: set[Grant] = set()
    for row in rows:
        verbs = [v.strip() for v in row["verbs"].split(",")]
        group, resource = row["API group"], row["resource"]
        if group == "non-resource":
            for url in _ticked(resource):
                grants |= {("nonResourceURL", url, "", verb) for verb in verbs}
            continue
        (group,) = _ticked(group)
        group = group.strip('"')
        name_match = re.search(r"\(`([^`]+)` only\)", resource)
        name = name_match.group(1) if name_match else ""
        resource = re.sub(r"\s*\(.*\)$", "", resource).strip()
        grants |= {(group, resource, name, verb) for verb in verbs}
    return grants


def granted(role: dict[str, Any]) -> set[Grant]:
    """Grants of a Role or ClusterRole, one per (group, resource, name, verb)."""
    grants: set[Grant] = set()
    for rule in role["rules"]:
        for verb in rule["verbs"]:
            for url in rule.get("nonResourceURLs", []):
                grants.add(("nonResourceURL", url, "", verb))
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    for name in rule.get("resourceNames", [""]):
                        grants.add((group, resource, name, verb))
    return grants


@pytest.fixture(scope="module")
def roles() -> dict[tuple[str, str], dict[str, Any]]:
    objects = render(ROOT / "deploy" / "gameday") + render(ROOT / "deploy" / "gameday" / "kube-system")
    return {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("Role", "ClusterRole")}


def test_every_role_has_a_table(roles: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Each Role and ClusterRole the game day is bound to is documented, and nothing else."""
    assert set(ROLES.values()) == set(roles)


@pytest.mark.parametrize("title", ROLES)
def test_docs_table_and_rbac_yaml_agree(title: str, roles: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Every rule in the docs is in rbac.yaml, and every rule in rbac.yaml is in the docs."""
    permissions = section(DOCS.read_text(), "## 2. Permissions")
    shown = documented(table_after(permissions, title))
    given = granted(roles[ROLES[title]])
    assert not shown - given, f"{title}: documented but not granted: {sorted(shown - given)}"
    assert not given - shown, f"{title}: granted but not documented: {sorted(given - shown)}"


def test_parsing_a_docs_row() -> None:
    """The table reader understands groups, name-restricted resources and non-resource URLs."""
    rows = [
        {"API group": '`""`', "resource": "serviceaccounts (`default` only)", "verbs": "get"},
        {"API group": '`""`', "resource": "pods (all namespaces)", "verbs": "get, list"},
        {"API group": "non-resource", "resource": "`/readyz`, `/version`", "verbs": "get"},
    ]
    assert documented(rows) == {
        ("", "serviceaccounts", "default", "get"),
        ("", "pods", "", "get"),
        ("", "pods", "", "list"),
        ("nonResourceURL", "/readyz", "", "get"),
        ("nonResourceURL", "/version", "", "get"),
    }


def test_experiments_readme_keeps_no_copy_of_the_permissions() -> None:
    """The catalog's README points to the one source instead of an (older) table of its own."""
    text = (ROOT / "experiments" / "kubernetes" / "README.md").read_text()
    assert "| API group |" not in text
    assert "ssm:SendCommand" not in text and "ec2:DescribeInstances" not in text
    assert "deploy/gameday/rbac.yaml" in text and "deploy/iam/" in text


def test_no_doc_suggests_a_port_forward_for_load() -> None:
    """A port-forward to the service is one pod's tunnel: no doc or plan offers it as load.host."""
    files = [
        ROOT / "deploy" / "README.md",
        DOCS,
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "experiments" / "plans").glob("*.yaml"),
        ROOT / "experiments" / "kubernetes" / "README.md",
    ]
    for path in files:
        text = path.read_text()
        assert not re.search(r"port-forward\s+(svc/|service/)?subs\b", text), path
