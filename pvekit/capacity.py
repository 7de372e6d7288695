"""Capacity analysis: pure functions from inventory and metrics frames to analysis frames.

Every function here takes the DataFrames that :class:`pvekit.Cluster` and :class:`pvekit.Group`
return (``nodes()``, ``guests()``, ``storage()``, ``backups()``, ``snapshots()``,
``metrics()``, ``summary()``) and returns a new DataFrame; nothing here talks to Proxmox. That
makes each step testable on small hand-built frames and lets users filter before analysing
(``capacity.node_usage(nodes[nodes.profile == "prod"], guests)``).

The steps:

- :func:`node_usage`, :func:`cluster_usage`, :func:`group_usage`: used vs physical CPU, memory
  and storage, allocated vCPUs and memory vs physical (overcommit) for running guests and for
  all guests.
- :func:`storage_pools`: one row per pool with shared storage counted once, and disk
  provisioned on it vs its size (thin provisioning).
- :func:`headroom`: N+1: if a node fails, do its running guests fit on the other online nodes?
  :func:`weakest_link` picks the node whose failure hurts most.
- :func:`forecast`: days until storage pools and node memory reach a threshold, from
  ``rrddata`` with a Theil-Sen trend and its confidence range.
- :func:`rightsizing`: guests far below or pinned at their allocation, stopped guests holding
  disk, templates.
- :func:`hygiene`: guests without a recent backup, old snapshots, locks.
- :func:`findings`: all of the above as one prioritised frame; :func:`analyse` runs every step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InvalidInputError
from ._format import format_bytes

__all__ = [
    "FINDING_COLUMNS",
    "SEVERITIES",
    "Analysis",
    "Thresholds",
    "analyse",
    "cluster_usage",
    "findings",
    "forecast",
    "group_findings",
    "group_usage",
    "headroom",
    "hygiene",
    "node_usage",
    "pool_name",
    "rightsizing",
    "storage_pools",
    "theil_sen",
    "weakest_link",
]

SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
FINDING_COLUMNS: tuple[str, ...] = (
    "severity",
    "profile",
    "category",
    "object",
    "message",
    "metric",
)
GROUP_PROFILE = "(all)"

_GIB = 1024**3
_MIB = 1024**2
_DAY = 86400.0


# --------------------------------------------------------------------------------------------
# small helpers


def _require(df: pd.DataFrame, name: str, columns: Iterable[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInputError(f"{name} frame lacks column(s) {', '.join(missing)}")


def _f(s: pd.Series | Any) -> pd.Series:
    """Float64 view with NaN for anything missing or non-numeric (Int64 NA, None, strings)."""
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _bool(s: pd.Series) -> pd.Series:
    return s.astype("boolean").fillna(False).astype(bool)


def _div(a: pd.Series | float, b: pd.Series | float) -> Any:
    """a / b with NaN (not inf) where b is 0 or missing."""
    if isinstance(b, pd.Series):
        b = b.where(b != 0)
    elif b == 0 or b is None or (isinstance(b, float) and math.isnan(b)):
        return float("nan")
    return a / b


def _int64(s: pd.Series) -> pd.Series:
    return _f(s).round().astype("Int64")


def _finite(value: Any) -> float | None:
    """``value`` as a float for display; None when it is missing, NaN or not a number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _by_metric(m: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """Long metrics rows to one row per ``index`` key, one column per metric (mean of repeats)."""
    return m.pivot_table(
        index=index, columns="metric", values="value", aggfunc="mean", observed=True
    ).reset_index()


def _fmt_bytes(value: Any) -> str:
    """Human bytes through the seed-compatible ``format_bytes``; "-" when missing."""
    v = _finite(value)
    if v is None:
        return "-"
    # format_bytes knows no negative sizes; a shortfall is shown with a sign
    return ("-" if v < 0 else "") + format_bytes(abs(v))


def _pct(value: Any) -> str:
    v = _finite(value)
    return "-" if v is None else f"{v * 100:.0f} %"


def _guest_flags(guests: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(is_template, is_running) as plain bool Series."""
    template = _bool(guests["template"]) if "template" in guests else pd.Series(False, guests.index)
    running = guests["status"].astype("string").fillna("") == "running"
    return template, running & ~template


def _rows(df: pd.DataFrame) -> Iterator[Any]:
    """Rows as namedtuples; typed loosely because cells are of any type."""
    return iter(df.itertuples(index=False))


def pool_name(profile: Any, storage: Any, node: Any = None, *, shared: bool = False) -> str:
    """The one name of a storage pool in every frame, chart, table and finding.

    A shared pool is one pool whichever node reports it: ``profile/storage`` (``prod/ceph-vm``).
    A node's local pool is ``profile/node/storage`` (``prod/pve1/local-lvm``): ``local`` exists
    on every node and VMIDs, node and pool names repeat across clusters.
    """
    if shared or node is None or (not isinstance(node, str) and pd.isna(node)):
        return f"{profile}/{storage}"
    return f"{profile}/{node}/{storage}"


def _empty(columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


# --------------------------------------------------------------------------------------------
# usage and allocation

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
    nodes: pd.DataFrame, guests: pd.DataFrame, storage: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per node: used vs physical, and allocated vs physical (overcommit).

    - ``cpu`` is the node's CPU use (0..1); ``cpu_used`` the same in cores.
    - ``storage_used``/``storage_total`` cover the node's local pools (shared pools belong to
      the cluster, see :func:`cluster_usage`); NA without a storage frame.
    - ``vcpus_*``/``mem_alloc_*``: vCPUs and memory configured on guests placed on the node,
      for running guests and for all guests (templates never run and are left out).
    - ``*_overcommit_*`` = allocated / physical: 2.0 means twice as many vCPUs (or as much
      memory) promised as the node has. NaN where the node does not report its size (offline).
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
    nodes: pd.DataFrame, guests: pd.DataFrame, storage: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per cluster (profile): totals over its online nodes and its pools (shared once).

    Physical capacity counts online nodes only: an offline node's cores and memory are not
    available to run anything. Allocation counts every guest of the cluster. Storage totals
    come from :func:`storage_pools` (counted pools, shared ones once); ``provisioned`` is NA
    unless ``guests`` carries disk details.
    """
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


# --------------------------------------------------------------------------------------------
# N+1 failure headroom

_HEADROOM_COLUMNS: dict[str, str] = {
    "profile": "string",
    "node": "string",
    "online": "bool",
    "guests_running": "Int64",
    "mem_needed": "Int64",
    "mem_free_elsewhere": "Int64",
    "mem_headroom": "Int64",
    "vcpus_needed": "Int64",
    "vcpu_capacity_elsewhere": "Int64",
    "vcpu_headroom": "Int64",
    "largest_guest_vcpus": "Int64",
    "largest_node_cores_elsewhere": "Int64",
    "unplaced": "Int64",
    "mem_fits": "boolean",
    "vcpus_fit": "boolean",
    "fits": "boolean",
    "weakest": "bool",
}


def headroom(
    nodes: pd.DataFrame, guests: pd.DataFrame, *, max_vcpu_ratio: float = 4.0
) -> pd.DataFrame:
    """N+1 failure headroom: if one node fails, do its running guests fit elsewhere?

    For every node, its running guests (memory as configured, ``mem_total``, because HA
    starts them with their full allocation) are placed on the other *online* nodes of the same
    cluster, largest first, each on the node with the most free memory (``mem_total -
    mem_used``) where it fits. ``unplaced`` counts guests that found no room, so fragmentation
    is caught and not only the sum. vCPUs fit when the survivors stay within ``max_vcpu_ratio``
    vCPUs per core and the biggest guest has no more vCPUs than the biggest surviving node has
    cores (Proxmox refuses to start a VM with more vCPUs than the host has CPUs).

    ``mem_headroom`` and ``vcpu_headroom`` are what would be left (negative: the shortfall).
    An offline node is not evaluated (its ``fits`` is NA) and never counts as a survivor.
    A single-node cluster has nowhere to fail over: it fits only with no running guests.
    ``weakest`` marks, per cluster, the node whose failure leaves the least memory headroom
    (a node that does not fit comes first).
    """
    if max_vcpu_ratio <= 0:
        raise InvalidInputError(f"max_vcpu_ratio must be positive, got {max_vcpu_ratio!r}")
    usage = node_usage(nodes, guests)
    g = guests.copy()
    g["profile"] = g["profile"].astype("string")
    g["node"] = g["node"].astype("string")
    _, running = _guest_flags(g)
    g = g[running]
    g_mem = _f(g["mem_total"]).fillna(0)
    g_cores = _f(g["cores"]).fillna(0)
    rows: list[dict[str, Any]] = []
    for profile, grp in usage.groupby("profile", sort=True):
        online = grp[grp["online"]]
        free = {r.node: float(_nz(r.mem_total) - _nz(r.mem_used)) for r in _rows(online)}
        vcap = {
            r.node: float(_nz(r.cores) * max_vcpu_ratio - _nz(r.vcpus_running))
            for r in _rows(online)
        }
        cores = {r.node: float(_nz(r.cores)) for r in _rows(online)}
        for r in _rows(grp):
            mine = (g["profile"] == profile) & (g["node"] == r.node)
            mems = sorted(g_mem[mine].tolist(), reverse=True)
            vcpus = g_cores[mine].tolist()
            row: dict[str, Any] = {
                "profile": profile,
                "node": r.node,
                "online": bool(r.online),
                "guests_running": len(mems),
                "mem_needed": sum(mems),
                "vcpus_needed": sum(vcpus),
                "largest_guest_vcpus": max(vcpus) if vcpus else 0,
            }
            others = [n for n in free if n != r.node]
            if not r.online:
                row.update(
                    mem_free_elsewhere=sum(free.values()),
                    vcpu_capacity_elsewhere=sum(vcap.values()),
                    largest_node_cores_elsewhere=max(cores.values(), default=0),
                    unplaced=pd.NA,
                    mem_fits=pd.NA,
                    vcpus_fit=pd.NA,
                    fits=pd.NA,
                )
            else:
                left = {n: free[n] for n in others}
                unplaced = 0
                for m in mems:
                    target = max(left, key=lambda n: left[n], default=None)
                    if target is None or left[target] < m:
                        unplaced += 1
                    else:
                        left[target] -= m
                free_else = sum(free[n] for n in others)
                vcap_else = sum(vcap[n] for n in others)
                max_cores = max((cores[n] for n in others), default=0.0)
                mem_fits = unplaced == 0
                vcpus_fit = sum(vcpus) <= vcap_else and (not vcpus or max(vcpus) <= max_cores)
                row.update(
                    mem_free_elsewhere=free_else,
                    vcpu_capacity_elsewhere=vcap_else,
                    largest_node_cores_elsewhere=max_cores,
                    unplaced=unplaced,
                    mem_fits=mem_fits,
                    vcpus_fit=vcpus_fit,
                    fits=mem_fits and vcpus_fit,
                )
            rows.append(row)
    if not rows:
        return _empty(_HEADROOM_COLUMNS)
    out = pd.DataFrame(rows)
    out["mem_headroom"] = _f(out["mem_free_elsewhere"]) - _f(out["mem_needed"])
    out["vcpu_headroom"] = _f(out["vcpu_capacity_elsewhere"]) - _f(out["vcpus_needed"])
    out["weakest"] = False
    for _, grp in out[out["online"]].groupby("profile"):
        # The worst failure: one that does not fit, then the least memory left over.
        key = grp["fits"].astype("boolean").fillna(True).astype(int) * 1e30 + _f(
            grp["mem_headroom"]
        )
        out.loc[key.idxmin(), "weakest"] = True
    return _typed(out, _HEADROOM_COLUMNS)


def _nz(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(f) else f


def weakest_link(headroom_frame: pd.DataFrame) -> pd.DataFrame:
    """The ``weakest`` rows of a :func:`headroom` frame: one node per cluster."""
    _require(headroom_frame, "headroom", ["weakest"])
    return headroom_frame[headroom_frame["weakest"]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# forecasts

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


# --------------------------------------------------------------------------------------------
# right-sizing

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


# --------------------------------------------------------------------------------------------
# hygiene

_HYGIENE_COLUMNS: dict[str, str] = {
    "profile": "string",
    "vmid": "Int64",
    "name": "string",
    "node": "string",
    "category": "string",
    "detail": "string",
    "when": "datetime64[ns, UTC]",
    "age_days": "float64",
    "message": "string",
}


def hygiene(
    guests: pd.DataFrame,
    backups: pd.DataFrame | None = None,
    snapshots: pd.DataFrame | None = None,
    *,
    backup_days: float = 7,
    snapshot_days: float = 30,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Housekeeping issues, one row each.

    - ``no backup``: a guest (templates aside) with no backup in ``backups``, or
      ``backup overdue``: its newest is older than ``backup_days``.
      Without a backups frame this check is skipped.
    - ``old snapshot``: a snapshot older than ``snapshot_days`` (``current`` is not a snapshot).
    - ``locked``: a guest with a lock (backup, migrate, snapshot...), often left by a failed task.

    ``now`` defaults to the current time; pass it for reproducible results.
    """
    _require(guests, "guests", ["profile", "vmid", "node"])
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now_ts.tzinfo is None:
        now_ts = now_ts.tz_localize("UTC")
    g = guests.copy()
    g["profile"] = g["profile"].astype("string")
    g["vmid"] = _f(g["vmid"])
    names = {
        (p, v): (n, nd)
        for p, v, n, nd in zip(
            g["profile"],
            g["vmid"],
            g["name"] if "name" in g else [""] * len(g),
            g["node"],
            strict=True,
        )
    }
    rows: list[dict[str, Any]] = []

    def label(p: Any, v: Any) -> str:
        n = names.get((p, v), ("", ""))[0]
        return f"{n} ({int(v)})" if n and not pd.isna(n) else f"guest {int(v)}"

    if backups is not None:
        _require(backups, "backups", ["profile", "vmid", "ctime"])
        b = backups.assign(
            profile=backups["profile"].astype("string"),
            vmid=_f(backups["vmid"]),
            ctime=pd.to_datetime(backups["ctime"], utc=True),
        )
        last = b.groupby(["profile", "vmid"])["ctime"].max().to_dict()
        tmpl, _ = _guest_flags(g)
        # templates are rebuilt from their source, not restored: no backup expected
        for p, v, nd, is_tmpl in zip(g["profile"], g["vmid"], g["node"], tmpl, strict=True):
            if is_tmpl:
                continue
            when = last.get((p, v), pd.NaT)
            if pd.isna(when):
                rows.append(
                    dict(
                        profile=p,
                        vmid=v,
                        node=nd,
                        category="no backup",
                        detail="",
                        when=pd.NaT,
                        age_days=np.nan,
                        message=f"{label(p, v)} has no backup",
                    )
                )
                continue
            age = (now_ts - when).total_seconds() / _DAY
            if age > backup_days:
                rows.append(
                    dict(
                        profile=p,
                        vmid=v,
                        node=nd,
                        category="backup overdue",
                        detail="",
                        when=when,
                        age_days=age,
                        message=f"{label(p, v)}: last backup {age:.0f} days ago",
                    )
                )
    if snapshots is not None:
        _require(snapshots, "snapshots", ["profile", "vmid", "name", "snaptime"])
        s = snapshots[snapshots["name"].astype("string") != "current"]
        for r in _rows(s):
            when = pd.to_datetime(r.snaptime, utc=True)
            if pd.isna(when):
                continue
            age = (now_ts - when).total_seconds() / _DAY
            if age > snapshot_days:
                p, v = str(r.profile), float(r.vmid)
                rows.append(
                    dict(
                        profile=p,
                        vmid=v,
                        node=getattr(r, "node", pd.NA),
                        category="old snapshot",
                        detail=str(r.name),
                        when=when,
                        age_days=age,
                        message=f"{label(p, v)}: snapshot '{r.name}' is {age:.0f} days old",
                    )
                )
    if "lock" in g:
        for p, v, nd, lock in zip(g["profile"], g["vmid"], g["node"], g["lock"], strict=True):
            if isinstance(lock, str) and lock:
                rows.append(
                    dict(
                        profile=p,
                        vmid=v,
                        node=nd,
                        category="locked",
                        detail=lock,
                        when=pd.NaT,
                        age_days=np.nan,
                        message=f"{label(p, v)} is locked ({lock})",
                    )
                )
    if not rows:
        return _empty(_HYGIENE_COLUMNS)
    out = pd.DataFrame(rows)
    out["name"] = [
        names.get((p, v), ("", ""))[0] for p, v in zip(out.profile, out.vmid, strict=True)
    ]
    out["when"] = pd.to_datetime(out["when"], utc=True)
    return _typed(out, _HYGIENE_COLUMNS)


# --------------------------------------------------------------------------------------------
# findings


@dataclass(frozen=True)
class Thresholds:
    """Levels that turn numbers into findings (fractions 0..1 unless said otherwise)."""

    warn_fraction: float = 0.8
    critical_fraction: float = 0.9
    cpu_overcommit: float = 4.0  # running vCPUs per core before it is worth a warning
    mem_overcommit: float = 1.0  # running guests' memory vs physical
    provisioned_ratio: float = 1.0  # thin disks could outgrow the pool
    forecast_critical_days: float = 30
    forecast_warning_days: float = 90


def findings(
    *,
    node_usage: pd.DataFrame | None = None,
    storage_pools: pd.DataFrame | None = None,
    headroom: pd.DataFrame | None = None,
    forecast: pd.DataFrame | None = None,
    rightsizing: pd.DataFrame | None = None,
    hygiene: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    thresholds: Thresholds | None = None,
) -> pd.DataFrame:
    """One prioritised frame of findings from the analysis frames given.

    Columns: severity (ordered category critical > warning > info), profile, category,
    object, message, metric (the number behind the finding), unit (what metric measures:
    ``fraction``, ``ratio``, ``days``, ``bytes`` or empty) and kind (what exactly was found
    within the category: ``no backup``, ``cpu oversized``, ``memory usage``...; findings of
    one kind in one cluster are what :func:`group_findings` folds into one row).
    Sorted by severity, then cluster and object.
    """
    th = thresholds or Thresholds()
    rows: list[dict[str, Any]] = []

    def add(
        sev: str, profile: Any, cat: str, obj: Any, msg: str, metric: Any, kind: str = ""
    ) -> None:
        rows.append(
            dict(
                severity=sev,
                profile=profile,
                category=cat,
                object=obj,
                message=msg,
                metric=metric,
                unit=_unit(cat, msg),
                kind=kind or _kind(cat, msg),
            )
        )

    def level(frac: float) -> str | None:
        if frac >= th.critical_fraction:
            return "critical"
        if frac >= th.warn_fraction:
            return "warning"
        return None

    if summary is not None and len(summary) and "quorate" in summary:
        for r in _rows(summary):
            q = r.quorate
            if q is not None and not pd.isna(q) and not bool(q):
                add(
                    "critical",
                    r.profile,
                    "cluster",
                    r.profile,
                    f"cluster {r.profile} has lost quorum",
                    0.0,
                )
    if node_usage is not None:
        for r in _rows(node_usage):
            obj = f"node {r.node}"
            if not r.online:
                add("critical", r.profile, "node", obj, f"node {r.node} is offline", np.nan)
                continue
            for what, frac in (
                ("memory", r.mem_fraction),
                ("CPU", r.cpu),
                ("local storage", r.storage_fraction),
            ):
                if pd.notna(frac) and (sev := level(float(frac))):
                    add(
                        sev,
                        r.profile,
                        "usage",
                        obj,
                        f"node {r.node} {what} at {_pct(frac)}",
                        float(frac),
                    )
            oc = r.cpu_overcommit_running
            if pd.notna(oc) and oc > th.cpu_overcommit:
                add(
                    "warning",
                    r.profile,
                    "overcommit",
                    obj,
                    f"node {r.node} runs {oc:.1f} vCPUs per core",
                    float(oc),
                )
            om = r.mem_overcommit_running
            if pd.notna(om) and om > th.mem_overcommit:
                add(
                    "warning",
                    r.profile,
                    "overcommit",
                    obj,
                    f"node {r.node}: running guests are promised {_pct(om)} of its memory",
                    float(om),
                )
            elif pd.notna(r.mem_overcommit_all) and r.mem_overcommit_all > th.mem_overcommit:
                add(
                    "info",
                    r.profile,
                    "overcommit",
                    obj,
                    f"node {r.node}: all its guests together are promised "
                    f"{_pct(r.mem_overcommit_all)} of its memory",
                    float(r.mem_overcommit_all),
                )
    if storage_pools is not None:
        for r in _rows(storage_pools[storage_pools["counted"]]):
            obj = f"storage {r.pool}"
            if pd.notna(r.used_fraction) and (sev := level(float(r.used_fraction))):
                add(
                    sev,
                    r.profile,
                    "storage",
                    obj,
                    f"storage {r.pool} is {_pct(r.used_fraction)} full "
                    f"({_fmt_bytes(r.avail)} free)",
                    float(r.used_fraction),
                )
            pr = r.provisioned_ratio
            if pd.notna(pr) and pr > th.provisioned_ratio:
                add(
                    "warning",
                    r.profile,
                    "thin provisioning",
                    obj,
                    f"storage {r.pool}: {_fmt_bytes(r.provisioned)} of disks provisioned on "
                    f"{_fmt_bytes(r.total)} ({pr:.2f}x)",
                    float(pr),
                )
    if headroom is not None:
        for r in _rows(headroom[headroom["online"]]):
            if pd.isna(r.fits) or bool(r.fits):
                continue
            reasons = []
            if not bool(r.mem_fits):
                reasons.append(
                    f"{_fmt_bytes(r.mem_needed)} of guest memory vs "
                    f"{_fmt_bytes(r.mem_free_elsewhere)} free elsewhere"
                    + (f", {r.unplaced} guest(s) without room" if r.unplaced else "")
                )
            if not bool(r.vcpus_fit):
                reasons.append(
                    f"{r.vcpus_needed} vCPUs vs room for "
                    f"{max(0, int(_nz(r.vcpu_capacity_elsewhere)))}"
                )
            alone = int(headroom[headroom["profile"] == r.profile]["online"].sum()) == 1
            if alone:
                # a single-node cluster is a design choice, not a surprise: warn, explain
                add(
                    "warning",
                    r.profile,
                    "failover",
                    f"node {r.node}",
                    f"{r.profile} has a single online node: if {r.node} fails, its "
                    f"{r.guests_running} running guest(s) have nowhere to restart",
                    float(_nz(r.mem_headroom)),
                )
                continue
            add(
                "critical",
                r.profile,
                "failover",
                f"node {r.node}",
                f"if node {r.node} fails its running guests do not fit: " + "; ".join(reasons),
                float(_nz(r.mem_headroom)),
            )
        online = headroom[headroom["online"]].groupby("profile")["node"].count()
        for r in _rows(headroom[headroom["weakest"]]):
            if pd.isna(r.fits) or not bool(r.fits) or online.get(r.profile, 0) < 2:
                continue  # a single node is no "link" in a chain
            add(
                "info",
                r.profile,
                "failover",
                f"node {r.node}",
                f"weakest link: if node {r.node} fails, {_fmt_bytes(r.mem_headroom)} "
                "memory is left on the others",
                float(_nz(r.mem_headroom)),
            )
    if forecast is not None:
        for r in _rows(forecast):
            pool = _forecast_pool(r)
            what = f"node {r.target} memory" if r.kind == "node" else f"storage {pool}"
            obj = f"node {r.target}" if r.kind == "node" else f"storage {pool}"
            if r.status == "above threshold":
                continue  # usage findings already say so
            if r.status != "growing" or pd.isna(r.days_until):
                continue
            days = float(r.days_until)
            sev = (
                "critical"
                if days <= th.forecast_critical_days
                else "warning"
                if days <= th.forecast_warning_days
                else None
            )
            if sev:
                add(
                    sev,
                    r.profile,
                    "forecast",
                    obj,
                    f"{what} reaches {_pct(r.threshold)} in about {days:.0f} days"
                    + _range(r.days_low, r.days_high),
                    days,
                )
    if rightsizing is not None:
        sev_of = {"cpu pinned": "warning", "memory pinned": "warning"}
        tmpl = rightsizing[rightsizing["category"] == "template"]
        for r in _rows(rightsizing[rightsizing["category"] != "template"]):
            metric = (
                r.cpu_peak
                if r.category == "cpu oversized"
                else r.mem_peak
                if r.category == "memory oversized"
                else r.cpu_median
                if r.category == "cpu pinned"
                else r.mem_median
                if r.category == "memory pinned"
                else r.disk_total
            )
            add(
                sev_of.get(r.category, "info"),
                r.profile,
                "right-sizing",
                f"guest {r.vmid}",
                r.message,
                float(_nz(metric)),
                kind=str(r.category),
            )
        for profile, grp in tmpl.groupby("profile"):
            disk = _f(grp["disk_total"]).sum()
            add(
                "info",
                profile,
                "right-sizing",
                f"{len(grp)} templates",
                f"{len(grp)} template(s) hold {_fmt_bytes(disk)} of disk",
                float(disk),
                kind="templates",
            )
    if hygiene is not None:
        sev_h = {
            "no backup": "warning",
            "backup overdue": "warning",
            "locked": "warning",
            "old snapshot": "info",
        }
        for r in _rows(hygiene):
            add(
                sev_h.get(r.category, "info"),
                r.profile,
                "hygiene",
                f"guest {r.vmid}",
                r.message,
                float(r.age_days) if pd.notna(r.age_days) else np.nan,
                kind=str(r.category),
            )
    out = pd.DataFrame(rows, columns=[*FINDING_COLUMNS, "unit", "kind"])
    out["severity"] = pd.Categorical(out["severity"], categories=list(SEVERITIES), ordered=True)
    for c in ("profile", "category", "object", "message", "unit", "kind"):
        out[c] = out[c].astype("string")
    out["metric"] = _f(out["metric"])
    out = out.sort_values(["severity", "profile", "category", "object"], kind="stable")
    return out.reset_index(drop=True)


def _kind(category: str, message: str) -> str:
    """What a finding is within its category, for findings that do not name it."""
    if category == "usage":
        for what in ("memory", "CPU", "local storage"):
            if f" {what} at " in message:
                return f"{what} usage"
    if category == "overcommit":
        if "vCPUs per core" in message:
            return "vCPU overcommit"
        all_guests = "all its guests" in message
        return "memory overcommit (all guests)" if all_guests else "memory overcommit"
    if category == "failover":
        if message.startswith("weakest link"):
            return "weakest link"
        return "single node" if "single online node" in message else "does not fit"
    return {"node": "node offline", "cluster": "quorum lost", "storage": "storage full"}.get(
        category, category
    )


# how a group of findings of one kind reads ({n}: how many, {obj}: "9 guests", {total}: bytes)
_GROUP_MESSAGES: dict[str, str] = {
    "no backup": "{obj} have no backup",
    "backup overdue": "{obj} have no recent backup",
    "locked": "{obj} are locked (a lock often outlives a failed task)",
    "old snapshot": "{obj} keep old snapshots",
    "cpu oversized": "{obj} use a small share of their vCPUs",
    "memory oversized": "{obj} use a small share of their memory",
    "cpu pinned": "{obj} run at their CPU limit",
    "memory pinned": "{obj} run at their memory limit",
    "stopped with disk": "{n} stopped guests hold {total} of disk",
}


_GROUP_COLUMNS: dict[str, str] = {
    "severity": "category",
    "profile": "string",
    "category": "string",
    "kind": "string",
    "count": "int64",
    "object": "string",
    "message": "string",
    "metric": "float64",
    "unit": "string",
    "items": "object",
}


def group_findings(findings_frame: pd.DataFrame, min_count: int = 2) -> pd.DataFrame:
    """Fold repeated findings: one row per (severity, cluster, category, kind) that occurs at
    least ``min_count`` times, so the critical and the few distinct findings are read first.

    Columns: severity, profile, category, kind, count, object (``"9 guests"``), message
    (``"no backup: 9 guests"``), metric (bytes are added up; forecast days give the soonest,
    anything else the highest), unit, and items: the findings behind the row (a frame with
    object, message, metric and unit; one row for a finding that stands alone). Sorted by
    severity, single findings before groups, then cluster, category and object.
    """
    _require(findings_frame, "findings", [*FINDING_COLUMNS, "unit"])
    if min_count < 2:
        raise InvalidInputError(f"min_count must be at least 2, got {min_count!r}")
    f = findings_frame.copy()
    if "kind" not in f:
        pairs = zip(f["category"], f["message"], strict=True)
        f["kind"] = [_kind(str(c), str(m)) for c, m in pairs]
    item_cols = ["object", "message", "metric", "unit"]
    rows: list[dict[str, Any]] = []
    keys = ["severity", "profile", "category", "kind"]
    for key, grp in f.groupby(keys, sort=False, observed=True, dropna=False):
        sev, profile, category, kind = key
        items = grp[item_cols].reset_index(drop=True)
        if len(grp) < min_count:
            for i in range(len(grp)):
                r = grp.iloc[i]
                rows.append(
                    {
                        **{c: r[c] for c in (*keys, *item_cols)},
                        "count": 1,
                        "items": items.iloc[i : i + 1].reset_index(drop=True),
                    }
                )
            continue
        words = {str(o).split(" ", 1)[0] for o in grp["object"]}
        noun = words.pop() if len(words) == 1 else "finding"
        obj = f"{len(grp)} {noun}{'' if noun.endswith('s') else 's'}"
        metric = _f(grp["metric"])
        unit = str(grp["unit"].iloc[0]) if grp["unit"].nunique() == 1 else ""
        value = (
            metric.sum(min_count=1)
            if unit == "bytes" and kind != "weakest link"
            else metric.min()
            if category == "forecast"
            else metric.max()
        )
        rows.append(
            {
                "severity": sev,
                "profile": profile,
                "category": category,
                "kind": kind,
                "count": len(grp),
                "object": obj,
                "message": _GROUP_MESSAGES.get(str(kind), "{kind}: {obj}").format(
                    n=len(grp), obj=obj, kind=kind, total=_fmt_bytes(metric.sum())
                ),
                "metric": value,
                "unit": unit,
                "items": items,
            }
        )
    if not rows:
        return _empty(_GROUP_COLUMNS)
    out = pd.DataFrame(rows)
    items_col = out["items"]
    out = _typed(out.drop(columns="items").assign(items=None), _GROUP_COLUMNS)
    out["items"] = list(items_col)
    out["severity"] = pd.Categorical(
        out["severity"].astype(str), categories=list(SEVERITIES), ordered=True
    )
    out["_single"] = out["count"] > 1
    out = out.sort_values(["severity", "_single", "profile", "category", "object"], kind="stable")
    return out.drop(columns="_single").reset_index(drop=True)


def _forecast_pool(r: Any) -> str:
    """The pool name of a storage forecast row (frames from before ``pool`` existed: from
    ``target``, which is ``node/storage``)."""
    pool = getattr(r, "pool", None)
    if isinstance(pool, str) and pool:
        return pool
    node, _, name = str(r.target).rpartition("/")
    return pool_name(r.profile, name, node or None)


def _unit(category: str, message: str) -> str:
    """What a finding's metric measures, so it can be shown right (see :func:`findings`)."""
    if category in ("usage", "storage"):
        return "fraction"
    if category == "overcommit":
        return "ratio" if "vCPUs per core" in message else "fraction"
    if category == "thin provisioning":
        return "ratio"
    if category == "failover":
        return "bytes"
    if category in ("forecast", "hygiene"):
        return "days"
    if category == "right-sizing":
        return (
            "fraction"
            if any(w in message for w in (" peaks at ", " runs at ", " uses "))
            else "bytes"
        )
    return ""


def _range(low: Any, high: Any) -> str:
    """ " (5-12 days)" for a forecast's confidence range; empty when it rounds to one value."""
    lo, hi = float(low), float(high)
    if math.isinf(hi):
        return f" (from {lo:.0f} days; at the slowest rate, never)"
    if round(lo) == round(hi):
        return ""
    return f" ({lo:.0f}-{hi:.0f} days)"


# --------------------------------------------------------------------------------------------
# everything at once


@dataclass
class Analysis:
    """Every analysis frame of one cluster or group, as :func:`analyse` builds them."""

    node_usage: pd.DataFrame
    cluster_usage: pd.DataFrame
    group_usage: pd.DataFrame
    storage_pools: pd.DataFrame
    headroom: pd.DataFrame
    forecast: pd.DataFrame
    rightsizing: pd.DataFrame
    hygiene: pd.DataFrame
    findings: pd.DataFrame
    thresholds: Thresholds = field(default_factory=Thresholds)


def analyse(
    nodes: pd.DataFrame,
    guests: pd.DataFrame,
    storage: pd.DataFrame,
    *,
    backups: pd.DataFrame | None = None,
    snapshots: pd.DataFrame | None = None,
    metrics: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    threshold: float = 0.9,
    backup_days: float = 7,
    snapshot_days: float = 30,
    max_vcpu_ratio: float = 4.0,
    now: pd.Timestamp | None = None,
    thresholds: Thresholds | None = None,
) -> Analysis:
    """Run every analysis step on the inventory frames and return them all.

    ``metrics`` may hold node, storage and guest rows together (concatenate several
    ``metrics()`` calls); node and storage rows drive :func:`forecast`, guest rows
    :func:`rightsizing`.
    """
    th = thresholds or Thresholds(critical_fraction=threshold)
    nu = node_usage(nodes, guests, storage)
    cu = cluster_usage(nodes, guests, storage)
    gu = group_usage(cu)
    sp = storage_pools(storage, guests)
    hr = headroom(nodes, guests, max_vcpu_ratio=max_vcpu_ratio)
    fc = (
        forecast(metrics, threshold=threshold, storage=storage)
        if metrics is not None and len(metrics)
        else _empty(_FORECAST_COLUMNS)
    )
    rs = rightsizing(guests, metrics)
    hy = hygiene(
        guests, backups, snapshots, backup_days=backup_days, snapshot_days=snapshot_days, now=now
    )
    fi = findings(
        node_usage=nu,
        storage_pools=sp,
        headroom=hr,
        forecast=fc,
        rightsizing=rs,
        hygiene=hy,
        summary=summary,
        thresholds=th,
    )
    return Analysis(nu, cu, gu, sp, hr, fc, rs, hy, fi, th)


# --------------------------------------------------------------------------------------------
# growth of allocation over a history of snapshots (pvekit.history): its own module

from ._growth import (  # noqa: E402
    GROWTH_COLUMNS,
    allocation,
    growth,
    growth_trend,
    guest_changes,
)

__all__ += ["GROWTH_COLUMNS", "allocation", "growth", "growth_trend", "guest_changes"]
