"""The guest list's rows (columns, cells, labels) and the panel's small records."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w

from .._format import format_bytes
from ._actions import flag, text

ALL = ""  # filter value meaning "no filter"
NBSP = "\u00a0"  # browsers collapse plain spaces inside <option>; these keep the columns
_PROBE_LIMIT = 10  # selections larger than this are not probed for a paused state
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{1,39}$")

# (header, width) of the columns of the guest list; the last one takes the rest of the line
_COLUMNS: tuple[tuple[str, int], ...] = (
    ("profile", 9),
    ("vmid", 7),
    ("name", 20),
    ("type", 6),
    ("node", 10),
    ("status", 9),
    ("cpu", 5),
    ("memory", 20),
    ("uptime", 8),
    ("tags", 0),
)

Key = tuple[str, int]  # (profile, vmid)
Identity = tuple[tuple[str, int, str], ...]  # sorted (profile, vmid, node) of a selection


def _short_uptime(seconds: Any) -> str:
    value = text(seconds)
    if not value:
        return ""
    total = int(float(value))
    if total <= 0:
        return ""
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{rest // 60}m" if hours else f"{rest // 60}m"


def _state(row: Mapping[str, Any]) -> str:
    status, qmp = text(row.get("status")), text(row.get("qmpstatus"))
    return qmp if status == "running" and qmp and qmp != "running" else status


def _tags(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(t) for t in value if str(t)]
    raw = text(value)
    return [t for t in re.split(r"[;,\s]+", raw) if t] if raw else []


def _cell(row: Mapping[str, Any], column: str) -> str:
    if column == "type":
        kind = text(row.get("type"))
        return f"{kind}*" if flag(row.get("template")) else kind
    if column == "cpu":
        cpu = text(row.get("cpu"))
        return f"{float(cpu) * 100:.0f}%" if cpu and text(row.get("status")) == "running" else ""
    if column == "memory":
        total = text(row.get("mem_total"))
        used = text(row.get("mem_used"))
        if not total:
            return ""
        if used and text(row.get("status")) == "running":
            return f"{format_bytes(int(float(used)))}/{format_bytes(int(float(total)))}"
        return format_bytes(int(float(total)))
    if column == "uptime":
        return _short_uptime(row.get("uptime"))
    if column == "tags":
        return ",".join(_tags(row.get("tags")))
    return text(row.get(column))


def _line(cells: Sequence[str]) -> str:
    parts = []
    for (_, width), cell in zip(_COLUMNS, cells, strict=True):
        if width:
            cell = cell if len(cell) < width else cell[: width - 2] + "…"
            parts.append(cell.ljust(width))
        else:
            parts.append(cell)
    return "".join(parts).rstrip().replace(" ", NBSP)


def row_label(row: Mapping[str, Any]) -> str:
    """The fixed-width line showing one guest in the list."""
    return _line([_cell(row, c) for c, _ in _COLUMNS])


def describe(row: Mapping[str, Any]) -> str:
    """'VM 101 (web01), profile prod, node pve1': how confirmations name a guest."""
    kind = "container" if text(row.get("type")) == "lxc" else "VM"
    name = text(row.get("name"))
    named = f" ({name})" if name else ""
    return (
        f"{kind} {text(row.get('vmid'))}{named}, profile {text(row.get('profile'))}, "
        f"node {text(row.get('node'))}"
    )


def _records(frame: Any) -> list[dict[str, Any]]:
    if frame is None:
        return []
    if hasattr(frame, "to_dict"):
        return list(frame.to_dict("records"))
    return [dict(r) for r in frame]


@dataclass
class _Pending:
    """A confirmation waiting for its button: valid for exactly ``identity``."""

    identity: Identity
    action: str
    run: Callable[[], Any]
    scope: str = "panel"  # "snapshot" when it also depends on the chosen snapshot


@dataclass
class _Dialog:
    kind: str
    identity: Identity
    box: w.VBox
    parts: dict[str, w.Widget] = field(default_factory=dict)
