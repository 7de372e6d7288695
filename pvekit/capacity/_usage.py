"""Usage and allocation: nodes, clusters, a group, storage pools (shared storage counted once)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._common import (
    GROUP_PROFILE,
    _bool,
    _div,
    _empty,
    _f,
    _guest_flags,
    _int64,
    _require,
    _rows,
    pool_name,
)

__all__ = ["cluster_usage", "group_usage", "node_usage", "storage_pools"]


_NODE_USAGE_COLUMNS: dict[str, str] = {
    "profile": "string",
    "node": "string",
    "online": "bool",
    "cores": "Int64",
    "cpu": "float64",
    "cpu_used": "float64",
    "mem_used": "Int64",
    "mem_total": "Int64",
    "mem_fraction": "float64",
    "storage_used": "Int64",
    "storage_total": "Int64",
    "storage_fraction": "float64",
    "guests_running": "Int64",
    "guests_total": "Int64",
    "vcpus_running": "Int64",
    "vcpus_all": "Int64",
    "mem_alloc_running": "Int64",
    "mem_alloc_all": "Int64",
    "cpu_overcommit_running": "float64",
    "cpu_overcommit_all": "float64",
    "mem_overcommit_running": "float64",
    "mem_overcommit_all": "float64",
}


# What _allocations counts per key; zero, not missing, where a node or cluster has no guests.
_ALLOC: tuple[str, ...] = (
    "guests_running",
    "guests_total",
    "vcpus_running",
    "vcpus_all",
    "mem_alloc_running",
    "mem_alloc_all",
)


def _allocations(guests: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per key: running/all guest counts, vCPUs and memory allocated (templates excluded)."""
    template, running = _guest_flags(guests)
    g = guests.loc[~template, keys].copy()
    g["_run"] = running[~template].astype(int)
    g["_one"] = 1
    g["_cores"] = _f(guests.loc[~template, "cores"]).fillna(0)
    g["_mem"] = _f(guests.loc[~template, "mem_total"]).fillna(0)
    g["_cores_run"] = g["_cores"] * g["_run"]
    g["_mem_run"] = g["_mem"] * g["_run"]
    out = g.groupby(keys, observed=True, dropna=False)[
        ["_run", "_one", "_cores_run", "_cores", "_mem_run", "_mem"]
    ].sum()
    out.columns = list(_ALLOC)
    return out.reset_index()


def storage_pools(storage: pd.DataFrame, guests: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per storage pool, shared storage counted once, with thin-provisioning figures.

    Proxmox lists a shared storage once per node; here it becomes one row with ``node`` NA and
    ``nodes`` the number of nodes that see it. ``counted`` is False for pools that are inactive,
    disabled or in status ``unknown`` (left out of totals, as Proxmox's own summary does).

    With ``guests`` from ``guests(details=True)`` (a ``disks`` column of dicts with ``storage``
    and ``size``), ``provisioned`` is the disk size promised to guests on the pool and
    ``provisioned_ratio`` = provisioned / total (above 1 means overprovisioned: thin disks could
    outgrow the pool). Without disk details they are NA.

    Columns: profile, pool, node, storage, type, shared, nodes, counted, used, total, avail,
    used_fraction, guest_disks, provisioned, provisioned_ratio.
    """
    _require(storage, "storage", ["profile", "node", "storage", "shared", "used", "total"])
    s = storage.copy()
    s["shared"] = _bool(s["shared"])
    active = _bool(s["active"]) if "active" in s else pd.Series(True, s.index)
    enabled = (
        s["enabled"].astype("boolean").fillna(True).astype(bool)
        if "enabled" in s
        else pd.Series(True, s.index)
    )
    status = s["status"].astype("string").fillna("") if "status" in s else pd.Series("", s.index)
    s["_ok"] = active & enabled & (status != "unknown") & (_f(s["total"]).fillna(0) > 0)
    s["_used"] = _f(s["used"])
    s["_total"] = _f(s["total"])
    s["_avail"] = _f(s["avail"]) if "avail" in s else s["_total"] - s["_used"]
    s["_type"] = s["type"].astype("string") if "type" in s else pd.Series(pd.NA, s.index)
    s["node"] = s["node"].astype("string")
    s["storage"] = s["storage"].astype("string")
    s["profile"] = s["profile"].astype("string")
    # Shared pools: prefer a row that is usable (any node's view of a shared pool is the same).
    s = s.sort_values("_ok", ascending=False, kind="stable")
    rows: list[dict[str, Any]] = []
    shared = s[s["shared"]]
    for (profile, name), grp in shared.groupby(["profile", "storage"], sort=True):
        first = grp.iloc[0]
        rows.append(
            {
                "profile": profile,
                "pool": pool_name(profile, name, shared=True),
                "node": pd.NA,
                "storage": name,
                "type": first["_type"],
                "shared": True,
                "nodes": int(grp["node"].nunique()),
                "counted": bool(first["_ok"]),
                "used": first["_used"],
                "total": first["_total"],
                "avail": first["_avail"],
            }
        )
    for _, r in s[~s["shared"]].sort_values(["profile", "node", "storage"]).iterrows():
        rows.append(
            {
                "profile": r["profile"],
                "pool": pool_name(r["profile"], r["storage"], r["node"]),
                "node": r["node"],
                "storage": r["storage"],
                "type": r["_type"],
                "shared": False,
                "nodes": 1,
                "counted": bool(r["_ok"]),
                "used": r["_used"],
                "total": r["_total"],
                "avail": r["_avail"],
            }
        )
    cols = {
        "profile": "string",
        "pool": "string",
        "node": "string",
        "storage": "string",
        "type": "string",
        "shared": "bool",
        "nodes": "int64",
        "counted": "bool",
        "used": "Int64",
        "total": "Int64",
        "avail": "Int64",
        "used_fraction": "float64",
        "guest_disks": "Int64",
        "provisioned": "Int64",
        "provisioned_ratio": "float64",
    }
    if not rows:
        return _empty(cols)
    out = pd.DataFrame(rows)
    out["used_fraction"] = _div(_f(out["used"]), _f(out["total"]))
    out["guest_disks"] = pd.NA
    out["provisioned"] = pd.NA
    if guests is not None and "disks" in guests.columns and len(guests):
        prov: dict[str, float] = {}
        count: dict[str, int] = {}
        shared_keys = {(r.profile, r.storage) for r in _rows(out) if r.shared}
        for g in guests[["profile", "node", "disks"]].itertuples(index=False):
            disks: list[Any] = g.disks if isinstance(g.disks, list) else []
            for d in disks:
                if not isinstance(d, Mapping):
                    continue
                name, size = d.get("storage"), d.get("size")
                try:
                    size_f = float(size) if size is not None else float("nan")
                except (TypeError, ValueError):
                    size_f = float("nan")
                if not name or math.isnan(size_f) or size_f <= 0:
                    continue  # CD-ROMs, passthrough and "none" carry no size on a pool
                key = pool_name(g.profile, name, g.node, shared=(g.profile, name) in shared_keys)
                prov[key] = prov.get(key, 0.0) + size_f
                count[key] = count.get(key, 0) + 1
        out["provisioned"] = out["pool"].map(lambda k: prov.get(k, 0.0))
        out["guest_disks"] = out["pool"].map(lambda k: count.get(k, 0))
    out["provisioned_ratio"] = _div(_f(out["provisioned"]), _f(out["total"]))
    return _typed(out, cols)


def node_usage(
    nodes: pd.DataFrame,
    guests: pd.DataFrame,
    storage: pd.DataFrame | None = None,
    *,
    pools: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per node: used vs physical, and allocated vs physical (overcommit).

    - ``cpu`` is the node's CPU use (0..1); ``cpu_used`` the same in cores.
    - ``storage_used``/``storage_total`` cover the node's local pools (shared pools belong to
      the cluster, see :func:`cluster_usage`); NA without a storage frame.
    - ``vcpus_*``/``mem_alloc_*``: vCPUs and memory configured on guests placed on the node,
      for running guests and for all guests (templates never run and are left out).
    - ``*_overcommit_*`` = allocated / physical: 2.0 means twice as many vCPUs (or as much
      memory) promised as the node has. NaN where the node does not report its size (offline).

    ``pools``: the :func:`storage_pools` frame of ``storage`` if the caller has it already
    (with or without guests: only its per-node used/total figures are read here), so an
    analysis that needs both builds it once.
    """
    _require(nodes, "nodes", ["profile", "node", "cores", "mem_used", "mem_total"])
    _require(guests, "guests", ["profile", "node", "status", "cores", "mem_total"])
    n = nodes.copy()
    n["profile"] = n["profile"].astype("string")
    n["node"] = n["node"].astype("string")
    if "online" in n:
        n["online"] = _bool(n["online"])
    else:
        n["online"] = n["status"].astype("string").fillna("") == "online"
    g = guests.copy()
    g["profile"] = g["profile"].astype("string")
    g["node"] = g["node"].astype("string")
    alloc = _allocations(g, ["profile", "node"])
    out = n[["profile", "node", "online"]].merge(alloc, on=["profile", "node"], how="left")
    out["cores"] = _f(n["cores"]).to_numpy()
    out["cpu"] = _f(n["cpu"]).to_numpy() if "cpu" in n else np.nan
    out["cpu_used"] = out["cpu"] * out["cores"]
    out["mem_used"] = _f(n["mem_used"]).to_numpy()
    out["mem_total"] = _f(n["mem_total"]).to_numpy()
    out["mem_fraction"] = _div(out["mem_used"], out["mem_total"])
    if storage is not None and len(storage):
        if pools is None:
            pools = storage_pools(storage)
        local = pools[~pools["shared"] & pools["counted"]]
        agg = local.groupby(["profile", "node"])[["used", "total"]].sum().reset_index()
        agg.columns = ["profile", "node", "storage_used", "storage_total"]
        out = out.merge(agg, on=["profile", "node"], how="left")
    else:
        out["storage_used"] = np.nan
        out["storage_total"] = np.nan
    out["storage_fraction"] = _div(_f(out["storage_used"]), _f(out["storage_total"]))
    for c in _ALLOC:
        out[c] = _f(out[c]).fillna(0)
    _overcommit(out)
    return _typed(out, _NODE_USAGE_COLUMNS)


def _overcommit(out: pd.DataFrame) -> None:
    """Add the vCPU-per-core and memory-promised ratios, of running and of all guests."""
    out["cpu_overcommit_running"] = _div(out["vcpus_running"], out["cores"])
    out["cpu_overcommit_all"] = _div(out["vcpus_all"], out["cores"])
    out["mem_overcommit_running"] = _div(out["mem_alloc_running"], out["mem_total"])
    out["mem_overcommit_all"] = _div(out["mem_alloc_all"], out["mem_total"])


def _typed(df: pd.DataFrame, cols: Mapping[str, str]) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for c, t in cols.items():
        if t == "Int64":
            out[c] = _int64(df[c])
        elif t == "float64":
            out[c] = _f(df[c])
        else:
            out[c] = df[c].astype(t)  # type: ignore[call-overload]  # dtype names from a table
    return out.reset_index(drop=True)


_CLUSTER_USAGE_COLUMNS: dict[str, str] = {
    "profile": "string",
    "nodes_online": "Int64",
    "nodes_total": "Int64",
    "cores": "Int64",
    "cpu": "float64",
    "cpu_used": "float64",
    "mem_used": "Int64",
    "mem_total": "Int64",
    "mem_fraction": "float64",
    "storage_used": "Int64",
    "storage_total": "Int64",
    "storage_fraction": "float64",
    "provisioned": "Int64",
    "provisioned_ratio": "float64",
    "guests_running": "Int64",
    "guests_total": "Int64",
    "vcpus_running": "Int64",
    "vcpus_all": "Int64",
    "mem_alloc_running": "Int64",
    "mem_alloc_all": "Int64",
    "cpu_overcommit_running": "float64",
    "cpu_overcommit_all": "float64",
    "mem_overcommit_running": "float64",
    "mem_overcommit_all": "float64",
}


# Columns of cluster_usage that add up across clusters; the ratios are derived from them.
_ADDITIVE: tuple[str, ...] = (
    "nodes_online",
    "nodes_total",
    "cores",
    "cpu_used",
    "mem_used",
    "mem_total",
    "storage_used",
    "storage_total",
    "provisioned",
    *_ALLOC,
)


def _finish_totals(out: pd.DataFrame) -> pd.DataFrame:
    out["cpu"] = _div(out["cpu_used"], out["cores"])
    out["mem_fraction"] = _div(out["mem_used"], out["mem_total"])
    out["storage_fraction"] = _div(out["storage_used"], out["storage_total"])
    out["provisioned_ratio"] = _div(out["provisioned"], out["storage_total"])
    _overcommit(out)
    return _typed(out, _CLUSTER_USAGE_COLUMNS)


def cluster_usage(
    nodes: pd.DataFrame,
    guests: pd.DataFrame,
    storage: pd.DataFrame | None = None,
    *,
    usage: pd.DataFrame | None = None,
    pools: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per cluster (profile): totals over its online nodes and its pools (shared once).

    Physical capacity counts online nodes only: an offline node's cores and memory are not
    available to run anything. Allocation counts every guest of the cluster. Storage totals
    come from :func:`storage_pools` (counted pools, shared ones once); ``provisioned`` is NA
    unless ``guests`` carries disk details.

    ``usage`` (the :func:`node_usage` frame of the same nodes and guests, storage or not) and
    ``pools`` (``storage_pools(storage, guests)``) skip recomputing what the caller has.
    """
    if usage is None:
        usage = node_usage(nodes, guests, None)
    on = usage[usage["online"]]
    caps = on.groupby("profile")[["cores", "cpu_used", "mem_used", "mem_total"]].sum(min_count=1)
    counts = usage.groupby("profile").agg(
        nodes_online=("online", "sum"),
        nodes_total=("node", "count"),
    )
    g = guests.copy()
    g["profile"] = g["profile"].astype("string")
    alloc = _allocations(g, ["profile"]).set_index("profile")
    out = counts.join(caps, how="outer").join(alloc, how="outer")
    if storage is not None and len(storage):
        if pools is None:
            pools = storage_pools(storage, guests)
        counted = pools[pools["counted"]]
        st = counted.groupby("profile").agg(
            storage_used=("used", "sum"),
            storage_total=("total", "sum"),
            provisioned=("provisioned", lambda s: s.sum(min_count=1) if s.notna().any() else pd.NA),
        )
        out = out.join(st, how="left")
    for c in ("storage_used", "storage_total", "provisioned"):
        if c not in out:
            out[c] = np.nan
    for c in ("nodes_online", "nodes_total", *_ALLOC):
        out[c] = _f(out[c]).fillna(0)
    for c in (
        "cores",
        "cpu_used",
        "mem_used",
        "mem_total",
        "storage_used",
        "storage_total",
        "provisioned",
    ):
        out[c] = _f(out[c])
    out = out.reset_index().rename(columns={"index": "profile"})
    return _finish_totals(out)


def group_usage(cluster: pd.DataFrame) -> pd.DataFrame:
    """One row totalling a :func:`cluster_usage` frame over all its clusters.

    ``profile`` is ``"(all)"``; ratios are recomputed from the sums (not averaged).
    """
    _require(cluster, "cluster usage", list(_ADDITIVE))
    sums: dict[str, Any] = {"profile": GROUP_PROFILE}
    for c in _ADDITIVE:
        sums[c] = _f(cluster[c]).sum(min_count=1)
    out = pd.DataFrame([sums])
    for c in _CLUSTER_USAGE_COLUMNS:
        if c not in out:
            out[c] = np.nan
    return _finish_totals(out)
