#!/usr/bin/env python3
"""Benchmark the simulator's ``large`` scenario: start-up time and request latency.

Measures, for each inventory size: building the scenario, starting the servers, the first
``GET /cluster/resources`` (cold: serialising every row) and the warm median/p95 over repeated
calls, plus a few other reads a client makes. Prints a table; ``--json`` also writes the
numbers. Run: ``python benchmarks/bench_sim.py [--sizes 20x5000,5x500] [--repeat 20]``.

``--cpu`` measures instead what one GET costs the simulator: served by a child process
(``benchmarks/_harness.py``), read by a raw keep-alive client, config, status/current, guest
agent and ``/cluster/resources`` over HTTP and HTTPS, as the child's CPU time (every thread,
user + system) per request. ``--latency 0.02 --connections 8`` adds injected latency and
concurrency, as the group benchmark has (an idle thread wakes with cold caches: expect
several times the CPU of back-to-back requests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from pvekit.sim import Simulator


def _timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench(nodes: int, guests: int, repeat: int) -> dict[str, Any]:
    build_s, sim = _timed(lambda: Simulator("large", nodes=nodes, guests=guests))
    start_s, _ = _timed(sim.start)
    try:
        c = sim["large"]
        s = requests.Session()
        s.headers["Authorization"] = f"PVEAPIToken=root@pam!pvekit={c.auth.token_secret}"
        base = c.url + "/api2/json"

        def get(path: str, **params: Any) -> requests.Response:
            r = s.get(base + path, params=params, timeout=60)
            r.raise_for_status()
            return r

        # Let the warm-up thread finish its work in the first call's stead is exactly what a
        # user sees right after start, so the "first" figure is taken immediately.
        first_s, resp = _timed(lambda: get("/cluster/resources"))
        rows = len(resp.json()["data"])
        size = len(resp.content)
        warm = [_timed(lambda: get("/cluster/resources"))[0] for _ in range(repeat)]
        vm_only = [
            _timed(lambda: get("/cluster/resources", type="vm"))[0]
            for _ in range(max(3, repeat // 4))
        ]
        node_list = [
            _timed(lambda: get("/nodes/node01/qemu"))[0] for _ in range(max(3, repeat // 4))
        ]
        rrd = [
            _timed(lambda: get("/nodes/node01/rrddata", timeframe="week"))[0]
            for _ in range(max(3, repeat // 4))
        ]
    finally:
        stop_s, _ = _timed(sim.stop)
    warm.sort()
    return {
        "nodes": nodes,
        "guests": guests,
        "rows": rows,
        "body_bytes": size,
        "build_s": build_s,
        "start_s": start_s,
        "resources_first_s": first_s,
        "resources_median_s": statistics.median(warm),
        "resources_p95_s": warm[min(len(warm) - 1, int(len(warm) * 0.95))],
        "resources_vm_median_s": statistics.median(vm_only),
        "qemu_list_median_s": statistics.median(node_list),
        "node_rrd_week_median_s": statistics.median(rrd),
        "stop_s": stop_s,
    }


class _RawClient:
    """A keep-alive HTTP(S) client that costs the server nothing beyond the request itself:
    one fixed head per GET, the answer read by Content-Length."""

    def __init__(self, info: Any, https: bool) -> None:
        import socket
        import ssl

        host, _, port = info.host.rpartition(":")
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if https:
            ctx = ssl.create_default_context(cafile=info.ca_file)
            ctx.check_hostname = False
            sock = ctx.wrap_socket(sock)
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.head = (
            f"Host: {info.host}\r\nUser-Agent: pvekit-bench\r\nAccept-Encoding: identity\r\n"
            f"Accept: application/json\r\nConnection: keep-alive\r\n"
            f"Authorization: PVEAPIToken={info.token_name}={info.token_value}\r\n\r\n"
        )

    def get(self, path: str) -> int:
        self.sock.sendall(f"GET /api2/json{path} HTTP/1.1\r\n{self.head}".encode())
        status = int(self.rfile.readline().split()[1])
        length = 0
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        self.rfile.read(length)
        return status

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


def cpu_per_request(
    https: bool, n: int, guests: int, latency: float, connections: int
) -> dict[str, Any]:
    """Simulator CPU (its child process, every thread, user + system) per GET, by kind."""
    import os
    import threading

    from _harness import ClusterSpec, SimServer

    spec = ClusterSpec("cpu", "large", {"nodes": 4, "guests": guests, "https": https})
    out: dict[str, Any] = {"https": https, "latency": latency, "connections": connections}
    with SimServer([spec]) as srv:
        info = srv.clusters[0]
        rows = srv.guests()
        agents = [r for r in rows if r[2] == "qemu"]
        kinds = {
            "config": lambda i: "/nodes/{1}/{2}/{3}/config".format(*rows[i % len(rows)]),
            "status/current": lambda i: "/nodes/{1}/{2}/{3}/status/current".format(
                *rows[i % len(rows)]
            ),
            "agent": lambda i: "/nodes/{1}/qemu/{3}/agent/network-get-interfaces".format(
                *agents[i % len(agents)]
            ),
            "/cluster/resources": lambda i: "/cluster/resources",
        }
        clients = [_RawClient(info, https) for _ in range(connections)]
        for cl in clients:
            for i in range(20):  # warm: routes, checks, the resources body
                cl.get(kinds["config"](i))
        srv.set_latency(latency)
        for kind, path in kinds.items():
            count = n if kind != "/cluster/resources" else max(20, n // 10)
            per = max(1, count // connections)

            def run(cl: _RawClient, j: int, path: Any = path, per: int = per) -> None:
                for i in range(per):
                    cl.get(path(j * per + i))

            srv.clear_requests()
            c0 = srv.server_cpu()
            threads = [threading.Thread(target=run, args=(cl, j)) for j, cl in enumerate(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            c1 = srv.server_cpu()
            total = srv.request_total()
            out[kind] = (c1 - c0) / total
        for cl in clients:
            cl.close()
    out["load"] = os.getloadavg()[0]
    return out


def main_cpu(args: argparse.Namespace) -> int:
    print(
        f"pvekit simulator: server CPU per GET ({args.n} requests per kind, "
        f"{args.connections} keep-alive connection(s), latency {args.latency * 1e3:.0f} ms)"
    )
    kinds = ["config", "status/current", "agent", "/cluster/resources"]
    print("scheme  " + "  ".join(f"{k:>18}" for k in kinds) + "  load")
    results = []
    for https in (False, True):
        r = cpu_per_request(https, args.n, args.guests, args.latency, args.connections)
        results.append(r)
        cells = "  ".join(f"{r[k] * 1e3:>15.3f} ms" for k in kinds)
        print(f"{'https' if https else 'http':<6}  {cells}  {r['load']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="3x100,20x1000,20x5000",
        help="comma-separated NODESxGUESTS (default: 3x100,20x1000,20x5000)",
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="measure the simulator's CPU per GET instead (child process, HTTP and HTTPS)",
    )
    parser.add_argument("--n", type=int, default=3000, help="--cpu: requests per kind")
    parser.add_argument("--guests", type=int, default=200, help="--cpu: guests (4 nodes)")
    parser.add_argument("--latency", type=float, default=0.0, help="--cpu: injected seconds")
    parser.add_argument("--connections", type=int, default=1, help="--cpu: concurrent clients")
    args = parser.parse_args()
    if args.cpu:
        return main_cpu(args)
    results = []
    for spec in args.sizes.split(","):
        n, g = (int(x) for x in spec.lower().split("x"))
        results.append(bench(n, g, args.repeat))
    cols = [
        ("nodes", "nodes", "{:>5}"),
        ("guests", "guests", "{:>6}"),
        ("build_s", "build s", "{:>7.3f}"),
        ("start_s", "start s", "{:>7.3f}"),
        ("resources_first_s", "res 1st s", "{:>9.3f}"),
        ("resources_median_s", "res med s", "{:>9.4f}"),
        ("resources_p95_s", "res p95 s", "{:>9.4f}"),
        ("resources_vm_median_s", "vm med s", "{:>8.4f}"),
        ("qemu_list_median_s", "qemu list s", "{:>11.4f}"),
        ("node_rrd_week_median_s", "rrd week s", "{:>10.4f}"),
        ("body_bytes", "body KiB", "{:>8.0f}"),
    ]
    print("pvekit simulator, scenario 'large' (loopback HTTP, one client)")
    print("  ".join(head for _, head, _ in cols))
    for r in results:
        vals = []
        for key, head, fmt in cols:
            v = r[key] / 1024 if key == "body_bytes" else r[key]
            vals.append(fmt.format(v).rjust(len(head)))
        print("  ".join(vals))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
