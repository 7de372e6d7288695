"""Maintenance evacuation: a target for every guest of one node (or several)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ._common import build, move_row, nodes_arg, unplaced_row
from ._model import Policy
from ._place import blocked, choose, move
from ._plan import MOVE_COLUMNS, UNPLACED_COLUMNS, Plan, _typed, usage_frame

__all__ = ["READINESS_COLUMNS", "evacuate", "readiness"]


def evacuate(
    source: Any,
    node: str | Sequence[str],
    *,
    profile: str | None = None,
    policy: Policy | None = None,
) -> Plan:
    """A :class:`Plan` that moves every guest off ``node`` (a name, or several) for maintenance.

    ``source``: a Cluster, a Group, a :class:`PlanningInput` or a dict of frames. With a Group
    whose clusters share node names, ``profile`` says which cluster.

    Rules, in order, for each guest of the node(s):

    - Not moved, reported in ``unplaced``: templates, locked guests, guests tagged
      ``no-move``, guests with raw host devices (``hostpciN``/``usbN`` without a resource
      mapping), guests whose configuration could not be read.
    - Running guests first, those with the fewest allowed nodes first, then largest memory;
      stopped guests after them (``Policy(move_stopped=False)``: they stay, not blocking).
    - A target must be online and not being emptied, allowed by strict HA node affinity
      (PVE 9 rules, 8.x restricted groups) and ``pin-<node>`` tags, able to run the guest's CPU
      type, hold every local disk's storage with room for it (and see its shared storages),
      keep HA negative resource affinity and ``anti-affinity-*`` tags apart and positive
      affinity together, and stay within the memory and vCPU limits of the policy.
    - Among the targets left: the highest HA priority (non-strict rules and groups prefer
      their nodes), then the most memory left, then the fewest vCPUs per CPU.

    A running guest without a target is ``blocking``: the node cannot be emptied
    (``plan.can_empty`` is False). Moves: ``online`` for running VMs (``with_local_disks``
    when they have local disks), ``restart`` for running containers, ``offline`` for stopped
    guests.
    """
    inp, model, pol = build(source, policy)
    site, names = nodes_arg(model, node, profile)
    before = usage_frame(model)
    leaving = [g for g in site.guests.values() if g.node in names]

    def order(g: Any) -> tuple[bool, float, float, int]:
        options = len(g.allowed) if g.allowed is not None else math.inf
        return (not g.running, options, -g.mem_alloc, g.vmid)

    moves: list[dict[str, Any]] = []
    unplaced: list[dict[str, Any]] = []
    for g in sorted(leaving, key=order):
        why = blocked(g, pol)
        if why:
            unplaced.append(unplaced_row(site, g, why, g.running))
            continue
        if not g.running and not pol.move_stopped:
            unplaced.append(unplaced_row(site, g, "stopped: stays (move_stopped=False)", False))
            continue
        target, reasons = choose(site, g, pol, exclude=names)
        if target is None:
            detail = "; ".join(f"{n}: {r}" for n, r in sorted(reasons.items())) or "no other node"
            unplaced.append(unplaced_row(site, g, f"no target: {detail}", g.running))
            continue
        src = g.node
        note = f"evacuate {src}"
        if g.preferred.get(target.name):
            note += " (HA preferred node)"
        move(site, g, target)
        moves.append(move_row(len(moves) + 1, site, g, src, target.name, note))
    plan = Plan(
        kind="evacuate",
        moves=_typed(moves, MOVE_COLUMNS),
        unplaced=_typed(unplaced, UNPLACED_COLUMNS),
        before=before,
        after=usage_frame(model),
        policy=pol,
        source=inp.source,
        nodes=tuple(names),
    )
    if inp.ha_rules is None:
        plan.notes.append("no HA rules were given: HA placement was not checked")
    return plan


READINESS_COLUMNS: dict[str, str] = {
    "profile": "string",
    "node": "string",
    "online": "bool",
    "can_empty": "bool",
    "moves": "int64",
    "blocking": "int64",
    "staying": "int64",
    "reason": "string",  # the blocking guests and why, "; "-joined ("" when it can be emptied)
}


def readiness(source: Any, *, policy: Policy | None = None) -> pd.DataFrame:
    """Maintenance readiness: for each online node of each cluster, could it be evacuated
    now (:func:`evacuate` of that node alone) and, if not, which guests block it and why.

    Columns: :data:`READINESS_COLUMNS` (``staying``: guests that stay without blocking, e.g.
    templates or stopped guests that cannot move).
    """
    from ._input import as_input

    inp = as_input(source)
    rows: list[dict[str, Any]] = []
    _, model, pol = build(inp, policy)
    for site in model.sites.values():
        for name, n in site.nodes.items():
            if not n.online:
                continue
            plan = evacuate(inp, name, profile=site.profile, policy=pol)
            block = plan.unplaced[plan.unplaced["blocking"]]
            rows.append(
                {
                    "profile": site.profile,
                    "node": name,
                    "online": True,
                    "can_empty": plan.can_empty,
                    "moves": len(plan.moves),
                    "blocking": len(block),
                    "staying": len(plan.unplaced) - len(block),
                    "reason": "; ".join(
                        f"{g} ({v}): {r}"
                        for g, v, r in zip(
                            block["name"], block["vmid"], block["reason"], strict=True
                        )
                    ),
                }
            )
    return _typed(rows, READINESS_COLUMNS)
