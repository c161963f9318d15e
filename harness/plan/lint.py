"""Plan warnings: things that are valid but measure something other than the plan's author
thinks. `harness validate` and `harness run` print them (file:line, then why) and go on.

Problems that make a plan wrong are errors (harness.plan.loading); a warning is for a plan that
runs but whose numbers would mislead, where only the author can tell whether that is intended.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from harness.plan import loading, models
from harness.plan.loading import PlanError, Problem

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback_host(url: str) -> bool:
    """Whether a URL's host is this machine: 127.0.0.0/8, ::1, or a localhost name."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def plan_warnings(path: Path) -> list[Problem]:
    """The warnings for a plan file, each at the line it is about; none for an unreadable file
    (loading reports that as an error)."""
    path = Path(path)
    try:
        document = loading._read_document(path, PlanError)
    except PlanError:
        return []
    data = document.data
    if not isinstance(data, dict):
        return []
    target, load = data.get("target"), data.get("load")
    if not (isinstance(target, dict) and isinstance(load, dict)):
        return []
    found = _requirement_warnings(path, document) if target.get("kind") == "kubernetes" else []
    host = load.get("host")
    if target.get("kind") == "kubernetes" and isinstance(host, str) and is_loopback_host(host):
        return [
            *found,
            Problem(
                path,
                document.lines.get(("load", "host")),
                f"load.host: {host!r} is this machine, so the load reaches the cluster through a "
                "tunnel such as `kubectl port-forward`. A port-forward goes to one pod and dies with "
                "it: a pod-kill or node-drain then measures the tunnel, not the service. Give "
                "load.host a LoadBalancer or Ingress address, or run the harness in the cluster "
                "(deploy/gameday) with the Service's cluster DNS name.",
            ),
        ]
    return found


def _requirement_warnings(path: Path, document: loading._Document) -> list[Problem]:
    """A scenario whose experiment is tagged `self-managed` (it acts on control-plane hosts) but
    that does not declare `requires: [self-managed-control-plane]`: on a managed control plane it
    would run and fail instead of being reported not applicable."""
    try:
        loaded = loading._load(path)
    except PlanError:
        return []
    wanted = models.Requirement.SELF_MANAGED_CONTROL_PLANE.value
    out = []
    for index, scenario in enumerate(document.data.get("scenarios") or []):
        file = loaded.files.get(("scenarios", index, "experiment"))
        if file is None or not isinstance(scenario, dict):
            continue
        try:
            experiment = loading._read_document(file, PlanError).data
        except PlanError:
            continue  # validation reports an unreadable experiment
        tags = experiment.get("tags") if isinstance(experiment, dict) else None
        requires = scenario.get("requires") or []
        if isinstance(tags, list) and "self-managed" in tags and wanted not in requires:
            out.append(
                Problem(
                    path,
                    document.lines.get(("scenarios", index, "experiment")),
                    f"scenarios.{index}: {file.name} acts on a self-managed control plane's hosts (its "
                    f"tags say self-managed) but the scenario does not declare `requires: [{wanted}]`: "
                    "on a managed control plane (EKS, GKE, AKS) it would run and fail instead of being "
                    "reported not applicable",
                )
            )
    return out
