"""Plan warnings: things that are valid but measure something other than the plan's author
thinks. `harness validate` and `harness run` print them (file:line, then why) and go on.

Problems that make a plan wrong are errors (harness.plan.loading); a warning is for a plan that
runs but whose numbers would mislead, where only the author can tell whether that is intended.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from harness.plan import loading
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
    host = load.get("host")
    if target.get("kind") == "kubernetes" and isinstance(host, str) and is_loopback_host(host):
        return [
            Problem(
                path,
                document.lines.get(("load", "host")),
                f"load.host: {host!r} is this machine, so the load reaches the cluster through a "
                "tunnel such as `kubectl port-forward`. A port-forward goes to one pod and dies with "
                "it: a pod-kill or node-drain then measures the tunnel, not the service. Give "
                "load.host a LoadBalancer or Ingress address, or run the harness in the cluster "
                "(deploy/gameday) with the Service's cluster DNS name.",
            )
        ]
    return []
