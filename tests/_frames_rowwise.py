"""The row-wise frame builders as they were before the column-wise rewrite (pvekit 0.1.0,
``pvekit/frames.py`` from ``_safe_int`` to ``group_status_frame``), kept as the test oracle.

tests/test_frames_columnwise.py builds every frame with both implementations, on the real
bodies of tests/data/pve-fixtures and on hypothesis-generated messy input, and requires the
same columns, order, dtypes, values, nulls, lists and times. The value helpers (``_int``,
``_bool``, ``unwrap``...) and the column reference are shared with pvekit.frames: what is
locked here is the assembly (``_cast``, ``_build``) and each builder's row logic. Do not
"fix" this file: it is the behaviour the new code must keep.
"""
# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from pvekit import _parse
from pvekit._errors import InvalidInputError
from pvekit.frames import (
    COLUMNS,
    _TIME,
    _bool,
    _column_specs,
    _float,
    _int,
    _memory_mib,
    _mib,
    _nonempty,
    _rows,
    _str,
    columns,
    unwrap,
)

_INT64_MAX = 2**63 - 1
# Epoch seconds pandas can hold at nanosecond resolution (years 1678..2261).
_EPOCH_LIMIT = 9.2e9


def _safe_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if -_INT64_MAX <= value <= _INT64_MAX else None
    if isinstance(value, float) and math.isfinite(value) and abs(value) <= _INT64_MAX:
        return round(value)
    return _safe_int(_int(value)) if isinstance(value, str) else None


def _safe_epoch(value: Any) -> float | None:
    number = _float(value)
    return number if number is not None and abs(number) < _EPOCH_LIMIT else None


def _cast(pd: Any, values: Any, dtype: str) -> Any:
    index = getattr(values, "index", None)
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype="object")
    if dtype == "object":
        return pd.Series(list(series), dtype="object", index=index)
    if dtype == _TIME:
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            return series.dt.tz_convert("UTC").astype(_TIME)
        if pd.api.types.is_datetime64_dtype(series.dtype):
            return series.dt.tz_localize("UTC").astype(_TIME)
        epochs = [
            v.timestamp() if hasattr(v, "timestamp") and v is not pd.NaT else _safe_epoch(v)
            for v in series
        ]
        numbers = pd.Series(epochs, dtype="float64", index=index)
        return pd.to_datetime(numbers, unit="s", utc=True).astype(_TIME)
    if dtype == "Int64":
        if series.dtype == "Int64":
            return series
        return pd.Series(pd.array([_safe_int(v) for v in series], dtype="Int64"), index=index)
    if dtype == "float64":
        if series.dtype == "float64":
            return series
        return pd.Series([_float(v) for v in series], dtype="float64", index=index)
    if dtype == "boolean":
        if series.dtype == "boolean":
            return series
        return pd.Series(
            pd.array([_bool(v) if v is not pd.NA else None for v in series], dtype="boolean"),
            index=index,
        )
    if dtype == "category":
        cleaned = [
            None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in series
        ]
        return pd.Series(cleaned, dtype="object", index=index).astype("category")
    if dtype == "str":
        cleaned = [
            None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in series
        ]
        text = pd.Series(cleaned, dtype="object", index=index)
        # pandas 2 turns None into the string "None" with astype("str"): keep object there.
        return text.astype("str") if int(pd.__version__.split(".")[0]) >= 3 else text
    return series.astype(dtype)


def _build(
    frame: str, data: dict[str, list[Any]], *, details: bool = False, ips: bool = False
) -> pd.DataFrame:
    import pandas as pd

    specs = _column_specs(frame, details=details, ips=ips)
    length = max((len(v) for v in data.values()), default=0)
    out: dict[str, Any] = {}
    for spec in specs:
        values = data.get(spec.name)
        if values is None:
            values = [None] * length
        out[spec.name] = _cast(pd, pd.Series(values, dtype="object"), spec.dtype)
    return pd.DataFrame(out, columns=[s.name for s in specs])


def empty_frame(frame: str, *, details: bool = False, ips: bool = False) -> pd.DataFrame:
    """A frame with no rows and the documented columns and dtypes."""
    return _build(frame, {}, details=details, ips=ips)


class _Table:
    """Column-wise accumulator: fast for 10,000 rows and keeps every column aligned."""

    def __init__(self, names: Iterable[str]) -> None:
        self.data: dict[str, list[Any]] = {name: [] for name in names}

    def add(self, **values: Any) -> None:
        for name, column in self.data.items():
            column.append(values.get(name))


def _frame_from(frame: str, rows: Iterable[Mapping[str, Any]], **common: Any) -> pd.DataFrame:
    """The frame built from one mapping per row (absent keys null), ``common`` in every row."""
    table = _Table(columns(frame))
    for row in rows:
        table.add(**common, **row)
    return _build(frame, table.data)


# --------------------------------------------------------------------------- nodes


def _pve_version(text: Any) -> str | None:
    # "pve-manager/7.4-16/0f39f621" -> "7.4-16"
    if not isinstance(text, str) or not text:
        return None
    parts = text.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "pve-manager" else text


def _kernel(status: Mapping[str, Any]) -> str | None:
    current = status.get("current-kernel")
    if isinstance(current, Mapping) and isinstance(current.get("release"), str):
        return str(current["release"])
    kversion = status.get("kversion")
    if isinstance(kversion, str) and kversion:
        parts = kversion.split()
        # "Linux 5.15.108-1-pve #1 SMP ..." -> "5.15.108-1-pve"
        return parts[1] if len(parts) > 1 and parts[0] == "Linux" else kversion
    return None


def _sub(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    return value if isinstance(value, Mapping) else {}


def nodes_frame(
    profile: str,
    resources: Any,
    cluster_status: Any = None,
    node_status: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Build the ``nodes`` frame.

    ``resources``: rows of ``/cluster/resources`` (any type; node rows are used) or of
    ``/nodes``. ``cluster_status``: ``/cluster/status`` rows (IP, online flag, nodes missing
    from the resources). ``node_status``: node name -> ``/nodes/{node}/status`` body (swap,
    load, versions, kernel); nodes without one get nulls there.
    """
    by_node: dict[str, dict[str, Any]] = {}
    for row in _rows(resources):
        if row.get("type", "node") != "node" or not _nonempty(row.get("node")):
            continue
        by_node[str(row["node"])] = dict(row)
    membership: dict[str, Mapping[str, Any]] = {}
    for row in _rows(cluster_status):
        if row.get("type") == "node" and _nonempty(row.get("name")):
            membership[str(row["name"])] = row
            by_node.setdefault(str(row["name"]), {})
    statuses = node_status or {}
    names = sorted(by_node)
    cluster_name = _cluster_name(cluster_status)
    table = _Table(columns("nodes"))
    for name in names:
        res = by_node[name]
        mem = membership.get(name, {})
        st = unwrap(statuses.get(name))
        st = st if isinstance(st, Mapping) else {}
        status = _nonempty(res.get("status"))
        online_flag = _bool(mem.get("online")) if "online" in mem else None
        if status is None:
            status = "unknown" if online_flag is None else ("online" if online_flag else "offline")
        online = online_flag if online_flag is not None else status == "online"
        memory, rootfs = _sub(st, "memory"), _sub(st, "rootfs")
        swap, cpuinfo = _sub(st, "swap"), _sub(st, "cpuinfo")
        raw_load = st.get("loadavg")
        load: list[Any] = list(raw_load) if isinstance(raw_load, list | tuple) else []
        load += [None] * (3 - len(load))

        def pick(primary: Any, fallback: Any) -> Any:
            return primary if primary is not None else fallback

        table.add(
            profile=profile,
            cluster=cluster_name,
            node=name,
            status=status,
            online=online,
            cpu=_float(pick(res.get("cpu"), st.get("cpu"))),
            cores=_int(pick(res.get("maxcpu"), cpuinfo.get("cpus"))),
            mem_used=_int(pick(res.get("mem"), memory.get("used"))),
            mem_total=_int(pick(res.get("maxmem"), memory.get("total"))),
            disk_used=_int(pick(res.get("disk"), rootfs.get("used"))),
            disk_total=_int(pick(res.get("maxdisk"), rootfs.get("total"))),
            swap_used=_int(swap.get("used")),
            swap_total=_int(swap.get("total")),
            uptime=_int(pick(res.get("uptime"), st.get("uptime"))),
            loadavg_1=_float(load[0]),
            loadavg_5=_float(load[1]),
            loadavg_15=_float(load[2]),
            pve_version=_pve_version(st.get("pveversion")),
            kernel=_kernel(st),
            ip=_nonempty(mem.get("ip")),
            level=_str(pick(res.get("level"), mem.get("level"))),
            cgroup_mode=_int(res.get("cgroup-mode")),
            cpu_model=_nonempty(cpuinfo.get("model")),
            sockets=_int(cpuinfo.get("sockets")),
        )
    return _build("nodes", table.data)


def _cluster_name(cluster_status: Any) -> str | None:
    """The name in the ``cluster`` row of ``/cluster/status`` (absent on a standalone node)."""
    for row in _rows(cluster_status):
        if row.get("type") == "cluster":
            return _nonempty(row.get("name"))
    return None


# --------------------------------------------------------------------------- guests


def guests_frame(
    profile: str,
    resources: Any,
    *,
    configs: Mapping[int, Any] | None = None,
    ip_data: Mapping[int, Mapping[str, Any]] | None = None,
    errors: Mapping[int, str] | None = None,
    details: bool = False,
    ips: bool = False,
) -> pd.DataFrame:
    """Build the ``guests`` frame from ``/cluster/resources`` rows (qemu and lxc rows used).

    ``details=True`` adds the config columns from ``configs`` (VMID -> ``.../config`` body);
    ``ips=True`` adds addresses and file systems from ``ip_data`` (VMID -> mapping with any
    of ``agent_interfaces``, ``lxc_interfaces``, ``fsinfo`` bodies, see :func:`guest_ips`).
    ``errors`` (VMID -> message) fills the ``error`` column, along with agent errors found
    inside the bodies. Rows are sorted by VMID.
    """
    configs = configs or {}
    ip_data = ip_data or {}
    errors = errors or {}
    rows = [r for r in _rows(resources) if r.get("type") in ("qemu", "lxc")]
    rows.sort(key=lambda r: _int(r.get("vmid")) or 0)
    table = _Table(columns("guests", details=details, ips=ips))
    for row in rows:
        vmid = _int(row.get("vmid"))
        gtype = str(row.get("type"))
        disk_used = _int(row.get("disk"))
        if gtype == "qemu" and not disk_used:
            # QEMU always reports 0 here: only the guest agent knows file system usage.
            disk_used = None
        values: dict[str, Any] = {
            "profile": profile,
            "vmid": vmid,
            "name": _str(row.get("name")),
            "type": gtype,
            "node": _str(row.get("node")),
            "status": _nonempty(row.get("status")),
            "template": bool(_bool(row.get("template"))),
            "tags": _parse.parse_tags(row.get("tags")),
            "pool": _nonempty(row.get("pool")),
            "ha_state": _nonempty(row.get("hastate")),
            "lock": _nonempty(row.get("lock")),
            "cpu": _float(row.get("cpu")),
            "cores": _int(row.get("maxcpu")),
            "mem_used": _int(row.get("mem")),
            "mem_total": _int(row.get("maxmem")),
            "disk_used": disk_used,
            "disk_total": _int(row.get("maxdisk")),
            "uptime": _int(row.get("uptime")),
            "netin": _int(row.get("netin")),
            "netout": _int(row.get("netout")),
            "diskread": _int(row.get("diskread")),
            "diskwrite": _int(row.get("diskwrite")),
        }
        problems: list[str] = []
        if vmid is not None and errors.get(vmid):
            problems.append(str(errors[vmid]))
        config = unwrap(configs.get(vmid)) if vmid is not None else None
        config = config if isinstance(config, Mapping) else None
        if details:
            values.update(guest_details(config, gtype))
        if ips:
            info = guest_ips(ip_data.get(vmid) if vmid is not None else None, config, gtype)
            if info.pop("error", None):
                problems.append(str(info.get("_agent_error")))
            info.pop("_agent_error", None)
            values.update(info)
        if details or ips:
            values["error"] = "; ".join(dict.fromkeys(problems)) or None
        table.add(**values)
    return _build("guests", table.data, details=details, ips=ips)


def guest_details(config: Mapping[str, Any] | None, gtype: str) -> dict[str, Any]:
    """The ``details=True`` columns of one guest from its config body (``None`` -> nulls)."""
    if config is None:
        return dict.fromkeys(c.name for c in COLUMNS["guests_details"])
    is_qemu = gtype != "lxc"
    cpu_type: str | None = None
    if is_qemu and _nonempty(config.get("cpu")):
        try:
            cpu_type = _parse.parse_kv(config["cpu"], default_key="cputype").get("cputype")
        except InvalidInputError:
            cpu_type = None
    agent: bool | None = None
    if is_qemu:
        try:
            agent = _parse.parse_agent(config.get("agent"))
        except InvalidInputError:
            agent = None
    sockets = _int(config.get("sockets")) if is_qemu else None
    if is_qemu and sockets is None:
        sockets = 1  # Proxmox's default when the key is absent
    return {
        "sockets": sockets,
        "cpu_type": cpu_type,
        "memory": _memory_mib(config.get("memory")),
        "balloon": _mib(config.get("balloon")) if is_qemu else None,
        "swap": _mib(config.get("swap")) if not is_qemu else None,
        "disks": _parse.parse_disks(config, gtype),
        "networks": _parse.parse_networks(config, gtype),
        "ostype": _nonempty(config.get("ostype")),
        "boot": _nonempty(config.get("boot")),
        "onboot": bool(_bool(config.get("onboot"))),
        "agent": agent,
        "description": _nonempty(config.get("description")),
    }


def _agent_result(body: Any) -> tuple[Any, str | None]:
    """Unwrap a guest-agent body to its ``result``; return (result, error text)."""
    data = unwrap(body)
    if isinstance(data, Mapping) and "error" in data and "result" not in data:
        data = {"result": {"error": data["error"]}}
    if isinstance(data, Mapping) and "result" in data:
        result = data["result"]
        if isinstance(result, Mapping) and isinstance(result.get("error"), Mapping):
            err = result["error"]
            desc = _str(err.get("desc")) or "unknown error"
            cls = _str(err.get("class"))
            return None, f"guest agent error: {desc}" + (f" ({cls})" if cls else "")
        return result, None
    if isinstance(data, list):
        return data, None
    return None, None


def _usable_ip(text: Any) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        addr = ipaddress.ip_address(text.split("/", 1)[0].split("%", 1)[0])
    except ValueError:
        return None
    if addr.is_loopback or addr.is_link_local or addr.is_unspecified:
        return None
    return str(addr)


def _configured_macs(config: Mapping[str, Any] | None, gtype: str) -> set[str]:
    if not config:
        return set()
    return {
        str(net["mac"]).upper() for net in _parse.parse_networks(config, gtype) if net.get("mac")
    }


def _ordered(addresses: Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(addresses))
    v4 = [a for a in unique if ":" not in a]
    v6 = [a for a in unique if ":" in a]
    return v4 + v6


def guest_ips(
    data: Mapping[str, Any] | None, config: Mapping[str, Any] | None, gtype: str
) -> dict[str, Any]:
    """The ``ips=True`` columns of one guest.

    ``data`` may hold ``agent_interfaces`` (QEMU ``agent/network-get-interfaces`` body),
    ``lxc_interfaces`` (``/lxc/{vmid}/interfaces`` body) and ``fsinfo`` (``agent/get-fsinfo``
    body). Sources in order: the agent (only NICs whose MAC is configured on the guest, when
    the config is known), LXC interfaces, then static ``ip=`` in the config. Loopback and
    link-local addresses are dropped. An agent error inside the body is reported under
    ``error`` / ``_agent_error`` (the caller folds it into the ``error`` column).
    """
    data = data or {}
    macs = _configured_macs(config, gtype)
    ip_list: list[str] = []
    source: str | None = None
    agent_error: str | None = None

    if data.get("agent_interfaces") is not None:
        result, agent_error = _agent_result(data["agent_interfaces"])
        found: list[str] = []
        for iface in result if isinstance(result, list) else []:
            if not isinstance(iface, Mapping):
                continue
            mac = _str(iface.get("hardware-address"))
            if macs and (not mac or mac.upper() not in macs):
                continue
            for entry in iface.get("ip-addresses") or []:
                if isinstance(entry, Mapping):
                    ip = _usable_ip(entry.get("ip-address"))
                    if ip:
                        found.append(ip)
        if found:
            ip_list, source = _ordered(found), "agent"

    if not ip_list and data.get("lxc_interfaces") is not None:
        found = []
        for iface in _rows(data["lxc_interfaces"]):
            if iface.get("name") == "lo":
                continue
            mac = _str(iface.get("hwaddr"))
            if macs and mac and mac.upper() not in macs:
                continue
            for key in ("inet", "inet6"):
                ip = _usable_ip(iface.get(key))
                if ip:
                    found.append(ip)
            for entry in iface.get("ip-addresses") or []:
                if isinstance(entry, Mapping):
                    ip = _usable_ip(entry.get("ip-address"))
                    if ip:
                        found.append(ip)
        if found:
            ip_list, source = _ordered(found), "lxc"

    if not ip_list and config:
        found = []
        for net in _parse.parse_networks(config, gtype):
            ip = _parse.strip_prefix(net.get("ip"))
            if ip and _usable_ip(ip):
                found.append(ip)
        if gtype != "lxc":
            for key in sorted(k for k in config if re.fullmatch(r"ipconfig\d+", k)):
                try:
                    ip6 = _parse.parse_ipconfig(config[key]).get("ip6")
                except InvalidInputError:
                    continue
                addr = _parse.strip_prefix(ip6)
                if addr and _usable_ip(addr):
                    found.append(addr)
        if found:
            ip_list, source = _ordered(found), "config"

    filesystems: list[dict[str, Any]] = []
    if data.get("fsinfo") is not None:
        result, fs_error = _agent_result(data["fsinfo"])
        agent_error = agent_error or fs_error
        for fs in result if isinstance(result, list) else []:
            if not isinstance(fs, Mapping):
                continue
            filesystems.append(
                {
                    "mountpoint": _str(fs.get("mountpoint")),
                    "type": _str(fs.get("type")),
                    "total": _int(fs.get("total-bytes")),
                    "used": _int(fs.get("used-bytes")),
                }
            )
    return {
        "ip": ip_list[0] if ip_list else None,
        "ips": ip_list,
        "ip_source": source,
        "filesystems": filesystems,
        "error": agent_error is not None,
        "_agent_error": agent_error,
    }


# --------------------------------------------------------------------------- storage


def _content(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v]
    if not isinstance(value, str):
        return []
    return sorted({part.strip() for part in value.split(",") if part.strip()})


def storage_frame(
    profile: str,
    resources: Any,
    node_storage: Mapping[str, Any] | None = None,
    *,
    unique: bool = False,
) -> pd.DataFrame:
    """Build the ``storage`` frame: one row per (node, storage).

    ``resources``: ``/cluster/resources`` rows (storage rows used: ``disk``/``maxdisk``,
    ``status``). ``node_storage``: node -> ``/nodes/{node}/storage`` rows (``active``,
    ``enabled``, ``used``/``total``/``avail``), which win where both exist. ``unique=True``
    keeps a shared storage once (node null), preferring an ``available`` row.
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _rows(resources):
        if row.get("type") != "storage":
            continue
        node, storage = _nonempty(row.get("node")), _nonempty(row.get("storage"))
        if not node or not storage:
            continue
        merged[(node, storage)] = {
            "node": node,
            "storage": storage,
            "type": _nonempty(row.get("plugintype")),
            "content": _content(row.get("content")),
            "shared": _bool(row.get("shared")),
            "status": _nonempty(row.get("status")),
            "used": _int(row.get("disk")),
            "total": _int(row.get("maxdisk")),
        }
    for node, body in (node_storage or {}).items():
        for row in _rows(body):
            storage = _nonempty(row.get("storage"))
            if not storage:
                continue
            entry = merged.setdefault((str(node), storage), {"node": str(node), "storage": storage})
            active = _bool(row.get("active"))
            entry["active"] = active
            entry["enabled"] = _bool(row.get("enabled"))
            entry["type"] = _nonempty(row.get("type")) or entry.get("type")
            if row.get("content") is not None:
                entry["content"] = _content(row.get("content"))
            if row.get("shared") is not None:
                entry["shared"] = _bool(row.get("shared"))
            for key in ("used", "total", "avail"):
                # An inactive storage reports 0 for all three: not a size, unknown.
                if _int(row.get(key)) is not None and active is not False:
                    entry[key] = _int(row.get(key))
            if _float(row.get("used_fraction")) is not None:
                entry["used_fraction"] = _float(row.get("used_fraction"))
            if not entry.get("status"):
                entry["status"] = "available" if active else "unknown"
    entries = [merged[k] for k in sorted(merged)]
    for entry in entries:
        used, total = entry.get("used"), entry.get("total")
        if entry.get("avail") is None and used is not None and total is not None:
            entry["avail"] = max(total - used, 0)
        if entry.get("used_fraction") is None and used is not None and total:
            entry["used_fraction"] = used / total
        if entry.get("active") is None and entry.get("status"):
            entry["active"] = entry["status"] == "available"
        entry.setdefault("content", [])
        entry["shared"] = bool(entry.get("shared"))
    if unique:
        entries = _unique_storage(entries)
    return _frame_from("storage", entries, profile=profile)


def _unique_storage(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    shared: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not entry.get("shared"):
            out.append(entry)
            continue
        best = shared.get(entry["storage"])
        if best is None or (
            best.get("status") != "available" and entry.get("status") == "available"
        ):
            shared[entry["storage"]] = entry
    for name in sorted(shared):
        out.append({**shared[name], "node": None})
    return out


# --------------------------------------------------------------------------- tasks


def _task_state(row: Mapping[str, Any]) -> tuple[str, str | None, bool]:
    """(status, exitstatus, running) from a task list row or a task status body."""
    raw_status = _str(row.get("status"))
    exit_text = _str(row.get("exitstatus"))
    running = raw_status in ("running", "RUNNING") or (
        raw_status is None and row.get("endtime") in (None, "") and exit_text is None
    )
    if running:
        return "running", None, True
    if exit_text is None and raw_status not in (None, "stopped"):
        exit_text = raw_status  # the task LIST puts the exit status text in `status`
    if exit_text is None:
        return "error", None, False
    if exit_text == "OK":
        return "ok", exit_text, False
    if exit_text.startswith("WARNINGS"):
        return "warnings", exit_text, False
    return "error", exit_text, False


def _task_user(row: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(user, token name): PVE lists ``user`` and ``tokenid`` apart; some servers (and UPIDs)
    write ``user@realm!token`` in one field."""
    user = _nonempty(row.get("user"))
    tokenid = _nonempty(row.get("tokenid"))
    if user and "!" in user:
        user, _, named = user.partition("!")
        tokenid = tokenid or _nonempty(named)
    return user, tokenid


def tasks_frame(profile: str, tasks: Any) -> pd.DataFrame:
    """Build the ``tasks`` frame from task list rows (``/nodes/{node}/tasks``,
    ``/cluster/tasks``) or task status bodies; newest first, one row per UPID."""
    seen: dict[str, Mapping[str, Any]] = {}
    anonymous: list[Mapping[str, Any]] = []
    for row in _rows(tasks):
        upid = _nonempty(row.get("upid"))
        if upid:
            seen[upid] = row
        else:
            anonymous.append(row)
    rows = list(seen.values()) + anonymous
    rows.sort(key=lambda r: -(_float(r.get("starttime")) or 0.0))
    table = _Table(columns("tasks"))
    for row in rows:
        status, exitstatus, running = _task_state(row)
        start = _float(row.get("starttime"))
        end = None if running else _float(row.get("endtime"))
        user, tokenid = _task_user(row)
        saved = _bool(row.get("saved"))
        table.add(
            profile=profile,
            upid=_nonempty(row.get("upid")),
            node=_nonempty(row.get("node")),
            type=_nonempty(row.get("type")),
            id=_nonempty(row.get("id")),
            user=user,
            tokenid=tokenid,
            saved=(not running) if saved is None and "status" in row else saved,
            status=status,
            exitstatus=exitstatus,
            starttime=start,
            endtime=end,
            duration=(end - start) if start is not None and end is not None else None,
            running=running,
        )
    return _build("tasks", table.data)


# --------------------------------------------------------------------------- backups


_VZDUMP_RE = re.compile(r"vzdump-(qemu|lxc|openvz)-(\d+)-")


def backups_frame(profile: str, volumes: Any) -> pd.DataFrame:
    """Build the ``backups`` frame from storage content rows (``content=backup``).

    Each row is a ``/nodes/{node}/storage/{storage}/content`` entry with ``node`` and
    ``storage`` added by the caller (``storage`` falls back to the volid prefix). Rows
    that are not backups are skipped; a volid seen twice (shared storage) is kept once.
    Sorted by VMID, then newest first.
    """
    seen: set[str] = set()
    items: list[dict[str, Any]] = []
    for row in _rows(volumes):
        volid = _nonempty(row.get("volid"))
        if not volid or volid in seen:
            continue
        content = _str(row.get("content"))
        if content not in (None, "backup"):
            continue
        seen.add(volid)
        match = _VZDUMP_RE.search(volid)
        gtype = _nonempty(row.get("subtype")) or (match.group(1) if match else None)
        if gtype == "openvz":
            gtype = "lxc"
        vmid = _int(row.get("vmid"))
        if vmid is None and match:
            vmid = int(match.group(2))
        verification = row.get("verification")
        verified = None
        if isinstance(verification, Mapping) and verification.get("state"):
            verified = verification.get("state") == "ok"
        items.append(
            {
                "profile": profile,
                "node": _nonempty(row.get("node")),
                "storage": _nonempty(row.get("storage")) or volid.split(":", 1)[0],
                "volid": volid,
                "vmid": vmid,
                "guest_type": gtype,
                "format": _nonempty(row.get("format")),
                "size": _int(row.get("size")),
                "ctime": _float(row.get("ctime")),
                "notes": _nonempty(row.get("notes")),
                "protected": bool(_bool(row.get("protected"))),
                "verified": verified,
            }
        )
    items.sort(key=lambda i: (i["vmid"] or 0, -(i["ctime"] or 0.0)))
    return _frame_from("backups", items)


# --------------------------------------------------------------------------- snapshots


def snapshots_frame(profile: str, snapshots: Any) -> pd.DataFrame:
    """Build the ``snapshots`` frame from snapshot list rows.

    Each row is a ``/nodes/{node}/{type}/{vmid}/snapshot`` entry with ``node``, ``vmid`` and
    ``guest_type`` added by the caller. The ``current`` pseudo-snapshot ("You are here!")
    is dropped. Sorted by VMID, then snapshot time.
    """
    items: list[dict[str, Any]] = []
    for row in _rows(snapshots):
        name = _nonempty(row.get("name"))
        if not name or name == "current":
            continue
        items.append(
            {
                "profile": profile,
                "node": _nonempty(row.get("node")),
                "vmid": _int(row.get("vmid")),
                "guest_type": _nonempty(row.get("guest_type")),
                "name": name,
                "description": _nonempty(row.get("description")),
                "snaptime": _float(row.get("snaptime")),
                "vmstate": bool(_bool(row.get("vmstate"))),
                "parent": _nonempty(row.get("parent")),
            }
        )
    items.sort(key=lambda i: (i["vmid"] or 0, i["snaptime"] or 0.0, i["name"]))
    return _frame_from("snapshots", items)


# --------------------------------------------------------------------------- metrics


def metrics_frame(
    profile: str, kind: str, series: Iterable[tuple[str, str | None, Any]]
) -> pd.DataFrame:
    """Build the long/tidy ``metrics`` frame.

    ``series``: ``(target, node, rrddata rows)`` per target. Each numeric field of a row
    other than ``time`` becomes one row (``metric``, ``value``); nulls (the newest RRD rows
    may be empty) and non-numeric fields are skipped.
    """
    table = _Table(columns("metrics"))
    for target, node, body in series:
        for row in _rows(body):
            time = _float(row.get("time"))
            if time is None:
                continue
            for metric, raw in row.items():
                if metric == "time":
                    continue
                value = _float(raw)
                if value is None:
                    continue
                table.add(
                    profile=profile,
                    kind=kind,
                    target=str(target),
                    node=node,
                    time=time,
                    metric=metric,
                    value=value,
                )
    return _build("metrics", table.data)


# --------------------------------------------------------------------------- summary


def summary_frame(
    profile: str, resources: Any, cluster_status: Any = None, version: Any = None
) -> pd.DataFrame:
    """Build the one-row ``summary`` frame of a cluster, like Proxmox's datacenter view.

    ``resources``: all ``/cluster/resources`` rows. CPU is weighted by cores over online
    nodes; storage counts available storages only (status unknown is skipped), a shared
    storage once. ``cluster_status`` gives quorum (null when no cluster is defined);
    ``version`` is the ``/version`` body.
    """
    rows = _rows(resources)
    nodes = [r for r in rows if r.get("type") == "node"]
    members = [r for r in _rows(cluster_status) if r.get("type") == "node"]
    names = {str(r.get("node")) for r in nodes if r.get("node")} | {
        str(r.get("name")) for r in members if r.get("name")
    }
    online = [r for r in nodes if r.get("status") == "online"]
    cores = sum(_int(r.get("maxcpu")) or 0 for r in online)
    weighted = sum((_float(r.get("cpu")) or 0.0) * (_int(r.get("maxcpu")) or 0) for r in online)
    storage_used = storage_total = 0
    counted: set[str] = set()
    for row in rows:
        if row.get("type") != "storage" or row.get("status") != "available":
            continue
        name = str(row.get("storage"))
        key = name if _bool(row.get("shared")) else f"{row.get('node')}/{name}"
        if key in counted:
            continue
        counted.add(key)
        storage_used += _int(row.get("disk")) or 0
        storage_total += _int(row.get("maxdisk")) or 0
    guests = [r for r in rows if r.get("type") in ("qemu", "lxc") and not _bool(r.get("template"))]
    quorate = None
    for row in _rows(cluster_status):
        if row.get("type") == "cluster":
            quorate = _bool(row.get("quorate"))
    ver = unwrap(version)
    version_text = _nonempty(ver.get("version")) if isinstance(ver, Mapping) else _nonempty(ver)
    data: dict[str, list[Any]] = {
        "profile": [profile],
        "cluster": [_cluster_name(cluster_status)],
        "nodes_online": [len(online)],
        "nodes_total": [len(names)],
        "quorate": [quorate],
        "version": [version_text],
        "cpu": [weighted / cores if cores else None],
        "cores": [cores],
        "mem_used": [sum(_int(r.get("mem")) or 0 for r in online)],
        "mem_total": [sum(_int(r.get("maxmem")) or 0 for r in online)],
        "storage_used": [storage_used],
        "storage_total": [storage_total],
        "guests_running": [sum(1 for g in guests if g.get("status") == "running")],
        "guests_total": [len(guests)],
    }
    return _build("summary", data)


# --------------------------------------------------------------------------- node tables


def disks_frame(profile: str, node: str, disks: Any) -> pd.DataFrame:
    """Build the ``disks`` frame from ``/nodes/{node}/disks/list`` rows."""
    rows = []
    for row in _rows(disks):
        rows.append(
            {
                "devpath": _nonempty(row.get("devpath")),
                "type": _nonempty(row.get("type")),
                "model": _nonempty(row.get("model")),
                "serial": _nonempty(row.get("serial")),
                "vendor": _nonempty(str(row["vendor"]).strip()) if row.get("vendor") else None,
                "size": _int(row.get("size")),
                "used": _nonempty(row.get("used")),
                "health": _nonempty(row.get("health")),
                "wearout": _int(row.get("wearout")),  # "N/A" (HDD) becomes null
                "rpm": _int(row.get("rpm")),
                "gpt": _bool(row.get("gpt")),
                "mounted": _bool(row.get("mounted")),
                "osdid": _int(row.get("osdid")),
                "wwn": _nonempty(row.get("wwn")),
                "parent": _nonempty(row.get("parent")),
            }
        )
    return _frame_from("disks", rows, profile=profile, node=node)


def smart_frame(profile: str, node: str, disk: str, attributes: Any) -> pd.DataFrame:
    """Build the ``smart`` frame from the ``attributes`` of ``/nodes/{node}/disks/smart``
    (PVE's smartctl parser gives the numbers as text)."""
    rows = [
        {
            "id": _int(a.get("id")),
            "name": _nonempty(a.get("name")),
            "value": _int(a.get("value")),
            "worst": _int(a.get("worst")),
            "threshold": _int(a.get("threshold")),
            "raw": _str(a.get("raw")),
            "fail": _nonempty(a.get("fail")),
            "flags": _nonempty(a.get("flags")),
        }
        for a in _rows(attributes)
    ]
    return _frame_from("smart", rows, profile=profile, node=node, disk=disk)


def updates_frame(profile: str, node: str, packages: Any) -> pd.DataFrame:
    """Build the ``updates`` frame from ``/nodes/{node}/apt/update`` rows (Proxmox's
    capitalised keys: ``Package``, ``OldVersion``...), sorted by package."""
    rows = [
        {
            "package": _nonempty(r.get("Package")),
            "old_version": _nonempty(r.get("OldVersion")),
            "version": _nonempty(r.get("Version")),
            "origin": _nonempty(r.get("Origin")),
            "arch": _nonempty(r.get("Arch")),
            "priority": _nonempty(r.get("Priority")),
            "section": _nonempty(r.get("Section")),
            "title": _nonempty(r.get("Title")),
            "description": _nonempty(r.get("Description")),
        }
        for r in _rows(packages)
    ]
    rows.sort(key=lambda r: str(r["package"] or ""))
    return _frame_from("updates", rows, profile=profile, node=node)


def content_frame(profile: str, node: str, storage: str, volumes: Any) -> pd.DataFrame:
    """Build the ``content`` frame from ``/nodes/{node}/storage/{storage}/content`` rows."""
    rows = [
        {
            "volid": _nonempty(r.get("volid")),
            "content": _nonempty(r.get("content")),
            "format": _nonempty(r.get("format")),
            "size": _int(r.get("size")),
            "used": _int(r.get("used")),
            "vmid": _int(r.get("vmid")),
            "ctime": _safe_epoch(r.get("ctime")),
            "notes": _nonempty(r.get("notes")),
            "protected": _bool(r.get("protected")),
            "parent": _nonempty(r.get("parent")),
        }
        for r in _rows(volumes)
    ]
    rows.sort(key=lambda r: str(r["volid"] or ""))
    return _frame_from("content", rows, profile=profile, node=node, storage=storage)


def appliances_frame(profile: str, node: str, appliances: Any) -> pd.DataFrame:
    """Build the ``appliances`` frame from ``/nodes/{node}/aplinfo`` rows."""
    keys = ("template", "package", "version", "os", "section", "type", "headline", "location")
    rows = []
    for r in _rows(appliances):
        row: dict[str, Any] = {k: _nonempty(r.get(k)) for k in keys}
        row["sha512sum"] = _nonempty(r.get("sha512sum"))
        row["architecture"] = _nonempty(r.get("architecture"))
        rows.append(row)
    rows.sort(key=lambda r: (str(r["section"] or ""), str(r["template"] or "")))
    return _frame_from("appliances", rows, profile=profile, node=node)


# --------------------------------------------------------------------------- group status


def group_status_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Build the ``group_status`` frame from one mapping per profile (keys = column names;
    ``checked_at`` as epoch seconds or a datetime)."""
    table = _Table(columns("group_status"))
    for row in rows:
        checked: Any = row.get("checked_at")
        if checked is not None and hasattr(checked, "timestamp"):
            checked = checked.timestamp()
        table.add(**{**row, "checked_at": checked})
    return _build("group_status", table.data)
