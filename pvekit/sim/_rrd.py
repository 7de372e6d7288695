"""Deterministic RRD history (``rrddata``) for nodes, guests and storages.

Rows follow PVE's classic RRA layout: ~70 rows per timeframe at 1 min (hour), 30 min (day),
3 h (week), 12 h (month) and 7 days (year) resolution. Values come from the same load
profiles as the live numbers (daily and weekly cycles, noise, slow growth), averaged per step;
``MAX`` rows sit above the averages by the step's peak. The newest row may be empty (PVE's
last bucket is still being filled), as real servers answer.

RRD files live in pmxcfs and outlive reboots: a node's history spans the whole timeframe, and
only the time it was down (its ``outages``) leaves empty rows (``{"time": t}``), in its own
series and in the series of its guests and storages, which nobody recorded meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ._model import Guest, Node, StorageUse, noise

__all__ = ["TIMEFRAMES", "down", "guest_rrd", "node_rrd", "rows_times", "storage_rrd"]

Outages = Sequence[tuple[float, float | None]]

TIMEFRAMES: dict[str, int] = {
    "hour": 60,
    "day": 1800,
    "week": 10800,
    "month": 43200,
    "year": 604800,
}
ROWS = 70


def rows_times(now: float, timeframe: str) -> list[int]:
    """The row timestamps PVE would answer for ``timeframe`` at time ``now``."""
    step = TIMEFRAMES[timeframe]
    last = int(now // step) * step
    return [last - (ROWS - 1 - i) * step for i in range(ROWS)]


def down(outages: Outages, t: int, step: int, now: float) -> bool:
    """Whether the row at ``t`` (the step ``(t - step, t]``) is empty: like RRD's default
    xfiles factor, a step more than half unknown is unknown."""
    start = t - step
    lost = 0.0
    for began, ended in outages:
        end = now if ended is None else ended
        lost += max(0.0, min(end, t) - max(began, start))
    return lost > step / 2


def _peak(key: int, t: int, step: int) -> float:
    """Factor of a step's maximum over its average (longer steps see bigger peaks)."""
    spread = 0.08 + 0.25 * min(1.0, math.log10(step / 60 + 1) / 4)
    return 1.0 + spread * noise(key ^ 0x5A5A, t // step)


def _series(
    times: list[int],
    step: int,
    cf: str,
    key: int,
    fn: Callable[[int], float],
    cap: float | None = None,
) -> list[float]:
    out = []
    for t in times:
        # Average over a few samples of the step so longer timeframes are smoother.
        samples = 1 if step <= 60 else 4
        v = sum(fn(t - int(step * k / samples)) for k in range(samples)) / samples
        if cf == "MAX":
            v *= _peak(key, t, step)
        if cap is not None:
            v = min(v, cap)
        out.append(v)
    return out


def node_rrd(
    node: Node, guests: list[Guest], now: float, timeframe: str, cf: str, major: int
) -> list[dict[str, Any]]:
    step = TIMEFRAMES[timeframe]
    times = rows_times(now, timeframe)
    running = [g for g in guests if g.running]
    gmem = sum(g.maxmem * g.mem_frac for g in running)
    gcpu = sum(g.load.base * g.maxcpu for g in running)

    def cpu(t: int) -> float:
        return min(
            1.0,
            node.load.level(t)
            + gcpu / max(node.cpus, 1) * node.load.level(t) / max(node.load.base, 1e-6) * 0.5,
        )

    def mem(t: int) -> float:
        trend = 1.0 + 0.03 * (t - node.load.t0) / (30 * 86400)
        return node.mem_base + gmem * trend * (0.97 + 0.03 * math.sin(t / 86400 * 2 * math.pi))

    cpus = _series(times, step, cf, node.load.key, cpu, 1.0)
    mems = _series(times, step, cf, node.load.key + 1, mem, float(node.maxmem))
    rows: list[dict[str, Any]] = []
    for i, t in enumerate(times):
        if down(node.outages, t, step, now):
            rows.append({"time": t})
            continue
        c = cpus[i]
        net = 2e5 + 4e6 * c
        row: dict[str, Any] = {
            "time": t,
            "cpu": c,
            "maxcpu": node.cpus,
            "iowait": c * 0.05,
            "loadavg": c * node.cpus * 0.6,
            "memtotal": node.maxmem,
            "memused": mems[i],
            "swaptotal": node.swap_total,
            "swapused": node.swap_total * 0.01 * c,
            "roottotal": node.rootfs_total,
            "rootused": node.rootfs_used * (1 + 0.02 * (t - node.load.t0) / (30 * 86400)),
            "netin": net * (0.9 + 0.2 * noise(node.load.key + 7, t // step)),
            "netout": net * 0.6 * (0.9 + 0.2 * noise(node.load.key + 8, t // step)),
        }
        if major >= 9:
            row["memavailable"] = node.maxmem - mems[i]
            row["arcsize"] = 0
        rows.append(row)
    if rows and node.online:
        rows[-1] = {"time": rows[-1]["time"]}  # the newest bucket is still being filled
    return rows


def guest_rrd(
    g: Guest, now: float, timeframe: str, cf: str, major: int, outages: Outages = ()
) -> list[dict[str, Any]]:
    """``outages``: those of the guest's node (nothing records while it is down)."""
    step = TIMEFRAMES[timeframe]
    times = rows_times(now, timeframe)
    base = {"maxcpu": g.maxcpu, "maxmem": g.maxmem, "maxdisk": g.maxdisk}
    rows = _guest_rows(g, now, times, step, cf, major, base)
    return [{"time": r["time"]} if down(outages, r["time"], step, now) else r for r in rows]


def _guest_rows(
    g: Guest, now: float, times: list[int], step: int, cf: str, major: int, base: dict[str, Any]
) -> list[dict[str, Any]]:
    # A stopped guest (and a template) records only its limits and disk, as real RRDs do.
    active_since = g.started_at if g.running and g.started_at is not None else None
    if g.template or active_since is None:
        return [
            {"time": t, **base, "disk": 0 if g.type == "qemu" else g.disk_used(t)} for t in times
        ]

    def cpu(t: int) -> float:
        return min(1.0, g.load.level(t))

    def mem(t: int) -> float:
        trend = 1.0 + g.load.growth * (t - g.load.t0) / (30 * 86400)
        wobble = 1.0 + 0.04 * math.sin(2 * math.pi * (t % 86400) / 86400 + g.load.phase)
        return g.maxmem * min(0.97, max(0.02, g.mem_frac * trend * wobble))

    cpus = _series(times, step, cf, g.load.key, cpu, 1.0)
    mems = _series(times, step, cf, g.load.key + 1, mem, float(g.maxmem))
    rows: list[dict[str, Any]] = []
    for i, t in enumerate(times):
        c = cpus[i]
        activity = (c + 0.02) / (g.load.base + 0.02)
        row: dict[str, Any] = {
            "time": t,
            **base,
            "cpu": c,
            "mem": mems[i],
            "disk": 0 if g.type == "qemu" else g.disk_used(t),
            "netin": g.net_rate * activity * (0.8 + 0.4 * noise(g.load.key + 3, t // step)),
            "netout": g.net_rate * 0.4 * activity * (0.8 + 0.4 * noise(g.load.key + 4, t // step)),
            "diskread": g.disk_rate * activity * (0.7 + 0.6 * noise(g.load.key + 5, t // step)),
            "diskwrite": g.disk_rate
            * 0.5
            * activity
            * (0.7 + 0.6 * noise(g.load.key + 6, t // step)),
        }
        if major >= 9 and g.type == "qemu":
            row["memhost"] = mems[i] * 1.03
        rows.append(row)
    rows[-1] = {"time": rows[-1]["time"], **base}  # newest bucket still being filled
    return rows


def storage_rrd(
    use: StorageUse, now: float, timeframe: str, cf: str, outages: Outages = ()
) -> list[dict[str, Any]]:
    """``outages``: those of the node asked (a shared pool's series is that node's view)."""
    step = TIMEFRAMES[timeframe]
    times = rows_times(now, timeframe)
    if use.status != "available":
        return [{"time": t} for t in times]
    # Storage use moves slowly: a step's maximum is barely above its average.
    used = _series(times, step, "AVERAGE", use.key, lambda t: float(use.used(t)), float(use.total))
    if cf == "MAX":
        used = [
            min(float(use.total), u * (1.0005 + 0.002 * noise(use.key, t // step)))
            for u, t in zip(used, times, strict=True)
        ]
    return [
        {"time": t} if down(outages, t, step, now) else {"time": t, "total": use.total, "used": u}
        for t, u in zip(times, used, strict=True)
    ]
