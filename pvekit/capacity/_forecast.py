"""Forecasts: days until pools and node memory reach a threshold (Theil-Sen, with a range)."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError
from ._common import _DAY, _bool, _by_metric, _empty, _f, _require, pool_name
from ._usage import _typed

__all__ = ["forecast", "theil_sen"]


# rrddata field names differ by kind and PVE version; first pair present wins.
_USED_TOTAL: dict[str, tuple[tuple[str, str], ...]] = {
    "node": (("memused", "memtotal"), ("mem_used", "mem_total"), ("mem", "maxmem")),
    "storage": (("used", "total"), ("disk", "maxdisk")),
}
_RESOURCE = {"node": "memory", "storage": "storage"}

_FORECAST_COLUMNS: dict[str, str] = {
    "profile": "string",
    "kind": "string",
    "resource": "string",
    "target": "string",
    "node": "string",
    "pool": "string",
    "points": "int64",
    "first_time": "datetime64[ns, UTC]",
    "last_time": "datetime64[ns, UTC]",
    "capacity": "float64",
    "current": "float64",
    "slope_per_day": "float64",
    "slope_low": "float64",
    "slope_high": "float64",
    "threshold": "float64",
    "status": "string",
    "days_until": "float64",
    "days_low": "float64",
    "days_high": "float64",
    "eta": "datetime64[ns, UTC]",
}

_MAX_FIT_POINTS = 600  # Theil-Sen is O(n^2) in pairs; 600 points = 180k slopes


def theil_sen(
    x: np.ndarray, y: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Theil-Sen line fit: (slope, intercept, slope_low, slope_high).

    The slope is the median of all pairwise slopes, robust to outliers and to a few bad RRD
    samples; the range is Sen's distribution-free confidence interval for it (from the
    normal approximation of Kendall's statistic). Needs at least two distinct x values.
    """
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if len(x) > _MAX_FIT_POINTS:
        idx = np.linspace(0, len(x) - 1, _MAX_FIT_POINTS).round().astype(int)
        x, y = x[idx], y[idx]
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    if not keep.any():
        raise InvalidInputError("a trend needs at least two distinct times")
    slopes = np.sort((y[j] - y[i])[keep] / dx[keep])
    slope = float(np.median(slopes))
    intercept = float(np.median(y - slope * x))
    n, m = len(x), len(slopes)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    lo = int(max(0, math.floor((m - c) / 2)))
    hi = int(min(m - 1, math.ceil((m + c) / 2)))
    return slope, intercept, float(slopes[lo]), float(slopes[hi])


def _series(metrics: pd.DataFrame, kind: str) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """Per (profile, target, node): time, _used, _total; every target of ``kind`` is listed,
    even one whose samples are all empty (it becomes "insufficient data", not a gap)."""
    m = metrics[metrics["kind"].astype("string") == kind]
    if m.empty:
        return []
    names = set(m["metric"].astype("string").unique())
    pair = next((p for p in _USED_TOTAL[kind] if p[0] in names and p[1] in names), None)
    if pair is None:
        return []
    m = m[m["metric"].astype("string").isin(pair)].copy()
    m["value"] = _f(m["value"])
    for c in ("profile", "target", "node"):
        m[c] = m[c].astype("string").fillna("").astype(str)
    keys = ["profile", "target", "node"]
    wide = _by_metric(m, [*keys, "time"])
    wide = wide.rename(columns={pair[0]: "_used", pair[1]: "_total"})
    for c in ("_used", "_total"):
        if c not in wide:
            wide[c] = np.nan
    groups = {k: g for k, g in wide.groupby(keys, sort=False)}
    empty = wide.iloc[0:0]
    every = sorted(set(zip(m["profile"], m["target"], m["node"], strict=True)))
    return [(k, groups.get(k, empty)) for k in every]


def forecast(
    metrics: pd.DataFrame,
    *,
    threshold: float = 0.9,
    storage: pd.DataFrame | None = None,
    confidence: float = 0.95,
    min_points: int = 6,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Days until storage pools and node memory reach ``threshold`` of their size.

    Input is the tidy ``metrics()`` frame (``kind`` ``node`` and/or ``storage``; use a long
    ``timeframe`` such as ``"month"`` or ``"year"``). For each target the used fraction
    (``used/total``; node memory ``memused/memtotal``) is fitted against time with
    :func:`theil_sen`; rows with a missing value (RRD often leaves the newest ones empty) are
    dropped first. ``current`` is the fitted fraction at the last sample.

    ``status``: ``growing`` (the whole confidence range of the slope is above zero),
    ``not growing`` (no trend, or shrinking: no date is given), ``above threshold`` (already
    there), ``insufficient data`` (fewer than ``min_points`` samples). ``days_until`` uses the
    median slope, ``days_low``/``days_high`` the fast and slow ends of its confidence range
    (``days_high`` is inf when the slow end is flat). ``eta`` = ``now`` (default: last sample)
    + ``days_until``.

    With the ``storage`` frame, a shared pool reported by every node is forecast once, and
    ``pool`` names it as :func:`storage_pools` does (:func:`pool_name`: ``prod/ceph-vm``, not
    one node's view ``pve1/ceph-vm``); NA for node memory rows.
    """
    if not 0 < threshold <= 1:
        raise InvalidInputError(f"threshold must be a fraction in (0, 1], got {threshold!r}")
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence!r}")
    _require(metrics, "metrics", ["profile", "kind", "target", "node", "time", "metric", "value"])
    shared_seen: set[tuple[str, str]] = set()
    shared_names: set[tuple[str, str]] = set()
    if storage is not None and len(storage):
        sh = storage[_bool(storage["shared"])]
        shared_names = {(str(p), str(s)) for p, s in zip(sh["profile"], sh["storage"], strict=True)}
    rows: list[dict[str, Any]] = []
    for kind in ("node", "storage"):
        for (profile, target, node), grp in _series(metrics, kind):
            pool: str | None = None
            if kind == "storage":
                name = str(target).split("/", 1)[-1]
                shared = (str(profile), name) in shared_names
                if shared:
                    if (str(profile), name) in shared_seen:
                        continue
                    shared_seen.add((str(profile), name))
                pool = pool_name(profile, name, node or None, shared=shared)
            row = _fit_one(grp, profile, kind, target, node, threshold, confidence, min_points, now)
            rows.append({**row, "pool": pool})
    if not rows:
        return _empty(_FORECAST_COLUMNS)
    out = pd.DataFrame(rows)
    for c in ("first_time", "last_time", "eta"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return _typed(out, _FORECAST_COLUMNS)


def _fit_one(
    grp: pd.DataFrame,
    profile: Any,
    kind: str,
    target: Any,
    node: Any,
    threshold: float,
    confidence: float,
    min_points: int,
    now: pd.Timestamp | None,
) -> dict[str, Any]:
    d = grp[["time", "_used", "_total"]].dropna()
    d = d[d["_total"] > 0].sort_values("time")
    row: dict[str, Any] = {
        "profile": profile,
        "kind": kind,
        "resource": _RESOURCE[kind],
        "target": target,
        "node": node,
        "points": len(d),
        "first_time": d["time"].iloc[0] if len(d) else pd.NaT,
        "last_time": d["time"].iloc[-1] if len(d) else pd.NaT,
        "capacity": float(d["_total"].iloc[-1]) if len(d) else np.nan,
        "threshold": threshold,
        "current": np.nan,
        "slope_per_day": np.nan,
        "slope_low": np.nan,
        "slope_high": np.nan,
        "days_until": np.nan,
        "days_low": np.nan,
        "days_high": np.nan,
        "eta": pd.NaT,
    }
    times = pd.to_datetime(d["time"], utc=True)
    if len(d) < min_points or times.nunique() < 2:
        row["status"] = "insufficient data"
        if len(d):
            row["current"] = float(d["_used"].iloc[-1] / d["_total"].iloc[-1])
        return row
    t_last = times.iloc[-1]
    x = ((times - t_last).dt.total_seconds() / _DAY).to_numpy()
    y = (d["_used"] / d["_total"]).to_numpy(dtype="float64")
    slope, intercept, lo, hi = theil_sen(x, y, confidence)
    current = intercept  # x == 0 at the last sample
    row.update(current=current, slope_per_day=slope, slope_low=lo, slope_high=hi)
    origin = pd.Timestamp(now) if now is not None else t_last
    if origin.tzinfo is None:
        origin = origin.tz_localize("UTC")
    elapsed = (origin - t_last).total_seconds() / _DAY
    level = current + slope * elapsed
    if max(level, current, float(y[-1])) >= threshold:
        row.update(status="above threshold", days_until=0.0, days_low=0.0, days_high=0.0)
        row["eta"] = origin
    elif lo > 0:
        gap = threshold - level
        row.update(
            status="growing",
            days_until=gap / slope,
            days_low=gap / hi,
            days_high=gap / lo,
        )
        if row["days_until"] < 365 * 200:  # beyond that a date is meaningless (and overflows)
            row["eta"] = origin + pd.Timedelta(days=row["days_until"])
    else:
        row["status"] = "not growing"
    return row
