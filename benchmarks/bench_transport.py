#!/usr/bin/env python3
"""Benchmark the simulator's two fronts: loopback HTTP(S) vs the in-process transport.

The same demo cluster answers the same small reads (``/version``, ``/nodes/pve1/status``,
one guest's ``status/current``) through ``requests``, once over a keep-alive loopback
connection (HTTP, and HTTPS) and once through :class:`pvekit.sim.SimTransport` (no socket).
Prints the median and p95 per request for each. Run:
``python benchmarks/bench_transport.py [--repeat 300] [--json out.json]``.
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

from pvekit.sim import SimCluster, Simulator


def _reads(c: SimCluster) -> list[str]:
    g = next(g for g in c.state.guests.values() if g.running)
    return ["/version", "/nodes/pve1/status", f"/nodes/{g.node}/{g.type}/{g.vmid}/status/current"]


def _measure(
    s: requests.Session, base: str, paths: list[str], repeat: int, **kw: Any
) -> list[float]:
    out = []
    for i in range(repeat):
        path = paths[i % len(paths)]
        t = time.perf_counter()
        r = s.get(base + "/api2/json" + path, **kw)
        out.append(time.perf_counter() - t)
        assert r.status_code == 200, (path, r.status_code)
    return out


def _stats(name: str, samples: list[float]) -> dict[str, Any]:
    samples = sorted(samples)
    return {
        "front": name,
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1] * 1000, 3),
        "requests": len(samples),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for https in (False, True):
        with Simulator("demo", https=https) as sim:
            c = sim["prod"]
            auth = {"Authorization": f"PVEAPIToken=root@pam!pvekit={c.auth.token_secret}"}
            paths = _reads(c)
            s = requests.Session()
            s.headers.update(auth)
            verify: Any = c.ca_file if https else True
            _measure(s, c.url, paths, 10, verify=verify)  # connect, warm up
            rows.append(
                _stats(
                    "https" if https else "http",
                    _measure(s, c.url, paths, args.repeat, verify=verify),
                )
            )
            if not https:
                inproc = c.session()
                inproc.headers.update(auth)
                _measure(inproc, c.inprocess_url, paths, 10)
                rows.append(
                    _stats("in-process", _measure(inproc, c.inprocess_url, paths, args.repeat))
                )
    print(f"{'front':<12}{'median ms':>12}{'p95 ms':>10}")
    for r in rows:
        print(f"{r['front']:<12}{r['median_ms']:>12}{r['p95_ms']:>10}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
