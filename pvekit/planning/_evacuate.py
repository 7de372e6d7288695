"""Maintenance evacuation: a target for every guest of one node (or several)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .._errors import InvalidInputError, PVEError
from ._common import build, move_row, nodes_arg, unplaced_row
from ._model import Policy
from ._place import blocked, choose, move
from ._plan import MOVE_COLUMNS, UNPLACED_COLUMNS, Plan, _typed, usage_frame

__all__ = ["READINESS_COLUMNS", "blocking_reason", "evacuate", "readiness"]


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
    "reason": "string",  # the blocking guests, grouped by reason ("" when it can be emptied)
    "guests": "int64",  # guests on the node, templates included
    "running": "int64",
    "memory_moved": "int64",  # configured memory of the guests the plan moves
}


def blocking_reason(unplaced: pd.DataFrame) -> str:
    """The blocking guests of an evacuation, one clause per distinct reason:
    ``"a (101), b (102): why; c (103): other"`` (three names per reason, then a count)."""
    block = unplaced[unplaced["blocking"].astype(bool)]
    clauses = []
    for why, grp in block.groupby(block["reason"].astype(str), sort=False):
        names = [f"{n} ({v})" for n, v in zip(grp["name"], grp["vmid"], strict=True)]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        clauses.append(f"{shown}: {why}")
    return "; ".join(clauses)


def readiness(source: Any, *, policy: Policy | None = None, offline: bool = False) -> pd.DataFrame:
    """Maintenance readiness: for each online node of each cluster, could it be evacuated
    now (:func:`evacuate` of that node alone, on the cluster as it is: the nodes are not
    emptied one after the other) and, if not, which guests block it and why.

    Columns: :data:`READINESS_COLUMNS` (``staying``: guests that stay without blocking, e.g.
    templates or stopped guests that cannot move; ``reason``: the blocking guests grouped by
    reason). ``offline=True`` lists offline nodes too: never ``can_empty``, ``reason`` starts
    with "node is offline". A node whose plan cannot be made is a row whose reason says why
    (``not planned: ...``), its running guests counted as blocking.
    """
    from ._input import as_input

    inp = as_input(source)
    rows: list[dict[str, Any]] = []
    if policy is not None and not isinstance(policy, Policy):
        raise InvalidInputError(f"policy must be a planning.Policy, got {type(policy).__name__}")
    pol = policy or Policy()
    g = inp.guests
    count: dict[tuple[str, str], tuple[int, int]] = {}
    if len(g):
        running = g["status"].astype(str) == "running"
        for key, grp in running.groupby([g["profile"].astype(str), g["node"].astype(str)]):
            count[(str(key[0]), str(key[1]))] = (len(grp), int(grp.sum()))
    nd = inp.nodes
    up = (
        nd["online"].astype("boolean").fillna(False).astype(bool)
        if "online" in nd
        else nd["status"].astype("string").fillna("") == "online"
    )
    for profile, name, online in zip(
        nd["profile"].astype(str), nd["node"].astype(str), up, strict=True
    ):
        if not online and not offline:
            continue
        guests, running_n = count.get((profile, name), (0, 0))
        row: dict[str, Any] = {
            "profile": profile,
            "node": name,
            "online": bool(online),
            "guests": guests,
            "running": running_n,
        }
        try:
            plan = evacuate(inp, name, profile=profile, policy=pol)
        except PVEError as exc:
            row.update(
                can_empty=False,
                moves=0,
                blocking=running_n,
                staying=0,
                memory_moved=0,
                reason=f"not planned: {exc}",
            )
            rows.append(row)
            continue
        unplaced = plan.unplaced
        blocking = int(unplaced["blocking"].sum()) if len(unplaced) else 0
        reason = blocking_reason(unplaced) if blocking else ""
        if not online:
            reason = "node is offline" + (f"; {reason}" if reason else "")
        row.update(
            can_empty=plan.can_empty and bool(online),
            moves=len(plan.moves),
            blocking=blocking,
            staying=len(unplaced) - blocking,
            memory_moved=int(plan.moves["memory"].sum()) if len(plan.moves) else 0,
            reason=reason,
        )
        rows.append(row)
    return _typed(rows, READINESS_COLUMNS)
