"""N+1 failure headroom: if a node fails, do its running guests fit on the others?"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .._errors import InvalidInputError
from ._common import _empty, _f, _guest_flags, _require, _rows
from ._usage import _typed, node_usage

__all__ = ["headroom", "weakest_link"]


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
    nodes: pd.DataFrame,
    guests: pd.DataFrame,
    *,
    max_vcpu_ratio: float = 4.0,
    usage: pd.DataFrame | None = None,
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

    ``usage``: the :func:`node_usage` frame of the same ``nodes`` and ``guests`` (with storage
    or not: only its node, memory, cores and vCPU columns are read) if the caller has it, so an
    analysis does not build it twice.
    """
    if max_vcpu_ratio <= 0:
        raise InvalidInputError(f"max_vcpu_ratio must be positive, got {max_vcpu_ratio!r}")
    if usage is None:
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
