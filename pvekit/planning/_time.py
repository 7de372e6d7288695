"""Time remaining: days until each cluster's CPU, memory, storage pools (usage trend) and
allocated memory and vCPUs (allocation trend, from history) reach their limit."""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pandas as pd

from .. import capacity
from .._errors import InvalidInputError
from ._common import build
from ._model import Policy, records

__all__ = ["TIME_COLUMNS", "time_remaining"]

TIME_COLUMNS: dict[str, str] = {
    "profile": "string",
    "resource": "string",  # cpu | memory | storage <pool> | allocated memory | allocated vcpus
    "basis": "string",  # usage | allocation
    "current": "float64",  # fraction of the capacity now (fitted)
    "threshold": "float64",
    "capacity": "float64",  # bytes, cores or vCPUs the fraction is of
    "slope_per_day": "float64",
    "status": "string",  # growing | not growing | above threshold | insufficient data
    "days_until": "float64",
    "days_low": "float64",
    "days_high": "float64",
    "eta": "datetime64[ns, UTC]",
    "binding": "bool",  # the resource that runs out first in this cluster
}

_RANK = {"above threshold": 0, "growing": 1, "not growing": 2, "insufficient data": 3}


def _synthetic(rows: list[tuple[str, str, Any, float, float]]) -> pd.DataFrame:
    """(profile, target, time, used, total) -> a node-kind metrics frame for capacity.forecast.

    Cluster totals and allocations are fitted by the very same forecast as node memory: its
    used/total pair is ``memused``/``memtotal``.
    """
    out = []
    for profile, target, t, used, total in rows:
        out.append((profile, "node", target, target, t, "memused", used))
        out.append((profile, "node", target, target, t, "memtotal", total))
    return pd.DataFrame(
        out, columns=["profile", "kind", "target", "node", "time", "metric", "value"]
    )


def _cluster_usage(metrics: pd.DataFrame) -> list[tuple[str, str, Any, float, float]]:
    """Per cluster and sample time: memory used/total and CPU cores used/total, summed over
    the nodes that reported at that time (times where a node is missing are dropped)."""
    m = metrics[metrics["kind"].astype("string") == "node"]
    if m.empty:
        return []
    m = m[m["metric"].astype("string").isin(["cpu", "maxcpu", "memused", "memtotal"])]
    wide = m.pivot_table(
        index=["profile", "target", "time"],
        columns="metric",
        values="value",
        aggfunc="mean",
        observed=True,
    ).reset_index()
    for c in ("cpu", "maxcpu", "memused", "memtotal"):
        if c not in wide:
            wide[c] = np.nan
    wide = wide.dropna(subset=["cpu", "maxcpu", "memused", "memtotal"])
    wide["cores_used"] = wide["cpu"] * wide["maxcpu"]
    rows: list[tuple[str, str, Any, float, float]] = []
    for profile, grp in wide.groupby("profile", sort=True, observed=True):
        n = grp["target"].nunique()
        agg = grp.groupby("time").agg(
            k=("target", "nunique"),
            mem=("memused", "sum"),
            memt=("memtotal", "sum"),
            cpu=("cores_used", "sum"),
            cpus=("maxcpu", "sum"),
        )
        agg = agg[agg["k"] == n]
        for t, r in agg.iterrows():
            rows.append((str(profile), f"{profile}\x00memory", t, r["mem"], r["memt"]))
            rows.append((str(profile), f"{profile}\x00cpu", t, r["cpu"], r["cpus"]))
    return rows


def _history_alloc(
    history: pd.DataFrame, nodes: pd.DataFrame, policy: Policy
) -> tuple[list[tuple[str, str, Any, float, float]], dict[str, tuple[float, float]]]:
    """Allocated memory/vCPUs of running guests per snapshot, against N+1 capacity."""
    need = ["profile", "collected_at", "status", "cores", "mem_total"]
    missing = [c for c in need if c not in history.columns]
    if missing:
        raise InvalidInputError(f"history frame lacks column(s) {', '.join(missing)}")
    t = pd.to_datetime(history["collected_at"])
    if t.dt.tz is None:
        raise InvalidInputError("history collected_at must be tz-aware timestamps")
    h = history.assign(collected_at=t.dt.tz_convert("UTC"))
    running = h["status"].astype("string") == "running"
    if "template" in h:
        running &= ~h["template"].astype("boolean").fillna(False).astype(bool)
    h = h[running]
    caps: dict[str, tuple[float, float]] = {}
    on = (
        nodes[nodes["online"].astype("boolean").fillna(False).astype(bool)]
        if "online" in nodes
        else nodes
    )
    for profile, grp in on.groupby(on["profile"].astype(str)):
        mem = [
            policy.mem_limit * float(total) - policy.reserve_for(str(n))
            for n, total in zip(grp["node"], grp["mem_total"], strict=True)
        ]
        cores = [float(c) for c in grp["cores"]]
        # N+1: what is left when the largest node fails
        caps[str(profile)] = (
            sum(mem) - max(mem, default=0.0),
            policy.vcpu_ratio * (sum(cores) - max(cores, default=0.0)),
        )
    rows: list[tuple[str, str, Any, float, float]] = []
    h = h.assign(
        _mem=pd.to_numeric(h["mem_total"], errors="coerce").astype("float64"),
        _vcpus=pd.to_numeric(h["cores"], errors="coerce").astype("float64"),
        _profile=h["profile"].astype(str),
    )
    agg = h.groupby(["_profile", "collected_at"])[["_mem", "_vcpus"]].sum()
    for key, r in agg.iterrows():
        profile, when = cast("tuple[str, pd.Timestamp]", key)
        if profile not in caps:
            continue
        mem_cap, vcpu_cap = caps[profile]
        if mem_cap > 0:
            rows.append((profile, f"{profile}\x00allocated memory", when, r["_mem"], mem_cap))
        if vcpu_cap > 0:
            rows.append((profile, f"{profile}\x00allocated vcpus", when, r["_vcpus"], vcpu_cap))
    return rows, caps


def time_remaining(
    source: Any,
    *,
    threshold: float = 0.9,
    history: pd.DataFrame | None = None,
    timeframe: str = "month",
    min_points: int = 6,
    now: pd.Timestamp | None = None,
    policy: Policy | None = None,
    forecast: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Days until each cluster runs out, per resource, the binding one first.

    Usage (``basis`` ``usage``), from the ``metrics`` of the source (read with
    ``timeframe`` from a Cluster/Group): the cluster's CPU (cores in use / cores) and memory
    (used / total over its nodes) and each storage pool (shared pools once), each fitted by
    :func:`pvekit.capacity.forecast` (Theil-Sen with its confidence range) up to
    ``threshold``.

    Allocation (``basis`` ``allocation``), with ``history`` (guest snapshots: the columns of
    ``guests(details=True)`` plus a tz-aware ``collected_at``): configured memory and vCPUs of
    the running guests at each snapshot, against what the cluster holds keeping N+1 headroom
    (the online nodes without the largest one: memory at the policy's ``mem_limit`` minus
    reserves, vCPUs at ``vcpu_ratio`` per CPU); fitted the same way up to 1.0.

    ``status``: ``growing`` (with ``days_until``, ``days_low``..``days_high`` and ``eta``),
    ``not growing`` (no trend: no date), ``above threshold`` (0 days) or ``insufficient data``
    (fewer than ``min_points`` samples). Rows are sorted per cluster with the resource that
    runs out first on top (``binding``).

    ``forecast``: a :func:`pvekit.capacity.forecast` frame already fitted on the same metrics
    and storage with the same ``threshold``, ``min_points`` and ``now`` (e.g.
    ``Report.analysis.forecast``); its storage rows are used instead of fitting the pools again
    (the cluster totals are fitted here in any case).
    """
    if not 0 < threshold <= 1:
        raise InvalidInputError(f"threshold must be a fraction in (0, 1], got {threshold!r}")
    if history is not None and not isinstance(history, pd.DataFrame):
        raise InvalidInputError(f"history must be a DataFrame, got {type(history).__name__}")
    inp, _model, pol = build(source, policy, metrics=timeframe)
    rows: list[dict[str, Any]] = []
    metrics = inp.metrics
    if metrics is not None and len(metrics):
        usage = _cluster_usage(metrics)
        if usage:
            f = capacity.forecast(
                _synthetic(usage), threshold=threshold, min_points=min_points, now=now
            )
            rows += _rows(f, "usage")
        if forecast is not None:
            _check_forecast(forecast)
            f = forecast[forecast["kind"].astype("string") == "storage"]
            rows += _rows(f, "usage", shared=_shared(inp.storage))
        elif (metrics["kind"].astype("string") == "storage").any():
            f = capacity.forecast(
                metrics[metrics["kind"].astype("string") == "storage"],
                threshold=threshold,
                storage=inp.storage,
                min_points=min_points,
                now=now,
            )
            rows += _rows(f, "usage", shared=_shared(inp.storage))
    if history is not None and len(history):
        alloc, _caps = _history_alloc(history, inp.nodes, pol)
        if alloc:
            f = capacity.forecast(_synthetic(alloc), threshold=1.0, min_points=min_points, now=now)
            rows += _rows(f, "allocation")
    df = pd.DataFrame(rows, columns=[c for c in TIME_COLUMNS if c != "binding"])
    if len(df):
        df["_rank"] = df["status"].map(_RANK).fillna(9)
        df["_days"] = df["days_until"].fillna(math.inf)
        df = df.sort_values(["profile", "_rank", "_days", "resource"], kind="stable")
        df["binding"] = ~df["profile"].duplicated()
        df = df.drop(columns=["_rank", "_days"])
    else:
        df["binding"] = pd.Series(dtype=bool)
    out = pd.DataFrame(index=range(len(df)))
    for c, t in TIME_COLUMNS.items():
        v = df[c].reset_index(drop=True)
        if t.startswith("datetime"):
            out[c] = pd.to_datetime(v, utc=True)
        elif t == "bool":
            out[c] = v.astype(bool)
        elif t == "float64":
            out[c] = pd.to_numeric(v, errors="coerce").astype("float64")
        else:
            out[c] = v.astype(t)  # type: ignore[call-overload]  # dtype names from a table
    return out


def _shared(storage: pd.DataFrame | None) -> set[tuple[str, str]]:
    if storage is None or not len(storage):
        return set()
    sh = storage[storage["shared"].astype("boolean").fillna(False).astype(bool)]
    return set(zip(sh["profile"].astype(str), sh["storage"].astype(str), strict=True))


def _check_forecast(forecast: Any) -> None:
    need = ["profile", "kind", "target", "current", "threshold", "capacity", "slope_per_day"]
    need += ["status", "days_until", "days_low", "days_high", "eta"]
    if not isinstance(forecast, pd.DataFrame):
        raise InvalidInputError(f"forecast must be a DataFrame, got {type(forecast).__name__}")
    missing = [c for c in need if c not in forecast]
    if missing:
        raise InvalidInputError(
            f"forecast must be a capacity.forecast() frame; it lacks column(s) {', '.join(missing)}"
        )


def _rows(
    f: pd.DataFrame, basis: str, *, shared: set[tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    out = []
    for r in records(f):
        if shared is not None:
            target = str(r["target"])
            pool = target.split("/", 1)[-1]
            profile = str(r["profile"])
            # a local pool exists once per node: name it with its node
            resource = f"storage {pool}" if (profile, pool) in shared else f"storage {target}"
        else:
            profile, _, resource = str(r["target"]).partition("\x00")
        out.append(
            {
                "profile": profile,
                "resource": resource,
                "basis": basis,
                "current": r["current"],
                "threshold": r["threshold"],
                "capacity": r["capacity"],
                "slope_per_day": r["slope_per_day"],
                "status": r["status"],
                "days_until": r["days_until"],
                "days_low": r["days_low"],
                "days_high": r["days_high"],
                "eta": r["eta"],
            }
        )
    return out
