"""Maintenance evacuation: a target for every guest of one node (or several)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._common import build, move_row, nodes_arg, unplaced_row
from ._model import Policy
from ._place import blocked, choose, move
from ._plan import MOVE_COLUMNS, UNPLACED_COLUMNS, Plan, _typed, usage_frame

__all__ = ["evacuate"]


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
