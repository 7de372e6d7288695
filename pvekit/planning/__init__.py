"""Capacity planning you can act on: what-if placement, maintenance evacuation, rebalancing,
reclaimable capacity and time remaining.

Everything here plans on frames; nothing is sent to Proxmox except by :meth:`Plan.apply`,
which goes through :meth:`pvekit.Guest.migrate` and only with ``confirm=True``.

``source`` of every planner is a :class:`pvekit.Cluster`, a :class:`pvekit.Group`, a
:class:`PlanningInput` (frames you may filter or edit: "what if pve3 had 512 GiB") or a dict
of its frames. See ``docs/planning.md`` for each planner's rules and limits.

>>> import pvekit
>>> from pvekit import planning
>>> group = pvekit.demo()
>>> plan = planning.evacuate(group, "pve2", profile="prod")
>>> plan.moves[["name", "node", "target", "mode"]]         # doctest: +SKIP
>>> plan.apply(confirm=True)                               # doctest: +SKIP
"""

from __future__ import annotations

from .._errors import PlanInvalidatedError
from ._evacuate import READINESS_COLUMNS, evacuate, readiness
from ._input import PlanningInput
from ._model import Policy
from ._plan import APPLY_COLUMNS, MOVE_COLUMNS, UNPLACED_COLUMNS, USAGE_COLUMNS, Plan
from ._rebalance import rebalance
from ._reclaim import RECLAIM_COLUMNS, RECLAIM_KINDS, reclaimable
from ._spec import SPEC_COLUMNS, guest_spec
from ._time import TIME_COLUMNS, time_remaining
from ._whatif import PLACEMENT_COLUMNS, WHATIF_COLUMNS, WhatIf, max_count, what_if

__all__ = [
    "APPLY_COLUMNS",
    "MOVE_COLUMNS",
    "PLACEMENT_COLUMNS",
    "READINESS_COLUMNS",
    "RECLAIM_COLUMNS",
    "RECLAIM_KINDS",
    "SPEC_COLUMNS",
    "TIME_COLUMNS",
    "UNPLACED_COLUMNS",
    "USAGE_COLUMNS",
    "WHATIF_COLUMNS",
    "Plan",
    "PlanInvalidatedError",
    "PlanningInput",
    "Policy",
    "WhatIf",
    "evacuate",
    "guest_spec",
    "max_count",
    "readiness",
    "rebalance",
    "reclaimable",
    "time_remaining",
    "what_if",
]
