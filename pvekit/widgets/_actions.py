"""What each panel action is, and when it makes sense: pure rules, no widgets.

The rules mirror what Proxmox itself accepts, so a button is only enabled when the request
would be allowed: by the guest's type and state, by its lock, and by the identity's
privileges on ``/vms/{vmid}`` (from ``GET /access/permissions``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._common import Permissions

__all__ = ["ACTIONS", "Action", "guest_reason", "selection_reason"]


@dataclass(frozen=True)
class Action:
    """One panel action: its button, the privileges it needs and how it is confirmed."""

    name: str
    label: str
    icon: str
    privileges: tuple[str, ...]  # any of these on /vms/{vmid}
    destructive: bool = False  # asks for a confirmation naming guest, profile and node
    dialog: str | None = None  # opens a dialog instead of running at once
    multi: bool = True  # may act on several guests at once
    verb: str = ""  # past-tense-free phrase for confirmations ("stop (power off)")


POWER = ("VM.PowerMgmt",)

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("start", "Start", "play", POWER, verb="start"),
        Action("shutdown", "Shutdown", "power-off", POWER, verb="shut down"),
        Action(
            "stop",
            "Stop",
            "stop",
            POWER,
            destructive=True,
            verb="stop (power off, no clean shutdown)",
        ),
        Action("reboot", "Reboot", "refresh", POWER, verb="reboot"),
        Action("reset", "Reset", "bolt", POWER, destructive=True, verb="reset (hard reboot)"),
        Action("suspend", "Suspend", "pause", POWER, verb="suspend"),
        Action("resume", "Resume", "play-circle", POWER, verb="resume"),
        Action(
            "snapshot",
            "Snapshots",
            "camera",
            ("VM.Snapshot", "VM.Snapshot.Rollback"),
            dialog="snapshot",
            multi=False,
        ),
        Action("backup", "Backup", "save", ("VM.Backup",), dialog="backup"),
        Action("migrate", "Migrate", "exchange", ("VM.Migrate",), dialog="migrate"),
    )
}

# Locks that block everything; "suspended" (hibernated to disk) only allows a start.
_SUSPENDED_LOCK = "suspended"
_RUNNING = "running"
_PAUSED = ("paused", "suspended")


def text(value: Any) -> str:
    """A frame cell as a plain string ('' for missing values)."""
    if value is None:
        return ""
    try:
        if value != value:  # NaN / NA
            return ""
    except (TypeError, ValueError):
        # pd.NA raises on truth tests
        return ""
    return str(value)


def flag(value: Any) -> bool:
    try:
        return bool(value) and value == value
    except (TypeError, ValueError):
        return False


def guest_reason(action: str, row: Mapping[str, Any]) -> str | None:
    """Why ``action`` does not make sense for this guest now, or ``None`` if it does."""
    status = text(row.get("status")) or "unknown"
    qmp = text(row.get("qmpstatus"))
    if status == _RUNNING and qmp and qmp != _RUNNING:
        # /cluster/resources may say "running" for a paused VM; QMP knows better.
        status = qmp
    kind = text(row.get("type"))
    lock = text(row.get("lock"))
    template = flag(row.get("template"))
    if lock and not (lock == _SUSPENDED_LOCK and action == "start"):
        return f"locked ({lock})"
    if template and action not in ("backup", "migrate"):
        return "is a template"
    if action == "start":
        return None if status == "stopped" else f"is {status}"
    if action in ("shutdown", "reboot"):
        return None if status == _RUNNING else f"is {status}"
    if action == "stop":
        return None if status not in ("stopped", "unknown") else f"is {status}"
    if action == "reset":
        if kind != "qemu":
            return "containers cannot be reset"
        return None if status == _RUNNING else f"is {status}"
    if action == "suspend":
        if kind != "qemu":
            return "only VMs can be suspended here"
        return None if status == _RUNNING else f"is {status}"
    if action == "resume":
        return None if status in _PAUSED else f"is {status}, not paused"
    if action in ("snapshot", "backup", "migrate"):
        return None
    raise KeyError(action)


def selection_reason(
    action: str,
    rows: Sequence[Mapping[str, Any]],
    permissions: Mapping[str, Permissions],
    *,
    busy: frozenset[tuple[str, int]] = frozenset(),
    other_online_nodes: Mapping[tuple[str, str], int] | None = None,
) -> str | None:
    """Why ``action`` cannot run on this selection, or ``None`` if the button may be enabled.

    ``busy`` holds the guests with a task of this panel still running; ``other_online_nodes``
    maps ``(profile, node)`` to the number of other online nodes (migration targets).
    """
    spec = ACTIONS[action]
    if not rows:
        return "select a guest first"
    if not spec.multi and len(rows) > 1:
        return "select exactly one guest"
    profiles = {text(r.get("profile")) for r in rows}
    if action in ("backup", "migrate") and len(profiles) > 1:
        return "select guests of one cluster"
    if action == "migrate":
        nodes = {text(r.get("node")) for r in rows}
        if len(nodes) > 1:
            return "select guests on one node"
        key = (next(iter(profiles)), next(iter(nodes)))
        if other_online_nodes is not None and not other_online_nodes.get(key):
            return "no other online node to migrate to"
    for row in rows:
        label = f"{text(row.get('vmid'))} {text(row.get('name'))}".strip()
        profile = text(row.get("profile"))
        vmid = int(row["vmid"])
        if (profile, vmid) in busy:
            return f"{label}: a task started here is still running"
        why = guest_reason(action, row)
        if why:
            return f"{label} {why}"
        perms = permissions.get(profile)
        if perms is None:
            return f"{label}: permissions of profile {profile!r} are unknown"
        if perms.error:
            return f"{label}: could not read permissions ({perms.error})"
        pool = text(row.get("pool")) or None
        if not perms.allows_any(spec.privileges, f"/vms/{vmid}", pool=pool):
            return f"{label}: not allowed ({' or '.join(spec.privileges)} on /vms/{vmid})"
    return None
