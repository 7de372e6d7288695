"""Storage endpoints: storage status, content (volumes, backups, ISOs), storage definitions."""

from __future__ import annotations

from typing import Any

from . import _rrd
from ._errors import SimHTTPError
from ._handlers import Ctx, route
from ._handlers_node_status import _timeframe
from ._model import StorageUse
from ._state import ClusterState, _truthy

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
