"""Benchmark what the fault proxy costs when no fault is set: a fast backend directly vs through it.

    .venv/bin/python benchmarks/faultproxy_overhead.py [--rounds 3] [--seconds 5] [--loads 1,8]

The backend is HAProxy answering `200 ok` by itself, so the backend costs next to nothing. The
client is a small asyncio (uvloop) loop in this process: N keep-alive connections, each sending
the next GET as soon as the previous answer is complete (closed loop), for --seconds per
variant. Variants:

- direct: the client talks to HAProxy;
- proxy: through an ingress route of the fault proxy with no faults (its pass-through path);
- proxy, queued path: through an egress route limited to 1 Gbit/s, a limit never reached here,
  so every chunk takes the path that faults use (queue, sending task, token bucket).

Variants run interleaved (round-robin, the same order every round) so drift on the machine
affects all alike. A Markdown table goes to stdout: medians over rounds of requests/s and of
each round's p50 and p99 latency. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import load_path  # noqa: E402
from harness import children  # noqa: E402
from harness.app.launcher import free_port  # noqa: E402
from harness.testbed.faultproxy import Direction, FaultProxyClient, FaultSpec, Route, start_proxy  # noqa: E402

LOCALHOST = "127.0.0.1"
HAPROXY_CFG = """
global
    maxconn 4096
defaults
    mode http
    timeout client 30s
    timeout connect 5s
    timeout server 30s
frontend fast
    bind {host}:{port}
    http-request return status 200 content-type text/plain string ok
"""
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def start_haproxy(work: Path) -> tuple[subprocess.Popen, int]:
    """HAProxy in its own session, answering by itself; returns once its port accepts."""
    port = free_port()
    cfg = work / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(host=LOCALHOST, port=port))
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    log = work / "haproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [haproxy, "-f", str(cfg), "-db"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection((LOCALHOST, port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    children.stop_group(process, grace_s=5)
    raise RuntimeError(f"HAProxy did not listen on {port} within 10 s:\n{log.read_text()}")


async def _connection(port: int, deadline: float, latencies_s: list[float]) -> None:
    """One keep-alive connection, one request at a time, until the deadline."""
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies_s.append(time.perf_counter() - started)
    finally:
        writer.close()
        await writer.wait_closed()


async def _load(port: int, connections: int, seconds: float) -> list[float]:
    latencies_s: list[float] = []
    deadline = time.perf_counter() + seconds
    async with asyncio.timeout(seconds + 30):
        await asyncio.gather(*(_connection(port, deadline, latencies_s) for _ in range(connections)))
    return latencies_s


def measure(port: int, connections: int, seconds: float) -> dict[str, float]:
    """Requests/s and p50/p99 latency (ms) of one closed-loop run."""
    latencies_s = uvloop.run(_load(port, connections, seconds))
    cuts = statistics.quantiles(latencies_s, n=100)
    return {"rps": len(latencies_s) / seconds, "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{load_path.machine()}, load average at start {load}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--loads", default="1,8", help="connections per run, comma-separated")
    args = parser.parse_args()
    loads = [int(n) for n in args.loads.split(",")]
    description = machine()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-faultproxy-"))
    haproxy = proxy = None
    try:
        haproxy, backend_port = start_haproxy(work)
        control_port = free_port()
        proxy = start_proxy(control_port, work / "proxy.log")
        ports = {"direct": backend_port, "proxy": free_port(), "proxy, queued path": free_port()}
        with FaultProxyClient(f"http://{LOCALHOST}:{control_port}") as client:
            client.add_route(Route(name="plain", listen_port=ports["proxy"], target_port=backend_port,
                                   direction=Direction.INGRESS))  # fmt: skip
            client.add_route(Route(name="queued", listen_port=ports["proxy, queued path"],
                                   target_port=backend_port, direction=Direction.EGRESS))  # fmt: skip
            client.set_faults(Direction.EGRESS, FaultSpec(bandwidth_kbps=1_000_000))
            for port in ports.values():
                measure(port, max(loads), 0.5)  # warm-up: connections, caches, HAProxy threads
            results: dict[tuple[str, int], list[dict[str, float]]] = {
                (v, n): [] for n in loads for v in ports
            }
            for r in range(args.rounds):
                for variant, n in results:
                    res = measure(ports[variant], n, args.seconds)
                    results[(variant, n)].append(res)
                    print(
                        f"  round {r + 1} {variant:20s} {n:2d} conn {res['rps']:8.0f} req/s "
                        f"p50 {res['p50_ms']:.3f} ms p99 {res['p99_ms']:.3f} ms",
                        file=sys.stderr,
                    )
            stats = client.state()["stats"]
    finally:
        if proxy is not None:
            children.stop_group(proxy, grace_s=5)
        if haproxy is not None:
            children.stop_group(haproxy, grace_s=5)
        shutil.rmtree(work, ignore_errors=True)

    print(f"Machine: {description}\n")
    print(f"{args.rounds} rounds of {args.seconds:g} s per variant, interleaved; medians over rounds.\n")
    print("| path | connections | req/s | runs (req/s) | vs direct | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for n in loads:
        base = statistics.median(r["rps"] for r in results[("direct", n)])
        for variant in ports:
            runs = results[(variant, n)]
            rps = statistics.median(r["rps"] for r in runs)
            p50 = statistics.median(r["p50_ms"] for r in runs)
            p99 = statistics.median(r["p99_ms"] for r in runs)
            print(
                f"| {variant} | {n} | {rps:.0f} | {', '.join(f'{r["rps"]:.0f}' for r in runs)} "
                f"| {100 * (rps / base - 1):+.0f} % | {p50:.3f} | {p99:.3f} |"
            )
    moved = {name: s["bytes_to_target"] + s["bytes_to_client"] for name, s in stats.items()}
    print(f"\nBytes through the proxy routes: {moved}")


if __name__ == "__main__":
    main()
