"""Rebalancing: few moves that bring nodes under a threshold and their loads together."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._errors import InvalidInputError
from ._common import build, move_row, site_arg
from ._model import GuestInfo, NodeInfo, Policy, Site
from ._place import blocked, move, unfit
from ._plan import MOVE_COLUMNS, UNPLACED_COLUMNS, Plan, _typed, usage_frame

__all__ = ["rebalance", "spread"]

_DIMS = {"memory": ("memory",), "cpu": ("cpu",), "both": ("memory", "cpu")}


def _load(n: NodeInfo, dim: str) -> float:
    return n.mem_load if dim == "memory" else n.cpu_used


def _cap(n: NodeInfo, dim: str, policy: Policy) -> float:
    return n.mem_cap if dim == "memory" else n.cores * policy.cpu_limit


def _weight(g: GuestInfo, dim: str) -> float:
    return g.mem_demand if dim == "memory" else g.cpu_used


def _fractions(nodes: list[NodeInfo], dim: str, policy: Policy) -> np.ndarray:
    return np.array([_load(n, dim) / c if (c := _cap(n, dim, policy)) > 0 else 0.0 for n in nodes])


def spread(nodes: list[NodeInfo], dims: tuple[str, ...], policy: Policy) -> float:
    """The score: the largest gap between the most and least loaded node (fractions of each
    node's capacity), over the dimensions rebalanced."""
    if len(nodes) < 1:
        return math.nan
    return max(float(np.ptp(_fractions(nodes, d, policy))) for d in dims)


def _score(f: dict[str, np.ndarray], threshold: float) -> tuple[float, float]:
    """(overflow above threshold, sum of squared deviations): lower is better."""
    over = sum(float(np.clip(v - threshold, 0, None).sum()) for v in f.values())
    dev = sum(float(((v - v.mean()) ** 2).sum()) for v in f.values())
    return over, dev


def rebalance(
    source: Any,
    *,
    by: str = "memory",
    threshold: float | None = None,
    margin: float = 0.1,
    max_moves: int | None = None,
    profile: str | None = None,
    policy: Policy | None = None,
) -> Plan:
    """A :class:`Plan` of few moves that even out the load of each cluster's nodes.

    ``by``: ``"memory"`` (the policy's memory measure: used, or allocated), ``"cpu"`` (CPU in
    use, live) or ``"both"``. A node's load is a fraction of its capacity: memory against
    ``mem_limit`` x physical minus the reserve, CPU against ``cpu_limit`` x its CPUs.

    Goal, per cluster: every online node at or below ``threshold`` (default 1.0: the policy
    limit) and the spread (most minus least loaded node, the plan's ``score``) at most
    ``margin``. While the goal is not met and fewer than ``max_moves`` moves are planned, the
    planner takes the single move, off the most loaded node that has one, that lowers the
    score most: first the overload above the threshold, then the sum of squared deviations
    from the mean. A move that does not lower it is never taken, so an already balanced
    cluster gets no moves. Only running guests move (stopped ones carry no load); guests
    that may not move (templates, locks, ``no-move``, host devices, positive affinity) stay,
    and every target is checked like an evacuation target (HA rules, tags, CPU type,
    storage, limits).

    Greedy: each step is the best single move, which is not always the global fewest.
    """
    if by not in _DIMS:
        raise InvalidInputError(f"by must be 'memory', 'cpu' or 'both', got {by!r}")
    if threshold is not None and not (isinstance(threshold, int | float) and threshold > 0):
        raise InvalidInputError(f"threshold must be a positive fraction, got {threshold!r}")
    if not isinstance(margin, int | float) or margin < 0:
        raise InvalidInputError(f"margin must be a fraction >= 0, got {margin!r}")
    if max_moves is not None and (
        isinstance(max_moves, bool) or not isinstance(max_moves, int) or max_moves < 0
    ):
        raise InvalidInputError(f"max_moves must be an int >= 0, got {max_moves!r}")
    inp, model, pol = build(source, policy)
    dims = _DIMS[by]
    limit = 1.0 if threshold is None else float(threshold)
    sites = site_arg(model, profile)
    before = usage_frame(model)
    moves: list[dict[str, Any]] = []
    unplaced: list[dict[str, Any]] = []
    notes: list[str] = []
    scores_before: list[float] = []
    scores_after: list[float] = []
    for site in sites:
        nodes = [n for n in site.nodes.values() if n.online]
        scores_before.append(spread(nodes, dims, pol))
        budget = None if max_moves is None else max_moves - len(moves)
        _balance(site, nodes, dims, pol, limit, margin, budget, moves, notes)
        scores_after.append(spread(nodes, dims, pol))
    plan = Plan(
        kind="rebalance",
        moves=_typed(moves, MOVE_COLUMNS),
        unplaced=_typed(unplaced, UNPLACED_COLUMNS),
        before=before,
        after=usage_frame(model),
        policy=pol,
        source=inp.source,
        by=by,
        score_before=max(scores_before) if scores_before else math.nan,
        score_after=max(scores_after) if scores_after else math.nan,
        notes=notes,
    )
    return plan


def _balance(
    site: Site,
    nodes: list[NodeInfo],
    dims: tuple[str, ...],
    pol: Policy,
    limit: float,
    margin: float,
    budget: int | None,
    moves: list[dict[str, Any]],
    notes: list[str],
) -> None:
    if len(nodes) < 2:
        notes.append(f"{site.profile}: one online node, nothing to balance")
        return
    caps = {d: np.array([_cap(n, d, pol) for n in nodes]) for d in dims}
    f = {d: _fractions(nodes, d, pol) for d in dims}
    movable: dict[str, list[GuestInfo]] = {n.name: [] for n in nodes}
    for g in site.guests.values():
        if g.running and g.node in movable and not g.together and blocked(g, pol) is None:
            movable[g.node].append(g)
    planned = 0

    def goal() -> bool:
        return all(v.max() <= limit + 1e-12 and np.ptp(v) <= margin + 1e-12 for v in f.values())

    if goal():
        notes.append(
            f"{site.profile}: already balanced (spread {spread(nodes, dims, pol):.3f} <= "
            f"{margin:g}, no node above {limit:g})"
        )
        return
    while not goal() and (budget is None or planned < budget):
        cur = _score(f, limit)
        hot_order = np.argsort(-np.max(np.vstack([f[d] for d in dims]), axis=0), kind="stable")
        best: tuple[tuple[float, float], GuestInfo, NodeInfo] | None = None
        for h in hot_order:
            src = nodes[int(h)]
            cands = movable[src.name]
            if not cands:
                continue
            w = {d: np.array([_weight(g, d) for g in cands]) for d in dims}
            for t_i, tgt in enumerate(nodes):
                if t_i == h:
                    continue
                over = np.zeros(len(cands))
                dev = np.zeros(len(cands))
                for d in dims:
                    v = f[d]
                    fh = v[h] - w[d] / caps[d][h] if caps[d][h] > 0 else np.full(len(cands), v[h])
                    ft = (
                        v[t_i] + w[d] / caps[d][t_i]
                        if caps[d][t_i] > 0
                        else np.full(len(cands), v[t_i])
                    )
                    total = v.sum() - v[h] - v[t_i] + fh + ft
                    mean = total / len(v)
                    sq = (v**2).sum() - v[h] ** 2 - v[t_i] ** 2 + fh**2 + ft**2
                    dev += sq - len(v) * mean**2
                    base_over = (
                        np.clip(v - limit, 0, None).sum()
                        - max(v[h] - limit, 0)
                        - max(v[t_i] - limit, 0)
                    )
                    over += base_over + np.clip(fh - limit, 0, None) + np.clip(ft - limit, 0, None)
                eps = 1e-12
                good = (over < cur[0] - eps) | ((over <= cur[0] + eps) & (dev < cur[1] - eps))
                idx = np.nonzero(good)[0]
                for k in idx[np.lexsort((dev[idx], over[idx]))]:
                    cand = (float(over[k]), float(dev[k]))
                    if best is not None and cand >= best[0]:
                        break  # sorted: the rest of this target is no better
                    g = cands[int(k)]
                    if unfit(site, g, tgt, pol, cpu="cpu" in dims) is None:
                        best = (cand, g, tgt)
                        break
            if best is not None:
                break  # a move off the most loaded node that has one
        if best is None:
            notes.append(f"{site.profile}: no further move improves the balance")
            break
        _, g, tgt = best
        src_name = g.node
        movable[src_name].remove(g)
        move(site, g, tgt)
        movable[tgt.name].append(g)
        for d in dims:
            f[d] = _fractions(nodes, d, pol)
        planned += 1
        what = "/".join(dims)
        moves.append(
            move_row(
                len(moves) + 1,
                site,
                g,
                src_name,
                tgt.name,
                f"rebalance {what}: {src_name} is the most loaded",
            )
        )
    if budget is not None and planned >= budget and not goal():
        notes.append(f"{site.profile}: stopped at max_moves={budget}; the goal is not met")
