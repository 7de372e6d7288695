#!/usr/bin/env python3
"""Run every pvekit benchmark against the simulator and write ``BENCHMARKS.md``.

    python benchmarks/run.py            # full run (~10 minutes on a 2-core machine)
    python benchmarks/run.py --quick    # smoke run (a few minutes), smaller sizes and repeats
    python benchmarks/run.py --only speed [--quick]   # one section, printed (issue 18's)

pvekit and proxmoxer (used as its documentation shows) read the same simulated clusters,
served over HTTPS by a child process with injected latency (0, 5, 20, 50 ms per request).
Figures are medians over repeats with their spread (min-max); ratios are pvekit/proxmoxer
(below 1: pvekit is faster). Client CPU time and peak memory are the benchmark process's own
(the simulator runs in another process). No timing is asserted anywhere: the request counts
are asserted by ``tests/test_request_counts.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    ROOT,
    ClusterSpec,
    SimServer,
    Stats,
    fmt_mib,
    fmt_ratio,
    fmt_s,
    fmt_stats,
    md_table,
    ratio,
)
from bench_group import group_vs_sequential
from bench_inventory import (
    Case,
    guest_metrics,
    guests_basic,
    guests_detailed,
    nodes_frame,
    storage_frame,
)
from bench_speed import SpeedResult, run_speed
from bench_speed import report as speed_report
from bench_warm import warm_section

FULL: dict[str, Any] = {
    "sizes": [(100, 3), (1000, 10), (10000, 20)],
    "latencies": [0.0, 0.005, 0.02, 0.05],
    "basic_repeats": 3,
    # guests -> {latency: (pvekit repeats, proxmoxer repeats)}; the big sequential loops
    # are what makes the run long, so they get fewer repeats.
    "detailed": {
        100: {0.0: (3, 3), 0.005: (3, 3), 0.02: (3, 3), 0.05: (3, 2)},
        1000: {0.0: (2, 1), 0.005: (2, 1), 0.02: (3, 3), 0.05: (2, 1)},
        10000: {0.0: (1, 1)},
    },
    "memory_basic": (100, 1000, 10000),
    "memory_detailed": (100, 1000),
    "frames_size": 10000,
    "frames_repeats": 3,
    "metrics_size": 1000,
    "metrics_repeats": 3,
    "group": {"clusters": 5, "nodes": 4, "guests": 200, "latency": 0.02, "repeats": 2},
    "target_latency": 0.02,
    "target_guests": 1000,
    "wide_workers": 32,
    "warm": (20, 5000, 20),
    "speed": {
        "size": (300, 3),
        "layer_requests": 1000,
        "cpu_latencies": [0.0, 0.02],
        "cpu_repeats": 2,
        "latencies": [0.0, 0.005, 0.02, 0.05],
        "detailed_repeats": 2,
        "group": (5, 200, 0.02),
        "group_repeats": 2,
        "estate": [50, 100, 200],
        "estate_guests": 200,
        "estate_latency": 0.02,
    },
}

QUICK: dict[str, Any] = {
    "sizes": [(100, 3), (10000, 20)],
    "latencies": [0.0, 0.02],
    "basic_repeats": 2,
    "detailed": {100: {0.0: (1, 1), 0.02: (1, 1)}},
    "memory_basic": (100,),
    "memory_detailed": (100,),
    "frames_size": 100,
    "frames_repeats": 1,
    "metrics_size": 100,
    "metrics_repeats": 1,
    "group": {"clusters": 5, "nodes": 1, "guests": 10, "latency": 0.02, "repeats": 1},
    "target_latency": 0.02,
    "target_guests": 100,
    "wide_workers": 32,
    "warm": (20, 5000, 5),
    "speed": {
        "size": (300, 3),
        "layer_requests": 300,
        "cpu_latencies": [0.02],
        "cpu_repeats": 1,
        "latencies": [0.0, 0.02],
        "detailed_repeats": 1,
        "group": (5, 200, 0.02),
        "group_repeats": 1,
        "estate": [50],
        "estate_guests": 200,
        "estate_latency": 0.02,
    },
}


def _ms(latency: float) -> str:
    return f"{latency * 1000:.0f} ms"


def _default_workers() -> int:
    from pvekit import Cluster

    return Cluster.max_workers


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _cases_table(cases: Sequence[Case]) -> str:
    rows = []
    for c in cases:
        px = c.proxmoxer
        rows.append(
            [
                c.guests,
                _ms(c.latency),
                fmt_stats(c.pvekit),
                c.pvekit.requests,
                fmt_s(c.pvekit.median("cpu")),
                fmt_stats(c.warm) if c.warm else "-",
                c.warm.requests if c.warm else "-",
                fmt_stats(px) if px and px.n else "-",
                px.requests if px and px.n else "-",
                fmt_s(px.median("cpu")) if px and px.n else "-",
                fmt_ratio(c.pvekit, px) if px and px.n else "-",
            ]
        )
    return md_table(
        [
            "guests",
            "latency",
            "pvekit cold: wall (min-max)",
            "req",
            "CPU",
            "pvekit warm: wall",
            "req",
            "proxmoxer: wall (min-max)",
            "req",
            "CPU",
            "time ratio pvekit/proxmoxer (range)",
        ],
        rows,
    )


def _growth_table(cases: Sequence[Case], latencies: Sequence[float]) -> str:
    """Rows: guests; columns: latency; cells: pvekit | proxmoxer median wall."""
    sizes = sorted({c.guests for c in cases})
    rows = []
    for g in sizes:
        row: list[Any] = [g]
        for lat in latencies:
            match = [c for c in cases if c.guests == g and c.latency == lat]
            if not match:
                row.append("-")
                continue
            c = match[0]
            px = c.proxmoxer
            prox_txt = fmt_s(px.median()) if px and px.n else "-"
            row.append(f"{fmt_s(c.pvekit.median())} / {prox_txt}")
        rows.append(row)
    return md_table(["guests"] + [f"{_ms(x)}: pvekit / proxmoxer" for x in latencies], rows)


def _memory_table(cases: Sequence[Case]) -> str:
    rows = []
    for c in cases:
        if c.pvekit.peak_bytes is None:
            continue
        px = c.proxmoxer
        rows.append(
            [
                c.name,
                c.guests,
                fmt_mib(c.pvekit.peak_bytes),
                fmt_mib(px.peak_bytes if px else None),
            ]
        )
    return md_table(["table", "guests", "pvekit peak", "proxmoxer peak"], rows)


def run(plan: dict[str, Any], quick: bool) -> str:
    started = time.perf_counter()
    lat_list: list[float] = plan["latencies"]
    specs = [ClusterSpec(f"g{g}", "large", {"nodes": n, "guests": g}) for g, n in plan["sizes"]]
    basic: list[Case] = []
    detailed: list[Case] = []
    frames_cases: list[Case] = []
    metric_cases: list[Case] = []
    sqlite_case: Case | None = None
    _log(f"starting simulators: {', '.join(s.profile for s in specs)}")
    with SimServer(specs) as server:
        infos = {i.guests: i for i in server.clusters}
        # Warm the simulator's own serialisation caches so the first contender measured does
        # not pay for the server's start-up work.
        for info in infos.values():
            from bench_inventory import pvekit_client

            c = pvekit_client(info)
            c.guests(progress=False)
            c.close()
        for g, _ in plan["sizes"]:
            info = infos[g]
            for lat in lat_list:
                _log(f"basic guests {g} @ {_ms(lat)}")
                memory = lat == 0.0 and g in plan["memory_basic"]
                basic.append(guests_basic(server, info, lat, plan["basic_repeats"], memory=memory))
        for g, per_lat in plan["detailed"].items():
            info = infos[g]
            for lat, (pv_rep, px_rep) in per_lat.items():
                _log(f"detailed guests {g} @ {_ms(lat)} ({pv_rep}/{px_rep} repeats)")
                target = g == plan["target_guests"] and lat == plan["target_latency"]
                case = guests_detailed(
                    server,
                    info,
                    lat,
                    pv_rep,
                    memory=lat == 0.0 and g in plan["memory_detailed"],
                    sqlite=target,
                    prox_repeats=px_rep,
                )
                if px_rep == 0:
                    case.proxmoxer = None
                detailed.append(case)
                if target:
                    sqlite_case = case
                    w = plan["wide_workers"]
                    _log(f"detailed guests {g} @ {_ms(lat)} with max_workers={w}")
                    wide = guests_detailed(server, info, lat, pv_rep, prox_repeats=0, workers=w)
                    case.extra["wide"] = wide.pvekit
                    case.extra["wide_warm"] = wide.warm
                    case.extra["workers"] = w
        finfo = infos[plan["frames_size"]]
        for lat in lat_list:
            _log(f"nodes and storage frames ({finfo.nodes} nodes) @ {_ms(lat)}")
            frames_cases.append(nodes_frame(server, finfo, lat, plan["frames_repeats"]))
            frames_cases.append(storage_frame(server, finfo, lat, plan["frames_repeats"]))
        minfo = infos[plan["metrics_size"]]
        for lat in lat_list:
            _log(f"metrics of 50 guests @ {_ms(lat)}")
            metric_cases.append(guest_metrics(server, minfo, lat, plan["metrics_repeats"]))
    gp = plan["group"]
    _log(f"group of {gp['clusters']} clusters")
    gspecs = [
        ClusterSpec(
            f"c{i + 1}", "large", {"nodes": gp["nodes"], "guests": gp["guests"], "seed": i + 1}
        )
        for i in range(gp["clusters"])
    ]
    with SimServer(gspecs) as gserver:
        group_basic = group_vs_sequential(gserver, gp["latency"], gp["repeats"], details=False)
        group_detailed = group_vs_sequential(gserver, gp["latency"], gp["repeats"], details=True)
    _log("warm frames")
    warm = warm_section(*plan["warm"])
    speed = run_speed(plan["speed"], _log)
    elapsed = time.perf_counter() - started
    _log(f"done in {elapsed:.0f} s")
    report = _report(
        plan,
        quick,
        elapsed,
        basic,
        detailed,
        frames_cases,
        metric_cases,
        sqlite_case,
        group_basic,
        group_detailed,
        speed,
    )
    return report + "\n" + warm


def _targets(
    plan: dict[str, Any], basic: list[Case], detailed: list[Case], sqlite_case: Case | None
) -> list[list[Any]]:
    rows: list[list[Any]] = []
    tg, tl = plan["target_guests"], plan["target_latency"]
    det = [c for c in detailed if c.guests == tg and c.latency == tl]
    if det and det[0].proxmoxer is not None and det[0].proxmoxer.n:
        c = det[0]
        assert c.proxmoxer is not None
        speed = 1 / ratio(c.pvekit, c.proxmoxer)
        rows.append(
            [
                f"detailed table, {tg} guests @ {_ms(tl)}: >= 10x faster than the loop",
                f"{speed:.1f}x ({fmt_s(c.pvekit.median())} vs {fmt_s(c.proxmoxer.median())})",
                "met" if speed >= 10 else "MISSED",
            ]
        )
    for c in det:
        wide = c.extra.get("wide")
        if wide is not None and c.proxmoxer is not None and c.proxmoxer.n:
            speed = 1 / ratio(wide, c.proxmoxer)
            rows.append(
                [
                    f"same with `cluster.max_workers = {c.extra['workers']}` "
                    f"(default {_default_workers()})",
                    f"{speed:.1f}x ({fmt_s(wide.median())}, {wide.requests} requests)",
                    "for comparison",
                ]
            )
        if c.warm is not None:
            speed = c.pvekit.median() / c.warm.median()
            rows.append(
                [
                    f"detailed table, {tg} guests @ {_ms(tl)}: warm repeat >= 50x faster "
                    "than cold (memory cache)",
                    f"{speed:.0f}x ({fmt_s(c.warm.median())} vs {fmt_s(c.pvekit.median())}; "
                    f"{c.warm.requests} requests)",
                    "met" if speed >= 50 else "MISSED",
                ]
            )
    if sqlite_case is not None and sqlite_case.warm_sqlite and sqlite_case.cold_sqlite:
        ws, cs = sqlite_case.warm_sqlite, sqlite_case.cold_sqlite
        speed = cs.median() / ws.median()
        rows.append(
            [
                "same, SQLite cache file (`cache=True`)",
                f"{speed:.0f}x ({fmt_s(ws.median())} vs {fmt_s(cs.median())}; "
                f"{ws.requests} requests)",
                "met" if speed >= 50 else "MISSED",
            ]
        )
    for c in basic:
        if c.guests == max(x.guests for x in basic) and c.latency == tl and c.warm is not None:
            speed = c.pvekit.median() / c.warm.median()
            rows.append(
                [
                    f"basic table, {c.guests} guests @ {_ms(tl)}: warm repeat >= 50x faster",
                    f"{speed:.0f}x ({fmt_s(c.warm.median())} vs {fmt_s(c.pvekit.median())})",
                    "met" if speed >= 50 else "MISSED",
                ]
            )
    big = [c for c in basic if c.guests == max(x.guests for x in basic)]
    if big:
        reqs = max(c.pvekit.requests for c in big)
        cpu = max(c.pvekit.median("cpu") for c in big)
        rows.append(
            [
                f"basic table, {big[0].guests} guests: 1 request per cluster",
                f"{reqs} request(s) at every latency",
                "met" if reqs == 1 else "MISSED",
            ]
        )
        rows.append(
            [
                f"basic table, {big[0].guests} guests: < 1 s of client CPU",
                f"{fmt_s(cpu)} (worst median over latencies)",
                "met" if cpu < 1 else "MISSED",
            ]
        )
    return rows


def _report(
    plan: dict[str, Any],
    quick: bool,
    elapsed: float,
    basic: list[Case],
    detailed: list[Case],
    frames_cases: list[Case],
    metric_cases: list[Case],
    sqlite_case: Case | None,
    group_basic: dict[str, Stats],
    group_detailed: dict[str, Stats],
    speed: SpeedResult | None = None,
) -> str:
    from importlib.metadata import version

    lat_list = plan["latencies"]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out: list[str] = []
    out.append("# pvekit benchmarks\n")
    out.append(
        f"Generated by `python benchmarks/run.py{' --quick' if quick else ''}` on {now} "
        f"in {elapsed:.0f} s: Python {platform.python_version()}, pvekit "
        f"{version('pvekit')}, proxmoxer {version('proxmoxer')}, "
        f"pandas {version('pandas')}, requests-cache {version('requests-cache')}, "
        f"{os.cpu_count()} CPUs ({platform.machine()}), load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}.\n"
    )
    if quick:
        out.append(
            "> **Quick smoke run**: fewer sizes, latencies and repeats than the full run; "
            "figures with n=1 have no spread.\n"
        )
    out.append(
        "Both clients read the same simulated clusters (`pvekit.sim`, scenario `large`, "
        "HTTPS with a pinned self-signed certificate, API token), served by a child process "
        "that delays every request by the injected latency. Times are the median over the "
        "repeats, with min-max in brackets. *req* is the number of HTTP requests the server "
        "received for one table. *CPU* is the benchmark process's CPU time (the client only). "
        "A *cold* pvekit call starts with a new client and an empty cache; *warm* is the same "
        "call repeated on that client right after (within the TTLs). proxmoxer is used as its "
        "documentation shows: `prox.nodes.get()`, then `prox.nodes(node).qemu.get()` and "
        "`.lxc.get()` per node, then `.qemu(vmid).config.get()` per guest for the detailed "
        "table, collected into a `pandas.DataFrame`. pvekit reads configs with at most "
        f"{_default_workers()} requests in flight per cluster (`Cluster.max_workers`).\n"
    )
    out.append("## Targets (issue 4)\n")
    out.append(
        md_table(["target", "measured", "result"], _targets(plan, basic, detailed, sqlite_case))
    )
    out.append("")
    if speed is not None:
        out.append(speed_report(speed))
    out.append("## Guest inventory, basic table (`cluster.guests()`)\n")
    out.append(_cases_table(basic))
    out.append("")
    out.append("## Guest inventory, detailed table (`cluster.guests(details=True)`)\n")
    out.append(_cases_table(detailed))
    out.append("")
    if sqlite_case is not None and sqlite_case.cold_sqlite and sqlite_case.warm_sqlite:
        out.append(
            f"With the on-disk SQLite cache (`cache=True`, the default), "
            f"{sqlite_case.guests} guests @ {_ms(sqlite_case.latency)}: cold "
            f"{fmt_stats(sqlite_case.cold_sqlite)} ({sqlite_case.cold_sqlite.requests} req), "
            f"warm {fmt_stats(sqlite_case.warm_sqlite)} "
            f"({sqlite_case.warm_sqlite.requests} req).\n"
        )
    out.append("## How the figures grow with guests and latency (median wall time)\n")
    out.append("Basic table:\n")
    out.append(_growth_table(basic, lat_list))
    out.append("\nDetailed table:\n")
    out.append(_growth_table(detailed, lat_list))
    out.append("")
    out.append("## Node and storage frames\n")
    if frames_cases:
        fc = frames_cases[0]
        out.append(
            f"Cluster of {fc.nodes} nodes and {fc.guests} guests. pvekit `nodes()` reads "
            "`/cluster/resources`, `/cluster/status` and each node's status concurrently; "
            "proxmoxer reads `nodes.get()` then `status.get()` per node. `storage()` vs "
            "`nodes(n).storage.get()` per node.\n"
        )
    rows = []
    for c in frames_cases:
        px = c.proxmoxer
        rows.append(
            [
                c.name,
                _ms(c.latency),
                fmt_stats(c.pvekit),
                c.pvekit.requests,
                fmt_stats(c.warm) if c.warm else "-",
                fmt_stats(px) if px else "-",
                px.requests if px else "-",
                fmt_ratio(c.pvekit, px) if px else "-",
            ]
        )
    out.append(
        md_table(
            [
                "frame",
                "latency",
                "pvekit cold",
                "req",
                "pvekit warm",
                "proxmoxer",
                "req",
                "ratio pvekit/proxmoxer",
            ],
            rows,
        )
    )
    out.append("")
    out.append("## Metrics of 50 guests (`cluster.metrics('guest', vmids)`)\n")
    rows = []
    for c in metric_cases:
        px = c.proxmoxer
        rows.append(
            [
                _ms(c.latency),
                fmt_stats(c.pvekit),
                c.pvekit.requests,
                fmt_stats(c.warm) if c.warm else "-",
                fmt_stats(px) if px else "-",
                px.requests if px else "-",
                fmt_ratio(c.pvekit, px) if px else "-",
            ]
        )
    out.append(
        md_table(
            ["latency", "pvekit cold", "req", "pvekit warm", "proxmoxer loop", "req", "ratio"],
            rows,
        )
    )
    out.append("")
    gp = plan["group"]
    out.append(
        f"## A group of {gp['clusters']} clusters vs the same clusters one by one\n\n"
        f"{gp['clusters']} clusters of {gp['nodes']} nodes and {gp['guests']} guests each, "
        f"{_ms(gp['latency'])} latency. *group*: `Group.guests()` (clusters concurrently); "
        "*sequential*: `cluster.guests()` on each cluster in turn; *proxmoxer*: its loop on "
        "each cluster in turn.\n"
    )
    rows = []
    for label, res in (("basic", group_basic), ("detailed", group_detailed)):
        g, s, p = res["group"], res["sequential"], res["proxmoxer"]
        rows.append(
            [
                label,
                fmt_stats(g),
                g.requests,
                fmt_stats(s),
                fmt_stats(p),
                p.requests,
                f"{s.median() / g.median():.1f}x",
                f"{p.median() / g.median():.1f}x",
            ]
        )
    out.append(
        md_table(
            [
                "table",
                "group",
                "req",
                "one by one (pvekit)",
                "one by one (proxmoxer)",
                "req",
                "group speed-up vs pvekit one by one",
                "vs proxmoxer",
            ],
            rows,
        )
    )
    out.append("")
    out.append("## Peak memory (client process, tracemalloc, latency 0)\n")
    out.append(_memory_table(basic + detailed))
    out.append("")
    out.append(
        "Peak memory is measured in a separate, untimed run under `tracemalloc` (Python "
        "allocations only). Request counts are asserted in `tests/test_request_counts.py`; "
        "timings are never asserted.\n"
    )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run (a few minutes)")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "BENCHMARKS.md",
        help="where to write the Markdown report (default: BENCHMARKS.md at the repo root)",
    )
    parser.add_argument(
        "--only",
        choices=["speed"],
        default=None,
        help="run one section only and print it (nothing is written unless --output)",
    )
    args = parser.parse_args(argv)
    # Keep the benchmark away from the user's config and cache (SQLite cache files go to a
    # throw-away directory).
    tmp = tempfile.mkdtemp(prefix="pvekit-bench-")
    os.environ["PVEKIT_CACHE_DIR"] = str(Path(tmp) / "cache")
    os.environ["PVEKIT_CONFIG"] = str(Path(tmp) / "config.yaml")
    os.environ["PVEKIT_PVETUI_CONFIG"] = str(Path(tmp) / "pvetui.yml")
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)
    plan = QUICK if args.quick else FULL
    if args.only == "speed":
        started = time.perf_counter()
        section = speed_report(run_speed(plan["speed"], _log))
        _log(f"done in {time.perf_counter() - started:.0f} s")
        print(section)
        if "--output" in (argv if argv is not None else sys.argv):
            args.output.write_text(section + "\n", encoding="utf-8")
            _log(f"wrote {args.output}")
        return 0
    report = run(plan, args.quick)
    args.output.write_text(report + "\n", encoding="utf-8")
    _log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
