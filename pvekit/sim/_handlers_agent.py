"""QEMU guest agent endpoints (``/nodes/{node}/qemu/{vmid}/agent/...``)."""

from __future__ import annotations

from typing import Any

from ._errors import SimHTTPError
from ._handlers import Ctx, route
from ._handlers_guests import _guest
from ._model import Guest

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
