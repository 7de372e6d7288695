#!/usr/bin/env python3
"""Benchmark the simulator's ``large`` scenario: start-up time and request latency.

Measures, for each inventory size: building the scenario, starting the servers, the first
``GET /cluster/resources`` (cold: serialising every row) and the warm median/p95 over repeated
calls, plus a few other reads a client makes. Prints a table; ``--json`` also writes the
numbers. Run: ``python benchmarks/bench_sim.py [--sizes 20x5000,5x500] [--repeat 20]``.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="3x100,20x1000,20x5000",
        help="comma-separated NODESxGUESTS (default: 3x100,20x1000,20x5000)",
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
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
