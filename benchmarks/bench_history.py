#!/usr/bin/env python3
"""Benchmark the history store (``pvekit.history``) and ``capacity.growth``.

1. One snapshot of the simulator's ``large`` scenario (20 nodes, 5,000 guests, details):
   time to read it over HTTP (plus the capacity analysis), time to write it, bytes on disk.
2. A year of daily snapshots of 10,000 guests (3.65 M guest rows), generated from that real
   snapshot (guests doubled to 10,000, then a few created, resized and removed each day, usage
   values moved) and written through :class:`~pvekit.history.Store`: store size, time to read
   it all, time to read the growth columns, time of ``capacity.growth`` and
   ``growth_trend``, and how read and growth times grow with days (90, 180, 365) and guests
   (2,500, 5,000, 10,000 over 90 days).

0. The demo history (``--demo-days``, default 180): ``pvekit.demo(history_days=N)`` in this
   process and ``pvekit collect --demo --days N`` as a command, wall and CPU time (this
   process and its worker processes), the real collector over HTTP against the simulator;
   then the CPU of a simulated day by layer (60 days in one process, each layer's functions
   wrapped with a thread-CPU clock, so the client's, the simulator's and the writer's
   threads count).

Run: ``python benchmarks/bench_history.py [--days 365] [--guests 10000] [--json out.json]``;
``--demo-only`` runs part 0 alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

import pvekit
from pvekit import capacity, history
from pvekit.history import Store
from pvekit.history._collect import read_snapshot
from pvekit.sim import Simulator


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def large_snapshot(root: Path) -> tuple[dict[str, Any], Any]:
    with Simulator("large", nodes=20, guests=5000) as sim:
        cluster = pvekit.connect(**sim["large"].connect_kwargs(identity="token"), cache="memory")
        try:
            read_s, snap = _timed(lambda: read_snapshot(cluster, details=True, analyse=False))
            analyse_s, _ = _timed(lambda: read_snapshot(cluster, details=True, analyse=True))
        finally:
            cluster.close()
    shutil.rmtree(root / "large", ignore_errors=True)  # one snapshot, not one per run
    store = Store(root / "large")
    write_s, _ = _timed(lambda: store.write(snap.frames, collected_at=snap.collected_at))
    back_s, back = _timed(lambda: store.read("guests"))
    assert len(back) == len(snap.frames["guests"])
    return {
        "guests": len(snap.frames["guests"]),
        "read_http_s": read_s,
        "read_http_and_analyse_s": analyse_s,
        "write_s": write_s,
        "bytes": _du(root / "large"),
        "guests_bytes": _du(root / "large" / "guests"),
        "read_back_s": back_s,
    }, snap


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def demo_history(days: int, root: Path) -> dict[str, Any]:
    """Wall and CPU seconds of the demo history, as a library call and as the command,
    with the machine's load average before and after (wall times mean little under load)."""
    out: dict[str, Any] = {"days": days, "load_before": _load()}
    wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    group = pvekit.demo(history_days=days)
    try:
        out["demo_wall_s"] = time.perf_counter() - wall
        out["demo_cpu_s"] = time.process_time() - cpu + _children_cpu() - children
        out["demo_build"] = dict(group.history_build)
        out["demo_cpu_ms_per_day"] = round(1000 * out["demo_cpu_s"] / days, 1)
        out["snapshots"] = len(group.history.snapshots())
    finally:
        group.close()
    location = root / "demo-cli"
    shutil.rmtree(location, ignore_errors=True)
    cmd = [sys.executable, "-m", "pvekit.cli", "collect", "--demo", "--days", str(days)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    wall, children = time.perf_counter(), _children_cpu()
    subprocess.run([*cmd, "--store", str(location)], check=True, env=env, capture_output=True)
    out["cli_wall_s"] = time.perf_counter() - wall
    out["cli_cpu_s"] = _children_cpu() - children
    out["cli_snapshots"] = len(Store(location).snapshots())
    out["load_after"] = _load()
    return out


# Layers of a demo day, each a function wrapped with a thread-CPU clock (time.thread_time):
# the client's fan-out, the simulator's server and the store's writer run in threads that
# cProfile (main thread only) does not see. (module, attribute, layer); self time only, so
# a layer's figure is its own work, not what it calls of the others.
_LAYERS: tuple[tuple[str, str, str], ...] = (
    ("pvekit._api:ApiClient", "_send", "client: an HTTP request (requests, urllib3, JSON)"),
    # The reads of get_many go out in one batch here, not through _send.
    ("pvekit._api:ApiClient", "_batch", "client: an HTTP request (requests, urllib3, JSON)"),
    ("pvekit._api:ApiClient", "get", "client: ApiClient.get (cache hits, bookkeeping)"),
    ("pvekit._api:ApiClient", "keep_frame", "client: frame memo"),
    ("pvekit._cluster:Cluster", "_enrich", "client: Cluster methods (own work)"),
    ("pvekit._cluster:Cluster", "nodes", "client: Cluster methods (own work)"),
    ("pvekit._cluster:Cluster", "guests", "client: Cluster methods (own work)"),
    ("pvekit._cluster:Cluster", "storage", "client: Cluster methods (own work)"),
    ("pvekit._cluster:Cluster", "summary", "client: Cluster methods (own work)"),
    ("pvekit._fanout:_Workers", "_loop", "client: fan-out threads"),
    ("pvekit.frames", "nodes_frame", "frames: builders"),
    ("pvekit.frames", "guests_frame", "frames: builders"),
    ("pvekit.frames", "storage_frame", "frames: builders"),
    ("pvekit.frames", "summary_frame", "frames: builders"),
    ("pvekit.frames", "guest_details", "frames: guest_details (config parsing)"),
    ("pvekit.sim._server:_Handler", "handle_one_request", "simulator: HTTP server"),
    ("pvekit.sim._server", "serve", "simulator: dispatch and handlers"),
    ("pvekit.history._collect", "read_snapshot", "collector: read_snapshot, Group.map, status"),
    ("pvekit._group:Group", "map", "collector: read_snapshot, Group.map, status"),
    ("pvekit._group:Group", "status", "collector: read_snapshot, Group.map, status"),
    ("pvekit.history._collect", "_concat", "collector: concatenation"),
    ("pvekit.capacity", "node_usage", "capacity analysis (every 30 days)"),
    ("pvekit.capacity", "storage_pools", "capacity analysis (every 30 days)"),
    ("pvekit.capacity", "headroom", "capacity analysis (every 30 days)"),
    ("pvekit.capacity", "findings", "capacity analysis (every 30 days)"),
    ("pvekit.history._store:Store", "write", "store: stamping, slices, markers"),
    ("pvekit.history._store:Store", "write_many", "store: stamping, slices, markers"),
    ("pvekit.history._schema", "to_arrow", "store: Arrow conversion"),
    ("pvekit.history._store", "_parquet_bytes", "store: Parquet encoding"),
    ("pvekit.history._store:Store", "_put", "store: files"),
    ("pvekit.sim._growth:GrowthModel", "step", "growth model, cache invalidation"),
    ("pvekit.history._demo", "_invalidate_day", "growth model, cache invalidation"),
)


def demo_layers(days: int) -> dict[str, Any]:
    """CPU ms per simulated day by layer, ``days`` of demo history in one process."""
    import collections
    import functools
    import importlib
    import threading

    own: collections.Counter[str] = collections.Counter()
    local = threading.local()
    undo = []

    def wrap(owner: Any, attr: str, layer: str) -> None:
        fn = getattr(owner, attr, None)
        if fn is None:  # not in this version of pvekit
            return
        inherited = isinstance(owner, type) and attr not in owner.__dict__

        @functools.wraps(fn)
        def timed(*a: Any, **k: Any) -> Any:
            stack = local.__dict__.setdefault("stack", [])
            start = time.thread_time()
            stack.append(0.0)
            try:
                return fn(*a, **k)
            finally:
                spent = time.thread_time() - start
                own[layer] += spent - stack.pop()
                if stack:
                    stack[-1] += spent

        setattr(owner, attr, timed)
        undo.append((owner, attr, None if inherited else fn))

    for where, attr, layer in _LAYERS:
        module, _, cls = where.partition(":")
        owner = importlib.import_module(module)
        wrap(getattr(owner, cls) if cls else owner, attr, layer)
    from pvekit.history._demo import build_demo_history, past_clock

    try:
        group = pvekit.demo(clock=past_clock(days))
        try:
            store = Store(tempfile.mkdtemp(prefix="pvekit-bench-layers-"))
            cpu = time.process_time()
            build_demo_history(group, store, days, workers=1)
            cpu = time.process_time() - cpu
        finally:
            group.close()
    finally:
        for owner, attr, fn in reversed(undo):
            if fn is None:
                delattr(owner, attr)  # the inherited one shows through again
            else:
                setattr(owner, attr, fn)
    per_day = {k: round(1000 * v / days, 2) for k, v in own.most_common()}
    per_day["other (threads' own work, GIL hand-offs...)"] = round(
        1000 * (cpu - sum(own.values())) / days, 2
    )
    return {"days": days, "cpu_ms_per_day": round(1000 * cpu / days, 1), "layers": per_day}


def _grow(base: pd.DataFrame, guests: int) -> pd.DataFrame:
    """``guests`` rows from the real snapshot (copies get new VMIDs)."""
    reps = -(-guests // len(base))
    parts = []
    for i in range(reps):
        part = base.copy()
        part["vmid"] = part["vmid"] + i * 100_000
        parts.append(part)
    return pd.concat(parts, ignore_index=True).head(guests)


def synthetic_year(
    snap: Any, root: Path, name: str, days: int, guests: int, seed: int = 0
) -> dict[str, Any]:
    """``days`` daily snapshots of ~``guests`` guests written through the Store."""
    store = Store(root / name)
    done = len(store.snapshots())
    rng = np.random.default_rng(seed + done)
    nodes, storage, summary = (snap.frames[k] for k in ("nodes", "storage", "summary"))
    start = pd.Timestamp("2026-01-01", tz="UTC")
    if done:  # --keep: go on from the last stored day (its guests frame, read back)
        g = store.at(start + pd.Timedelta(days=done))["guests"].drop(columns="collected_at")
    else:
        g = _grow(snap.frames["guests"], guests)
    next_vmid = int(g["vmid"].max()) + 1
    write_s = 0.0
    for day in range(done, days):
        # churn: ~0.2 % created, ~0.1 % removed, ~0.1 % resized per day
        born = g.sample(max(1, guests // 500), random_state=int(rng.integers(1 << 31)))
        born = born.assign(vmid=range(next_vmid, next_vmid + len(born)))
        next_vmid += len(born)
        gone = rng.choice(len(g), size=max(1, guests // 1000), replace=False)
        g = pd.concat([g.drop(index=g.index[gone]), born], ignore_index=True)
        idx = rng.choice(len(g), size=max(1, guests // 1000), replace=False)
        g.loc[idx, "mem_total"] = g.loc[idx, "mem_total"] * 2
        g["cpu"] = rng.random(len(g))
        st = storage.assign(used=(storage["used"] * (1 + day / 1000)).astype("Int64"))
        frames = {"nodes": nodes, "guests": g, "storage": st, "summary": summary}
        t, _ = _timed(
            lambda frames=frames, day=day: store.write(
                frames, collected_at=start + pd.Timedelta(days=day)
            )
        )
        write_s += t
    return {"store": store, "write_s": write_s, "bytes": _du(root / name), "days": days}


def read_and_growth(
    store: Store, since: Any = None, *, full: bool, months: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if full:
        # Every column of every row, a month at a time: 3.65 M rows of Python dicts (disks,
        # networks) at once would need ~8 GB on a shared machine.
        times = store.snapshots()["collected_at"]
        edges = pd.date_range(
            times.min().floor("D"), times.max() + pd.Timedelta(days=31), freq="MS"
        )
        edges = [times.min(), *[e for e in edges if e > times.min()]]
        if months is not None:
            edges = edges[: months + 1]
        total, rows = 0.0, 0
        for lo, hi in itertools.pairwise(edges):
            t, part = _timed(
                lambda lo=lo, hi=hi: store.read(
                    "guests", since=lo, until=hi - pd.Timedelta(seconds=1)
                )
            )
            total += t
            rows += len(part)
            del part
        out["read_all_columns_s"] = total
        out["read_all_rows"] = rows
        out["read_no_dicts_s"], nod = _timed(
            lambda: store.read(
                "guests",
                columns=[
                    c for c in history.column_dtypes("guests") if c not in ("disks", "networks")
                ],
            )
        )
        del nod
    cols = list(capacity.GROWTH_COLUMNS)
    out["read_growth_cols_tags_s"], _ = _timed(
        lambda: store.read("guests", since=since, columns=[*cols, "tags"])
    )
    out["read_growth_cols_s"], g = _timed(lambda: store.read("guests", since=since, columns=cols))
    out["rows"] = len(g)
    summ = store.read("summary", since=since, columns=["profile", "storage_used", "collected_at"])
    out["growth_s"], _ = _timed(
        lambda: capacity.growth({"guests": g, "summary": summ}, period="month")
    )
    out["growth_pool_s"], _ = _timed(lambda: capacity.growth(g, by=("profile", "pool")))
    out["growth_trend_s"], _ = _timed(lambda: capacity.growth_trend(g))
    out["read_plus_growth_s"] = out["read_growth_cols_s"] + out["growth_s"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--guests", type=int, default=10_000)
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--keep", help="keep the stores in this folder (and go on from them)")
    ap.add_argument(
        "--full-months", type=int, help="time the all-columns read on this many months only"
    )
    ap.add_argument("--demo-days", type=int, default=180, help="days of demo history (0: skip)")
    ap.add_argument("--demo-only", action="store_true", help="only the demo history (part 0)")
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="pvekit-bench-history-"))
    # large: a snapshot of the simulator each run; the synthetic stores go on where they are
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load": os.getloadavg()}
    if args.demo_days:
        print(f"0. demo history, {args.demo_days} days ...", flush=True)
        results["demo_history"] = demo_history(args.demo_days, root)
        print(json.dumps(results["demo_history"], indent=1), flush=True)
        print("0b. CPU of a demo day by layer (60 days, one process) ...", flush=True)
        results["demo_layers"] = demo_layers(60)
        print(json.dumps(results["demo_layers"], indent=1), flush=True)
    if args.demo_only:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        return 0
    print("1. large scenario snapshot (20 nodes, 5,000 guests, details) ...", flush=True)
    results["large"], snap = large_snapshot(root)
    print(json.dumps(results["large"], indent=1), flush=True)

    print(f"2. {args.days} daily snapshots of {args.guests} guests ...", flush=True)
    year = synthetic_year(snap, root, "year", args.days, args.guests)
    store = year.pop("store")
    results["year"] = {**year, **read_and_growth(store, full=True, months=args.full_months)}
    print(json.dumps(results["year"], indent=1), flush=True)

    print("3. scaling with days (same store, since=) ...", flush=True)
    last = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=args.days - 1)
    results["by_days"] = {}
    for d in (90, 180, args.days):
        since = last - pd.Timedelta(days=d - 1)
        results["by_days"][d] = read_and_growth(store, since, full=False)
        print(d, "days:", json.dumps(results["by_days"][d]), flush=True)

    print("4. scaling with guests (90 days) ...", flush=True)
    results["by_guests"] = {}
    for n in (2_500, 5_000, args.guests):
        s = synthetic_year(snap, root, f"g{n}", 90, n)
        st = s.pop("store")
        results["by_guests"][n] = {**s, **read_and_growth(st, full=False)}
        print(n, "guests:", json.dumps(results["by_guests"][n]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
