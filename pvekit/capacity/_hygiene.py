"""Hygiene: guests without a recent backup, old snapshots, locks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._common import _DAY, _empty, _f, _guest_flags, _require, _rows
from ._usage import _typed

__all__ = ["hygiene"]


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
