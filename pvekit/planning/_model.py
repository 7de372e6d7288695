"""The planning policy and the in-memory model every planner works on.

:class:`Policy` holds the rules (limits, memory reserve, tag convention, HA, CPU type).
:class:`Model` turns the frames of a :class:`~pvekit.planning.PlanningInput` into plain Python
per cluster (nodes with their capacity and load, guests with what constrains their placement)
so planners can try thousands of placements without touching pandas in the inner loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

import pandas as pd

from .._errors import InvalidInputError
from .._parse import parse_size

__all__ = ["CPU_VENDORS", "GuestInfo", "Model", "NodeInfo", "Policy", "Site"]

_GIB = 1024**3

# Named QEMU CPU models and the host vendor they need. Generic models (kvm64, qemu64,
# x86-64-v2-AES, ...) run on either vendor; "host" needs the very same host CPU model.
CPU_VENDORS: dict[str, str] = {
    "epyc": "amd",
    "opteron": "amd",
    "phenom": "amd",
    "athlon": "amd",
    "skylake": "intel",
    "cascadelake": "intel",
    "icelake": "intel",
    "cooperlake": "intel",
    "sapphirerapids": "intel",
    "granite": "intel",
    "broadwell": "intel",
    "haswell": "intel",
    "ivybridge": "intel",
    "sandybridge": "intel",
    "westmere": "intel",
    "nehalem": "intel",
    "penryn": "intel",
    "conroe": "intel",
    "kngm": "intel",
}


def _host_vendor(model: str | None) -> str | None:
    text = (model or "").lower()
    if "amd" in text or "epyc" in text or "ryzen" in text:
        return "amd"
    if "intel" in text or "xeon" in text:
        return "intel"
    return None


def cpu_compatible(
    cpu_type: str | None, source_model: str | None, target_model: str | None
) -> str | None:
    """None when a guest of ``cpu_type`` can run on the target host; else the reason."""
    if not cpu_type:
        return None
    t = cpu_type.lower()
    if t == "host" or t == "max":
        if source_model and target_model and source_model != target_model:
            return f"CPU type {cpu_type} needs the same host CPU ({source_model})"
        return None
    key = t.replace("-", "").replace("_", "")
    need = next((v for k, v in CPU_VENDORS.items() if key.startswith(k)), None)
    have = _host_vendor(target_model)
    if need and have and need != have:
        return f"CPU type {cpu_type} needs an {need.upper() if need == 'amd' else 'Intel'} host"
    return None


def _bytes(value: Any, what: str) -> int:
    try:
        return int(parse_size(value))
    except InvalidInputError as err:
        raise InvalidInputError(f"Policy {what}: {err.message}") from None


@dataclass(frozen=True)
class Policy:
    """What a plan must respect. Every planner takes one (``policy=Policy(...)``).

    Capacity of a node (memory): ``mem_limit`` x physical memory, minus the host's
    ``mem_reserve`` (bytes or a size such as ``"8G"``; a mapping node -> size for
    per-node values, ``"*"`` as the default). What counts against it is ``memory``:

    - ``"used"`` (default): the node's memory in use now, plus the memory each moved guest
      uses now. What the host actually carries; fits more, trusts the present.
    - ``"allocated"``: the configured memory of the running guests on the node, as if every
      guest used all of it (HA starts a guest with its full allocation). Conservative.

    CPU: running vCPUs per node at most ``vcpu_ratio`` x its CPUs, and a guest never gets
    more vCPUs than the node has; ``cpu_limit`` caps the CPU use (fraction, from the live
    ``cpu`` of node and guests) for rebalancing by CPU.

    Placement rules (each can be switched off): HA rules and groups (``honour_ha``), the tag
    convention (``tags``), the guest's CPU type (``check_cpu_type``). Tags, with the defaults:

    - ``affinity-<group>``: guests sharing the tag stay on one node.
    - ``anti-affinity-<group>``: guests sharing the tag never share a node.
    - ``pin-<node>``: the guest may run only on that node (several pins: any of them).
    - ``no-move``: planners never move the guest (it is reported instead).

    The prefixes are fields (``affinity_tag`` ...), so another convention (ProxLB's
    ``plb_affinity_``, ``plb_anti_affinity_``, ``plb_pin_``, ``plb_ignore_vm``) is one
    ``Policy(...)`` away.

    ``move_stopped``: evacuations move stopped guests too (default) or leave them (reported
    as staying). ``n_plus_1``: :func:`what_if` reports both anyway; for :func:`evacuate` it
    is not used.
    """

    mem_limit: float = 0.9
    mem_reserve: int | str | Mapping[str, int | str] = "4G"
    memory: str = "used"
    vcpu_ratio: float = 4.0
    cpu_limit: float = 0.8
    honour_ha: bool = True
    tags: bool = True
    check_cpu_type: bool = True
    move_stopped: bool = True
    affinity_tag: str = "affinity-"
    anti_affinity_tag: str = "anti-affinity-"
    pin_tag: str = "pin-"
    no_move_tag: str = "no-move"

    def __post_init__(self) -> None:
        if not 0 < self.mem_limit <= 1:
            raise InvalidInputError(f"Policy mem_limit must be in (0, 1], got {self.mem_limit!r}")
        if not 0 < self.cpu_limit <= 1:
            raise InvalidInputError(f"Policy cpu_limit must be in (0, 1], got {self.cpu_limit!r}")
        if not self.vcpu_ratio > 0:
            raise InvalidInputError(f"Policy vcpu_ratio must be positive, got {self.vcpu_ratio!r}")
        if self.memory not in ("used", "allocated"):
            raise InvalidInputError(
                f"Policy memory must be 'used' or 'allocated', got {self.memory!r}"
            )
        self.reserve_for("")  # validate sizes now, not in the middle of a plan

    def reserve_for(self, node: str) -> int:
        """The host memory reserve of ``node`` in bytes."""
        r = self.mem_reserve
        if isinstance(r, Mapping):
            value = r.get(node, r.get("*", 0))
            return _bytes(value, f"mem_reserve[{node!r}]")
        return _bytes(r, "mem_reserve")

    def with_(self, **changes: Any) -> Policy:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass
class NodeInfo:
    name: str
    online: bool
    cores: float
    mem_total: float
    mem_cap: float  # what guests may use: mem_limit * total - reserve
    cpu_model: str | None
    # load (mutable while planning)
    mem_load: float = 0.0  # per Policy.memory
    vcpus: float = 0.0  # running vCPUs
    cpu_used: float = 0.0  # cores in use
    storages: dict[str, float] = field(default_factory=dict)  # local storage -> avail bytes


@dataclass
class GuestInfo:
    vmid: int
    name: str
    type: str
    node: str
    running: bool
    template: bool
    lock: str | None
    cores: float
    mem_alloc: float
    mem_demand: float  # what it adds to a node's load under the policy (0 when stopped)
    cpu_used: float  # cores in use
    cpu_type: str | None
    tags: list[str]
    local_disks: dict[str, float]  # storage -> bytes on non-shared storages
    shared_disks: set[str]  # shared storages it has disks on
    local_resources: list[str]
    unreadable: bool  # no config known (details missing): local disks unknown
    allowed: set[str] | None = None  # strict node sets (HA strict, pins); None = any
    preferred: dict[str, int] = field(default_factory=dict)  # node -> priority
    apart: set[str] = field(default_factory=set)  # anti-affinity group keys
    together: set[str] = field(default_factory=set)  # affinity group keys
    no_move: bool = False


@dataclass
class Site:
    """One cluster (profile) as planners see it."""

    profile: str
    nodes: dict[str, NodeInfo]
    guests: dict[int, GuestInfo]
    shared: set[str]  # shared storages (available on every node that lists them)
    shared_on: dict[str, set[str]]  # shared storage -> nodes that see it active
    shared_avail: dict[str, float] = field(default_factory=dict)  # shared storage -> free

    _groups: dict[str, list[GuestInfo]] | None = None

    def group(self, key: str) -> list[GuestInfo]:
        """Guests sharing an affinity or anti-affinity key (``tag:web``, ``ha:rule``)."""
        if self._groups is None:
            idx: dict[str, list[GuestInfo]] = {}
            for g in self.guests.values():
                for k in g.apart | g.together:
                    idx.setdefault(k, []).append(g)
            self._groups = idx
        return self._groups.get(key, [])


_GUEST_COLUMNS = (
    "profile", "vmid", "name", "type", "node", "status", "template", "lock", "cpu", "cores",
    "mem_total", "mem_used", "cpu_type", "tags", "disks", "local_resources",
)  # fmt: skip


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts keyed by column name (pandas types the keys as Hashable)."""
    return cast("list[dict[str, Any]]", df.to_dict("records"))


def _f(v: Any, default: float = 0.0) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(x) else x


def _tags(v: Any) -> list[str]:
    if isinstance(v, list | tuple):
        return [str(t) for t in v]
    if isinstance(v, str) and v:
        return [t for t in v.replace(",", ";").split(";") if t]
    return []


def _text(v: Any) -> str | None:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    s = str(v)
    return s or None


class Model:
    """Frames -> :class:`Site` per profile, with the policy's rules applied to each guest."""

    def __init__(
        self,
        nodes: pd.DataFrame,
        guests: pd.DataFrame,
        storage: pd.DataFrame | None,
        ha_rules: pd.DataFrame | None,
        policy: Policy,
    ) -> None:
        self.policy = policy
        self.sites: dict[str, Site] = {}
        for col in ("profile", "node", "cores", "mem_total"):
            if col not in nodes.columns:
                raise InvalidInputError(f"nodes frame lacks column {col!r}")
        for col in ("profile", "vmid", "node", "status", "cores", "mem_total"):
            if len(guests) and col not in guests.columns:
                raise InvalidInputError(f"guests frame lacks column {col!r}")
        for r in records(nodes):
            profile = str(r["profile"])
            site = self.sites.get(profile)
            if site is None:
                site = self.sites[profile] = Site(profile, {}, {}, set(), {})
            online = r.get("online")
            if online is None or (not isinstance(online, bool) and pd.isna(online)):
                online = str(r.get("status", "")) == "online"
            total = _f(r["mem_total"])
            name = str(r["node"])
            n = NodeInfo(
                name=name,
                online=bool(online),
                cores=_f(r["cores"]),
                mem_total=total,
                mem_cap=max(0.0, policy.mem_limit * total - policy.reserve_for(name)),
                cpu_model=_text(r.get("cpu_model")),
            )
            if policy.memory == "used":
                n.mem_load = _f(r.get("mem_used"))
            n.cpu_used = _f(r.get("cpu")) * n.cores
            site.nodes[name] = n
        if storage is not None and len(storage):
            self._storage(storage)
        if len(guests):
            self._guests(guests)
        if ha_rules is not None and len(ha_rules) and policy.honour_ha:
            self._ha(ha_rules)

    def _storage(self, storage: pd.DataFrame) -> None:
        for r in records(storage):
            site = self.sites.get(str(r["profile"]))
            if site is None or _text(r.get("node")) is None:
                continue
            usable = str(r.get("status", "available")) == "available"
            for flag in ("active", "enabled"):
                v = r.get(flag)
                if v is not None and not pd.isna(v) and not bool(v):
                    usable = False
            name, node = str(r["storage"]), str(r["node"])
            shared = r.get("shared")
            if shared is not None and not pd.isna(shared) and bool(shared):
                site.shared.add(name)
                if usable:
                    site.shared_on.setdefault(name, set()).add(node)
            elif usable and node in site.nodes:
                site.nodes[node].storages[name] = _f(r.get("avail"), math.inf)

    def _guests(self, guests: pd.DataFrame) -> None:
        p = self.policy
        # only what placement reads: the rows become dicts, and guests frames are wide
        wanted = [c for c in _GUEST_COLUMNS if c in guests.columns]
        for r in records(guests[wanted]):
            site = self.sites.get(str(r["profile"]))
            if site is None or pd.isna(r["vmid"]):
                continue
            running = str(r["status"]) == "running"
            template = bool(r.get("template")) if not pd.isna(r.get("template", False)) else False
            alloc = _f(r["mem_total"])
            used = _f(r.get("mem_used"), alloc)
            demand = (alloc if p.memory == "allocated" else used) if running else 0.0
            disks = r.get("disks")
            local: dict[str, float] = {}
            shared: set[str] = set()
            unreadable = not isinstance(disks, list)
            if isinstance(disks, list):
                for d in disks:
                    st = d.get("storage")
                    if not st or d.get("media") == "cdrom":
                        continue
                    if st in site.shared:
                        shared.add(st)
                    else:
                        local[st] = local.get(st, 0.0) + _f(d.get("size"))
            res = r.get("local_resources")
            tags = _tags(r.get("tags"))
            g = GuestInfo(
                vmid=int(r["vmid"]),
                name=_text(r.get("name")) or str(r["vmid"]),
                type=str(r.get("type") or "qemu"),
                node=str(r["node"]),
                running=running and not template,
                template=template,
                lock=_text(r.get("lock")),
                cores=_f(r["cores"], 1.0),
                mem_alloc=alloc,
                mem_demand=demand,
                cpu_used=_f(r.get("cpu")) * _f(r["cores"], 1.0) if running else 0.0,
                cpu_type=_text(r.get("cpu_type")),
                tags=tags,
                local_disks=local,
                shared_disks=shared,
                local_resources=list(res) if isinstance(res, list | tuple) else [],
                unreadable=unreadable,
            )
            if p.tags:
                self._apply_tags(g, site)
            site.guests[g.vmid] = g
            n = site.nodes.get(g.node)
            if n is not None and g.running:
                n.vcpus += g.cores
                if p.memory == "allocated":
                    n.mem_load += g.mem_alloc

    def _apply_tags(self, g: GuestInfo, site: Site) -> None:
        p = self.policy
        pins: set[str] = set()
        for t in g.tags:
            if t.startswith(p.anti_affinity_tag):
                g.apart.add("tag:" + t[len(p.anti_affinity_tag) :])
            elif t.startswith(p.affinity_tag):
                g.together.add("tag:" + t[len(p.affinity_tag) :])
            elif t.startswith(p.pin_tag):
                pins.add(t[len(p.pin_tag) :])
            elif t == p.no_move_tag:
                g.no_move = True
        if pins:
            g.allowed = pins if g.allowed is None else g.allowed & pins

    def _ha(self, rules: pd.DataFrame) -> None:
        for r in records(rules):
            site = self.sites.get(str(r["profile"]))
            if site is None or not bool(r.get("enabled", True)):
                continue
            vmids = [int(v) for v in (r.get("vmids") or [])]
            members = [site.guests[v] for v in vmids if v in site.guests]
            key = f"ha:{r['rule']}"
            if r["type"] == "node-affinity":
                nodes = dict(r.get("nodes") or {})
                for g in members:
                    if bool(r.get("strict")):
                        g.allowed = set(nodes) if g.allowed is None else g.allowed & set(nodes)
                    for n, prio in nodes.items():
                        g.preferred[n] = max(g.preferred.get(n, 0), int(prio) + 1)
            elif r["type"] == "resource-affinity":
                for g in members:
                    (g.apart if str(r.get("affinity")) == "negative" else g.together).add(key)


def profiles_of(frames: Iterable[pd.DataFrame]) -> list[str]:
    out: list[str] = []
    for f in frames:
        if f is not None and "profile" in f:
            out.extend(str(p) for p in f["profile"].dropna().unique())
    return sorted(set(out))
