"""Everything at once: :func:`analyse` runs every step into an :class:`Analysis`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ._common import _empty
from ._findings import Thresholds, findings
from ._forecast import _FORECAST_COLUMNS, forecast
from ._headroom import headroom
from ._hygiene import hygiene
from ._rightsizing import rightsizing
from ._usage import cluster_usage, group_usage, node_usage, storage_pools

__all__ = ["Analysis", "analyse"]


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
    # Each frame built once and handed to the steps that need it (they would rebuild it).
    sp = storage_pools(storage, guests)
    nu = node_usage(nodes, guests, storage, pools=sp)
    cu = cluster_usage(nodes, guests, storage, usage=nu, pools=sp)
    gu = group_usage(cu)
    hr = headroom(nodes, guests, max_vcpu_ratio=max_vcpu_ratio, usage=nu)
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
