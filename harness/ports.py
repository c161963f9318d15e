"""Free TCP ports on this machine, for every process the harness starts on loopback.

Low level on purpose: the reference service's launcher and the testbed (etcd members, fault
proxies, replicas, HAProxy) both need ports, and the testbed must not depend on the service's
launcher to get one.
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now; another process may take it before it is bound."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
