"""Guest endpoints: lists, create, config, status actions, migrate, clone, resize, snapshots,
backups, rrddata, consoles."""

from __future__ import annotations

from typing import Any

from . import _rrd
from ._errors import SimHTTPError, param_error
from ._handlers import Ctx, _gtype, route
from ._handlers_node_status import _console, _timeframe
from ._model import GIB, Guest, noise
from ._state import ClusterState, _truthy

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
    return _rrd.guest_rrd(_guest(ctx), ctx.state.clock.now(), tf, cf, ctx.major, ctx.node().outages)


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
