"""Node endpoints: the node list, status, hosts, DNS, network, rrddata, shells and tasks."""

from __future__ import annotations

import math
from typing import Any

from .._errors import InvalidInputError
from .._format import parse_upid
from . import _rrd
from ._errors import SimHTTPError, param_error
from ._handlers import VERSIONS, Ctx, _node_row, _node_usage, _task_row, _task_user, route
from ._model import Node, noise
from ._result import WithAttribs
from ._state import _truthy

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
