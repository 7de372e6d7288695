"""What-if placement of new guests and capacity remaining in guests of one shape."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import capacity
from .._format import format_bytes
from ._common import build, site_arg
from ._model import GuestInfo, NodeInfo, Policy, Site, records
from ._n1 import N1Model
from ._place import unfit
from ._plan import _typed
from ._spec import normalise_specs

__all__ = ["PLACEMENT_COLUMNS", "WHATIF_COLUMNS", "WhatIf", "max_count", "what_if"]

PLACEMENT_COLUMNS: dict[str, str] = {
    "profile": "string",
    "shape": "string",
    "index": "int64",  # 1.. within the shape
    "node": "string",
    "storage": "string",
    "n_plus_1": "bool",  # still within the count that keeps N+1 failure headroom
}
WHATIF_COLUMNS: dict[str, str] = {
    "profile": "string",
    "shape": "string",
    "cores": "int64",
    "memory": "int64",
    "disk": "int64",
    "requested": "int64",
    "fit": "int64",
    "fit_n_plus_1": "int64",
    "max_count": "int64",
    "max_count_n_plus_1": "int64",
    "stopped_by": "string",  # memory | vcpus | storage | cpu type | no node | ...
    "stopped_node": "string",
    "stopped_reason": "string",
    "n_plus_1_reason": "string",  # which node's failure the next one would leave uncovered
}


@dataclass
class WhatIf:
    """The answer of :func:`what_if`.

    - ``summary``: per cluster and shape (columns :data:`WHATIF_COLUMNS`): how many were
      asked for, how many fit (``fit``) and how many fit while keeping N+1 failure headroom
      (``fit_n_plus_1``); ``max_count`` / ``max_count_n_plus_1``: capacity remaining in guests
      of that shape; ``stopped_by`` / ``stopped_node`` / ``stopped_reason``: what stops the
      next one (the resource, on the node that came closest).
    - ``placements``: where each new guest would go (columns :data:`PLACEMENT_COLUMNS`).
    """

    summary: pd.DataFrame
    placements: pd.DataFrame
    policy: Policy = field(repr=False, default_factory=Policy)

    def _repr_html_(self) -> str:
        view = self.summary.copy()
        view["memory"] = [format_bytes(v) for v in view["memory"]]
        return "<h4>What if</h4>" + view.to_html(index=False, border=0, na_rep="-")


def _category(reason: str) -> str:
    for word, cat in (
        ("memory", "memory"),
        ("vCPU", "vcpus"),
        ("storage", "storage"),
        ("CPU type", "cpu type"),
        ("offline", "offline"),
        ("anti-affinity", "anti-affinity"),
    ):
        if word in reason:
            return cat
    return "rule"


def _new_guest(site: Site, spec: dict[str, Any], i: int) -> GuestInfo:
    storage = None if pd.isna(spec["storage"]) else str(spec["storage"])
    local = {storage: float(spec["disk"])} if storage and storage not in site.shared else {}
    return GuestInfo(
        vmid=-i,
        name=f"{spec['shape']}#{i}",
        type=str(spec["type"]),
        node="",
        running=True,
        template=False,
        lock=None,
        cores=float(spec["cores"]),
        mem_alloc=float(spec["memory"]),
        mem_demand=float(spec["memory"]),  # a new guest is planned at its full memory
        cpu_used=0.0,
        cpu_type=None,
        tags=[],
        local_disks=local,
        shared_disks={storage} if storage and storage in site.shared else set(),
        local_resources=[],
        unreadable=False,
    )


def _place_one(
    site: Site, g: GuestInfo, policy: Policy, shared_room: dict[str, float], disk: float
) -> tuple[NodeInfo | None, dict[str, str]]:
    reasons: dict[str, str] = {}
    best: NodeInfo | None = None
    best_key: tuple[float, float, str] | None = None
    for n in site.nodes.values():
        why = unfit(site, g, n, policy)
        if why is None:
            for st in g.shared_disks:
                if shared_room.get(st, float("inf")) < disk:
                    why = f"storage {st!r}: not enough room left"
        if why:
            reasons[n.name] = why
            continue
        key = (
            -(n.mem_cap - n.mem_load - g.mem_demand) / (n.mem_cap or 1.0),
            n.vcpus / (n.cores or 1.0),
            n.name,
        )
        if best_key is None or key < best_key:
            best, best_key = n, key
    return best, reasons


def _run(
    site: Site, specs: list[dict[str, Any]], policy: Policy, limit: int | None
) -> tuple[list[tuple[str, int, str, str | None]], dict[str, Any] | None]:
    """Place the specs in order on ``site`` (mutated). Returns (placements, first failure)."""
    shared_room = _shared_room(site)
    out: list[tuple[str, int, str, str | None]] = []
    counter = 0
    for spec in specs:
        want = int(spec["count"]) if limit is None else limit
        for i in range(1, want + 1):
            counter += 1
            g = _new_guest(site, spec, counter)
            target, reasons = _place_one(site, g, policy, shared_room, float(spec["disk"]))
            if target is None:
                return out, {"shape": spec["shape"], "reasons": reasons}
            g.node = target.name
            target.mem_load += g.mem_demand
            target.vcpus += g.cores
            for st, size in g.local_disks.items():
                target.storages[st] -= size
            for st in g.shared_disks:
                shared_room[st] = shared_room.get(st, float("inf")) - float(spec["disk"])
            site.guests[g.vmid] = g
            storage = None if pd.isna(spec["storage"]) else str(spec["storage"])
            out.append((str(spec["shape"]), i, target.name, storage))
    return out, None


def _shared_room(site: Site) -> dict[str, float]:
    return dict(site.shared_avail)


def _stopper(
    site: Site, failure: dict[str, Any] | None
) -> tuple[str | None, str | None, str | None]:
    if failure is None:
        return None, None, None
    reasons: dict[str, str] = failure["reasons"]
    if not reasons:
        return "no node", None, "no online node"
    online = {n for n, node in site.nodes.items() if node.online}
    # the node that came closest: the online one with the most memory left
    pick = max(
        (n for n in reasons if n in online),
        key=lambda n: site.nodes[n].mem_cap - site.nodes[n].mem_load,
        default=next(iter(reasons)),
    )
    return _category(reasons[pick]), pick, reasons[pick]


def _n1_ok(
    inp: Any,
    site: Site,
    placed: list[tuple[str, int, str, str | None]],
    specs: dict[str, dict[str, Any]],
    policy: Policy,
) -> str | None:
    """None when the cluster with these new guests keeps N+1 headroom (capacity.headroom);
    else which node's failure it could not absorb, and why."""
    # only what headroom reads: these frames are rebuilt for every step of the search
    ncols = [
        c
        for c in ("profile", "node", "online", "status", "cores", "cpu", "mem_used", "mem_total")
        if c in inp.nodes
    ]
    nodes = inp.nodes.loc[inp.nodes["profile"].astype(str) == site.profile, ncols].copy()
    cols = ["profile", "vmid", "node", "status", "template", "cores", "mem_total", "mem_used"]
    guests = inp.guests if len(inp.guests) else pd.DataFrame(columns=cols)
    guests = guests.loc[
        guests["profile"].astype(str) == site.profile, [c for c in cols if c in guests]
    ]
    if placed:
        add_mem: dict[str, float] = {}
        rows: list[dict[str, Any]] = []
        for shape, _i, node, _st in placed:
            s = specs[shape]
            add_mem[node] = add_mem.get(node, 0.0) + float(s["memory"])
            rows.append(
                {
                    "profile": site.profile,
                    "vmid": 10_000_000 + len(rows),
                    "node": node,
                    "status": "running",
                    "template": False,
                    "cores": int(s["cores"]),
                    "mem_total": int(s["memory"]),
                    "mem_used": int(s["memory"]),
                }
            )
        nodes["mem_used"] = [
            float(u) + add_mem.get(str(n), 0.0)
            for u, n in zip(pd.to_numeric(nodes["mem_used"]).fillna(0), nodes["node"], strict=True)
        ]
        guests = pd.concat([guests, pd.DataFrame(rows)], ignore_index=True)
    h = capacity.headroom(nodes, guests, max_vcpu_ratio=policy.vcpu_ratio)
    bad = h[~h["fits"].astype("boolean").fillna(True).astype(bool)]
    if bad.empty:
        return None
    r = bad.iloc[0]
    what = []
    if not bool(pd.notna(r["mem_fits"]) and r["mem_fits"]):
        what.append(f"memory ({int(r['unplaced'])} guest(s) would find no room)")
    if not bool(pd.notna(r["vcpus_fit"]) and r["vcpus_fit"]):
        what.append("vCPUs")
    return f"if {r['node']} fails: " + (" and ".join(what) or "its guests do not fit")


def _n1_reason(
    inp: Any,
    site: Site,
    placed: list[tuple[str, int, str, str | None]],
    k: int,
    spec: dict[str, Any],
    policy: Policy,
    n1: N1Model,
) -> str | None:
    """Why guest k+1 of ``spec`` would leave a node's failure uncovered: one headroom call
    for the answer shown (the search itself asks the cheap :class:`N1Model`)."""
    specs = {str(spec["shape"]): spec}
    if k == 0 and not n1.fits(()):
        return f"already now: {_n1_ok(inp, site, [], specs, policy)}"
    if k >= len(placed):
        return "does not fit at all"
    return _n1_ok(inp, site, placed[: k + 1], specs, policy)


def _max_n1(
    n1: N1Model, placed: list[tuple[str, int, str, str | None]], spec: dict[str, Any]
) -> int:
    """Largest k <= len(placed) keeping N+1 headroom (binary search: more guests never help).

    ``placed`` is where guests of ``spec`` go one after the other on the cluster as it is
    (``_run`` is greedy and sequential, so the first k of them are where k guests would go);
    ``n1`` answers :func:`pvekit.capacity.headroom` for the cluster with them added.
    """
    mem, cores = float(int(spec["memory"])), float(int(spec["cores"]))

    def ok(k: int) -> bool:
        return n1.fits((node, mem, cores) for _shape, _i, node, _st in placed[:k])

    if not ok(0):
        return 0
    lo, hi = 0, len(placed)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


_CAP = 100_000  # never count further than this many guests of one shape


def what_if(
    source: Any,
    add: Any,
    *,
    profile: str | None = None,
    policy: Policy | None = None,
) -> WhatIf:
    """Where would new guests go, and how many fit? (:class:`WhatIf`).

    ``add``: :func:`guest_spec` (``guest_spec(cores=4, memory="8G", disk="64G",
    storage="ceph-vm", count=10)``), several concatenated, or a dict of its arguments. Each
    cluster of ``source`` (or only ``profile``) is asked separately.

    Each new guest is planned at its full memory and vCPUs on the node with the most memory
    left that passes the same checks as a migration target (limits and reserve of the
    policy, storage with room when the spec names one). The shapes are placed in the order
    given (``placements``). Per shape, on the cluster as it is now: ``max_count`` = how many
    of that shape fit at all; ``max_count_n_plus_1`` = how many fit while
    :func:`pvekit.capacity.headroom` still finds room for every node's running guests on the
    others if that node fails (0 when the cluster already lacks N+1 headroom).
    """
    specs_df = normalise_specs(add)
    inp, model, pol = build(source, policy)
    specs = records(specs_df)
    summary: list[dict[str, Any]] = []
    placements: list[dict[str, Any]] = []
    for site in site_arg(model, profile):
        _shared_avail(inp, site)
        pristine = copy.deepcopy(site)
        n1_model = N1Model.build(inp.nodes, inp.guests, site.profile, max_vcpu_ratio=pol.vcpu_ratio)
        seq_site = copy.deepcopy(site)
        placed, _failure = _run(seq_site, specs, pol, None)
        for spec in specs:
            alone = copy.deepcopy(pristine)
            got, failure = _run(alone, [spec], pol, _CAP)
            maxc = len(got)
            n1 = _max_n1(n1_model, got, spec)
            n1_why = _n1_reason(inp, pristine, got, n1, spec, pol, n1_model)
            by, node, why = _stopper(alone, failure)
            summary.append(
                {
                    "profile": site.profile,
                    "shape": spec["shape"],
                    "cores": spec["cores"],
                    "memory": spec["memory"],
                    "disk": spec["disk"],
                    "requested": spec["count"],
                    "fit": min(int(spec["count"]), maxc),
                    "fit_n_plus_1": min(int(spec["count"]), n1),
                    "max_count": maxc,
                    "max_count_n_plus_1": n1,
                    "stopped_by": by,
                    "stopped_node": node,
                    "stopped_reason": why,
                    "n_plus_1_reason": n1_why,
                }
            )
        n1_of = {
            r["shape"]: r["max_count_n_plus_1"] for r in summary if r["profile"] == site.profile
        }
        for shape, i, node_name, storage in placed:
            placements.append(
                {
                    "profile": site.profile,
                    "shape": shape,
                    "index": i,
                    "node": node_name,
                    "storage": storage,
                    "n_plus_1": i <= n1_of.get(shape, 0),
                }
            )
    return WhatIf(_typed(summary, WHATIF_COLUMNS), _typed(placements, PLACEMENT_COLUMNS), pol)


def _shared_avail(inp: Any, site: Site) -> None:
    room: dict[str, float] = {}
    st = inp.storage
    if st is not None and len(st):
        mine = st[(st["profile"].astype(str) == site.profile)]
        for r in records(mine):
            if str(r["storage"]) in site.shared and pd.notna(r.get("avail")):
                room[str(r["storage"])] = float(r["avail"])
    site.shared_avail = room


def max_count(
    source: Any,
    spec: Any,
    *,
    profile: str | None = None,
    policy: Policy | None = None,
) -> pd.DataFrame:
    """Capacity remaining, in guests of one shape, per cluster: the ``summary`` of
    :func:`what_if` (``max_count``, ``max_count_n_plus_1``, what stops the next one)."""
    return what_if(source, spec, profile=profile, policy=policy).summary
