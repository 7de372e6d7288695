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
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._errors import InvalidInputError
from .._format import parse_upid
from . import _rrd
from ._auth import AuthDB, Identity
from ._errors import SimHTTPError, param_error
from ._model import GIB, Guest, Node, StorageUse, noise
from ._result import WithAttribs
from ._state import ClusterState, _truthy

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


# -- nodes ----------------------------------------------------------------------------------


@route("GET", "/nodes")
def nodes(ctx: Ctx) -> Any:
    st = ctx.state
    now = st.clock.now()
    rows = []
    for n in st.nodes.values():
        if not n.online:
            # /nodes knows no stats of a node that is down: "unknown" (QUIRKS 7)
            rows.append(
                {
                    "id": f"node/{n.name}",
                    "node": n.name,
                    "status": "unknown",
                    "type": "node",
                    "ssl_fingerprint": n.fingerprint,
                }
            )
            continue
        row = _node_row(st, n, now)
        row.pop("cgroup-mode", None)
        row["ssl_fingerprint"] = n.fingerprint
        rows.append(row)
    return rows


@route("GET", "/nodes/{node}")
def node_index(ctx: Ctx) -> Any:
    ctx.node()
    names = [
        "aplinfo",
        "apt",
        "capabilities",
        "ceph",
        "certificates",
        "config",
        "disks",
        "dns",
        "execute",
        "firewall",
        "hardware",
        "hosts",
        "journal",
        "lxc",
        "migrateall",
        "netstat",
        "network",
        "qemu",
        "query-url-metadata",
        "replication",
        "report",
        "rrd",
        "rrddata",
        "scan",
        "sdn",
        "services",
        "spiceshell",
        "startall",
        "status",
        "stopall",
        "storage",
        "subscription",
        "suspendall",
        "syslog",
        "tasks",
        "termproxy",
        "time",
        "version",
        "vncshell",
        "vnc websocket",
        "vzdump",
        "wakeonlan",
    ]
    return [{"name": n} for n in names]


@route("GET", "/nodes/{node}/status")
def node_status(ctx: Ctx) -> Any:
    st = ctx.state
    n = ctx.node()
    now = st.clock.now()
    cpu, mem = _node_usage(st, n, now)
    load = cpu * n.cpus * 0.6
    v = VERSIONS[9 if ctx.major >= 9 else 8]
    out: dict[str, Any] = {
        "cpu": cpu,
        "wait": cpu * 0.01,
        "idle": 0,
        "uptime": int(now - n.boot_time),
        "loadavg": [f"{load:.2f}", f"{load * 0.95:.2f}", f"{load * 0.9:.2f}"],
        "kversion": n.kversion,
        "pveversion": v["manager"],
        "cpuinfo": {
            "cpus": n.cpus,
            "cores": n.cores,
            "sockets": n.sockets,
            "model": n.model,
            "mhz": n.mhz,
            "hvm": "1",
            "user_hz": 100,
            "flags": "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov "
            "pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm "
            "constant_tsc pni ssse3 sse4_1 sse4_2 x2apic aes avx avx2",
        },
        "memory": {"total": n.maxmem, "used": mem, "free": n.maxmem - mem},
        "swap": {
            "total": n.swap_total,
            "used": int(n.swap_total * 0.01),
            "free": n.swap_total - int(n.swap_total * 0.01),
        },
        "rootfs": {
            "total": n.rootfs_total,
            "used": n.rootfs_used,
            "free": n.rootfs_total - n.rootfs_used,
            "avail": n.rootfs_total - n.rootfs_used,
        },
        "ksm": {"shared": 0},
        "current-kernel": {
            "sysname": "Linux",
            "release": n.kernel_release,
            "machine": "x86_64",
            "version": n.kversion.split(" ", 2)[-1],
        },
        "boot-info": {"mode": "efi", "secureboot": 0},
    }
    if ctx.major >= 9:
        out["memory"]["available"] = n.maxmem - mem
    return out


@route("GET", "/nodes/{node}/hosts")
def node_hosts(ctx: Ctx) -> Any:
    n = ctx.node()
    text = (
        f"127.0.0.1 localhost.localdomain localhost\n"
        f"{n.ip} {n.name}.{ctx.state.name}.example.com {n.name}\n\n"
        "# The following lines are desirable for IPv6 capable hosts\n"
        "::1     ip6-localhost ip6-loopback\n"
    )
    import hashlib

    return {"data": text, "digest": hashlib.sha1(text.encode()).hexdigest()}


@route("GET", "/nodes/{node}/subscription")
def node_subscription(ctx: Ctx) -> Any:
    ctx.node()
    return {
        "status": "notfound",
        "message": "There is no subscription key",
        "url": "https://www.proxmox.com/en/proxmox-virtual-environment/pricing",
    }


@route("GET", "/nodes/{node}/dns")
def node_dns(ctx: Ctx) -> Any:
    ctx.node()
    return {"search": f"{ctx.state.name}.example.com", "dns1": "10.10.0.53", "dns2": "1.1.1.1"}


def _network(n: Node) -> list[dict[str, Any]]:
    prefix = n.ip.rsplit(".", 1)[0]
    return [
        {
            "iface": "eno1",
            "type": "eth",
            "method": "manual",
            "method6": "manual",
            "families": ["inet"],
            "active": 1,
            "exists": 1,
            "priority": 3,
        },
        {
            "iface": "eno2",
            "type": "eth",
            "method": "manual",
            "method6": "manual",
            "families": ["inet"],
            "active": 1,
            "exists": 1,
            "priority": 4,
        },
        {
            "iface": "bond0",
            "type": "bond",
            "method": "manual",
            "method6": "manual",
            "families": ["inet"],
            "active": 1,
            "autostart": 1,
            "priority": 5,
            "slaves": "eno1 eno2",
            "bond_mode": "802.3ad",
            "bond-primary": None,
            "bond_xmit_hash_policy": "layer3+4",
            "mtu": "9000",
        },
        {
            "iface": "vmbr0",
            "type": "bridge",
            "method": "static",
            "method6": "static",
            "families": ["inet", "inet6"],
            "active": 1,
            "autostart": 1,
            "priority": 6,
            "address": n.ip,
            "netmask": "24",
            "cidr": f"{n.ip}/24",
            "address6": f"fd00:10::{n.ip.rsplit('.', 1)[1]}",
            "netmask6": "64",
            "cidr6": f"fd00:10::{n.ip.rsplit('.', 1)[1]}/64",
            "mtu": "1500",
            "gateway": f"{prefix}.1",
            "bridge_ports": "bond0",
            "bridge_stp": "off",
            "bridge_fd": "0",
            "bridge_vlan_aware": 1,
            "bridge_vids": "2-4094",
            "comments": "management\n",
        },
        {
            # the storage VLAN, dual-stack (real hosts carry IPv6 and vlan rows too)
            "iface": "vmbr0.50",
            "type": "vlan",
            "method": "static",
            "method6": "static",
            "families": ["inet", "inet6"],
            "active": 1,
            "autostart": 1,
            "exists": 1,
            "priority": 7,
            "address": f"10.50.0.{n.ip.rsplit('.', 1)[1]}",
            "netmask": "24",
            "cidr": f"10.50.0.{n.ip.rsplit('.', 1)[1]}/24",
            "address6": f"fd00:50::{n.ip.rsplit('.', 1)[1]}",
            "netmask6": "64",
            "cidr6": f"fd00:50::{n.ip.rsplit('.', 1)[1]}/64",
            "vlan-id": "50",
            "vlan-raw-device": "vmbr0",
            "options": ["metric 200"],
            "comments": "storage network\n",
        },
    ]


@route("GET", "/nodes/{node}/network")
def node_network(ctx: Ctx) -> Any:
    rows = _network(ctx.node())
    t = ctx.p("type")
    if t:
        kinds = {"any_bridge": ("bridge", "OVSBridge"), "any_local_bridge": ("bridge",)}
        rows = [r for r in rows if r["type"] in kinds.get(t, (t,))]
    return rows


@route("GET", "/nodes/{node}/network/{iface}")
def node_network_iface(ctx: Ctx) -> Any:
    for row in _network(ctx.node()):
        if row["iface"] == ctx.vars["iface"]:
            return {k: v for k, v in row.items() if k != "iface"}
    raise SimHTTPError(500, f"interface '{ctx.vars['iface']}' does not exist")


def _timeframe(ctx: Ctx) -> tuple[str, str]:
    return str(ctx.p("timeframe")), str(ctx.p("cf") or "AVERAGE")


@route("GET", "/nodes/{node}/rrddata")
def node_rrddata(ctx: Ctx) -> Any:
    n = ctx.node()
    tf, cf = _timeframe(ctx)
    guests = [g for g in ctx.state.guests.values() if g.node == n.name]
    return _rrd.node_rrd(n, guests, ctx.state.clock.now(), tf, cf, ctx.major)


@route("POST", "/nodes/{node}/termproxy", "/nodes/{node}/vncshell")
def node_termproxy(ctx: Ctx) -> Any:
    ctx.node()
    return _console(ctx, "vncshell", "", "termproxy")


def _console(ctx: Ctx, task_type: str, task_id: str, path_kind: str) -> dict[str, Any]:
    st = ctx.state
    node = ctx.vars["node"]
    task = st.start_task(
        node, task_type, task_id, ctx.user, log=["starting vnc proxy", "connection established"]
    )
    port = 5900 + int(noise(task.pid, 1) * 99)
    ticket = f"PVEVNC:{int(st.clock.now()):08X}::{_vnc_sig(ctx, task.upid)}"
    out: dict[str, Any] = {"port": port, "ticket": ticket, "upid": task.upid, "user": ctx.user}
    if path_kind == "vncproxy":  # only vncproxy hands out the certificate
        out["cert"] = "-----BEGIN CERTIFICATE-----\n(pvekit simulator)\n-----END CERTIFICATE-----\n"
    if ctx.extra.get("password_requested"):
        out["password"] = ticket
    return out


def _vnc_sig(ctx: Ctx, upid: str) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(upid.encode()).digest()).decode()


@route("GET", "/nodes/{node}/tasks")
def node_tasks(ctx: Ctx) -> Any:
    node = ctx.node().name
    source = ctx.p("source") or "archive"
    tasks = [t for t in ctx.state.tasks if t.node == node]
    if source == "archive":
        tasks = [t for t in tasks if not t.running]
    elif source == "active":
        tasks = [t for t in tasks if t.running]
    if _truthy(ctx.p("errors")):
        tasks = [t for t in tasks if not t.running and _task_class(t.outcome) == "error"]
    sf = ctx.p("statusfilter")
    if sf:
        wanted = {s.strip().lower() for s in str(sf).split(",") if s.strip()}
        tasks = [
            t for t in tasks if (("running" if t.running else _task_class(t.outcome)) in wanted)
        ]
    tf = ctx.p("typefilter")
    if tf:
        tasks = [t for t in tasks if t.type == tf]
    uf = ctx.p("userfilter")
    if uf:
        tasks = [t for t in tasks if str(uf).lower() in t.user.lower()]
    vmid = ctx.p("vmid")
    if vmid is not None:
        tasks = [t for t in tasks if t.id == str(int(vmid))]
    since, until = ctx.p("since"), ctx.p("until")
    if since is not None:
        tasks = [t for t in tasks if t.starttime >= int(since)]
    if until is not None:
        tasks = [t for t in tasks if t.starttime <= int(until)]
    tasks.sort(key=lambda t: (-t.starttime, t.upid))
    start = int(ctx.p("start") or 0)
    limit = int(ctx.p("limit") or 50)
    rows = [_task_row(t) for t in tasks[start : start + limit]]
    return WithAttribs(rows, {"total": len(tasks)})


def _task_class(outcome: str) -> str:
    if outcome == "OK":
        return "ok"
    if outcome.startswith("WARNINGS"):
        return "warning"
    return "error"


def _task(ctx: Ctx) -> Any:
    upid = ctx.vars["upid"]
    try:
        parse_upid(upid)
    except InvalidInputError:
        raise param_error({"upid": "unable to parse worker upid"}) from None
    task = ctx.state.find_task(upid)
    if task is None:
        raise SimHTTPError(500, f"no such task ({upid})")
    return task


@route("GET", "/nodes/{node}/tasks/{upid}/status")
def task_status(ctx: Ctx) -> Any:
    t = _task(ctx)
    out: dict[str, Any] = {
        "upid": t.upid,
        "node": t.node,
        "pid": t.pid,
        "pstart": t.pstart,
        "starttime": t.starttime,
        "type": t.type,
        "id": t.id,
        **_task_user(t.user),
        "status": "running" if t.running else "stopped",
    }
    if not t.running:
        out["exitstatus"] = t.outcome
    return out


@route("GET", "/nodes/{node}/tasks/{upid}/log")
def task_log(ctx: Ctx) -> Any:
    t = _task(ctx)
    lines = list(t.log)
    if t.running and lines:
        # Lines appear over the task's lifetime, the way a real worker writes them.
        frac = min(1.0, (ctx.state.clock.now() - t.started_at) / max(t.duration, 1e-6))
        lines = lines[: max(1, math.ceil(len(lines) * frac))]
    start = int(ctx.p("start") or 0)
    limit = ctx.p("limit")
    limit = 50 if limit is None or limit == "" else int(limit)
    if not lines and not t.running:
        lines = ["no content"]
    # PVE::Tools::dump_logfile: limit 0 reads to the end; total counts every line.
    window = lines[start:] if limit == 0 else lines[start : start + limit]
    rows = [{"n": start + i + 1, "t": line} for i, line in enumerate(window)]
    return WithAttribs(rows, {"total": len(lines)})


@route("DELETE", "/nodes/{node}/tasks/{upid}")
def task_stop(ctx: Ctx) -> Any:
    ctx.state.stop_task(_task(ctx))
    return None


@route("GET", "/nodes/{node}/tasks/{upid}")
def task_index(ctx: Ctx) -> Any:
    _task(ctx)
    return [{"name": "log"}, {"name": "status"}]


# -- storage --------------------------------------------------------------------------------


def _storage_status(
    st: ClusterState, node: str, name: str, use: StorageUse, now: float
) -> dict[str, Any]:
    sdef = st.storage_defs[name]
    row: dict[str, Any] = {
        "storage": name,
        "type": sdef.type,
        "content": ",".join(sdef.content),
        "shared": int(sdef.shared),
        "enabled": int(sdef.enabled),
        "active": int(use.status == "available"),
    }
    if use.status == "available":
        used = use.used(now)
        row.update(
            {
                "total": use.total,
                "used": used,
                "avail": use.total - used,
                "used_fraction": used / use.total if use.total else 0.0,
            }
        )
    else:
        # PVE::API2::Storage::Status: an inactive storage reports its sizes as 0.
        row.update({"total": 0, "used": 0, "avail": 0})
    return row


@route("GET", "/nodes/{node}/storage")
def node_storage(ctx: Ctx) -> Any:
    st = ctx.state
    node = ctx.node().name
    now = st.clock.now()
    content = ctx.p("content")
    only = ctx.p("storage")
    rows = []
    for (n, name), use in st.storage_use.items():
        if n != node or (only and name != only):
            continue
        sdef = st.storage_defs[name]
        if content and not set(str(content).split(",")) & set(sdef.content):
            continue
        if _truthy(ctx.p("enabled")) and not sdef.enabled:
            continue
        rows.append(_storage_status(st, node, name, use, now))
    return rows


@route("GET", "/nodes/{node}/storage/{storage}")
def node_storage_index(ctx: Ctx) -> Any:
    ctx.state.storage(ctx.node().name, ctx.vars["storage"])
    return [
        {"subdir": s}
        for s in (
            "content",
            "download-url",
            "file-restore",
            "import-metadata",
            "prunebackups",
            "rrd",
            "rrddata",
            "status",
            "upload",
        )
    ]


@route("GET", "/nodes/{node}/storage/{storage}/status")
def storage_status(ctx: Ctx) -> Any:
    node = ctx.node().name
    _, use = ctx.state.storage(node, ctx.vars["storage"])
    row = _storage_status(ctx.state, node, ctx.vars["storage"], use, ctx.state.clock.now())
    row.pop("storage")
    if use.status != "available":
        raise SimHTTPError(500, f"storage '{ctx.vars['storage']}' is not online")
    return row


@route("GET", "/nodes/{node}/storage/{storage}/rrddata")
def storage_rrddata(ctx: Ctx) -> Any:
    node = ctx.node().name
    _, use = ctx.state.storage(node, ctx.vars["storage"])
    tf, cf = _timeframe(ctx)
    return _rrd.storage_rrd(use, ctx.state.clock.now(), tf, cf, ctx.node().outages)


def _content_rows(ctx: Ctx, node: str, storage: str) -> list[dict[str, Any]]:
    st = ctx.state
    sdef, use = st.storage(node, storage)
    if use.status != "available":
        raise SimHTTPError(500, f"storage '{storage}' is not online")
    rows: list[dict[str, Any]] = []
    for v in st.visible_volumes(node, storage):
        row: dict[str, Any] = {
            "volid": v.volid,
            "content": v.content,
            "format": v.fmt,
            "size": v.size,
            "ctime": v.ctime,
        }
        if v.vmid is not None:
            row["vmid"] = v.vmid
        if v.content == "backup":
            row["subtype"] = v.subtype or "qemu"
            if v.notes:
                row["notes"] = v.notes
            if v.protected:
                row["protected"] = 1
            if v.verified is not None:
                row["verification"] = {
                    "state": "ok" if v.verified else "failed",
                    "upid": f"UPID:{node}:00000000:00000000:{v.ctime:08X}:"
                    f"verificationjob:{storage}:root@pam:",
                }
        rows.append(row)
    if {"images", "rootdir"} & set(sdef.content):
        for g in st.guests.values():
            if not sdef.shared and g.node != node:
                continue
            for d in g.disks.values():
                if d.storage != storage:
                    continue
                fmt = "subvol" if d.volname.startswith("subvol-") else d.fmt
                rows.append(
                    {
                        "volid": d.volid,
                        "content": "rootdir" if d.key == "rootfs" or d.mountpoint else "images",
                        "format": fmt,
                        "size": d.size,
                        "used": int(d.size * (g.disk_frac if g.type == "lxc" else 0.6)),
                        "vmid": g.vmid,
                        "ctime": int(g.load.t0 - 86400 * 90),
                    }
                )
    ct = ctx.p("content")
    if ct:
        rows = [r for r in rows if r["content"] == ct]
    vmid = ctx.p("vmid")
    if vmid is not None:
        rows = [r for r in rows if r.get("vmid") == int(vmid)]
    return rows


@route("GET", "/nodes/{node}/storage/{storage}/content")
def storage_content(ctx: Ctx) -> Any:
    return _content_rows(ctx, ctx.node().name, ctx.vars["storage"])


@route("GET", "/nodes/{node}/storage/{storage}/content/{volume}")
def storage_volume(ctx: Ctx) -> Any:
    node = ctx.node().name
    volume = ctx.vars["volume"]
    volid = volume if ":" in volume else f"{ctx.vars['storage']}:{volume}"
    for row in _content_rows(ctx, node, ctx.vars["storage"]):
        if row["volid"] == volid:
            out = {
                "path": f"/mnt/pve/{ctx.vars['storage']}/{volid.split(':', 1)[1]}",
                "format": row["format"],
                "size": row["size"],
                "used": row.get("used", row["size"]),
            }
            if "notes" in row:
                out["notes"] = row["notes"]
            if row.get("protected"):
                out["protected"] = 1
            return out
    raise SimHTTPError(500, f"volume '{volid}' does not exist")


@route("PUT", "/nodes/{node}/storage/{storage}/content/{volume}")
def storage_volume_update(ctx: Ctx) -> Any:
    """Backup notes and protection, the attributes PVE lets you change."""
    node = ctx.node().name
    storage = ctx.vars["storage"]
    ctx.state.storage(node, storage)
    volume = ctx.vars["volume"]
    volid = volume if ":" in volume else f"{storage}:{volume}"
    vol = next((v for v in ctx.state.visible_volumes(node, storage) if v.volid == volid), None)
    if vol is None:
        raise SimHTTPError(500, f"volume '{volid}' does not exist")
    if ctx.p("notes") is not None:
        vol.notes = str(ctx.p("notes")) or None
    if ctx.p("protected") is not None:
        vol.protected = _truthy(ctx.p("protected"))
    ctx.state.changed()
    return None


@route("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}")
def storage_volume_delete(ctx: Ctx) -> Any:
    node = ctx.node().name
    volume = ctx.vars["volume"]
    volid = volume if ":" in volume else f"{ctx.vars['storage']}:{volume}"
    return ctx.state.delete_volume(node, ctx.vars["storage"], volid, ctx.user)


@route("GET", "/storage")
def storage_list(ctx: Ctx) -> Any:
    t = ctx.p("type")
    rows = []
    for sdef in ctx.state.storage_defs.values():
        if t and sdef.type != t:
            continue
        rows.append(_storage_def(sdef))
    return rows


def _digest_of(text: str) -> str:
    import hashlib

    return hashlib.sha1(f"storage.cfg:{text}".encode()).hexdigest()


def _storage_def(sdef: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "storage": sdef.storage,
        "type": sdef.type,
        "content": ",".join(sdef.content),
        "digest": _digest_of(sdef.storage),
    }
    if sdef.shared and sdef.type not in ("rbd", "pbs", "cifs", "nfs"):
        row["shared"] = 1
    if sdef.nodes:
        row["nodes"] = ",".join(sdef.nodes)
    if not sdef.enabled:
        row["disable"] = 1
    if "backup" in sdef.content and "prune-backups" not in sdef.extra:
        row["prune-backups"] = "keep-all=1"
    row.update(sdef.extra)
    return row


@route("GET", "/storage/{storage}")
def storage_get(ctx: Ctx) -> Any:
    sdef = ctx.state.storage_defs.get(ctx.vars["storage"])
    if sdef is None:
        raise SimHTTPError(500, f"storage '{ctx.vars['storage']}' does not exist")
    return _storage_def(sdef)


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


# -- access ---------------------------------------------------------------------------------


@route("POST", "/access/ticket")
def access_ticket(ctx: Ctx) -> Any:
    return ctx.auth.login(ctx.params)


@route("GET", "/access/ticket")
def access_ticket_get(ctx: Ctx) -> Any:
    return None


@route("GET", "/access/permissions")
def access_permissions(ctx: Ctx) -> Any:
    assert ctx.ident is not None
    userid = ctx.p("userid")
    ident = ctx.ident
    if userid and userid != ident.authid:
        if "Sys.Audit" not in ident.privs:
            raise SimHTTPError(403, "Permission check failed (/access, Sys.Audit)")
        base = userid.split("!")[0]
        user = ctx.auth.users.get(base)
        if user is None:
            raise SimHTTPError(500, f"no such user ('{userid}')")
        ident = Identity(base, None, ctx.auth.privs_of(base), via_ticket=False)
    return ctx.auth.permissions(ident, ctx.p("path"))


@route("GET", "/access/users")
def access_users(ctx: Ctx) -> Any:
    out = []
    for u in ctx.auth.users.values():
        row: dict[str, Any] = {
            "userid": u.userid,
            "enable": 1,
            "expire": 0,
            "realm-type": u.userid.split("@")[1],
        }
        if u.email:
            row["email"] = u.email
        if _truthy(ctx.p("full")):
            from ._access import token_rows

            row["tokens"] = token_rows(u)
        out.append(row)
    return out


@route("GET", "/access/roles")
def access_roles(ctx: Ctx) -> Any:
    from ._auth import ROLES

    return [
        {"roleid": r, "privs": ",".join(sorted(ctx.auth._role(r))), "special": 1} for r in ROLES
    ]


@route("GET", "/access/domains")
def access_domains(ctx: Ctx) -> Any:
    return [
        {"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"},
        {"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server"},
    ]


# -- guests ---------------------------------------------------------------------------------


def _guest(ctx: Ctx) -> Guest:
    return ctx.state.guest(ctx.vars["node"], ctx.vars["vmid"], _gtype(ctx))


def _list_row(st: ClusterState, g: Guest, now: float, full: bool) -> dict[str, Any]:
    netin, netout, dread, dwrite = g.counters(now)
    row: dict[str, Any] = {
        "vmid": g.vmid,
        "name": g.name,
        "status": g.status,
        "cpu": g.cpu(now),
        "cpus": g.maxcpu,
        "mem": g.mem(now),
        "maxmem": g.maxmem,
        "disk": g.disk_used(now),
        "maxdisk": g.maxdisk,
        "netin": netin,
        "netout": netout,
        "diskread": dread,
        "diskwrite": dwrite,
        "uptime": g.uptime(now),
    }
    if g.type == "lxc":
        row["type"] = "lxc"
        row["swap"] = int(g.swap_mb * 1024 * 1024 * 0.02) if g.running else 0
        row["maxswap"] = g.swap_mb * 1024 * 1024
    if g.running and g.pid:
        row["pid"] = g.pid
    if g.template:
        row["template"] = 1
    if g.tags:
        row["tags"] = ";".join(g.tags)
    if g.lock:
        row["lock"] = g.lock
    if g.type == "qemu":
        if st.major >= 9:
            row["memhost"] = int(row["mem"] * 1.03) if g.running else 0
        if full or g.running:
            row["qmpstatus"] = ("paused" if g.paused else "running") if g.running else "stopped"
        if g.running and full:
            row["running-qemu"] = "10.1.2" if st.major >= 9 else "9.2.0"
            row["running-machine"] = (
                "pc-i440fx-10.1+pve0" if st.major >= 9 else "pc-i440fx-9.2+pve1"
            )
    if g.running and st.major >= 9:
        k = g.load.key
        row.update(
            {
                "pressurecpusome": round(noise(k, 11) * 0.5, 2),
                "pressureiosome": round(noise(k, 12) * 0.3, 2),
                "pressureiofull": round(noise(k, 13) * 0.2, 2),
                "pressurememorysome": 0,
                "pressurememoryfull": 0,
            }
        )
        if g.type == "qemu":
            row["pressurecpufull"] = round(noise(k, 14) * 0.2, 2)
    return row


@route("GET", "/nodes/{node}/qemu", "/nodes/{node}/lxc")
def guest_list(ctx: Ctx) -> Any:
    st = ctx.state
    node = ctx.node().name
    now = st.clock.now()
    full = _truthy(ctx.p("full"))
    return [
        _list_row(st, g, now, full)
        for g in st.guests.values()
        if g.node == node and g.type == _gtype(ctx)
    ]


@route("POST", "/nodes/{node}/qemu", "/nodes/{node}/lxc")
def guest_create(ctx: Ctx) -> Any:
    node = ctx.node().name
    gtype = _gtype(ctx)
    if gtype == "qemu" and ctx.p("archive"):
        return ctx.state.restore(node, gtype, ctx.user, ctx.params)
    if gtype == "lxc" and _truthy(ctx.p("restore")):
        return ctx.state.restore(node, gtype, ctx.user, ctx.params)
    return _create(ctx, node, gtype)


def _with_mac(key: str, value: Any, gtype: str, mac: str) -> Any:
    """PVE stores a new NIC with a generated MAC (``virtio`` -> ``virtio=BC:24:11:...``)."""
    if not key.startswith("net") or not key[3:].isdigit() or not isinstance(value, str):
        return value
    items = value.split(",")
    if gtype == "qemu" and items and "=" not in items[0]:
        items[0] = f"{items[0]}={mac}"
    elif gtype == "lxc" and not any(i.startswith("hwaddr=") for i in items):
        items.append(f"hwaddr={mac}")
    return ",".join(items)


def _create(ctx: Ctx, node: str, gtype: str) -> Any:
    from ._model import Disk, Load, stable_key
    from ._state import _mac

    st = ctx.state
    vmid = int(ctx.p("vmid"))
    if vmid in st.guests:
        raise SimHTTPError(
            500,
            f"unable to create {'VM' if gtype == 'qemu' else 'CT'} {vmid} - VM already exists"
            if gtype == "qemu"
            else f"unable to create CT {vmid} - CT already exists",
        )
    if gtype == "lxc" and not ctx.p("ostemplate"):
        raise param_error({"ostemplate": "property is missing and it is not optional"})
    g = Guest(
        vmid=vmid,
        type=gtype,
        name=str(
            ctx.p("name") or ctx.p("hostname") or f"{'VM' if gtype == 'qemu' else 'CT'}{vmid}"
        ),
        node=node,
        status="stopped",
        cores=int(ctx.p("cores") or 1),
        memory_mb=int(str(ctx.p("memory") or 512).split(",")[0].replace("current=", "")),
        disks={},
        nets={},
        load=Load(stable_key("new", vmid), 0.05, t0=st.clock.now()),
        mem_frac=0.3,
        disk_frac=0.2,
        sockets=int(ctx.p("sockets") or 1),
        mac=_mac(vmid),
        lock="create",
        ostype=str(ctx.p("ostype") or ("l26" if gtype == "qemu" else "debian")),
        pool=ctx.p("pool"),
    )
    if gtype == "lxc":
        rootfs = str(ctx.p("rootfs") or "local-lvm:8")
        storage, _, size = rootfs.partition(":")
        g.disks["rootfs"] = Disk(
            "rootfs", storage, f"vm-{vmid}-disk-0", int(float(size.split(",")[0] or 8) * GIB)
        )
    st.guests[vmid] = g
    g.lock = None  # configure first, then hold the "create" lock while the task runs
    st.update_config(
        g,
        ctx.user,
        {
            k: _with_mac(k, v, gtype, g.mac)
            for k, v in ctx.params.items()
            if k
            not in (
                "vmid",
                "ostemplate",
                "rootfs",
                "pool",
                "start",
                "storage",
                "password",
                "ssh-public-keys",
                "unique",
                "restore",
                "archive",
                "hostname",
                "name",
            )
        },
        is_async=False,
    )
    g.lock = "create"

    def done(task: Any) -> str | None:
        g.lock = None
        if _truthy(ctx.params.get("start")):
            g.status, g.started_at = "running", st.clock.now()
        st.changed()
        return None

    def failed(task: Any) -> None:
        st.guests.pop(vmid, None)
        st.changed()

    return st.start_task(
        node,
        "qmcreate" if gtype == "qemu" else "vzcreate",
        str(vmid),
        ctx.user,
        on_done=done,
        on_fail=failed,
    ).upid


@route("GET", "/nodes/{node}/qemu/{vmid}", "/nodes/{node}/lxc/{vmid}")
def guest_index(ctx: Ctx) -> Any:
    _guest(ctx)
    names = [
        "config",
        "pending",
        "status",
        "snapshot",
        "rrd",
        "rrddata",
        "firewall",
        "migrate",
        "vncproxy",
        "termproxy",
        "clone",
        "resize",
        "feature",
    ]
    if _gtype(ctx) == "qemu":
        names += ["agent", "sendkey", "monitor", "cloudinit", "unlink"]
    else:
        names += ["interfaces", "move_volume", "mtunnel"]
    return [{"subdir": n} for n in names]


@route("GET", "/nodes/{node}/qemu/{vmid}/status", "/nodes/{node}/lxc/{vmid}/status")
def guest_status_index(ctx: Ctx) -> Any:
    g = _guest(ctx)
    names = ["current", "start", "stop", "shutdown", "reboot", "suspend", "resume"]
    if g.type == "qemu":
        names.append("reset")
    return [{"subdir": n} for n in names]


@route("GET", "/nodes/{node}/qemu/{vmid}/status/current", "/nodes/{node}/lxc/{vmid}/status/current")
def guest_current(ctx: Ctx) -> Any:
    st = ctx.state
    g = _guest(ctx)
    now = st.clock.now()
    row = _list_row(st, g, now, True)
    ha: dict[str, Any] = {"managed": 0}
    if g.ha_state:
        ha = {"managed": 1, "state": g.ha_state}
    row["ha"] = ha
    if g.type == "qemu":
        if g.template and not g.running:
            # A template's status may be just the basics (QUIRKS 3).
            return {
                "status": "stopped",
                "qmpstatus": "stopped",
                "vmid": g.vmid,
                "name": g.name,
                "template": 1,
                "ha": ha,
                "cpus": g.maxcpu,
                "maxmem": g.maxmem,
                "maxdisk": g.maxdisk,
                "cpu": 0,
                "mem": 0,
                "disk": 0,
                "uptime": 0,
                "netin": 0,
                "netout": 0,
                "diskread": 0,
                "diskwrite": 0,
                **({"memhost": 0} if st.major >= 9 else {}),
                **({"tags": ";".join(g.tags)} if g.tags else {}),
            }
        row["qmpstatus"] = ("paused" if g.paused else "running") if g.running else "stopped"
        if g.agent:
            row["agent"] = 1
        if g.running:
            mem = row["mem"]
            balloon = (g.balloon_mb or g.memory_mb) * 1024 * 1024
            row.update(
                {
                    "balloon": balloon,
                    "freemem": max(0, g.maxmem - mem - 200 * 1024 * 1024),
                    "ballooninfo": {
                        "actual": balloon,
                        "max_mem": g.maxmem,
                        "free_mem": max(0, g.maxmem - mem - 200 * 1024 * 1024),
                        "total_mem": g.maxmem - 80 * 1024 * 1024,
                        "major_page_faults": 1811,
                        "minor_page_faults": 3_803_793,
                        "mem_swapped_in": 0,
                        "mem_swapped_out": 0,
                        "last_update": int(now),
                    },
                    "nics": {
                        f"tap{g.vmid}i{i}": {
                            "netin": row["netin"] // (i + 1),
                            "netout": row["netout"] // (i + 1),
                        }
                        for i, _ in enumerate(g.nets)
                    },
                    "blockstat": {
                        k: _blockstat(
                            row["diskread"], row["diskwrite"], len(g.disks), k == "ide2", int(now)
                        )
                        for k in [*g.disks, "ide2"]
                    },
                    "proxmox-support": {
                        "backup-max-workers": True,
                        "pbs-dirty-bitmap": True,
                        "pbs-dirty-bitmap-migration": True,
                        "pbs-dirty-bitmap-savevm": True,
                        "pbs-masterkey": True,
                        "query-bitmap-info": True,
                        "pbs-library-version": "1.5.2 (UNKNOWN)",
                    },
                    "shares": 1000,
                    "spice": 0,
                    "running-qemu": "10.1.2" if st.major >= 9 else "9.2.0",
                    "running-machine": "pc-i440fx-10.1+pve0"
                    if st.major >= 9
                    else "pc-i440fx-9.2+pve1",
                }
            )
            if g.balloon_mb is not None:
                row["balloon_min"] = g.balloon_mb * 1024 * 1024
    return row


def _blockstat(read: int, write: int, ndisks: int, cdrom: bool, now: int) -> dict[str, Any]:
    """One drive's QEMU block statistics, with every counter QEMU reports."""
    rd = 344_348 if cdrom else read // max(1, ndisks)
    wr = 0 if cdrom else write // max(1, ndisks)
    ops_r, ops_w = max(1, rd // 40960), wr // 16384
    return {
        "rd_bytes": rd,
        "wr_bytes": wr,
        "rd_operations": ops_r,
        "wr_operations": ops_w,
        "rd_merged": 0,
        "wr_merged": 0,
        "rd_total_time_ns": ops_r * 450_000,
        "wr_total_time_ns": ops_w * 420_000,
        "flush_operations": 0 if cdrom else ops_w // 10,
        "flush_total_time_ns": 0 if cdrom else ops_w * 47_000,
        "unmap_operations": 0 if cdrom else ops_w // 300,
        "unmap_bytes": 0 if cdrom else wr * 10,
        "unmap_merged": 0,
        "unmap_total_time_ns": 0 if cdrom else ops_w * 60,
        "failed_rd_operations": 0,
        "failed_wr_operations": 0,
        "failed_flush_operations": 0,
        "failed_unmap_operations": 0,
        "invalid_rd_operations": 0,
        "invalid_wr_operations": 0,
        "invalid_flush_operations": 0,
        "invalid_unmap_operations": 0,
        "account_failed": True,
        "account_invalid": True,
        "idle_time_ns": 4_427_685_914 if not cdrom else 170_803_536_780_303,
        "wr_highest_offset": 0 if cdrom else wr // 3,
        "timed_stats": [],
    }


@route(
    "POST",
    *[
        f"/nodes/{{node}}/{t}/{{vmid}}/status/{a}"
        for t in ("qemu", "lxc")
        for a in ("start", "stop", "shutdown", "reboot", "suspend", "resume")
    ],
    "/nodes/{node}/qemu/{vmid}/status/reset",
)
def guest_power(ctx: Ctx) -> Any:
    g = _guest(ctx)
    return ctx.state.power(g, ctx.extra["action"], ctx.user, ctx.params)


@route("GET", "/nodes/{node}/qemu/{vmid}/config", "/nodes/{node}/lxc/{vmid}/config")
def guest_config(ctx: Ctx) -> Any:
    g = _guest(ctx)
    snap = ctx.p("snapshot")
    if snap:
        ctx.state._snap(g, str(snap))
    return ctx.state.config(g, current=_truthy(ctx.p("current")))


@route("GET", "/nodes/{node}/qemu/{vmid}/pending", "/nodes/{node}/lxc/{vmid}/pending")
def guest_pending(ctx: Ctx) -> Any:
    g = _guest(ctx)
    cfg = ctx.state.config(g)
    cfg.pop("digest", None)
    return [{"key": k, "value": v} for k, v in sorted(cfg.items())]


@route("POST", "/nodes/{node}/qemu/{vmid}/config")
def qemu_config_post(ctx: Ctx) -> Any:
    return ctx.state.update_config(_guest(ctx), ctx.user, ctx.params, is_async=True)


@route("PUT", "/nodes/{node}/qemu/{vmid}/config", "/nodes/{node}/lxc/{vmid}/config")
def guest_config_put(ctx: Ctx) -> Any:
    ctx.state.update_config(_guest(ctx), ctx.user, ctx.params, is_async=False)
    return None


@route("PUT", "/nodes/{node}/qemu/{vmid}/resize", "/nodes/{node}/lxc/{vmid}/resize")
def guest_resize(ctx: Ctx) -> Any:
    return ctx.state.resize(_guest(ctx), ctx.user, ctx.params)


@route("GET", "/nodes/{node}/qemu/{vmid}/migrate", "/nodes/{node}/lxc/{vmid}/migrate")
def guest_migrate_check(ctx: Ctx) -> Any:
    st = ctx.state
    g = _guest(ctx)
    allowed = [n for n, node in st.nodes.items() if n != g.node and node.online]
    local = [
        d.volid
        for d in g.disks.values()
        if not st.storage_defs.get(d.storage) or not st.storage_defs[d.storage].shared
    ]
    out: dict[str, Any] = {
        "running": int(g.running),
        "allowed_nodes": allowed,
        "not_allowed_nodes": {
            n: {"unavailable_storages": []}
            for n, node in st.nodes.items()
            if n != g.node and not node.online
        },
        "local_disks": [
            {"volid": v, "size": 0, "is_unused": 0, "drivename": k}
            for k, v in zip(g.disks, local, strict=False)
        ],
        "local_resources": [],
    }
    if ctx.major >= 9:
        out.update(
            {
                "mapped-resources": [],
                "mapped-resource-info": {},
                "dependent-ha-resources": [],
                "has-dbus-vmstate": 0,
            }
        )
    if g.type == "lxc":
        out = {
            "running": int(g.running),
            "allowed-nodes": allowed,
            "not-allowed-nodes": out["not_allowed_nodes"],
        }
    return out


@route("POST", "/nodes/{node}/qemu/{vmid}/migrate", "/nodes/{node}/lxc/{vmid}/migrate")
def guest_migrate(ctx: Ctx) -> Any:
    from ._ha import ha_manager, is_ha_managed

    g = _guest(ctx)
    if is_ha_managed(g):
        # PVE hands an HA-managed guest to the HA manager: an hamigrate task.
        return ha_manager(ctx.state).request_migration(g, ctx.user, ctx.params)
    return ctx.state.migrate(g, ctx.user, ctx.params)


@route("POST", "/nodes/{node}/qemu/{vmid}/clone", "/nodes/{node}/lxc/{vmid}/clone")
def guest_clone(ctx: Ctx) -> Any:
    return ctx.state.clone(_guest(ctx), ctx.user, ctx.params)


@route("DELETE", "/nodes/{node}/qemu/{vmid}", "/nodes/{node}/lxc/{vmid}")
def guest_delete(ctx: Ctx) -> Any:
    return ctx.state.destroy(_guest(ctx), ctx.user, ctx.params)


@route("GET", "/nodes/{node}/qemu/{vmid}/rrddata", "/nodes/{node}/lxc/{vmid}/rrddata")
def guest_rrddata(ctx: Ctx) -> Any:
    tf, cf = _timeframe(ctx)
    return _rrd.guest_rrd(
        _guest(ctx), ctx.state.clock.now(), tf, cf, ctx.major, ctx.node().outages
    )


@route("GET", "/nodes/{node}/qemu/{vmid}/snapshot", "/nodes/{node}/lxc/{vmid}/snapshot")
def snapshot_list(ctx: Ctx) -> Any:
    return ctx.state.snapshot_list(_guest(ctx))


@route("POST", "/nodes/{node}/qemu/{vmid}/snapshot", "/nodes/{node}/lxc/{vmid}/snapshot")
def snapshot_create(ctx: Ctx) -> Any:
    return ctx.state.snapshot(_guest(ctx), ctx.user, ctx.params)


@route(
    "GET",
    "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}",
    "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}",
)
def snapshot_index(ctx: Ctx) -> Any:
    ctx.state._snap(_guest(ctx), ctx.vars["snapname"])
    return [{"rel": "config"}, {"rel": "rollback"}]


@route(
    "GET",
    "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config",
    "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config",
)
def snapshot_config(ctx: Ctx) -> Any:
    g = _guest(ctx)
    s = ctx.state._snap(g, ctx.vars["snapname"])
    cfg = ctx.state.config(g)
    cfg.pop("digest", None)
    cfg.pop("lock", None)
    cfg.update({"snaptime": s.snaptime, "description": s.description})
    if s.parent:
        cfg["parent"] = s.parent
    else:
        cfg.pop("parent", None)
    if s.vmstate:
        cfg["vmstate"] = f"{next(iter(g.disks.values())).storage}:vm-{g.vmid}-state-{s.name}"
        cfg["runningmachine"] = "pc-i440fx-9.2+pve1"
    return cfg


@route(
    "PUT",
    "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config",
    "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config",
)
def snapshot_config_put(ctx: Ctx) -> Any:
    s = ctx.state._snap(_guest(ctx), ctx.vars["snapname"])
    if ctx.p("description") is not None:
        s.description = str(ctx.p("description"))
        ctx.state.changed()
    return None


@route(
    "DELETE",
    "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}",
    "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}",
)
def snapshot_delete(ctx: Ctx) -> Any:
    return ctx.state.delete_snapshot(
        _guest(ctx), ctx.user, ctx.vars["snapname"], _truthy(ctx.p("force"))
    )


@route(
    "POST",
    "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback",
    "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback",
)
def snapshot_rollback(ctx: Ctx) -> Any:
    return ctx.state.rollback(_guest(ctx), ctx.user, ctx.vars["snapname"], _truthy(ctx.p("start")))


@route("POST", "/nodes/{node}/vzdump")
def vzdump(ctx: Ctx) -> Any:
    node = ctx.node().name
    if ctx.p("stdout"):
        raise SimHTTPError(500, "stdout is only allowed when using the CLI")
    return ctx.state.vzdump(node, ctx.user, ctx.params)


@route(
    "POST",
    "/nodes/{node}/qemu/{vmid}/vncproxy",
    "/nodes/{node}/lxc/{vmid}/vncproxy",
    "/nodes/{node}/qemu/{vmid}/termproxy",
    "/nodes/{node}/lxc/{vmid}/termproxy",
)
def guest_console(ctx: Ctx) -> Any:
    g = _guest(ctx)
    if not g.running:
        raise SimHTTPError(500, f"{'VM' if g.type == 'qemu' else 'CT'} {g.vmid} not running")
    ctx.extra["password_requested"] = _truthy(ctx.p("generate-password"))
    kind = "vncproxy" if ctx.template.endswith("/vncproxy") else "termproxy"
    return _console(ctx, "vncproxy", str(g.vmid), kind)


# -- guest agent ----------------------------------------------------------------------------


@route("GET", "/nodes/{node}/qemu/{vmid}/agent")
def agent_index(ctx: Ctx) -> Any:
    _guest(ctx)
    cmds = [
        "exec",
        "exec-status",
        "file-read",
        "file-write",
        "fsfreeze-freeze",
        "fsfreeze-status",
        "fsfreeze-thaw",
        "fstrim",
        "get-fsinfo",
        "get-host-name",
        "get-memory-block-info",
        "get-memory-blocks",
        "get-osinfo",
        "get-time",
        "get-timezone",
        "get-users",
        "get-vcpus",
        "info",
        "network-get-interfaces",
        "ping",
        "set-user-password",
        "shutdown",
        "suspend-disk",
        "suspend-hybrid",
        "suspend-ram",
    ]
    return [{"name": c} for c in cmds]


def _agent_error(ctx: Ctx, g: Guest, command: str) -> dict[str, Any] | None:
    """An error the agent reports itself: HTTP 200 with ``result.error`` (QUIRKS 11)."""
    ctx.state.agent_check(g)
    err = g.agent_errors.get(command)
    if err is None:
        return None
    return {"result": {"error": {"class": err[0], "desc": err[1]}}}


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces")
def agent_ifaces(ctx: Ctx) -> Any:
    g = _guest(ctx)
    return _agent_error(ctx, g, "network-get-interfaces") or {
        "result": ctx.state.agent_interfaces(g)
    }


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/get-fsinfo")
def agent_fsinfo(ctx: Ctx) -> Any:
    g = _guest(ctx)
    return _agent_error(ctx, g, "get-fsinfo") or {"result": ctx.state.agent_fsinfo(g)}


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/get-osinfo")
def agent_osinfo(ctx: Ctx) -> Any:
    g = _guest(ctx)
    ctx.state.agent_check(g)
    if g.ostype.startswith("win"):
        return {
            "result": {
                "id": "mswindows",
                "name": "Microsoft Windows",
                "pretty-name": "Windows Server 2022 Standard",
                "version": "Microsoft Windows Server 2022",
                "version-id": "2022",
                "kernel-release": "20348",
                "kernel-version": "10.0",
                "machine": "x86_64",
                "variant": "server",
                "variant-id": "server",
            }
        }
    return {
        "result": {
            "id": "debian",
            "name": "Debian GNU/Linux",
            "pretty-name": "Debian GNU/Linux 13 (trixie)",
            "version": "13 (trixie)",
            "version-id": "13",
            "kernel-release": "6.12.48+deb13-amd64",
            "kernel-version": "#1 SMP PREEMPT_DYNAMIC Debian 6.12.48-1",
            "machine": "x86_64",
        }
    }


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/get-host-name")
def agent_hostname(ctx: Ctx) -> Any:
    g = _guest(ctx)
    ctx.state.agent_check(g)
    return {"result": {"host-name": g.name}}


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/info")
def agent_info(ctx: Ctx) -> Any:
    g = _guest(ctx)
    ctx.state.agent_check(g)
    return {
        "result": {
            "version": "9.2.0",
            "supported_commands": [
                {"name": c, "enabled": True, "success-response": True}
                for c in (
                    "guest-exec",
                    "guest-exec-status",
                    "guest-get-fsinfo",
                    "guest-get-osinfo",
                    "guest-network-get-interfaces",
                    "guest-ping",
                    "guest-shutdown",
                )
            ],
        }
    }


@route("POST", "/nodes/{node}/qemu/{vmid}/agent/ping")
def agent_ping(ctx: Ctx) -> Any:
    ctx.state.agent_check(_guest(ctx))
    return {"result": {}}


@route("POST", "/nodes/{node}/qemu/{vmid}/agent/exec")
def agent_exec(ctx: Ctx) -> Any:
    g = _guest(ctx)
    raw = ctx.params.get("command")
    command = raw if isinstance(raw, list) else [str(raw)] if raw is not None else []
    if len(command) == 1 and " " in command[0]:
        import shlex

        command = shlex.split(command[0])
    return {"pid": ctx.state.agent_exec(g, [str(c) for c in command], ctx.p("input-data"))}


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status")
def agent_exec_status(ctx: Ctx) -> Any:
    return ctx.state.agent_exec_status(_guest(ctx), int(ctx.p("pid")))


@route("GET", "/nodes/{node}/lxc/{vmid}/interfaces")
def lxc_interfaces(ctx: Ctx) -> Any:
    g = _guest(ctx)
    if not g.running:
        raise SimHTTPError(500, f"CT {g.vmid} not running")
    from ._state import _link_local

    rows: list[dict[str, Any]] = [
        {"name": "lo", "hwaddr": "00:00:00:00:00:00", "inet": "127.0.0.1/8", "inet6": "::1/128"},
        {"name": "eth0", "hwaddr": g.mac.lower(), "inet6": f"{_link_local(g.mac)}/64"},
    ]
    if g.ip:
        rows[1]["inet"] = f"{g.ip}/24"
    if ctx.major >= 9:
        for r in rows:
            addrs = []
            for fam, key in (("inet", "inet"), ("inet6", "inet6")):
                if key in r:
                    ip, _, prefix = r[key].partition("/")
                    addrs.append({"ip-address": ip, "ip-address-type": fam, "prefix": int(prefix)})
            r["hardware-address"] = r["hwaddr"]
            r["ip-addresses"] = addrs
    return rows


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
