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

from .._growth import GROWTH_COLUMNS, allocation, growth, growth_trend, guest_changes
from ._analyse import Analysis, analyse
from ._common import FINDING_COLUMNS, SEVERITIES, pool_name
from ._findings import Thresholds, findings, group_findings
from ._forecast import forecast, theil_sen
from ._headroom import headroom, weakest_link
from ._hygiene import hygiene
from ._rightsizing import rightsizing
from ._usage import cluster_usage, group_usage, node_usage, storage_pools

__all__ = [
    "FINDING_COLUMNS",
    "GROWTH_COLUMNS",
    "SEVERITIES",
    "Analysis",
    "Thresholds",
    "allocation",
    "analyse",
    "cluster_usage",
    "findings",
    "forecast",
    "group_findings",
    "group_usage",
    "growth",
    "growth_trend",
    "guest_changes",
    "headroom",
    "hygiene",
    "node_usage",
    "pool_name",
    "rightsizing",
    "storage_pools",
    "theil_sen",
    "weakest_link",
]
