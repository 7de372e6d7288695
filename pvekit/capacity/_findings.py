"""Findings: every step as one prioritised frame, and findings of one kind grouped."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError
from ._common import (
    FINDING_COLUMNS,
    SEVERITIES,
    _empty,
    _f,
    _fmt_bytes,
    _pct,
    _require,
    _rows,
    pool_name,
)
from ._headroom import _nz
from ._usage import _typed

__all__ = ["Thresholds", "findings", "group_findings"]


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
