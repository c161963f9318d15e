"""The testbed's load balancer: a real HAProxy, its servers set through the runtime API.

The backend has a fixed number of server slots, all disabled at start. The load-balancer
sync (harness.testbed.controller) points a slot at an endpoint and enables it when the
endpoint appears in the control plane, and disables it when the endpoint goes away —
what kube-proxy does for a Service.

Two behaviours, a profile setting:
- health checks off (default): traffic follows the endpoints only, as a Kubernetes Service
  does. A dead replica keeps getting traffic until the control plane removes it.
- health checks on: HAProxy probes /readyz itself, as a cloud load balancer's target
  health checks do, and stops sending to a failed target on its own.

No retries and no redispatch: kube-proxy does not retry a failed connection elsewhere,
so neither does the testbed; a failure reaches the client, where the harness sees it.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from harness import children
from harness.errors import HarnessError

BACKEND = "replicas"
SLOTS = 16
"""Server slots in the backend: more than the replicas any testbed profile runs."""


def find_haproxy() -> Path:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).exists()), None
    )
    if not found:
        raise HarnessError("HAProxy is not installed: run ./setup.sh as root, or apt-get install haproxy")
    return Path(found)


def config(port: int, socket_path: Path, health_checks: bool) -> str:
    check = " check inter 500 fall 2 rise 2" if health_checks else ""
    servers = "\n".join(f"    server s{i} 127.0.0.1:1 disabled{check}" for i in range(1, SLOTS + 1))
    httpchk = "    option httpchk GET /readyz\n" if health_checks else ""
    return f"""global
    stats socket {socket_path} mode 600 level admin
    maxconn 4096
    # Without SO_REUSEPORT a port another process already listens on fails the bind, instead of
    # the kernel splitting the testbed's traffic with that process.
    noreuseport

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 0

frontend lb
    bind 127.0.0.1:{port}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
{httpchk}{servers}
"""


def start_detached(port: int, workdir: Path, health_checks: bool, log_path: Path) -> int:
    """Write the configuration and start HAProxy (foreground mode, own session); its pid."""
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(config(port, workdir / "haproxy.sock", health_checks))
    return children.spawn_detached([str(find_haproxy()), "-f", str(cfg), "-db"], log_path)


@dataclass(frozen=True)
class ServerState:
    slot: str
    address: str
    port: int
    enabled: bool


class Runtime:
    """HAProxy's runtime API over its admin socket."""

    def __init__(self, socket_path: Path, timeout_s: float = 2.0) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout_s)
            try:
                s.connect(str(self.socket_path))
            except OSError as exc:
                raise HarnessError(
                    f"HAProxy's runtime API at {self.socket_path} is not answering: {exc}"
                ) from exc
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> list[ServerState]:
        """Slots as HAProxy has them (srv_admin_state bit 0x01: forced maintenance)."""
        out = []
        for line in self.command(f"show servers state {BACKEND}").splitlines():
            parts = line.split()
            if len(parts) < 20 or not parts[0].isdigit():
                continue
            # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... srv_port at 18
            out.append(ServerState(parts[3], parts[4], int(parts[18]), not int(parts[6]) & 0x01))
        return out

    def enable(self, slot: str, port: int, address: str = "127.0.0.1") -> None:
        self._ok(self.command(f"set server {BACKEND}/{slot} addr {address} port {port}"), slot)
        self._ok(self.command(f"set server {BACKEND}/{slot} state ready"), slot)

    def disable(self, slot: str) -> None:
        self._ok(self.command(f"set server {BACKEND}/{slot} state maint"), slot)

    @staticmethod
    def _ok(reply: str, slot: str) -> None:
        text = reply.strip()
        if text and not text.startswith(("IP changed", "no need to change", "port changed", "IP and port")):
            raise HarnessError(f"HAProxy refused a change to {slot}: {text}")
