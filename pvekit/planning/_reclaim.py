"""Reclaimable capacity: what could be given back, by kind, with the evidence for each row."""

from __future__ import annotations

import math
from typing import Any, cast

import pandas as pd

from .. import capacity
from .._errors import InvalidInputError
from .._format import format_bytes
from ..capacity._rightsizing import _guest_stats
from ._common import build
from ._model import records

__all__ = ["RECLAIM_COLUMNS", "RECLAIM_KINDS", "reclaimable"]

RECLAIM_KINDS: tuple[str, ...] = (
    "oversized cpu",
    "oversized memory",
    "idle guest",
    "long stopped",
    "old snapshot",
    "backup beyond retention",
    "unused disk",
    "orphaned disk",
    "unused template",
)
RECLAIM_COLUMNS: dict[str, str] = {
    "profile": "string",
    "kind": "string",
    "vmid": "Int64",
    "name": "string",
    "node": "string",
    "storage": "string",
    "volid": "string",
    "bytes": "Int64",  # disk space given back (NA: Proxmox does not say, e.g. snapshots)
    "memory": "Int64",  # memory given back
    "vcpus": "Int64",  # vCPUs given back
    "age_days": "float64",
    "evidence": "string",
}

_DAY = 86400.0


def _size(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def _vmid(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _disks_bytes(disks: Any) -> tuple[float, list[str]]:
    total, storages = 0.0, []
    if isinstance(disks, list):
        for d in disks:
            if d.get("media") == "cdrom" or not d.get("storage"):
                continue
            total += _size(d.get("size")) if not math.isnan(_size(d.get("size"))) else 0.0
            storages.append(str(d["storage"]))
    return total, sorted(set(storages))


def reclaimable(
    source: Any,
    *,
    stopped_days: float = 30,
    snapshot_days: float = 30,
    keep_backups: int = 7,
    idle_cpu: float = 0.02,
    low: float = 0.2,
    now: pd.Timestamp | None = None,
    rightsizing: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One frame of what could be given back (columns :data:`RECLAIM_COLUMNS`), by ``kind``:

    - ``oversized cpu`` / ``oversized memory``: running guests whose peak stays below ``low``
      of their allocation, from :func:`pvekit.capacity.rightsizing` (vCPUs or memory above
      the suggested size; guests judged on current values only say so in the evidence).
    - ``idle guest``: running guests whose CPU peak over the metrics period stays below
      ``idle_cpu`` (needs guest metrics): all their vCPUs and memory.
    - ``long stopped``: stopped guests (not templates) with no task in the task log for
      ``stopped_days`` (the age is at least the log's span when the guest has no task at
      all); ``bytes`` is their disk. Without a task log every stopped guest is listed with
      no age.
    - ``old snapshot``: older than ``snapshot_days`` (:func:`pvekit.capacity.hygiene`);
      Proxmox does not report snapshot sizes, so ``bytes`` is NA.
    - ``backup beyond retention``: per guest and storage, the backups after the newest
      ``keep_backups`` (protected ones are never counted).
    - ``unused disk``: ``unusedN`` volumes detached from a guest but still on storage.
    - ``orphaned disk``: guest volumes on storage that no guest config mentions.
    - ``unused template``: templates no linked clone refers to (a linked clone's volume is
      ``base-<template>-disk-N/vm-...``; full clones leave no trace, so this is a hint).

    ``source``: a Cluster/Group (guest metrics, backups, snapshots, tasks and storage content
    are read; expect one request per running guest and per storage) or a
    :class:`PlanningInput` with those frames (missing ones skip their kinds).

    ``rightsizing``: a :func:`pvekit.capacity.rightsizing` frame already computed on the same
    guests and metrics with the same ``low`` (e.g. ``Report.analysis.rightsizing``), used
    instead of running the analysis again. A guest disk without a ``volume`` (its volume id
    unknown) keeps every volume of that guest on that storage from being called orphaned.
    """
    if not 0 < idle_cpu < 1 or not 0 < low < 1:
        raise InvalidInputError("idle_cpu and low must be fractions in (0, 1)")
    if isinstance(keep_backups, bool) or not isinstance(keep_backups, int) or keep_backups < 0:
        raise InvalidInputError(f"keep_backups must be an int >= 0, got {keep_backups!r}")
    inp, _model, _pol = build(source, None, metrics="month", guest_metrics=True, history=True)
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now_ts.tzinfo is None:
        now_ts = now_ts.tz_localize("UTC")
    g = inp.guests
    rows: list[dict[str, Any]] = []

    def add(kind: str, r: dict[str, Any] | None = None, **values: Any) -> None:
        row: dict[str, Any] = dict.fromkeys(RECLAIM_COLUMNS)
        if r is not None:
            row.update(
                profile=r.get("profile"), vmid=r.get("vmid"), name=r.get("name"), node=r.get("node")
            )
        row.update(kind=kind, **values)
        rows.append(row)

    by_key = {(str(r["profile"]), int(r["vmid"])): r for r in records(g)}
    # -- right-sizing and idle ----------------------------------------------------------------
    gm = None
    if inp.metrics is not None and len(inp.metrics):
        gm = inp.metrics[inp.metrics["kind"].astype("string") == "guest"]
    if rightsizing is None:
        rs = capacity.rightsizing(g, gm if gm is not None and len(gm) else None, low=low)
    else:
        need = ["profile", "vmid", "category", "cores", "mem_total", "suggested_cores"]
        missing = [c for c in [*need, "suggested_mem", "message"] if c not in rightsizing]
        if missing:
            raise InvalidInputError(
                f"rightsizing must be a capacity.rightsizing() frame; it lacks column(s) "
                f"{', '.join(missing)}"
            )
        rs = rightsizing
    idle: set[tuple[str, int]] = set()
    if gm is not None and len(gm):
        stats = _guest_stats(gm, 0.95)
        for s in records(stats):
            key = (str(s["profile"]), int(s["vmid"]))
            r = by_key.get(key)
            if r is None or str(r["status"]) != "running" or pd.isna(s["cpu_peak"]):
                continue
            if float(s["cpu_peak"]) < idle_cpu:
                idle.add(key)
                add(
                    "idle guest",
                    r,
                    vcpus=r["cores"],
                    memory=r["mem_total"],
                    evidence=f"CPU peak {float(s['cpu_peak']) * 100:.1f} % over "
                    f"{int(s['samples'])} samples (below {idle_cpu * 100:g} %)",
                )
    for r in records(rs):
        key = (str(r["profile"]), int(r["vmid"]))
        if key in idle:
            continue  # all of it is already counted
        if r["category"] == "cpu oversized" and pd.notna(r["suggested_cores"]):
            add(
                "oversized cpu",
                by_key.get(key),
                vcpus=int(r["cores"]) - int(r["suggested_cores"]),
                evidence=r["message"],
            )
        elif r["category"] == "memory oversized" and pd.notna(r["suggested_mem"]):
            add(
                "oversized memory",
                by_key.get(key),
                memory=int(r["mem_total"]) - int(r["suggested_mem"]),
                evidence=r["message"],
            )
    # -- long-stopped guests ------------------------------------------------------------------
    tasks = inp.tasks
    last_task: dict[tuple[str, int], pd.Timestamp] = {}
    log_start: dict[str, pd.Timestamp] = {}
    if tasks is not None and len(tasks):
        t = tasks.assign(starttime=pd.to_datetime(tasks["starttime"], utc=True))
        for p, grp in t.groupby(t["profile"].astype(str)):
            log_start[p] = grp["starttime"].min()
        ids = pd.to_numeric(t["id"], errors="coerce")
        tv = t[ids.notna()].assign(vmid=ids[ids.notna()].astype(int))
        newest = tv.groupby([tv["profile"].astype(str), "vmid"])["starttime"].max()
        for tkey, when in newest.items():
            p, v = cast("tuple[str, int]", tkey)
            last_task[(str(p), int(v))] = when
    for r in records(g):
        tmpl = bool(r.get("template")) if pd.notna(r.get("template")) else False
        if tmpl or str(r["status"]) != "stopped":
            continue
        size, storages = _disks_bytes(r.get("disks"))
        if not size and pd.notna(r.get("disk_total")):
            size = float(r["disk_total"])
        key = (str(r["profile"]), int(r["vmid"]))
        if tasks is None:
            add(
                "long stopped",
                r,
                bytes=size,
                storage=", ".join(storages) or None,
                evidence="stopped now; no task log to tell since when",
            )
            continue
        when = last_task.get(key)
        start = log_start.get(key[0])
        if when is not None:
            age = (now_ts - when).total_seconds() / _DAY
            evidence = f"stopped; its last task was {age:.0f} days ago"
        elif start is not None:
            age = (now_ts - start).total_seconds() / _DAY
            evidence = f"stopped; no task in the task log, which goes back {age:.0f} days"
        else:
            continue
        if age >= stopped_days:
            add(
                "long stopped",
                r,
                bytes=size,
                storage=", ".join(storages) or None,
                age_days=age,
                evidence=evidence + f" (holds {format_bytes(size)} of disk)",
            )
    # -- snapshots ----------------------------------------------------------------------------
    if inp.snapshots is not None and len(inp.snapshots):
        hy = capacity.hygiene(g, snapshots=inp.snapshots, snapshot_days=snapshot_days, now=now_ts)
        for r in records(hy[hy["category"] == "old snapshot"]):
            add(
                "old snapshot",
                r,
                volid=None,
                age_days=r["age_days"],
                evidence=f"{r['message']} (Proxmox reports no snapshot size)",
            )
    # -- backups ------------------------------------------------------------------------------
    b = inp.backups
    if b is not None and len(b):
        b = b.assign(ctime=pd.to_datetime(b["ctime"], utc=True)).sort_values(
            "ctime", ascending=False
        )
        # one pass over the rows, grouped in Python: a frame per guest and storage is slow;
        # keys sorted and NA VMIDs dropped, as groupby does, so the rows come in its order
        groups: dict[tuple[str, Any, str], list[dict[str, Any]]] = {}
        for r in records(b):
            if pd.isna(r["vmid"]):
                continue
            groups.setdefault((str(r["profile"]), r["vmid"], str(r["storage"])), []).append(r)
        for bkey in sorted(groups):
            p, v, st = bkey
            kept = groups[bkey]
            for br in kept[keep_backups:]:
                if bool(br.get("protected")) if pd.notna(br.get("protected")) else False:
                    continue
                age = (now_ts - br["ctime"]).total_seconds() / _DAY
                info = by_key.get((p, int(v)), {})
                add(
                    "backup beyond retention",
                    None,
                    profile=p,
                    vmid=v,
                    name=info.get("name"),
                    node=br.get("node"),
                    storage=st,
                    volid=br["volid"],
                    bytes=br.get("size"),
                    age_days=age,
                    evidence=f"{len(kept)} backups of this guest on {st}; keeping the newest "
                    f"{keep_backups}, this one is {age:.0f} days old",
                )
    # -- unused and orphaned disks ------------------------------------------------------------
    vol = inp.volumes
    sizes: dict[tuple[str, str], float] = {}
    if vol is not None and len(vol):
        sizes = {
            (str(p), str(v)): _size(s)
            for p, v, s in zip(vol["profile"], vol["volid"], vol["size"], strict=True)
        }
    referenced: set[tuple[str, str]] = set()
    unnamed: set[tuple[str, str, int | None]] = set()
    for r in records(g):
        p = str(r["profile"])
        for d in r["disks"] if isinstance(r.get("disks"), list) else []:
            if not isinstance(d, dict) or not d.get("storage"):
                continue
            if d.get("volume"):
                referenced.add((p, f"{d['storage']}:{d['volume']}"))
            else:
                # a disk whose volume is not known could be any of the guest's volumes on
                # that storage: none of them is called orphaned
                unnamed.add((p, str(d["storage"]), _vmid(r["vmid"])))
        for volid in r["unused"] if isinstance(r.get("unused"), list) else []:
            referenced.add((p, volid))
            size = sizes.get((p, volid), math.nan)
            add(
                "unused disk",
                r,
                storage=volid.split(":", 1)[0],
                volid=volid,
                bytes=None if math.isnan(size) else size,
                evidence=f"detached from {r.get('name')} ({r['vmid']}) as an unusedN entry, "
                "still on storage",
            )
    if vol is not None and len(vol):
        for r in records(vol):
            vkey = (str(r["profile"]), str(r["volid"]))
            if vkey in referenced:
                continue
            if (str(r["profile"]), str(r["storage"]), _vmid(r.get("vmid"))) in unnamed:
                continue
            # a linked clone references "base-X/vm-Y": the base part is referenced too
            add(
                "orphaned disk",
                None,
                profile=r["profile"],
                vmid=r.get("vmid"),
                node=r.get("node"),
                storage=r["storage"],
                volid=r["volid"],
                bytes=r.get("size"),
                evidence="on storage, but no guest config refers to it",
            )
    # -- templates nobody cloned ------------------------------------------------------------------
    volumes_text = [
        (str(r["profile"]), str(d.get("volume") or ""))
        for r in records(g)
        if isinstance(r.get("disks"), list)
        for d in r["disks"]
    ]
    for r in records(g):
        tmpl = bool(r.get("template")) if pd.notna(r.get("template")) else False
        if not tmpl:
            continue
        p, v = str(r["profile"]), int(r["vmid"])
        prefix = f"base-{v}-"
        clones = sum(1 for pp, text in volumes_text if pp == p and prefix in text and "/" in text)
        if clones:
            continue
        size, storages = _disks_bytes(r.get("disks"))
        add(
            "unused template",
            r,
            storage=", ".join(storages) or None,
            bytes=size,
            evidence="no linked clone refers to its base volumes (full clones leave no trace)",
        )
    out = pd.DataFrame(rows, columns=list(RECLAIM_COLUMNS))
    for c, kind in RECLAIM_COLUMNS.items():
        if kind == "Int64":
            out[c] = pd.to_numeric(out[c], errors="coerce").round().astype("Int64")
        elif kind == "float64":
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
        else:
            out[c] = out[c].astype("string")
    order = {k: i for i, k in enumerate(RECLAIM_KINDS)}
    out["_k"] = out["kind"].map(order)
    out = out.sort_values(["profile", "_k", "bytes"], ascending=[True, True, False], kind="stable")
    return out.drop(columns="_k").reset_index(drop=True)
