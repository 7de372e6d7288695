"""Growth of what is allocated, from a history of guests snapshots (``pvekit.history``).

Pure functions of frames, re-exported by :mod:`pvekit.capacity`: :func:`growth` (per week or
month: guests, vCPUs, memory allocated, disk provisioned and storage used, their change over
the period, guests created and removed) and :func:`growth_trend` (the same Theil-Sen fit the
usage forecasts use, on allocation per snapshot).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InvalidInputError

__all__ = ["GROWTH_COLUMNS", "allocation", "growth", "growth_trend", "guest_changes"]

# The guests columns growth needs: read only these from a long history
# (``store.read("guests", columns=GROWTH_COLUMNS)``): lists are the slow part, so add "tags"
# only for growth by tag.
GROWTH_COLUMNS: tuple[str, ...] = (
    "profile",
    "vmid",
    "pool",
    "template",
    "cores",
    "mem_total",
    "disk_total",
    "disk_provisioned",
    "collected_at",
)
ALLOCATION: tuple[str, ...] = ("guests", "vcpus", "mem_alloc", "disk_provisioned")
_PERIODS = {"month": "M", "week": "W"}
_DAY = 86400.0


def _split(history: Any, summary: pd.DataFrame | None) -> tuple[pd.DataFrame, Any]:
    if isinstance(history, Mapping):
        guests = history.get("guests")
        summary = summary if summary is not None else history.get("summary")
    else:
        guests = history
    if not isinstance(guests, pd.DataFrame):
        raise InvalidInputError(
            "growth needs a guests history frame (store.read('guests')) or a mapping with "
            f"'guests', got {type(history).__name__}"
        )
    missing = [
        c for c in ("profile", "vmid", "cores", "mem_total", "collected_at") if c not in guests
    ]
    if missing:
        raise InvalidInputError(
            f"the guests history frame lacks {', '.join(missing)}: read it from a history "
            "store (it needs collected_at) with those columns"
        )
    return guests, summary


def _keys(by: Any) -> tuple[list[str], bool]:
    if isinstance(by, str):
        by = (by,)
    keys = list(by)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise InvalidInputError(f"by must name columns, e.g. ('profile',) or 'tag', got {by!r}")
    tag = "tag" in keys
    if "profile" not in keys:
        keys.insert(0, "profile")  # allocation is per cluster: a vmid means nothing across them
    return keys, tag


def _disk_provisioned(g: pd.DataFrame) -> pd.Series:
    if "disk_provisioned" in g:
        return pd.to_numeric(g["disk_provisioned"], errors="coerce").astype("float64")
    if "disks" in g:
        # The same rule as capacity.storage_pools: sized disks on a storage.
        def total(disks: Any) -> float:
            if not isinstance(disks, list):
                return math.nan
            s = 0.0
            for d in disks:
                if isinstance(d, Mapping) and d.get("storage") and d.get("size"):
                    try:
                        size = float(d["size"])
                    except (TypeError, ValueError):
                        continue
                    if size > 0:
                        s += size
            return s

        return pd.Series([total(d) for d in g["disks"]], index=g.index, dtype="float64")
    if "disk_total" in g:
        return pd.to_numeric(g["disk_total"], errors="coerce").astype("float64")
    return pd.Series(np.nan, index=g.index)


def _prepared(guests: pd.DataFrame, keys: list[str], tag: bool) -> pd.DataFrame:
    g = guests
    if "template" in g:
        g = g[~g["template"].astype("boolean").fillna(False).astype(bool)]
    cols: dict[str, Any] = {
        "collected_at": pd.to_datetime(g["collected_at"], utc=True),
        "vmid": g["vmid"].astype("Int64"),
        "vcpus": pd.to_numeric(g["cores"], errors="coerce").fillna(0).astype("float64"),
        "mem_alloc": pd.to_numeric(g["mem_total"], errors="coerce").fillna(0).astype("float64"),
        "disk_provisioned": _disk_provisioned(g).fillna(0),
    }
    for k in keys:
        if k == "tag":
            if "tags" not in g:
                raise InvalidInputError("growth by tag needs the tags column")
            cols["tag"] = g["tags"]
        elif k not in g:
            raise InvalidInputError(f"growth by {k!r}: the guests history has no such column")
        else:
            cols[k] = g[k].astype("string").fillna("(none)")
    df = pd.DataFrame(cols, index=g.index)
    if tag:
        df["tag"] = [t if isinstance(t, list) and t else ["(untagged)"] for t in df["tag"]]
        df = df.explode("tag")
        df["tag"] = df["tag"].astype("string")
    return df.reset_index(drop=True)


def _per_snapshot(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Allocation per (keys, collected_at); a group with no guests at a snapshot of its
    cluster counts zero there (it shrank to nothing; it is not missing)."""
    agg = (
        df.assign(guests=1.0)
        .groupby([*keys, "collected_at"], observed=True, sort=True)[list(ALLOCATION)]
        .sum()
    )
    if len(keys) > 1:
        wide = agg.unstack("collected_at", fill_value=0.0)
        full = wide.stack("collected_at", future_stack=True).fillna(0.0).reset_index()
        seen = df[["profile", "collected_at"]].drop_duplicates()
        return full.merge(seen, on=["profile", "collected_at"], how="inner")
    return agg.reset_index()


def allocation(history: Any, by: Sequence[str] | str = ("profile",)) -> pd.DataFrame:
    """Allocation at every snapshot: the ``by`` keys, ``collected_at``, ``guests``, ``vcpus``,
    ``mem_alloc``, ``disk_provisioned`` (templates not counted)."""
    guests, _ = _split(history, None)
    keys, tag = _keys(by)
    out = _per_snapshot(_prepared(guests, keys, tag), keys)
    for m in ("guests", "vcpus"):
        out[m] = out[m].round().astype("int64")
    for m in ("mem_alloc", "disk_provisioned"):
        out[m] = out[m].round().astype("Int64")
    for k in keys:
        out[k] = out[k].astype("string")
    return out


def guest_changes(history: Any, since: Any = None, until: Any = None) -> pd.DataFrame:
    """Guests created and removed: one row per guest that appeared after the first snapshot
    of its cluster or disappeared before the last one (within ``since``..``until`` if given).

    Columns: profile, vmid, name, change (``created``/``removed``), when (the first or last
    snapshot it was seen in), cores, mem_alloc.
    """
    guests, _ = _split(history, None)
    g = guests.sort_values("collected_at", kind="stable")
    cols = ["profile", "vmid", "name", "change", "when", "cores", "mem_alloc"]
    if g.empty:
        return pd.DataFrame({c: [] for c in cols})
    g = g.assign(collected_at=pd.to_datetime(g["collected_at"], utc=True))
    if "template" in g:
        g = g[~g["template"].astype("boolean").fillna(False).astype(bool)]
    per = g.groupby(["profile", "vmid"], observed=True, sort=False)
    bounds = g.groupby("profile", observed=True)["collected_at"].agg(["min", "max"])
    first = per.head(1)
    last = per.tail(1)
    born = first[first["collected_at"] > first["profile"].map(bounds["min"])].assign(
        change="created"
    )
    gone = last[last["collected_at"] < last["profile"].map(bounds["max"])].assign(change="removed")
    out = pd.concat([born, gone], ignore_index=True)
    out = out.rename(columns={"collected_at": "when", "mem_total": "mem_alloc"})
    if since is not None:
        out = out[out["when"] >= pd.Timestamp(since, tz="UTC")]
    if until is not None:
        out = out[out["when"] <= pd.Timestamp(until, tz="UTC")]
    for c in cols:
        if c not in out:
            out[c] = pd.NA
    out = out[cols].sort_values(["when", "profile", "vmid"], ignore_index=True)
    out["change"] = out["change"].astype("string")
    return out


def _period_start(times: pd.Series, period: str) -> pd.Series:
    naive = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.dt.to_period(_PERIODS[period]).dt.start_time.dt.tz_localize("UTC")


def growth(
    history: Any,
    by: Sequence[str] | str = ("profile",),
    period: str = "month",
    *,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Allocation per period and its change, from a guests history frame.

    ``history`` is ``store.read("guests")`` (any guests frames with ``collected_at``), or a
    mapping with ``guests`` and optionally ``summary`` (``store.read("summary")``: storage
    used per cluster). ``by``: ``("profile",)``, ``("profile", "pool")`` or ``"tag"`` (a guest
    counts under each of its tags; untagged ones under ``(untagged)``). ``period``: ``month``
    or ``week``. Templates are not counted.

    One row per group and period: ``period`` (its start, UTC), ``snapshots``, ``last_at``
    (the snapshot the values are from: the last of the period), ``guests``, ``vcpus``,
    ``mem_alloc`` and ``disk_provisioned`` (bytes; sized disks on a storage) and
    ``storage_used`` (per cluster only, from ``summary``), each with ``*_change``: the
    change since the end of the previous period (the first period: since its first
    snapshot); ``created`` and ``removed``: guests first seen in the period (after the first
    snapshot of the history) and guests last seen in it (before the last snapshot).
    """
    if period not in _PERIODS:
        raise InvalidInputError(f"period must be 'month' or 'week', got {period!r}")
    guests, summary = _split(history, summary)
    keys, tag = _keys(by)
    df = _prepared(guests, keys, tag)
    cols = [*keys, "period", "snapshots", "last_at", *ALLOCATION, "storage_used"]
    cols += [f"{m}_change" for m in (*ALLOCATION, "storage_used")] + ["created", "removed"]
    if df.empty:
        return pd.DataFrame({c: [] for c in cols})
    snap = _per_snapshot(df, keys)
    if keys == ["profile"] and summary is not None and len(summary) and "storage_used" in summary:
        su = summary[["profile", "collected_at", "storage_used"]].copy()
        su["profile"] = su["profile"].astype("string")
        su["collected_at"] = pd.to_datetime(su["collected_at"], utc=True)
        su["storage_used"] = pd.to_numeric(su["storage_used"], errors="coerce").astype("float64")
        snap = snap.merge(su, on=["profile", "collected_at"], how="left")
    else:
        snap["storage_used"] = np.nan
    values = [*ALLOCATION, "storage_used"]
    snap["period"] = _period_start(snap["collected_at"], period)
    snap = snap.sort_values([*keys, "collected_at"], kind="stable")
    grp = snap.groupby([*keys, "period"], observed=True, sort=True)
    last = grp[values].last()
    first = grp[values].first()
    out = last.copy()
    out["snapshots"] = grp.size()
    out["last_at"] = grp["collected_at"].max()
    prev = last.groupby(level=list(range(len(keys))), observed=True).shift(1)
    base = prev.where(prev.notna(), first)
    for m in values:
        out[f"{m}_change"] = out[m] - base[m]
    out = out.reset_index()
    created, removed = _turnover(df, keys, period)
    out = out.merge(created, on=[*keys, "period"], how="left").merge(
        removed, on=[*keys, "period"], how="left"
    )
    for c in ("created", "removed"):
        out[c] = out[c].fillna(0).astype("int64")
    for m in ("guests", "vcpus", "guests_change", "vcpus_change"):
        out[m] = out[m].round().astype("int64")
    for m in ("mem_alloc", "disk_provisioned", "mem_alloc_change", "disk_provisioned_change"):
        out[m] = out[m].round().astype("Int64")
    for m in ("storage_used", "storage_used_change"):
        out[m] = out[m].round().astype("Int64")
    for k in keys:
        out[k] = out[k].astype("string")
    out["snapshots"] = out["snapshots"].astype("int64")
    return out[cols]


def _turnover(df: pd.DataFrame, keys: list[str], period: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Guests created (first seen) and removed (last seen) per group and period."""
    per_guest = df.sort_values("collected_at", kind="stable").groupby(
        ["profile", "vmid"], observed=True, sort=False
    )
    firsts = per_guest.head(1)
    lasts = per_guest.tail(1)
    if "tag" in keys:  # every tag of the guest at that time
        firsts = df.merge(firsts[["profile", "vmid", "collected_at"]], how="inner")
        lasts = df.merge(lasts[["profile", "vmid", "collected_at"]], how="inner")
    bounds = df.groupby("profile", observed=True)["collected_at"].agg(["min", "max"])
    born = firsts[firsts["collected_at"] > firsts["profile"].map(bounds["min"])]
    gone = lasts[lasts["collected_at"] < lasts["profile"].map(bounds["max"])]

    def count(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        frame = frame.assign(period=_period_start(frame["collected_at"], period))
        return frame.groupby([*keys, "period"], observed=True).size().rename(name).reset_index()

    return count(born, "created"), count(gone, "removed")


def growth_trend(
    history: Any,
    by: Sequence[str] | str = ("profile",),
    *,
    metrics: Sequence[str] = ALLOCATION,
    confidence: float = 0.95,
    min_points: int = 6,
) -> pd.DataFrame:
    """Trend of allocation per group: :func:`pvekit.capacity.theil_sen` on the total at each
    snapshot (the fit the usage forecasts use), per metric.

    Columns: the ``by`` keys, ``metric`` (guests, vcpus, mem_alloc, disk_provisioned),
    ``points``, ``first_time``, ``last_time``, ``current`` (fitted value at the last
    snapshot), ``slope_per_day`` with its confidence range ``slope_low``/``slope_high``,
    ``per_month`` (30 days of the slope) and ``status``: ``growing``/``shrinking`` when the
    whole range is above/below zero, else ``flat``; ``insufficient data`` below
    ``min_points`` snapshots.
    """
    from .capacity import theil_sen

    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence!r}")
    unknown = [m for m in metrics if m not in ALLOCATION]
    if unknown:
        raise InvalidInputError(f"unknown metric(s) {unknown}: choose from {list(ALLOCATION)}")
    guests, _ = _split(history, None)
    keys, tag = _keys(by)
    snap = _per_snapshot(_prepared(guests, keys, tag), keys)
    rows: list[dict[str, Any]] = []
    for key, grp in snap.groupby(keys, observed=True, sort=True):
        key_t = key if isinstance(key, tuple) else (key,)
        grp = grp.sort_values("collected_at")
        times = grp["collected_at"]
        x = ((times - times.iloc[-1]).dt.total_seconds() / _DAY).to_numpy()
        for m in metrics:
            row: dict[str, Any] = dict(zip(keys, key_t, strict=True))
            row.update(
                metric=m,
                points=len(grp),
                first_time=times.iloc[0],
                last_time=times.iloc[-1],
                current=float(grp[m].iloc[-1]),
                slope_per_day=np.nan,
                slope_low=np.nan,
                slope_high=np.nan,
            )
            if len(grp) < min_points or times.nunique() < 2:
                row["status"] = "insufficient data"
            else:
                slope, intercept, lo, hi = theil_sen(x, grp[m].to_numpy("float64"), confidence)
                status = "growing" if lo > 0 else "shrinking" if hi < 0 else "flat"
                row.update(
                    current=intercept,
                    slope_per_day=slope,
                    slope_low=lo,
                    slope_high=hi,
                    status=status,
                )
            rows.append(row)
    cols = [
        *keys,
        "metric",
        "points",
        "first_time",
        "last_time",
        "current",
        "slope_per_day",
        "slope_low",
        "slope_high",
        "per_month",
        "status",
    ]
    if not rows:
        return pd.DataFrame({c: [] for c in cols})
    out = pd.DataFrame(rows)
    out["per_month"] = out["slope_per_day"] * 30
    for k in keys:
        out[k] = out[k].astype("string")
    out["metric"] = out["metric"].astype("string")
    out["status"] = out["status"].astype("string")
    return out[cols]
