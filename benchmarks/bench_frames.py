#!/usr/bin/env python3
"""Benchmark the frame builders (``pvekit.frames``) on the simulator's ``large`` scenario.

The bodies a Cluster passes to each builder are recorded once (in-process simulator, 20
nodes, 5,000 guests with their configs: guests basic and with details, nodes, storage,
summary, tasks, backups, snapshots, node metrics and the metrics of 200 guests), then each
builder is timed on them alone: best of ``--repeat`` runs, wall and CPU milliseconds.

Run: ``python benchmarks/bench_frames.py [--nodes 20] [--guests 5000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pvekit
from pvekit import frames
from pvekit.sim import Simulator

BUILDERS = (
    "nodes_frame",
    "guests_frame",
    "storage_frame",
    "summary_frame",
    "tasks_frame",
    "backups_frame",
    "snapshots_frame",
    "metrics_frame",
)


def record(nodes: int, guests: int) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    saved = {n: getattr(frames, n) for n in BUILDERS}

    def recorder(name: str) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, args, kwargs))
            return saved[name](*args, **kwargs)

        return run

    for n in BUILDERS:
        setattr(frames, n, recorder(n))
    try:
        sim = Simulator("large", nodes=nodes, guests=guests, inprocess=True)
        c = pvekit.connect(**sim["large"].connect_kwargs("root", inprocess=True), cache=False)
        try:
            c.nodes()
            c.guests()
            c.guests(details=True)
            c.storage()
            c.summary()
            c.tasks(limit=5000)
            c.backups()
            c.snapshots()
            c.metrics("node")
            c.metrics("guest", list(c.guests()["vmid"][:200]))
        finally:
            c.close()
    finally:
        for n, fn in saved.items():
            setattr(frames, n, fn)
    return calls


def label(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if name == "guests_frame":
        return "guests (details)" if kwargs.get("details") else "guests"
    if name == "metrics_frame":
        return f"metrics ({args[1]})"
    return name.removesuffix("_frame")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--guests", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    print(f"recording builder inputs ({args.nodes} nodes, {args.guests} guests) ...", flush=True)
    results: dict[str, dict[str, float]] = {}
    for name, a, k in record(args.nodes, args.guests):
        key = label(name, a, k)
        if key in results:
            continue
        fn = getattr(frames, name)
        wall = cpu = float("inf")
        rows = 0
        for _ in range(args.repeat):
            w, c = time.perf_counter(), time.process_time()
            rows = len(fn(*a, **k))
            wall = min(wall, time.perf_counter() - w)
            cpu = min(cpu, time.process_time() - c)
        results[key] = {"rows": rows, "wall_ms": wall * 1000, "cpu_ms": cpu * 1000}
    print(f"{'frame':18s} {'rows':>8s} {'wall ms':>9s} {'cpu ms':>9s}")
    for key, r in results.items():
        print(f"{key:18s} {r['rows']:8d} {r['wall_ms']:9.1f} {r['cpu_ms']:9.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
