"""Issue 18's benchmarks: client CPU per per-guest read, the detailed table at each latency,
a group against its slowest cluster, and an estate of many clusters.

Every figure is measured side by side with proxmoxer in the same run where the target is a
ratio to it. Run alone: ``python benchmarks/run.py --only speed [--quick]``; the full
``python benchmarks/run.py`` includes it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from _harness import (
    ClusterInfo,
    ClusterSpec,
    SimServer,
    Stats,
    fmt_s,
    md_table,
    measure,
)
from bench_inventory import guests_detailed, proxmoxer_client, pvekit_client

# The figures for the landed code ("today"), to compare the new ones with.
TODAY_SPEEDUP = {0.005: 4.6, 0.02: 10.3, 0.05: 14.8}
CPU_TARGET = 0.7e-3


# ------------------------------------------------------------------------------ CPU per read


def _targets(info: ClusterInfo) -> dict[str, list[str]]:
    """kind -> API paths of one per-guest read per guest (config, status, agent)."""
    probe = pvekit_client(info)
    try:
        rows = probe.resources()
    finally:
        probe.close()
    guests = [r for r in rows if r.get("type") in ("qemu", "lxc") and r.get("vmid") is not None]
    running_vms = [r for r in guests if r["type"] == "qemu" and r.get("status") == "running"]
    return {
        "config": [f"/nodes/{r['node']}/{r['type']}/{r['vmid']}/config" for r in guests],
        "status": [f"/nodes/{r['node']}/{r['type']}/{r['vmid']}/status/current" for r in guests],
        "agent": [
            f"/nodes/{r['node']}/qemu/{r['vmid']}/agent/network-get-interfaces" for r in running_vms
        ],
    }


def _prox_read(prox: Any, path: str) -> Any:
    parts = path.strip("/").split("/")
    endpoint: Any = prox
    for part in parts:
        endpoint = endpoint(part)
    try:
        return endpoint.get()
    except Exception as exc:  # an agent that does not answer: the request was still made
        return exc


def _fan_reads(client: Any, targets: list[str], kind: str) -> Any:
    return client._fan_out(lambda p: client.get(p, fresh=True), targets, desc=kind, progress=False)


def _prox_reads(prox: Any, targets: list[str]) -> list[Any]:
    return [_prox_read(prox, p) for p in targets]


@dataclass
class CpuRow:
    kind: str
    latency: float
    requests: int
    pvekit: Stats
    proxmoxer: Stats
    legacy: Stats | None = None

    def per_request(self, st: Stats) -> float:
        return st.median("cpu") / max(1, st.requests)


def cpu_per_read(
    server: SimServer, info: ClusterInfo, latency: float, repeats: int
) -> list[CpuRow]:
    """Client CPU per read, pvekit (its fan-out, lean path), pvekit's requests path (as
    before), and proxmoxer's loop, for each kind of per-guest read."""
    server.set_latency(0.0)
    paths = _targets(info)
    server.set_latency(latency)
    rows = []
    for kind, targets in paths.items():
        pv, legacy, px = Stats(), Stats(), Stats()
        for _ in range(repeats):
            for stats, lean in ((pv, True), (legacy, False)):
                client = pvekit_client(info)
                if not lean:
                    client.api._lean = None  # the requests path, as before issue 18
                client.get("/version")  # log in and connect outside the timing
                try:
                    stats.add(measure(partial(_fan_reads, client, targets, kind), server))
                finally:
                    client.close()
            prox = proxmoxer_client(info)
            _prox_read(prox, "/version")
            px.add(measure(partial(_prox_reads, prox, targets), server))
        rows.append(CpuRow(kind, latency, len(targets), pv, px, legacy))
    return rows


def cpu_table(rows: list[CpuRow]) -> str:
    out = []
    for r in rows:
        legacy = r.per_request(r.legacy) if r.legacy else float("nan")
        out.append(
            [
                r.kind,
                f"{r.latency * 1000:.0f} ms",
                r.requests,
                f"{r.per_request(r.pvekit) * 1e3:.2f} ms",
                f"{legacy * 1e3:.2f} ms",
                f"{r.per_request(r.proxmoxer) * 1e3:.2f} ms",
                f"{r.per_request(r.pvekit) / r.per_request(r.proxmoxer):.2f}",
            ]
        )
    return md_table(
        [
            "read",
            "latency",
            "requests",
            "pvekit CPU/request",
            "pvekit requests path (before)",
            "proxmoxer CPU/request",
            "pvekit/proxmoxer",
        ],
        out,
    )


# ------------------------------------------------------------------------------ detailed table


def detailed_at(
    server: SimServer, info: ClusterInfo, latencies: list[float], repeats: int
) -> dict[float, tuple[Stats, Stats, int]]:
    """latency -> (pvekit cold, proxmoxer loop, peak fan-out threads) for the detailed table."""
    out = {}
    for lat in latencies:
        case = guests_detailed(server, info, lat, repeats, prox_repeats=1)
        client = pvekit_client(info)
        try:
            server.set_latency(lat)
            client.guests(details=True, progress=False)
            threads = client._fan_pool().threads_started
        finally:
            client.close()
        assert case.proxmoxer is not None
        out[lat] = (case.pvekit, case.proxmoxer, threads)
    return out


# ------------------------------------------------------------------------------ group


def group_vs_slowest(server: SimServer, latency: float, repeats: int) -> dict[str, Any]:
    """The detailed table of a Group of every served cluster against each cluster alone."""
    from pvekit import Group

    infos = server.clusters
    server.set_latency(latency)
    alone: dict[str, Stats] = {}
    for info in infos:
        st = Stats()
        for _ in range(repeats):
            c = pvekit_client(info)
            try:
                st.add(measure(partial(c.guests, details=True, progress=False), server))
            finally:
                c.close()
        alone[info.profile] = st
    group = Stats()
    for _ in range(repeats):
        g = Group([pvekit_client(i) for i in infos])
        try:
            group.add(measure(partial(g.guests, details=True, progress=False), server))
        finally:
            g.close()
    slowest = max(alone.values(), key=lambda s: s.median())
    return {"alone": alone, "group": group, "slowest": slowest}


# ------------------------------------------------------------------------------ estate


@dataclass
class Peak:
    threads: int = 0
    fds: int = 0
    sockets: int = 0
    samples: list[int] = field(default_factory=list)


def _sockets() -> tuple[int, int]:
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                sockets += 1
        except OSError:
            pass
    return len(fds), sockets


@contextmanager
def watch(every: float = 0.02) -> Iterator[Peak]:
    """Sample the process's threads, file descriptors and sockets while the block runs."""
    peak = Peak()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            fds, socks = _sockets()
            peak.threads = max(peak.threads, threading.active_count() - 1)  # not the sampler
            peak.fds, peak.sockets = max(peak.fds, fds), max(peak.sockets, socks)
            stop.wait(every)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield peak
    finally:
        stop.set()
        t.join()


@dataclass
class EstateRow:
    clusters: int
    guests: int
    call: str
    wall: float
    cpu: float
    requests: int
    peak: Peak
    after_threads: int
    after_sockets: int


def estate(sizes: list[int], guests: int, nodes: int, latency: float) -> list[EstateRow]:
    """A Group of ``n`` simulated clusters (distinct seeds) for each size: cold ``guests()``
    and ``nodes()`` (new clients, the simulator's own caches warm), threads and sockets."""
    from pvekit import Group

    rows: list[EstateRow] = []
    biggest = max(sizes)
    specs = [
        ClusterSpec(f"e{i + 1}", "large", {"nodes": nodes, "guests": guests, "seed": i + 1})
        for i in range(biggest)
    ]
    with SimServer(specs) as server:
        server.set_latency(0.0)
        warm = Group([pvekit_client(i) for i in server.clusters])
        warm.guests(progress=False)
        warm.nodes(progress=False)
        warm.close()
        server.set_latency(latency)
        for n in sizes:
            infos = server.clusters[:n]
            for call in ("guests", "nodes"):
                group = Group([pvekit_client(i) for i in infos])
                try:
                    with watch() as peak:
                        sample = measure(partial(getattr(group, call), progress=False), server)
                    _, socks = _sockets()
                    rows.append(
                        EstateRow(
                            n,
                            n * guests,
                            call,
                            sample.wall,
                            sample.cpu,
                            sample.requests,
                            peak,
                            threading.active_count(),
                            socks,
                        )
                    )
                finally:
                    group.close()
    return rows


def estate_table(rows: list[EstateRow]) -> str:
    return md_table(
        [
            "clusters",
            "guests",
            "call",
            "wall (cold)",
            "client CPU",
            "requests",
            "peak threads",
            "peak sockets",
            "threads after",
            "sockets after",
        ],
        [
            [
                r.clusters,
                r.guests,
                f"`{r.call}()`",
                fmt_s(r.wall),
                fmt_s(r.cpu),
                r.requests,
                r.peak.threads,
                r.peak.sockets,
                r.after_threads,
                r.after_sockets,
            ]
            for r in rows
        ],
    )


# ------------------------------------------------------------------------------ all of it


@dataclass
class SpeedResult:
    layers: dict[str, dict[str, float]]
    cpu: list[CpuRow]
    detailed: dict[float, tuple[Stats, Stats, int]]
    detailed_guests: int
    group: dict[str, Any]
    group_shape: tuple[int, int, float]
    estate: list[EstateRow]
    estate_latency: float
    elapsed: float = 0.0


def run_speed(plan: dict[str, Any], log: Callable[[str], None]) -> SpeedResult:
    from bench_layers import measure_layers

    started = time.perf_counter()
    size, nodes = plan["size"]
    with SimServer([ClusterSpec("speed", "large", {"nodes": nodes, "guests": size})]) as server:
        info = server.clusters[0]
        c = pvekit_client(info)  # warm the simulator's own caches
        c.guests(details=True, progress=False)
        c.close()
        log("per-layer profile of a config read")
        layers = measure_layers(info, plan["layer_requests"])
        cpu: list[CpuRow] = []
        for lat in plan["cpu_latencies"]:
            log(f"client CPU per per-guest read @ {lat * 1000:.0f} ms")
            cpu += cpu_per_read(server, info, lat, plan["cpu_repeats"])
        log("detailed table at each latency")
        detailed = detailed_at(server, info, plan["latencies"], plan["detailed_repeats"])
    gc, gg, gl = plan["group"]
    log(f"group of {gc} x {gg} guests @ {gl * 1000:.0f} ms vs its slowest cluster alone")
    gspecs = [
        ClusterSpec(f"c{i + 1}", "large", {"nodes": 4, "guests": gg, "seed": i + 1})
        for i in range(gc)
    ]
    with SimServer(gspecs) as gserver:
        group = group_vs_slowest(gserver, gl, plan["group_repeats"])
    log(f"estate of {plan['estate']} clusters")
    estate_rows = estate(plan["estate"], plan["estate_guests"], 4, plan["estate_latency"])
    return SpeedResult(
        layers,
        cpu,
        detailed,
        info.guests,
        group,
        (gc, gg, gl),
        estate_rows,
        plan["estate_latency"],
        time.perf_counter() - started,
    )


def targets(res: SpeedResult) -> list[list[Any]]:
    """Issue 18's targets: (target, measured, result)."""
    rows: list[list[Any]] = []
    for r in res.cpu:
        per = r.per_request(r.pvekit)
        prox = r.per_request(r.proxmoxer)
        ok = per <= CPU_TARGET and per < prox
        rows.append(
            [
                f"client CPU per `{r.kind}` read @ {r.latency * 1000:.0f} ms <= 0.7 ms and "
                "below proxmoxer's",
                f"{per * 1e3:.2f} ms vs proxmoxer {prox * 1e3:.2f} ms ({prox / per:.1f}x less)",
                "met" if ok else "MISSED",
            ]
        )
    for lat, (pv, px, threads) in sorted(res.detailed.items()):
        speed = px.median() / pv.median()
        if lat == 0.0:
            target, ok = "at least as fast as proxmoxer's loop", speed >= 1.0
        else:
            today = TODAY_SPEEDUP.get(lat)
            target = f"at least as fast as today ({today}x faster than the loop)"
            ok = today is None or speed >= today
        rows.append(
            [
                f"detailed table, {res.detailed_guests} guests @ {lat * 1000:.0f} ms: {target}",
                f"{speed:.1f}x faster than the loop ({fmt_s(pv.median())} vs "
                f"{fmt_s(px.median())}; {threads} fan-out threads)",
                "met" if ok else "MISSED",
            ]
        )
    gc, gg, gl = res.group_shape
    g, slow = res.group["group"], res.group["slowest"]
    ratio = g.median() / slow.median()
    rows.append(
        [
            f"Group of {gc} clusters x {gg} guests, details @ {gl * 1000:.0f} ms: within 1.5x "
            "of its slowest cluster alone",
            f"{ratio:.2f}x ({fmt_s(g.median())} vs {fmt_s(slow.median())})",
            "met" if ratio <= 1.5 else "MISSED",
        ]
    )
    for e in res.estate:
        if e.clusters == 50:
            rows.append(
                [
                    f"estate: Group of 50 clusters x {e.guests // 50} guests @ "
                    f"{res.estate_latency * 1000:.0f} ms, cold `{e.call}()` < 2 s",
                    f"{fmt_s(e.wall)} ({e.requests} requests, {e.peak.threads} threads, "
                    f"{e.peak.sockets} sockets at peak)",
                    "met" if e.wall < 2.0 else "MISSED",
                ]
            )
    return rows


def report(res: SpeedResult) -> str:
    from bench_layers import layers_table

    out = ["## Targets (issue 18)\n", md_table(["target", "measured", "result"], targets(res))]
    out.append(
        "\nThe warm-frames target of issue 18 is measured in the warm frames section "
        "(below).\n"
    )
    out.append("## Where a per-guest read's CPU goes (issue 18)\n")
    out.append(
        "Config reads sent one after the other (`fresh=True`), client CPU per request "
        "split by layer with `cProfile` on a process-CPU clock (the profile's own time "
        "per function, builtins and plain stdlib helpers charged to their callers, scaled "
        "to the unprofiled CPU per request). *requests path (before)* is the same client "
        "with the lean path switched off, as every read went before issue 18.\n"
    )
    out.append(layers_table(res.layers))
    out.append("\n## Client CPU per per-guest read, in a fan-out (issue 18)\n")
    out.append(
        "Each guest's read through pvekit's fan-out (`cluster._fan_out`, as the tables use "
        "it) and proxmoxer's loop, `fresh=True`; CPU is the client process's, over the "
        "requests the server counted.\n"
    )
    out.append(cpu_table(res.cpu))
    out.append("\n## Detailed table at each latency (issue 18)\n")
    rows = []
    for lat, (pv, px, threads) in sorted(res.detailed.items()):
        rows.append(
            [
                f"{lat * 1000:.0f} ms",
                fmt_s(pv.median()),
                fmt_s(pv.median("cpu")),
                fmt_s(px.median()),
                fmt_s(px.median("cpu")),
                f"{px.median() / pv.median():.1f}x",
                TODAY_SPEEDUP.get(lat, "-"),
                threads,
            ]
        )
    out.append(
        md_table(
            [
                "latency",
                "pvekit",
                "pvekit CPU",
                "proxmoxer loop",
                "proxmoxer CPU",
                "speed-up",
                "speed-up before",
                "fan-out threads",
            ],
            rows,
        )
    )
    out.append("\n## A group against its slowest cluster alone (issue 18)\n")
    rows = [
        [p, fmt_s(st.median()), fmt_s(st.median("cpu")), st.requests]
        for p, st in res.group["alone"].items()
    ]
    g = res.group["group"]
    rows.append(["**Group**", fmt_s(g.median()), fmt_s(g.median("cpu")), g.requests])
    out.append(md_table(["cluster alone / group", "wall", "client CPU", "requests"], rows))
    out.append("\n## Estate scale (issue 18)\n")
    out.append(
        f"Groups of simulated clusters (distinct seeds, 4 nodes each) at "
        f"{res.estate_latency * 1000:.0f} ms latency, served by one child process; cold "
        "calls on new clients (the simulator's own caches warmed first). Threads and "
        "sockets are the benchmark process's, sampled every 20 ms during the call "
        "(threads exclude the sampler) and counted again after it.\n"
    )
    out.append(estate_table(res.estate))
    out.append("")
    return "\n".join(out)
