"""Where may a guest go: the placement checks every planner shares."""

from __future__ import annotations

from collections.abc import Iterable

from .._format import format_bytes
from ._model import GuestInfo, NodeInfo, Policy, Site, cpu_compatible

__all__ = ["blocked", "choose", "move", "unfit"]


def _gib(x: float) -> str:
    return format_bytes(max(0.0, x))


def blocked(g: GuestInfo, policy: Policy) -> str | None:
    """Why a guest is not moved at all (None: it may be moved)."""
    if g.template:
        return "template: not moved (templates are cloned, not migrated)"
    if g.lock:
        return f"locked ({g.lock}): a task holds the guest; clear the lock first"
    if g.no_move:
        return f"tagged {policy.no_move_tag!r}: stays where it is"
    if g.local_resources:
        return f"uses local device(s) {', '.join(g.local_resources)}: Proxmox cannot migrate it"
    if g.unreadable:
        return "configuration unknown (no details): its disks cannot be checked"
    return None


def unfit(
    site: Site,
    g: GuestInfo,
    node: NodeInfo,
    policy: Policy,
    *,
    exclude: Iterable[str] = (),
    check_capacity: bool = True,
    cpu: bool = False,
) -> str | None:
    """None when ``g`` may move to ``node`` now; else the reason it may not.

    ``cpu``: CPU in use is a limit too (rebalancing by CPU). Otherwise it only ranks targets:
    CPU time is shared out, memory runs out.
    """
    if node.name == g.node:
        return "current node"
    if not node.online:
        return "offline"
    if node.name in exclude:
        return "being emptied"
    if g.allowed is not None and node.name not in g.allowed:
        return "not allowed by HA rule or pin tag (only " + ", ".join(sorted(g.allowed)) + ")"
    if policy.check_cpu_type:
        src = site.nodes.get(g.node)
        why = cpu_compatible(g.cpu_type, src.cpu_model if src else None, node.cpu_model)
        if why:
            return why
    for st, size in g.local_disks.items():
        if st not in node.storages:
            return f"storage {st!r} (local disk) does not exist on {node.name}"
        if node.storages[st] < size:
            return f"storage {st!r} has {_gib(node.storages[st])} free, needs {_gib(size)}"
    for st in g.shared_disks:
        seen = site.shared_on.get(st)
        if seen is not None and node.name not in seen:
            return f"shared storage {st!r} is not available on {node.name}"
    for key in g.apart:
        for other in site.group(key):
            if other is not g and other.node == node.name and key in other.apart:
                return f"anti-affinity ({key}) with {other.name} ({other.vmid})"
    for key in g.together:
        where = {o.node for o in site.group(key) if o is not g and key in o.together}
        if where and node.name not in where:
            return f"affinity ({key}) keeps it with its group on {', '.join(sorted(where))}"
    if check_capacity and g.running:
        if g.cores > node.cores:
            return f"{g.cores:g} vCPUs, the node has {node.cores:g} CPUs"
        if node.vcpus + g.cores > policy.vcpu_ratio * node.cores:
            return (
                f"vCPUs: {node.vcpus + g.cores:g} would exceed {policy.vcpu_ratio:g} per CPU "
                f"({policy.vcpu_ratio * node.cores:g})"
            )
        if cpu and g.cpu_used and node.cpu_used + g.cpu_used > policy.cpu_limit * node.cores:
            return (
                f"CPU: {node.cpu_used + g.cpu_used:.1f} cores in use would exceed "
                f"{policy.cpu_limit:.0%} of {node.cores:g}"
            )
        if node.mem_load + g.mem_demand > node.mem_cap:
            return (
                f"memory: needs {_gib(g.mem_demand)}, {_gib(node.mem_cap - node.mem_load)} "
                "left under the limit"
            )
    return None


def choose(
    site: Site, g: GuestInfo, policy: Policy, *, exclude: Iterable[str] = ()
) -> tuple[NodeInfo | None, dict[str, str]]:
    """The best target for ``g`` and, per node ruled out, why.

    Best: HA priority first, then the most memory left after the move (fraction of the
    node's capacity), then the fewest vCPUs per CPU; ties by node name, so plans repeat.
    """
    excl = set(exclude)
    reasons: dict[str, str] = {}
    best: NodeInfo | None = None
    best_key: tuple[float, float, float, str] | None = None
    for node in site.nodes.values():
        if node.name == g.node or node.name in excl:
            continue
        why = unfit(site, g, node, policy, exclude=excl)
        if why:
            reasons[node.name] = why
            continue
        cap = node.mem_cap or 1.0
        left = (node.mem_cap - node.mem_load - g.mem_demand) / cap
        if not g.running:
            # a stopped guest adds no load now: put it where its memory would fit best later
            left = (node.mem_cap - node.mem_load - g.mem_alloc) / cap
        cpu_cap = policy.cpu_limit * node.cores or 1.0
        left = min(left, (cpu_cap - node.cpu_used - g.cpu_used) / cpu_cap)
        ratio = (node.vcpus + g.cores) / (node.cores or 1.0)
        key = (-float(g.preferred.get(node.name, 0)), -left, ratio, node.name)
        if best_key is None or key < best_key:
            best, best_key = node, key
    return best, reasons


def move(site: Site, g: GuestInfo, target: NodeInfo) -> None:
    """Apply a planned move to the model (loads, storage room, location)."""
    src = site.nodes.get(g.node)
    if g.running:
        if src is not None:
            src.mem_load -= g.mem_demand
            src.vcpus -= g.cores
            src.cpu_used -= g.cpu_used
        target.mem_load += g.mem_demand
        target.vcpus += g.cores
        target.cpu_used += g.cpu_used
    for st, size in g.local_disks.items():
        if src is not None and st in src.storages:
            src.storages[st] += size
        if st in target.storages:
            target.storages[st] -= size
    g.node = target.name
