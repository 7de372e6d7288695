"""Endpoint handlers: what each API path answers, shaped like real PVE bodies.

Field names and JSON types follow the captured bodies in ``tests/data/pve-fixtures``: 0/1 ints
for booleans, strings where PVE sends strings (``loadavg``, ``cpuinfo.mhz``, network
``netmask``/``mtu``, task list ``saved``), optional keys only when PVE sends them (``pid`` of a
running guest, ``template`` on list rows of templates, ``lock``, ``tags``...). Version-specific
keys follow ``pve_version`` (``memhost`` on 9.x guest rows, ``memory.available`` on 9.x node
status...).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._auth import AuthDB, Identity
from ._errors import SimHTTPError, param_error
from ._model import GIB, Guest, Node, StorageUse
from ._state import ClusterState

__all__ = ["ROUTES", "Ctx"]

VERSIONS = {
    9: {
        "release": "9.1",
        "version": "9.1.1",
        "repoid": "42db4a6cf33dac83",
        "manager": "pve-manager/9.1.1/42db4a6cf33dac83",
    },
    8: {
        "release": "8.4",
        "version": "8.4.14",
        "repoid": "b502d23c55afcba1",
        "manager": "pve-manager/8.4.14/b502d23c55afcba1",
    },
}


@dataclass
class Ctx:
    """One request as a handler sees it."""

    state: ClusterState
    auth: AuthDB
    ident: Identity | None
    method: str
    vars: dict[str, str]
    params: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    template: str = ""  # the schema path serving this request

    def p(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name, default)
        if isinstance(value, list):
            return value[-1] if value else default
        return value

    @property
    def user(self) -> str:
        return self.ident.authid if self.ident else "root@pam"

    @property
    def major(self) -> int:
        return self.state.major

    def node(self) -> Node:
        return self.state.node(self.vars["node"])


Handler = Callable[[Ctx], Any]
ROUTES: dict[tuple[str, str], Handler] = {}


def route(method: str, *paths: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for p in paths:
            ROUTES[(p, method)] = fn
        return fn

    return deco


def _gtype(path_var_source: Ctx) -> str:
    return str(path_var_source.extra["gtype"])


# -- version, cluster -----------------------------------------------------------------------


@route("GET", "/version")
def version(ctx: Ctx) -> Any:
    v = VERSIONS[9 if ctx.major >= 9 else 8]
    out: dict[str, Any] = {"release": v["release"], "version": v["version"], "repoid": v["repoid"]}
    if ctx.major >= 8:
        out["console"] = "xtermjs"
    return out


@route("GET", "/nodes/{node}/version")
def node_version(ctx: Ctx) -> Any:
    ctx.node()
    v = VERSIONS[9 if ctx.major >= 9 else 8]
    return {"release": v["release"], "version": v["version"], "repoid": v["repoid"]}


@route("GET", "/cluster/status")
def cluster_status(ctx: Ctx) -> Any:
    st = ctx.state
    rows: list[dict[str, Any]] = []
    online = sum(1 for n in st.nodes.values() if n.online)
    standalone = len(st.nodes) == 1
    if not standalone:
        rows.append(
            {
                "type": "cluster",
                "id": "cluster",
                "name": st.name,
                "nodes": len(st.nodes),
                "quorate": int(online * 2 > len(st.nodes)),
                "version": 3 + len(st.nodes),
            }
        )
    for i, n in enumerate(st.nodes.values()):
        rows.append(
            {
                "type": "node",
                "id": f"node/{n.name}",
                "name": n.name,
                "nodeid": 0 if standalone else n.nodeid,
                "ip": n.ip,
                "online": int(n.online),
                "local": int(i == 0),
                "level": "",
            }
        )
    return rows


def _node_row(st: ClusterState, n: Node, now: float) -> dict[str, Any]:
    if not n.online:
        return {
            "id": f"node/{n.name}",
            "node": n.name,
            "status": "offline",
            "type": "node",
            **({"cgroup-mode": 2} if st.major >= 7 else {}),
        }
    cpu, mem = _node_usage(st, n, now)
    row = {
        "id": f"node/{n.name}",
        "type": "node",
        "node": n.name,
        "status": "online",
        "cpu": cpu,
        "maxcpu": n.cpus,
        "mem": mem,
        "maxmem": n.maxmem,
        "disk": n.rootfs_used,
        "maxdisk": n.rootfs_total,
        "uptime": int(now - n.boot_time),
        "level": "",
        "cgroup-mode": 2,
    }
    return row


def _node_usage(st: ClusterState, n: Node, now: float) -> tuple[float, int]:
    """A node's cpu fraction and used memory, from the guests running on it.

    All nodes are computed in one pass over the guests and cached per change and 10 s
    bucket, which keeps /cluster/resources fast with thousands of guests.
    """
    cache = st.__dict__.setdefault("_node_usage_cache", {})
    key = (st.generation, int(now // 10))
    table = cache.get(key)
    if table is None:
        cores: dict[str, float] = {}
        mem: dict[str, int] = {}
        for g in st.guests.values():
            if g.running:
                cores[g.node] = cores.get(g.node, 0.0) + g.cpu(now) * g.maxcpu
                mem[g.node] = mem.get(g.node, 0) + g.mem(now)
        table = {}
        for name, node in st.nodes.items():
            cpu = min(1.0, node.load.level(now, 10.0) + cores.get(name, 0.0) / max(node.cpus, 1))
            used = min(node.maxmem - GIB, node.mem_base + mem.get(name, 0))
            table[name] = (cpu, used)
        cache.clear()
        cache[key] = table
    return table[n.name]


def _guest_row(st: ClusterState, g: Guest, now: float) -> dict[str, Any]:
    """A /cluster/resources row."""
    netin, netout, dread, dwrite = g.counters(now)
    row: dict[str, Any] = {
        "id": f"{g.type}/{g.vmid}",
        "type": g.type,
        "vmid": g.vmid,
        "name": g.name,
        "node": g.node,
        "status": g.status,
        "cpu": g.cpu(now),
        "maxcpu": g.maxcpu,
        "mem": g.mem(now),
        "maxmem": g.maxmem,
        "disk": g.disk_used(now),
        "maxdisk": g.maxdisk,
        "diskread": dread,
        "diskwrite": dwrite,
        "netin": netin,
        "netout": netout,
        "uptime": g.uptime(now),
        "template": int(g.template),
    }
    if st.major >= 9 and g.type == "qemu":
        row["memhost"] = int(row["mem"] * 1.03) if g.running else 0
    if g.tags:
        row["tags"] = ";".join(g.tags)
    if g.pool:
        row["pool"] = g.pool
    if g.ha_state:
        row["hastate"] = g.ha_state
    if g.lock:
        row["lock"] = g.lock
    return row


def _storage_row(
    st: ClusterState, node: str, name: str, use: StorageUse, now: float
) -> dict[str, Any]:
    sdef = st.storage_defs[name]
    row: dict[str, Any] = {
        "id": f"storage/{node}/{name}",
        "type": "storage",
        "storage": name,
        "node": node,
        "status": use.status,
        "shared": int(sdef.shared),
        "content": ",".join(sdef.content),
        "plugintype": sdef.type,
    }
    if use.status == "available":
        row["disk"] = use.used(now)
        row["maxdisk"] = use.total
    return row


def _resources(st: ClusterState, rtype: str | None) -> bytes:
    """The serialized /cluster/resources body, cached per change and 10 s bucket (PVE's
    status daemon refreshes these numbers every 10 s too)."""
    now = st.clock.now()
    cache = st.__dict__.setdefault("_resources_cache", {})
    key = (rtype, st.generation, int(now // 10))
    hit = cache.get(key)
    if hit is not None:
        return hit
    bucket = int(now // 10) * 10.0
    rows: list[dict[str, Any]] = []
    if rtype in (None, "vm"):
        rows.extend(_guest_row(st, g, bucket) for g in st.guests.values())
    if rtype in (None, "node"):
        rows.extend(_node_row(st, n, bucket) for n in st.nodes.values())
    if rtype in (None, "storage"):
        for (node, name), use in st.storage_use.items():
            if st.nodes[node].online:
                rows.append(_storage_row(st, node, name, use, bucket))
    if rtype is None:
        rows.extend({"id": f"/pool/{p}", "type": "pool", "pool": p} for p in st.pools)
    if rtype in (None, "sdn"):
        rows.extend(
            {
                "id": f"sdn/{n}/localnetwork",
                "type": "sdn",
                "sdn": "localnetwork",
                "node": n,
                "status": "ok",
            }
            for n, node in st.nodes.items()
            if node.online
        )
    body = json.dumps({"data": rows}, separators=(",", ":")).encode()
    cache.clear()
    cache[key] = body
    return body


@route("GET", "/cluster/resources")
def cluster_resources(ctx: Ctx) -> Any:
    return RawJSON(_resources(ctx.state, ctx.p("type")))


class RawJSON:
    """A pre-serialized ``{"data": ...}`` body (the server sends it as is)."""

    def __init__(self, body: bytes) -> None:
        self.body = body


@route("GET", "/cluster/nextid")
def nextid(ctx: Ctx) -> Any:
    vmid = ctx.p("vmid")
    if vmid is not None:
        if int(vmid) in ctx.state.guests:
            raise param_error({"vmid": f"VM {vmid} already exists"})
        return str(int(vmid))
    return str(ctx.state.next_vmid())


def _task_row(t: Any, *, cluster: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "upid": t.upid,
        "node": t.node,
        "pid": t.pid,
        "pstart": t.pstart,
        "starttime": t.starttime,
        "type": t.type,
        "id": t.id,
        **_task_user(t.user),
    }
    if t.running:
        row["status"] = "RUNNING"
        row["saved"] = "0"
    else:
        row["status"] = t.outcome
        row["endtime"] = t.endtime
        if cluster:
            row["saved"] = "1"
    return row


def _task_user(authid: str) -> dict[str, str]:
    """PVE's ``convert_token_task``: a token's task shows the user and ``tokenid`` apart
    (the UPID keeps the whole ``user@realm!token``)."""
    user, sep, token = authid.partition("!")
    return {"user": user, "tokenid": token} if sep else {"user": authid}


@route("GET", "/cluster/tasks")
def cluster_tasks(ctx: Ctx) -> Any:
    # PVE keeps the recent tasks of every node in the cluster log (running ones first).
    tasks = sorted(ctx.state.tasks, key=lambda t: (not t.running, -t.starttime))
    return [_task_row(t, cluster=True) for t in tasks[:2000]]


@route("GET", "/cluster/ha/resources")
def ha_resources(ctx: Ctx) -> Any:
    return [
        {
            "sid": f"{'vm' if g.type == 'qemu' else 'ct'}:{g.vmid}",
            "type": "vm" if g.type == "qemu" else "ct",
            "state": g.ha_state or "started",
            "max_restart": 1,
            "max_relocate": 1,
            "digest": f"{g.vmid:040x}",
            **_ha_group(ctx, g),
        }
        for g in ctx.state.guests.values()
        if g.ha_state
    ]


def _ha_group(ctx: Ctx, g: Guest) -> dict[str, str]:
    """8.x: the group of an HA resource (the node-affinity rule that lists it)."""
    if ctx.major >= 9:
        return {}
    sid = _sid(g)
    for r in ctx.state.ha_rules:
        if r["type"] == "node-affinity" and sid in str(r["resources"]).split(","):
            return {"group": r["rule"]}
    return {}


@route("GET", "/cluster/ha/status/current")
def ha_status(ctx: Ctx) -> Any:
    from ._ha import status_current  # the HA manager's model lives in _ha

    return status_current(ctx.state)


def _ctime(t: int) -> str:
    import time as _time

    return _time.strftime("%a %b %d %H:%M:%S %Y", _time.gmtime(t))


@route("GET", "/cluster/options")
def cluster_options(ctx: Ctx) -> Any:
    return {
        "keyboard": "en-us",
        "console": "xtermjs",
        "migration": {"type": "secure", "network": "10.10.40.0/24"},
        "next-id": {"lower": "100", "upper": "1000000"},
        "description": f"{ctx.state.name} cluster (pvekit simulator)",
        "ha": {"shutdown_policy": "conditional"},
    }


@route("GET", "/cluster/backup")
def cluster_backup_jobs(ctx: Ctx) -> Any:
    st = ctx.state
    backup_storages = [n for n, d in st.storage_defs.items() if "backup" in d.content]
    if not st.guests or not backup_storages:
        return []
    storage = "pbs" if "pbs" in backup_storages else backup_storages[-1]
    return [
        {
            "id": "backup-nightly",
            "type": "vzdump",
            "schedule": "02:00",
            "storage": storage,
            "all": 1,
            "mode": "snapshot",
            "compress": "zstd",
            "enabled": 1,
            "mailnotification": "failure",
            "notes-template": "{{guestname}}",
            "next-run": int(st.clock.now() // 86400 + 1) * 86400 + 7200,
        }
    ]


def _sid(g: Guest) -> str:
    return f"{'vm' if g.type == 'qemu' else 'ct'}:{g.vmid}"


@route("GET", "/cluster/ha/groups")
def ha_groups(ctx: Ctx) -> Any:
    # 8.x keeps node affinity as groups; 9.x migrated them to rules, the list is empty
    if ctx.major >= 9:
        return []
    return [
        {
            "group": r["rule"],
            "type": "group",
            "nodes": r["nodes"],
            "restricted": int(bool(r.get("strict"))),
            "nofailback": 0,
            "digest": "0" * 40,
        }
        for r in ctx.state.ha_rules
        if r["type"] == "node-affinity"
    ]


@route("GET", "/cluster/ha/rules")
def ha_rules(ctx: Ctx) -> Any:
    rtype, resource = ctx.p("type"), ctx.p("resource")
    out = []
    for order, r in enumerate(ctx.state.ha_rules, start=1):
        if rtype and r["type"] != rtype:
            continue
        if resource and resource not in str(r["resources"]).split(","):
            continue
        row = {"order": order, "digest": "0" * 40, "disable": 0, **r}
        if "strict" in row:
            row["strict"] = int(bool(row["strict"]))
        out.append(row)
    return out


# -- pools ----------------------------------------------------------------------------------


def _pool_members(st: ClusterState, pool: str, rtype: str | None = None) -> list[dict[str, Any]]:
    """Members of ``pool``; ``rtype`` (``qemu``, ``lxc``, ``storage``) filters like PVE's
    ``type`` parameter of ``/pools`` and ``/pools/{poolid}``."""
    now = st.clock.now()
    rows = [
        _guest_row(st, g, now)
        for g in st.guests.values()
        if g.pool == pool and (not rtype or g.type == rtype)
    ]
    if not rtype or rtype == "storage":
        # a storage member is listed once per node that has it, as PVE's read_pool does
        rows += [
            _storage_row(st, node, name, use, now)
            for (node, name), use in st.storage_use.items()
            if st.storage_defs[name].pool == pool
        ]
    return rows


@route("GET", "/pools")
def pools(ctx: Ctx) -> Any:
    st = ctx.state
    poolid = ctx.p("poolid")
    if poolid is not None:
        if poolid not in st.pools:
            raise SimHTTPError(500, f"pool '{poolid}' does not exist")
        return [
            {
                "poolid": poolid,
                "comment": st.pools[poolid],
                "members": _pool_members(st, poolid, ctx.p("type")),
            }
        ]
    return [{"poolid": p, "comment": c} for p, c in st.pools.items()]


@route("GET", "/pools/{poolid}")
def pool_get(ctx: Ctx) -> Any:
    st = ctx.state
    pid = ctx.vars["poolid"]
    if pid not in st.pools:
        raise SimHTTPError(500, f"pool '{pid}' does not exist")
    return {"comment": st.pools[pid], "members": _pool_members(st, pid, ctx.p("type"))}


# Handler groups register their routes on import, once Ctx and route above exist; in the order
# the sections had in one file (a later registration of the same path and method wins).
from . import (  # noqa: E402, F401
    _handlers_access,
    _handlers_agent,
    _handlers_guests,
    _handlers_node_status,
    _handlers_storage,
)

# Which path templates carry a guest type or an action: filled in for the server's dispatch.
GUEST_TYPE_OF: dict[str, str] = {}
ACTION_OF: dict[str, str] = {}
for _path, _method in list(ROUTES):
    if "/qemu" in _path:
        GUEST_TYPE_OF[_path] = "qemu"
    elif "/lxc" in _path:
        GUEST_TYPE_OF[_path] = "lxc"
    if "/status/" in _path and _method == "POST":
        ACTION_OF[_path] = _path.rsplit("/", 1)[1]
