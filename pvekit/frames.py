"""Pure builders from Proxmox VE JSON to typed pandas DataFrames, and the column reference.

Every function here is a pure function of already-parsed JSON: no I/O, no clock (except
:func:`group_status_frame`, whose caller passes times). They accept the bodies exactly as
Proxmox sends them, with or without the ``{"data": ...}`` envelope, and survive what real
servers do: numbers as strings, fields missing on stopped guests and offline nodes, ``""``
instead of ``0``, agent errors inside an HTTP 200, extra fields of newer versions. Unknown
fields are ignored, missing or malformed ones become nulls; a builder never raises on data.

:data:`COLUMNS` is the one reference of every frame's columns: name, dtype, unit and meaning
(``docs/frames.md`` is generated from it). Dtype conventions: bytes ``Int64``, fractions 0..1
``float64``, times ``datetime64[ns, UTC]``, status and type ``category``, flags ``boolean``,
text ``str``, tags and other multi-values Python lists (``object``).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _parse
from ._errors import InvalidInputError
from ._format import parse_bool, unwrap_envelope

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "COLUMNS",
    "Column",
    "appliances_frame",
    "apply_dtypes",
    "backups_frame",
    "columns",
    "content_frame",
    "disks_frame",
    "empty_frame",
    "group_status_frame",
    "guest_ips",
    "guests_frame",
    "metrics_frame",
    "nodes_frame",
    "smart_frame",
    "snapshots_frame",
    "storage_frame",
    "summary_frame",
    "tasks_frame",
    "unwrap",
    "updates_frame",
]


@dataclass(frozen=True)
class Column:
    """One documented column: ``name``, pandas ``dtype``, ``unit`` and ``description``."""

    name: str
    dtype: str
    unit: str
    description: str


_TIME = "datetime64[ns, UTC]"


def _cols(*specs: tuple[str, str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


_PROFILE = ("profile", "str", "", "profile name of the cluster (the key across clusters)")

COLUMNS: dict[str, tuple[Column, ...]] = {
    "nodes": _cols(
        _PROFILE,
        ("cluster", "str", "", "cluster name (/cluster/status); null for a standalone node"),
        ("node", "str", "", "node name (null on a group's placeholder row of a failed profile)"),
        ("status", "category", "", "online, offline or unknown"),
        ("online", "boolean", "", "node is online (cluster membership view)"),
        ("cpu", "float64", "fraction", "CPU usage 0..1 of all the node's cores"),
        ("cores", "Int64", "count", "logical CPUs (threads) of the node"),
        ("mem_used", "Int64", "bytes", "memory in use"),
        ("mem_total", "Int64", "bytes", "physical memory"),
        ("disk_used", "Int64", "bytes", "root file system used"),
        ("disk_total", "Int64", "bytes", "root file system size"),
        ("swap_used", "Int64", "bytes", "swap in use (needs the node online)"),
        ("swap_total", "Int64", "bytes", "swap size (needs the node online)"),
        ("uptime", "Int64", "seconds", "time since boot"),
        ("loadavg_1", "float64", "", "load average over 1 minute"),
        ("loadavg_5", "float64", "", "load average over 5 minutes"),
        ("loadavg_15", "float64", "", "load average over 15 minutes"),
        ("pve_version", "str", "", "pve-manager version, e.g. 8.2.4"),
        ("kernel", "str", "", "running kernel release, e.g. 6.8.12-1-pve"),
        ("ip", "str", "", "cluster network address of the node"),
        ("level", "str", "", "subscription level ('' none, c community, b basic, s, p)"),
        ("cgroup_mode", "Int64", "", "cgroup version of the node (PVE 7+)"),
        ("cpu_model", "str", "", "CPU model name (needs the node online)"),
        ("sockets", "Int64", "count", "CPU sockets (needs the node online)"),
    ),
    "guests": _cols(
        _PROFILE,
        ("vmid", "Int64", "", "guest ID (unique within one cluster only)"),
        ("name", "str", "", "guest name (hostname for containers)"),
        ("type", "category", "", "qemu or lxc"),
        ("node", "str", "", "node the guest is on"),
        ("status", "category", "", "running, stopped, paused, unknown..."),
        ("template", "boolean", "", "guest is a template"),
        ("tags", "object", "list", "tags as a list of strings"),
        ("pool", "str", "", "resource pool, if any"),
        ("ha_state", "str", "", "HA state (started, stopped, ...) if HA-managed"),
        ("lock", "str", "", "config lock (backup, migrate, snapshot...) if any"),
        ("cpu", "float64", "fraction", "CPU usage 0..1 of the guest's vCPUs"),
        ("cores", "Int64", "count", "vCPUs (Proxmox maxcpu)"),
        ("mem_used", "Int64", "bytes", "memory in use (0 when stopped)"),
        ("mem_total", "Int64", "bytes", "memory size"),
        ("disk_used", "Int64", "bytes", "root disk used (LXC); null for QEMU, see filesystems"),
        ("disk_total", "Int64", "bytes", "root disk size"),
        ("uptime", "Int64", "seconds", "time since start"),
        ("netin", "Int64", "bytes", "network bytes received since start"),
        ("netout", "Int64", "bytes", "network bytes sent since start"),
        ("diskread", "Int64", "bytes", "disk bytes read since start"),
        ("diskwrite", "Int64", "bytes", "disk bytes written since start"),
    ),
    "guests_details": _cols(
        ("sockets", "Int64", "count", "CPU sockets (QEMU)"),
        ("cpu_type", "str", "", "CPU type (QEMU cpu setting), null when the default"),
        ("memory", "Int64", "bytes", "configured memory"),
        ("balloon", "Int64", "bytes", "balloon minimum (QEMU); 0 disables ballooning"),
        ("swap", "Int64", "bytes", "configured swap (LXC)"),
        (
            "disks",
            "object",
            "list",
            "list of dict: key, storage, volume, size (bytes), format, cache, iothread, ssd, "
            "discard, backup, mountpoint, media",
        ),
        (
            "networks",
            "object",
            "list",
            "list of dict: key, model, mac, bridge, vlan, firewall, rate (MB/s), ip, gateway, name",
        ),
        ("ostype", "str", "", "OS type setting (l26, win11, debian...)"),
        ("boot", "str", "", "boot order setting as written"),
        ("onboot", "boolean", "", "start at node boot"),
        ("agent", "boolean", "", "QEMU guest agent enabled (null for LXC)"),
        ("description", "str", "", "notes of the guest"),
    ),
    "guests_ips": _cols(
        ("ip", "str", "", "primary IP: first IPv4, else first IPv6"),
        ("ips", "object", "list", "all addresses, loopback and link-local dropped"),
        ("ip_source", "category", "", "agent (QEMU guest agent), lxc (/interfaces) or config"),
        (
            "filesystems",
            "object",
            "list",
            "guest agent file systems, list of dict: mountpoint, type, total, used (bytes)",
        ),
    ),
    "guests_error": _cols(
        ("error", "str", "", "why details or IPs of this guest are missing (null when fine)"),
    ),
    "storage": _cols(
        _PROFILE,
        ("node", "str", "", "node (null for a shared storage with unique=True)"),
        ("storage", "str", "", "storage ID"),
        ("type", "category", "", "plugin type: dir, lvmthin, zfspool, nfs, rbd..."),
        ("content", "object", "list", "content types: images, rootdir, backup, iso..."),
        ("shared", "boolean", "", "same storage seen from every node"),
        ("status", "category", "", "available or unknown"),
        ("active", "boolean", "", "storage is active on the node"),
        ("enabled", "boolean", "", "storage is enabled on the node"),
        ("used", "Int64", "bytes", "space used"),
        ("total", "Int64", "bytes", "size"),
        ("avail", "Int64", "bytes", "space available"),
        ("used_fraction", "float64", "fraction", "used / total"),
    ),
    "tasks": _cols(
        _PROFILE,
        ("upid", "str", "", "unique task ID"),
        ("node", "str", "", "node that runs the task"),
        ("type", "category", "", "task type: qmstart, vzdump, qmigrate..."),
        ("id", "str", "", "object of the task (often a VMID), null if none"),
        ("user", "str", "", "user that started it (user@realm, without the token)"),
        ("tokenid", "str", "", "API token name when a token started it, else null"),
        ("status", "category", "", "running, ok, warnings or error"),
        ("exitstatus", "str", "", "Proxmox exit status text (null while running)"),
        ("starttime", _TIME, "UTC", "start time"),
        ("endtime", _TIME, "UTC", "end time (null while running)"),
        ("duration", "float64", "seconds", "endtime - starttime (null while running)"),
        ("running", "boolean", "", "task is still running"),
        (
            "saved",
            "boolean",
            "",
            "task is in the node's task archive (Proxmox `saved`; when omitted, as on finished "
            "rows of a node's list, true once the task has ended)",
        ),
    ),
    "backups": _cols(
        _PROFILE,
        ("node", "str", "", "node the storage was listed from"),
        ("storage", "str", "", "backup storage"),
        ("volid", "str", "", "volume ID of the backup archive"),
        ("vmid", "Int64", "", "guest ID the backup belongs to"),
        ("guest_type", "category", "", "qemu or lxc"),
        ("format", "str", "", "archive format (vma.zst, tar.zst, pbs-vm...)"),
        ("size", "Int64", "bytes", "archive size"),
        ("ctime", _TIME, "UTC", "creation time"),
        ("notes", "str", "", "backup notes"),
        ("protected", "boolean", "", "protected from pruning"),
        ("verified", "boolean", "", "verification ok (PBS); null if never verified"),
    ),
    "snapshots": _cols(
        _PROFILE,
        ("node", "str", "", "node of the guest"),
        ("vmid", "Int64", "", "guest ID"),
        ("guest_type", "category", "", "qemu or lxc"),
        ("name", "str", "", "snapshot name"),
        ("description", "str", "", "snapshot description"),
        ("snaptime", _TIME, "UTC", "time the snapshot was taken"),
        ("vmstate", "boolean", "", "includes RAM state (QEMU)"),
        ("parent", "str", "", "parent snapshot name"),
    ),
    "metrics": _cols(
        _PROFILE,
        ("kind", "category", "", "node, guest or storage"),
        ("target", "str", "", "node name, VMID as text, or node/storage"),
        ("node", "str", "", "node the data came from"),
        ("time", _TIME, "UTC", "end of the RRD interval"),
        ("metric", "category", "", "RRD series: cpu, mem, maxmem, netin, used, total..."),
        ("value", "float64", "", "value as Proxmox reports it (bytes, fraction, bytes/s...)"),
    ),
    "summary": _cols(
        _PROFILE,
        ("cluster", "str", "", "cluster name (/cluster/status); null for a standalone node"),
        ("nodes_online", "Int64", "count", "nodes online"),
        ("nodes_total", "Int64", "count", "nodes in the cluster"),
        ("quorate", "boolean", "", "cluster has quorum; null for a standalone node"),
        ("version", "str", "", "PVE version of the node answering"),
        ("cpu", "float64", "fraction", "CPU usage weighted by cores: sum(cpu*cores)/sum(cores)"),
        ("cores", "Int64", "count", "logical CPUs of online nodes"),
        ("mem_used", "Int64", "bytes", "memory used on online nodes"),
        ("mem_total", "Int64", "bytes", "memory of online nodes"),
        ("storage_used", "Int64", "bytes", "used on available storages, shared counted once"),
        ("storage_total", "Int64", "bytes", "size of available storages, shared counted once"),
        ("guests_running", "Int64", "count", "running guests (templates excluded)"),
        ("guests_total", "Int64", "count", "guests (templates excluded)"),
    ),
    "disks": _cols(
        _PROFILE,
        ("node", "str", "", "node the disk is in"),
        ("devpath", "str", "", "device path, e.g. /dev/sda"),
        ("type", "category", "", "nvme, ssd, hdd, usb, partition..."),
        ("model", "str", "", "disk model"),
        ("serial", "str", "", "serial number"),
        ("vendor", "str", "", "vendor as the kernel reports it (often padded or 'unknown')"),
        ("size", "Int64", "bytes", "disk size"),
        ("used", "str", "", "what uses it: LVM, ZFS, ext4, partitions, mounted..."),
        ("health", "str", "", "SMART self-assessment (PASSED, FAILED, UNKNOWN); null if skipped"),
        ("wearout", "Int64", "percent", "SSD life left (100 = new); null for HDDs ('N/A')"),
        ("rpm", "Int64", "rpm", "rotation speed; 0 for SSD/NVMe"),
        ("gpt", "boolean", "", "has a GPT partition table"),
        ("mounted", "boolean", "", "mounted"),
        ("osdid", "Int64", "", "Ceph OSD id, -1 when none"),
        ("wwn", "str", "", "world wide name"),
        ("parent", "str", "", "the disk of a partition (include_partitions=True), else null"),
    ),
    "smart": _cols(
        _PROFILE,
        ("node", "str", "", "node the disk is in"),
        ("disk", "str", "", "device path"),
        ("id", "Int64", "", "SMART attribute ID"),
        ("name", "str", "", "attribute name, e.g. Reallocated_Sector_Ct"),
        ("value", "Int64", "", "normalized current value"),
        ("worst", "Int64", "", "worst normalized value seen"),
        ("threshold", "Int64", "", "failure threshold (value at or below it fails)"),
        ("raw", "str", "", "raw value as smartctl prints it"),
        ("fail", "str", "", "'-' or when it failed: FAILING_NOW, In_the_past"),
        ("flags", "str", "", "smartctl attribute flags"),
    ),
    "updates": _cols(
        _PROFILE,
        ("node", "str", "", "node with the pending update"),
        ("package", "str", "", "Debian package name"),
        ("old_version", "str", "", "installed version (null for a new package)"),
        ("version", "str", "", "version the update installs"),
        ("origin", "str", "", "Proxmox or Debian..."),
        ("arch", "str", "", "amd64, all..."),
        ("priority", "str", "", "package priority"),
        ("section", "str", "", "package section"),
        ("title", "str", "", "one-line summary"),
        ("description", "str", "", "package description"),
    ),
    "content": _cols(
        _PROFILE,
        ("node", "str", "", "node the storage was listed from"),
        ("storage", "str", "", "storage ID"),
        ("volid", "str", "", "volume ID (storage:path), what delete_volume() takes"),
        ("content", "category", "", "iso, vztmpl, images, rootdir, backup, import, snippets"),
        ("format", "str", "", "iso, raw, qcow2, subvol, tzst, vma.zst..."),
        ("size", "Int64", "bytes", "volume size"),
        ("used", "Int64", "bytes", "space used (images; most plugins report nothing useful)"),
        ("vmid", "Int64", "", "owner guest, if any"),
        ("ctime", _TIME, "UTC", "creation time"),
        ("notes", "str", "", "notes (backups)"),
        ("protected", "boolean", "", "protected from removal (backups)"),
        ("parent", "str", "", "base volume of a linked clone"),
    ),
    "appliances": _cols(
        _PROFILE,
        ("node", "str", "", "node whose appliance index was read"),
        ("template", "str", "", "file name, what download_appliance() takes"),
        ("package", "str", "", "appliance package"),
        ("version", "str", "", "appliance version"),
        ("os", "str", "", "distribution, e.g. debian-12"),
        ("section", "category", "", "system, turnkeylinux, mail..."),
        ("type", "category", "", "lxc"),
        ("headline", "str", "", "one-line description"),
        ("location", "str", "", "download URL"),
        ("sha512sum", "str", "", "expected SHA-512 of the file"),
        ("architecture", "str", "", "amd64..."),
    ),
    "group_status": _cols(
        _PROFILE,
        ("host", "str", "", "host:port of the cluster (no secrets)"),
        ("connected", "boolean", "", "the profile has a working client"),
        ("state", "category", "", "pending (not contacted yet), connected, failed or closed"),
        ("error", "str", "", "last error of this profile (null when fine)"),
        ("checked_at", _TIME, "UTC", "when the state was last updated"),
    ),
}


def columns(frame: str, *, details: bool = False, ips: bool = False) -> list[str]:
    """Column names of a frame, in order; ``guests`` takes the ``details``/``ips`` switches."""
    return [c.name for c in _column_specs(frame, details=details, ips=ips)]


def _column_specs(frame: str, *, details: bool = False, ips: bool = False) -> list[Column]:
    if frame not in COLUMNS or frame.startswith("guests_"):
        raise InvalidInputError(
            f"unknown frame {frame!r}: expected one of "
            + ", ".join(k for k in COLUMNS if not k.startswith("guests_"))
        )
    specs = list(COLUMNS[frame])
    if frame == "guests":
        if details:
            specs += COLUMNS["guests_details"]
        if ips:
            specs += COLUMNS["guests_ips"]
        if details or ips:
            specs += COLUMNS["guests_error"]
    return specs


_ALL_DTYPES: dict[str, str] = {c.name: c.dtype for specs in COLUMNS.values() for c in specs}


# --------------------------------------------------------------------------- value helpers


def unwrap(body: Any) -> Any:
    """Strip the HTTP ``{"data": ...}`` envelope if present (``pvesh`` output has none)."""
    return unwrap_envelope(body)


def _rows(body: Any) -> list[Mapping[str, Any]]:
    data = unwrap(body)
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list | tuple):
        return []
    # type() first: isinstance against the Mapping ABC costs ~1 us a row on 10,000 rows.
    return [row for row in data if type(row) is dict or isinstance(row, Mapping)]


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return int(value) if isinstance(value, bool) else None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if math.isfinite(number) else None
    return None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return float(value) if isinstance(value, bool) else None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _bool(value: Any) -> bool | None:
    return parse_bool(value)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return _number_text(value)
    return None


def _number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _nonempty(value: Any) -> str | None:
    text = _str(value)
    return text if text else None


def _mib(value: Any) -> int | None:
    number = _int(value)
    return None if number is None else number * 1024 * 1024


def _memory_mib(value: Any) -> int | None:
    # PVE 8.1+ may write memory as a property string "current=4096".
    if isinstance(value, str) and "=" in value:
        try:
            value = _parse.parse_kv(value, default_key="current").get("current")
        except InvalidInputError:
            return None
    return _mib(value)


# --------------------------------------------------------------------------- frame assembly


def apply_dtypes(df: pd.DataFrame, frame: str | None = None) -> pd.DataFrame:
    """Cast the known columns of ``df`` to their documented dtypes (in place and returned).

    Useful after ``pd.concat`` of frames from several clusters, which widens categories to
    ``object``. With ``frame`` given, that frame's specs decide; otherwise any known column
    name is cast.
    """
    import pandas as pd

    if frame is not None:
        dtypes = {c.name: c.dtype for c in _column_specs(frame, details=True, ips=True)}
    else:
        dtypes = _ALL_DTYPES
    for name, dtype in dtypes.items():
        if name not in df.columns:
            continue
        df[name] = _cast(pd, df[name], dtype)
    return df


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
        return _text(pd, pd.Series(cleaned, dtype="object", index=index))
    return series.astype(dtype)


def _text(pd: Any, text: Any) -> Any:
    """An object Series of str and None as the ``str`` dtype of this pandas."""
    # pandas 2 turns None into the string "None" with astype("str"): keep object there.
    return text.astype("str") if _pandas_major(pd) >= 3 else text


@functools.cache
def _pandas_major(pd: Any) -> int:
    return int(pd.__version__.split(".")[0])


def _build(
    frame: str, data: dict[str, list[Any]], *, details: bool = False, ips: bool = False
) -> pd.DataFrame:
    """The frame of ``data`` (column name -> list of values, absent columns null) with the
    documented columns, order and dtypes: each column converted in one go (:func:`_column`)."""
    import pandas as pd

    specs = _column_specs(frame, details=details, ips=ips)
    length = max((len(v) for v in data.values()), default=0)
    out: dict[str, Any] = {}
    for spec in specs:
        values = data.get(spec.name)
        if values is None:
            values = [None] * length
        out[spec.name] = _column(pd, values, spec.dtype)
    # The arrays are new: no copy; their lengths must agree (pandas raises otherwise). The
    # dict keeps the documented order (columns= would cost a reindex of every column).
    return pd.DataFrame(out, copy=False)


_NONE = type(None)
_INT_KINDS = frozenset({int, _NONE})
_NUMBER_KINDS = frozenset({int, float, _NONE})
_BOOL_KINDS = frozenset({bool, _NONE})
_TEXT_KINDS = frozenset({str, _NONE})


def _column(pd: Any, values: list[Any], dtype: str) -> Any:
    """``values`` as one column of ``dtype``: exactly ``_cast`` of them (value by value), but
    converted by numpy/pandas in one call where every value already has the plain Python
    type of that dtype (int or None for ``Int64``, str or None for text...), which is what
    the builders produce. Anything else (strings for numbers, datetimes, numpy scalars,
    out-of-range numbers) takes ``_cast``, so the result never depends on the path."""
    kinds = set(map(type, values))
    fast = _FAST_COLUMNS.get(dtype)
    out = fast(pd, values, kinds) if fast is not None else None
    if out is None:
        return _cast(pd, pd.Series(values, dtype="object"), dtype)
    return out


def _none_mask(np: Any, values: list[Any]) -> Any:
    return np.fromiter([v is None for v in values], dtype=bool, count=len(values))


def _int_column(pd: Any, values: list[Any], kinds: set[type]) -> Any:
    import numpy as np

    if not kinds <= _INT_KINDS:
        return None
    try:
        if _NONE in kinds:
            data = np.array([0 if v is None else v for v in values], dtype=np.int64)
            mask = _none_mask(np, values)
        else:
            data = np.array(values, dtype=np.int64)
            mask = np.zeros(len(values), dtype=bool)
    except OverflowError:
        return None  # beyond int64: _safe_int makes those null
    if len(data) and int(data.min()) < -_INT64_MAX:
        return None  # -2**63 fits int64 but _safe_int nulls it
    return pd.arrays.IntegerArray(data, mask)


def _float_column(pd: Any, values: list[Any], kinds: set[type]) -> Any:
    import numpy as np

    if not kinds <= _NUMBER_KINDS:
        return None
    try:
        data = np.array(values, dtype=np.float64)  # None -> NaN
    except OverflowError:
        return None  # an int beyond float range: _float's own error
    data[~np.isfinite(data)] = np.nan  # _float: inf and NaN are null
    return data


def _bool_column(pd: Any, values: list[Any], kinds: set[type]) -> Any:
    import numpy as np

    if not kinds <= _BOOL_KINDS:
        return None
    data = np.fromiter([v is True for v in values], dtype=bool, count=len(values))
    return pd.arrays.BooleanArray(data, _none_mask(np, values))


def _str_column(pd: Any, values: list[Any], kinds: set[type]) -> Any:
    if not kinds <= _TEXT_KINDS:
        return None
    if _pandas_major(pd) >= 3:
        return pd.array(values, dtype=_str_dtype(pd))  # what astype("str") makes of them
    return pd.Series(values, dtype="object")


@functools.cache
def _str_dtype(pd: Any) -> Any:
    """The ``str`` dtype, looked up once (the lookup costs more than a short column)."""
    return pd.api.types.pandas_dtype("str")


def _category_column(pd: Any, values: list[Any], kinds: set[type]) -> Any:
    import numpy as np

    if not kinds <= _TEXT_KINDS:
        return None
    dtype, position = _category_dtype(tuple(sorted({v for v in values if v is not None})))
    codes = np.fromiter(
        [-1 if v is None else position[v] for v in values], dtype=np.int32, count=len(values)
    )
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


@functools.lru_cache(maxsize=256)
def _category_dtype(categories: tuple[str, ...]) -> tuple[Any, dict[str, int]]:
    """The dtype ``_cast`` gives a column holding exactly ``categories`` (pandas' own sort
    and categories dtype), and each category's code. Built once per set: most category
    columns hold the same few values (qemu/lxc, running/stopped...) frame after frame."""
    import pandas as pd

    dtype: Any = pd.Series(list(categories), dtype="object").astype("category").dtype
    return dtype, {str(c): i for i, c in enumerate(dtype.categories)}


def _time_column(pd: Any, values: list[Any], kinds: set[type]) -> Any:
    import numpy as np

    if not kinds <= _NUMBER_KINDS:
        return None
    try:
        epochs = np.array(values, dtype=np.float64)
    except OverflowError:
        return None
    epochs[~(np.abs(epochs) < _EPOCH_LIMIT)] = np.nan  # _safe_epoch; NaN stays NaN
    times = pd.to_datetime(pd.Series(epochs, dtype="float64"), unit="s", utc=True)
    return times.astype(_TIME)


def _object_column(pd: Any, values: list[Any], kinds: set[type]) -> Any:
    return pd.Series(values, dtype="object")


_FAST_COLUMNS = {
    "Int64": _int_column,
    "float64": _float_column,
    "boolean": _bool_column,
    "str": _str_column,
    "category": _category_column,
    _TIME: _time_column,
    "object": _object_column,
}


def _ints(values: list[Any]) -> list[Any]:
    """``[_int(v) for v in values]``, without the calls when each is an int or None."""
    return values if set(map(type, values)) <= _INT_KINDS else [_int(v) for v in values]


def _float_values(values: list[Any]) -> list[Any]:
    """``[_float(v) for v in values]`` as a ``float64`` column sees it: ints and floats
    stay as they are (the column turns them, and inf or NaN, into what ``_float`` gives)."""
    return values if set(map(type, values)) <= _NUMBER_KINDS else [_float(v) for v in values]


def _bools(values: list[Any]) -> list[Any]:
    """``[_bool(v) for v in values]``, without the calls when each is a bool or None."""
    return values if set(map(type, values)) <= _BOOL_KINDS else [_bool(v) for v in values]


def _strs(values: list[Any]) -> list[Any]:
    """``[_str(v) for v in values]``, without the calls when each is a str or None."""
    return values if set(map(type, values)) <= _TEXT_KINDS else [_str(v) for v in values]


def _nonempties(values: list[Any]) -> list[Any]:
    """``[_nonempty(v) for v in values]``; for str or None values just ``""`` -> None."""
    if set(map(type, values)) <= _TEXT_KINDS:
        return [v or None for v in values]
    return [_nonempty(v) for v in values]


def empty_frame(frame: str, *, details: bool = False, ips: bool = False) -> pd.DataFrame:
    """A frame with no rows and the documented columns and dtypes."""
    return _build(frame, {}, details=details, ips=ips)


class _Table:
    """Column-wise accumulator: fast for 10,000 rows and keeps every column aligned."""

    def __init__(self, names: Iterable[str]) -> None:
        self.data: dict[str, list[Any]] = {name: [] for name in names}

    def add(self, **values: Any) -> None:
        get = values.get
        for name, column in self.data.items():
            column.append(get(name))


def _frame_from(frame: str, rows: Iterable[Mapping[str, Any]], **common: Any) -> pd.DataFrame:
    """The frame built from one mapping per row (absent keys null), ``common`` in every row:
    one list per column, taken from the rows in one pass each."""
    rows = list(rows)
    data = {
        name: [common[name]] * len(rows) if name in common else [row.get(name) for row in rows]
        for name in columns(frame)
    }
    return _build(frame, data)


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

    def col(key: str) -> list[Any]:
        return [r.get(key) for r in rows]

    vmids = _ints(col("vmid"))
    gtypes = [str(r.get("type")) for r in rows]
    data: dict[str, list[Any]] = {
        "profile": [profile] * len(rows),
        "vmid": vmids,
        "name": _strs(col("name")),
        "type": gtypes,
        "node": _strs(col("node")),
        "status": _nonempties(col("status")),
        "template": [bool(b) for b in _bools(col("template"))],
        "tags": [_parse.parse_tags(v) for v in col("tags")],
        "pool": _nonempties(col("pool")),
        "ha_state": _nonempties(col("hastate")),
        "lock": _nonempties(col("lock")),
        "cpu": _float_values(col("cpu")),
        "cores": _ints(col("maxcpu")),
        "mem_used": _ints(col("mem")),
        "mem_total": _ints(col("maxmem")),
        # QEMU always reports 0 here: only the guest agent knows file system usage.
        "disk_used": [
            None if t == "qemu" and not d else d
            for t, d in zip(gtypes, _ints(col("disk")), strict=True)
        ],
        "disk_total": _ints(col("maxdisk")),
        "uptime": _ints(col("uptime")),
        "netin": _ints(col("netin")),
        "netout": _ints(col("netout")),
        "diskread": _ints(col("diskread")),
        "diskwrite": _ints(col("diskwrite")),
    }
    if details or ips:
        extra = [c.name for c in COLUMNS["guests_details"]] if details else []
        extra += [c.name for c in COLUMNS["guests_ips"]] if ips else []
        added: dict[str, list[Any]] = {name: [] for name in extra}
        error_column: list[str | None] = []
        for vmid, gtype in zip(vmids, gtypes, strict=True):
            problems: list[str] = []
            if vmid is not None and errors.get(vmid):
                problems.append(str(errors[vmid]))
            config = unwrap(configs.get(vmid)) if vmid is not None else None
            config = config if isinstance(config, Mapping) else None
            values: dict[str, Any] = guest_details(config, gtype) if details else {}
            if ips:
                info = guest_ips(ip_data.get(vmid) if vmid is not None else None, config, gtype)
                if info.pop("error", None):
                    problems.append(str(info.get("_agent_error")))
                values.update(info)
            for name, column in added.items():
                column.append(values.get(name))
            error_column.append("; ".join(dict.fromkeys(problems)) or None)
        data.update(added)
        data["error"] = error_column
    return _build("guests", data, details=details, ips=ips)


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
        named_type, named_vmid = _parse.backup_identity(volid)
        gtype = _nonempty(row.get("subtype")) or named_type
        if gtype == "openvz":
            gtype = "lxc"
        vmid = _int(row.get("vmid"))
        if vmid is None:
            vmid = named_vmid
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
    times: list[float] = []
    metrics: list[str] = []
    values: list[float] = []
    targets: list[str] = []
    nodes: list[Any] = []
    for target, node, body in series:
        start = len(values)
        for row in _rows(body):
            time = _float(row.get("time"))
            if time is None:
                continue
            for metric, raw in row.items():
                if metric == "time":
                    continue
                # RRD values are floats (or null) nearly always: skip the call for those.
                value = (raw if math.isfinite(raw) else None) if type(raw) is float else _float(raw)
                if value is None:
                    continue
                times.append(time)
                metrics.append(metric)
                values.append(value)
        added = len(values) - start
        targets += [str(target)] * added
        nodes += [node] * added
    data = {
        "profile": [profile] * len(values),
        "kind": [kind] * len(values),
        "target": targets,
        "node": nodes,
        "time": times,
        "metric": metrics,
        "value": values,
    }
    return _build("metrics", data)


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


# --------------------------------------------------------------------------- reference


_FRAME_TITLES = {
    "nodes": "`nodes()`",
    "guests": "`guests()`",
    "guests_details": "`guests(details=True)` adds",
    "guests_ips": "`guests(ips=True)` adds",
    "guests_error": "`guests(details=True)` or `guests(ips=True)` adds, last",
    "storage": "`storage(unique=False)`",
    "tasks": "`tasks(running=None, since=None, limit=500)`",
    "backups": "`backups(vmid=None)`",
    "snapshots": "`snapshots(vmid=None)`",
    "metrics": '`metrics(kind, targets=None, timeframe="day", cf="AVERAGE")`',
    "summary": "`summary()`",
    "disks": "`Node.disks(include_partitions=False, skipsmart=False)`",
    "smart": '`Node.smart(disk)["attributes"]`',
    "updates": "`Node.updates()`",
    "content": "`Node.content(storage, content=None, vmid=None)`",
    "appliances": "`Node.appliances()`",
    "group_status": "`Group.status()`",
}


_FRAME_SOURCES = {
    "nodes": "`/cluster/resources`, `/cluster/status`, `/nodes/{node}/status` per online node. "
    "Offline nodes keep their row with nulls.",
    "guests": "one `/cluster/resources` request per cluster. Sorted by `vmid`.",
    "guests_details": "`/nodes/{node}/{type}/{vmid}/config` per guest on an online node, "
    "concurrently (`Cluster.max_workers`, default 16).",
    "guests_ips": "running QEMU with the agent enabled: `agent/network-get-interfaces` (NICs whose "
    "MAC is configured on the guest) and `agent/get-fsinfo`; running LXC: "
    "`/nodes/{node}/lxc/{vmid}/interfaces`; otherwise static `ip=` / `ipconfigN` from the config.",
    "guests_error": "per-guest failures (agent not running, HTTP 595, node offline, agent error "
    "inside HTTP 200) instead of failing the table.",
    "storage": "`/cluster/resources` plus `/nodes/{node}/storage` per online node. "
    "`unique=True` keeps a shared storage once per cluster with `node` null.",
    "tasks": "`/nodes/{node}/tasks` per online node (`limit`, `since`, `source=active|all`), "
    "newest first.",
    "backups": "`/nodes/{node}/storage/{storage}/content?content=backup` for each available "
    "backup storage (a shared one from a single node).",
    "snapshots": "`/nodes/{node}/{type}/{vmid}/snapshot` per non-template guest; the `current` "
    "pseudo-snapshot is dropped.",
    "metrics": "`.../rrddata` of each target (`timeframe`, `cf`), one row per "
    "(target, time, metric); empty RRD values are skipped.",
    "summary": "`/cluster/resources`, `/cluster/status`, `/version`: CPU weighted by cores over "
    "online nodes, storage with status `unknown` skipped and shared storage counted once, "
    "templates not counted as guests.",
    "disks": "`/nodes/{node}/disks/list` (`include-partitions`, `skipsmart`).",
    "smart": "`/nodes/{node}/disks/smart` of an ATA/SATA disk (NVMe disks answer with text "
    "only: the frame is empty and `text` holds smartctl's report).",
    "updates": "`/nodes/{node}/apt/update`: packages with a pending update, by package name "
    "(`Node.refresh_updates()` runs `apt-get update` first).",
    "content": "`/nodes/{node}/storage/{storage}/content` (`content`, `vmid`): every content "
    "type, sorted by volid.",
    "appliances": "`/nodes/{node}/aplinfo`: the appliance (container template) index.",
    "group_status": "kept by the Group from the outcome of each profile's last call.",
}


def reference_markdown() -> str:
    """The column reference as Markdown (the text of ``docs/frames.md``)."""
    lines = [
        "# Frame columns",
        "",
        "<!-- Generated from pvekit.frames.COLUMNS by `python -m pvekit.frames > docs/frames.md`;",
        "     tests/test_frames.py fails when this file and the code disagree. -->",
        "",
        "Every frame of a `Cluster` or a `Group` has `profile` first, so frames of several",
        "clusters concatenate cleanly; across clusters a guest's key is `(profile, vmid)`.",
        "Dtypes: bytes `Int64` (nullable), fractions 0..1 `float64`, times",
        "`datetime64[ns, UTC]`, status and type `category`, flags `boolean`, text `str`,",
        "lists (`object`) hold Python lists. Missing values are `<NA>`/`NaN`/`NaT`; a",
        "builder never raises on odd data, it records nulls. After `pd.concat` of frames",
        "yourself, `pvekit.frames.apply_dtypes(df, name)` restores the dtypes.",
        "",
    ]
    for key, specs in COLUMNS.items():
        lines += [f"## {_FRAME_TITLES.get(key, key)}", ""]
        if key in _FRAME_SOURCES:
            lines += [f"Source: {_FRAME_SOURCES[key]}", ""]
        lines += ["| column | dtype | unit | meaning |", "|---|---|---|---|"]
        for c in specs:
            lines.append(f"| `{c.name}` | `{c.dtype}` | {c.unit} | {c.description} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - documented regeneration command
    print(reference_markdown(), end="")
