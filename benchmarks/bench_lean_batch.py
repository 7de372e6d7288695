"""Client CPU per per-guest read on the lean pool: N sequential ``LeanPool.get`` against one
``LeanPool.get_many(in_flight=16)`` (pvekit/_lean.py), over HTTP and HTTPS (pinned
certificate), at 0 and 20 ms of injected latency.

The simulator runs in a child process, as in ``_harness.SimServer``, so the process CPU time
(``time.process_time``, every thread of the client process) is the client's alone. Each round
builds fresh pools; ``get`` and ``get_many (cold)`` start from one open connection (the batch
opens the other 15 inside the timing, TLS handshakes included), ``get_many (warm)`` from 16.

    PYTHONPATH=$PWD python3 benchmarks/bench_lean_batch.py [rounds] [N]
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import requests
from _harness import md_table

IN_FLIGHT = 16


def _serve(https: bool, conn: Connection) -> None:  # pragma: no cover - child process
    from pvekit.sim import Simulator

    sim = Simulator("large", https=https)
    sim.start()
    cluster = next(iter(sim.clusters.values()))
    kw = cluster.connect_kwargs("token")
    paths = [f"/nodes/{g.node}/{g.type}/{g.vmid}/config" for g in cluster.state.guests.values()]
    fingerprint = str(cluster.fingerprint) if https else None
    conn.send((cluster.url, cluster.host, kw["token_name"], kw["token_value"], fingerprint, paths))
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd != "latency":
                break
            cluster.faults.clear()
            if arg:
                cluster.faults.latency(float(arg))
            conn.send(None)
    finally:
        sim.stop()


def _items(origin: str, paths: list[str]) -> list[tuple[str, requests.PreparedRequest]]:
    out = []
    for path in paths:
        request = requests.PreparedRequest()
        request.method = "GET"
        target = "/api2/json" + path
        request.url = origin + target
        out.append((target, request))
    return out


def main() -> None:
    from pvekit._lean import LeanPool

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    rows: list[list[Any]] = []
    for https in (False, True):
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(https, child), daemon=True)
        proc.start()
        url, host, token_name, token_value, fingerprint, paths = parent.recv()
        headers = {
            "Host": host,
            "Accept-Encoding": "gzip, deflate",
            "Authorization": f"PVEAPIToken={token_name}={token_value}",
        }
        try:
            for latency in (0.0, 0.02):
                parent.send(("latency", latency))
                parent.recv()
                cpu: dict[str, list[float]] = {
                    "get": [],
                    "get_many (cold)": [],
                    "get_many (warm)": [],
                }
                opened: dict[str, int] = {}
                for _ in range(rounds):
                    for mode, per_read in cpu.items():
                        pool = LeanPool(
                            url, verify=True, fingerprint=fingerprint, timeout=120, max_bytes=2**24
                        )
                        items = _items(pool.origin, paths[:n])
                        pool.get(items[0][0], headers, items[0][1])
                        if mode == "get_many (warm)":
                            pool.get_many(items[: 2 * IN_FLIGHT], headers, in_flight=IN_FLIGHT)
                        before = pool.opened
                        c0 = time.process_time()
                        if mode == "get":
                            got: list[Any] = [pool.get(t, headers, r) for t, r in items]
                        else:
                            got = pool.get_many(items, headers, in_flight=IN_FLIGHT)
                        c1 = time.process_time()
                        assert all(getattr(g, "status_code", 0) == 200 for g in got), got[:3]
                        per_read.append((c1 - c0) / len(items))
                        opened[mode] = pool.opened - before
                        pool.close()
                load = os.getloadavg()[0]
                for mode, per_read in cpu.items():
                    rows.append(
                        [
                            "HTTPS (pinned)" if https else "HTTP",
                            f"{latency * 1000:.0f} ms",
                            mode,
                            f"{statistics.median(per_read) * 1e6:.0f} us",
                            f"{min(per_read) * 1e6:.0f}-{max(per_read) * 1e6:.0f} us",
                            opened[mode],
                            f"{load:.2f}",
                        ]
                    )
                    print(" | ".join(str(c) for c in rows[-1]), flush=True)
        finally:
            parent.send(("stop", None))
            proc.join(30)
    print()
    print(
        md_table(
            [
                "scheme",
                "latency",
                f"{n} reads by",
                f"client CPU per read (median of {rounds})",
                "range",
                "connections opened",
                "load average (1 min)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
