"""The guest panel's dialogs (migrate, backup, snapshots): functions of the panel, which keeps
one method per dialog; each opens in the panel's dialog box, bound to the selection it was
opened for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .._errors import InvalidInputError, PVEError
from .._format import format_bytes
from ._actions import flag, text
from ._common import Permissions, esc, guarded
from ._rows import _SNAPSHOT_NAME, NBSP, _Dialog, _records, _tags, describe

if TYPE_CHECKING:  # pragma: no cover
    from ._panel import GuestPanel


def close_dialog(panel: GuestPanel) -> None:
    if panel._pending is not None and panel._pending.scope != "panel":
        panel._cancel_pending()
    panel._dialog = None
    panel.dialog_box.children = ()


def dialog_frame(
    panel: GuestPanel,
    kind: str,
    rows: Sequence[Mapping[str, Any]],
    title: str,
    body: list[w.Widget],
) -> _Dialog:
    close = w.Button(description="Close", icon="times")
    close.add_class("pvekit-dialog-close")
    box = w.VBox([w.HTML(f"<b>{esc(title)}</b>"), *body, close])
    box.add_class("pvekit-dialog")
    box.add_class(f"pvekit-dialog-{kind}")
    dialog = _Dialog(kind, panel._identity(rows), box, {"close": close})
    close.on_click(lambda _b: panel._close_dialog())
    panel._dialog = dialog
    panel.dialog_box.children = (box,)
    return dialog


def open_dialog(panel: GuestPanel, kind: str, rows: list[dict[str, Any]]) -> None:
    if kind == "migrate":
        panel._migrate_dialog(rows)
    elif kind == "backup":
        panel._backup_dialog(rows)
    elif kind == "snapshot":
        panel._snapshot_dialog(rows[0])
    else:  # pragma: no cover - ACTIONS only names these
        raise KeyError(kind)


def migration_targets(panel: GuestPanel, profile: str, source: str) -> list[tuple[str, str]]:
    targets = []
    for n in panel._nodes:
        node = text(n.get("node"))
        if text(n.get("profile")) != profile or node == source or not panel._node_online(n):
            continue
        total, used = text(n.get("mem_total")), text(n.get("mem_used"))
        free = int(float(total)) - int(float(used)) if total and used else None
        label = f"{node} ({format_bytes(free)} free memory)" if free is not None else node
        targets.append((free if free is not None else -1, label, node))
    targets.sort(key=lambda t: (-t[0], t[2]))
    return [(label, node) for _, label, node in targets]


def migrate_dialog(panel: GuestPanel, rows: list[dict[str, Any]]) -> None:
    profile, source = text(rows[0].get("profile")), text(rows[0].get("node"))
    target = w.Dropdown(options=panel.migration_targets(profile, source), description="Target")
    target.add_class("pvekit-migrate-target")
    running = [r for r in rows if text(r.get("status")) == "running"]
    # Proxmox refuses an offline migration of a running VM, and cannot move a running
    # container live: say what will happen instead of offering a choice that fails.
    note = w.HTML(
        "<i>running VMs migrate live; running containers are stopped, moved and started again</i>"
        if running
        else ""
    )
    note.add_class("pvekit-migrate-note")
    go = w.Button(
        description="Migrate",
        icon="exchange",
        button_style="primary",
        disabled=not target.options,
    )
    go.add_class("pvekit-migrate-go")
    names = ", ".join(f"{text(r.get('vmid'))} {text(r.get('name'))}" for r in rows)
    dialog = panel._dialog_frame(
        "migrate",
        rows,
        f"Migrate {names} (profile {profile}) from node {source}",
        [target, note, go],
    )
    dialog.parts.update(target=target, note=note, go=go)

    @guarded
    def run(_self: GuestPanel) -> None:
        if not target.value:
            raise InvalidInputError("choose a target node")
        chosen = str(target.value)
        panel._close_dialog()
        for row in rows:
            kw: dict[str, Any] = {"target": chosen}
            if text(row.get("type")) == "qemu" and text(row.get("status")) == "running":
                kw["online"] = True
            panel._start("migrate", [row], kw, title=f"migrate to {chosen}")

    go.on_click(lambda _b: run(panel))


def backup_storages(panel: GuestPanel, rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    profile = text(rows[0].get("profile"))
    nodes = {text(r.get("node")) for r in rows}
    perms = panel._perms.get(profile)
    seen: dict[str, dict[str, Any]] = {}
    on_nodes: dict[str, set[str]] = {}
    for s in panel._storage:
        if text(s.get("profile")) != profile:
            continue
        content = s.get("content")
        kinds = content if isinstance(content, (list, tuple)) else _tags(content)
        if "backup" not in kinds:
            continue
        if not flag(s.get("enabled", True)) or not flag(s.get("active", True)):
            continue
        name = text(s.get("storage"))
        if perms is None or not perms.allows("Datastore.AllocateSpace", f"/storage/{name}"):
            continue
        seen.setdefault(name, dict(s))
        on_nodes.setdefault(name, set()).add(text(s.get("node")))
    out = []
    for name, s in sorted(seen.items()):
        if not nodes <= on_nodes[name]:
            continue
        avail = text(s.get("avail"))
        free = f", {format_bytes(int(float(avail)))} free" if avail else ""
        out.append((f"{name} ({text(s.get('type'))}{free})", name))
    return out


def backup_dialog(panel: GuestPanel, rows: list[dict[str, Any]]) -> None:
    options = panel.backup_storages(rows)
    storage = w.Dropdown(options=options, description="Storage")
    storage.add_class("pvekit-backup-storage")
    mode = w.Dropdown(options=["snapshot", "suspend", "stop"], value="snapshot", description="Mode")
    mode.add_class("pvekit-backup-mode")
    go = w.Button(description="Back up", icon="save", button_style="primary", disabled=not options)
    go.add_class("pvekit-backup-go")
    note = w.HTML("" if options else "<i>no backup-capable storage on these nodes</i>")
    names = ", ".join(f"{text(r.get('vmid'))} {text(r.get('name'))}" for r in rows)
    dialog = panel._dialog_frame("backup", rows, f"Back up {names}", [storage, mode, note, go])
    dialog.parts.update(storage=storage, mode=mode, go=go)

    @guarded
    def run(_self: GuestPanel) -> None:
        if not storage.value:
            raise InvalidInputError("choose a backup storage")
        chosen, how = str(storage.value), str(mode.value)
        panel._close_dialog()
        panel._start("backup", rows, {"storage": chosen, "mode": how}, title=f"backup to {chosen}")

    go.on_click(lambda _b: run(panel))


def snapshot_dialog(panel: GuestPanel, row: dict[str, Any]) -> None:
    profile, vmid = text(row.get("profile")), int(row["vmid"])
    perms = panel._perms.get(profile) or Permissions({})
    pool = text(row.get("pool")) or None
    can_take = perms.allows("VM.Snapshot", f"/vms/{vmid}", pool=pool)
    can_rollback = perms.allows_any(
        ("VM.Snapshot", "VM.Snapshot.Rollback"), f"/vms/{vmid}", pool=pool
    )
    listing = w.Select(options=[], rows=6, layout=w.Layout(width="100%"))
    listing.add_class("pvekit-snapshot-list")
    listing.add_class("pvekit-mono")
    name = w.Text(placeholder="snapshot name", description="Name")
    name.add_class("pvekit-snapshot-name")
    description = w.Text(placeholder="optional", description="Description")
    description.add_class("pvekit-snapshot-description")
    vmstate = w.Checkbox(
        value=False,
        description="include RAM",
        indent=False,
        layout=w.Layout(
            display="flex"
            if text(row.get("type")) == "qemu" and text(row.get("status")) == "running"
            else "none"
        ),
    )
    vmstate.add_class("pvekit-snapshot-vmstate")
    create = w.Button(description="Take snapshot", icon="camera", disabled=not can_take)
    create.add_class("pvekit-snapshot-create")
    rollback = w.Button(description="Rollback", icon="undo", button_style="danger", disabled=True)
    rollback.add_class("pvekit-snapshot-rollback")
    delete = w.Button(description="Delete", icon="trash", button_style="danger", disabled=True)
    delete.add_class("pvekit-snapshot-delete")
    status = w.HTML("<i>loading snapshots…</i>")
    status.add_class("pvekit-snapshot-status")
    dialog = panel._dialog_frame(
        "snapshot",
        [row],
        f"Snapshots of {describe(row)}",
        [
            listing,
            status,
            w.HBox([name, description, vmstate, create]),
            w.HBox([rollback, delete]),
        ],
    )
    dialog.parts.update(
        list=listing,
        name=name,
        description=description,
        vmstate=vmstate,
        create=create,
        rollback=rollback,
        delete=delete,
        status=status,
    )

    def chosen_changed(_change: Mapping[str, Any]) -> None:
        picked = bool(listing.value)
        rollback.disabled = not (picked and can_rollback)
        delete.disabled = not (picked and can_take)
        if panel._pending is not None and panel._pending.scope == "snapshot":
            panel._cancel_pending("snapshot choice changed: confirmation cancelled")

    listing.observe(chosen_changed, names="value")

    def load() -> None:
        try:
            snaps = _records(panel._src.guest(profile, vmid).snapshots())
        except PVEError as exc:
            status.value = f'<span class="pvekit-message-error">{esc(exc)}</span>'
            return
        snaps = [s for s in snaps if text(s.get("name")) and text(s.get("name")) != "current"]
        options = []
        for s in snaps:
            when = text(s.get("snaptime"))[:19]
            label = f"{text(s.get('name')):<20} {when:<20} {text(s.get('description'))[:40]}"
            options.append((label.rstrip().replace(" ", NBSP), text(s.get("name"))))
        if panel._dialog is dialog:
            listing.options = options
            status.value = f"{len(options)} snapshot(s)"

    def reload_later() -> None:
        if panel._dialog is dialog:
            load()

    @guarded
    def take(_self: GuestPanel) -> None:
        snap = name.value.strip()
        if not _SNAPSHOT_NAME.match(snap):
            raise InvalidInputError(
                f"snapshot name {snap!r}: 2-40 letters, digits, '-' or '_', starting with a letter"
            )
        kw: dict[str, Any] = {"name": snap}
        if description.value.strip():
            kw["description"] = description.value.strip()
        if vmstate.value and vmstate.layout.display != "none":
            kw["vmstate"] = True
        name.value = ""
        panel._start("snapshot", [row], kw, title=f"snapshot {snap}", after=reload_later)

    @guarded
    def ask(_self: GuestPanel, what: str) -> None:
        snap = listing.value
        if not snap:
            raise InvalidInputError("choose a snapshot first")
        if what == "rollback":
            text_ = f"Roll back to snapshot '{snap}' (the current state is lost)"
            method, title = "rollback", f"rollback to {snap}"
        else:
            text_ = f"Delete snapshot '{snap}'"
            method, title = "delete_snapshot", f"delete snapshot {snap}"
        panel._ask(
            what,
            [row],
            text_,
            lambda: panel._start(
                what, [row], {"name": snap}, method=method, title=title, after=reload_later
            ),
            scope="snapshot",
        )
        panel.confirm_button.description = "Confirm " + (
            "rollback" if what == "rollback" else "delete"
        )

    create.on_click(lambda _b: take(panel))
    rollback.on_click(lambda _b: ask(panel, "rollback"))
    delete.on_click(lambda _b: ask(panel, "delete"))
    panel._runner.submit(load)
