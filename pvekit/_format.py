"""Seed utilities: formatting, safe conversions, VMID and UPID parsing.

These port the helpers of the Go package ``pvetui/pkg/api`` (``FormatBytes``,
``FormatUptime``, ``ParseVMID``, ``Safe*Value``, ``GetFirstNonLoopbackIP``) with the same
results for the same inputs, plus a UPID parser. They are pure and cheap to import.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._errors import InvalidInputError, InvalidVMIDError

__all__ = [
    "MAX_VMID",
    "UPID",
    "first_non_loopback_ip",
    "format_bytes",
    "format_uptime",
    "parse_bool",
    "parse_upid",
    "parse_vmid",
    "safe_bool",
    "safe_float",
    "safe_string",
    "unwrap_envelope",
]

#: Largest VMID Proxmox accepts.
MAX_VMID = 999_999_999

_NA = "N/A"
_UNITS = "KMGTPE"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_bytes(value: int | float | None) -> str:
    """Format a byte count with binary units, like the seed's ``FormatBytes``.

    Below 1024 the count is shown as an integer (``"42 B"``); above, with one decimal
    (``"1.5 KB"``, ``"1.0 GB"``), using 1024-based units up to EB. ``None``/NaN give ``"N/A"``.
    """
    if _is_missing(value):
        return _NA
    n = int(value)  # type: ignore[arg-type]
    if n < 1024:
        return f"{n} B"
    div, exp = 1024, 0
    rest = n // 1024
    while rest >= 1024 and exp < len(_UNITS) - 1:
        div *= 1024
        exp += 1
        rest //= 1024
    return f"{n / div:.1f} {_UNITS[exp]}B"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def format_uptime(seconds: int | float | None) -> str:
    """Format a duration like the seed's ``FormatUptime``: only the non-zero units.

    ``0`` gives ``"0 seconds"``, ``65`` gives ``"1 minute, 5 seconds"``, ``90061`` gives
    ``"1 day, 1 hour, 1 minute, 1 second"``. Negative durations count as zero; ``None``/NaN
    give ``"N/A"``.
    """
    if _is_missing(seconds):
        return _NA
    total = max(int(seconds), 0)  # type: ignore[arg-type]
    days, total = divmod(total, 86400)
    hours, total = divmod(total, 3600)
    minutes, secs = divmod(total, 60)
    parts = [
        _plural(n, unit)
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second"))
        if n
    ]
    return ", ".join(parts) if parts else "0 seconds"


def parse_vmid(value: Any) -> int:
    """Return ``value`` as a VMID, like the seed's ``ParseVMID``.

    Accepts an int, an integral float (``123.0``, as JSON may deliver) or a numeric string.
    Zero, negatives, bools, fractions, values above 999999999 and anything else raise
    :class:`~pvekit.InvalidVMIDError` naming the value.
    """
    if isinstance(value, bool):
        raise InvalidVMIDError(f"invalid VMID {value!r}: a bool is not a VMID")
    number: int
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real):
        as_float = float(value)
        if not math.isfinite(as_float) or not as_float.is_integer():
            raise InvalidVMIDError(f"invalid VMID {value!r}: not a whole number")
        number = int(as_float)
    elif isinstance(value, str):
        # Spaces around are tolerated (as the seed does); a newline, a tab or a digit that is
        # not ASCII (fullwidth U+FF11) is not a VMID Proxmox would accept.
        text = value.strip(" ")
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise InvalidVMIDError(f"invalid VMID {value!r}: not a number")
        number = int(text)
    else:
        raise InvalidVMIDError(
            f"invalid VMID {value!r}: expected an int or a numeric string, "
            f"got {type(value).__name__}"
        )
    if number <= 0:
        raise InvalidVMIDError(f"invalid VMID {value!r}: must be a positive integer")
    if number > MAX_VMID:
        raise InvalidVMIDError(f"invalid VMID {value!r}: larger than {MAX_VMID}")
    return number


def safe_string(value: Any) -> str:
    """Convert any value to a string without raising, like the seed's ``SafeStringValue``.

    ``None`` gives ``""``, bools ``"true"``/``"false"``, whole floats print without ``.0``
    (as Go's ``%v`` does: ``123.0`` -> ``"123"``).
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "+Inf" if f > 0 else "-Inf"
        if f.is_integer() and abs(f) < 1e21:
            return str(int(f))
        return repr(f)
    try:
        return str(value)
    except Exception:  # a broken __str__ must not break a table
        return f"<{type(value).__name__}>"


_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", re.I)


def safe_float(value: Any) -> float:
    """Convert a value to float without raising, like the seed's ``SafeFloatValue``.

    Numbers convert, numeric strings are parsed (``"0.00"``, ``"3400.000"``), anything else
    (including bools, ``None`` and junk) gives ``0.0``.
    """
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return 0.0
    if isinstance(value, str):
        text = value.strip()
        if _FLOAT_RE.fullmatch(text):
            try:
                return float(text)
            except (ValueError, OverflowError):
                return 0.0
    return 0.0


def safe_bool(value: Any) -> bool:
    """Convert a value to bool without raising, like the seed's ``SafeBoolValue``.

    Bools pass through; strings ``"true"``/``"1"`` are true (case-insensitive), every other
    string is false; numbers are true when non-zero; anything else is false.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        return text in ("true", "1")
    if isinstance(value, numbers.Real):
        try:
            f = float(value)
        except (TypeError, ValueError, OverflowError):
            return False
        return f != 0 and not math.isnan(f)
    return False


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(value: Any) -> bool | None:
    """A Proxmox boolean (``1``/``0``, ``on``/``off``, ``yes``/``no``, ``true``/``false``, any
    case, or a number or bool) as a bool; ``None`` when it is none of these (missing, NaN, ``""``).

    The one reading of booleans in pvekit: frames, config strings, HA rows and the simulator's
    parameters use it (:func:`safe_bool` keeps the Go seed's narrower contract).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
    if isinstance(value, numbers.Real):
        f = float(value)
        return None if math.isnan(f) else f != 0
    return None


#: Keys Proxmox's JSON formatter may put beside ``data`` (``total`` on task lists and logs).
_ENVELOPE_KEYS = frozenset({"data", "errors", "message", "total", "changes", "success"})


def unwrap_envelope(body: Any, *, http: bool = False) -> Any:
    """The payload of Proxmox's ``{"data": ...}`` envelope; ``body`` itself when it has none.

    A body read over HTTP always has the envelope (QUIRKS 13), so with ``http=True`` any
    mapping holding ``data`` is one. Otherwise (a ``pvesh`` body is never wrapped) only a
    mapping whose keys are all envelope keys counts, so a row with a field named ``data``
    stays whole.
    """
    if isinstance(body, Mapping) and "data" in body and (http or body.keys() <= _ENVELOPE_KEYS):
        return body["data"]
    return body


def _interface_addresses(iface: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(address, "ipv4"/"ipv6") pairs of a guest-agent or LXC interface record."""
    out: list[tuple[str, str]] = []
    entries = iface.get("ip-addresses")
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, Mapping) and isinstance(entry.get("ip-address"), str):
                out.append((entry["ip-address"], str(entry.get("ip-address-type") or "")))
    for key, kind in (("inet", "ipv4"), ("inet6", "ipv6")):
        raw = iface.get(key)
        if isinstance(raw, str) and raw:
            # LXC may list several addresses separated by spaces; each is "addr/prefix".
            for item in raw.split():
                address = item.split("/", 1)[0]
                if address:
                    out.append((address, kind))
    return out


def first_non_loopback_ip(
    interfaces: Iterable[Mapping[str, Any]] | None, prefer_ipv4: bool = True
) -> str:
    """The first IP of a non-loopback interface, like the seed's ``GetFirstNonLoopbackIP``.

    ``interfaces`` are QEMU guest-agent records (``name``, ``ip-addresses`` with
    ``ip-address``/``ip-address-type``) or LXC ``/interfaces`` records (``name``, ``inet``,
    ``inet6``). Interfaces named ``lo`` or ``lo:*`` are skipped. The first address of the
    preferred family wins; failing that, the first address of any family; else ``""``.
    """
    usable: list[list[tuple[str, str]]] = []
    for iface in interfaces or ():
        if not isinstance(iface, Mapping):
            continue
        name = str(iface.get("name") or "")
        if name == "lo" or name.startswith("lo:"):
            continue
        usable.append(_interface_addresses(iface))
    wanted = "ipv4" if prefer_ipv4 else "ipv6"
    for addresses in usable:
        for address, kind in addresses:
            if kind == wanted:
                return address
    for addresses in usable:
        for address, _kind in addresses:
            return address
    return ""


_UPID_RE = re.compile(
    r"UPID:(?P<node>[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)"
    r":(?P<pid>[0-9A-Fa-f]{8}):(?P<pstart>[0-9A-Fa-f]{8,9}):(?P<starttime>[0-9A-Fa-f]{8})"
    # ``id`` may itself hold colons and spaces (volume ids of image tasks); ``user`` never does.
    r":(?P<type>[^:\s]+):(?P<id>[^\n]*?):(?P<user>[^:\s]+):?"
)


@dataclass(frozen=True)
class UPID:
    """A parsed Proxmox task id (``UPID:node:pid:pstart:starttime:type:id:user:``).

    ``str(upid)`` gives the original string back; ``start`` is the start time as an aware
    UTC datetime; ``vmid`` is ``id`` as an int when the task is about a guest.
    """

    upid: str
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str

    def __str__(self) -> str:
        return self.upid

    @property
    def start(self) -> datetime:
        """Start time of the task (UTC)."""
        return datetime.fromtimestamp(self.starttime, tz=UTC)

    @property
    def vmid(self) -> int | None:
        """The guest id when ``id`` is a VMID, else ``None``."""
        if self.id.isdigit():
            try:
                return parse_vmid(self.id)
            except InvalidVMIDError:
                return None
        return None

    @property
    def token(self) -> str | None:
        """The API token name when the task was started by a token (``user@realm!token``)."""
        return self.user.split("!", 1)[1] if "!" in self.user else None


def parse_upid(value: str) -> UPID:
    """Parse a UPID string; raise :class:`~pvekit.InvalidInputError` saying what is wrong."""
    if not isinstance(value, str):
        raise InvalidInputError(f"invalid UPID {value!r}: expected a string")
    text = value.strip()
    if not text.startswith("UPID:"):
        raise InvalidInputError(f"invalid UPID {value!r}: must start with 'UPID:'")
    match = _UPID_RE.fullmatch(text)
    if match is None:
        parts = text.split(":")
        fields = ["UPID", "node", "pid", "pstart", "starttime", "type", "id", "user"]
        if len(parts) < len(fields):
            problem = f"has {len(parts) - 1} fields, expected 7 ({', '.join(fields[1:])})"
        else:
            problem = "a field is malformed"
            hex_checks = (
                ("pid", parts[2], 8, 8),
                ("pstart", parts[3], 8, 9),
                ("starttime", parts[4], 8, 8),
            )
            for name, raw, low, high in hex_checks:
                if not (low <= len(raw) <= high and re.fullmatch(r"[0-9A-Fa-f]+", raw)):
                    problem = f"{name} {raw!r} is not {low} hex digits"
                    break
            else:
                if not parts[1]:
                    problem = "node is empty"
                elif not parts[5]:
                    problem = "task type is empty"
                elif len(parts) < 8 or not parts[7]:
                    problem = "user is empty"
        raise InvalidInputError(f"invalid UPID {value!r}: {problem}")
    g = match.groupdict()
    return UPID(
        upid=text if text.endswith(":") else text + ":",
        node=g["node"],
        pid=int(g["pid"], 16),
        pstart=int(g["pstart"], 16),
        starttime=int(g["starttime"], 16),
        type=g["type"],
        id=g["id"],
        user=g["user"],
    )
