"""Shared steps of the planners: resolve the source, pick the cluster, build rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._errors import InvalidInputError
from ._input import PlanningInput, as_input
from ._model import GuestInfo, Model, Policy, Site

__all__ = ["build", "mode_of", "move_row", "nodes_arg", "unplaced_row"]


def build(source: Any, policy: Policy | None, **read: Any) -> tuple[PlanningInput, Model, Policy]:
    if policy is not None and not isinstance(policy, Policy):
        raise InvalidInputError(f"policy must be a planning.Policy, got {type(policy).__name__}")
    pol = policy or Policy()
    inp = as_input(source, **read)
    model = Model(inp.nodes, inp.guests, inp.storage, inp.ha_rules, pol)
    return inp, model, pol


def nodes_arg(model: Model, node: Any, profile: str | None) -> tuple[Site, tuple[str, ...]]:
    """(site, node names) for ``node`` (a name or several) in ``profile`` (or the only one)."""
    names = (node,) if isinstance(node, str) else tuple(node) if isinstance(node, Iterable) else ()
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidInputError(f"node must be a node name or a list of them, got {node!r}")
    if profile is not None:
        site = model.sites.get(profile)
        if site is None:
            raise InvalidInputError(
                f"profile {profile!r} is not in the frames ({', '.join(model.sites) or 'none'})"
            )
    else:
        hits = [s for s in model.sites.values() if names[0] in s.nodes]
        if not hits:
            raise InvalidInputError(f"node {names[0]!r} is in none of the clusters")
        if len(hits) > 1:
            raise InvalidInputError(
                f"node {names[0]!r} exists in several clusters "
                f"({', '.join(s.profile for s in hits)}): pass profile="
            )
        site = hits[0]
    missing = [n for n in names if n not in site.nodes]
    if missing:
        raise InvalidInputError(
            f"node(s) {', '.join(missing)} not in cluster {site.profile!r} "
            f"(nodes: {', '.join(site.nodes)})"
        )
    return site, names


def site_arg(model: Model, profile: str | None) -> list[Site]:
    if profile is None:
        return list(model.sites.values())
    if profile not in model.sites:
        raise InvalidInputError(
            f"profile {profile!r} is not in the frames ({', '.join(model.sites) or 'none'})"
        )
    return [model.sites[profile]]


def mode_of(g: GuestInfo) -> str:
    if not g.running:
        return "offline"
    return "online" if g.type == "qemu" else "restart"


def move_row(
    step: int, site: Site, g: GuestInfo, source: str, target: str, reason: str
) -> dict[str, Any]:
    return {
        "step": step,
        "profile": site.profile,
        "vmid": g.vmid,
        "name": g.name,
        "type": g.type,
        "status": "running" if g.running else "stopped",
        "node": source,
        "target": target,
        "mode": mode_of(g),
        "with_local_disks": g.type == "qemu" and bool(g.local_disks),
        "memory": int(g.mem_alloc),
        "vcpus": int(g.cores),
        "reason": reason,
    }


def unplaced_row(site: Site, g: GuestInfo, reason: str, blocking: bool) -> dict[str, Any]:
    return {
        "profile": site.profile,
        "vmid": g.vmid,
        "name": g.name,
        "type": g.type,
        "status": "template" if g.template else ("running" if g.running else "stopped"),
        "node": g.node,
        "blocking": blocking,
        "reason": reason,
    }
