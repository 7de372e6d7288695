"""Parsers for Proxmox VE configuration strings and size strings.

Proxmox packs structured settings into comma-separated ``key=value`` strings in guest
configs: disks (``scsi0: local-lvm:vm-100-disk-0,size=32G,iothread=1``), networks
(``net0: virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10``), container volumes
(``rootfs``, ``mp0``), the agent flag (``agent: enabled=1,fstrim_cloned_disks=1``) and
cloud-init IP settings (``ipconfig0: ip=10.0.0.5/24,gw=10.0.0.1``). This module turns them
into plain dicts, and size strings (``32G``, ``512M``, ``+10G``) into bytes and back.

Every parser raises :class:`ConfigStringError` (an :class:`~pvekit.InvalidInputError`) naming
the offending text when the input is malformed. The frame builders in :mod:`pvekit.frames`
catch it and record nulls instead, so one odd config line never breaks a table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

# The two errors live in the one tree (_errors); importable from here as before.
from ._errors import ConfigStringError, InvalidInputError, InvalidSizeError
from ._format import parse_bool

__all__ = [
    "ConfigStringError",
    "InvalidSizeError",
    "backup_identity",
    "format_size",
    "is_disk_key",
    "is_net_key",
    "parse_agent",
    "parse_disk",
    "parse_disks",
    "parse_ipconfig",
    "parse_kv",
    "parse_net",
    "parse_networks",
    "parse_size",
    "parse_tags",
    "strip_prefix",
]


_UNIT_POWER = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
_SIZE_RE = re.compile(
    r"^\s*(\+)?(\d+(?:\.\d+)?|\.\d+)\s*([KMGTP]?)(?:i?B)?\s*\Z", re.IGNORECASE | re.ASCII
)


def parse_size(text: str | int | float) -> int:
    """Return the number of bytes a Proxmox size string means.

    Units are binary, as in Proxmox: ``"512M"`` is 512 MiB, ``"32G"`` 32 GiB, ``"1T"`` 1 TiB;
    a bare number is bytes. A leading ``+`` (the relative form of a resize, ``"+10G"``) is
    accepted and ignored: the result is the size of the step. Fractions round down to a
    whole byte (``"1.5G"``). Integers pass through. Anything else, including negative
    numbers and unknown units, raises :class:`InvalidSizeError`.
    """
    if isinstance(text, bool):
        raise InvalidSizeError(f"invalid size {text!r}: a bool is not a size")
    if isinstance(text, int):
        if text < 0:
            raise InvalidSizeError(f"invalid size {text!r}: negative")
        return text
    if isinstance(text, float):
        if not text >= 0 or text == float("inf"):
            raise InvalidSizeError(f"invalid size {text!r}: not a finite positive number")
        return int(text)
    if not isinstance(text, str):
        raise InvalidSizeError(f"invalid size {text!r}: expected a string like '32G'")
    match = _SIZE_RE.match(text)
    if not match:
        raise InvalidSizeError(
            f"invalid size {text!r}: expected a number with an optional unit K, M, G, T or P "
            "(for example '32G' or '+10G')"
        )
    number, unit = match.group(2), match.group(3).upper()
    scale = 1024 ** _UNIT_POWER[unit]
    if "." in number:
        # Exact decimal arithmetic: float would turn "1.1G" into 1181116006.4000001.
        whole, frac = number.split(".")
        value = int(whole or "0") * scale + int(frac) * scale // 10 ** len(frac)
        return value
    return int(number) * scale


def format_size(nbytes: int) -> str:
    """Format bytes as the shortest exact Proxmox size string: ``34359738368`` -> ``"32G"``.

    The largest binary unit up to ``T`` that divides the value evenly is used, as Proxmox's
    own ``format_size`` does (and its resize pattern knows no ``P``), so the result parses back
    to the same number (``parse_size(format_size(n)) == n``); ``0`` gives ``"0"``.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise InvalidSizeError(f"invalid byte count {nbytes!r}: expected a non-negative int")
    if nbytes == 0:
        return "0"
    for unit in ("T", "G", "M", "K"):
        scale = 1024 ** _UNIT_POWER[unit]
        if nbytes % scale == 0:
            return f"{nbytes // scale}{unit}"
    return str(nbytes)


def parse_kv(text: Any, default_key: str | None = None) -> dict[str, str]:
    """Split a Proxmox property string ``"a,b=1,c=2"`` into a dict.

    An item without ``=`` is the positional value; it is stored under ``default_key`` (only
    the first such item is allowed). Values keep their text; callers convert. Raises
    :class:`ConfigStringError` for a non-string, an empty string, an empty key, or a
    positional item where none is expected.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ConfigStringError(f"invalid property string {text!r}: expected a string")
    raw = str(text).strip()
    if not raw:
        raise ConfigStringError("invalid property string '': it is empty")
    out: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            if default_key is None or default_key in out:
                raise ConfigStringError(
                    f"invalid property string {raw!r}: unexpected item {item!r} without '='"
                )
            out[default_key] = item
            continue
        key = key.strip()
        if not key:
            raise ConfigStringError(f"invalid property string {raw!r}: empty key in {item!r}")
        out[key] = value.strip()
    return out


def _flag(value: str | None, *, key: str, text: str) -> bool | None:
    if value is None:
        return None
    flag = parse_bool(value)
    if flag is None:
        raise ConfigStringError(f"invalid property string {text!r}: {key}={value!r} is not 0 or 1")
    return flag


def parse_agent(value: Any) -> bool:
    """Return whether the QEMU guest agent is enabled by an ``agent`` config value.

    Accepts the old form (``1``, ``"1"``, ``"0"``) and the property string
    (``"enabled=1,fstrim_cloned_disks=1"``, ``"1,type=virtio"``); ``None`` (key absent) is
    off, as in Proxmox. Raises :class:`ConfigStringError` for anything else.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value in (0, 1):
            return bool(value)
        raise ConfigStringError(f"invalid agent setting {value!r}: expected 0 or 1")
    props = parse_kv(value, default_key="enabled")
    flag = _flag(props.get("enabled", "0"), key="enabled", text=str(value))
    return bool(flag)


_QEMU_DISK_RE = re.compile(r"^(?:(?:scsi|virtio|sata|ide)\d+|efidisk0|tpmstate0)$")
_LXC_DISK_RE = re.compile(r"^(?:rootfs|mp\d+)$")
_NET_RE = re.compile(r"^net\d+$")
_QEMU_NET_MODELS = {
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
}


def is_disk_key(key: str, gtype: str) -> bool:
    """Whether a config key is an attached disk of a guest of type ``qemu`` or ``lxc``.

    QEMU: ``scsiN``, ``virtioN``, ``sataN``, ``ideN``, ``efidisk0``, ``tpmstate0``; LXC:
    ``rootfs`` and ``mpN``. Detached ``unusedN`` volumes are not disks of the guest.
    """
    pattern = _LXC_DISK_RE if gtype == "lxc" else _QEMU_DISK_RE
    return bool(pattern.match(key))


def is_net_key(key: str) -> bool:
    """Whether a config key is a network device (``net0``, ``net1``...)."""
    return bool(_NET_RE.match(key))


def _split_volume(volume: str) -> tuple[str | None, str]:
    # "local-lvm:vm-100-disk-0" -> ("local-lvm", "vm-100-disk-0"); a bind mount or a device
    # path ("/mnt/data", "/dev/sdb") and "none" have no storage.
    if volume.startswith("/") or ":" not in volume:
        return None, volume
    storage, _, name = volume.partition(":")
    return (storage or None), name


def parse_disk(key: str, value: Any, gtype: str = "qemu") -> dict[str, Any]:
    """Parse one disk or container volume config entry into a dict.

    Keys of the result: ``key``, ``storage`` (``None`` for bind mounts, devices and empty
    CD drives), ``volume`` (name on the storage, or the path), ``size`` (bytes or ``None``),
    ``format``, ``cache``, ``iothread`` / ``ssd`` (bool or ``None``), ``discard`` (``"on"``,
    ``"ignore"`` or ``None``), ``backup`` (bool: Proxmox's default applies when absent, on for
    VM disks and ``rootfs``, off for ``mpN``), ``mountpoint`` (``"/"`` for ``rootfs``, the
    ``mp=`` path for ``mpN``, ``None`` for VM disks) and ``media`` (``"cdrom"`` or ``"disk"``).
    Raises :class:`ConfigStringError` for a malformed entry.
    """
    text = str(value) if isinstance(value, str | int | float) else value
    props = parse_kv(text, default_key="file")
    volume = props.get("file") or props.get("volume")
    if not volume:
        raise ConfigStringError(f"invalid disk {key}={text!r}: no volume")
    storage, name = _split_volume(volume)
    size = parse_size(props["size"]) if props.get("size") else None
    is_lxc = gtype == "lxc"
    if key == "rootfs":
        mountpoint: str | None = "/"
        backup_default = True
    elif is_lxc:
        mountpoint = props.get("mp")
        backup_default = False
    else:
        mountpoint = None
        backup_default = True
    backup = _flag(props.get("backup"), key="backup", text=str(text))
    media = props.get("media", "disk")
    if volume == "none":
        storage, name = None, "none"
    return {
        "key": key,
        "storage": storage,
        "volume": name,
        "size": size,
        "format": props.get("format"),
        "cache": props.get("cache"),
        "iothread": _flag(props.get("iothread"), key="iothread", text=str(text)),
        "ssd": _flag(props.get("ssd"), key="ssd", text=str(text)),
        "discard": props.get("discard"),
        "backup": backup_default if backup is None else backup,
        "mountpoint": mountpoint,
        "media": media,
    }


def _disk_order(key: str) -> tuple[int, str, int]:
    if key == "rootfs":
        return (0, "", 0)
    match = re.match(r"^([a-z]+)(\d+)$", key)
    if match:
        return (1, match.group(1), int(match.group(2)))
    return (1, key, 0)


def parse_disks(config: Mapping[str, Any], gtype: str) -> list[dict[str, Any]]:
    """All attached disks of a guest config, in key order (``rootfs`` first).

    An entry that does not parse is kept as ``{"key": ..., "error": "..."}`` with the other
    fields ``None`` so the rest of the guest still shows; nothing is raised.
    """
    disks: list[dict[str, Any]] = []
    for key in sorted((k for k in config if is_disk_key(k, gtype)), key=_disk_order):
        try:
            disks.append(parse_disk(key, config[key], gtype))
        except InvalidInputError as err:
            disks.append({**dict.fromkeys(_DISK_FIELDS), "key": key, "error": err.message})
    return disks


_DISK_FIELDS = (
    "key",
    "storage",
    "volume",
    "size",
    "format",
    "cache",
    "iothread",
    "ssd",
    "discard",
    "backup",
    "mountpoint",
    "media",
)


def strip_prefix(address: str | None) -> str | None:
    """``"10.0.0.5/24"`` -> ``"10.0.0.5"``; ``dhcp``, ``manual``, ``auto`` and junk -> ``None``."""
    if not address:
        return None
    host = address.split("/", 1)[0].strip()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def parse_ipconfig(value: Any) -> dict[str, str | None]:
    """Parse a cloud-init ``ipconfigN`` value: ``ip``, ``gateway``, ``ip6``, ``gateway6``.

    Addresses keep their prefix as written (``"10.0.0.5/24"``, ``"dhcp"``); use
    :func:`strip_prefix` for a bare address. Raises :class:`ConfigStringError` if malformed.
    """
    props = parse_kv(value)
    return {
        "ip": props.get("ip"),
        "gateway": props.get("gw"),
        "ip6": props.get("ip6"),
        "gateway6": props.get("gw6"),
    }


N = TypeVar("N", int, float)

_NET_FIELDS = ("key", "model", "mac", "bridge", "vlan", "firewall", "rate", "ip", "gateway")


def parse_net(key: str, value: Any, gtype: str = "qemu") -> dict[str, Any]:
    """Parse one ``netN`` entry of a QEMU or LXC config.

    Result keys: ``key``, ``model`` (QEMU NIC model, or the LXC ``type`` such as ``veth``),
    ``mac``, ``bridge``, ``vlan`` (int tag or ``None``), ``firewall`` (bool), ``rate``
    (MB/s float or ``None``), ``ip`` and ``gateway`` (LXC ``ip=``/``gw=`` as written, else
    ``None``; for QEMU they come from ``ipconfigN``, see :func:`parse_networks`), and
    ``name`` (LXC interface name). QEMU accepts both ``virtio=MAC`` and
    ``model=virtio,macaddr=MAC``. Raises :class:`ConfigStringError` if malformed.
    """
    text = str(value) if isinstance(value, str | int | float) else value
    props = parse_kv(text)
    model: str | None
    mac: str | None
    if gtype == "lxc":
        model = props.get("type", "veth")
        mac = props.get("hwaddr")
    else:
        model = props.get("model")
        mac = props.get("macaddr")
        for name in props:
            if name.lower() in _QEMU_NET_MODELS:
                model, mac = name, props[name] or mac
                break
        if model is None:
            raise ConfigStringError(f"invalid network {key}={text!r}: no NIC model")

    def number(name: str, conv: Callable[[str], N]) -> N | None:
        if not props.get(name):
            return None
        try:
            return conv(props[name])
        except ValueError:
            raise ConfigStringError(
                f"invalid network {key}={text!r}: {name}={props[name]!r} is not a number"
            ) from None

    vlan = number("tag", int)
    rate = number("rate", float)
    firewall = _flag(props.get("firewall"), key="firewall", text=str(text))
    return {
        "key": key,
        "model": model,
        "mac": mac.upper() if mac else None,
        "bridge": props.get("bridge"),
        "vlan": vlan,
        "firewall": bool(firewall),
        "rate": rate,
        "ip": props.get("ip") if gtype == "lxc" else None,
        "gateway": props.get("gw") if gtype == "lxc" else None,
        "name": props.get("name"),
    }


def parse_networks(config: Mapping[str, Any], gtype: str) -> list[dict[str, Any]]:
    """All network devices of a guest config, ``net0`` first, with IP settings joined.

    For QEMU, ``ipconfigN`` (cloud-init) fills ``ip`` and ``gateway`` of ``netN``. An entry
    that does not parse is kept as ``{"key": ..., "error": "..."}`` with other fields
    ``None``; nothing is raised.
    """
    nets: list[dict[str, Any]] = []
    keys = sorted((k for k in config if is_net_key(k)), key=lambda k: int(k[3:]))
    for key in keys:
        try:
            net = parse_net(key, config[key], gtype)
            if gtype != "lxc":
                ipcfg_raw = config.get(f"ipconfig{key[3:]}")
                if ipcfg_raw:
                    ipcfg = parse_ipconfig(ipcfg_raw)
                    net["ip"] = ipcfg["ip"]
                    net["gateway"] = ipcfg["gateway"]
            nets.append(net)
        except InvalidInputError as err:
            nets.append({**dict.fromkeys(_NET_FIELDS), "key": key, "error": err.message})
    return nets


_VZDUMP_VOLID_RE = re.compile(r"vzdump-(qemu|lxc|openvz)-(\d+)-")
_PBS_VOLID_RE = re.compile(r"backup/(vm|ct)/(\d+)/")


def backup_identity(volid: str) -> tuple[str | None, int | None]:
    """(guest type, vmid) a backup volume id names: ``vzdump-qemu-100-...`` on a directory
    storage, ``backup/vm/100/...`` on Proxmox Backup Server; ``(None, None)`` otherwise.
    ``openvz`` (old container backups) is ``lxc``."""
    m = _VZDUMP_VOLID_RE.search(volid)
    if m:
        return ("lxc" if m.group(1) in ("lxc", "openvz") else "qemu"), int(m.group(2))
    m = _PBS_VOLID_RE.search(volid)
    if m:
        return ("qemu" if m.group(1) == "vm" else "lxc"), int(m.group(2))
    return None, None


_TAG_SPLIT = re.compile(r"[;,\s]+")


def parse_tags(value: Any) -> list[str]:
    """Split a Proxmox tag string (``"web;prod"``; older versions also used ``,`` or spaces).

    Empty, missing and non-string values give ``[]``. Order is kept, duplicates dropped.
    """
    if not isinstance(value, str):
        return []
    seen: dict[str, None] = {}
    for tag in _TAG_SPLIT.split(value.strip()):
        if tag:
            seen.setdefault(tag, None)
    return list(seen)
