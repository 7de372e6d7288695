"""ipywidgets panels for Proxmox VE: act on guests and watch capacity from a notebook.

- :class:`GuestPanel`: a filterable guest list with action buttons (start, shutdown, stop,
  reboot, reset, suspend, resume, snapshots, backup, migrate), enabled only where the action
  fits the selection and the identity's privileges; destructive actions ask for a
  confirmation; tasks run in the background with progress bars and log tails.
- :class:`PlanPanel`: pick nodes for maintenance (or a rebalance), review the plan of
  :mod:`pvekit.planning`, apply it after a confirmation bound to that plan, with a progress
  bar per migration; permission-aware like the guest panel.
- :class:`Dashboard`: the capacity charts as live plotly FigureWidgets, the connection status
  of every profile, a refresh button and a non-stacking auto-refresh.

Both take a :class:`~pvekit.Cluster` or a :class:`~pvekit.Group`. See ``docs/widgets.md``.
"""

from __future__ import annotations

from ._actions import ACTIONS, Action
from ._common import Permissions
from ._dashboard import CHARTS, Dashboard
from ._panel import GuestPanel
from ._plan import PlanPanel
from ._taskview import TaskView

__all__ = [
    "ACTIONS",
    "CHARTS",
    "Action",
    "Dashboard",
    "GuestPanel",
    "Permissions",
    "PlanPanel",
    "TaskView",
]
