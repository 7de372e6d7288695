"""Right-sizing: guests far below or pinned at their allocation, stopped guests holding disk."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError
from ._common import _MIB, _by_metric, _div, _empty, _f, _fmt_bytes, _guest_flags, _pct, _require
from ._headroom import _nz
from ._usage import _typed

__all__ = ["rightsizing"]


_RIGHTSIZING_COLUMNS: dict[str, str] = {
    "profile": "string",
    "vmid": "Int64",
    "name": "string",
    "node": "string",
    "type": "string",
    "status": "string",
    "category": "string",
    "basis": "string",
    "cores": "Int64",
    "cpu_median": "float64",
    "cpu_peak": "float64",
    "mem_total": "Int64",
    "mem_median": "float64",
    "mem_peak": "float64",
    "disk_total": "Int64",
    "suggested_cores": "Int64",
    "suggested_mem": "Int64",
    "message": "string",
}


def _guest_stats(metrics: pd.DataFrame | None, quantile: float) -> pd.DataFrame:
    """Per (profile, vmid): median and peak CPU fraction and memory fraction from rrddata."""
    cols = ["profile", "vmid", "cpu_median", "cpu_peak", "mem_median", "mem_peak", "samples"]
    if metrics is None or metrics.empty:
        return pd.DataFrame(columns=cols)
    m = metrics[metrics["kind"].astype("string") == "guest"]
    m = m[m["metric"].astype("string").isin(["cpu", "mem", "maxmem"])]
    if m.empty:
        return pd.DataFrame(columns=cols)
    m = m.assign(value=_f(m["value"]))
    w = _by_metric(m, ["profile", "target", "time"])
    for c in ("cpu", "mem", "maxmem"):
        if c not in w:
            w[c] = np.nan
    w["memf"] = _div(w["mem"], w["maxmem"])
    stats = (
        w.groupby(["profile", "target"], observed=True)
        .agg(
            cpu_median=("cpu", "median"),
            cpu_peak=("cpu", lambda s: s.quantile(quantile)),
            mem_median=("memf", "median"),
            mem_peak=("memf", lambda s: s.quantile(quantile)),
            samples=("cpu", "count"),
        )
        .reset_index()
    )
    stats["vmid"] = pd.to_numeric(stats["target"], errors="coerce")
    stats["profile"] = stats["profile"].astype("string")
    return stats[cols]


def rightsizing(
    guests: pd.DataFrame,
    metrics: pd.DataFrame | None = None,
    *,
    low: float = 0.2,
    high: float = 0.9,
    quantile: float = 0.95,
    target: float = 0.7,
) -> pd.DataFrame:
    """Guests to resize or clean up, one row per (guest, category).

    Categories:

    - ``cpu oversized`` / ``memory oversized``: the ``quantile`` (peak) of CPU or memory use
      over the metrics period stays below ``low`` of the allocation. ``suggested_cores`` /
      ``suggested_mem`` size it so that peak sits at ``target``.
    - ``cpu pinned`` / ``memory pinned``: the median stays at or above ``high``: the guest
      lives at its limit and needs more.
    - ``stopped with disk``: a stopped guest (not a template) still holding disk.
    - ``template``: templates hold disk too, and are worth an occasional look.

    ``metrics`` is ``metrics("guest", timeframe=...)`` (``cpu``, ``mem``, ``maxmem``);
    guests without metrics are judged on their current values (``basis`` ``current``), which is
    a weaker signal than a period (``basis`` ``period``).
    """
    if not 0 <= low < high <= 1:
        raise InvalidInputError(f"need 0 <= low < high <= 1, got low={low!r}, high={high!r}")
    if not 0 < target <= 1 or not 0 < quantile <= 1:
        raise InvalidInputError("target and quantile must be fractions in (0, 1]")
    _require(guests, "guests", ["profile", "vmid", "node", "status", "cores", "mem_total"])
    g = guests.copy()
    g["profile"] = g["profile"].astype("string")
    g["vmid"] = _f(g["vmid"])
    template, running = _guest_flags(g)
    stats = _guest_stats(metrics, quantile)
    stats["vmid"] = _f(stats["vmid"])
    g = g.merge(stats, on=["profile", "vmid"], how="left")
    cur_cpu = _f(g["cpu"]) if "cpu" in g else pd.Series(np.nan, g.index)
    cur_mem = _div(_f(g["mem_used"]), _f(g["mem_total"])) if "mem_used" in g else np.nan
    has = _f(g["samples"]).fillna(0) > 0
    g["basis"] = np.where(has, "period", "current")
    g["cpu_median"] = _f(g["cpu_median"]).where(has, cur_cpu)
    g["cpu_peak"] = _f(g["cpu_peak"]).where(has, cur_cpu)
    g["mem_median"] = _f(g["mem_median"]).where(has, cur_mem)
    g["mem_peak"] = _f(g["mem_peak"]).where(has, cur_mem)
    cores = _f(g["cores"])
    mem = _f(g["mem_total"])
    rows: list[dict[str, Any]] = []

    # plain Python rows: per-row pandas indexing is far too slow for thousands of guests
    records = g.to_dict("records")
    is_template, is_running = template.tolist(), running.tolist()
    cores_l, mem_l = cores.tolist(), mem.tolist()
    keep = [c for c in _RIGHTSIZING_COLUMNS if c in g.columns]

    def add(i: int, category: str, message: str, **extra: Any) -> None:
        row = {c: records[i][c] for c in keep}
        if category.endswith(("oversized", "pinned")) and records[i]["basis"] == "current":
            message += " (current value: no history to judge by)"
        row.update(category=category, message=message, **extra)
        rows.append(row)

    for i, r in enumerate(records):
        label = f"{r.get('name', '')} ({int(r['vmid'])})" if pd.notna(r["vmid"]) else "?"
        if is_template[i]:
            add(i, "template", f"template {label} holds {_fmt_bytes(r.get('disk_total'))}")
            continue
        if not is_running[i]:
            disk = _nz(r.get("disk_total"))
            if str(r["status"]) == "stopped" and disk > 0:
                add(
                    i,
                    "stopped with disk",
                    f"{label} is stopped but holds {_fmt_bytes(disk)} of disk",
                )
            continue
        c_med, c_peak = _nz(r["cpu_median"]), r["cpu_peak"]
        m_med, m_peak = _nz(r["mem_median"]), r["mem_peak"]
        ncores = cores_l[i]
        if pd.notna(c_peak) and c_peak < low and ncores > 1:
            sug = max(1, math.ceil(c_peak * ncores / target))
            if sug < ncores:
                add(
                    i,
                    "cpu oversized",
                    f"{label} peaks at {_pct(c_peak)} of {int(ncores)} vCPUs: {sug} would do",
                    suggested_cores=sug,
                )
        if c_med >= high:
            add(
                i,
                "cpu pinned",
                f"{label} runs at {_pct(c_med)} of its {int(_nz(ncores))} vCPUs (median)",
                suggested_cores=math.ceil(_nz(ncores) * c_med / target),
            )
        mtot = mem_l[i]
        if pd.notna(m_peak) and m_peak < low and mtot > 1024 * _MIB:
            want = max(512 * _MIB, math.ceil(m_peak * mtot / target / (256 * _MIB)) * 256 * _MIB)
            if want < mtot:
                add(
                    i,
                    "memory oversized",
                    f"{label} peaks at {_pct(m_peak)} of {_fmt_bytes(mtot)}: "
                    f"{_fmt_bytes(want)} would do",
                    suggested_mem=want,
                )
        if m_med >= high and mtot > 0:
            want = math.ceil(m_med * mtot / target / (256 * _MIB)) * 256 * _MIB
            add(
                i,
                "memory pinned",
                f"{label} uses {_pct(m_med)} of {_fmt_bytes(mtot)} (median)",
                suggested_mem=want,
            )
    if not rows:
        return _empty({c: t for c, t in _RIGHTSIZING_COLUMNS.items()})
    out = pd.DataFrame(rows)
    for c in _RIGHTSIZING_COLUMNS:
        if c not in out:
            out[c] = pd.NA
    return _typed(out, _RIGHTSIZING_COLUMNS)
